"""Engagement snapshots (``model.snapshot``): the Hub keeps no time series, so hubwatch
samples one. Each round spends a bounded share of the Hub budget: bulk list calls first
(a thousand snapshots each, by trending score, likes, downloads and last modification),
then per-model calls for the tracked models due that no bulk call saw, at the intervals
the budget buys (:mod:`producers.snapshot_plan`).

The bulk calls ask for everything ``model.created`` needs too: a listed model hubwatch has
never seen (one listed late, after its createdAt) is reported as first seen here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

import httpx

from hubwatch import metrics
from hubwatch.errors import NotFound, SchemaError
from hubwatch.events import ModelCreated, ModelSnapshot
from producers._http import request
from producers._ratelimit import RequestBudget
from producers.first_seen import FirstSight
from producers.hub import (
    ENGAGEMENT_FIELDS,
    EXPAND_FIELDS,
    model_created_from_api,
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
        overlap: timedelta = timedelta(seconds=120),
        initial_lookback: timedelta | None = None,
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
        self._bulk_expand = [
            ("expand", f) for f in dict.fromkeys(ENGAGEMENT_FIELDS + EXPAND_FIELDS)
        ]
        self._sight = FirstSight(
            tracker, self.name, overlap=overlap, initial_lookback=initial_lookback
        )

    async def poll_once(self) -> int:
        now = self._clock()
        self._sight.begin()
        snapshots: dict[str, ModelSnapshot] = {}
        first: list[ModelCreated] = []
        gone: list[str] = []
        used = 0
        bulk = now >= self._next_bulk and bool(self._bulk_sorts)
        if bulk:
            for sort in self._bulk_sorts:
                used += 1
                bulk_snaps, sighted = await self._bulk(sort)
                for snap in bulk_snaps:
                    snapshots.setdefault(snap.repo_id, snap)
                first += sighted
        from_bulk = set(snapshots)
        store = self._tracker.store
        # Due models a bulk call just saw are snapshotted already: ask for more to fill the
        # round's per-model calls.
        for model in store.due_snapshots(now, self._requests - used + len(from_bulk)):
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

        for created in first:  # before its snapshots, as the uploads stream's would be
            await self._publisher.publish(created)
        for snap in snapshots.values():
            await self._publisher.publish(snap)
        await self._publisher.flush()
        if bulk:  # only once delivered: a round that failed retries its bulk call too
            self._next_bulk = now + self._bulk_every
        with store.transaction():
            self._sight.record(first)  # tracked first, so its snapshot is recorded too
            for snap in snapshots.values():
                self._record(snap, now, bulk=snap.repo_id in from_bulk)
            for repo_id in gone:
                store.schedule_snapshot(repo_id, now + gone_recheck(store.strike_gone(repo_id)))
        return len(snapshots)

    async def _bulk(self, sort: str) -> tuple[list[ModelSnapshot], list[ModelCreated]]:
        """Snapshots of the first page in ``sort`` order, and first sights of those never
        seen."""
        params = [("sort", sort), ("limit", str(self._bulk_limit)), *self._bulk_expand]
        body, _ = await request(self._client, "/api/models", params=params, budget=self._budget)
        observed = now_utc()
        out = []
        first = []
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
            out.append(snap)
            if self._sight.seen(snap.repo_id):
                continue
            try:
                created = model_created_from_api(item, observed)
            except SchemaError:
                continue  # not a model.created: the uploads stream or the sweep letters it
            claimed = self._sight.claim(created)
            if claimed is not None:
                first.append(claimed)
        return out, first

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
