"""Engagement snapshots (``model.snapshot``): the Hub keeps no time series, so hubwatch
samples one. Each round spends a bounded share of the Hub budget: one bulk list call for the
trending models (a thousand snapshots for one request), then per-model calls for the most
overdue tracked models, new and fast-moving ones due often, the long tail rarely.

The bulk call asks for everything ``model.created`` needs too: a trending model hubwatch has
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

__all__ = ["EngagementPoller"]

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
        bulk = now >= self._next_bulk
        if bulk:
            used += 1
            bulk_snaps, first = await self._bulk()
            for snap in bulk_snaps:
                snapshots[snap.repo_id] = snap
        store = self._tracker.store
        for model in store.due_snapshots(now, self._requests - used):
            if model.repo_id in snapshots:
                continue
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
                self._record(snap, now)
            for repo_id in gone:
                store.schedule_snapshot(repo_id, now + gone_recheck(store.strike_gone(repo_id)))
        return len(snapshots)

    async def _bulk(self) -> tuple[list[ModelSnapshot], list[ModelCreated]]:
        """Snapshots of the trending models, and first sights of those never seen."""
        params = [("sort", "trendingScore"), ("limit", str(self._bulk_limit)), *self._bulk_expand]
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
                    source="/api/models?sort=trendingScore",
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

    def _record(self, snap: ModelSnapshot, now: float) -> None:
        store = self._tracker.store
        model = store.get(snap.repo_id)
        if model is None:
            return  # a trending model hubwatch does not follow: the snapshot is enough
        downloads = (
            snap.downloads_all_time if snap.downloads_all_time is not None else snap.downloads
        )
        velocity = 0.0
        if model.last_snapshot is not None and now > model.last_snapshot:
            hours = (now - model.last_snapshot) / 3600
            gained = max(0, (downloads or 0) - (model.downloads or 0)) + max(
                0, (snap.likes or 0) - (model.likes or 0)
            )
            velocity = gained / hours
        age = now - model.created_at if model.created_at is not None else None
        interval = self._tracker.schedule.interval(
            age=age, velocity=velocity, downloads=snap.downloads
        )
        store.record_snapshot(
            snap.repo_id,
            at=now,
            downloads=downloads,
            likes=snap.likes,
            velocity=velocity,
            next_snapshot=now + interval,
        )
