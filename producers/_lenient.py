"""Reading optional upstream fields leniently: an optional field of an odd shape is dropped
and counted (``hubwatch_fields_dropped_total{kind, field}``), never the item it sits in.
Only what an event cannot exist without (its id, its identity) is checked strictly, by the
callers, and dead-letters the item."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from hubwatch import metrics
from hubwatch.errors import SchemaError
from hubwatch.events import parse_datetime

__all__ = ["Fields"]


class Fields:
    """The optional fields of one upstream item of ``kind``; ``dropped`` names what was
    left out, in the order met."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.dropped: list[str] = []

    def drop(self, where: str) -> None:
        if where not in self.dropped:
            self.dropped.append(where)
            metrics.FIELDS_DROPPED.labels(self.kind, where).inc()

    def get(
        self, data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str
    ) -> Any:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, kind):
            self.drop(where)
            return None
        return value

    def text(self, data: Mapping[str, Any], key: str, where: str | None = None) -> str | None:
        return self.get(data, key, str, where or key)  # type: ignore[no-any-return]

    def flag(self, data: Mapping[str, Any], key: str, where: str | None = None) -> bool | None:
        return self.get(data, key, bool, where or key)  # type: ignore[no-any-return]

    def mapping(
        self, data: Mapping[str, Any], key: str, where: str | None = None
    ) -> Mapping[str, Any]:
        return self.get(data, key, Mapping, where or key) or {}

    def count(self, data: Mapping[str, Any], key: str, where: str | None = None) -> int | None:
        """A non-negative int (a bool is not a count)."""
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.drop(where or key)
            return None
        return value

    def number(self, data: Mapping[str, Any], key: str, where: str | None = None) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            self.drop(where or key)
            return None
        return float(value)

    def when(self, data: Mapping[str, Any], key: str, where: str | None = None) -> datetime | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return parse_datetime(value)
            except SchemaError:
                pass
        self.drop(where or key)
        return None

    def items(self, value: object, where: str) -> list[Any]:
        """A list (None is empty); anything else is dropped."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.drop(where)
            return []
        return value

    def strings(self, value: object, where: str) -> tuple[str, ...]:
        """The strings of a list; other entries are dropped."""
        items = self.items(value, where)
        kept = tuple(v for v in items if isinstance(v, str))
        if len(kept) != len(items):
            self.drop(where)
        return kept

    def keyed(self, value: object, key: str, where: str) -> tuple[str, ...]:
        """``[{key: str}, …]`` to the strings; entries of another shape are dropped."""
        items = self.items(value, where)
        kept = tuple(
            str(v[key]) for v in items if isinstance(v, Mapping) and isinstance(v.get(key), str)
        )
        if len(kept) != len(items):
            self.drop(where)
        return kept
