"""End to end on the real stack: replay -> `hubwatch poll` -> Kafka -> `hubwatch process`
(faust) -> ClickHouse, and the topic read back with kcat."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from hubwatch.events import topics
from hubwatch.replay import ReplayServer
from producers.hub import model_created_from_api
from producers.publish import KafkaPublisher
from producers.topics import ensure_topics
from tests.conftest import (
    MALFORMED_REASONS,
    MALFORMED_REJECTED,
    depths_from_edges,
    hubwatch,
    kcat,
    malformed_items,
    spawn,
    wait_until,
)
from tests.test_analysis import EXPECTED_WINDOWS, engagement_snapshots


@pytest.fixture
def env(
    kafka_bootstrap: str,
    clickhouse_url: str,
    database: str,
    topic_prefix: str,
    replay: ReplayServer,
    tmp_path: Path,
) -> dict[str, str]:
    return {
        "HUBWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HUBWATCH_CLICKHOUSE_URL": clickhouse_url,
        "HUBWATCH_CLICKHOUSE_DATABASE": database,
        "HUBWATCH_HUB_URL": replay.url,
        "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
        "HUBWATCH_TOPIC_PREFIX": topic_prefix,
        "HUBWATCH_PROCESSOR_APP_ID": f"{topic_prefix}processors",
        "HUBWATCH_PAGE_LIMIT": "20",
        "HUBWATCH_HUB_STREAMS": "uploads",
    }


@pytest.fixture
def processors(env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = tmp_path / "process.log"
    process = spawn("process", env=env, log=log)
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"hubwatch process did not stop on SIGTERM; log:\n{log.read_text()}")


async def _poll(env: dict[str, str]) -> str:
    done = await asyncio.to_thread(hubwatch, "poll", "hub", "--once", "--since", "all", env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[0]


def _scalar(ch: Any, sql: str) -> Any:
    return ch.query(sql).result_rows[0][0]


async def _wait_rows(ch: Any, sql: str, expected: Any, what: str) -> None:
    await asyncio.to_thread(wait_until, lambda: _scalar(ch, sql) == expected, what)


async def test_mistral_tree_through_kafka(
    env: dict[str, str],
    replay: ReplayServer,
    ch: Any,
    processors: subprocess.Popen[bytes],
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    replay.hub.release(67)
    assert await _poll(env) == "hub.uploads: published 67"
    await _wait_rows(ch, "SELECT count() FROM models FINAL", 67, "67 models in ClickHouse")
    await _wait_rows(ch, "SELECT count() FROM lineage_edges FINAL", 66, "66 edges")

    relations = ch.query("SELECT relation, count() FROM lineage_edges FINAL GROUP BY relation")
    assert relations.result_rows == [("finetune", 66)]
    edges = ch.query("SELECT derivative_id, base_model_id FROM lineage_edges FINAL").result_rows
    models = [r[0] for r in ch.query("SELECT repo_id FROM models FINAL").result_rows]
    assert depths_from_edges(edges, models) == {0: 1, 1: 22, 2: 36, 3: 8}

    # Again from the checkpoint: nothing new is published, no row is added.
    assert await _poll(env) == "hub.uploads: published 0"
    assert _scalar(ch, "SELECT count() FROM models") == 67

    published = kcat(kafka_bootstrap, f"{topic_prefix}model.created")
    assert len(published) == 67
    assert len({m["event_id"] for m in published}) == 67
    assert {m["kind"] for m in published} == {"model.created"}

    # Lose the producers' state (a crash before it was saved: the checkpoint and what is
    # tracked): all 67 are published again with the same event ids, delivered again, and
    # ClickHouse still holds each model once.
    state = Path(env["HUBWATCH_STATE_DIR"])
    await asyncio.to_thread(
        lambda: [
            p.unlink()
            for p in [*state.glob("checkpoints/*.json"), *state.glob("producers.sqlite*")]
        ]
    )
    assert await _poll(env) == "hub.uploads: published 67"
    await _wait_rows(ch, "SELECT count() FROM models", 134, "the redelivered batch")
    assert _scalar(ch, "SELECT count() FROM models FINAL") == 67
    assert _scalar(ch, "SELECT uniqExact(event_id) FROM models") == 67
    again = kcat(kafka_bootstrap, f"{topic_prefix}model.created")
    assert len(again) == 134 and {m["event_id"] for m in again} == {
        m["event_id"] for m in published
    }

    processors.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(processors.wait, 30) == 0


async def test_malformed_input_is_dead_lettered_and_the_rest_arrives(
    env: dict[str, str],
    replay: ReplayServer,
    ch: Any,
    processors: subprocess.Popen[bytes],
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    for item in malformed_items():
        replay.hub.add(item)
    replay.hub.release(len(replay.hub))
    assert await _poll(env) == "hub.uploads: published 69"
    # Garbage straight onto the topic reaches the processors' own dead-letter path.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(f"{topic_prefix}model.created", b"{not json", key=b"x/y")
        await producer.send_and_wait(
            f"{topic_prefix}model.created",
            b'{"kind": "model.exploded", "version": 1, "data": {}}',
            key=b"x/z",
        )  # compacted topics refuse keyless records
    finally:
        await producer.stop()

    await _wait_rows(ch, "SELECT count() FROM models FINAL", 69, "69 models")
    await _wait_rows(
        ch,
        "SELECT count() FROM dead_letters",
        MALFORMED_REJECTED + 2,
        "every dead letter in ClickHouse",
    )

    letters = kcat(kafka_bootstrap, f"{topic_prefix}deadletter")
    by_stage: dict[str, set[str]] = {}
    for letter in letters:
        by_stage.setdefault(letter["stage"], set()).add(letter["reason"])
    assert by_stage == {
        "producer.hub": MALFORMED_REASONS,
        f"processor.{topic_prefix}model.created": {"bad_json", "unknown_kind"},
    }
    assert len(letters) == MALFORMED_REJECTED + 2

    hostile = "'; DROP TABLE models; --"
    assert ch.query("SELECT tags FROM models FINAL WHERE repo_id = 'evil/tags'").result_rows == [
        ([hostile],)
    ]
    assert (
        _scalar(
            ch,
            f"SELECT count() FROM dead_letters WHERE payload LIKE "
            f"'%{hostile.replace(chr(39), chr(92) + chr(39))}%'",
        )
        == 1
    )
    big = ch.query(
        "SELECT base_model_id, relation, inferred FROM lineage_edges FINAL "
        "WHERE derivative_id = 'big/card'"
    ).result_rows
    assert big == [("mistralai/Mistral-Small-24B-Base-2501", "finetune", True)]


async def test_families_and_live_engagement_through_faust_across_a_restart(
    env: dict[str, str],
    ch: Any,
    fixture_items: list[dict[str, Any]],
    fixture_depths: dict[str, int],
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    """The stateful processors on Kafka: the family forest (reloaded from ClickHouse) and
    the windowed engagement table (recovered from its changelog) carry over a restart."""
    await ensure_topics(kafka_bootstrap, topics(topic_prefix))
    now = datetime(2026, 3, 10, tzinfo=UTC)
    # Newest first: children reach the processor before their parents.
    items = sorted(fixture_items, key=lambda i: i["createdAt"], reverse=True)
    created = [model_created_from_api(i, now) for i in items]
    snaps = engagement_snapshots()

    async def publish(events: list[Any]) -> None:
        async with KafkaPublisher(kafka_bootstrap, topic_prefix=topic_prefix) as publisher:
            for event in events:
                await publisher.publish(event)
            await publisher.flush()

    first = spawn("process", env=env, log=tmp_path / "process-1.log")
    try:
        await publish(created[:40] + snaps[:3])
        await _wait_rows(ch, "SELECT count() FROM models FINAL", 40, "the first 40 models")
        await _wait_rows(
            ch, "SELECT count() FROM engagement_live FINAL", 1, "the first live windows"
        )
    finally:
        first.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(first.wait, 60) == 0

    second = spawn("process", env=env, log=tmp_path / "process-2.log")
    try:
        await publish(created[40:] + snaps[3:])
        await _wait_rows(ch, "SELECT count() FROM models FINAL", 67, "all 67 models")
        await _wait_rows(
            ch,
            "SELECT max(at) FROM engagement_live FINAL",
            snaps[-1].observed_at,
            "the last snapshot's windows",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 60) == 0

    families = ch.query("SELECT model_id, root_id, depth FROM model_families FINAL").result_rows
    assert {m: d for m, _, d in families} == fixture_depths
    assert {r for _, r, _ in families} == {"mistralai/Mistral-Small-24B-Base-2501"}
    # The windows need the snapshots from before the restart: 1 h, 24 h and 7 d back.
    [latest] = ch.query("SELECT * FROM engagement_live FINAL").named_results()
    assert {k: latest[k] for k in EXPECTED_WINDOWS} == EXPECTED_WINDOWS
