"""Events cut down to fit one Kafka record (:data:`~hubwatch.events.MAX_RECORD_BYTES`).

A repo with a huge file list makes a ``model.created`` larger than the broker takes; sent
as is, it fails every round and stops upload detection. It is trimmed instead, least
needed first (file names, keeping the repo's top level; card scores; tags, keeping the
``base_model:`` ones; linked GitHub repos), each cut named in ``dropped`` and counted. Only
an event that still cannot fit is refused (``record_too_large``), for a dead letter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from hubwatch import metrics
from hubwatch.errors import SchemaError
from hubwatch.events import MAX_RECORD_BYTES, Event, ModelCreated, encode

__all__ = ["fit"]

_HEADROOM = 512
"Bytes kept for the record's and batch's own headers and the key."


def fit(event: Event, limit: int = MAX_RECORD_BYTES) -> tuple[Event, bytes]:
    """``event`` (or a trimmed copy) and its encoding, which fits a record of ``limit``."""
    value = encode(event)
    if _fits(event, value, limit):
        return event, value
    if isinstance(event, ModelCreated):
        event, value = _trim(event, limit)
        if _fits(event, value, limit):
            return event, value
    raise SchemaError(
        "record_too_large",
        f"{event.KIND} {event.key}: {len(value):,} bytes encoded, a record holds {limit:,}",
    )


def _fits(event: Event, value: bytes, limit: int) -> bool:
    return len(value) + len(event.key.encode()) + _HEADROOM <= limit


def _trim(event: ModelCreated, limit: int) -> tuple[ModelCreated, bytes]:
    top_level = [s for s in event.siblings if "/" not in s]
    base_tags = [t for t in event.tags if t.startswith("base_model:")]
    steps: list[tuple[str, list[object]]] = [
        ("siblings", [*top_level, *(s for s in event.siblings if "/" in s)]),
        ("card_scores", []),
        ("tags", [*base_tags, *(t for t in event.tags if not t.startswith("base_model:"))]),
        ("github_repos", []),
    ]
    value = encode(event)
    for name, ordered in steps:
        if _fits(event, value, limit):
            break
        before = len(getattr(event, name))
        event = _longest_prefix(event, name, ordered, lambda e: _fits(e, encode(e), limit))
        if len(getattr(event, name)) < before:
            event = dataclasses.replace(event, dropped=(*event.dropped, f"{name}:trimmed"))
            metrics.RECORDS_TRIMMED.labels(event.KIND, name).inc()
        value = encode(event)
    return event, value


def _longest_prefix(
    event: ModelCreated, name: str, ordered: list[object], ok: Callable[[ModelCreated], bool]
) -> ModelCreated:
    """``event`` with the longest prefix of ``ordered`` as field ``name`` that is ``ok``
    (a binary search: a handful of encodings, whatever the list's length)."""
    low, high = 0, len(ordered)  # the answer lies in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        if ok(dataclasses.replace(event, **{name: tuple(ordered[:middle])})):
            low = middle
        else:
            high = middle - 1
    return dataclasses.replace(event, **{name: tuple(ordered[:low])})
