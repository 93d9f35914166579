"""Summaries: refreshable views recompute their table on demand and on their schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hubwatch.summaries import refresh, refreshed_at, summary_views
from tests.conftest import wait_until


def _summary(ch: Any, every: str = "1 HOUR") -> None:
    ch.command("CREATE TABLE src (k String, v UInt32) ENGINE = MergeTree ORDER BY k")
    ch.command("CREATE TABLE totals (k String, total UInt64) ENGINE = MergeTree ORDER BY k")
    ch.command(
        f"CREATE MATERIALIZED VIEW totals_refresh REFRESH EVERY {every} TO totals"
        " AS SELECT k, sum(v) AS total FROM src GROUP BY k"
    )


def test_refresh_recomputes_now_and_replaces_the_rows(ch: Any) -> None:
    _summary(ch)
    assert "totals_refresh" in summary_views(ch)  # besides the migrations' own
    ch.insert("src", [["a", 1], ["a", 2], ["b", 5]], column_names=["k", "v"])
    refresh(ch)
    assert sorted(ch.query("SELECT k, total FROM totals").result_rows) == [("a", 3), ("b", 5)]
    # A second refresh replaces the answer; it does not add to it.
    ch.insert("src", [["b", 1]], column_names=["k", "v"])
    refresh(ch, ["totals_refresh"])
    assert sorted(ch.query("SELECT k, total FROM totals").result_rows) == [("a", 3), ("b", 6)]
    at = refreshed_at(ch, "totals_refresh")
    assert at is not None and abs(datetime.now(UTC) - at) < timedelta(minutes=5)
    assert refreshed_at(ch, "no_such_view") is None


def test_a_schedule_refreshes_without_being_asked(ch: Any) -> None:
    _summary(ch, every="1 SECOND")
    ch.insert("src", [["a", 7]], column_names=["k", "v"])
    wait_until(lambda: ch.query("SELECT sum(total) FROM totals").result_rows[0][0] == 7, "refresh")
