"""One owner of the family forest: a processor started on an empty database, a backfill
that builds a 49-descendant family afterwards, then one live upload: the processor reloads
what the backfill wrote before it writes, so the root counts 50, not 1."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hubwatch.backfill import backfill
from hubwatch.embedded import run_processors
from hubwatch.events import DeadLetter, Event
from hubwatch.replay import HubWorld, ListSource, ReplayServer
from hubwatch.settings import Settings
from producers.hub import model_created_from_api
from tests.test_restart import _consume

ROOT = "org/base"
START = datetime(2025, 3, 1, tzinfo=UTC)


def _item(repo_id: str, minutes: int, base: str | None = None) -> dict[str, Any]:
    at = (START + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    item: dict[str, Any] = {"id": repo_id, "createdAt": at, "lastModified": at, "tags": []}
    if base is not None:
        item["tags"] = [f"base_model:{base}", f"base_model:finetune:{base}"]
    return item


def _root(ch: Any) -> list[tuple[Any, ...]]:
    return ch.query(
        "SELECT descendants, children, created_at FROM model_families FINAL"
        " WHERE model_id = {m:String}",
        parameters={"m": ROOT},
    ).result_rows


async def test_processor_reloads_after_a_backfill(
    ch: Any, clickhouse_url: str, database: str, tmp_path: Path
) -> None:
    settings = Settings(
        clickhouse_url=clickhouse_url,
        clickhouse_database=database,
        state_dir=tmp_path / "state",
        batch_seconds=0.2,
    )
    queue: asyncio.Queue[Event | DeadLetter] = asyncio.Queue()
    processors = asyncio.create_task(run_processors(settings, queue))  # empty database
    try:
        await _consume(processors, queue, [])
        family = [_item(ROOT, 0)] + [_item(f"org/ft-{i}", 1 + i, ROOT) for i in range(49)]
        async with ReplayServer(HubWorld(ListSource(family), start=len(family))) as server:
            done = await backfill(
                Settings(
                    hub_url=server.url,
                    clickhouse_url=clickhouse_url,
                    clickhouse_database=database,
                    state_dir=tmp_path,
                ),
                total=len(family),
                progress=False,
            )
        assert done.models == 50
        assert [row[:2] for row in await asyncio.to_thread(_root, ch)] == [(49, 49)]

        upload = model_created_from_api(_item("org/ft-new", 600, ROOT), datetime.now(UTC))
        await _consume(processors, queue, [upload])
        assert await asyncio.to_thread(_root, ch) == [(50, 50, START)]
        assert not processors.done()
    finally:
        processors.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await processors


async def test_rows_written_while_a_backfill_ran_are_rewritten_on_reload(
    ch: Any, clickhouse_url: str, database: str
) -> None:
    """The race a reload alone leaves: the processor writes from its stale forest while a
    backfill is still building the families (its row of the root, descendants 1, carries a
    higher version than the backfill's). When the backfill records its epoch, the processor
    reloads and rewrites every stored row that disagrees with the trees, at its next batch,
    whatever that batch holds: the root counts its 3 + 1 children, not 1."""
    from hubwatch.clickhouse import connect
    from processors.families import FamilyForest
    from processors.pipeline import plan_batch
    from processors.restore import ForestKeeper, record_epoch
    from processors.sinks import ClickHouseWriter

    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    keeper = ForestKeeper(clickhouse_url, database)
    await keeper.current()  # the processor starts on an empty database
    observed = START + timedelta(days=1)

    def event(item: dict[str, Any], at: datetime) -> Event:
        return model_created_from_api(item, at)

    # The backfill builds the family with a forest of its own...
    family = [_item(ROOT, 0)] + [_item(f"org/ft-{i}", 1 + i, ROOT) for i in range(3)]
    built = FamilyForest()
    writer.write(plan_batch([event(i, observed) for i in family], forest=built).plans())
    # ...while the processor, which has not seen it, takes one upload (observed later).
    live = await keeper.current()
    upload = event(_item("org/ft-live", 100, ROOT), observed + timedelta(hours=1))
    writer.write(plan_batch([upload], forest=live).plans())
    assert [r[0] for r in await asyncio.to_thread(_root, ch)] == [1]  # the stale row won
    record_epoch(clickhouse_url, database, built.version, "backfill")

    # The processor's next batch, of an unrelated model, reloads first.
    other = event(_item("elsewhere/lone", 200), observed + timedelta(hours=2))
    writer.write(plan_batch([other], forest=await keeper.current()).plans())
    assert [r[:2] for r in await asyncio.to_thread(_root, ch)] == [(4, 4)]
    rows = ch.query(
        "SELECT model_id, root_id, depth FROM model_families FINAL ORDER BY model_id"
    ).result_rows
    expected_members = {ROOT: 0, "org/ft-live": 1, **{f"org/ft-{i}": 1 for i in range(3)}}
    assert {m: (r, d) for m, r, d in rows if m != "elsewhere/lone"} == {
        m: (ROOT, d) for m, d in expected_members.items()
    }
    writer.close()
