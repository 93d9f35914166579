"""The edits stream: ``GET /api/models?sort=lastModified``, emitting ``model.updated`` when a
model's tags, base models or card relation change. Commits that change none of them are the
community stream's business, not an edit."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import httpx

from hubwatch import metrics
from hubwatch.errors import SchemaError
from hubwatch.events import ModelCreated, ModelUpdated, format_datetime, parse_datetime
from producers._pagination import iter_pages
from producers._ratelimit import RequestBudget
from producers.first_seen import FirstSight
from producers.hub import (
    EXPAND_FIELDS,
    changed_fields,
    model_created_from_api,
    model_updated,
    named_bases,
    now_utc,
    relation_fingerprint,
)
from producers.hub_uploads import reject
from producers.publish import EventPublisher
from producers.tracking import Tracker

__all__ = ["HubEditsPoller"]

log = logging.getLogger(__name__)
_MARK = "hub.edits.watermark"


class HubEditsPoller:
    """Also a first sight of any model hubwatch has not seen (an edit of a repo listed
    late, or older than the uploads stream's lookback): reported as ``model.created``."""

    name = "hub.edits"

    def __init__(
        self,
        client: httpx.AsyncClient,
        publisher: EventPublisher,
        tracker: Tracker,
        *,
        overlap: timedelta,
        initial_lookback: timedelta | None,
        page_limit: int = 500,
        budget: RequestBudget | None = None,
    ) -> None:
        self._client = client
        self._publisher = publisher
        self._tracker = tracker
        self._store = tracker.store
        self._sight = FirstSight(
            tracker, self.name, overlap=overlap, initial_lookback=initial_lookback
        )
        self._overlap = overlap
        self._initial_lookback = initial_lookback
        self._page_limit = page_limit
        self._budget = budget

    async def poll_once(self) -> int:
        observed_at = now_utc()
        self._sight.begin()
        mark = self._store.mark(_MARK)
        watermark = parse_datetime(mark) if mark else None
        if watermark is not None:
            floor: datetime | None = watermark - self._overlap
        elif self._initial_lookback is not None:
            floor = observed_at - self._initial_lookback
        else:
            floor = None
        params = [("sort", "lastModified"), ("limit", str(self._page_limit))] + [
            ("expand", f) for f in EXPAND_FIELDS
        ]
        updates: list[tuple[ModelUpdated, ModelCreated]] = []
        first: list[ModelCreated] = []
        "Models no stream had seen, in listing order."
        order: list[ModelUpdated | ModelCreated] = []
        newest = watermark
        source = f"{self._client.base_url}/api/models?sort=lastModified"
        try:
            async for page in iter_pages(self._client, "/api/models", params, budget=self._budget):
                done = False
                for item in page:
                    try:
                        created = model_created_from_api(item, observed_at)
                        if created.last_modified is None:
                            raise SchemaError("missing_field", "lastModified")
                    except SchemaError as error:
                        await reject(
                            self._publisher,
                            seen=self._store,
                            stage="producer.hub.edits",
                            source=source,
                            item=item,
                            error=error,
                        )
                        continue
                    if floor is not None and created.last_modified < floor:
                        done = True
                        break
                    if newest is None or created.last_modified > newest:
                        newest = created.last_modified
                    if not self._sight.seen(created.repo_id, created.created_at):
                        # Whatever its createdAt: the uploads stream may never list it
                        # (made public days after it was created), or has not yet.
                        claimed = self._sight.claim(created)
                        if claimed is not None:
                            first.append(claimed)
                            order.append(claimed)
                        continue
                    fingerprint = relation_fingerprint(created)
                    known = self._store.fingerprint(created.repo_id)
                    if known == fingerprint:
                        continue  # nothing derivation-relevant changed (or already reported)
                    update = model_updated(created, changed_fields(known, fingerprint))
                    updates.append((update, created))
                    order.append(update)
                if done:
                    break

        except SchemaError as error:
            if error.reason != "cross_origin_link":
                raise
            # Keep what the pages before it gave; the mark stays, so the rest is read
            # again next round (the fingerprints stored below keep those edits once).
            await reject(
                self._publisher,
                seen=self._store,
                stage="producer.hub.edits",
                source=source,
                item={"link": error.detail},
                error=error,
            )
            newest = watermark

        order.reverse()  # oldest edit first
        for event in order:
            await self._publisher.publish(event)
        await self._publisher.flush()
        # State moves only after the events are durable; no await inside the transaction,
        # so pollers sharing the store never interleave in it.
        with self._store.transaction():
            self._sight.record(first)
            for _, created in updates:
                self._store.set_fingerprint(created.repo_id, relation_fingerprint(created))
                self._store.add_bases(created.repo_id, named_bases(created))
            if newest is not None:
                self._store.set_mark(_MARK, format_datetime(newest))
        if newest is not None:
            metrics.WATERMARK.labels(self.name).set(newest.timestamp())
        if order:
            log.info("hub edits: %d updated models, %d first seen", len(updates), len(first))
        return len(order)
