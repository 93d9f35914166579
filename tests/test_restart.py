"""A processor restarted with its state reloaded from ClickHouse: a known model delivered
again, then edited to hang under another base, in both modes. The reloaded forest must
compare its times with the events' (it once held naive datetimes and crashed here)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hubwatch.embedded import run_processors
from hubwatch.events import DeadLetter, Event, ModelCreated, ModelUpdated, topics
from hubwatch.settings import Settings
from processors.families import FamilyForest
from producers.hub import model_created_from_api
from producers.publish import KafkaPublisher
from producers.topics import ensure_topics
from tests.conftest import spawn, terminate, wait_until, while_alive

NEW_BASE = "elsewhere/other-base"


@pytest.fixture
def created(fixture_items: list[dict[str, Any]]) -> list[ModelCreated]:
    now = datetime(2026, 3, 10, tzinfo=UTC)
    return [model_created_from_api(item, now) for item in fixture_items]


def _known_derivative(created: list[ModelCreated]) -> ModelCreated:
    """A model with a base and a lastModified: its reloaded placement has an ``as_of``."""
    return next(e for e in created if e.base_models and e.last_modified is not None)


def _moved(model: ModelCreated) -> ModelUpdated:
    return ModelUpdated(
        repo_id=model.repo_id,
        last_modified=datetime.now(UTC),
        observed_at=datetime.now(UTC),
        changed=("base_models",),
        base_models=(NEW_BASE,),
        base_models_relation="finetune",
    )


def _placement(ch: Any, model_id: str) -> list[tuple[Any, ...]]:
    return list(
        ch.query(
            "SELECT root_id, parent_id, depth FROM model_families FINAL"
            " WHERE model_id = {m:String}",
            parameters={"m": model_id},
        ).result_rows
    )


def _count(ch: Any, sql: str) -> int:
    return int(ch.query(sql).result_rows[0][0])


# -- on Kafka (faust) --


@pytest.fixture
def env(processor_env: dict[str, str]) -> dict[str, str]:
    return processor_env


@contextlib.contextmanager
def _processor(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = spawn("process", env=env, log=log)
    try:
        yield process
    finally:
        terminate(process)


async def test_faust_restart_then_redelivery_then_update(
    env: dict[str, str],
    ch: Any,
    created: list[ModelCreated],
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    await ensure_topics(kafka_bootstrap, topics(topic_prefix))
    known = _known_derivative(created)

    async def publish(*events: Event) -> None:
        async with KafkaPublisher(kafka_bootstrap, topic_prefix=topic_prefix) as publisher:
            for event in events:
                await publisher.publish(event)
            await publisher.flush()

    first_log = tmp_path / "process-1.log"
    with _processor(env, first_log) as first:
        await publish(*created)
        await asyncio.to_thread(
            wait_until,
            while_alive(
                first,
                first_log,
                lambda: _count(ch, "SELECT count() FROM model_families FINAL") == len(created),
            ),
            "every model in model_families",
        )
        placed = _placement(ch, known.repo_id)
        assert placed and placed[0][1] == known.base_models[0]
    assert first.returncode == 0, first_log.read_text()[-3000:]

    # A new processor: its forest comes back from ClickHouse. The same record arrives again
    # (a producer that lost its checkpoint), then an edit moves the model to another base.
    second_log = tmp_path / "process-2.log"
    with _processor(env, second_log) as second:
        await publish(known)
        await publish(_moved(known))
        await asyncio.to_thread(
            wait_until,
            while_alive(
                second,
                second_log,
                lambda: _placement(ch, known.repo_id) == [(NEW_BASE, NEW_BASE, 1)],
            ),
            "the edited model under its new base",
            show=lambda: _placement(ch, known.repo_id),
        )
        assert second.poll() is None, second_log.read_text()[-3000:]
    assert second.returncode == 0, second_log.read_text()[-3000:]
    # Its old root no longer counts it: the row under the old root was deleted.
    assert (
        _count(ch, f"SELECT count() FROM model_families FINAL WHERE model_id = '{known.repo_id}'")
        == 1
    )
    assert "TypeError" not in second_log.read_text()


# -- embedded --


async def _consume(
    processors: asyncio.Task[None], queue: asyncio.Queue[Event | DeadLetter], events: list[Any]
) -> None:
    """Hand events to the running embedded processors and wait until they are written."""
    for event in events:
        await queue.put(event)
    joined = asyncio.create_task(queue.join())
    done, _ = await asyncio.wait({joined, processors}, timeout=120, return_when="FIRST_COMPLETED")
    if processors in done:
        joined.cancel()
        processors.result()  # raises what killed them
        pytest.fail("the embedded processors stopped by themselves")
    assert joined in done, "the embedded processors did not take the queue within 120 s"


async def test_embedded_restart_then_redelivery_then_update(
    clickhouse_url: str, database: str, ch: Any, created: list[ModelCreated], tmp_path: Path
) -> None:
    settings = Settings(
        clickhouse_url=clickhouse_url,
        clickhouse_database=database,
        state_dir=tmp_path / "state",
        batch_seconds=0.2,
    )
    known = _known_derivative(created)

    queue: asyncio.Queue[Event | DeadLetter] = asyncio.Queue()
    first = asyncio.create_task(run_processors(settings, queue))
    await _consume(first, queue, list(created))
    first.cancel()  # the run stops
    with contextlib.suppress(asyncio.CancelledError):
        await first
    assert _count(ch, "SELECT count() FROM model_families FINAL") == len(created)

    queue = asyncio.Queue()
    second = asyncio.create_task(run_processors(settings, queue))  # restored from ClickHouse
    try:
        await _consume(second, queue, [known, _moved(known)])
        assert _placement(ch, known.repo_id) == [(NEW_BASE, NEW_BASE, 1)]
        assert not second.done()
    finally:
        second.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await second


def test_forest_loaded_with_naive_times_compares_them_as_utc() -> None:
    """Rows from any client (naive or in another zone) and events (aware UTC) compare."""
    forest = FamilyForest()
    as_of = datetime(2026, 1, 1, 12)  # noqa: DTZ001 (naive: 12:00 UTC, as naive clients read it)
    forest.load([("a/child", "a/base", "finetune", as_of, False, as_of, None, None, "")])
    # An edit from before that placement (11:00 UTC, said in UTC+5:30) is stale: ignored.
    earlier = datetime(2026, 1, 1, 16, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    forest.observe("a/child", [("b/base", "finetune")], None, earlier)
    assert forest.parent("a/child") == "a/base"
    # One from after it moves the model.
    forest.observe("a/child", [("b/base", "finetune")], None, datetime(2026, 1, 1, 13, tzinfo=UTC))
    assert forest.place("a/child") == ("b/base", 1)
    [row] = [r for r in forest.drain(1) if r.model_id == "a/child" and not r.is_deleted]
    assert row.as_of == datetime(2026, 1, 1, 13, tzinfo=UTC)
    assert row.created_at is not None and row.created_at.tzinfo is not None
