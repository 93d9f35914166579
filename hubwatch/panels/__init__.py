"""hubwatch's panels, defined once: the six dashboards (:data:`DASHBOARDS`), each panel's
query, visualisation and columns (:class:`Panel`), the Grafana ClickHouse plugin's macros
(:mod:`hubwatch.panels.macros`) and :func:`run_panel` to run one on ClickHouse.

    from hubwatch.panels import DASHBOARDS, TimeRange, run_panel
    result = run_panel(client, panel, TimeRange.last(timedelta(days=1)), {"base_model": m})
    result.columns, result.rows
"""

from hubwatch.panels.dashboards import DASHBOARDS, dashboard, panel, panels
from hubwatch.panels.macros import ALL, MacroError, Selection, TimeRange, auto_interval, expand
from hubwatch.panels.model import Dashboard, Datasource, Panel, Variable, Visualisation
from hubwatch.panels.run import (
    PanelError,
    PanelResult,
    expanded_sql,
    run_panel,
    variable_options,
)

__all__ = [
    "ALL",
    "DASHBOARDS",
    "Dashboard",
    "Datasource",
    "MacroError",
    "Panel",
    "PanelError",
    "PanelResult",
    "Selection",
    "TimeRange",
    "Variable",
    "Visualisation",
    "auto_interval",
    "dashboard",
    "expand",
    "expanded_sql",
    "panel",
    "panels",
    "run_panel",
    "variable_options",
]
