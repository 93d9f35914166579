"""The Hugging Face Hub: API payloads to events (pure), and the new-uploads poller."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import httpx

from hubwatch import metrics
from hubwatch.errors import SchemaError
from hubwatch.events import (
    DeadLetter,
    ModelCreated,
    format_datetime,
    parse_datetime,
)
from producers._pagination import iter_pages
from producers.checkpoint import CheckpointStore
from producers.publish import EventPublisher

__all__ = [
    "EXPAND_FIELDS",
    "HubUploadsPoller",
    "model_created_from_api",
    "now_utc",
]

log = logging.getLogger(__name__)

# One list call carries everything derivation needs: no per-model info calls.
EXPAND_FIELDS = (
    "author",
    "baseModels",
    "cardData",
    "config",
    "createdAt",
    "downloads",
    "gated",
    "lastModified",
    "library_name",
    "likes",
    "pipeline_tag",
    "private",
    "safetensors",
    "sha",
    "siblings",
    "tags",
)

# Every repo created before the Hub stored creation dates carries this createdAt.
CREATED_AT_PLACEHOLDER = "2022-03-02T23:29:04.000Z"
_PLACEHOLDER = parse_datetime(CREATED_AT_PLACEHOLDER)

# The Hub's repo ids: optional namespace, then name; letters, digits, - _ . only.
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[\w.-]{1,96}$")


def now_utc() -> datetime:
    """Now, at the millisecond precision events carry."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def model_created_from_api(item: object, observed_at: datetime) -> ModelCreated:
    """One ``GET /api/models`` item to a :class:`ModelCreated`.

    Required: ``id``. Optional fields missing become None or empty; unknown keys are
    ignored; a field of the wrong type raises :class:`SchemaError` naming it.
    """
    if not isinstance(item, Mapping):
        raise SchemaError("bad_type", "model item is not an object")
    repo_id = item.get("id")
    if repo_id is None:
        raise SchemaError("missing_field", "id")
    if not isinstance(repo_id, str):
        raise SchemaError("bad_type", "id: expected str")
    if not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise SchemaError("bad_repo_id", repr(repo_id)[:200])

    card = _opt(item, "cardData", Mapping) or {}
    config = _opt(item, "config", Mapping) or {}
    safetensors = _opt(item, "safetensors", Mapping) or {}
    base_models = _opt(item, "baseModels", Mapping) or {}
    gated = item.get("gated")
    if gated is not None and not isinstance(gated, (bool, str)):
        raise SchemaError("bad_type", "gated: expected bool or str")

    return ModelCreated(
        repo_id=repo_id,
        created_at=_created_at(item.get("createdAt")),
        observed_at=observed_at,
        author=_opt(item, "author", str),
        sha=_opt(item, "sha", str),
        last_modified=_opt_datetime(item, "lastModified"),
        private=_opt(item, "private", bool),
        gated=None if gated is None else str(gated).lower(),
        pipeline_tag=_opt(item, "pipeline_tag", str),
        library_name=_opt(item, "library_name", str),
        tags=_str_tuple(item.get("tags"), "tags"),
        card_base_models=_base_model_ids(card.get("base_model"), "cardData.base_model"),
        card_base_model_relation=_opt(card, "base_model_relation", str),
        base_models=tuple(
            _str_field(m, "id", "baseModels.models")
            for m in _list(base_models.get("models"), "baseModels.models")
        ),
        base_models_relation=_opt(base_models, "relation", str),
        architectures=_str_tuple(config.get("architectures"), "config.architectures"),
        model_type=_opt(config, "model_type", str),
        parameters=_opt_int(safetensors, "total", "safetensors.total"),
        downloads=_opt_int(item, "downloads", "downloads"),
        likes=_opt_int(item, "likes", "likes"),
        siblings=tuple(
            _str_field(s, "rfilename", "siblings") for s in _list(item.get("siblings"), "siblings")
        ),
    )


def _created_at(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SchemaError("bad_type", "createdAt: expected str")
    parsed = parse_datetime(value)
    return None if parsed == _PLACEHOLDER else parsed


def _opt(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        raise SchemaError("bad_type", f"{key}: expected {kind.__name__}")
    return value


def _opt_int(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SchemaError("bad_type", f"{where}: expected a non-negative int")
    return value


def _opt_datetime(data: Mapping[str, Any], key: str) -> datetime | None:
    value = _opt(data, key, str)
    return None if value is None else parse_datetime(value)


def _list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SchemaError("bad_type", f"{where}: expected a list")
    return value


def _str_tuple(value: object, where: str) -> tuple[str, ...]:
    items = _list(value, where)
    if not all(isinstance(v, str) for v in items):
        raise SchemaError("bad_type", f"{where}: expected a list of str")
    return tuple(items)


def _str_field(item: object, key: str, where: str) -> str:
    if not isinstance(item, Mapping) or not isinstance(item.get(key), str):
        raise SchemaError("bad_type", f"{where}: expected objects with a str {key!r}")
    return str(item[key])


def _base_model_ids(value: object, where: str) -> tuple[str, ...]:
    """``cardData.base_model``: a string or a list of strings (2+ means a merge)."""
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    return tuple(v.strip() for v in _str_tuple(values, where) if v.strip())


# --- the poller --------------------------------------------------------------------------


@dataclass(slots=True)
class UploadsCheckpoint:
    """Where the new-uploads stream stands: the createdAt watermark and what sits near it."""

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


class HubUploadsPoller:
    """Polls ``GET /api/models?sort=createdAt`` (always newest first) for new uploads.

    Each poll walks pages until createdAt falls below the watermark less the overlap
    window, publishes what it has not emitted before, flushes the publisher, and only then
    moves the checkpoint. A crash between publish and checkpoint re-emits events with the
    same ids, which the processors deduplicate; nothing is skipped.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        publisher: EventPublisher,
        checkpoints: CheckpointStore,
        *,
        overlap: timedelta,
        initial_lookback: timedelta | None,
        page_limit: int = 500,
    ) -> None:
        self._client = client
        self._publisher = publisher
        self._checkpoints = checkpoints
        self._overlap = overlap
        self._initial_lookback = initial_lookback
        self._page_limit = page_limit

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

        fresh: list[ModelCreated] = []
        rejected = set(state.rejected)
        url = "/api/models"
        async for page in iter_pages(self._client, url, self._params()):
            reached_floor = False
            for item in page:
                try:
                    event = model_created_from_api(item, observed_at)
                except SchemaError as error:
                    await self._reject(item, error, rejected, state)
                    continue
                if floor is not None and (event.created_at is None or event.created_at < floor):
                    # Descending order: everything after this is older still.
                    reached_floor = True
                    break
                if event.repo_id not in state.recent:
                    fresh.append(event)
            if reached_floor:
                break

        fresh.reverse()  # oldest first, as they were uploaded
        for event in fresh:
            await self._publisher.publish(event)
        await self._publisher.flush()

        self._advance(state, fresh)
        self._checkpoints.save(state.to_json())
        if state.watermark is not None:
            metrics.WATERMARK.labels("hub.uploads").set(state.watermark.timestamp())
        if fresh:
            log.info(
                "hub uploads: %d new, watermark %s",
                len(fresh),
                format_datetime(state.watermark) if state.watermark else "-",
            )
        return len(fresh)

    async def _reject(
        self, item: object, error: SchemaError, rejected: set[str], state: UploadsCheckpoint
    ) -> None:
        payload = json.dumps(item, ensure_ascii=False, default=str)
        fingerprint = hashlib.sha256(payload.encode()).hexdigest()[:24]
        if fingerprint in rejected:
            return
        rejected.add(fingerprint)
        state.rejected.append(fingerprint)
        key = item.get("id") if isinstance(item, Mapping) else None
        letter = DeadLetter.of(
            stage="producer.hub",
            error=error,
            source=str(self._client.base_url) + "/api/models",
            key=key if isinstance(key, str) else None,
            payload=payload,
        )
        log.warning("hub uploads: dead-lettered an item (%s)", error)
        await self._publisher.dead_letter(letter)

    def _advance(self, state: UploadsCheckpoint, fresh: list[ModelCreated]) -> None:
        for event in fresh:
            if event.created_at is not None:
                state.recent[event.repo_id] = format_datetime(event.created_at)
                if state.watermark is None or event.created_at > state.watermark:
                    state.watermark = event.created_at
        if state.watermark is not None:
            keep_from = state.watermark - self._overlap
            state.recent = {
                rid: at for rid, at in state.recent.items() if parse_datetime(at) >= keep_from
            }

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Poll every ``interval`` seconds until ``stop`` is set; upstream errors are logged
        and retried next round, so the poller never loses its place."""
        from hubwatch.errors import SourceError

        while not stop.is_set():
            try:
                await self.poll_once()
            except (SourceError, SchemaError) as exc:
                log.warning("hub uploads: poll failed, will retry: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
