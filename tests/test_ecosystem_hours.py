"""The Ecosystem lineage panels (new models by relation, most derived bases, fastest-growing
families) read the hourly summary ecosystem_hours (migration 0050) for the hours a range
holds whole and the raw tables for the rest. Their answers equal a plain-Python count over
the rows written: after a refresh, for models written after it (the live tail), for ranges
that start and end inside an hour, and for time-series intervals of one and several hours
and below one."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubwatch.clickhouse import connect
from hubwatch.panels import TimeRange, panel, run_panel
from hubwatch.summaries import refresh
from tests.conftest import hold_summaries

RELATIONS = ("finetune", "quantized", "adapter", "merge")
# (model, root, parent, relation, is_deleted, rank): model_lineage rows as the families
# processor writes them; the highest rank of a model is its current place.
Lineage = tuple[str, str, str, str, int, int]


@pytest.fixture
def ch(ch: Any) -> Any:
    # The refresh the migration starts is over before any row is written.
    ch.command("SYSTEM WAIT VIEW ecosystem_hours_refresh")
    return hold_summaries(ch)


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


class Hub:
    """The rows written, and the panels' answers computed from them in plain Python."""

    def __init__(self, ch: Any) -> None:
        self.ch = ch
        self.created: dict[str, list[datetime | None]] = {}
        self.lineage: dict[str, Lineage] = {}

    def model(self, repo_id: str, created_at: datetime | None, copies: int = 1) -> None:
        rows = [
            [repo_id, repo_id.split("/")[0], created_at, datetime.now(UTC), f"{repo_id}#{n}"]
            for n in range(copies)  # a redelivered event: a second row until a merge
        ]
        self.ch.insert(
            "models",
            rows,
            column_names=["repo_id", "author", "created_at", "observed_at", "event_id"],
        )
        self.created.setdefault(repo_id, []).extend([created_at] * copies)

    def place(self, row: Lineage) -> None:
        self.ch.insert(
            "model_lineage",
            [list(row)],
            column_names=["model_id", "root_id", "parent_id", "relation", "is_deleted", "rank"],
        )
        current = self.lineage.get(row[0])
        if current is None or row[5] > current[5]:
            self.lineage[row[0]] = row

    def in_range(self, time_range: TimeRange) -> list[tuple[str, datetime]]:
        """Each model created in the range once, as $__timeFilter bounds it (whole seconds)."""
        start = datetime.fromtimestamp(math.floor(time_range.start.timestamp()), UTC)
        end = datetime.fromtimestamp(math.floor(time_range.end.timestamp()), UTC)
        return [
            (repo, at)
            for repo, times in self.created.items()
            for at in {t for t in times if t is not None}
            if start <= at <= end
        ]

    def placed(self, repo: str) -> Lineage | None:
        row = self.lineage.get(repo)
        return row if row is not None and row[4] == 0 else None

    def by_relation(self, time_range: TimeRange, interval: timedelta) -> list[tuple[Any, ...]]:
        seconds = interval.total_seconds()
        counts: Counter[tuple[datetime, str]] = Counter()
        for repo, at in self.in_range(time_range):
            bucket = datetime.fromtimestamp(at.timestamp() // seconds * seconds, UTC)
            row = self.placed(repo)
            counts[(bucket, (row[3] if row else "") or "base")] += 1
        return sorted((time, relation, n) for (time, relation), n in counts.items())

    def bases(self, time_range: TimeRange) -> list[tuple[Any, ...]]:
        per_base: dict[str, Counter[str]] = {}
        for repo, _ in self.in_range(time_range):
            row = self.placed(repo)
            if row is not None and row[2]:
                per_base.setdefault(row[2], Counter())[row[3]] += 1
        rows = [(base, sum(c.values()), *(c[r] for r in RELATIONS)) for base, c in per_base.items()]
        return sorted(rows, key=lambda r: (-r[1], r[0]))[:20]

    def families(self, time_range: TimeRange) -> list[tuple[Any, ...]]:
        members: Counter[str] = Counter()
        for repo, _ in self.in_range(time_range):
            row = self.placed(repo)
            if row is not None and row[0] != row[1]:
                members[row[1]] += 1
        return sorted(members.items(), key=lambda r: (-r[1], r[0]))[:15]


def _panels(
    hub: Hub, time_range: TimeRange, interval: timedelta | None = None, client: Any = None
) -> None:
    """Each panel's answer is the plain-Python one."""
    client = client or hub.ch
    series = run_panel(client, panel("new_models_by_relation"), time_range, interval=interval)
    step = max(interval or timedelta(hours=1), timedelta(hours=1))  # the panel's min interval
    assert sorted(series.rows) == hub.by_relation(time_range, step), series.sql
    bases = run_panel(client, panel("most_derived_bases"), time_range)
    assert bases.rows == hub.bases(time_range), bases.sql
    families = run_panel(client, panel("fastest_growing_families"), time_range)
    assert families.rows == hub.families(time_range), families.sql


def _write_families(hub: Hub, now: datetime, first: int, count: int, *, within: timedelta) -> None:
    """``count`` models created over ``within`` before ``now`` (each a few minutes from the
    last, so every hour has some): every 9th a root, the others derivatives of the
    newest root or of a sibling, by turns of relation; some with no family or moved."""
    root = "org0/root"
    if root not in hub.created:
        hub.model(root, now - within - timedelta(hours=1))
        hub.place((root, root, "", "", 0, 2))
    step = within / count
    for n in range(first, first + count):
        repo = f"org{n % 7}/m{n}"
        hub.model(
            repo, now - within + step * (n - first) + timedelta(seconds=n % 50), 1 + n % 5 // 4
        )
        if n % 9 == 0:
            hub.place((repo, repo, "", "", 0, 2))
            root = repo
        elif n % 13 == 0:
            continue  # in no family: a base on the time series, in no table
        else:
            parent = root if n % 3 else f"org{(n - 1) % 7}/m{n - 1}"
            relation = RELATIONS[n % 4]
            hub.place((repo, root, parent, relation, 0, 2))
            if n % 11 == 0:  # moved to another family later: its newest row counts
                hub.place((repo, "org0/root", "org0/root", "merge", 0, 4))
            if n % 17 == 0:  # left every family (a deletion newer than its placement)
                hub.place((repo, root, parent, relation, 1, 5))
    hub.model(f"org9/no-date{first}", None)  # the Hub's placeholder date: in no range


def test_panels_equal_the_rows_across_a_refresh_and_the_live_tail(
    ch: Any, clickhouse_url: str, database: str
) -> None:
    hub = Hub(ch)
    now = datetime.now(UTC).replace(microsecond=0)
    _write_families(hub, now, 0, 150, within=timedelta(hours=30))
    refresh(ch, ["ecosystem_hours_refresh"])
    (counted, as_of), *_ = ch.query(
        "SELECT sum(models), any(as_of) FROM ecosystem_hours"
    ).result_rows
    # The summary holds the models created up to 10 minutes before the refresh.
    assert abs(as_of - (now - timedelta(minutes=10))) < timedelta(minutes=5)
    assert counted == len({r for r, ts in hub.created.items() if any(t and t < as_of for t in ts)})
    assert counted > 100

    # The live tail: models created since as_of, written after the refresh.
    _write_families(hub, now, 1000, 12, within=timedelta(minutes=8))
    assert ch.query("SELECT sum(models) FROM ecosystem_hours").result_rows[0][0] == counted

    top = _hour(now)
    ranges = (
        TimeRange(now - timedelta(days=7), now),  # the default: the summary and the tail
        # Start and end inside an hour, before as_of: partial hours at both ends, in the
        # first and the second half of an hour (the server's zone is +05:30 in the tests).
        TimeRange(
            top - timedelta(hours=20, minutes=-17, seconds=-23),
            top - timedelta(hours=3, minutes=-41),
        ),
        TimeRange(top - timedelta(hours=22, minutes=-43), top - timedelta(hours=6, minutes=-12)),
        TimeRange(top - timedelta(hours=5, minutes=-33), now + timedelta(minutes=5)),  # past now
        TimeRange(top - timedelta(hours=2), top - timedelta(hours=1)),  # one whole hour
        TimeRange(now - timedelta(minutes=30), now),  # within the tail alone
    )
    # Grafana's data source sends no session time zone: $__fromTime and $__toTime are then
    # in the server's, here one whose hours start at half past (UTC).
    kolkata = connect(
        clickhouse_url, database=database, settings={"session_timezone": "Asia/Kolkata"}
    )
    for time_range in ranges:
        _panels(hub, time_range)
        _panels(hub, time_range, client=kolkata)
    long = ranges[0]
    _panels(hub, long, timedelta(hours=3))  # several hours a point
    _panels(hub, long, timedelta(minutes=10))  # below the min interval: raised to an hour
    by_relation = run_panel(ch, panel("new_models_by_relation"), long)
    assert {r for _, r, _ in by_relation.rows} == {"base", *RELATIONS}

    # The next refresh takes the tail in: the same answers, now from the summary.
    refresh(ch, ["ecosystem_hours_refresh"])
    for time_range in ranges:
        _panels(hub, time_range)
    kolkata.close()


def test_an_interval_not_of_whole_hours_reads_the_raw_rows(ch: Any) -> None:
    """An interval the summary's hours cannot make (Grafana's min interval overridden)
    reads the models themselves: each point is still its interval's models."""
    hub = Hub(ch)
    now = datetime.now(UTC).replace(microsecond=0)
    _write_families(hub, now, 0, 60, within=timedelta(hours=6))
    refresh(ch, ["ecosystem_hours_refresh"])
    hour_long = panel("new_models_by_relation")
    minutes = dataclasses.replace(hour_long, min_interval=None)
    time_range = TimeRange(now - timedelta(hours=6, minutes=13), now)
    result = run_panel(ch, minutes, time_range, interval=timedelta(minutes=20))
    assert sorted(result.rows) == hub.by_relation(time_range, timedelta(minutes=20))


def test_an_empty_summary_reads_everything_raw(ch: Any) -> None:
    """Before the first refresh (a new database), every model is in the tail."""
    hub = Hub(ch)
    now = datetime.now(UTC).replace(microsecond=0)
    assert ch.query("SELECT count() FROM ecosystem_hours").result_rows == [(0,)]
    _write_families(hub, now, 0, 40, within=timedelta(hours=10))
    _panels(hub, TimeRange(now - timedelta(hours=12, minutes=7), now))
