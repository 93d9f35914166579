"""The reconciliation sweep: now and then, walk the createdAt listing over the last days and
report every repo no stream has seen. A repo created privately and made public days later is
listed below the uploads stream's watermark; if it is not edited or trending either, this
stream is what finds it.

The walk asks for ids and createdAt only (1,000 per page, a few pages a day's worth), then
looks up each unseen repo's full record (``/api/models/{id}``), so a sweep that finds
nothing costs a handful of requests. It also looks up repos a webhook named before any
listing showed them. Not urgent: it waits for the budget behind everything else.

Three instances run (``producers/runner.py``), each its own stream: the hourly sweep over
``HUBWATCH_RECONCILE_DAYS``; a daily deep sweep further back, bounded in pages, within the
same share; and ``hub.first_seen``, which walks no listing and only looks up, within seconds,
the repos a webhook (or an engagement bulk call) named before any listing showed them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import httpx

from hubwatch.errors import NotFound, SchemaError
from hubwatch.events import ModelCreated, parse_datetime
from producers._http import request
from producers._pagination import iter_pages
from producers._ratelimit import RequestBudget
from producers.first_seen import FirstSight
from producers.hub import EXPAND_FIELDS, listed_id_and_created, model_created_from_api, now_utc
from producers.hub_uploads import WATERMARK_MARK, reject
from producers.publish import EventPublisher
from producers.tracking import Tracker

__all__ = ["ReconcilePoller"]

log = logging.getLogger(__name__)


class ReconcilePoller:
    def __init__(
        self,
        client: httpx.AsyncClient,
        publisher: EventPublisher,
        tracker: Tracker,
        *,
        days: float,
        overlap: timedelta,
        initial_lookback: timedelta | None,
        lookups_per_round: int = 200,
        page_limit: int = 1000,
        budget: RequestBudget | None = None,
        name: str = "hub.reconcile",
        listing: bool = True,
        max_pages: int | None = None,
    ) -> None:
        """``listing``: walk the createdAt listing back ``days`` (at most ``max_pages``
        pages); without it, only look up the repos heard of."""
        self.name = name
        self._listing = listing
        self._max_pages = max_pages
        self._client = client
        self._publisher = publisher
        self._store = tracker.store
        self._sight = FirstSight(
            tracker, self.name, overlap=overlap, initial_lookback=initial_lookback
        )
        self._window = timedelta(days=days)
        self._overlap = overlap
        self._lookups = max(1, lookups_per_round)
        self._page_limit = page_limit
        self._budget = budget

    async def poll_once(self) -> int:
        self._sight.begin()
        observed_at = now_utc()
        floor = observed_at - self._window
        if self._sight.horizon is not None:
            # Older repos were never the uploads stream's to report: not missed, not late.
            floor = max(floor, self._sight.horizon)
        # Younger ones are within the uploads stream's overlap, or above its watermark when
        # it lags: its to report, not missed.
        mark = self._store.mark(WATERMARK_MARK)
        uploads_at = observed_at if mark is None else min(observed_at, parse_datetime(mark))
        newest = uploads_at - self._overlap
        # A repo another stream has in flight is its to report (noted again should it fail).
        wanted: dict[str, str] = {
            repo_id: stream
            for repo_id, stream in self._store.heard(self._lookups)
            if not self._store.in_flight(repo_id, self.name)
        }
        listed: dict[str, datetime] = {}
        "createdAt of the repos the listing shows (one of a name re-created is new)."
        if self._listing:
            await self._walk(floor, newest, wanted, listed)
        if not wanted:
            return 0
        return await self._report(wanted, listed, observed_at)

    async def _walk(
        self, floor: datetime, newest: datetime, wanted: dict[str, str], listed: dict[str, datetime]
    ) -> None:
        """The createdAt listing from the newest down to ``floor``: repos in it not seen."""
        params = [
            ("sort", "createdAt"),
            ("limit", str(self._page_limit)),
            ("expand", "createdAt"),
        ]
        pages = 0
        async for page in iter_pages(self._client, "/api/models", params, budget=self._budget):
            pages += 1
            done = False
            for item in page:
                repo_id, created_at = listed_id_and_created(item)
                if created_at is None or repo_id is None:
                    continue  # the uploads stream letters a malformed item
                if created_at < floor:
                    done = True
                    break
                if created_at <= newest and not self._sight.seen(repo_id, created_at):
                    wanted.setdefault(repo_id, self.name)
                    listed[repo_id] = created_at
            if done or len(wanted) >= self._lookups:
                break
            if self._max_pages is not None and pages >= self._max_pages:
                log.info("%s: stopped at its bound of %d pages", self.name, pages)
                break

    async def _report(
        self, wanted: dict[str, str], listed: dict[str, datetime], observed_at: datetime
    ) -> int:
        """Look up each wanted repo and report those still unseen as first seen."""
        first: list[ModelCreated] = []
        found_by: dict[str, str] = {}
        gone: list[str] = []
        for repo_id, stream in list(wanted.items())[: self._lookups]:
            if self._sight.seen(repo_id, listed.get(repo_id)):
                gone.append(repo_id)  # tracked since it was heard of
                continue
            created = await self._look_up(repo_id, observed_at, gone)
            if created is None:
                continue
            claimed = self._sight.claim(created)
            if claimed is not None:
                first.append(claimed)
                found_by[repo_id] = stream

        first.sort(key=lambda e: (e.created_at is None, e.created_at))
        for event in first:
            await self._publisher.publish(event)
        await self._publisher.flush()
        with self._store.transaction():
            self._sight.record(first, found_by=found_by)
            for repo_id in gone:
                self._store.forget_heard(repo_id)
        if first:
            log.info("%s: %d models no stream had reported", self.name, len(first))
        return len(first)

    async def _look_up(
        self, repo_id: str, observed_at: datetime, gone: list[str]
    ) -> ModelCreated | None:
        source = f"/api/models/{repo_id}"
        try:
            body, _ = await request(
                self._client,
                source,
                params=[("expand", f) for f in EXPAND_FIELDS],
                budget=self._budget,
            )
            return model_created_from_api(body, observed_at)
        except NotFound:
            gone.append(repo_id)  # listed a moment ago, gone (or private) again
        except SchemaError as error:
            await reject(
                self._publisher,
                seen=self._store,
                stage="producer.hub.reconcile",
                source=source,
                item=None,
                error=error,
            )
            gone.append(repo_id)
        return None
