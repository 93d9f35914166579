"""Grafana dashboards generated from the panel definitions with grafana-foundation-sdk
(its build for Grafana 12: ``grafana-foundation-sdk==1769699241``, the "next" branch,
dashboard schemaVersion 41), written to ``dashboards/<uid>.json`` by ``hubwatch dashboards
generate``.

Data sources are the dashboards' own variables, ``$clickhouse`` (a
``grafana-clickhouse-datasource``) and ``$prometheus``: each Grafana picks its own, by uid
or by the first of that type, with no uid written into the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

from grafana_foundation_sdk.builders import barchart, piechart, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from hubwatch.panels.dashboards import DASHBOARDS
from hubwatch.panels.macros import _duration
from hubwatch.panels.model import Dashboard, Panel

__all__ = [
    "CLICKHOUSE_PLUGIN",
    "CLICKHOUSE_UID",
    "PROMETHEUS_PLUGIN",
    "PROMETHEUS_UID",
    "dashboard_json",
    "generate",
    "out_of_date",
    "render",
]

CLICKHOUSE_PLUGIN = "grafana-clickhouse-datasource"
PROMETHEUS_PLUGIN = "prometheus"
# The uids hubwatch provisions its data sources under (deploy/grafana, grafana push).
CLICKHOUSE_UID = "hubwatch-clickhouse"
PROMETHEUS_UID = "hubwatch-prometheus"
CLICKHOUSE = common.DataSourceRef(type_val=CLICKHOUSE_PLUGIN, uid="${clickhouse}")
PROMETHEUS = common.DataSourceRef(type_val=PROMETHEUS_PLUGIN, uid="${prometheus}")

# The plugin's query formats (sqlutil.FormatQueryOption) and query types (src/types/sql.ts).
_FORMAT_TIME_SERIES, _FORMAT_TABLE = 0, 1


class ClickHouseQuery(cogvariants.Dataquery):
    """A grafana-clickhouse-datasource SQL query (the SDK ships only core data sources)."""

    def __init__(self, raw_sql: str, *, time_series: bool, ref_id: str = "A") -> None:
        self.raw_sql = raw_sql
        self.time_series = time_series
        self.ref_id = ref_id

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": CLICKHOUSE.to_json(),
            "editorType": "sql",
            "format": _FORMAT_TIME_SERIES if self.time_series else _FORMAT_TABLE,
            "queryType": "timeSeries" if self.time_series else "table",
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }


class _ClickHouseQueryBuilder(cogbuilder.Builder[ClickHouseQuery]):
    def __init__(self, raw_sql: str, *, time_series: bool) -> None:
        self._internal = ClickHouseQuery(raw_sql, time_series=time_series)

    def build(self) -> ClickHouseQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self


def _target(panel: Panel) -> cogbuilder.Builder[Any]:
    if panel.datasource == "prometheus":
        return (
            prom.Dataquery()
            .datasource(PROMETHEUS)
            .expr(panel.query)
            .legend_format(panel.legend)
            .ref_id("A")
        )
    return _ClickHouseQueryBuilder(panel.query, time_series=panel.visualisation == "timeseries")


def _panel(panel: Panel, number: int) -> cogbuilder.Builder[model.Panel]:
    builder: Any
    if panel.visualisation == "timeseries":
        builder = timeseries.Panel().fill_opacity(10).line_width(1)
    elif panel.visualisation == "barchart":
        builder = barchart.Panel().x_field(panel.x or "").show_value(common.VisibilityMode.AUTO)
        builder = builder.stacking(common.StackingMode.NORMAL)
        if panel.x is not None and len(panel.y) == 1:
            builder = builder.orientation(common.VizOrientation.HORIZONTAL)
    elif panel.visualisation == "table":
        builder = table.Panel()
    elif panel.visualisation == "stat":
        builder = stat.Panel().graph_mode(common.BigValueGraphMode.NONE)
    else:
        builder = piechart.Panel()
    if panel.min_interval is not None:
        builder = builder.interval(_duration(panel.min_interval.total_seconds()))
    if panel.counts:  # whole numbers on the axis and in the tooltip
        builder = builder.decimals(0)
    datasource = PROMETHEUS if panel.datasource == "prometheus" else CLICKHOUSE
    return (
        builder.id(number)
        .title(panel.title)
        .description(panel.description)
        .datasource(datasource)
        .with_target(_target(panel))
        .unit(panel.unit)
        .no_value(panel.no_data)
        .span(panel.width)
        .height(panel.height)
    )


def _datasource_variable(name: str, label: str, plugin: str, uid: str) -> db.DatasourceVariable:
    # The provisioned data source (deploy/grafana, grafana push) is the default pick; a
    # Grafana without it falls back to its first data source of the type.
    return (
        db.DatasourceVariable(name)
        .label(label)
        .type(plugin)
        .current(model.VariableOption(text=uid, value=uid, selected=True))
        .hide(model.VariableHide.DONT_HIDE)
    )


def dashboard_json(definition: Dashboard) -> dict[str, Any]:
    """The Grafana dashboard model of ``definition``, as Grafana 12 imports it."""
    builder = (
        db.Dashboard(definition.title)
        .uid(definition.uid)
        .description(definition.description)
        .tags(list(definition.tags))
        .time(definition.time_from, "now")
        .timezone("utc")
        .refresh(definition.refresh)
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
    )
    uses = {p.datasource for p in definition.panels}
    if "clickhouse" in uses or definition.variables:
        builder = builder.with_variable(
            _datasource_variable("clickhouse", "ClickHouse", CLICKHOUSE_PLUGIN, CLICKHOUSE_UID)
        )
    if "prometheus" in uses:
        builder = builder.with_variable(
            _datasource_variable("prometheus", "Prometheus", PROMETHEUS_PLUGIN, PROMETHEUS_UID)
        )
    for variable in definition.variables:
        builder = builder.with_variable(
            db.QueryVariable(variable.name)
            .label(variable.label)
            .description(variable.description)
            .datasource(CLICKHOUSE)
            .query(variable.query)
            .multi(variable.multi)
            .include_all(variable.include_all)
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
    for number, panel in enumerate(definition.panels, start=1):
        builder = builder.with_panel(_panel(panel, number))
    # Through JSON once, so what is written is exactly what reading it back gives.
    return json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))


def render(definition: Dashboard) -> str:
    return json.dumps(dashboard_json(definition), indent=2, sort_keys=True) + "\n"


def generate(directory: Path) -> list[Path]:
    """Write every dashboard to ``directory/<uid>.json``; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for definition in DASHBOARDS:
        path = directory / f"{definition.uid}.json"
        path.write_text(render(definition))
        written.append(path)
    return written


def out_of_date(directory: Path) -> list[str]:
    """The dashboards whose file in ``directory`` differs from what the code generates
    (or is missing), and files there no dashboard generates."""
    expected = {f"{d.uid}.json": render(d) for d in DASHBOARDS}
    stale = [
        name
        for name, text in expected.items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]
    extra = sorted(p.name for p in directory.glob("*.json") if p.name not in expected)
    return stale + extra
