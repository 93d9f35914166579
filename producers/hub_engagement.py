"""Engagement snapshots (``model.snapshot``): the Hub keeps no time series, so hubwatch
samples one. Each round spends a bounded share of the Hub budget: bulk list calls first
(a thousand snapshots each, by trending score, likes, downloads and last modification),
then per-model calls for the tracked models due that no bulk call saw, at the intervals
the budget buys (:mod:`producers.snapshot_plan`).

The bulk calls ask for the counters and createdAt only (they run every round; a first
sight among them is rare): a listed model hubwatch has never seen (one listed late, after
its createdAt) is handed to the reconciliation sweep, which looks it up and reports it.
Only tracked models' snapshots are published: the rest of the thousands listed is noise."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

import httpx

from hubwatch import metrics
from hubwatch.errors import NotFound, SchemaError
from hubwatch.events import ModelSnapshot
from producers._http import request
from producers._ratelimit import RequestBudget
from producers.hub import (
    ENGAGEMENT_FIELDS,
    listed_id_and_created,
    model_snapshot_from_api,
    now_utc,
)
from producers.hub_uploads import reject
from producers.publish import EventPublisher
from producers.tracking import Tracker, gone_recheck

__all__ = ["BULK_SORTS", "EngagementPoller"]

BULK_SORTS: tuple[str, ...] = ("trendingScore", "likes", "downloads", "lastModified")
"""The list orders whose first page of snapshots each round reads: what is trending, the
most liked and downloaded models, and what changed last (which holds new uploads)."""

log = logging.getLogger(__name__)


class EngagementPoller:
    name = "hub.engagement"

    def __init__(
        self,
        client: httpx.AsyncClient,
        publisher: EventPublisher,
        tracker: Tracker,
        *,
        requests_per_round: int,
        bulk_every: float = 300.0,
        bulk_limit: int = 1000,
        bulk_sorts: tuple[str, ...] = BULK_SORTS,
        budget: RequestBudget | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._publisher = publisher
        self._tracker = tracker
        self._requests = max(1, requests_per_round)
        self._bulk_every = bulk_every
        self._bulk_limit = bulk_limit
        self._bulk_sorts = bulk_sorts
        self._budget = budget
        self._clock = clock
        self._next_bulk = 0.0
        self._expand = [("expand", f) for f in ENGAGEMENT_FIELDS]
        self._bulk_expand = [("expand", f) for f in (*ENGAGEMENT_FIELDS, "createdAt")]

    async def poll_once(self) -> int:
        now = self._clock()
        snapshots: dict[str, ModelSnapshot] = {}
        unseen: list[str] = []
        gone: list[str] = []
        used = 0
        bulk = now >= self._next_bulk and bool(self._bulk_sorts)
        if bulk:
            for sort in self._bulk_sorts:
                used += 1
                bulk_snaps, listed_unseen = await self._bulk(sort)
                for snap in bulk_snaps:
                    snapshots.setdefault(snap.repo_id, snap)
                unseen += listed_unseen
        from_bulk = set(snapshots)
        store = self._tracker.store
        # Due models a bulk call just saw are snapshotted already: ask for more to fill the
        # round's per-model calls.
        wanted = self._requests - used + len(from_bulk)
        # Off the loop: with a backlog, ordering the due models reads every one of them.
        for model in await store.read_off_loop(lambda s: s.due_snapshots(now, wanted)):
            if used >= self._requests:
                break
            if model.repo_id in snapshots:
                continue
            used += 1
            try:
                body, _ = await request(
                    self._client,
                    f"/api/models/{model.repo_id}",
                    params=self._expand,
                    budget=self._budget,
                )
                snap = model_snapshot_from_api(body, now_utc())
            except NotFound as exc:
                metrics.SOURCE_GONE.labels(self.name, str(exc.status)).inc()
                gone.append(model.repo_id)
                continue
            except SchemaError as error:
                await reject(
                    self._publisher,
                    seen=self._tracker.store,
                    stage="producer.hub.engagement",
                    source=f"/api/models/{model.repo_id}",
                    item=None,
                    error=error,
                )
                gone.append(model.repo_id)
                continue
            snapshots[snap.repo_id] = snap

        for snap in snapshots.values():
            await self._publisher.publish(snap)
        await self._publisher.flush()
        if bulk:  # only once delivered: a round that failed retries its bulk call too
            self._next_bulk = now + self._bulk_every
        # Thousands of models a round (the bulk calls'): in batches, so the other pollers
        # run between them.
        await store.write_in_batches(
            [functools.partial(store.hear_of, r, self.name, now) for r in unseen]  # for the sweep
            + [
                functools.partial(self._record, snap, now, bulk=snap.repo_id in from_bulk)
                for snap in snapshots.values()
            ]
            + [functools.partial(self._strike_gone, repo_id, now) for repo_id in gone]
        )
        return len(snapshots)

    def _strike_gone(self, repo_id: str, now: float) -> None:
        store = self._tracker.store
        store.schedule_snapshot(repo_id, now + gone_recheck(store.strike_gone(repo_id)))

    async def _bulk(self, sort: str) -> tuple[list[ModelSnapshot], list[str]]:
        """Snapshots of the tracked models on the first page in ``sort`` order, and the ids
        of the models on it never seen."""
        params = [("sort", sort), ("limit", str(self._bulk_limit)), *self._bulk_expand]
        body, _ = await request(self._client, "/api/models", params=params, budget=self._budget)
        observed = now_utc()
        store = self._tracker.store
        listed: list[tuple[ModelSnapshot, float | None]] = []
        for item in body if isinstance(body, list) else []:
            try:
                snap = model_snapshot_from_api(item, observed)
            except SchemaError as error:
                await reject(
                    self._publisher,
                    seen=self._tracker.store,
                    stage="producer.hub.engagement",
                    source=f"/api/models?sort={sort}",
                    item=item,
                    error=error,
                )
                continue
            _, created = listed_id_and_created(item)
            listed.append((snap, None if created is None else created.timestamp()))
        # A thousand lookups: off the loop.
        seen = await store.read_off_loop(lambda s: [s.seen(n.repo_id, c) for n, c in listed])
        out = [snap for (snap, _), known in zip(listed, seen, strict=True) if known]
        # One without a createdAt is not a model.created: the uploads stream letters it.
        unseen = [
            snap.repo_id
            for (snap, created), known in zip(listed, seen, strict=True)
            if not known and created is not None
        ]
        return out, unseen

    def _record(self, snap: ModelSnapshot, now: float, *, bulk: bool) -> None:
        model = self._tracker.store.get(snap.repo_id)
        if model is None:
            return  # a listed model hubwatch does not follow: the snapshot is enough
        all_time = snap.downloads_all_time
        self._tracker.record(
            model,
            now=now,
            downloads=all_time if all_time is not None else snap.downloads,
            likes=snap.likes,
            trending_downloads=snap.downloads,
            bulk=bulk,
        )
