"""The operator rules end to end, on real parts: a real Prometheus (Debian's binary,
started by deploy/stack.sh) scrapes a running `hubwatch poll`, evaluates
deploy/prometheus/hubwatch-rules.yml, and a real Alertmanager delivers the alert that
fires to a webhook receiver here when the stream's upstream goes away."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import StackPart, free_port, spawn, terminate, wait_until, while_alive


class Receiver:
    """Alertmanager's webhook target: keeps every notification it is sent."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [
            alert
            for note in list(self.notifications)
            for alert in note["alerts"]
            if alert["labels"].get("alertname") == name
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def processes() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for process in started:
        terminate(process)


def test_a_stalled_stream_reaches_the_webhook_through_prometheus_and_alertmanager(
    processor_env: dict[str, str],
    own_prometheus: StackPart,
    own_alertmanager: StackPart,
    receiver: Receiver,
    tmp_path: Path,
    processes: list[Any],
) -> None:
    replay_port, metrics_port = free_port(), free_port()
    replay_log, poll_log = tmp_path / "replay.log", tmp_path / "poll.log"
    replay = spawn("replay", "--port", str(replay_port), "--rate", "5", env={}, log=replay_log)
    processes.append(replay)
    env = {
        **processor_env,
        "HUBWATCH_HUB_URL": f"http://127.0.0.1:{replay_port}",
        "HUBWATCH_HUB_STREAMS": "uploads",
        "HUBWATCH_METRICS_PORT": str(metrics_port),
    }
    poll = spawn("poll", "hub", "--since", "all", "--poll-interval", "1", env=env, log=poll_log)
    processes.append(poll)

    own_alertmanager.env.update(
        ALERTMANAGER_WEBHOOK_URL=receiver.url,
        ALERTMANAGER_GROUP_WAIT="1s",
        ALERTMANAGER_GROUP_INTERVAL="1s",
    )
    own_alertmanager.up()
    own_prometheus.env.update(
        PROMETHEUS_TARGETS=f"127.0.0.1:{metrics_port}",
        PROMETHEUS_SCRAPE_INTERVAL="1s",
        PROMETHEUS_EVALUATION_INTERVAL="1s",
    )
    own_prometheus.up()

    def query(expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{own_prometheus.url}/api/v1/query", params={"query": expr}, timeout=10)
        return list(answer.json()["data"]["result"])

    def firing() -> list[str]:
        alerts = httpx.get(f"{own_prometheus.url}/api/v1/alerts", timeout=10).json()
        return [a["labels"]["alertname"] for a in alerts["data"]["alerts"]]

    # Healthy: Prometheus sees rounds completing and nothing stalled.
    rounds = 'hubwatch_poll_rounds_total{stream="hub.uploads", outcome="ok"} > 2'
    wait_until(
        while_alive(poll, poll_log, lambda: bool(query(rounds))),
        "Prometheus to scrape good rounds",
        timeout=120,
        show=lambda: query("up"),
    )
    assert "HubwatchStreamStalled" not in firing()
    assert receiver.alerts("HubwatchStreamStalled") == []

    terminate(replay)  # the stream's upstream goes away; the poller lives on, failing

    wait_until(
        while_alive(poll, poll_log, lambda: bool(receiver.alerts("HubwatchStreamStalled"))),
        "the stalled-stream alert at the webhook",
        timeout=120,
        show=firing,
    )
    alert = receiver.alerts("HubwatchStreamStalled")[0]
    assert alert["status"] == "firing"
    assert alert["labels"] == {
        "alertname": "HubwatchStreamStalled",
        "severity": "warning",
        "stream": "hub.uploads",
        "job": "hubwatch",
        "instance": f"127.0.0.1:{metrics_port}",
    }
    assert alert["annotations"]["summary"].startswith(
        "stream hub.uploads has not completed a poll round for"
    )
    assert poll.poll() is None  # the poller itself carries on
