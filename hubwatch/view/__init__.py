"""The built-in web view of the dashboards' panels (``hubwatch run``, ``hubwatch serve``)."""

from hubwatch.view.data import ALL_TIME, NO_PROMETHEUS, PanelData, PanelSource, parse_range
from hubwatch.view.server import ViewServer, plotly_js, start_view

__all__ = [
    "ALL_TIME",
    "NO_PROMETHEUS",
    "PanelData",
    "PanelSource",
    "ViewServer",
    "parse_range",
    "plotly_js",
    "start_view",
]
