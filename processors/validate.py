"""What a table will accept, checked before the insert. Pure: no ClickHouse client here.

The checks are derived once from the tables' own column types (``system.columns``, which
:meth:`processors.sinks.ClickHouseWriter.column_types` reads) and the row dataclasses'
fields, not listed per field: a ``UInt64`` column takes ints in [0, 2**64), a
``DateTime64(3)`` one aware datetimes in 1900-2299, a ``Float64`` finite floats (a NaN or an
infinity is not a count or a score), a ``String`` valid UTF-8 of bounded length. Columns that
hold repo ids (named as the Hub names them: ``repo_id``, ``model_id``, …) must have the
shape :func:`hubwatch.events.check_repo_id` accepts. An event with one row that would not
fit is dead-lettered whole, before any of its rows is written.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from hubwatch.errors import SchemaError
from hubwatch.events import Event, check_github_repo, check_repo_id

__all__ = ["MAX_ARRAY_ITEMS", "MAX_STRING_BYTES", "RowValidator", "column_check"]

MAX_STRING_BYTES = 64 * 1024
"A ``String`` value: titles, tags, ids are far below; a dead letter keeps anything longer."
MAX_LOW_CARDINALITY_BYTES = 1024
"A ``LowCardinality(String)`` value (pipeline tags, relations, states): a dictionary entry."
MAX_ARRAY_ITEMS = 10_000

Check = Callable[[Any], None]
"Raises SchemaError if the value does not fit; returns nothing."

_INT_RANGES = {
    f"{sign}Int{bits}": (0, 2**bits - 1) if sign else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    for sign in ("U", "")
    for bits in (8, 16, 32, 64, 128, 256)
}
# ClickHouse's own ranges (https://clickhouse.com/docs/sql-reference/data-types/datetime64).
_DATETIME64_RANGE = (
    datetime(1900, 1, 1, tzinfo=UTC),
    datetime(2299, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC),
)
_DATETIME_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2106, 2, 7, 6, 28, 15, tzinfo=UTC))
_WRAPPER = re.compile(r"^(\w+)\((.*)\)$", re.DOTALL)

# Columns that hold ids, by name (the same name means the same thing in every table).
_HUB_ID_COLUMNS = frozenset(
    {"repo_id", "model_id", "derivative_id", "base_model_id", "root_id", "alias_id", "canonical_id"}
)
_OPTIONAL_HUB_ID_COLUMNS = frozenset({"parent_id"})
_GITHUB_ID_COLUMNS = frozenset({"github_repos"})


def _fail(reason: str, where: str, value: object) -> SchemaError:
    return SchemaError(reason, f"{where}: {value!r:.200}")


def _int_check(low: int, high: int, where: str) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail("bad_type", where, value)
        if not low <= value <= high:
            raise _fail("out_of_range", where, value)

    return check


def _float_check(where: str) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _fail("bad_type", where, value)
        if not math.isfinite(value):
            raise _fail("not_finite", where, value)

    return check


def _bool_check(where: str) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, bool):
            raise _fail("bad_type", where, value)

    return check


def _string_check(limit: int, where: str) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, str):
            raise _fail("bad_type", where, value)
        if value.isascii():  # the common case: one byte a character, nothing to encode
            size = len(value)
        else:
            try:
                size = len(value.encode("utf-8"))
            except UnicodeEncodeError:  # a lone surrogate: JSON carries it, UTF-8 cannot
                raise _fail("bad_string", where, value) from None
        if size > limit:
            raise SchemaError("too_long", f"{where}: {size} bytes, at most {limit}")

    return check


def _datetime_check(bounds: tuple[datetime, datetime], where: str) -> Check:
    low, high = bounds

    def check(value: Any) -> None:
        if not isinstance(value, datetime):
            raise _fail("bad_type", where, value)
        if value.tzinfo is None:
            raise _fail("naive_datetime", where, value)
        if not low <= value <= high:
            raise _fail("out_of_range", where, value)

    return check


def _nullable(inner: Check) -> Check:
    def check(value: Any) -> None:
        if value is not None:
            inner(value)

    return check


def _array(inner: Check, where: str) -> Check:
    def check(value: Any) -> None:
        if not isinstance(value, tuple | list):
            raise _fail("bad_type", where, value)
        if len(value) > MAX_ARRAY_ITEMS:
            raise SchemaError("too_long", f"{where}: {len(value)} items")
        for item in value:
            inner(item)

    return check


def _no_check(value: Any) -> None:
    return None


def column_check(type_name: str, where: str = "value", *, low_cardinality: bool = False) -> Check:
    """The check for a value of the ClickHouse type ``type_name`` (as ``system.columns``
    spells it). Types hubwatch does not write (aggregate states, …) are not checked."""
    type_name = type_name.strip()
    if match := _WRAPPER.match(type_name):
        wrapper, args = match[1], match[2]
        if wrapper == "Nullable":
            return _nullable(column_check(args, where, low_cardinality=low_cardinality))
        if wrapper == "LowCardinality":
            return column_check(args, where, low_cardinality=True)
        if wrapper == "Array":
            return _array(column_check(args, where), where)
        if wrapper == "DateTime64":
            return _datetime_check(_DATETIME64_RANGE, where)
        if wrapper == "DateTime":
            return _datetime_check(_DATETIME_RANGE, where)
        return _no_check
    if type_name in _INT_RANGES:
        return _int_check(*_INT_RANGES[type_name], where)
    if type_name in ("Float32", "Float64"):
        return _float_check(where)
    if type_name == "Bool":
        return _bool_check(where)
    if type_name == "String":
        limit = MAX_LOW_CARDINALITY_BYTES if low_cardinality else MAX_STRING_BYTES
        return _string_check(limit, where)
    if type_name == "DateTime":
        return _datetime_check(_DATETIME_RANGE, where)
    return _no_check


def _id_check(column: str, where: str) -> Check | None:
    rule: Callable[[object, str], str] | None = None
    if column in _HUB_ID_COLUMNS | _OPTIONAL_HUB_ID_COLUMNS:
        rule = check_repo_id
    elif column in _GITHUB_ID_COLUMNS:
        rule = check_github_repo
    if rule is None:
        return None
    optional = column in _OPTIONAL_HUB_ID_COLUMNS  # empty for a root

    def check(value: Any) -> None:
        for item in value if isinstance(value, tuple | list) else (value,):
            if item is not None and (item or not optional):
                rule(item, where)

    return check


def _checks_of(
    table: str, row_type: type, types: Mapping[str, str]
) -> list[tuple[str, list[Check]]]:
    """Per field of ``row_type``: its checks, from its column's type and name."""
    out = []
    for f in dataclasses.fields(row_type):
        where = f"{table}.{f.name}"
        checks = []
        if f.name in types:
            checks.append(column_check(types[f.name], where))
        if (id_check := _id_check(f.name, where)) is not None:
            checks.append(id_check)
        out.append((f.name, checks))
    return out


class RowValidator:
    """Checks rows against the column types of their tables, and events' keys against the
    repo-id rules; built once per process from ``{table: {column: type}}``."""

    def __init__(self, column_types: Mapping[str, Mapping[str, str]]) -> None:
        self._types = column_types
        self._checks: dict[type, list[tuple[str, list[Check]]]] = {}

    def check_event(self, event: Event, rows: Iterable[tuple[str, Any]]) -> None:
        """SchemaError unless ``event``'s key and every ``(table, row)`` it becomes fit."""
        if event.KIND.startswith("github."):
            check_github_repo(event.key, f"{event.KIND} key")
        else:
            check_repo_id(event.key, f"{event.KIND} key")
        for table, row in rows:
            self.check_row(table, row)

    def check_row(self, table: str, row: Any) -> None:
        checks = self._checks.get(type(row))
        if checks is None:
            checks = self._checks[type(row)] = _checks_of(
                table, type(row), self._types.get(table, {})
            )
        for name, field_checks in checks:
            value = getattr(row, name)
            for check in field_checks:
                check(value)
