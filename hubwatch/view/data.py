"""What the built-in view shows of a panel: its query run on ClickHouse (the panel's own SQL,
its macros expanded as the Grafana plugin would) or on Prometheus (its PromQL over a range),
as JSON-ready columns and rows, or a one-line reason why there is nothing to draw."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from hubwatch.clickhouse import names_missing_schema, server_error
from hubwatch.errors import NotMigrated, SinkError, network_reason
from hubwatch.panels import (
    DASHBOARDS,
    Dashboard,
    Panel,
    PanelError,
    PanelResult,
    TimeRange,
    auto_interval,
    run_panel,
    variable_options,
)
from hubwatch.panels.macros import interpolate

__all__ = [
    "ALL_TIME",
    "NO_PROMETHEUS",
    "STARTING",
    "PanelData",
    "PanelSource",
    "check_prometheus",
    "dashboard_of",
    "parse_range",
]

ALL_TIME = "all"
"The range that holds everything (a replay's models were created long ago)."
EPOCH = datetime(2015, 1, 1, tzinfo=UTC)  # before the first model on the Hub

STARTING = "Starting: applying migrations"
"What a panel says while hubwatch's tables are being created (the first seconds of run)."

FIT_PASSES = 4
"At most this many queries fit an all-time time series to its data (see _fitted)."

NO_PROMETHEUS = (
    "No Prometheus configured: set HUBWATCH_PROMETHEUS_URL (or `hubwatch serve "
    "--prometheus-url URL`) to a Prometheus that scrapes hubwatch's --metrics-port"
)

PROMETHEUS_SCRAPE_SECONDS = 15.0
"Grafana's default scrape interval, which ``$__rate_interval`` is built from."

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400, "y": 365 * 86400}
_RELATIVE = re.compile(r"^now-(\d+)([smhdwMy])$")


def parse_range(text: str, *, now: datetime | None = None) -> TimeRange:
    """Grafana's relative ``now-7d`` (or :data:`ALL_TIME`) as a time range ending now."""
    end = now or datetime.now(UTC)
    if text == ALL_TIME:
        return TimeRange(EPOCH, end)
    match = _RELATIVE.match(text)
    if match is None:
        raise PanelError(
            f"a time range is now-N followed by s, m, h, d, w, M or y (now-7d), or {ALL_TIME};"
            f" not {text!r}"
        )
    span = int(match[1]) * _UNITS[match[2]]
    if span == 0:
        raise PanelError(f"the time range {text!r} is empty: N must be at least 1")
    try:
        return TimeRange.last(timedelta(seconds=span), now=end)
    except OverflowError:  # back beyond the year 1
        raise PanelError(f"the time range {text!r} reaches back too far: use {ALL_TIME}") from None


async def check_prometheus(url: str, within: float = 5.0) -> None:
    """A :class:`SinkError` in one line unless a Prometheus answers a query at ``url``:
    checked before a command that draws its panels starts, not found panel by panel."""
    api = f"{url.rstrip('/')}/api/v1/query"
    try:
        async with httpx.AsyncClient(timeout=within) as http:
            response = await http.get(api, params={"query": "1"})
        answered = response.json().get("status") == "success"
        reason = f"HTTP {response.status_code}, not Prometheus's query API"
    except httpx.HTTPError as exc:
        answered, reason = False, network_reason(exc)
    except ValueError:  # JSON that does not parse: some other server
        answered, reason = False, f"HTTP {response.status_code}, not Prometheus's query API"
    if not answered:
        raise SinkError(
            f"no Prometheus answers at {url} ({reason}); start it or fix --prometheus-url"
            " (HUBWATCH_PROMETHEUS_URL)"
        )


def dashboard_of(panel: Panel) -> Dashboard:
    return next(d for d in DASHBOARDS if d.uid == panel.dashboard)


@dataclass(frozen=True, slots=True)
class PanelData:
    """One answer for one panel. ``state`` is ``data`` (rows to draw), ``empty`` (the
    query returned none: ``message`` is the panel's no-data text), ``waiting`` (a
    variable has no value yet), ``starting`` (hubwatch's tables are not created yet: its
    migrations are running), ``unavailable`` (no Prometheus) or ``error``."""

    panel: str
    state: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    message: str | None = None
    seconds: float = 0.0
    time_range: TimeRange | None = None
    "The range the query covered, a time series' x axis (all time: from its first data)."
    all_time: bool = False
    "All time was asked: the x axis spans the data, not the years up to now."
    detail: str | None = None
    "More on ``message`` for the whole page (starting: what is missing, what to do)."

    def to_json(self) -> dict[str, Any]:
        span = self.time_range
        return {
            "panel": self.panel,
            "state": self.state,
            "columns": list(self.columns),
            "rows": [[_plain(v) for v in row] for row in self.rows],
            "message": self.message,
            "seconds": round(self.seconds, 4),
            "from": None if span is None else _plain(span.start),
            "to": None if span is None else _plain(span.end),
            "all_time": self.all_time,
            "detail": self.detail,
        }


def _moment(value: Any) -> datetime | None:
    """A time column's value as an aware datetime (None for what is not a time)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def _plain(value: Any) -> Any:
    """A value as JSON and plotly.js read it: datetimes as UTC wall time (plotly.js has no
    time zones), decimals as floats, NaN as null."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class PanelSource:
    """Runs panels for the view: ClickHouse at ``clickhouse_url`` (one client, one query at
    a time: a session runs one query at once, and a page's panels are small), Prometheus at
    ``prometheus_url`` if given."""

    def __init__(
        self,
        clickhouse_url: str,
        database: str,
        *,
        prometheus_url: str | None = None,
        default_range: str | None = None,
    ) -> None:
        self.clickhouse_url = clickhouse_url
        self.database = database
        self.prometheus_url = prometheus_url.rstrip("/") if prometheus_url else None
        self.default_range = default_range
        "A range for every dashboard instead of each one's own (a replay: all time)."
        self._client: Any = None
        self._lock = threading.Lock()
        self._http: httpx.AsyncClient | None = None

    def range_for(self, dashboard: Dashboard, asked: str | None) -> str:
        return asked or self.default_range or dashboard.time_from

    async def panel(
        self, panel: Panel, range_text: str | None, variables: Mapping[str, str]
    ) -> PanelData:
        started = time.monotonic()
        try:
            if panel.datasource == "prometheus":
                data = await self._prometheus(panel, range_text)
            else:
                data = await self._clickhouse(panel, range_text, variables)
        except Exception as exc:  # the panel says what failed; the page goes on
            exc = await self._reported(exc)
            if isinstance(exc, NotMigrated):
                data = PanelData(panel.id, "starting", message=STARTING, detail=str(exc))
            else:
                data = PanelData(panel.id, "error", message=" ".join(str(exc).split())[:400])
        return dataclasses.replace(data, seconds=time.monotonic() - started)

    async def _reported(self, exc: Exception) -> Exception:
        """A ClickHouse error as every command reports it (a table not created yet:
        :class:`NotMigrated`)."""
        if not names_missing_schema(exc):
            return exc
        return await asyncio.to_thread(server_error, exc, self.clickhouse_url, self.database)

    async def _clickhouse(
        self, panel: Panel, range_text: str | None, variables: Mapping[str, str]
    ) -> PanelData:
        missing = [name for name in panel.variables if not variables.get(name)]
        if missing:
            return PanelData(panel.id, "waiting", message=f"Pick a value for {missing[0]}")
        asked = self.range_for(dashboard_of(panel), range_text)
        time_range = parse_range(asked)
        given = {name: variables[name] for name in panel.variables}
        result = await asyncio.to_thread(self._locked, run_panel, panel, time_range, given)
        if result.rows and asked == ALL_TIME and panel.visualisation == "timeseries":
            result, time_range = await self._fitted(panel, result, time_range, given)
        if not result.rows:
            return PanelData(panel.id, "empty", result.columns, message=result.message)
        return PanelData(
            panel.id,
            "data",
            result.columns,
            tuple(result.rows),
            time_range=time_range,
            all_time=asked == ALL_TIME,
        )

    async def _fitted(
        self, panel: Panel, result: PanelResult, time_range: TimeRange, given: Mapping[str, str]
    ) -> tuple[PanelResult, TimeRange]:
        """An all-time series asked again over the span its data covers: from 2015 to now
        the query's interval is a month, so a day's data is one point on an axis of years.
        Each pass starts at the first interval the last one found, until the data fills
        the range (a span shrinking by less than half would not change the picture)."""
        assert panel.x is not None
        for _ in range(FIT_PASSES - 1):
            moments = [m for m in map(_moment, result.column(panel.x)) if m is not None]
            first = min(moments, default=time_range.start)
            if (time_range.end - first) * 2 > time_range.span:
                break
            narrower = TimeRange(first, time_range.end)
            again = await asyncio.to_thread(self._locked, run_panel, panel, narrower, given)
            if not again.rows:  # the data moved on meanwhile: keep what was found
                break
            result, time_range = again, narrower
        return result, time_range

    async def options(self, dashboard: Dashboard, name: str) -> list[str]:
        variable = next(v for v in dashboard.variables if v.name == name)
        try:
            return await asyncio.to_thread(self._locked, variable_options, variable)
        except Exception as exc:
            raise await self._reported(exc) from exc

    def _locked(self, call: Any, *args: Any) -> Any:
        from hubwatch.clickhouse import connect

        with self._lock:
            if self._client is None:
                self._client = connect(self.clickhouse_url, database=self.database)
            try:
                return call(self._client, *args)
            except Exception:
                self._client = None  # a fresh connection next time
                raise

    async def _prometheus(self, panel: Panel, range_text: str | None) -> PanelData:
        if self.prometheus_url is None:
            return PanelData(panel.id, "unavailable", message=NO_PROMETHEUS)
        dashboard = dashboard_of(panel)
        asked = self.range_for(dashboard, range_text)
        # Prometheus keeps weeks, not years: all time means the dashboard's own range.
        time_range = parse_range(dashboard.time_from if asked == ALL_TIME else asked)
        step = auto_interval(time_range, max_points=300)
        # The last evaluation at the range's end, however the span divides: a Prometheus
        # only seconds old still answers.
        time_range = TimeRange(
            time_range.end - math.ceil(time_range.span / step) * step, time_range.end
        )
        query = promql(panel.query, time_range, step)
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=20.0)
        response = await self._http.get(
            f"{self.prometheus_url}/api/v1/query_range",
            params={
                "query": query,
                "start": f"{time_range.start.timestamp():.3f}",
                "end": f"{time_range.end.timestamp():.3f}",
                "step": f"{step.total_seconds():g}",
            },
        )
        body = response.json()
        if body.get("status") != "success":
            raise PanelError(f"Prometheus: {body.get('error') or response.status_code}")
        series = panel.series or "series"
        rows: list[tuple[Any, ...]] = []
        for result in body["data"]["result"]:
            name = legend(panel.legend, result.get("metric") or {}) or series
            for at, value in result.get("values") or ():
                stamp = datetime.fromtimestamp(float(at), UTC)
                number = float(value)
                rows.append((stamp, name, number if math.isfinite(number) else None))
        columns = (panel.x or "time", series, panel.y[0] if panel.y else "value")
        if not rows:
            return PanelData(panel.id, "empty", columns, message=panel.no_data)
        return PanelData(panel.id, "data", columns, tuple(rows), time_range=time_range)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def promql(query: str, time_range: TimeRange, step: timedelta) -> str:
    """The PromQL Grafana would send: its globals interpolated and ``$__rate_interval``
    as Grafana computes it (the step plus a scrape, at least four scrapes)."""
    seconds = max(step.total_seconds() + PROMETHEUS_SCRAPE_SECONDS, 4 * PROMETHEUS_SCRAPE_SECONDS)
    query = query.replace("$__rate_interval", f"{int(seconds)}s")
    return interpolate(query, {}, time_range=time_range, interval=step)


_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def legend(template: str, labels: Mapping[str, str]) -> str:
    """Grafana's legend format (``{{stream}}``) filled from a series' labels."""
    return _LEGEND.sub(lambda m: labels.get(m[1], ""), template).strip()
