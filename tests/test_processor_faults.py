"""The faust processor under faults on the real stack: killed with -9, its replacement is
at work in seconds; Kafka away for a while, it waits, says so once, and goes on."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hubwatch.clickhouse import connect
from hubwatch.errors import ConfigError
from hubwatch.events import ModelCreated, topics
from hubwatch.settings import Settings
from producers.publish import KafkaPublisher
from producers.topics import ensure_topics
from tests.conftest import StackPart, spawn, terminate, wait_until, while_alive

TAKEOVER_BOUND = 45.0
"""Seconds from a SIGKILL to the replacement's first write: measured 3-5 s with static
membership (the default), ~10 s with dynamic; faust's own 60 s session timeout: ~60 s."""


def _model(name: str) -> ModelCreated:
    now = datetime.now(UTC)
    return ModelCreated(repo_id=f"faults/{name}", created_at=now, observed_at=now)


async def _publish(bootstrap: str, prefix: str, *events: ModelCreated) -> None:
    async with KafkaPublisher(bootstrap, topic_prefix=prefix) as publisher:
        for event in events:
            await publisher.publish(event)
        await publisher.flush()


def _stored(ch: Any, model: ModelCreated) -> bool:
    rows = ch.query(
        "SELECT count() FROM models WHERE repo_id = {m:String}", parameters={"m": model.repo_id}
    ).result_rows
    return bool(rows[0][0])


def _env(bootstrap: str, clickhouse_url: str, database: str, prefix: str) -> dict[str, str]:
    return {
        "HUBWATCH_KAFKA_BOOTSTRAP": bootstrap,
        "HUBWATCH_CLICKHOUSE_URL": clickhouse_url,
        "HUBWATCH_CLICKHOUSE_DATABASE": database,
        "HUBWATCH_TOPIC_PREFIX": prefix,
        "HUBWATCH_PROCESSOR_APP_ID": f"{prefix}processors",
    }


@pytest.fixture
def stop_all() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        terminate(process)


@pytest.mark.parametrize("instance_id", ["processor-1", ""], ids=["static", "dynamic"])
async def test_a_killed_processors_replacement_works_within_seconds(
    instance_id: str,
    kafka_bootstrap: str,
    clickhouse_url: str,
    database: str,
    ch: Any,
    topic_prefix: str,
    tmp_path: Path,
    stop_all: list[subprocess.Popen[bytes]],
) -> None:
    await ensure_topics(kafka_bootstrap, topics(topic_prefix))
    env = _env(kafka_bootstrap, clickhouse_url, database, topic_prefix)
    env["HUBWATCH_PROCESSOR_INSTANCE_ID"] = instance_id  # empty: dynamic membership
    first_log, second_log = tmp_path / "process-1.log", tmp_path / "process-2.log"
    first = spawn("process", env=env, log=first_log)
    stop_all.append(first)
    before, after = _model("before-kill"), _model("after-kill")
    await _publish(kafka_bootstrap, topic_prefix, before)
    await asyncio.to_thread(
        wait_until, while_alive(first, first_log, lambda: _stored(ch, before)), "the first write"
    )

    os.kill(first.pid, signal.SIGKILL)  # no goodbye to the group: its partitions stay taken
    await asyncio.to_thread(first.wait, 30)
    killed = time.monotonic()
    second = spawn("process", env=env, log=second_log)
    stop_all.append(second)
    await _publish(kafka_bootstrap, topic_prefix, after)
    await asyncio.to_thread(
        wait_until,
        while_alive(second, second_log, lambda: _stored(ch, after)),
        "the replacement's first write",
        timeout=120,  # hang guard; the bound is asserted below
    )
    took = time.monotonic() - killed
    print(f"kill -9 -> replacement ({instance_id or 'dynamic'}) wrote a new event in {took:.1f}s")
    assert took < TAKEOVER_BOUND, second_log.read_text()[-3000:]


_OUTAGE_LINE = re.compile(r"\b(ERROR|WARNING|CRITICAL)\b")


async def test_a_kafka_outage_is_one_line_in_the_processor_log(
    own_kafka: StackPart,
    clickhouse_url: str,
    database: str,
    topic_prefix: str,
    tmp_path: Path,
    stop_all: list[subprocess.Popen[bytes]],
) -> None:
    bootstrap = own_kafka.bootstrap
    await ensure_topics(bootstrap, topics(topic_prefix))
    log = tmp_path / "process.log"
    process = spawn("process", env=_env(bootstrap, clickhouse_url, database, topic_prefix), log=log)
    stop_all.append(process)
    ch = connect(clickhouse_url, database=database)
    try:
        before, after = _model("before-outage"), _model("after-outage")
        await _publish(bootstrap, topic_prefix, before)
        await asyncio.to_thread(
            wait_until, while_alive(process, log, lambda: _stored(ch, before)), "the first write"
        )
        mark = log.stat().st_size

        await asyncio.to_thread(own_kafka.down)
        await asyncio.sleep(20)
        assert process.poll() is None, log.read_text()[-3000:]
        await asyncio.to_thread(own_kafka.up)

        await _publish(bootstrap, topic_prefix, after)
        await asyncio.to_thread(
            wait_until,
            while_alive(process, log, lambda: _stored(ch, after)),
            "a write after the outage",
            timeout=120,
        )
    finally:
        ch.close()
    outage = log.read_bytes()[mark:].decode(errors="replace").splitlines()
    loud = [line for line in outage if _OUTAGE_LINE.search(line)]
    print(f"{len(outage)} log lines since the outage began, {len(loud)} warnings or errors")
    assert len(loud) <= 5, "\n".join(loud[:50])
    assert sum("Kafka unreachable" in line for line in outage) == 1, "\n".join(loud)
    assert sum("Kafka answers again" in line for line in outage) == 1, "\n".join(outage[-50:])


def test_takeover_settings_from_the_environment() -> None:
    # Dynamic membership unless asked: a shared static id would let two processors both
    # consume every partition.
    assert Settings.from_env({}).processor_instance_id is None
    static = Settings.from_env({"HUBWATCH_PROCESSOR_INSTANCE_ID": "processor-1"})
    assert static.processor_instance_id == "processor-1"
    dynamic = Settings.from_env(
        {"HUBWATCH_PROCESSOR_INSTANCE_ID": "", "HUBWATCH_PROCESSOR_SESSION_TIMEOUT": "30"}
    )
    assert (dynamic.processor_instance_id, dynamic.processor_session_timeout) == (None, 30.0)
    with pytest.raises(ConfigError, match="between 6 and 300"):
        Settings.from_env({"HUBWATCH_PROCESSOR_SESSION_TIMEOUT": "2"})
