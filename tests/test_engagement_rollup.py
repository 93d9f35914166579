"""The queries that read pre-aggregated rows answer as the raw rows do. engagement for a past
time reads whole days from the daily rollup (engagement_daily) and hours only at the
windows' edges: its answer is the one the raw hourly rows give, computed here in plain
Python, at times on either side of midnight and after a late-arriving hour.
community_activity counts each repo's week once and sums a group's distinct repos."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubwatch import migrate
from hubwatch.clickhouse import connect
from hubwatch.events import GithubCommit, GithubRelease, ModelCommit, ModelCreated, ModelSnapshot
from hubwatch.queries import load
from processors.engagement import RollingEngagement
from processors.families import FamilyForest
from processors.pipeline import plan_batch
from processors.sinks import ClickHouseWriter

# Within the 90-day TTL of raw snapshots, on midnight so the days are known.
END = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
START = END - timedelta(days=17)
HOUR = timedelta(hours=1)

_HOURLY = """
    SELECT repo_id, hour, argMinMerge(likes_first), argMaxMerge(likes_last),
           argMinMerge(downloads_first), argMaxMerge(downloads_last), min(first_at), max(last_at)
    FROM engagement_hourly GROUP BY repo_id, hour ORDER BY repo_id, hour
"""
_DAILY = """
    SELECT repo_id, day, argMinMerge(likes_first), argMaxMerge(likes_last),
           argMinMerge(downloads_first), argMaxMerge(downloads_last), min(first_at), max(last_at)
    FROM engagement_daily GROUP BY repo_id, day ORDER BY repo_id, day
"""


@dataclasses.dataclass(frozen=True)
class Bucket:
    """One hour of engagement_hourly, merged."""

    start: datetime
    likes_first: int
    likes_last: int
    downloads_first: int
    downloads_last: int
    first_at: datetime
    last_at: datetime


def snapshots() -> list[ModelSnapshot]:
    """A model polled about every 50 minutes, one a few times a day, one first seen 30 hours
    before the end, one seen once 10 days before and then only in the last day."""
    found = []
    at, n = START + timedelta(minutes=7), 0
    while at < END:
        found.append(ModelSnapshot("a/often", at, downloads_all_time=100 + n * n, likes=n // 3))
        at, n = at + timedelta(minutes=50), n + 1
    for day in range(17):
        for minute in (125, 700, 1390):
            at = START + timedelta(days=day, minutes=minute)
            found.append(
                ModelSnapshot("b/daily", at, downloads_all_time=1000 + 37 * day + minute, likes=day)
            )
    for ago in (30, 29, 12, 2):
        found.append(ModelSnapshot("c/young", END - ago * HOUR, downloads_all_time=500 - ago))
    for at in (END - timedelta(days=10, minutes=13), END - 5 * HOUR, END - 20 * HOUR):
        found.append(ModelSnapshot("d/rare", at, downloads_all_time=at.day * 10, likes=at.hour))
    return found


def from_hourly(buckets: dict[str, list[Bucket]], t: datetime) -> dict[str, tuple[Any, ...]]:
    """The engagement windows at ``t`` from hourly buckets: an hour is before an edge when it
    starts before it; a gain is from the last value before the window opened, else from the
    first value in the 15 days; velocity over the span from that value to the newest."""

    def hours(since: float) -> float:
        return max(1.0, since / 3600)

    answers = {}
    for repo, all_hours in buckets.items():
        seen = [b for b in all_hours if t - timedelta(days=15) <= b.start < t]
        if not any(b.start >= t - timedelta(hours=24) for b in seen):
            continue
        first, last = seen[0], seen[-1]

        def before(edge: timedelta, seen: list[Bucket] = seen) -> Bucket | None:
            earlier = [b for b in seen if b.start < t - edge]
            return earlier[-1] if earlier else None

        def gain(edge: timedelta, field: str, first: Bucket = first, last: Bucket = last) -> int:
            then = before(edge)
            start = getattr(then, f"{field}_last") if then else getattr(first, f"{field}_first")
            return int(getattr(last, f"{field}_last") - start)

        day, two_days = before(timedelta(hours=24)), before(timedelta(hours=48))
        downloads_24h = gain(timedelta(hours=24), "downloads")
        since = (last.last_at - (day.last_at if day else first.first_at)).total_seconds()
        velocity = downloads_24h / hours(since)
        previous = 0.0
        if day:
            start = two_days.downloads_last if two_days else first.downloads_first
            opened = two_days.last_at if two_days else first.first_at
            span = (day.last_at - opened).total_seconds()
            previous = (day.downloads_last - start) / hours(span)
        answers[repo] = (
            gain(HOUR, "likes"),
            gain(timedelta(hours=24), "likes"),
            gain(timedelta(days=7), "likes"),
            gain(HOUR, "downloads"),
            downloads_24h,
            gain(timedelta(days=7), "downloads"),
            pytest.approx(velocity, abs=0.0011),
            pytest.approx(velocity - previous, abs=0.0021),
        )
    return answers


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def read_buckets(ch: Any, sql: str) -> dict[str, list[Bucket]]:
    found: dict[str, list[Bucket]] = {}
    for repo, *fields in ch.query(sql).result_rows:
        start, *values, first_at, last_at = fields
        found.setdefault(repo, []).append(
            Bucket(_utc(start), *values, _utc(first_at), _utc(last_at))
        )
    return found


def engagement(ch: Any, t: datetime) -> dict[str, tuple[Any, ...]]:
    query = load("engagement")
    bound = query.bind({"at": t.strftime("%Y-%m-%d %H:%M:%S")})
    return {r[0]: tuple(r[1:]) for r in ch.query(query.sql, parameters=bound).result_rows}


@pytest.fixture
def writer(clickhouse_url: str, database: str) -> Iterator[ClickHouseWriter]:
    w = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    yield w
    w.close()


def test_rollup_answers_as_the_hourly_rows_do(ch: Any, writer: ClickHouseWriter) -> None:
    live = RollingEngagement({})
    snaps = snapshots()
    # Late: a poll of 9 days before the end, at 23:59:59, written after everything else; it
    # is the last value of its day, so the day's rollup must take it.
    late_at = END - timedelta(days=9) + timedelta(hours=23, minutes=59, seconds=59)
    late = ModelSnapshot("a/often", late_at, downloads_all_time=99_999, likes=999)
    # A model polled after every `t` below: they are all in the past (engagement_hourly),
    # not "now" (engagement_live).
    later = ModelSnapshot("z/later", END + timedelta(days=1), likes=1)
    writer.write(plan_batch([*snaps, later], engagement=live).plans())
    writer.write(plan_batch([late], engagement=live).plans())

    hourly = read_buckets(ch, _HOURLY)
    daily = read_buckets(ch, _DAILY)
    # The rollup is the hours merged per day, the late hour included.
    by_day: dict[str, dict[datetime, list[Bucket]]] = {}
    for repo, buckets in hourly.items():
        for b in buckets:
            midnight = b.start.replace(hour=0)
            by_day.setdefault(repo, {}).setdefault(midnight, []).append(b)
    assert daily == {
        repo: [
            Bucket(
                day,
                hs[0].likes_first,
                hs[-1].likes_last,
                hs[0].downloads_first,
                hs[-1].downloads_last,
                hs[0].first_at,
                hs[-1].last_at,
            )
            for day, hs in sorted(days.items())
        ]
        for repo, days in by_day.items()
    }
    assert any(b.likes_last == 999 for b in daily["a/often"])

    # Midnight, just before and after it, odd minutes, and t whose 7-day edge falls on the
    # late hour's day (the 7-day window opens inside the day that holds it).
    times = [END, END - timedelta(seconds=1), END + timedelta(minutes=1)]
    times += [END - timedelta(hours=h, minutes=17 * h % 60) for h in range(1, 50, 7)]
    times += [late_at + timedelta(days=7, minutes=m) for m in (-50, 0, 10, 25)]
    times += [late_at + timedelta(days=7, hours=24 - late_at.hour)]  # edge on midnight
    for t in times:
        expected = from_hourly(hourly, t)
        assert len(expected) >= 2
        assert engagement(ch, t) == expected, t
    assert set(from_hourly(hourly, END)) == {"a/often", "b/daily", "c/young", "d/rare"}


def test_migration_rolls_up_hours_already_written(
    clickhouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a database that already holds hourly rows, the migration fills the rollup."""
    name = f"hubwatch_rollup_{uuid.uuid4().hex[:8]}"
    client = connect(clickhouse_url)
    everything = migrate.load_migrations()
    try:
        with monkeypatch.context() as patched:
            before = [m for m in everything if m.name != "engagement_daily"]
            patched.setattr(migrate, "load_migrations", lambda: before)
            migrate.apply_migrations(client, name)
        ch = connect(clickhouse_url, database=name)
        writer = ClickHouseWriter(lambda: connect(clickhouse_url), name)
        try:
            writer.write(plan_batch(snapshots(), engagement=RollingEngagement({})).plans())
        finally:
            writer.close()
        assert "engagement_daily" not in {r[0] for r in ch.query("SHOW TABLES").result_rows}
        ran = migrate.apply_migrations(client, name)
        assert [m.name for m in ran] == ["engagement_daily"]
        hourly = read_buckets(ch, _HOURLY)
        daily = read_buckets(ch, _DAILY)
        assert set(daily) == set(hourly)
        for repo, buckets in hourly.items():
            days = {b.start.replace(hour=0) for b in buckets}
            assert [d.start for d in daily[repo]] == sorted(days)
            assert daily[repo][-1].last_at == buckets[-1].last_at
            assert daily[repo][0].downloads_first == buckets[0].downloads_first
    finally:
        client.command(f"DROP DATABASE IF EXISTS `{name}`")
        client.close()


def test_activity_of_a_shared_repo_counts_once_per_group(ch: Any, writer: ClickHouseWriter) -> None:
    """community_activity counts a repo's week once and sums a group's distinct repos: a
    GitHub repo linked from two models of one family counts once for the family, once for
    each model; a model linking two repos gets both."""
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    created = at - timedelta(days=30)
    models = [
        ModelCreated("b/base", created, at, github_repos=("o/shared",)),
        ModelCreated(
            "x/child",
            created,
            at,
            base_models=("b/base",),
            base_models_relation="finetune",
            github_repos=("o/shared", "o/own"),
        ),
        ModelCreated("x/lone", created, at, github_repos=("o/shared",)),
    ]
    events = [
        *(GithubCommit("o/shared", f"s{i}", at - timedelta(hours=i + 1)) for i in range(3)),
        GithubCommit("o/own", "s0", at - timedelta(hours=2)),  # same sha, another repo
        GithubRelease("o/own", 1, "v1", at - timedelta(days=2)),
        ModelCommit("x/child", "c1", at - timedelta(minutes=5), title="t"),
    ]
    writer.write(plan_batch([*models, *events, *events], forest=FamilyForest()).plans())
    query = load("community_activity")

    def items(by: str) -> dict[str, tuple[int, int, int]]:
        bound = query.bind({"by": by, "at": at.strftime("%Y-%m-%d %H:%M:%S")})
        rows = ch.query(query.sql, parameters=bound).named_results()
        return {
            r["group_key"]: (r["github_commits_24h"], r["releases_7d"], r["items_7d"]) for r in rows
        }

    # o/shared: 3 commits; o/own: 1 commit and a release; x/child's own Hub commit.
    assert items("model") == {"x/child": (4, 1, 6), "b/base": (3, 0, 3), "x/lone": (3, 0, 3)}
    assert items("family") == {"b/base": (4, 1, 6), "x/lone": (3, 0, 3)}
    assert items("org") == {"x": (4, 1, 6), "b": (3, 0, 3)}
