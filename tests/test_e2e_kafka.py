"""End to end on the real stack: replay -> `hubwatch poll` -> Kafka -> `hubwatch process`
(faust) -> ClickHouse, and the topic read back with kcat."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from hubwatch.replay import ReplayServer
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

    # Lose the checkpoint (a crash before it was saved): all 67 are published again with
    # the same event ids, delivered again, and ClickHouse still holds each model once.
    checkpoints = Path(env["HUBWATCH_STATE_DIR"]) / "checkpoints"
    await asyncio.to_thread(lambda: [p.unlink() for p in checkpoints.glob("*.json")])
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
