"""The built-in web view, in a real browser: headless Chromium loads the page `hubwatch run`
prints during an embedded replay (a real Prometheus scraping it), and every panel is drawn
with the rows its query has, without a console error; the model picker moves the family
explorer. `hubwatch serve` serves the same panels from a ClickHouse of the distributed
mode, and `hubwatch dashboards render` draws each panel as a PNG."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubwatch.clickhouse import connect
from hubwatch.panels import DASHBOARDS, TimeRange, panels, run_panel, variable_options
from hubwatch.view import NO_PROMETHEUS, parse_range
from tests.browser import open_browser
from tests.conftest import (
    ImportBoard,
    free_port,
    hubwatch,
    malformed_items,
    spawn,
    spawn_embedded_replay,
    terminate,
    wait_until,
    while_alive,
    write_jsonl,
)
from tests.panel_data import BASE, load_panel_data, panel_now

VIEW_AT = re.compile(r"web view at (http://127\.0\.0\.1:\d+/)")
ALERT_PANELS = {p.id for d in DASHBOARDS if d.uid == "hubwatch-alerts" for p in d.panels}
PROMETHEUS_PANELS = {p.id for p in panels() if p.datasource == "prometheus"}
# Metrics an embedded replay moves on this branch (the others: Kafka's consumer lag, and
# what no process exports yet, may rightly have no series).
PROMETHEUS_WITH_DATA = {"rows_written", "dead_letters"}

STATES = (
    "JSON.stringify([...document.querySelectorAll('.panel')].map(p => ({"
    "id: p.dataset.panel, state: p.dataset.state, rows: Number(p.dataset.rows || 0),"
    "updated: p.dataset.updated, note: p.querySelector('.note').textContent,"
    "traces: (p.querySelector('.chart').data || []).length,"
    "svg: p.querySelector('.chart .main-svg') !== null})))"
)

# Each time series drawn at a single instant: its points' boxes against the plot area's.
LONE_POINTS = (
    "JSON.stringify([...document.querySelectorAll('.panel[data-visualisation=timeseries]"
    "[data-state=data]')].flatMap(p => { const c = p.querySelector('.chart');"
    " const xs = new Set((c.data || []).flatMap(t => t.x));"
    " if (xs.size !== 1) return [];"
    " const area = c.querySelector('.nsewdrag').getBoundingClientRect();"
    " const points = [...c.querySelectorAll('.scatterlayer .point')].map(e => {"
    "   const r = e.getBoundingClientRect();"
    "   return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width}; });"
    " const valued = c.data.filter(t => t.y.some(v => v !== null)).length;"
    " return [{id: p.dataset.panel, traces: valued, points,"
    "   area: {left: area.left, right: area.right, top: area.top, bottom: area.bottom}}]; }))"
)

# The family table's models as drawn.
FAMILY_MODELS = (
    "JSON.stringify(document.querySelector('#panel-family_against_base .chart')"
    ".data[0].cells.values[0])"
)


def _subtree(client: Any, model: str) -> set[str]:
    """``model`` and every model below it, walked here from the families' edges."""
    children: dict[str, list[str]] = {}
    for member, parent in client.query(
        "SELECT model_id, parent_id FROM model_families FINAL WHERE is_deleted = 0"
    ).result_rows:
        children.setdefault(parent, []).append(member)
    found, todo = {model}, [model]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@contextlib.contextmanager
def prometheus(tmp_path: Path, target_port: int) -> Iterator[str]:
    """A real Prometheus scraping ``target_port`` every second."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: hubwatch\n    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
    )
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{url}/-/ready"), "Prometheus ready")
        yield url
    finally:
        terminate(process)
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _has_rows(url: str, panel_id: str, variables: dict[str, str]) -> bool:
    definition = next(p for p in panels() if p.id == panel_id)
    with contextlib.closing(connect(url, database="hubwatch")) as client:
        try:
            return bool(run_panel(client, definition, parse_range("all"), variables).rows)
        except Exception:  # not migrated yet, a table still empty
            return False


def _series(prometheus_url: str, metric: str) -> bool:
    body = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": metric}).json()
    return bool(body["data"]["result"])


def test_every_panel_is_drawn_in_chromium_during_an_embedded_replay(tmp_path: Path) -> None:
    metrics_port, view_port = free_port(), free_port()
    extra = write_jsonl(tmp_path / "extra.jsonl", malformed_items())
    log = tmp_path / "run.log"
    with prometheus(tmp_path, metrics_port) as prometheus_url:
        env = {
            "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
            "HUBWATCH_METRICS_PORT": str(metrics_port),
            "HUBWATCH_VIEW_PORT": str(view_port),
            "HUBWATCH_PROMETHEUS_URL": prometheus_url,
            # Every stream soon, so every panel has rows (as test_embedded does).
            "HUBWATCH_ENGAGEMENT_INTERVAL": "2",
            "HUBWATCH_ENGAGEMENT_BULK_EVERY": "5",
            "HUBWATCH_COMMUNITY_INTERVAL": "1",
            "HUBWATCH_GITHUB_REPOS": "octo/lib",
            "HUBWATCH_GITHUB_INTERVAL": "2",
        }
        run, url = spawn_embedded_replay(
            "--replay-extra", str(extra), "--replay-activity", "20", env=env, log=log
        )
        try:
            wait_until(
                while_alive(run, log, lambda: VIEW_AT.search(log.read_text())), "the view address"
            )
            match = VIEW_AT.search(log.read_text())
            assert match is not None
            page = match.group(1)
            assert page == f"http://127.0.0.1:{view_port}/"
            # What the page must show, checked on ClickHouse and Prometheus themselves.
            family = {"base_model": BASE}
            required = [
                p.id for p in panels() if p.datasource == "clickhouse" and p.id not in ALERT_PANELS
            ]
            for panel_id in required:
                wait_until(
                    while_alive(run, log, lambda p=panel_id: _has_rows(url, p, family)),
                    f"rows for {panel_id}",
                    180,
                )
            for metric in ("hubwatch_clickhouse_rows_written_total", "hubwatch_dead_letters_total"):
                wait_until(lambda m=metric: _series(prometheus_url, m), f"{metric} scraped")
            with contextlib.closing(connect(url, database="hubwatch")) as client:
                alerts = int(client.command("SELECT count() FROM alerts"))
                options = variable_options(client, DASHBOARDS[1].variables[0])
            screenshot = asyncio.run(
                _check_page(page, required, alerts, options, url, tmp_path / "view.png")
            )
        finally:
            terminate(run)
    print(f"screenshot: {screenshot}")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def _check_page(
    page: str, required: list[str], alerts: int, options: list[str], url: str, shot: Path
) -> Path:
    async with open_browser() as browser:
        await browser.goto(page)
        await browser.wait_for("document.body && document.body.dataset.ready === 'true'", "ready")

        def by_id(states: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
            return {s["id"]: s for s in states}

        async def drawn() -> dict[str, dict[str, Any]]:
            return by_id(json.loads(await browser.evaluate(STATES)))

        def complete(states: dict[str, dict[str, Any]]) -> bool:
            charts = [*required, *PROMETHEUS_WITH_DATA] + ([*ALERT_PANELS] if alerts else [])
            return all(
                states[p]["state"] == "data" and states[p]["svg"] and states[p]["traces"] > 0
                for p in charts
            )

        states = await drawn()
        for _ in range(120):  # panels refresh every 5 s; a hang guard, not a timing
            if complete(states):
                break
            await asyncio.sleep(1)
            states = await drawn()
        assert complete(states), {k: (v["state"], v["note"]) for k, v in states.items()}
        assert set(states) == {p.id for p in panels()}  # every panel is on the page
        for panel_id in required:
            assert states[panel_id]["rows"] > 0, panel_id
        for panel_id in ALERT_PANELS if not alerts else ():
            # No alert has fired: the panels say so rather than draw an empty chart.
            definition = next(p for p in panels() if p.id == panel_id)
            assert states[panel_id]["state"] == "empty"
            assert states[panel_id]["note"] == definition.no_data
        for panel_id in PROMETHEUS_PANELS:
            assert states[panel_id]["state"] in ("data", "empty"), states[panel_id]
            assert states[panel_id]["note"] != NO_PROMETHEUS

        # The model picker: fed by the variable's query, and the family panels follow it.
        picker = json.loads(
            await browser.evaluate(
                "JSON.stringify([...document.getElementById('var-base_model').options]"
                ".map(o => o.value).concat([document.getElementById('var-base_model').value]))"
            )
        )
        assert picker[:-1] == options and picker[-1] == options[0]
        other = next(o for o in options[1:] if o != BASE)
        definition = next(p for p in panels() if p.id == "family_against_base")
        with contextlib.closing(connect(url, database="hubwatch")) as client:
            expected = len(
                run_panel(client, definition, parse_range("all"), {"base_model": other}).rows
            )
        # A time series at one instant (a replay on all time: one interval) shows its
        # point: a marker big enough to see, inside the plot, not on its left or right frame.
        # (All time spans each series' own data, so most have many instants by now.)
        lone = json.loads(await browser.evaluate(LONE_POINTS))
        for chart in lone:
            assert len(chart["points"]) == chart["traces"], chart
            box = chart["area"]
            for point in chart["points"]:
                assert point["width"] >= 10, chart  # a marker, not a dot
                assert box["left"] <= point["left"] and point["right"] <= box["right"], chart
                # A zero sits on the x axis (y from zero), drawn whole over it (not clipped).
                assert box["top"] <= (point["top"] + point["bottom"]) / 2 <= box["bottom"], chart

        before = states["family_against_base"]["updated"]
        await browser.evaluate(
            "(() => { const s = document.getElementById('var-base_model');"
            f" s.value = {json.dumps(other)}; s.dispatchEvent(new Event('change')); }})()"
        )
        await browser.wait_for(
            "(() => { const p = document.getElementById('panel-family_against_base');"
            f" return p.dataset.updated !== {json.dumps(before)}; }})()",
            "the family panels redrawn for another base",
        )
        states = await drawn()
        after = states["family_against_base"]
        assert (after["state"], after["rows"]) == ("data" if expected else "empty", expected)
        # A derivative picked shows its own branch: itself and what derives from it.
        with contextlib.closing(connect(url, database="hubwatch")) as client:
            branch, whole = _subtree(client, other), _subtree(client, BASE)
        shown = set(json.loads(await browser.evaluate(FAMILY_MODELS)))
        assert other in shown and shown <= branch, shown - branch
        assert whole - branch  # the rest of the family is left out

        await browser.screenshot(shot)
        assert browser.errors == [], browser.errors
    return shot


@pytest.fixture
def panel_database(
    clickhouse_url: str,
    database: str,
    fixture_items: list[dict[str, Any]],
    import_board: ImportBoard,
) -> datetime:
    now = panel_now()
    load_panel_data(clickhouse_url, database, fixture_items, import_board, now)
    return now


def test_serve_answers_every_panel_from_clickhouse(
    clickhouse_url: str, database: str, panel_database: datetime, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "HUBWATCH_CLICKHOUSE_URL": clickhouse_url,
        "HUBWATCH_CLICKHOUSE_DATABASE": database,
    }
    log = tmp_path / "serve.log"
    process = spawn("serve", "--port", str(port), "--range", "all", env=env, log=log)
    try:
        wait_until(
            while_alive(process, log, lambda: VIEW_AT.search(log.read_text())), "the address"
        )
        view = f"http://127.0.0.1:{port}"
        layout = httpx.get(f"{view}/api/dashboards").json()
        assert [d["uid"] for d in layout["dashboards"]] == [d.uid for d in DASHBOARDS]
        options = httpx.get(f"{view}/api/variables/hubwatch-family/base_model").json()["options"]
        assert BASE in options
        with contextlib.closing(connect(clickhouse_url, database=database)) as client:
            for panel in panels():
                answer = httpx.get(
                    f"{view}/api/panels/{panel.id}", params={"var-base_model": BASE}, timeout=60
                ).json()
                if panel.datasource == "prometheus":
                    assert (answer["state"], answer["message"]) == ("unavailable", NO_PROMETHEUS)
                    continue
                assert answer["state"] == "data", (panel.id, answer["message"])
                # All time is the span of the data (a time series: its own first interval
                # on), as the answer says.
                span = TimeRange(_when(answer["from"]), _when(answer["to"]))
                rows = run_panel(client, panel, span, {"base_model": BASE}).rows
                assert len(answer["rows"]) == len(rows) > 0, panel.id
        plotly = httpx.get(f"{view}/static/plotly.min.js")
        assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
        page = httpx.get(f"{view}/").text
        assert "/static/plotly.min.js" in page and "https://" not in page  # nothing remote
    finally:
        terminate(process)

    refused = hubwatch(
        "serve", "--port", str(free_port()), env={"HUBWATCH_CLICKHOUSE_URL": "http://127.0.0.1:9"}
    )
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("hubwatch: no ClickHouse answers at")
    assert "Traceback" not in refused.stderr


def test_dashboards_render_takes_a_prometheus_that_answers(
    clickhouse_url: str, database: str, own_prometheus: Any, tmp_path: Path
) -> None:
    """The Prometheus check up front lets a real one through."""
    own_prometheus.up()
    out = tmp_path / "png"
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": database}
    done = hubwatch(
        "dashboards", "render", "--out", str(out), "--prometheus-url", own_prometheus.url, env=env
    )
    assert done.returncode == 0, done.stderr
    assert len(list(out.iterdir())) == len(panels())


def test_dashboards_render_points_at_all_time_when_its_ranges_hold_nothing(
    clickhouse_url: str, database: str, tmp_path: Path
) -> None:
    """Each dashboard's range ends now; a replay's models are older: the render says how to
    see them instead of leaving a folder of empty pictures unexplained."""
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": database}
    only_ranges = hubwatch("dashboards", "render", "--out", str(tmp_path / "a"), env=env)
    assert only_ranges.returncode == 0, only_ranges.stderr
    assert "try --range all" in only_ranges.stderr
    asked = hubwatch(
        "dashboards", "render", "--out", str(tmp_path / "b"), "--range", "all", env=env
    )
    assert asked.returncode == 0, asked.stderr
    assert "try --range all" not in asked.stderr


def test_dashboards_render_writes_a_png_per_panel(
    clickhouse_url: str, database: str, panel_database: datetime, tmp_path: Path
) -> None:
    from matplotlib import image

    out = tmp_path / "png"
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": database}
    done = hubwatch("dashboards", "render", "--out", str(out), "--range", "all", env=env)
    assert done.returncode == 0, done.stderr
    files = sorted(out.iterdir())
    assert len(files) == len(panels())
    assert {f.name.split("--", 1)[1].removesuffix(".png") for f in files} == {
        p.id for p in panels()
    }
    clickhouse_panels = sum(1 for p in panels() if p.datasource == "clickhouse")
    assert f"({clickhouse_panels} with data" in done.stdout
    for path in files:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        pixels = image.imread(path)  # decodes the whole image
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400, path
        assert pixels.std() > 0, path  # not a blank picture
    print(f"rendered: {out}")


def test_a_long_cell_is_cut_in_the_middle_so_ids_of_one_org_stay_apart() -> None:
    from hubwatch.view.render import _short

    base, instruct = (
        _short("mistralai/Mistral-Small-24B-Base-2501"),
        _short("mistralai/Mistral-Small-24B-Instruct-2501"),
    )
    assert base != instruct and len(base) == len(instruct) == 28
    assert base.startswith("mistralai/") and base.endswith("-Base-2501") and "…" in base
    assert _short("org/short") == "org/short"


def test_a_time_series_of_one_point_shows_it_in_the_png() -> None:
    import io

    import numpy as np
    from matplotlib import image

    from hubwatch.view.data import PanelData
    from hubwatch.view.render import draw_panel

    definition = next(p for p in panels() if p.id == "family_tree_by_relation")
    span = parse_range("all")
    # A replay on all time: one interval, at the range's end (Prometheus' last evaluation).
    data = PanelData(
        definition.id,
        "data",
        ("time", "relation", "models"),
        ((span.end, "finetune", 7),),
        time_range=span,
    )
    pixels = image.imread(io.BytesIO(draw_panel(definition, data)))[:, :, :3]
    series_colour = np.array([31, 119, 180]) / 255  # matplotlib's first (C0)
    painted = int((np.abs(pixels - series_colour).max(axis=2) < 0.08).sum())
    # The point and its legend entry as markers a reader sees (a "." dot and a line: ~70).
    assert painted >= 200, painted


def test_only_the_default_port_falls_back_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    import socket

    from hubwatch.errors import ConfigError
    from hubwatch.view import PanelSource, start_view

    async def attempt(port: int, fallback: bool) -> int:
        view = await start_view(
            PanelSource("http://127.0.0.1:9", "unused"), port, fallback=fallback
        )
        assert view is not None
        try:
            return view.port
        finally:
            await view.stop()

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level("WARNING", logger="hubwatch.view.server"):
            moved = asyncio.run(attempt(port, fallback=True))
        assert moved != port
        assert f"port {port} (the default) is taken; the web view is on {moved}" in caplog.text
        with pytest.raises(ConfigError, match=f"port {port} is taken"):
            asyncio.run(attempt(port, fallback=False))


# Each drawn chart: its value axis' tick labels, its x axis' range and its points' times.
AXES = (
    "JSON.stringify([...document.querySelectorAll('.panel[data-state=data]')].flatMap(p => {"
    " const c = p.querySelector('.chart'); const layout = c._fullLayout;"
    " if (!layout || !layout.xaxis || !c.data || c.data[0].type === 'table') return [];"
    " const across = c.data[0].orientation === 'h';"
    " const ticks = [...c.querySelectorAll(across ? '.xtick text' : '.ytick text')]"
    "   .map(t => t.textContent);"
    " const xs = c.data.flatMap(t => across ? [] : t.x).filter(x => x !== null).sort();"
    " return [{id: p.dataset.panel, ticks, range: layout.xaxis.range, type: layout.xaxis.type,"
    "   first: xs[0], last: xs[xs.length - 1]}]; }))"
)
WHOLE_NUMBER = re.compile(r"^[\u2212-]?\d{1,3}(,\d{3})*$")  # plotly's minus is U+2212


def _when(text: str) -> datetime:
    """A plotly date (UTC wall time, as the view sends them) as an aware datetime."""
    return datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=UTC)


def test_the_view_draws_counts_whole_time_axes_over_the_range_and_says_when_empty(
    clickhouse_url: str, database: str, panel_database: datetime, tmp_path: Path
) -> None:
    """What a newcomer saw in the first `make run`: a count axis ticked "800m", one point
    on an axis from 2016, an empty box where a table had no rows."""
    port = free_port()
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": database}
    log = tmp_path / "serve.log"
    process = spawn("serve", "--port", str(port), env=env, log=log)
    try:
        wait_until(
            while_alive(process, log, lambda: VIEW_AT.search(log.read_text())), "the address"
        )
        shot = asyncio.run(_check_axes(f"http://127.0.0.1:{port}/", tmp_path / "view.png"))
    finally:
        terminate(process)
    print(f"screenshot: {shot}")


async def _check_axes(page: str, shot: Path) -> Path:
    counts = {
        p.id
        for p in panels()
        if p.unit == "short" and p.visualisation in ("timeseries", "barchart")
    }
    async with open_browser() as browser:
        await browser.goto(page)
        await browser.wait_for("document.body && document.body.dataset.ready === 'true'", "ready")
        asked = datetime.now(UTC)
        # Each dashboard's own range: the replayed crawl's models are from 2025, so the
        # architectures of the last year are none; the snapshots are of the last 30 hours.
        architectures = next(p for p in panels() if p.id == "architectures")
        note = json.loads(
            await browser.wait_for(
                "(() => { const p = document.getElementById('panel-architectures');"
                " if (p.dataset.state !== 'empty') return null;"
                " const note = p.querySelector('.note'); const text = document.createRange();"
                " text.selectNodeContents(note); const t = text.getBoundingClientRect();"
                " const box = p.getBoundingClientRect();"
                " return JSON.stringify({text: note.textContent, visible: !note.hidden,"
                "   top: box.top, height: box.height, middle: (t.top + t.bottom) / 2,"
                "   size: parseFloat(getComputedStyle(note).fontSize)}); })()",
                "the architectures panel with no rows",
            )
        )
        # In words, its own, where the eye looks: the middle of the panel, not a blank box.
        assert note["text"] == architectures.no_data == "No derivatives created in this range"
        assert note["visible"] and note["size"] >= 14, note
        assert 0.35 <= (note["middle"] - note["top"]) / note["height"] <= 0.65, note

        def drawn(charts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
            return {c["id"]: c for c in charts}

        charts = drawn(json.loads(await browser.evaluate(AXES)))
        for _ in range(120):  # a hang guard: panels refresh every 5 s
            if {"engagement_gained", "community_activity"} <= set(charts):
                break
            await asyncio.sleep(1)
            charts = drawn(json.loads(await browser.evaluate(AXES)))
        drawn_counts = counts & set(charts)
        assert {"engagement_gained", "community_activity"} <= drawn_counts, sorted(charts)
        for panel_id in drawn_counts:
            ticks = charts[panel_id]["ticks"]
            # Whole numbers with thousands separators: no "800m", no "5k".
            assert ticks and all(WHOLE_NUMBER.match(t) for t in ticks), (panel_id, ticks)
        # A day's range (the engagement dashboard's own) is a day on the axis, however
        # much of it has data.
        gained = charts["engagement_gained"]
        start, end = (_when(x) for x in gained["range"])
        assert abs(start - (asked - timedelta(hours=24))) < timedelta(hours=1), gained
        assert abs(end - asked) < timedelta(hours=1), gained

        # All time: the axis spans the data, not the years since 2015.
        switched = await browser.evaluate(
            "(() => { const s = document.getElementById('range'); s.value = 'all';"
            " s.dispatchEvent(new Event('change')); return new Date().toISOString(); })()"
        )
        await browser.wait_for(
            "[...document.querySelectorAll('.panel')]"
            f".every(p => p.dataset.updated > {json.dumps(switched)})",
            "every panel drawn again over all time",
        )
        charts = drawn(json.loads(await browser.evaluate(AXES)))
        for panel_id, chart in charts.items():
            if chart["type"] != "date":
                continue
            start, end = (_when(x) for x in chart["range"])
            first, last = _when(chart["first"]), _when(chart["last"])
            margin = (end - start) / 10
            assert first - margin <= start <= first and last <= end, (panel_id, chart)
        await browser.screenshot(shot)
        assert browser.errors == [], browser.errors
    return shot


def test_the_view_says_starting_until_the_migrations_are_applied(
    clickhouse_url: str, tmp_path: Path
) -> None:
    """The view over a database whose tables are not made yet (the first seconds of
    `hubwatch run`, or one never migrated): every panel says it is starting, the page says
    why once, no error; once migrated, the panels answer and the banner goes."""
    import uuid

    from hubwatch.view.data import STARTING

    name = f"hubwatch_test_{uuid.uuid4().hex[:10]}"
    port = free_port()
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": name}
    log = tmp_path / "serve.log"
    process = spawn("serve", "--port", str(port), env=env, log=log)
    admin = connect(clickhouse_url)
    try:
        wait_until(
            while_alive(process, log, lambda: VIEW_AT.search(log.read_text())), "the address"
        )
        asyncio.run(_check_starting(f"http://127.0.0.1:{port}/", name, STARTING, admin))
    finally:
        terminate(process)
        admin.command(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


async def _check_starting(page: str, name: str, starting: str, admin: Any) -> None:
    from hubwatch.migrate import apply_migrations

    banner = (
        "(() => { const b = document.getElementById('banner');"
        " return b.hidden ? '' : b.textContent; })()"
    )
    async with open_browser() as browser:
        await browser.goto(page)
        await browser.wait_for("document.body && document.body.dataset.ready === 'true'", "ready")
        states = json.loads(await browser.evaluate(STATES))
        # (A panel that needs the model picker waits for it: the picker has no models yet.)
        clickhouse = {p.id for p in panels() if p.datasource == "clickhouse" and not p.variables}
        for state in states:
            if state["id"] in clickhouse:
                assert (state["state"], state["note"]) == ("starting", starting), state
        assert await browser.evaluate(banner) == (
            f"{starting}: hubwatch's tables are not created yet in database {name}; run "
            "`hubwatch migrate` (or wait for `hubwatch run` to finish starting)"
        )
        await asyncio.to_thread(apply_migrations, admin, name)
        await browser.wait_for(
            "document.getElementById('panel-architectures').dataset.state === 'empty'",
            "the panels answering once migrated",
        )
        assert await browser.evaluate(banner) == ""
        assert browser.errors == [], browser.errors
