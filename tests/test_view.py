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
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubwatch.clickhouse import connect
from hubwatch.panels import DASHBOARDS, panels, run_panel, variable_options
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
        lone = json.loads(await browser.evaluate(LONE_POINTS))
        assert lone, "the replay on all time has a time series at a single instant"
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
                rows = run_panel(client, panel, parse_range("all"), {"base_model": BASE}).rows
                assert answer["state"] == "data", (panel.id, answer["message"])
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
