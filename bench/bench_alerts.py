"""Alert latency: from a derivative's release on the replay server to its alert's receipt at
a webhook, on the Kafka path (`hubwatch poll` -> Kafka -> `hubwatch process`) and in the
embedded mode (`hubwatch run --replay`). Goal: p95 within the poll interval + 2 s.

    .venv/bin/python bench/bench_alerts.py --kafka 127.0.0.1:9092 --clickhouse http://127.0.0.1:8123

Each mode starts with the fixture's 67 models listed, then releases ``--alerts``
quantizations of a model two levels below the watched base at random moments (so they land
anywhere in the poll cycle) and times each alert's arrival. Prints its figures, asserts
nothing. Needs Kafka and ClickHouse for the Kafka path (``make stack-up`` or the test stack).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from hubwatch.clickhouse import connect
from hubwatch.events import format_datetime
from hubwatch.migrate import apply_migrations
from hubwatch.replay import HubWorld, ListSource, ReplayServer, default_fixture
from hubwatch.replay.fixture import load_fixture_csv

ROOT = Path(__file__).resolve().parents[1]
WATCHED = "mistralai/Mistral-Small-24B-Instruct-2501"
PARENT = "huihui-ai/Mistral-Small-24B-Instruct-2501-abliterated"
TEMPLATE = "mlx-community/Mistral-Small-24B-Instruct-2501-abliterated"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _item(template: dict[str, Any], repo_id: str) -> dict[str, Any]:
    item = copy.deepcopy(template)
    now = format_datetime(datetime.now(UTC))
    tags = [t for t in item["tags"] if not t.startswith("base_model:")]
    item.update(
        id=repo_id,
        author=repo_id.split("/")[0],
        createdAt=now,
        lastModified=now,
        tags=[*tags, "gguf", f"base_model:{PARENT}", f"base_model:quantized:{PARENT}"],
        baseModels={"relation": "quantized", "models": [{"id": PARENT, "_id": ""}]},
    )
    return item


class Webhook:
    """The receiving end: when each model's alert arrived."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.arrived: dict[str, float] = {}
        self.duplicates = 0
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Webhook:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        at = time.time()
        body = await request.json()
        for model in body["models"]:
            if model in self.arrived:
                self.duplicates += 1
            self.arrived.setdefault(model, at)
        return web.Response()


def _rules(path: Path, port: int) -> None:
    path.write_text(
        "targets:\n"
        f"  bench: {{type: webhook, url: 'http://127.0.0.1:{port}/hook'}}\n"
        "rules:\n"
        "  - name: quants-below-watched\n"
        f"    match: {{base_model: {WATCHED}, relation: quantized}}\n"
        "    targets: [bench]\n"
    )


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hubwatch", *args],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _wait(check: Any, what: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def _release_all(
    release: Any, template: dict[str, Any], hook: Webhook, n: int, spread: float, tag: str
) -> list[float]:
    """Release ``n`` derivatives at random moments; the latencies of their alerts."""
    released: dict[str, float] = {}
    rng = random.Random(7)
    for i in range(n):
        await asyncio.sleep(rng.uniform(0.2, spread))
        repo_id = f"bench-{tag}/q{i}-GGUF"
        await release(_item(template, repo_id))
        released[repo_id] = time.time()
    await _wait(lambda: set(released) <= set(hook.arrived), "every alert", 120 + 10 * n)
    return [hook.arrived[m] - t for m, t in released.items()]


def _report(mode: str, latencies: list[float], poll: float, hook: Webhook) -> None:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    goal = poll + 2
    print(
        f"{mode}: {len(ordered)} alerts, latency release -> webhook p50 {p50:.2f}s, "
        f"p95 {p95:.2f}s, max {ordered[-1]:.2f}s (poll interval {poll:g}s; goal p95 <= "
        f"{goal:g}s: {'met' if p95 <= goal else 'NOT met'}); duplicates {hook.duplicates}",
        flush=True,
    )


async def kafka_path(args: argparse.Namespace, items: list[dict[str, Any]]) -> None:
    template = next(i for i in items if i["id"] == TEMPLATE)
    prefix = f"benchalerts{uuid.uuid4().hex[:6]}."
    database = f"bench_alerts_{uuid.uuid4().hex[:6]}"
    client = connect(args.clickhouse)
    apply_migrations(client, database)
    world = HubWorld(ListSource(items))
    world.release(len(items))
    with tempfile.TemporaryDirectory() as tmp:
        async with ReplayServer(world) as server, Webhook() as hook:
            rules = Path(tmp) / "rules.yaml"
            _rules(rules, hook.port)
            env = {
                **os.environ,
                "HUBWATCH_KAFKA_BOOTSTRAP": args.kafka,
                "HUBWATCH_CLICKHOUSE_URL": args.clickhouse,
                "HUBWATCH_CLICKHOUSE_DATABASE": database,
                "HUBWATCH_TOPIC_PREFIX": prefix,
                "HUBWATCH_PROCESSOR_APP_ID": f"{prefix}processors",
                "HUBWATCH_STATE_DIR": str(Path(tmp) / "state"),
                "HUBWATCH_HUB_URL": server.url,
                "HUBWATCH_HUB_STREAMS": "uploads",
                "HUBWATCH_POLL_INTERVAL": str(args.poll_interval),
                "HUBWATCH_ALERT_RULES": str(rules),
            }
            logs = Path(tmp)
            processes = [
                _spawn(command, env, logs / f"{name}.log")
                for name, command in (
                    ("process", ["process"]),
                    ("poll", ["poll", "hub", "--since", "all"]),
                )
            ]
            try:

                def models() -> int:
                    return int(
                        client.query(f"SELECT count() FROM `{database}`.models").result_rows[0][0]
                    )

                await _wait(lambda: models() >= len(items), "the fixture's models", 180)
                await asyncio.sleep(3)  # the processor's consumer settled

                async def release(item: dict[str, Any]) -> None:
                    world.list_now(item)

                latencies = await _release_all(
                    release, template, hook, args.alerts, args.poll_interval * 1.5, "kafka"
                )
                _report("kafka", latencies, args.poll_interval, hook)
            finally:
                for process in processes:
                    _stop(process)
    client.command(f"DROP DATABASE IF EXISTS `{database}`")


async def embedded(args: argparse.Namespace, items: list[dict[str, Any]]) -> None:
    template = next(i for i in items if i["id"] == TEMPLATE)
    with tempfile.TemporaryDirectory() as tmp:
        async with Webhook() as hook:
            rules = Path(tmp) / "rules.yaml"
            _rules(rules, hook.port)
            log = Path(tmp) / "run.log"
            env = {
                **os.environ,
                "HUBWATCH_STATE_DIR": str(Path(tmp) / "state"),
                "HUBWATCH_ALERT_RULES": str(rules),
            }
            process = _spawn(
                [
                    "run",
                    "--replay",
                    "--replay-rate",
                    "100",
                    "--poll-interval",
                    str(args.poll_interval),
                    "--http-port",
                    str(_free_port()),
                    "--tcp-port",
                    str(_free_port()),
                ],
                env,
                log,
            )
            try:

                def replay_url() -> str | None:
                    found = re.search(r"replaying \d+ models at (\S+),", log.read_text())
                    return found[1] if found else None

                await _wait(lambda: replay_url() is not None, "the embedded replay", 120)
                url = str(replay_url())
                async with httpx.AsyncClient(base_url=url) as client:

                    async def released() -> int:
                        return int((await client.get("/_replay/status")).json()["released"])

                    for _ in range(1200):
                        if await released() >= len(items):
                            break
                        await asyncio.sleep(0.2)
                    await asyncio.sleep(args.poll_interval * 2)  # the fixture polled

                    async def release(item: dict[str, Any]) -> None:
                        answer = await client.post("/_replay/list", content=json.dumps(item))
                        answer.raise_for_status()

                    latencies = await _release_all(
                        release, template, hook, args.alerts, args.poll_interval * 1.5, "emb"
                    )
                _report("embedded", latencies, args.poll_interval, hook)
            finally:
                _stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    parser.add_argument("--clickhouse", default="http://127.0.0.1:8123")
    parser.add_argument("--alerts", type=int, default=20, help="derivatives released per mode")
    parser.add_argument("--poll-interval", type=float, default=5.0)
    parser.add_argument("--skip", choices=["kafka", "embedded"], action="append", default=[])
    args = parser.parse_args()
    items = load_fixture_csv(default_fixture())
    if "kafka" not in args.skip:
        asyncio.run(kafka_path(args, items))
    if "embedded" not in args.skip:
        asyncio.run(embedded(args, items))


if __name__ == "__main__":
    main()
