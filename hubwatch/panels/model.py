"""What a panel and a dashboard are: one typed definition each, read by the Grafana
generator (``hubwatch dashboards generate``), the built-in web view and ``dashboards
render`` alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

__all__ = ["COUNT_UNITS", "Dashboard", "Datasource", "Panel", "Variable", "Visualisation"]

Visualisation = Literal["timeseries", "barchart", "table", "stat", "piechart"]
Datasource = Literal["clickhouse", "prometheus"]

COUNT_UNITS = frozenset({"short", "none"})
"Grafana units hubwatch uses for counts: whole numbers, never SI-prefixed fractions."


@dataclass(frozen=True)
class Variable:
    """A dashboard variable whose options come from a ClickHouse query (first column)."""

    name: str
    label: str
    query: str
    multi: bool = False
    include_all: bool = False
    description: str = ""


@dataclass(frozen=True)
class Panel:
    """One panel.

    ``query`` is ClickHouse SQL written with the Grafana ClickHouse plugin's macros and
    Grafana variables (``datasource='clickhouse'``) or PromQL (``'prometheus'``).
    ``columns`` are what the query returns, in order (for PromQL: the labels ``series``
    names plus ``time`` and ``value``); ``x`` is the column along the horizontal axis (the
    time for a time series, a category for a bar chart; none for a table or stat), ``y``
    the value columns, ``series`` the column whose values split the data into series
    (long format; none when each ``y`` column is a series of its own). ``unit`` is
    Grafana's: ``short`` (the default) for counts, ``ops`` a rate per second, ``s``,
    ``bytes``, ``percent``… ``no_data`` is what the panel says when the query returns no
    rows, in the view and in Grafana (its "No value" text). ``min_interval`` is Grafana's
    min interval: ``$__interval`` is never shorter (a query that reads per-hour counts)."""

    id: str
    dashboard: str
    title: str
    description: str
    visualisation: Visualisation
    datasource: Datasource
    query: str
    columns: tuple[str, ...]
    x: str | None = None
    y: tuple[str, ...] = ()
    series: str | None = None
    unit: str = "short"
    variables: tuple[str, ...] = ()
    no_data: str = "No data in this time range"
    width: int = 12  # of Grafana's 24 grid columns
    height: int = 8
    legend: str = ""  # PromQL: Grafana's legend format, e.g. "{{stream}}"
    min_interval: timedelta | None = None

    @property
    def counts(self) -> bool:
        """Whether the charted values are counts (whole numbers): a table's columns are
        of many kinds, so only a chart or a stat is."""
        return self.unit in COUNT_UNITS and self.visualisation != "table"

    def __post_init__(self) -> None:
        named = {c for c in (self.x, self.series, *self.y) if c is not None}
        if not named <= set(self.columns):
            raise ValueError(f"panel {self.id}: {sorted(named - set(self.columns))} not in columns")
        if self.visualisation in ("timeseries", "barchart") and (self.x is None or not self.y):
            raise ValueError(f"panel {self.id}: a {self.visualisation} needs x and y")


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    time_from: str = "now-24h"  # Grafana's relative time, the default range
    refresh: str = "1m"
    tags: tuple[str, ...] = field(default=("hubwatch",))

    def __post_init__(self) -> None:
        names = {v.name for v in self.variables}
        for panel in self.panels:
            if panel.dashboard != self.uid:
                raise ValueError(f"panel {panel.id} belongs to {panel.dashboard}, not {self.uid}")
            if not set(panel.variables) <= names:
                raise ValueError(f"panel {panel.id} uses variables {self.uid} does not define")
