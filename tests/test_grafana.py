"""Grafana, proven without Grafana: the committed dashboards are what the code generates
(grafana-foundation-sdk's Grafana 12 build), every panel's query is in them as defined,
every PromQL expression passes promtool (Prometheus's own parser) and names only contract
metrics, and `hubwatch grafana push` provisions a local server speaking Grafana's HTTP API,
idempotently."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from hubwatch.panels import DASHBOARDS, panels
from hubwatch.panels.grafana import dashboard_json, out_of_date
from tests.conftest import ROOT, hubwatch

PROMTOOL = "/usr/bin/promtool"
# The metric names every helper agreed on (notes: "Contracts between helpers").
CONTRACT_METRICS = {
    "hubwatch_consumer_lag_records",
    "hubwatch_rate_limit_remaining",
    "hubwatch_rate_limit_paused_seconds_total",
    "hubwatch_poll_rounds_total",
    "hubwatch_last_poll_timestamp_seconds",
    "hubwatch_publish_errors_total",
    "hubwatch_clickhouse_write_seconds",
    "hubwatch_clickhouse_batch_rows",
    "hubwatch_clickhouse_write_retries_total",
    "hubwatch_clickhouse_write_failures_total",
    "hubwatch_alerts_fired_total",
    "hubwatch_alerts_delivered_total",
    "hubwatch_alerts_delivery_failures_total",
    "hubwatch_alerts_queued",
    "hubwatch_dead_letters_total",
    "hubwatch_events_processed_total",
    "hubwatch_clickhouse_rows_written_total",
    "hubwatch_summary_last_success_timestamp_seconds",
    "hubwatch_summary_refresh_failing",
}


# --- generated JSON -----------------------------------------------------------------------


def test_committed_dashboards_are_what_the_code_generates(tmp_path: Path) -> None:
    assert out_of_date(ROOT / "dashboards") == []
    copy = tmp_path / "dashboards"
    shutil.copytree(ROOT / "dashboards", copy)
    edited = copy / "hubwatch-ecosystem.json"
    edited.write_text(edited.read_text().replace("New models", "Fresh models"))
    checked = hubwatch("dashboards", "generate", "--check", "--out", str(copy), env={})
    assert checked.returncode == 1
    assert checked.stderr.strip().splitlines() == [
        f"hubwatch: hubwatch-ecosystem.json in {copy} differ from the code:"
        " run hubwatch dashboards generate"
    ]
    assert hubwatch("dashboards", "generate", "--out", str(copy), env={}).returncode == 0
    assert out_of_date(copy) == []


def test_sdk_is_the_grafana_12_build() -> None:
    # Its versions sort by an epoch (1769699998!10.1.0 > 1769699379!11.6.0): pip's newest
    # is the Grafana 10.1 build. The one pinned is the "next" build: schemaVersion 41.
    assert metadata.version("grafana-foundation-sdk") == "1769699241"
    assert {dashboard_json(d)["schemaVersion"] for d in DASHBOARDS} == {41}


def test_every_panel_is_in_its_dashboard_as_defined() -> None:
    for definition in DASHBOARDS:
        model = json.loads((ROOT / "dashboards" / f"{definition.uid}.json").read_text())
        assert [p["title"] for p in model["panels"]] == [p.title for p in definition.panels]
        variables = {v["name"]: v for v in model["templating"]["list"]}
        for panel, built in zip(definition.panels, model["panels"], strict=True):
            target = built["targets"][0]
            if panel.datasource == "clickhouse":
                assert built["datasource"] == {
                    "type": "grafana-clickhouse-datasource",
                    "uid": "${clickhouse}",
                }
                assert target["rawSql"] == panel.query and target["editorType"] == "sql"
                assert target["format"] == (0 if panel.visualisation == "timeseries" else 1)
            else:
                assert built["datasource"] == {"type": "prometheus", "uid": "${prometheus}"}
                assert target["expr"] == panel.query
            assert built["type"] == panel.visualisation
            assert built["fieldConfig"]["defaults"]["unit"] == panel.unit
            assert variables[panel.datasource]["type"] == "datasource"
            for name in panel.variables:
                assert variables[name]["type"] == "query"
            if panel.visualisation == "barchart":
                assert built["options"]["xField"] == panel.x
        # Every panel on the grid, none overlapping.
        cells = set()
        for built in model["panels"]:
            g = built["gridPos"]
            assert g["x"] + g["w"] <= 24
            cell = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & cell
            cells |= cell


# --- PromQL -------------------------------------------------------------------------------


def _promql(expr: str) -> str:
    """As Grafana sends it: its interval variables replaced (Prometheus does not know them)."""
    return expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")


def _promtool(tmp_path: Path, exprs: dict[str, str]) -> subprocess.CompletedProcess[str]:
    rules = {
        "groups": [
            {
                "name": "hubwatch_panels",
                "rules": [
                    {"record": f"hubwatch_panel:{name}", "expr": _promql(expr)}
                    for name, expr in exprs.items()
                ],
            }
        ]
    }
    path = tmp_path / "panels.rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )


def test_every_promql_expression_passes_promtool(tmp_path: Path) -> None:
    exprs = {p.id: p.query for p in panels() if p.datasource == "prometheus"}
    assert len(exprs) >= 6
    checked = _promtool(tmp_path, exprs)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in checked.stdout
    # The check can fail: a broken expression is refused.
    broken = _promtool(tmp_path, {"broken": "sum by (stream (hubwatch_poll_rounds_total)"})
    assert broken.returncode != 0


def test_promql_names_only_contract_metrics() -> None:
    functions = {"time", "max", "min", "sum", "rate", "histogram_quantile", "by", "on"}
    for p in panels():
        if p.datasource != "prometheus":
            continue
        names = set(re.findall(r"\b(hubwatch_\w+)", p.query))
        assert names, p.id
        for name in names:
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert base in CONTRACT_METRICS, (p.id, name)
        assert set(re.findall(r"\b([a-z_]+)\s*\(", p.query)) <= functions | {"by"}, p.id


# --- grafana push ---------------------------------------------------------------------------


class FakeGrafana(BaseHTTPRequestHandler):
    """The endpoints of Grafana's HTTP API that push uses, with Grafana's status codes:
    folders, data sources by uid, dashboards by uid and /api/dashboards/db (412 when a
    dashboard with that uid exists and overwrite is false). Every request is recorded."""

    token = "glsa_test"
    store: dict[str, dict[str, Any]]
    requests: list[tuple[str, str, Any]]

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.requests.append((method, self.path, body))
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self._send(401, {"message": "invalid API key"})
            return
        folders, sources, boards = (self.store[k] for k in ("folders", "sources", "boards"))
        path = self.path.split("?")[0]
        if match := re.fullmatch(r"/api/folders/([\w-]+)", path):
            uid = match.group(1)
            if method == "GET":
                found = folders.get(uid)
                self._send(200, found) if found else self._send(404, {"message": "not found"})
            else:
                folders[uid] = {**folders[uid], "title": body["title"]}
                self._send(200, folders[uid])
        elif path == "/api/folders" and method == "POST":
            if body["uid"] in folders:
                self._send(409, {"message": "a folder with the same uid already exists"})
            else:
                folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "id": 1}
                self._send(200, folders[body["uid"]])
        elif match := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path):
            uid = match.group(1)
            if method == "GET":
                found = sources.get(uid)
                shown = {k: v for k, v in (found or {}).items() if k != "secureJsonData"}
                self._send(200, shown) if found else self._send(404, {"message": "not found"})
            else:
                sources[uid] = {**body, "id": sources[uid]["id"]}
                self._send(200, {"message": "Datasource updated"})
        elif path == "/api/datasources" and method == "POST":
            if body["uid"] in sources:
                self._send(409, {"message": "data source with the same uid already exists"})
            else:
                sources[body["uid"]] = {**body, "id": len(sources) + 1}
                self._send(200, {"message": "Datasource added", "id": len(sources)})
        elif match := re.fullmatch(r"/api/dashboards/uid/([\w-]+)", path):
            found = boards.get(match.group(1))
            if found:
                self._send(200, found)
            else:
                self._send(404, {"message": "Dashboard not found"})
        elif path == "/api/dashboards/db" and method == "POST":
            dashboard = body["dashboard"]
            existing = boards.get(dashboard["uid"])
            if existing and not body.get("overwrite"):
                self._send(412, {"message": "The dashboard has been changed by someone else"})
                return
            version = existing["dashboard"]["version"] + 1 if existing else 1
            boards[dashboard["uid"]] = {
                "dashboard": {**dashboard, "id": 7, "version": version},
                "meta": {"folderUid": body.get("folderUid", "")},
            }
            self._send(200, {"status": "success", "uid": dashboard["uid"], "version": version})
        else:
            self._send(404, {"message": f"no route {method} {path}"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


@pytest.fixture
def grafana() -> Iterator[tuple[str, type[FakeGrafana]]]:
    handler = type(
        "Grafana",
        (FakeGrafana,),
        {"store": {"folders": {}, "sources": {}, "boards": {}}, "requests": []},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _push(url: str, *extra: str, token: str = "glsa_test") -> subprocess.CompletedProcess[str]:
    return hubwatch(
        "--clickhouse-url",
        "http://default:secret@clickhouse:8123",
        "grafana",
        "push",
        "--url",
        url,
        "--token",
        token,
        "--prometheus-url",
        "http://prometheus:9090",
        *extra,
        env={},
    )


def _writes(handler: type[FakeGrafana]) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in handler.requests if m != "GET"]


def test_push_provisions_everything_and_a_second_push_changes_nothing(
    grafana: tuple[str, type[FakeGrafana]],
) -> None:
    url, handler = grafana
    first = _push(url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"grafana {url}: 9 created, 0 updated, 0 unchanged"
    store = handler.store
    assert store["folders"]["hubwatch"]["title"] == "hubwatch"
    clickhouse = store["sources"]["hubwatch-clickhouse"]
    assert clickhouse["type"] == "grafana-clickhouse-datasource"
    assert clickhouse["jsonData"] == {
        "host": "clickhouse",
        "port": 8123,
        "protocol": "http",
        "secure": False,
        "username": "default",
        "defaultDatabase": "hubwatch",
    }
    assert clickhouse["secureJsonData"] == {"password": "secret"}
    assert store["sources"]["hubwatch-prometheus"]["url"] == "http://prometheus:9090"
    assert sorted(store["boards"]) == sorted(d.uid for d in DASHBOARDS)
    for definition in DASHBOARDS:
        saved = store["boards"][definition.uid]
        assert saved["meta"]["folderUid"] == "hubwatch"
        expected = json.loads((ROOT / "dashboards" / f"{definition.uid}.json").read_text())
        assert {k: v for k, v in saved["dashboard"].items() if k not in ("id", "version")} == (
            expected
        )
    posted = [b for m, p, b in handler.requests if p == "/api/dashboards/db"]
    assert all(b["overwrite"] is True and b["dashboard"]["id"] is None for b in posted)

    handler.requests.clear()
    second = _push(url)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"grafana {url}: 0 created, 0 updated, 9 unchanged"
    assert _writes(handler) == []

    # Someone edits a dashboard in Grafana and the ClickHouse address moves: the next push
    # puts back exactly those two, over the edit (overwrite), and nothing else.
    edited = store["boards"]["hubwatch-alerts"]["dashboard"]
    edited["title"] = "mine now"
    handler.requests.clear()
    third = hubwatch(
        "--clickhouse-url",
        "http://default:secret@clickhouse-2:8123",
        "grafana",
        "push",
        "--url",
        url,
        "--token",
        "glsa_test",
        "--prometheus-url",
        "http://prometheus:9090",
        env={},
    )
    assert third.returncode == 0, third.stderr
    assert third.stdout.strip() == f"grafana {url}: 0 created, 2 updated, 7 unchanged"
    assert _writes(handler) == [
        ("PUT", "/api/datasources/uid/hubwatch-clickhouse"),
        ("POST", "/api/dashboards/db"),
    ]
    assert store["boards"]["hubwatch-alerts"]["dashboard"]["title"] == "hubwatch / Alerts"
    assert store["boards"]["hubwatch-alerts"]["dashboard"]["version"] == 2
    assert store["sources"]["hubwatch-clickhouse"]["jsonData"]["host"] == "clickhouse-2"


def test_push_failures_are_one_line(grafana: tuple[str, type[FakeGrafana]]) -> None:
    url, handler = grafana
    refused = _push(url, token="wrong")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"hubwatch: Grafana at {url}: 401 invalid API key"
    ]
    assert handler.store["boards"] == {}
    nothing = hubwatch("grafana", "push", "--url", url, env={})
    assert nothing.returncode == 1
    assert nothing.stderr.strip() == "hubwatch: grafana push needs --token or GRAFANA_TOKEN"
    closed = _push("http://127.0.0.1:9")  # nothing listens on the discard port
    assert closed.returncode == 1
    assert len(closed.stderr.strip().splitlines()) == 1
    assert closed.stderr.startswith("hubwatch: Grafana at http://127.0.0.1:9")


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_push_to_nothing_a_bad_url_or_not_grafana_says_so_plainly() -> None:
    line = _one_line(_push("http://127.0.0.1:9"))
    assert line == "hubwatch: Grafana at http://127.0.0.1:9 does not answer (connection refused)"
    line = _one_line(_push("grafana:3000"))
    assert line == (
        "hubwatch: --url: 'grafana:3000' is not an http(s) URL like http://127.0.0.1:3000"
    )
    # Some other web server (the standard library's answers 501 with an HTML page).
    server = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        line = _one_line(_push(f"http://127.0.0.1:{server.server_address[1]}"))
    finally:
        server.shutdown()
        server.server_close()
    assert "not Grafana's HTTP API" in line and "<" not in line, line


# --- file provisioning (docker compose) -------------------------------------------------------


def test_file_provisioning_matches_the_dashboards_and_compose() -> None:
    from hubwatch.panels.grafana import (
        CLICKHOUSE_PLUGIN,
        CLICKHOUSE_UID,
        PROMETHEUS_PLUGIN,
        PROMETHEUS_UID,
    )

    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "hubwatch.yml").read_text())
    by_uid = {s["uid"]: s for s in sources["datasources"]}
    assert by_uid[CLICKHOUSE_UID]["type"] == CLICKHOUSE_PLUGIN
    assert by_uid[CLICKHOUSE_UID]["jsonData"]["host"] == "clickhouse"  # the compose service
    assert by_uid[PROMETHEUS_UID]["type"] == PROMETHEUS_PLUGIN
    # What the dashboards' data source variables pick by default.
    for definition in DASHBOARDS:
        for variable in dashboard_json(definition)["templating"]["list"]:
            if variable["type"] == "datasource":
                assert variable["current"]["value"] in by_uid
    providers = yaml.safe_load((provisioning / "dashboards" / "hubwatch.yml").read_text())
    (provider,) = providers["providers"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"] if v[0] == ".")
    assert mounts["./dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert CLICKHOUSE_PLUGIN in grafana["environment"]["GF_PLUGINS_PREINSTALL"]
    assert grafana["image"].startswith("grafana/grafana:12.")
    # The other services are still there.
    assert {"kafka", "clickhouse", "producer", "processor"} <= set(compose["services"])
