"""``hubwatch dashboards render``: a PNG of every panel from the live data (matplotlib, Agg,
offline), so a person can look without a browser. The rows are the web view's own
(:class:`~hubwatch.view.data.PanelSource`), drawn the way the view draws each
visualisation; a panel with nothing to draw says why in its picture."""

from __future__ import annotations

import asyncio
import io
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from hubwatch.panels import DASHBOARDS, Panel
from hubwatch.view.data import PanelData, PanelSource

__all__ = ["Rendered", "draw_panel", "render_panels"]

TABLE_ROWS = 15
"A table's rows in its picture (the view scrolls; a PNG does not)."


@dataclass(frozen=True, slots=True)
class Rendered:
    panel: Panel
    path: Path
    state: str
    rows: int


def _file_name(panel: Panel) -> str:
    return f"{panel.dashboard.removeprefix('hubwatch-')}--{panel.id}.png"


def _column(data: PanelData, name: str) -> list[Any]:
    at = data.columns.index(name)
    return [row[at] for row in data.rows]


def _series(panel: Panel, data: PanelData) -> list[tuple[str, list[Any], list[Any]]]:
    """(name, xs, ys) per series: by the series column's values, or one per value column."""
    assert panel.x is not None
    xs = _column(data, panel.x)
    if panel.series and panel.series in data.columns:
        ys = _column(data, panel.y[0])
        by: dict[str, tuple[list[Any], list[Any]]] = {}
        for x, y, key in zip(xs, ys, _column(data, panel.series), strict=True):
            group = by.setdefault(str(key), ([], []))
            group[0].append(x)
            group[1].append(y)
        return [(name, gx, gy) for name, (gx, gy) in by.items()]
    return [(y, xs, _column(data, y)) for y in panel.y]


def _short(value: Any, width: int = 28) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M")
    elif isinstance(value, (list, tuple)):
        text = ", ".join(map(str, value))
    else:
        text = "" if value is None else str(value)
    if len(text) <= width:
        return text
    # Cut in the middle: ids of one org share their start and differ at the end
    # (mistralai/Mistral-Small-24B-Base-2501, ...-Instruct-2501).
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


MARKED_POINTS = 30
"A series of at most this many points has a marker on each (the view's lines+markers)."
LONE_PAD = 0.05
"A lone instant's range asked is padded by this share of its span on each side."


def _whole_numbers(axis: Axis) -> None:
    """A count's axis as the view draws it: whole-number ticks, thousands separated."""
    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def _timeseries(ax: Axes, panel: Panel, data: PanelData) -> None:
    series = _series(panel, data)
    for name, xs, ys in series:
        # A lone point (a replay on all time: one interval) is a marker a reader can see,
        # not a dot; kept whole at the plot's edge.
        size = 9 if len(xs) == 1 else 5 if len(xs) <= MARKED_POINTS else 0
        ax.plot(
            xs,
            [float("nan") if y is None else y for y in ys],
            marker="o" if size else None,
            markersize=size,
            label=name,
            clip_on=False,
        )
    instants = {x for _, xs, _ in series for x in xs}
    if len(instants) < 2 and data.time_range is not None:
        # One instant alone: within the range asked (as the view does), not a span of
        # matplotlib's own; padded so a point at the range's end is not on the frame.
        pad = (data.time_range.end - data.time_range.start) * LONE_PAD
        ax.set_xlim(data.time_range.start - pad, data.time_range.end + pad)
    values = [y for _, _, ys in series for y in ys if y is not None]
    if values and min(values) >= 0:
        # Counts from zero, as the view's rangemode tozero; room above the highest point.
        ax.set_ylim(0, max(values) * 1.15 or 1)
    if panel.counts:
        _whole_numbers(ax.yaxis)
    ax.figure.autofmt_xdate()
    ax.set_ylabel(panel.unit if panel.unit != "short" else "")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def _barchart(ax: Axes, panel: Panel, data: PanelData) -> None:
    series = _series(panel, data)
    labels: list[str] = []
    for _, xs, _ in series:
        labels += [str(x) for x in xs if str(x) not in labels]
    height = 0.8 / max(1, len(series))
    for i, (name, xs, ys) in enumerate(series):
        at = {str(x): y for x, y in zip(xs, ys, strict=True)}
        ax.barh(
            [k + i * height for k in range(len(labels))],
            [at.get(label) or 0 for label in labels],
            height=height,
            label=name,
        )
    ax.set_yticks(range(len(labels)), [_short(label, 40) for label in labels], fontsize=7)
    ax.invert_yaxis()  # the largest at the top, as the query orders them
    if panel.counts:
        _whole_numbers(ax.xaxis)
    ax.grid(axis="x", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=7)


def _table(ax: Axes, data: PanelData) -> None:
    ax.axis("off")
    cells = [[_short(v) for v in row] for row in data.rows[:TABLE_ROWS]]
    table = ax.table(cellText=cells, colLabels=list(data.columns), loc="upper center")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.auto_set_column_width(list(range(len(data.columns))))
    if len(data.rows) > TABLE_ROWS:
        ax.set_title(f"first {TABLE_ROWS} of {len(data.rows)} rows", fontsize=7, loc="right")


def _stat(ax: Axes, panel: Panel, data: PanelData) -> None:
    ax.axis("off")
    value = _column(data, panel.y[0] if panel.y else data.columns[0])[0]
    ax.text(0.5, 0.5, _short(value), ha="center", va="center", fontsize=48)


def _pie(ax: Axes, panel: Panel, data: PanelData) -> None:
    labels = _column(data, panel.x or panel.series or data.columns[0])
    values = _column(data, panel.y[0] if panel.y else data.columns[1])
    ax.pie(values, labels=[_short(label, 20) for label in labels], textprops={"fontsize": 7})


def _message(ax: Axes, text: str) -> None:
    ax.axis("off")
    ax.text(0.5, 0.5, textwrap.fill(text, 70), ha="center", va="center", fontsize=10, wrap=True)


def draw_panel(panel: Panel, data: PanelData) -> bytes:
    """One panel as PNG bytes."""
    wide = panel.width >= 12 or panel.visualisation == "table"
    fig, ax = plt.subplots(figsize=(12 if wide else 7, 4.5), dpi=100)
    try:
        fig.suptitle(panel.title, fontsize=12, x=0.01, ha="left")
        if data.state != "data":
            _message(ax, data.message or "No data")
        elif panel.visualisation == "timeseries":
            _timeseries(ax, panel, data)
        elif panel.visualisation == "barchart":
            _barchart(ax, panel, data)
        elif panel.visualisation == "stat":
            _stat(ax, panel, data)
        elif panel.visualisation == "piechart":
            _pie(ax, panel, data)
        else:
            _table(ax, data)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)


def _write(path: Path, panel: Panel, data: PanelData) -> None:
    path.write_bytes(draw_panel(panel, data))


async def render_panels(
    source: PanelSource,
    out: Path,
    *,
    time_range: str | None = None,
    variables: Mapping[str, str] | None = None,
    only: Sequence[str] = (),
) -> list[Rendered]:
    """A PNG of each panel (or of the ``only`` ones) in ``out``; a variable without a given
    value takes its first option, as the view's picker does."""
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    chosen = dict(variables or {})
    rendered: list[Rendered] = []
    for dashboard in DASHBOARDS:
        for variable in dashboard.variables:
            if not chosen.get(variable.name):
                options = await source.options(dashboard, variable.name)
                chosen[variable.name] = options[0] if options else ""
        for panel in dashboard.panels:
            if only and panel.id not in only:
                continue
            data = await source.panel(panel, time_range, chosen)
            path = out / _file_name(panel)
            await asyncio.to_thread(_write, path, panel, data)
            rendered.append(Rendered(panel, path, data.state, len(data.rows)))
    return rendered
