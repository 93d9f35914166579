"""`hubwatch backfill` against a generated replay, into the real ClickHouse."""

from __future__ import annotations

import asyncio
from typing import Any

from hubwatch.backfill import backfill
from hubwatch.replay import GeneratedSource, HubWorld, ReplayServer
from hubwatch.settings import Settings


async def test_backfill_of_a_generated_catalog(
    ch: Any, clickhouse_url: str, database: str, tmp_path: Any
) -> None:
    source = GeneratedSource(5_000, seed=3)
    derived = sum(1 for i in range(source.n) if source.parent[i] >= 0)
    merges = sum(1 for i in range(source.n) if source.second_parent[i] >= 0)
    async with ReplayServer(HubWorld(source, start=source.n), api_quota=10**9) as server:
        settings = Settings(
            hub_url=server.url,
            clickhouse_url=clickhouse_url,
            clickhouse_database=database,
            state_dir=tmp_path,
        )
        done = await backfill(settings, total=source.n, batch_size=1_500, progress=False)
    assert (done.models, done.rejected) == (5_000, 0)
    rows = await asyncio.to_thread(
        lambda: (
            ch.query(
                "SELECT (SELECT count() FROM models FINAL), "
                "(SELECT count() FROM lineage_edges FINAL)"
            ).result_rows
        )
    )
    assert rows == [(5_000, derived + merges)]
    mix = dict(
        ch.query("SELECT relation, count() FROM lineage_edges FINAL GROUP BY relation").result_rows
    )
    names = ("", "adapter", "finetune", "quantized", "merge")
    expected: dict[str, int] = {}
    for i in range(source.n):
        if source.parent[i] >= 0:
            name = names[source.relation[i]]
            expected[name] = expected.get(name, 0) + (2 if source.second_parent[i] >= 0 else 1)
    assert mix == expected
