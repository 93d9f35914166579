"""Summaries: refreshable views recompute their table on demand and on their schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubwatch.summaries import refresh, refreshed_at, summary_state, summary_views
from tests.conftest import hubwatch, wait_until


def _summary(ch: Any, every: str = "1 HOUR") -> None:
    ch.command("CREATE TABLE src (k String, v UInt32) ENGINE = MergeTree ORDER BY k")
    ch.command("CREATE TABLE totals (k String, total UInt64) ENGINE = MergeTree ORDER BY k")
    ch.command(
        f"CREATE MATERIALIZED VIEW totals_refresh REFRESH EVERY {every} TO totals"
        " AS SELECT k, sum(v) AS total FROM src GROUP BY k"
    )


def test_refresh_recomputes_now_and_replaces_the_rows(ch: Any) -> None:
    _summary(ch)
    assert "totals_refresh" in summary_views(ch)  # beside the migrations' own summaries
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


def test_a_failing_refresh_is_reported_and_keeps_the_old_answer(ch: Any) -> None:
    _summary(ch)
    ch.insert("src", [["a", 1]], column_names=["k", "v"])
    refresh(ch)
    good = summary_state(ch, "totals_refresh")
    assert good is not None and good.last_success is not None and good.error == ""
    # The source goes bad: the next refresh fails, and the table keeps its last answer.
    bad_query = "SELECT k, throwIf(v > 0, 'bad row') + sum(v) AS total FROM src GROUP BY k, v"
    ch.command(f"ALTER TABLE totals_refresh MODIFY QUERY {bad_query}")
    with pytest.raises(Exception, match="bad row"):
        refresh(ch, ["totals_refresh"])
    bad = summary_state(ch, "totals_refresh")
    assert bad is not None and "bad row" in bad.error
    assert ch.query("SELECT k, total FROM totals").result_rows == [("a", 1)]
    assert summary_state(ch, "no_such_view") is None


def test_query_fresh_names_what_it_recomputes(clickhouse_url: str, database: str) -> None:
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": database}
    done = hubwatch("query", "breakouts", "--fresh", env=env)
    assert done.returncode == 0, done.stderr
    assert "breakouts_now_refresh: as of " in done.stderr and "recomputed now" in done.stderr
    # A named time is computed from the raw tables: there is no summary to recompute.
    at = ["--param", "at=2026-01-01 00:00:00"]
    done = hubwatch("query", "community_activity", "--fresh", *at, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "--fresh has nothing to recompute for community_activity" in done.stderr
    done = hubwatch("query", "community_activity", *at, env=env)
    assert done.returncode == 0 and "as of its last refresh" not in done.stderr, done.stderr
