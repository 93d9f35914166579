"""The summaries' watcher: a summary whose refresh fails, or that has not refreshed for a
while, shows in its metrics (what HubwatchSummaryStale alerts on)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import REGISTRY

from hubwatch.summaries import refresh, summary_state
from processors.summary_watch import SummaryWatch
from tests.test_health_metrics import _until
from tests.test_summaries import _summary

FAILING = "hubwatch_summary_refresh_failing"
LAST_SUCCESS = "hubwatch_summary_last_success_timestamp_seconds"


def _sample(name: str, view: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"view": view})


def _healthy_neighbour(ch: Any) -> None:
    ch.command("CREATE TABLE counts (n UInt64) ENGINE = MergeTree ORDER BY n")
    ch.command(
        "CREATE MATERIALIZED VIEW counts_refresh REFRESH EVERY 1 HOUR TO counts"
        " AS SELECT count() AS n FROM src"
    )


async def test_a_failing_refresh_sets_its_gauge_and_not_its_neighbours(
    ch: Any, clickhouse_url: str, database: str
) -> None:
    _summary(ch)
    _healthy_neighbour(ch)
    ch.insert("src", [["a", 1]], column_names=["k", "v"])
    refresh(ch, ["totals_refresh", "counts_refresh"])
    bad_query = "SELECT k, throwIf(v > 0, 'bad row') + sum(v) AS total FROM src GROUP BY k, v"
    ch.command(f"ALTER TABLE totals_refresh MODIFY QUERY {bad_query}")
    ch.command("SYSTEM REFRESH VIEW totals_refresh")

    def failed() -> bool:
        state = summary_state(ch, "totals_refresh")
        return state is not None and "bad row" in state.error

    await _until(failed, "the refresh to fail")

    watch = SummaryWatch(clickhouse_url, database, interval=0.2)
    task = asyncio.create_task(watch.run())
    try:
        await _until(
            lambda: (
                _sample(FAILING, "totals_refresh") == 1 and _sample(FAILING, "counts_refresh") == 0
            ),
            "the watcher to report the failing refresh",
        )
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    # Both keep their last good refresh's time: the failing one's stops moving.
    for view in ("totals_refresh", "counts_refresh"):
        last = _sample(LAST_SUCCESS, view)
        assert last is not None and abs(time.time() - last) < 600, (view, last)


async def test_the_watcher_survives_clickhouse_being_away(database: str) -> None:
    # Nothing listens on port 9: each round fails, is logged once, and the loop goes on.
    watch = SummaryWatch("http://127.0.0.1:9", database, interval=0.1)
    task = asyncio.create_task(watch.run())
    await asyncio.sleep(1.0)
    assert not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
