"""Fixtures on the real stack that deploy/test.sh starts (never skipped: a missing service
fails), plus a replay server on a free port. Each test gets its own database and topics."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hubwatch.clickhouse import connect, ping
from hubwatch.migrate import apply_migrations
from hubwatch.replay import HubWorld, ListSource, ReplayServer, default_fixture, load_fixture_csv

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = default_fixture()


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, never from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("HUBWATCH_") and not name.startswith("HUBWATCH_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("HF_TOKEN", raising=False)


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the tests with `make test`, which starts the stack")
    return value


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = _required("HUBWATCH_TEST_KAFKA")
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5):
        pass
    return bootstrap


@pytest.fixture(scope="session")
def clickhouse_url() -> str:
    url = _required("HUBWATCH_TEST_CLICKHOUSE_URL")
    assert ping(url), f"ClickHouse does not answer at {url}"
    return url


@pytest.fixture
def database(clickhouse_url: str) -> Iterator[str]:
    """A fresh database with every migration applied, dropped afterwards."""
    name = f"hubwatch_test_{uuid.uuid4().hex[:10]}"
    client = connect(clickhouse_url)
    apply_migrations(client, name)
    yield name
    client.command(f"DROP DATABASE IF EXISTS `{name}`")
    client.close()


@pytest.fixture
def ch(clickhouse_url: str, database: str) -> Iterator[Any]:
    client = connect(clickhouse_url, database=database)
    yield client
    client.close()


def hold_summaries(client: Any) -> Any:
    """``client``'s database with its summaries refreshed only when a test asks (refresh()):
    a scheduled refresh between a write and a read would hide that the read is of the
    summary."""
    from hubwatch.summaries import summary_views

    for view in summary_views(client):
        client.command(f"ALTER TABLE `{view}` MODIFY REFRESH EVERY 1 DAY")
    return client


ImportBoard = Callable[[Path], Any]


@pytest.fixture
def import_board(clickhouse_url: str, database: str) -> Iterator[ImportBoard]:
    """Import a leaderboard dump into the test's database as `hubwatch import` does."""
    from processors.leaderboard import import_leaderboard
    from processors.partitions import replace_partition
    from processors.sinks import ClickHouseWriter

    def make() -> Any:
        return connect(clickhouse_url)

    writer = ClickHouseWriter(make, database)
    yield lambda path: import_leaderboard(
        path, lambda board, plans: replace_partition(make, database, board, plans), writer.write
    )
    writer.close()


@pytest.fixture
def topic_prefix() -> str:
    return f"hwtest{uuid.uuid4().hex[:8]}."


@pytest.fixture
def processor_env(
    kafka_bootstrap: str, clickhouse_url: str, database: str, topic_prefix: str, tmp_path: Path
) -> dict[str, str]:
    """Settings for a `hubwatch process` (or poll) of this test's own: its database, topics
    and consumer group."""
    return {
        "HUBWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HUBWATCH_CLICKHOUSE_URL": clickhouse_url,
        "HUBWATCH_CLICKHOUSE_DATABASE": database,
        "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
        "HUBWATCH_TOPIC_PREFIX": topic_prefix,
        "HUBWATCH_PROCESSOR_APP_ID": f"{topic_prefix}processors",
    }


@pytest.fixture(scope="session")
def fixture_items() -> list[dict[str, Any]]:
    return load_fixture_csv(FIXTURE)


@pytest.fixture(scope="session")
def fixture_depths() -> dict[str, int]:
    """The crawl's own depth column, independent of hubwatch's parsing."""
    csv.field_size_limit(1 << 30)
    with FIXTURE.open(newline="") as handle:
        return {row["model_id"]: int(row["depth"]) for row in csv.DictReader(handle)}


@pytest.fixture
async def replay(fixture_items: list[dict[str, Any]]) -> AsyncIterator[ReplayServer]:
    server = ReplayServer(HubWorld(ListSource(fixture_items)))
    async with server:
        yield server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hubwatch(*args: str, env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubwatch", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        **kwargs,
    )


def spawn(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hubwatch", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def spawn_embedded_replay(
    *args: str, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """`hubwatch run --replay` on free ports, releasing 100 models a second and polling
    every second (plus ``args``); the process and its ClickHouse URL."""
    http_port, tcp_port = free_port(), free_port()
    process = spawn(
        "run",
        "--replay",
        "--replay-rate",
        "100",
        *args,
        "--poll-interval",
        "1",
        "--http-port",
        str(http_port),
        "--tcp-port",
        str(tcp_port),
        env=env,
        log=log,
    )
    return process, f"http://127.0.0.1:{http_port}"


def terminate(process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """SIGTERM, and SIGKILL if it has not stopped within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def while_alive(
    process: subprocess.Popen[bytes], log: Path, check: Callable[[], object]
) -> Callable[[], bool]:
    """``check`` for :func:`wait_until`, failing at once (with the log) if the process
    exited instead of getting there."""

    def probe() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the processor exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        return bool(check())

    return probe


def wait_until(
    check: Callable[[], bool],
    what: str,
    timeout: float = 90.0,
    show: Callable[[], object] | None = None,
) -> None:
    """Wait for an outcome; the generous limit is a hang guard, not a performance assertion.
    ``show`` says what was there instead when it times out."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            seen = f"; saw {show()!r}" if show is not None else ""
            pytest.fail(f"timed out waiting for {what}{seen}")
        time.sleep(0.25)


def depths_from_edges(edges: list[tuple[str, str]], models: list[str]) -> dict[int, int]:
    """Depth of every model from child->parent edges (roots have depth 0)."""
    parent = dict(edges)
    histogram: dict[int, int] = {}
    for model in models:
        depth, node, seen = 0, model, {model}
        while node in parent:
            node = parent[node]
            assert node not in seen, f"cycle through {node}"
            seen.add(node)
            depth += 1
        histogram[depth] = histogram.get(depth, 0) + 1
    return dict(sorted(histogram.items()))


def malformed_items() -> list[Any]:
    """Records a hostile or broken upstream could serve, each for a different reason."""
    created = "2025-02-15T12:00:00.000Z"
    hostile = "'; DROP TABLE models; --"
    return [
        {"createdAt": created, "tags": ["no-id"]},  # missing id
        # createdAt is the event's identity: a number there is not a model we can report.
        # (Odd optional fields, such as "likes": "many", drop the field, not the model.)
        {"id": "broken/types", "createdAt": 1739620800, "tags": ["fine"]},
        {"id": hostile, "createdAt": created},  # not a repo id
        {"id": "broken/date", "createdAt": "yesterday"},
        "not an object",
        # Valid, just big: a 2 MB card. It must arrive, with its base model.
        {
            "id": "big/card",
            "createdAt": created,
            "cardData": {
                "base_model": "mistralai/Mistral-Small-24B-Base-2501",
                "notes": "x" * (2 * 1024 * 1024),
            },
        },
        # Valid, with the hostile string where strings are allowed: stored verbatim.
        {"id": "evil/tags", "createdAt": created, "tags": [hostile]},
    ]


MALFORMED_REASONS = {"missing_field", "bad_type", "bad_repo_id", "bad_datetime"}
MALFORMED_REJECTED = 5


def write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    return path


async def drain(queue: asyncio.Queue[Any]) -> list[Any]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
        queue.task_done()
    return out


async def poll_draining(poller: Any, queue: asyncio.Queue[Any]) -> list[Any]:
    """One poll, taking events off the queue as processors would (flush waits for that)."""
    task = asyncio.create_task(poller.poll_once())
    out: list[Any] = []
    while not task.done():  # flush() waits for the queue to be taken, as processors do
        out.extend(await drain(queue))
        await asyncio.sleep(0.01)
    await task
    return out + await drain(queue)


def kcat(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kcat", "-b", bootstrap, "-C", "-t", topic, "-e", "-q", "-f", "%s\\n"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


class StackPart:
    """A Kafka, ClickHouse, Prometheus or Alertmanager of one test's own, on free ports,
    started and stopped by ``deploy/stack.sh`` as a user would: a fault test takes it down
    without touching the shared stack. ``env`` holds the part's settings (stack.sh's
    environment), to change before :meth:`up`."""

    def __init__(self, part: str, stack_dir: Path, ports: dict[str, str] | None = None) -> None:
        self.part = part
        self.stack_dir = stack_dir
        self.env = {
            "STACK_DIR": str(stack_dir),
            "KAFKA_PORT": str(free_port()),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "CLICKHOUSE_HTTP_PORT": str(free_port()),
            "CLICKHOUSE_TCP_PORT": str(free_port()),
            "VENV": str(Path(sys.executable).parents[1]),
            **(ports or {}),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.env['KAFKA_PORT']}"

    @property
    def url(self) -> str:
        port = {"prometheus": "PROMETHEUS_PORT", "alertmanager": "ALERTMANAGER_PORT"}
        return f"http://127.0.0.1:{self.env[port.get(self.part, 'CLICKHOUSE_HTTP_PORT')]}"

    @property
    def log(self) -> Path:
        return self.stack_dir / self.part / f"{self.part}.log"

    def _stack(self, action: str) -> None:
        subprocess.run(
            ["bash", str(ROOT / "deploy" / "stack.sh"), action, self.part],
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
            timeout=150,
            cwd=ROOT,
        )

    def up(self) -> None:
        try:
            self._stack("up")
        except subprocess.CalledProcessError as exc:
            pytest.fail(f"deploy/stack.sh up {self.part} failed:\n{exc.stdout}{exc.stderr}")

    def down(self) -> None:
        self._stack("down")

    def kill(self) -> None:
        """SIGKILL, no goodbye: what a crash or the OOM killer does."""
        pidfile = self.stack_dir / self.part / "pid"
        os.kill(int(pidfile.read_text()), 9)
        pidfile.unlink()


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[StackPart]:
    part = StackPart("kafka", tmp_path / "stack")
    part.up()
    yield part
    part.down()


@pytest.fixture
def own_clickhouse(tmp_path: Path) -> Iterator[StackPart]:
    part = StackPart("clickhouse", tmp_path / "stack")
    part.up()
    yield part
    part.down()


@pytest.fixture
def monitoring_ports() -> dict[str, str]:
    """Free ports for one test's Prometheus and Alertmanager, which must know each other."""
    return {"PROMETHEUS_PORT": str(free_port()), "ALERTMANAGER_PORT": str(free_port())}


@pytest.fixture
def own_prometheus(tmp_path: Path, monitoring_ports: dict[str, str]) -> Iterator[StackPart]:
    """A Prometheus of the test's own with hubwatch's rules, NOT started: set its
    ``env`` (PROMETHEUS_TARGETS, PROMETHEUS_SCRAPE_INTERVAL, …), then ``.up()``."""
    part = StackPart("prometheus", tmp_path / "stack", monitoring_ports)
    yield part
    part.down()


@pytest.fixture
def own_alertmanager(tmp_path: Path, monitoring_ports: dict[str, str]) -> Iterator[StackPart]:
    """An Alertmanager of the test's own (the one ``own_prometheus`` sends to), NOT
    started: set its ``env`` (ALERTMANAGER_WEBHOOK_URL, ALERTMANAGER_GROUP_WAIT, …), then
    ``.up()``."""
    part = StackPart("alertmanager", tmp_path / "stack", monitoring_ports)
    yield part
    part.down()
