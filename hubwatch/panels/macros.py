"""The Grafana ClickHouse data source's macros and Grafana's variable interpolation, so a
panel's SQL runs the same outside Grafana (the built-in view, the tests, the benchmark).

As grafana-clickhouse-datasource documents and implements them (v4, ``pkg/macros`` and the
front end's ``applyConditionalAll``), in Grafana's order: ``$__conditionalAll`` first (the
front end), then the dashboard's variables and Grafana's globals (``$__from``,
``$__interval``, ...), then the back end's macros:

=============================  ===============================================================
``$__timeFilter(c)``           ``c >= toDateTime(FROM_S) AND c <= toDateTime(TO_S)``
``$__timeFilter_ms(c)``        ``c >= fromUnixTimestamp64Milli(FROM_MS) AND c <= ...(TO_MS)``
``$__dateFilter(c)``           ``c >= toDate('YYYY-MM-DD') AND c <= toDate('YYYY-MM-DD')``
``$__dateTimeFilter(d, t)``    ``(dateFilter of d) AND (timeFilter of t)``, also ``$__dt``
``$__fromTime`` ``$__toTime``  ``toDateTime(S)``
``$__fromTime_ms`` ...         ``fromUnixTimestamp64Milli(MS)``
``$__timeInterval(c)``         ``toStartOfInterval(toDateTime(c), INTERVAL N second)``
``$__timeInterval_ms(c)``      ``toStartOfInterval(toDateTime64(c, 3), INTERVAL N millisecond)``
``$__interval_s``              ``N`` (the query interval in seconds, at least 1)
``$__conditionalAll(x, $v)``   ``x``, or ``1=1`` when ``$v`` selects every value
=============================  ===============================================================
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hubwatch.errors import HubwatchError

__all__ = [
    "ALL",
    "MacroError",
    "Selection",
    "TimeRange",
    "auto_interval",
    "expand",
    "interpolate",
]

ALL = "$__all"  # Grafana's value of a variable whose "All" option is picked


class MacroError(HubwatchError):
    """A macro with the wrong arguments, or a variable the query uses but was not given."""


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time picker: ``start`` to ``end``, both timezone-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise MacroError("a time range needs timezone-aware datetimes")
        if self.end < self.start:
            raise MacroError("a time range must not end before it starts")

    @classmethod
    def last(cls, span: timedelta, *, now: datetime | None = None) -> TimeRange:
        end = now or datetime.now(UTC)
        return cls(end - span, end)

    @property
    def span(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Selection:
    """A variable's current value: one or several ``values``; ``all`` when its All option is
    picked (``values`` are then every option, what Grafana interpolates for All unless the
    variable has a custom all value)."""

    values: tuple[str, ...]
    all: bool = False
    all_value: str | None = field(default=None)

    @classmethod
    def of(cls, value: str | Sequence[str] | Selection) -> Selection:
        if isinstance(value, Selection):
            return value
        if isinstance(value, str):
            return cls((value,))
        return cls(tuple(value))

    @property
    def multi(self) -> bool:
        return self.all or len(self.values) != 1


# Grafana's nice intervals (kbn.roundInterval's steps), so the built-in view buckets like it.
_NICE = (
    0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600,
    900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800, 2592000, 31536000,
)  # fmt: skip


def auto_interval(
    time_range: TimeRange, *, max_points: int = 500, minimum: timedelta | None = None
) -> timedelta:
    """The query interval Grafana would pick: the span over ``max_points``, rounded up to
    a nice step, at least ``minimum``."""
    raw = time_range.span.total_seconds() / max(1, max_points)
    if minimum is not None:
        raw = max(raw, minimum.total_seconds())
    step = next((s for s in _NICE if s >= raw), _NICE[-1])
    return timedelta(seconds=step)


def expand(
    sql: str,
    time_range: TimeRange,
    *,
    interval: timedelta | None = None,
    variables: Mapping[str, str | Sequence[str] | Selection] | None = None,
) -> str:
    """``sql`` as the plugin sends it to ClickHouse for this time range, query interval
    (default: :func:`auto_interval`) and variable values."""
    interval = interval if interval is not None else auto_interval(time_range)
    selections = {k: Selection.of(v) for k, v in (variables or {}).items()}
    sql = _conditional_all(sql, selections)
    sql = interpolate(sql, selections, time_range=time_range, interval=interval)
    return _backend_macros(sql, time_range, interval)


# --- $__conditionalAll (front end, before interpolation) ----------------------------------

_CONDITIONAL_ALL = "$__conditionalAll("
_VARIABLE_NAME = re.compile(r"(?<=\$\{)\w+(?=[}:])|(?<=\$)\w+")


def _conditional_all(sql: str, selections: Mapping[str, Selection]) -> str:
    # Right to left, as the plugin does, so a nested one is resolved first.
    at = sql.rfind(_CONDITIONAL_ALL)
    while at != -1:
        args, end = _arguments(sql, at + len(_CONDITIONAL_ALL) - 1)
        if len(args) != 2:
            raise MacroError(f"$__conditionalAll needs 2 arguments, got {len(args)}")
        phrase = args[0]
        name = _VARIABLE_NAME.search(args[1].strip())
        if name is not None:
            selection = selections.get(name.group(0))
            if selection is not None and (selection.all or selection.values in ((), ("",))):
                phrase = "1=1"
        sql = sql[:at] + phrase + sql[end:]
        at = sql.rfind(_CONDITIONAL_ALL)
    return sql


def _arguments(sql: str, open_at: int) -> tuple[list[str], int]:
    """The comma-separated arguments of the call whose ``(`` is at ``open_at`` (commas in
    nested parentheses or quotes belong to the argument), and the index after its ``)``."""
    depth, quote, start, args = 0, "", open_at + 1, []
    for i in range(open_at, len(sql)):
        c = sql[i]
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"`":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i])
                return [a.strip() for a in args] if args != [""] else [], i + 1
        elif c == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
    raise MacroError(f"unclosed macro call at: {sql[open_at - 20 : open_at + 20]!r}")


# --- variables (Grafana's templateSrv) ----------------------------------------------------

_REFERENCE = re.compile(r"\$(\w+)|\[\[(\w+)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}")


def interpolate(
    sql: str,
    selections: Mapping[str, Selection],
    *,
    time_range: TimeRange,
    interval: timedelta,
) -> str:
    """Every ``$var``, ``${var}``, ``${var:format}`` and ``[[var]]`` replaced by its
    value, as Grafana's template service does; the globals ``$__from`` / ``$__to``
    (epoch ms), ``$__interval`` / ``$__interval_ms`` and ``$__range_s`` / ``$__range_ms``
    too. Names that are neither (the plugin's macros) are left for the back end."""
    seconds = interval.total_seconds()
    span = time_range.span.total_seconds()
    globals_ = {
        "__from": str(_ms(time_range.start)),
        "__to": str(_ms(time_range.end)),
        "__interval": _duration(seconds),
        "__interval_ms": str(int(seconds * 1000)),
        "__range_s": str(int(span)),
        "__range_ms": str(int(span * 1000)),
        "__range": _duration(span),
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(5)
        if name in globals_ and fmt is None:
            return globals_[name]
        if name not in selections:
            if name.startswith("__"):
                return match.group(0)
            raise MacroError(f"the query uses ${name}, which has no value")
        return _format(selections[name], fmt)

    return _REFERENCE.sub(replace, sql)


def _format(selection: Selection, fmt: str | None) -> str:
    if selection.all and selection.all_value is not None:
        return selection.all_value  # a custom all value goes in verbatim
    values = list(selection.values)
    if fmt in (None, "glob"):
        # Grafana's default: one value as is, several as a glob ({a,b}).
        return values[0] if not selection.multi else "{" + ",".join(values) + "}"
    if fmt == "raw" or fmt == "text":
        return ",".join(values) if fmt == "raw" else " + ".join(values)
    if fmt == "csv":
        return ",".join(values)
    if fmt == "pipe":
        return "|".join(values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if fmt == "sqlstring":
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)
    if fmt == "json":
        return json.dumps(values[0] if not selection.multi else values)
    if fmt == "regex":
        escaped = [re.sub(r"[\\^$.|?*+()\[\]{}/]", lambda m: "\\" + m.group(0), v) for v in values]
        return escaped[0] if not selection.multi else "(" + "|".join(escaped) + ")"
    raise MacroError(f"unknown variable format {fmt!r}")


# --- the back end's macros (pkg/macros) -----------------------------------------------------

_MACRO = re.compile(r"\$__(\w+)\b")


def _backend_macros(sql: str, time_range: TimeRange, interval: timedelta) -> str:
    start, end = time_range.start, time_range.end
    seconds = max(int(interval.total_seconds()), 1)
    millis = max(int(interval / timedelta(milliseconds=1)), 1)

    def time_filter(c: str) -> str:
        return f"{c} >= {_datetime(start)} AND {c} <= {_datetime(end)}"

    def date_filter(c: str) -> str:
        return f"{c} >= {_date(start)} AND {c} <= {_date(end)}"

    def date_time_filter(d: str, t: str) -> str:
        return f"({date_filter(d)}) AND ({time_filter(t)})"

    with_args = {
        "timeFilter": (1, time_filter),
        "timeFilter_ms": (
            1,
            lambda c: f"{c} >= {_datetime64(start)} AND {c} <= {_datetime64(end)}",
        ),
        "dateFilter": (1, date_filter),
        "dateTimeFilter": (2, date_time_filter),
        "dt": (2, date_time_filter),
        "timeInterval": (
            1,
            lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {seconds} second)",
        ),
        "timeInterval_ms": (
            1,
            lambda c: f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {millis} millisecond)",
        ),
    }
    bare = {
        "fromTime": _datetime(start),
        "toTime": _datetime(end),
        "fromTime_ms": _datetime64(start),
        "toTime_ms": _datetime64(end),
        "interval_s": str(seconds),
    }
    out, pos = [], 0
    for match in _MACRO.finditer(sql):
        if match.start() < pos:
            continue
        name = match.group(1)
        out.append(sql[pos : match.start()])
        has_call = match.end() < len(sql) and sql[match.end()] == "("
        if name in with_args:
            if not has_call:
                raise MacroError(f"$__{name} needs arguments")
            args, pos = _arguments(sql, match.end())
            count, build = with_args[name]
            if len(args) != count or any(not a for a in args):
                raise MacroError(f"$__{name} needs {count} argument(s), got {len(args)}")
            out.append(build(*args))  # type: ignore[operator]
        elif name in bare:
            # The plugin also accepts an empty call, $__fromTime().
            pos = match.end()
            if has_call and sql[match.end() : match.end() + 2] == "()":
                pos += 2
            out.append(bare[name])
        else:
            pos = match.end()
            out.append(match.group(0))
    out.append(sql[pos:])
    return "".join(out)


def _ms(value: datetime) -> int:
    return math.floor(value.timestamp() * 1000)


def _datetime(value: datetime) -> str:
    return f"toDateTime({math.floor(value.timestamp())})"


def _datetime64(value: datetime) -> str:
    return f"fromUnixTimestamp64Milli({_ms(value)})"


def _date(value: datetime) -> str:
    return f"toDate('{value.astimezone(UTC).strftime('%Y-%m-%d')}')"


def _duration(seconds: float) -> str:
    """Grafana's interval text: 20s, 5m, 1h, 1d, 500ms."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit, size in (("y", 31536000), ("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
