"""The new-uploads stream: ``GET /api/models?sort=createdAt`` (always newest first)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, Self

import httpx

from hubwatch import metrics
from hubwatch.errors import SchemaError
from hubwatch.events import DeadLetter, ModelCreated, format_datetime, parse_datetime
from producers._pagination import iter_pages
from producers._ratelimit import RequestBudget
from producers.checkpoint import CheckpointStore
from producers.first_seen import FirstSight
from producers.hub import EXPAND_FIELDS, model_created_from_api, now_utc
from producers.publish import EventPublisher
from producers.state import StateStore
from producers.tracking import Tracker

__all__ = ["WATERMARK_MARK", "HubUploadsPoller", "Seen", "reject"]

log = logging.getLogger(__name__)

WATERMARK_MARK = "hub.uploads.watermark"
"The uploads stream's watermark in the state store, for the sweep: what is newer is its."


@dataclass(slots=True)
class UploadsCheckpoint:
    """Where the stream stands: the createdAt watermark and what sits near it."""

    watermark: datetime | None
    recent: dict[str, str]
    "repo id -> createdAt of events emitted within the overlap window; stops re-emits."
    rejected: list[str]
    "Fingerprints of recent dead-lettered items, so one bad item is reported once."

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        mark = data.get("watermark")
        return cls(
            watermark=parse_datetime(mark) if isinstance(mark, str) else None,
            recent=dict(data.get("recent") or {}),
            rejected=list(data.get("rejected") or []),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "watermark": format_datetime(self.watermark) if self.watermark else None,
            "recent": self.recent,
            "rejected": self.rejected[-10_000:],
        }


class Seen(Protocol):
    def __contains__(self, fingerprint: object) -> bool: ...
    def add(self, fingerprint: str) -> None: ...


async def reject(
    publisher: EventPublisher,
    *,
    stage: str,
    source: str,
    item: object,
    error: SchemaError,
    seen: Seen | StateStore | None = None,
) -> str:
    """Dead-letter one upstream item, once per fingerprint when ``seen`` is given (a set,
    or the state store, which keeps one set per stage).

    The letter is flushed before it is remembered, so a crash can repeat it but never
    lose it. Dead letters are rare; the extra flush costs nothing that matters.
    """
    if isinstance(seen, StateStore):
        seen = seen.rejected(stage)
    payload = json.dumps(item, ensure_ascii=False, default=str)
    fingerprint = hashlib.sha256(f"{stage}\x1f{payload}".encode()).hexdigest()[:24]
    if seen is not None and fingerprint in seen:
        return fingerprint
    key = item.get("id") if isinstance(item, Mapping) else None
    letter = DeadLetter.of(
        stage=stage,
        error=error,
        source=source,
        key=key if isinstance(key, str) else None,
        payload=payload,
    )
    log.warning("%s: dead-lettered an item (%s)", stage, error)
    await publisher.dead_letter(letter)
    await publisher.flush()
    if seen is not None:
        seen.add(fingerprint)
    return fingerprint


class HubUploadsPoller:
    """Each poll walks pages until createdAt falls below the watermark less the overlap
    window, publishes what it has not emitted before, flushes the publisher, and only then
    moves the checkpoint. A crash between publish and checkpoint re-emits events with the
    same ids, which the processors deduplicate; nothing is skipped.
    """

    name = "hub.uploads"

    def __init__(
        self,
        client: httpx.AsyncClient,
        publisher: EventPublisher,
        checkpoints: CheckpointStore,
        *,
        overlap: timedelta,
        initial_lookback: timedelta | None,
        page_limit: int = 500,
        budget: RequestBudget | None = None,
        tracker: Tracker | None = None,
    ) -> None:
        self._client = client
        self._publisher = publisher
        self._checkpoints = checkpoints
        self._overlap = overlap
        self._initial_lookback = initial_lookback
        self._page_limit = page_limit
        self._budget = budget
        # Other streams can see a model first (edits, engagement, the sweep): the state
        # store decides which one reports it.
        self._sight = (
            None
            if tracker is None
            else FirstSight(tracker, self.name, overlap=overlap, initial_lookback=initial_lookback)
        )

    def _params(self) -> list[tuple[str, str]]:
        return [("sort", "createdAt"), ("limit", str(self._page_limit))] + [
            ("expand", field) for field in EXPAND_FIELDS
        ]

    async def poll_once(self) -> int:
        """One poll; returns how many new models it published."""
        state = UploadsCheckpoint.from_json(self._checkpoints.load())
        observed_at = now_utc()
        if state.watermark is not None:
            floor: datetime | None = state.watermark - self._overlap
        elif self._initial_lookback is not None:
            floor = observed_at - self._initial_lookback
        else:
            floor = None

        if self._sight is not None:
            self._sight.begin()
        listed: list[ModelCreated] = []
        "Every model above the floor not handled before, reported here or by another stream."
        fresh: list[ModelCreated] = []
        rejected = set(state.rejected)
        source = f"{self._client.base_url}/api/models"

        async def rejected_item(item: object, error: SchemaError) -> None:
            before = len(rejected)
            fingerprint = await reject(
                self._publisher,
                stage="producer.hub",
                source=source,
                item=item,
                error=error,
                seen=rejected,
            )
            if len(rejected) > before:
                state.rejected.append(fingerprint)

        cut_short = False
        try:
            async for page in iter_pages(
                self._client, "/api/models", self._params(), budget=self._budget, urgent=True
            ):
                reached_floor = False
                for item in page:
                    try:
                        event = model_created_from_api(item, observed_at)
                    except SchemaError as error:
                        await rejected_item(item, error)
                        continue
                    if floor is not None and (event.created_at is None or event.created_at < floor):
                        # Descending order: everything after this is older still.
                        reached_floor = True
                        break
                    if _emitted(state, event):
                        continue
                    listed.append(event)
                    if self._sight is None:
                        fresh.append(dataclasses.replace(event, first_seen_at=observed_at))
                    elif (claimed := self._sight.claim(event)) is not None:
                        fresh.append(claimed)
                if reached_floor:
                    break
        except SchemaError as error:
            if error.reason != "cross_origin_link":
                raise
            # Keep what the pages before it gave; the watermark stays, so the pages not
            # read are read again next round (what was published is in ``recent``).
            await rejected_item({"link": error.detail}, error)
            cut_short = True

        fresh.reverse()  # oldest first, as they were uploaded
        for event in fresh:
            await self._publisher.publish(event)
        await self._publisher.flush()
        if self._sight is not None:
            self._sight.record(fresh)

        self._advance(state, listed, move_watermark=not cut_short)
        self._checkpoints.save(state.to_json())
        if state.watermark is not None:
            metrics.WATERMARK.labels(self.name).set(state.watermark.timestamp())
            if self._sight is not None:
                store = self._sight.tracker.store
                with store.transaction():
                    store.set_mark(WATERMARK_MARK, format_datetime(state.watermark))
        if fresh:
            log.info(
                "hub uploads: %d new, watermark %s",
                len(fresh),
                format_datetime(state.watermark) if state.watermark else "-",
            )
        return len(fresh)

    def _advance(
        self, state: UploadsCheckpoint, fresh: list[ModelCreated], *, move_watermark: bool = True
    ) -> None:
        for event in fresh:
            if event.created_at is not None:
                state.recent[event.repo_id] = format_datetime(event.created_at)
                if not move_watermark:
                    continue
                if state.watermark is None or event.created_at > state.watermark:
                    state.watermark = event.created_at
        if state.watermark is not None:
            keep_from = state.watermark - self._overlap
            state.recent = {
                rid: at for rid, at in state.recent.items() if parse_datetime(at) >= keep_from
            }


def _emitted(state: UploadsCheckpoint, event: ModelCreated) -> bool:
    """Emitted within the overlap window already (as the repo created then: one deleted
    and re-created under its name is new)."""
    at = state.recent.get(event.repo_id)
    return at is not None and (event.created_at is None or at == format_datetime(event.created_at))
