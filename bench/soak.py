"""Soak: the distributed pipeline on the real stack, hit with faults at random for a while.

A generated world of ``--models`` models (a share listed at start, the rest released at
``--rate`` per second) is polled by ``hubwatch poll hub`` into a private Kafka and processed
by ``hubwatch process`` into a private ClickHouse, both started by ``deploy/stack.sh`` on
free ports. Uploads start arriving with the first fault. Every ``--every`` seconds (on
average) one fault is injected: first, in a random order, each poison kind below once and
one Kafka outage of ``--outage`` seconds (longer than the producers' timeouts); then, while
time remains, faults at random:

- kill -9 of the poller, of the processor, of Kafka or of ClickHouse, each restarted after a
  random pause (as a supervisor would);
- a poison record produced with kcat: a tombstone on ``model.created``, ~300 KB of control
  bytes, a snapshot with negative downloads, a record whose kind does not match its topic,
  one whose Kafka key differs from its envelope key, bytes that are not JSON.

A process that exits by itself is restarted too, and counted. After ``--seconds`` the faults
stop, the world finishes releasing, and the run waits for the pipeline to settle. Then it
prints released against stored models, edges and family rows (expected values come from the
generator's own parent arrays, not from hubwatch), duplicates before and after ``FINAL``,
dead letters by reason against poison records sent, and recovery times (from the fault to
the next model written, the restarted service's own start included).

    .venv/bin/python bench/soak.py --seconds 300

Needs Java, the Kafka jars and kcat (``deploy/install.sh``); prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect

from hubwatch.replay import GeneratedSource, HubWorld, ReplayServer

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """The private Kafka and ClickHouse, through deploy/stack.sh."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.env = {
            "STACK_DIR": str(directory),
            "KAFKA_PORT": str(free_port()),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "CLICKHOUSE_HTTP_PORT": str(free_port()),
            "CLICKHOUSE_TCP_PORT": str(free_port()),
            "VENV": str(Path(sys.executable).parents[1]),
        }
        self.bootstrap = f"127.0.0.1:{self.env['KAFKA_PORT']}"
        self.url = f"http://127.0.0.1:{self.env['CLICKHOUSE_HTTP_PORT']}"

    def run(self, action: str, part: str = "all") -> float:
        started = time.monotonic()
        subprocess.run(
            ["bash", str(ROOT / "deploy" / "stack.sh"), action, part],
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
            timeout=300,
            cwd=ROOT,
        )
        return time.monotonic() - started

    def kill(self, part: str) -> None:
        pidfile = self.dir / part / "pid"
        with contextlib.suppress(OSError, ValueError):  # already gone
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        pidfile.unlink(missing_ok=True)


class Supervised:
    """A hubwatch command restarted whenever it is not running, as systemd would."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.args, self.env, self.logs = name, args, env, logs
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.exits: Counter[int] = Counter()
        "Exit codes of runs that ended by themselves (not killed by the soak)."

    def start(self) -> None:
        self.starts += 1
        log = (self.logs / f"{self.name}-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hubwatch", *self.args],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def check(self) -> bool:
        """Restart it if it ended by itself; True if it did."""
        if self.process is not None and self.process.poll() is not None:
            self.exits[self.process.returncode] += 1
            self.start()
            return True
        return False

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_CONTROL = [b for b in range(1, 32) if b not in (0x1D, 0x1E)]


def _envelope(kind: str, key: str, data: dict[str, Any]) -> bytes:
    body = {"kind": kind, "version": 1, "event_id": uuid.uuid4().hex, "key": key, "data": data}
    return json.dumps(body).encode()


def poison_records(prefix: str, rng: random.Random) -> dict[str, tuple[str, bytes | None, bytes]]:
    """name -> (topic, key, value); value b"" with key is sent as a tombstone (kcat -Z)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    repo = f"poison/model-{rng.randrange(10**6)}"
    snapshot = {"repo_id": repo, "observed_at": now, "downloads": -5, "likes": 1}
    created = {"repo_id": repo, "created_at": now, "observed_at": now}
    # Control bytes, less the two kcat delimiters below.
    control = bytes(rng.choice(_CONTROL) for _ in range(300_000))
    return {
        "tombstone": (f"{prefix}model.created", repo.encode(), b""),
        "control_bytes": (f"{prefix}model.created", repo.encode(), control),
        "negative_downloads": (
            f"{prefix}model.snapshot",
            repo.encode(),
            _envelope("model.snapshot", repo, snapshot),
        ),
        "kind_mismatch": (
            f"{prefix}model.snapshot",
            repo.encode(),
            _envelope("model.created", repo, created),
        ),
        "key_mismatch": (
            f"{prefix}model.created",
            b"someone/else",
            _envelope("model.created", repo, created),
        ),
        "not_json": (f"{prefix}model.commit", repo.encode(), b"\xff\xfe{not json"),
    }


def produce(bootstrap: str, topic: str, key: bytes | None, value: bytes) -> None:
    # One record per call: kcat reads the value from a file, so any bytes survive.
    with tempfile.NamedTemporaryFile() as handle:
        handle.write((key or b"") + b"\x1d" + value)
        handle.flush()
        command = ["kcat", "-b", bootstrap, "-P", "-t", topic, "-K", "\x1d", "-D", "\x1e"]
        if not value:
            command.append("-Z")  # empty value -> NULL: a tombstone
        command += ["-l", handle.name]
        subprocess.run(command, check=True, capture_output=True, timeout=60)


def expected_from_generator(source: GeneratedSource, released: int) -> dict[str, Any]:
    """Models, edges and family shape from the generator's parent arrays (independent of
    hubwatch's parsing): primary base = parent, merges name a second base."""
    models = {source.repo_id(i) for i in range(released)}
    edges = set()
    depth: dict[int, int] = {}
    root: dict[int, int] = {}
    for i in range(released):
        for p in (source.parent[i], source.second_parent[i]):
            if p >= 0:
                edges.add((source.repo_id(i), source.repo_id(p)))
        parent = source.parent[i]
        depth[i] = 0 if parent < 0 else depth[parent] + 1
        root[i] = i if parent < 0 else root[parent]
    # A family is a base with its derivatives: a model with neither has no family row.
    has_children = {source.parent[i] for i in range(released)}
    families = {
        source.repo_id(i): (source.repo_id(root[i]), depth[i])
        for i in range(released)
        if source.parent[i] >= 0 or i in has_children
    }
    return {"models": models, "edges": edges, "families": families}


async def soak(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="hubwatch-soak-"))
    stack = Stack(work / "stack")
    print(f"soak: work dir {work}")
    print(f"stack up in {stack.run('up'):.1f}s: kafka {stack.bootstrap}, clickhouse {stack.url}")
    try:
        await _soak(args, work, stack)
    finally:
        stack.run("down")
    print(f"logs: {work}")


async def _soak(args: argparse.Namespace, work: Path, stack: Stack) -> None:
    rng = random.Random(args.seed)

    arriving = int(args.rate * args.seconds)
    listed = args.models - arriving
    spacing = 1.0 / args.rate
    source = GeneratedSource(
        args.models,
        seed=args.seed,
        spacing=spacing,
        start=datetime.fromtimestamp(time.time() - listed * spacing, UTC),
    )
    world = HubWorld(source, start=listed)  # uploads arrive from the first fault on
    prefix = f"soak{uuid.uuid4().hex[:6]}."
    database = f"soak_{uuid.uuid4().hex[:8]}"
    env = {
        "HUBWATCH_KAFKA_BOOTSTRAP": stack.bootstrap,
        "HUBWATCH_CLICKHOUSE_URL": stack.url,
        "HUBWATCH_CLICKHOUSE_DATABASE": database,
        "HUBWATCH_TOPIC_PREFIX": prefix,
        "HUBWATCH_STATE_DIR": str(work / "state"),
        "HUBWATCH_INITIAL_LOOKBACK_SECONDS": "",
        "HUBWATCH_HUB_STREAMS": "uploads,edits",
        "HUBWATCH_POLL_INTERVAL": "2",
        "HUBWATCH_EDITS_INTERVAL": "10",
        "HUBWATCH_GITHUB_REPOS": "",
    }
    sent: Counter[str] = Counter()
    restarts: dict[str, list[float]] = defaultdict(list)
    injected: Counter[str] = Counter()

    def client() -> Any:
        host, port = stack.url.rsplit("//", 1)[1].split(":")
        return clickhouse_connect.get_client(
            host=host, port=int(port), database=database, connect_timeout=2, send_receive_timeout=30
        )

    def count(sql: str) -> int:
        try:
            with client() as ch:
                return int(ch.command(sql))
        except Exception:  # ClickHouse may be the part that is down
            return -1

    def stored_models() -> int:
        return count("SELECT count() FROM models FINAL")

    async with ReplayServer(world, api_quota=100_000) as server:
        env["HUBWATCH_HUB_URL"] = server.url
        processor = Supervised("process", ["process"], env, work)
        poller = Supervised("poll", ["poll", "hub"], env, work)
        try:
            processor.start()
            await asyncio.sleep(3)  # the processor creates the database and topics first
            poller.start()

            async def supervise_until(check: Callable[[], bool], limit: float) -> float | None:
                """Keep both processes running until ``check``; seconds taken, None on timeout."""
                started = time.monotonic()
                while time.monotonic() - started < limit:
                    processor.check()
                    poller.check()
                    if await asyncio.to_thread(check):
                        return time.monotonic() - started
                    await asyncio.sleep(0.5)
                return None

            async def recovery(what: str, since: float) -> None:
                """From a restart to the next model written: the pipeline works again."""
                before = await asyncio.to_thread(stored_models)
                took = await supervise_until(lambda: stored_models() > before, 240)
                # From the fault, not from the restart: the service's own start counts.
                restarts[what].append(
                    time.monotonic() - since if took is not None else float("inf")
                )

            await supervise_until(lambda: stored_models() >= listed, 600)
            print(f"initial listing of {listed:,} models stored; faults for {args.seconds:.0f}s")
            kinds = sorted(poison_records(prefix, rng))
            # Every poison kind and one Kafka outage longer than the producers' timeouts come
            # first, in a random order; random faults follow while time remains.
            plan = [f"poison:{kind}" for kind in kinds] + ["kafka_outage"]
            rng.shuffle(plan)
            faults = ["kill_poller", "kill_processor", "kill_kafka", "kill_clickhouse"]
            faults += [f"poison:{kind}" for kind in kinds]
            world.release_from_now(args.rate)
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                await supervise_until(lambda: False, rng.uniform(0.5, 1.5) * args.every)
                fault = plan.pop() if plan else rng.choice(faults)
                injected[fault.split(":")[0]] += 1
                pause = rng.uniform(0, 5)
                since = time.monotonic()
                if fault == "kill_poller":
                    poller.kill()
                    await asyncio.sleep(pause)
                    poller.start()
                    await recovery("poller", since)
                elif fault == "kill_processor":
                    processor.kill()
                    await asyncio.sleep(pause)
                    processor.start()
                    await recovery("processor", since)
                elif fault in ("kill_kafka", "kill_clickhouse"):
                    part = fault.removeprefix("kill_")
                    stack.kill(part)
                    await asyncio.sleep(pause)
                    await asyncio.to_thread(stack.run, "up", part)
                    await recovery(part, since)
                elif fault == "kafka_outage":
                    await asyncio.to_thread(stack.run, "down", "kafka")
                    await supervise_until(lambda: False, args.outage)
                    await asyncio.to_thread(stack.run, "up", "kafka")
                    await recovery(f"kafka {args.outage:.0f}s down", since)
                else:
                    name = fault.removeprefix("poison:")
                    topic, key, value = poison_records(prefix, rng)[name]
                    try:
                        await asyncio.to_thread(produce, stack.bootstrap, topic, key, value)
                        sent[name] += 1
                    except subprocess.CalledProcessError as exc:
                        print(f"poison {name} not sent: {exc.stderr.decode()[-200:]}")

            print(f"faults over; injected {dict(injected)}; waiting for the pipeline to settle")
            await supervise_until(lambda: world.released >= args.models, args.seconds + 60)
            settled = await supervise_until(lambda: stored_models() >= world.released, 300)
            took = f"in {settled:.1f}s" if settled is not None else "NOT within 300s"
            print(f"settled {took} after the last release")
            await asyncio.sleep(5)  # a last batch of families and dead letters
        finally:
            poller.stop()
            processor.stop()
        released = world.released

    expected = expected_from_generator(source, released)
    with client() as ch:
        models = {r[0] for r in ch.query("SELECT repo_id FROM models FINAL").result_rows}
        edges = {
            (r[0], r[1])
            for r in ch.query(
                "SELECT derivative_id, base_model_id FROM lineage_edges FINAL"
            ).result_rows
        }
        families = {
            r[0]: (r[1], r[2])
            for r in ch.query(
                "SELECT model_id, root_id, depth FROM model_families FINAL"
            ).result_rows
        }
        duplicates = {
            table: (
                int(ch.command(f"SELECT count() FROM {table}")),
                int(ch.command(f"SELECT count() FROM {table} FINAL")),
            )
            for table in ("models", "lineage_edges", "model_families")
        }
        letters = ch.query(
            "SELECT stage, reason, count() FROM dead_letters GROUP BY stage, reason ORDER BY 3 DESC"
        ).result_rows
        poisoned = {r[0] for r in ch.query("SELECT repo_id FROM models FINAL").result_rows} - {
            source.repo_id(i) for i in range(args.models)
        }

    generated = {m for m in models if m in expected["models"]}
    right_family = sum(1 for m, shape in expected["families"].items() if families.get(m) == shape)
    print()
    print(f"released {released:,} models; stored {len(generated):,} of them")
    print(f"  missing models: {len(expected['models'] - models):,}; unexpected: {len(poisoned)}")
    print(
        f"edges: expected {len(expected['edges']):,}, stored {len(edges & expected['edges']):,}, "
        f"missing {len(expected['edges'] - edges):,}, extra {len(edges - expected['edges']):,}"
    )
    print(
        f"family rows: {len(families):,}; root and depth as the generator's: {right_family:,} "
        f"of {len(expected['families']):,}"
    )
    for table, (raw, final) in duplicates.items():
        # model_families keeps a deletion row where a model moved family: not a duplicate.
        extra = "superseded or deleted" if table == "model_families" else "duplicates"
        print(f"  {table}: {raw:,} rows before FINAL, {final:,} after ({raw - final:,} {extra})")
    print(f"poison records sent: {dict(sent)}")
    print("dead letters by stage and reason:")
    for stage, reason, n in letters:
        print(f"  {stage:40s} {reason:24s} {n}")
    print("fault -> next model stored (s):")
    for what, times in sorted(restarts.items()):
        finite = [t for t in times if t != float("inf")]
        median = statistics.median(finite) if finite else float("nan")
        print(f"  {what:10s} n={len(times)} median {median:.1f} max {max(times):.1f}")
    print(
        f"processes that exited by themselves: poller {dict(poller.exits)}, "
        f"processor {dict(processor.exits)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=5.0, help="uploads per second")
    parser.add_argument("--seconds", type=float, default=300.0, help="how long faults go on")
    parser.add_argument("--every", type=float, default=15.0, help="mean seconds between faults")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--outage", type=float, default=45.0, help="seconds of the one long Kafka outage"
    )
    asyncio.run(soak(parser.parse_args()))


if __name__ == "__main__":
    main()
