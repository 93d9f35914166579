"""Poison records: each is written or dead-lettered with its stage and reason, and the
processing goes on. On the real stack (records produced with kcat into a running
``hubwatch process``), at the function level (the embedded path: ``plan_batch`` and the
writer against the real ClickHouse), and across a ClickHouse killed and restarted."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from hubwatch.clickhouse import connect
from hubwatch.errors import SchemaError, SinkError
from hubwatch.events import (
    DEAD_LETTER_MAX_BYTES,
    Event,
    ModelCommit,
    ModelCreated,
    ModelDiscussion,
    ModelSnapshot,
    encode,
    topics,
)
from hubwatch.migrate import apply_migrations
from processors.pipeline import RawRecord, plan_batch
from processors.sinks import ClickHouseWriter
from processors.validate import RowValidator, column_check
from producers.publish import KafkaPublisher
from producers.topics import ensure_topics
from tests.conftest import StackPart, kcat, spawn, wait_until

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Snapshots are recent: raw ones older than their 90-day TTL are dropped on insert.
SNAPSHOT_T = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
CONTROL_BYTES = bytes(range(1, 32)) * 10_000  # ~300 KB; JSON writes each as six bytes
# A rule the column types do not show, so only the server can refuse the row.
CONSTRAINT = "ALTER TABLE models ADD CONSTRAINT likes_sane CHECK likes IS NULL OR likes < 1e9"


def created(repo_id: str, **fields: Any) -> ModelCreated:
    return ModelCreated(repo_id, T0, T0, author=repo_id.split("/")[0], **fields)


def snapshot(repo_id: str, downloads: int, **fields: Any) -> ModelSnapshot:
    return ModelSnapshot(repo_id, SNAPSHOT_T, downloads=downloads, likes=1, **fields)


def surrogate_discussion() -> bytes:
    """A discussion whose title is a lone surrogate: valid JSON, not encodable as UTF-8."""
    good = ModelDiscussion("good/one", 7, "PLACEHOLDER", "open", False, T0)
    return encode(good).replace(b"PLACEHOLDER", b"\\ud800")


def poison(prefix: str) -> list[tuple[str, bytes, bytes | None, tuple[str, str] | None]]:
    """(topic, key, value, expected (stage, reason)); None: skipped (a tombstone)."""
    created_topic, snapshot_topic = f"{prefix}model.created", f"{prefix}model.snapshot"
    commit_topic, discussion_topic = f"{prefix}model.commit", f"{prefix}model.discussion"
    stage = f"processor.{prefix}"
    return [
        (created_topic, b"gone/model", None, None),
        (created_topic, b"ctl/bytes", CONTROL_BYTES, (f"{stage}model.created", "bad_json")),
        (
            snapshot_topic,
            b"good/one",
            encode(snapshot("good/one", -5)),
            (f"{stage}model.snapshot", "out_of_range"),
        ),
        (
            commit_topic,  # a snapshot on the commits' topic
            b"good/one",
            encode(snapshot("good/one", 5)),
            (f"{stage}model.commit", "kind_mismatch"),
        ),
        (
            created_topic,
            b"someone/else",
            encode(created("good/keyed")),
            (f"{stage}model.created", "key_mismatch"),
        ),
        (
            discussion_topic,
            b"good/one",
            surrogate_discussion(),
            (f"{stage}model.discussion", "bad_string"),
        ),
        (
            created_topic,  # passes every column check; the server's constraint refuses it
            b"too/liked",
            encode(created("too/liked", likes=2_000_000_000)),
            ("processor.clickhouse.models", "violated_constraint"),
        ),
    ]


def good_events() -> list[Event]:
    return [
        created("good/one", base_models=("base/model",), base_models_relation="finetune"),
        created("good/two"),
        created("base/model"),
        snapshot("good/one", 10),
        ModelCommit("good/one", "abc123", T0, title="init"),
    ]


def kcat_produce(bootstrap: str, topic: str, key: bytes, value: bytes | None, tmp: Path) -> None:
    """One record, as an operator's tool would send it: a file as the value, or a null value
    (``-Z``: an empty value is sent as NULL, the tombstone of a compacted topic)."""
    base = ["kcat", "-b", bootstrap, "-P", "-t", topic]
    if value is None:
        command, stdin = [*base, "-Z", "-K", "\t"], key + b"\t\n"
    else:
        path = tmp / f"record-{abs(hash((topic, key, value)))}"
        path.write_bytes(value)
        command, stdin = [*base, "-k", key.decode(), str(path)], b""
    subprocess.run(command, input=stdin, check=True, capture_output=True, timeout=60)


def _letters(ch: Any) -> set[tuple[str, str]]:
    return set(ch.query("SELECT stage, reason FROM dead_letters").result_rows)


def _count(ch: Any, table: str) -> int:
    return int(ch.query(f"SELECT count() FROM {table} FINAL").result_rows[0][0])


async def lag(bootstrap: str, group: str, prefix: str) -> int:
    """Records of the prefix's topics the group has not committed yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [
            TopicPartition(spec.name, p) for spec in topics(prefix) for p in range(spec.partitions)
        ]
        ends = await consumer.end_offsets(partitions)
        return sum(
            end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items()
        )
    finally:
        await consumer.stop()
        await admin.close()


@pytest.fixture
def env(processor_env: dict[str, str]) -> dict[str, str]:
    return processor_env


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"hubwatch process did not stop on SIGTERM; log:\n{log.read_text()}")


@pytest.fixture
def processor(
    env: dict[str, str], ch: Any, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    ch.command(CONSTRAINT)
    asyncio.run(ensure_topics(kafka_bootstrap, topics(topic_prefix)))
    log = tmp_path / "process.log"
    process = spawn("process", env=env, log=log)
    yield process
    stop(process, log)


async def test_poison_records_are_dead_lettered_and_the_processor_keeps_consuming(
    env: dict[str, str],
    ch: Any,
    processor: subprocess.Popen[bytes],
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    cases = poison(topic_prefix)
    # Poison first, then good records behind it on the same topics and partitions.
    for topic, key, value, _ in cases:
        await asyncio.to_thread(kcat_produce, kafka_bootstrap, topic, key, value, tmp_path)
    for event in good_events():
        topic = f"{topic_prefix}{event.KIND}"
        await asyncio.to_thread(
            kcat_produce, kafka_bootstrap, topic, event.key.encode(), encode(event), tmp_path
        )

    expected = {letter for *_, letter in cases if letter is not None}
    await asyncio.to_thread(
        wait_until, lambda: _letters(ch) == expected, "every dead letter", show=lambda: _letters(ch)
    )
    await asyncio.to_thread(wait_until, lambda: _count(ch, "models") == 3, "the good models")
    assert {r[0] for r in ch.query("SELECT repo_id FROM models FINAL").result_rows} == {
        "good/one",
        "good/two",
        "base/model",
    }
    assert _count(ch, "lineage_edges") == 1
    assert ch.query("SELECT repo_id, downloads FROM model_snapshots").result_rows == [
        ("good/one", 10)
    ]
    assert _count(ch, "community_events") == 1
    # One letter per poison record (the tombstone is skipped, as documented), none larger
    # than the bound on the topic, the control bytes cut to fit and flagged.
    assert ch.query("SELECT count() FROM dead_letters").result_rows == [(len(expected),)]
    [(size, truncated, kept)] = ch.query(
        "SELECT payload_bytes, truncated, length(payload) FROM dead_letters"
        " WHERE reason = 'bad_json'"
    ).result_rows
    assert (size, truncated) == (len(CONTROL_BYTES), True) and 0 < kept < len(CONTROL_BYTES)
    on_topic = await asyncio.to_thread(kcat, kafka_bootstrap, f"{topic_prefix}deadletter")
    assert len(on_topic) == len(expected)
    assert max(len(json.dumps(m, ensure_ascii=False).encode()) for m in on_topic) <= (
        DEAD_LETTER_MAX_BYTES
    )
    refused = next(m for m in on_topic if m["stage"] == "processor.clickhouse.models")
    assert refused["key"] == "too/liked" and refused["source"] == f"{topic_prefix}model.created"

    assert processor.poll() is None, "the processor died"
    group = env["HUBWATCH_PROCESSOR_APP_ID"]
    lags: list[int] = []

    def caught_up() -> bool:
        lags.append(asyncio.run(lag(kafka_bootstrap, group, topic_prefix)))
        return lags[-1] == 0

    await asyncio.to_thread(wait_until, caught_up, "consumer lag 0", show=lambda: lags[-1])
    assert processor.poll() is None, "the processor died"


def test_poison_records_at_the_function_level(clickhouse_url: str, database: str, ch: Any) -> None:
    """The same cases through the functions both modes share: plan_batch, then the writer
    (which, as in the embedded mode, writes the refused rows' letters to dead_letters)."""
    ch.command(CONSTRAINT)
    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    validator = RowValidator(writer.column_types())
    prefix = "hubwatch."
    cases = poison(prefix)
    records = [RawRecord(topic, key, value) for topic, key, value, _ in cases]
    records += [RawRecord(f"{prefix}{e.KIND}", e.key.encode(), encode(e)) for e in good_events()]
    # In process (embedded mode's events) too: values the tables cannot hold.
    inf_score = snapshot("good/two", 3, trending_score=float("inf"))
    ancient = ModelCommit("good/two", "def456", datetime(1800, 1, 1, tzinfo=UTC))
    batch = plan_batch([*records, inf_score, ancient], validator=validator, topic_prefix=prefix)
    assert batch.tombstones == 1
    refused = writer.write(batch.plans())
    writer.close()

    assert [(d.stage, d.reason) for d in refused] == [
        ("processor.clickhouse.models", "violated_constraint")
    ]
    expected = {letter for *_, letter in cases if letter is not None} | {
        ("processor.model.snapshot", "not_finite"),
        ("processor.model.commit", "out_of_range"),
    }
    assert _letters(ch) == expected
    assert _count(ch, "models") == 3 and _count(ch, "model_snapshots") == 1
    assert _count(ch, "community_events") == 1
    [(size, truncated)] = ch.query(
        "SELECT payload_bytes, truncated FROM dead_letters WHERE reason = 'bad_json'"
    ).result_rows
    assert (size, truncated) == (len(CONTROL_BYTES), True)


def test_a_server_error_is_not_blamed_on_the_rows(
    clickhouse_url: str, database: str, ch: Any
) -> None:
    """A refusal about the server's state (here a table gone: UNKNOWN_TABLE) is retried and
    then raised, so the batch stays unacknowledged; it never bisects good rows into dead
    letters."""
    ch.command("DROP TABLE model_snapshots")
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(0.05)

    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database, retry_for=0.5, sleep=sleep)
    batch = plan_batch([snapshot(f"good/m{i}", i) for i in range(8)])
    with pytest.raises(SinkError) as failed:
        writer.write(batch.plans())
    writer.close()
    assert failed.value.retriable and failed.value.code == 60
    assert sleeps, "a server-state error is retried before it is raised"
    assert ch.command("SELECT count() FROM dead_letters") == 0


@pytest.mark.parametrize(
    ("type_name", "value", "reason"),
    [
        ("UInt64", -1, "out_of_range"),
        ("Nullable(UInt64)", 2**64, "out_of_range"),
        ("Nullable(UInt64)", None, None),
        ("UInt16", 65_535, None),
        ("UInt16", 65_536, "out_of_range"),
        ("Int64", -(2**63), None),
        ("UInt32", True, "bad_type"),
        ("Nullable(Float64)", float("nan"), "not_finite"),
        ("Float64", 1.5, None),
        ("String", "x" * (64 * 1024 + 1), "too_long"),
        ("String", "\udc80", "bad_string"),
        ("LowCardinality(String)", "x" * 2000, "too_long"),
        ("Array(LowCardinality(String))", ("a", "b"), None),
        ("Array(String)", ("a", 5), "bad_type"),
        ("DateTime64(3, 'UTC')", datetime(1899, 12, 31, tzinfo=UTC), "out_of_range"),
        ("Nullable(DateTime64(3, 'UTC'))", datetime(2299, 12, 31, tzinfo=UTC), None),
        ("DateTime('UTC')", T0 + timedelta(days=365 * 100), "out_of_range"),
        ("DateTime64(3, 'UTC')", T0.replace(tzinfo=None), "naive_datetime"),
        ("Bool", 1, "bad_type"),
    ],
)
def test_column_checks_follow_clickhouse_types(
    type_name: str, value: object, reason: str | None
) -> None:
    check = column_check(type_name, "t.c")
    if reason is None:
        check(value)
        return
    with pytest.raises(SchemaError) as refused:
        check(value)
    assert refused.value.reason == reason


async def test_writer_resumes_after_clickhouse_is_killed_and_restarted(
    own_clickhouse: StackPart,
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    database = "hubwatch_resume"
    client = connect(own_clickhouse.url)
    apply_migrations(client, database)
    client.close()
    env = {
        "HUBWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HUBWATCH_CLICKHOUSE_URL": own_clickhouse.url,
        "HUBWATCH_CLICKHOUSE_DATABASE": database,
        "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
        "HUBWATCH_TOPIC_PREFIX": topic_prefix,
        "HUBWATCH_PROCESSOR_APP_ID": f"{topic_prefix}processors",
    }
    await ensure_topics(kafka_bootstrap, topics(topic_prefix))

    async def publish(events: list[Event]) -> None:
        async with KafkaPublisher(kafka_bootstrap, topic_prefix=topic_prefix) as publisher:
            for event in events:
                await publisher.publish(event)
            await publisher.flush()

    def models() -> int:
        try:
            with_client = connect(own_clickhouse.url, database=database)
        except Exception:
            return -1
        try:
            return _count(with_client, "models")
        finally:
            with_client.close()

    log = tmp_path / "process.log"
    process = spawn("process", env=env, log=log)
    try:
        await publish([created(f"before/m{i}") for i in range(5)])
        await asyncio.to_thread(wait_until, lambda: models() == 5, "the first models")

        own_clickhouse.kill()
        await publish([created(f"during/m{i}") for i in range(5)])
        await asyncio.to_thread(
            wait_until,
            lambda: "ClickHouse write failed" in log.read_text(),
            "the writer to meet the outage",
        )
        await asyncio.to_thread(own_clickhouse.up)
        await asyncio.to_thread(
            wait_until, lambda: models() == 10, "the models sent during the outage", 180.0
        )
        assert process.poll() is None, "the processor died"
    finally:
        stop(process, log)
