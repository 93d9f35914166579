"""Run a panel's ClickHouse query for a time range and variable values, as Grafana would:
the built-in view, ``dashboards render``, the tests and the benchmark all call this."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hubwatch.errors import HubwatchError
from hubwatch.panels.macros import Selection, TimeRange, auto_interval, expand
from hubwatch.panels.model import Panel, Variable

__all__ = ["PanelError", "PanelResult", "expanded_sql", "run_panel", "variable_options"]


class PanelError(HubwatchError):
    """A panel that cannot run here (a PromQL panel asked of ClickHouse, a missing value)."""


@dataclass(frozen=True)
class PanelResult:
    """What a panel's query returned: ``columns`` in order and ``rows`` as tuples, the
    ``sql`` that ran, and ``message`` (the panel's no-data text) when there are no rows."""

    panel: Panel
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    sql: str
    message: str | None = None

    def column(self, name: str) -> list[Any]:
        at = self.columns.index(name)
        return [row[at] for row in self.rows]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def expanded_sql(
    panel: Panel,
    time_range: TimeRange,
    variables: Mapping[str, str | Sequence[str] | Selection] | None = None,
    *,
    interval: timedelta | None = None,
) -> str:
    """The panel's SQL with the plugin's macros and the variables expanded."""
    if panel.datasource != "clickhouse":
        raise PanelError(f"panel {panel.id} is PromQL, for Prometheus, not ClickHouse")
    missing = [v for v in panel.variables if v not in (variables or {})]
    if missing:
        raise PanelError(f"panel {panel.id} needs a value for {', '.join(missing)}")
    if interval is None:
        interval = auto_interval(time_range, minimum=panel.min_interval)
    elif panel.min_interval is not None:
        interval = max(interval, panel.min_interval)  # as Grafana applies it
    return expand(panel.query, time_range, interval=interval, variables=variables)


def run_panel(
    client: Any,
    panel: Panel,
    time_range: TimeRange,
    variables: Mapping[str, str | Sequence[str] | Selection] | None = None,
    *,
    interval: timedelta | None = None,
) -> PanelResult:
    """Run ``panel`` on a clickhouse-connect ``client`` (its database the hubwatch one).
    A server error is raised as it is (a table not created yet included: the caller says
    so, :func:`hubwatch.clickhouse.server_error`)."""
    sql = expanded_sql(panel, time_range, variables, interval=interval)
    result = client.query(sql)
    rows = [tuple(row) for row in result.result_rows]
    columns = tuple(result.column_names)
    return PanelResult(panel, columns, rows, sql, None if rows else panel.no_data)


def variable_options(client: Any, variable: Variable) -> list[str]:
    """The values a variable offers (its query's first column)."""
    return [str(row[0]) for row in client.query(variable.query).result_rows]
