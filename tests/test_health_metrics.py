"""hubwatch's own health metrics (hubwatch/metrics.py), on real parts: poll rounds and the
last round per stream, the rate-limit budget, publish errors, ClickHouse writes, dead
letters counted once delivered, and the processors' consumer lag per partition; and every
long-running command (`run`, `poll`, `process`) serves them on --metrics-port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from hubwatch.clickhouse import connect
from hubwatch.errors import SchemaError, SinkError
from hubwatch.events import DeadLetter, ModelCreated, topics
from hubwatch.replay import HubWorld, ListSource, ReplayServer
from processors.aliases import AliasRow
from processors.lag import ConsumerLag
from processors.sinks import ClickHouseWriter, InsertPlan, plan_rows
from producers._http import make_client
from producers._ratelimit import RequestBudget
from producers.checkpoint import CheckpointStore
from producers.hub_uploads import HubUploadsPoller
from producers.publish import KafkaPublisher, QueuePublisher
from producers.runner import run_every
from producers.topics import ensure_topics
from tests.conftest import (
    StackPart,
    free_port,
    spawn,
    spawn_embedded_replay,
    terminate,
    wait_until,
    while_alive,
)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _until(check: Any, what: str, limit: float = 60.0) -> None:
    """wait_until for a check on this event loop's own state (``limit``: a hang guard)."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _drain(queue: asyncio.Queue[Any]) -> None:
    """The embedded processors' part: take every event, so the poller's flush returns."""
    while True:
        await queue.get()
        queue.task_done()


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(sample name, labels): value}`` from a process's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _summary_failing(port: int) -> float | None:
    """hubwatch_summary_refresh_failing of one of the migrations' summaries, None before
    the watcher has read it (or while the process does not answer)."""
    try:
        samples = scrape(port)
    except httpx.HTTPError:
        return None
    return _value(samples, "hubwatch_summary_refresh_failing", view="breakouts_now_refresh")


async def test_poll_rounds_count_ok_and_failed_and_the_last_round_stops_moving(
    fixture_items: list[dict[str, Any]], tmp_path: Path
) -> None:
    stream = "hub.uploads"
    ok_before = _sample("hubwatch_poll_rounds_total", stream=stream, outcome="ok")
    failed_before = _sample("hubwatch_poll_rounds_total", stream=stream, outcome="failed")
    server = ReplayServer(HubWorld(ListSource(fixture_items), start=10))
    await server.start()
    stop = asyncio.Event()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    draining = asyncio.create_task(_drain(queue))
    async with make_client(base_url=server.url, timeout=2.0) as client:
        poller = HubUploadsPoller(
            client,
            QueuePublisher(queue),
            CheckpointStore(tmp_path / "uploads.json"),
            overlap=timedelta(seconds=600),
            initial_lookback=None,
            page_limit=7,
        )
        started = time.time()
        rounds = asyncio.create_task(run_every(poller, 0.2, stop))
        try:
            ok = ok_before + 2
            await _until(
                lambda: _sample("hubwatch_poll_rounds_total", stream=stream, outcome="ok") >= ok,
                "two good rounds",
            )
            assert _sample("hubwatch_poll_interval_seconds", stream=stream) == 0.2
            last_ok = _sample("hubwatch_last_poll_timestamp_seconds", stream=stream)
            assert started < last_ok <= time.time()

            await server.stop()  # the upstream goes away: rounds fail, the mark stays
            failed = failed_before + 2
            await _until(
                lambda: (
                    _sample("hubwatch_poll_rounds_total", stream=stream, outcome="failed") >= failed
                ),
                "two failed rounds",
            )
            stalled = _sample("hubwatch_last_poll_timestamp_seconds", stream=stream)
            assert stalled < time.time() - 0.3
        finally:
            stop.set()
            await rounds
            draining.cancel()


def test_the_budget_exports_what_remains_and_how_long_it_paused() -> None:
    clock = [1000.0]
    budget = RequestBudget("hub", limit=500, window=300.0, clock=lambda: clock[0])
    assert _sample("hubwatch_rate_limit_limit", api="hub") == 500
    paused = _sample("hubwatch_rate_limit_paused_seconds_total", api="hub")
    budget.observe(budget.parse({"ratelimit": '"api";r=300;t=100'}))
    assert _sample("hubwatch_rate_limit_remaining", api="hub") == 300
    assert _sample("hubwatch_rate_limit_paused_seconds_total", api="hub") == paused
    # Under a fifth left: the budget pauses until the window resets, 55 s from now.
    budget.observe(
        budget.parse(
            {
                "ratelimit": '"api";r=40;t=55',
                "ratelimit-policy": '"fixed window";"api";q=1000;w=300',
            }
        )
    )
    assert _sample("hubwatch_rate_limit_remaining", api="hub") == 40
    assert _sample("hubwatch_rate_limit_limit", api="hub") == 1000
    assert _sample("hubwatch_rate_limit_paused_seconds_total", api="hub") == paused + 55
    clock[0] += 5  # a 429 within that pause extends it by 10 s, not by 60
    budget.throttled_for(60)
    assert _sample("hubwatch_rate_limit_paused_seconds_total", api="hub") == paused + 65


async def test_a_record_kafka_will_not_take_is_a_publish_error(kafka_bootstrap: str) -> None:
    before = _sample("hubwatch_publish_errors_total", kind="model.created")
    now = datetime.now(UTC)
    # No such topics (the broker creates none): the send fails once metadata times out.
    async with KafkaPublisher(
        kafka_bootstrap, topic_prefix="hwtest-missing.", request_timeout=2.0
    ) as publisher:
        with pytest.raises(SinkError):
            await publisher.publish(ModelCreated(repo_id="a/b", created_at=now, observed_at=now))
    assert _sample("hubwatch_publish_errors_total", kind="model.created") == before + 1


def _plan(rows: int) -> InsertPlan:
    rows_ = [
        AliasRow(f"old/m{i}", f"new/m{i}", "redirect", datetime.now(UTC), f"e{i}")
        for i in range(rows)
    ]
    return plan_rows("model_aliases", rows_)


def test_clickhouse_writes_latency_batch_size_retries_and_failures(
    clickhouse_url: str, database: str
) -> None:
    table = "model_aliases"

    def count(name: str) -> float:
        return _sample(name, table=table)

    seconds, batches = (
        count("hubwatch_clickhouse_write_seconds_count"),
        count("hubwatch_clickhouse_batch_rows_count"),
    )
    rows = count("hubwatch_clickhouse_batch_rows_sum")
    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    assert writer.write([_plan(7)]) == []
    writer.close()
    assert count("hubwatch_clickhouse_write_seconds_count") == seconds + 1
    assert count("hubwatch_clickhouse_batch_rows_count") == batches + 1
    assert count("hubwatch_clickhouse_batch_rows_sum") == rows + 7

    retries, failures = (
        count("hubwatch_clickhouse_write_retries_total"),
        count("hubwatch_clickhouse_write_failures_total"),
    )
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: every attempt fails
    down = ClickHouseWriter(lambda: connect(nowhere), database, retry_for=1.0)
    with pytest.raises(SinkError):
        down.write([_plan(3)])
    tried = count("hubwatch_clickhouse_write_failures_total") - failures
    assert tried >= 2
    assert count("hubwatch_clickhouse_write_retries_total") - retries == tried - 1
    assert count("hubwatch_clickhouse_batch_rows_count") == batches + 1  # none got through


async def test_an_embedded_dead_letter_is_counted_once_it_is_in_clickhouse(
    clickhouse_url: str, database: str, ch: Any
) -> None:
    from hubwatch.embedded import consume_queue

    stage, reason = "producer.test", f"held_{int(time.time() * 1000)}"
    letter = DeadLetter.of(
        stage=stage, error=SchemaError(reason, "why"), source="t", key="k", payload=b"{}"
    )
    queue: asyncio.Queue[Any] = asyncio.Queue()
    await QueuePublisher(queue).dead_letter(letter)
    assert _sample("hubwatch_dead_letters_total", stage=stage, reason=reason) == 0

    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    consumer = asyncio.create_task(consume_queue(queue, writer, 10, 0.1))
    await asyncio.wait_for(queue.join(), 60)
    consumer.cancel()
    writer.close()
    assert _sample("hubwatch_dead_letters_total", stage=stage, reason=reason) == 1
    stored = ch.query(
        "SELECT count() FROM dead_letters WHERE reason = {r:String}", parameters={"r": reason}
    ).result_rows[0][0]
    assert stored == 1


async def test_consumer_lag_per_topic_and_partition(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    await ensure_topics(kafka_bootstrap, topics(topic_prefix))
    topic = ModelCreated.topic(topic_prefix)
    now = datetime.now(UTC)
    async with KafkaPublisher(kafka_bootstrap, topic_prefix=topic_prefix) as publisher:
        for i in range(12):
            await publisher.publish(
                ModelCreated(repo_id=f"lag/m{i}", created_at=now, observed_at=now)
            )
        await publisher.flush()
    group = f"{topic_prefix}processors"
    async with ConsumerLag(kafka_bootstrap, group, [topic.name]) as lag:
        before = await lag.measure()
    assert set(before) == {(topic.name, p) for p in range(topic.partitions)}
    assert sum(before.values()) == 12  # nothing committed: all of it

    # The group commits 2 records of its fullest partition: that partition's lag drops by 2.
    (name, fullest), ahead = max(before.items(), key=lambda item: item[1])
    committer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await committer.start()
    try:
        tp = TopicPartition(name, fullest)
        committer.assign([tp])
        start = (await committer.beginning_offsets([tp]))[tp]
        await committer.commit({tp: OffsetAndMetadata(start + 2, "")})
    finally:
        await committer.stop()
    async with ConsumerLag(kafka_bootstrap, group, [topic.name]) as lag:
        after = await lag.measure()
    assert after[name, fullest] == ahead - 2
    assert sum(after.values()) == 10
    assert _sample("hubwatch_consumer_lag_records", topic=name, partition=str(fullest)) == ahead - 2


@pytest.fixture
def processes() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for process in started:
        terminate(process)


async def test_process_serves_its_consumer_lag_and_failing_writes(
    processor_env: dict[str, str],
    kafka_bootstrap: str,
    topic_prefix: str,
    own_clickhouse: StackPart,
    tmp_path: Path,
    processes: list[Any],
) -> None:
    await ensure_topics(kafka_bootstrap, topics(topic_prefix))
    port = free_port()
    env = {
        **processor_env,
        "HUBWATCH_CLICKHOUSE_URL": own_clickhouse.url,
        "HUBWATCH_METRICS_PORT": str(port),
        "HUBWATCH_LAG_INTERVAL": "1",
        "HUBWATCH_SUMMARY_WATCH_INTERVAL": "1",
    }
    log = tmp_path / "process.log"
    process = spawn("process", env=env, log=log)
    processes.append(process)
    topic = ModelCreated.topic(topic_prefix)

    def lag() -> float | None:
        try:
            samples = scrape(port)
        except httpx.HTTPError:
            return None
        values = [
            _value(samples, "hubwatch_consumer_lag_records", topic=topic.name, partition=str(p))
            for p in range(topic.partitions)
        ]
        return None if None in values else sum(v or 0 for v in values)

    await asyncio.to_thread(
        wait_until, while_alive(process, log, lambda: lag() == 0), "lag of 0", show=lag
    )
    # The summaries' watcher runs beside the lag's: the migrations' summaries are healthy.
    await asyncio.to_thread(
        wait_until, while_alive(process, log, lambda: _summary_failing(port) == 0), "summaries"
    )
    own_clickhouse.kill()  # the processor reads on but cannot write, so commits nothing
    now = datetime.now(UTC)
    async with KafkaPublisher(kafka_bootstrap, topic_prefix=topic_prefix) as publisher:
        for i in range(5):
            await publisher.publish(
                ModelCreated(repo_id=f"lag/p{i}", created_at=now, observed_at=now)
            )
        await publisher.flush()

    def failing() -> bool:
        samples = scrape(port)
        return (
            _value(samples, "hubwatch_clickhouse_write_failures_total", table="models") or 0
        ) > 0

    await asyncio.to_thread(
        wait_until, while_alive(process, log, lambda: lag() == 5), "lag of 5 records", show=lag
    )
    await asyncio.to_thread(wait_until, while_alive(process, log, failing), "failed writes")
    retries = _value(scrape(port), "hubwatch_clickhouse_write_retries_total", table="models")
    assert (retries or 0) > 0
    process.kill()  # it would retry the write for minutes before a SIGTERM is heard
    process.wait()


async def test_run_serves_poll_and_clickhouse_metrics(tmp_path: Path, processes: list[Any]) -> None:
    port = free_port()
    log = tmp_path / "run.log"
    process, _ = spawn_embedded_replay(
        env={
            "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
            "HUBWATCH_METRICS_PORT": str(port),
            "HUBWATCH_SUMMARY_WATCH_INTERVAL": "1",
        },
        log=log,
    )
    processes.append(process)

    def written() -> dict[Any, float] | None:
        try:
            samples = scrape(port)
        except httpx.HTTPError:
            return None
        rounds = _value(samples, "hubwatch_poll_rounds_total", stream="hub.uploads", outcome="ok")
        rows = _value(samples, "hubwatch_clickhouse_batch_rows_sum", table="models")
        return samples if (rounds or 0) >= 1 and (rows or 0) >= 1 else None

    await asyncio.to_thread(
        wait_until, while_alive(process, log, lambda: written() is not None), "rounds and rows"
    )
    samples = written()
    assert samples is not None
    assert (_value(samples, "hubwatch_last_poll_timestamp_seconds", stream="hub.uploads") or 0) > 0
    assert (_value(samples, "hubwatch_clickhouse_write_seconds_count", table="models") or 0) >= 1
    await asyncio.to_thread(
        wait_until, while_alive(process, log, lambda: _summary_failing(port) == 0), "summaries"
    )
