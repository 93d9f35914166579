"""Processing benchmark, in one run:

1. end-to-end events/s, Kafka -> faust (`hubwatch process`) -> ClickHouse, against bare
   aiokafka consume-and-discard of the same topic (goal >= 0.5x);
2. a backfill of a generated Hub-sized catalog with lineage through `hubwatch backfill`
   (goal < 5 min, RSS < 2 GiB; its progress bar is shown);
3. the latency of each canned query at that size (goal < 200 ms).

    .venv/bin/python bench/bench_processing.py --kafka 127.0.0.1:9092 \\
        --clickhouse http://127.0.0.1:8123

Needs Kafka and ClickHouse (``make stack-up``); prints its figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from hubwatch.clickhouse import connect
from hubwatch.events import topics
from hubwatch.migrate import apply_migrations
from hubwatch.queries import canned_queries
from hubwatch.replay import GeneratedSource
from processors.families import FamilyForest
from processors.pipeline import RawRecord, plan_batch
from processors.sinks import ClickHouseWriter
from producers.hub import model_created_from_api
from producers.publish import KafkaPublisher
from producers.topics import ensure_topics

ROOT = Path(__file__).resolve().parents[1]
HUBWATCH = [sys.executable, "-m", "hubwatch"]


async def produce(bootstrap: str, prefix: str, count: int) -> None:
    source = GeneratedSource(count, seed=1)
    observed = datetime.now(UTC)
    await ensure_topics(bootstrap, topics(prefix))
    async with KafkaPublisher(bootstrap, topic_prefix=prefix) as publisher:
        for i in range(count):
            await publisher.publish(model_created_from_api(source.item(i), observed))
            if i % 5000 == 4999:
                await publisher.flush()


async def consume(
    bootstrap: str,
    topic: str,
    count: int,
    handle: Callable[[list[RawRecord]], Awaitable[None]] | None = None,
) -> float:
    """Seconds to read ``count`` records with a bare aiokafka consumer, handing each
    fetched batch to ``handle`` (none: consume and discard)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    start = time.perf_counter()
    seen = 0
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            seen += sum(len(records) for records in batches.values())
            if handle is not None:  # the bare baseline builds nothing per record
                await handle(
                    [RawRecord(r.topic, r.key, r.value) for rs in batches.values() for r in rs]
                )
    finally:
        await consumer.stop()
    return time.perf_counter() - start


async def bare_pipeline(bootstrap: str, topic: str, count: int, clickhouse: str, db: str) -> float:
    """aiokafka consume + hubwatch's pipeline + ClickHouse insert, without faust: what the
    processing itself costs, to tell it apart from faust's per-event overhead."""
    writer = ClickHouseWriter(lambda: connect(clickhouse), db)
    forest = FamilyForest()

    async def write(records: list[RawRecord]) -> None:
        await asyncio.to_thread(writer.write, plan_batch(records, forest=forest).plans())

    try:
        return await consume(bootstrap, topic, count, write)
    finally:
        writer.close()


def e2e(args: argparse.Namespace) -> None:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    database = f"bench_{uuid.uuid4().hex[:6]}"
    n = args.events
    asyncio.run(produce(args.kafka, prefix, n))
    bare = asyncio.run(consume(args.kafka, f"{prefix}model.created", n))
    client = connect(args.clickhouse)
    apply_migrations(client, f"{database}_bare")
    processing = asyncio.run(
        bare_pipeline(args.kafka, f"{prefix}model.created", n, args.clickhouse, f"{database}_bare")
    )
    client.command(f"DROP DATABASE `{database}_bare`")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rate"
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "faust_ceiling.py"),
                args.kafka,
                f"{prefix}model.created",
                str(n),
                str(out),
            ],
            cwd=ROOT,
            capture_output=True,
            timeout=600,
            check=True,
        )
        ceiling = float(out.read_text())
    apply_migrations(client, database)
    env = {
        **os.environ,
        "HUBWATCH_KAFKA_BOOTSTRAP": args.kafka,
        "HUBWATCH_CLICKHOUSE_URL": args.clickhouse,
        "HUBWATCH_CLICKHOUSE_DATABASE": database,
        "HUBWATCH_TOPIC_PREFIX": prefix,
        "HUBWATCH_PROCESSOR_APP_ID": f"{prefix}bench",
        "HUBWATCH_BATCH_SIZE": "5000",
    }
    started = time.perf_counter()
    worker = subprocess.Popen(
        [*HUBWATCH, "--log-level", "WARNING", "process"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first = None
    try:
        while True:
            count = client.query(f"SELECT count() FROM `{database}`.models").result_rows[0][0]
            if count and first is None:
                first = time.perf_counter()
            if count >= n:
                break
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(60)
    done = time.perf_counter()
    client.command(f"DROP DATABASE `{database}`")
    client.close()
    steady = done - (first or started)
    print(
        f"e2e: {n:,} model.created events; bare aiokafka consume-and-discard "
        f"{n / bare:,.0f} events/s; Kafka -> faust -> ClickHouse {n / steady:,.0f} events/s "
        f"once flowing ({n / (done - started):,.0f}/s including worker start) "
        f"= {bare / steady:.2f}x of bare (goal >= 0.5x); aiokafka + the same pipeline + "
        f"ClickHouse, without faust: {n / processing:,.0f} events/s; faust alone, take and "
        f"ack only: {ceiling:,.0f} events/s"
    )


def backfill_and_queries(args: argparse.Namespace) -> None:
    database = f"bench_{uuid.uuid4().hex[:6]}"
    port = 18_000 + os.getpid() % 1000
    replay = subprocess.Popen(
        [
            *HUBWATCH,
            "replay",
            "--port",
            str(port),
            "--generate",
            str(args.catalog),
            "--release-all",
            "--api-quota",
            "1000000000",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in replay.stdout:  # type: ignore[union-attr]
            if "replaying" in line:
                break
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        done = subprocess.run(
            [
                *HUBWATCH,
                "--hub-url",
                f"http://127.0.0.1:{port}",
                "--clickhouse-url",
                args.clickhouse,
                "--database",
                database,
                "--log-level",
                "WARNING",
                "backfill",
                "--expect",
                str(args.catalog),
                "--progress",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        seconds = time.perf_counter() - started
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    finally:
        replay.terminate()
        replay.wait(30)
    print(done.stdout.strip())
    print(
        f"backfill: {args.catalog:,} models in {seconds:.0f}s (goal < 300s); backfill "
        f"process max RSS {max(rss, before) / 1024:.0f} MiB (goal < 2048 MiB)"
    )

    client = connect(args.clickhouse, database=database)
    for board in (
        "open_llm_leaderboard_v1_final_2024-07-07.csv",
        "open_llm_leaderboard_v2_sample1000_2025-03-21.csv",
    ):
        path = ROOT.parent / "shared" / "data" / board
        if path.exists():
            subprocess.run(
                [
                    *HUBWATCH,
                    "--clickhouse-url",
                    args.clickhouse,
                    "--database",
                    database,
                    "import",
                    "leaderboard",
                    str(path),
                ],
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
    # The tree query on the largest family: the worst case.
    biggest, family = client.query(
        "SELECT root_id, descendants FROM model_families FINAL WHERE depth = 0"
        " ORDER BY descendants DESC LIMIT 1"
    ).result_rows[0]
    params = {"by": "relation", "model": biggest, "at": "2026-01-01 00:00:00"}
    sizes = client.query(
        "SELECT (SELECT count() FROM models), (SELECT count() FROM lineage_edges),"
        " (SELECT count() FROM model_families FINAL)"
    ).result_rows[0]
    print(
        f"families: {sizes[2]:,} models in families; the largest, {biggest}, has "
        f"{family:,} descendants (the tree query's argument)"
    )
    print(
        f"canned queries over {sizes[0]:,} models and {sizes[1]:,} edges "
        f"(median of 3 runs, goal < 200 ms):"
    )
    for name, query in canned_queries().items():
        given = {k: params[k] for k in query.params}
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            client.query(query.sql, parameters=given)
            timings.append((time.perf_counter() - start) * 1000)
        print(f"  {name:20} {statistics.median(timings):8.0f} ms")
    client.command(f"DROP DATABASE `{database}`")
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    parser.add_argument("--clickhouse", default="http://127.0.0.1:8123")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--catalog", type=int, default=2_200_000)
    parser.add_argument("--skip", choices=["e2e", "backfill"], action="append", default=[])
    args = parser.parse_args()
    if "e2e" not in args.skip:
        e2e(args)
    if "backfill" not in args.skip:
        backfill_and_queries(args)


if __name__ == "__main__":
    main()
