"""The live summaries (migrations 0047, 0049): breakouts, engagement's "now" and
community_activity's "now" answer from tables refreshed on a schedule. After a refresh
each equals a plain-Python computation; a change shows only after the next refresh; and
"now" agrees with an explicit past `at` where the two overlap."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubwatch.clickhouse import connect
from hubwatch.events import GithubCommit, ModelCommit, ModelCreated, ModelSnapshot
from hubwatch.queries import load
from hubwatch.summaries import refresh
from processors.engagement import RollingEngagement
from processors.families import FamilyForest
from processors.pipeline import plan_batch
from processors.sinks import ClickHouseWriter
from tests.conftest import hold_summaries

T1 = datetime(2026, 3, 10, 12, tzinfo=UTC)


@pytest.fixture
def writer(clickhouse_url: str, database: str) -> Iterator[ClickHouseWriter]:
    w = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    yield w
    w.close()


@pytest.fixture
def ch(ch: Any) -> Any:
    return hold_summaries(ch)


def _query(ch: Any, name: str, **params: str) -> list[tuple[Any, ...]]:
    query = load(name)
    return ch.query(query.sql, parameters=query.bind(params)).result_rows


def _model(repo_id: str, base: str | None = None, **fields: Any) -> ModelCreated:
    relation = {"base_models": (base,), "base_models_relation": "finetune"} if base else {}
    created = T1 - timedelta(days=30)
    return ModelCreated(repo_id, created, created, **relation, **fields)  # type: ignore[arg-type]


def _second(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def _gains(gains: dict[str, int]) -> list[ModelSnapshot]:
    """All-time downloads 25 hours apart: each model's velocity is gain / 25 an hour."""
    return [
        ModelSnapshot(m, at, downloads_all_time=d)
        for m, gain in gains.items()
        for at, d in ((T1 - timedelta(hours=25), 1_000), (T1, 1_000 + gain))
    ]


def _breakouts(bases: dict[str, str], gains: dict[str, int]) -> list[tuple[str, str, float]]:
    """Plain Python: (derivative, base, score) above 1, highest first."""
    velocity = {m: g / 25 for m, g in gains.items()}
    found = []
    for model, base in bases.items():
        siblings = statistics.median(velocity[m] for m, b in bases.items() if b == base)
        score = round(velocity[model] / max(velocity[base], siblings, 1), 3)
        if score > 1:
            found.append((model, base, score))
    return sorted(found, key=lambda f: (-f[2], f[0]))


def test_breakouts_follow_the_refresh(ch: Any, writer: ClickHouseWriter) -> None:
    bases = {"f/fast": "b/base", "s/slow": "b/base", "s/slower": "b/base", "g/grand": "f/fast"}
    gains = {"b/base": 240, "f/fast": 2_400, "s/slow": 120, "s/slower": 24, "g/grand": 7_200}
    models = [_model("b/base"), *(_model(m, b) for m, b in bases.items())]
    writer.write(
        plan_batch(
            [*models, *_gains(gains)], forest=FamilyForest(), engagement=RollingEngagement({})
        ).plans()
    )
    refresh(ch)
    before = _breakouts(bases, gains)
    # g/grand is its base's only derivative: its own median, a score of 1.
    assert [r[:2] for r in before] == [("f/fast", "b/base")]
    assert [(r[0], r[1], r[8]) for r in _query(ch, "breakouts")] == before

    # A new derivative of the base outgrows everything: not there until the next refresh,
    # then there, and the base's median moves with it.
    bases["n/new"], gains["n/new"] = "b/base", 50_000
    writer.write(
        plan_batch(
            [_model("n/new", "b/base"), *_gains({"n/new": 50_000})],
            forest=FamilyForest(),
            engagement=RollingEngagement({}),
        ).plans()
    )
    assert [(r[0], r[1], r[8]) for r in _query(ch, "breakouts")] == before
    refresh(ch)
    after = _breakouts(bases, gains)
    assert after[0][0] == "n/new" and after != before
    assert [(r[0], r[1], r[8]) for r in _query(ch, "breakouts")] == after
    assert [r[0] for r in _query(ch, "breakouts", limit="1")] == ["n/new"]


def test_engagement_now_follows_the_refresh_and_agrees_with_the_past(
    ch: Any, writer: ClickHouseWriter
) -> None:
    gains = {f"o/m{n}": 100 * ((n * 7) % 13 + 1) for n in range(12)}
    live = RollingEngagement({})
    writer.write(plan_batch(_gains(gains), engagement=live).plans())
    refresh(ch)

    def expected(gains: dict[str, int], limit: int) -> list[tuple[str, int, float]]:
        # Plain Python: the most downloads gained in 24 hours, each over its 25-hour span.
        ranked = sorted(gains.items(), key=lambda g: (-g[1], g[0]))[:limit]
        return [(m, g, round(g / 25, 3)) for m, g in ranked]

    def answer(at: datetime, limit: str = "5") -> list[tuple[str, int, float]]:
        return [(r[0], r[5], r[7]) for r in _query(ch, "engagement", at=_second(at), limit=limit)]

    now = T1 + timedelta(seconds=1)
    assert answer(now) == expected(gains, 5)
    # Above the summary's 10,000 rows the live table itself answers, the same.
    everything = _query(ch, "engagement", at=_second(now), limit="20000")
    assert [(r[0], r[5], r[7]) for r in everything] == expected(gains, 12)
    assert everything[:5] == _query(ch, "engagement", at=_second(now), limit="5")

    # A later snapshot: "now" moves on, and answers from the summary as of its last
    # refresh until the next one.
    later = T1 + timedelta(hours=1)
    writer.write(
        plan_batch(
            [ModelSnapshot("o/m0", later, downloads_all_time=90_000)], engagement=live
        ).plans()
    )
    now = later + timedelta(seconds=1)
    assert answer(now) == expected(gains, 5)
    refresh(ch)
    top = answer(now)
    assert top[0][0] == "o/m0" and top[0][1] == 90_000 - 1_000 and top[1:] == expected(gains, 4)
    # The first `at` is now in the past (engagement_hourly): the same answer as "now" gave
    # then, the windows being whole hours.
    assert answer(T1 + timedelta(seconds=1)) == expected(gains, 5)


def test_community_activity_now_follows_the_refresh_and_agrees_with_the_past(
    ch: Any, writer: ClickHouseWriter
) -> None:
    now = datetime.now(UTC)
    models = [
        _model("b/base", architectures=("MistralForCausalLM",)),
        _model("x/child", "b/base", architectures=("MistralForCausalLM",)),
        _model("y/other", architectures=("LlamaForCausalLM",), github_repos=("o/r",)),
    ]
    ago = [timedelta(minutes=30), timedelta(hours=5), timedelta(days=3), timedelta(days=9)]
    commits = [ModelCommit("x/child", f"c{i}", now - a, title="t") for i, a in enumerate(ago)]
    commits += [ModelCommit("b/base", "b0", now - ago[1], title="t")]
    commits += [GithubCommit("o/r", f"s{i}", now - a) for i, a in enumerate(ago[:3])]
    writer.write(plan_batch([*models, *commits, *commits], forest=FamilyForest()).plans())
    refresh(ch)

    # Plain Python: per group, the distinct commits in the last hour, 24 hours, 7 days
    # (Hub), in 24 hours and 7 days (GitHub, for every model linking the repo).
    def counts(commits: list[Any], by: str) -> dict[str, tuple[int, ...]]:
        family = {"x/child": "b/base"}
        architecture = {
            "b/base": "MistralForCausalLM",
            "x/child": "MistralForCausalLM",
            "y/other": "LlamaForCausalLM",
        }
        group = {
            "model": lambda m: m,
            "family": lambda m: family.get(m, m),
            "org": lambda m: m.split("/")[0],
            "architecture": architecture.__getitem__,
        }[by]
        seen: dict[str, list[set[str]]] = {}
        for c in commits:
            age = now - c.committed_at
            hub = isinstance(c, ModelCommit)
            key = group(c.repo_id if hub else "y/other")
            sets = seen.setdefault(key, [set() for _ in range(5)])
            windows = [age < timedelta(hours=1), age < timedelta(days=1), age < timedelta(days=7)]
            for n, inside in enumerate(windows if hub else windows[1:], 0 if hub else 3):
                if inside:
                    sets[n].add(c.commit_id if hub else c.sha)
        return {k: tuple(len(s) for s in v) for k, v in seen.items() if any(v)}

    columns = ("hub_commits_1h", "hub_commits_24h", "hub_commits_7d")
    columns += ("github_commits_24h", "github_commits_7d")

    def answer(by: str, at: str | None = None) -> dict[str, tuple[int, ...]]:
        query = load("community_activity")
        bound = query.bind({"by": by, **({"at": at} if at else {})})
        rows = ch.query(query.sql, parameters=bound).named_results()
        return {r["group_key"]: tuple(r[c] for c in columns) for r in rows}

    [as_of] = ch.query("SELECT max(as_of) FROM community_activity_now").result_rows[0]
    before = _second(as_of - timedelta(seconds=1))
    for by in ("model", "family", "org", "architecture"):
        assert answer(by) == counts(commits, by), by
        # The second before the refresh's time is in the past: counted from the events,
        # the same (no commit is within a second of a window's edge).
        assert answer(by, before) == answer(by), by

    # A new commit: the summary shows it after the next refresh; a past `at` at once.
    fresh = ModelCommit("y/other", "y1", now - timedelta(minutes=1), title="t")
    writer.write(plan_batch([fresh], forest=FamilyForest()).plans())
    assert answer("model") == counts(commits, "model")
    assert answer("model", before) == counts([*commits, fresh], "model")
    # "now" in whole seconds: the refresh's own second reads the summary too (this test
    # once read the events instead when it got here within that second).
    assert answer("model", _second(as_of)) == counts(commits, "model")
    refresh(ch)
    assert answer("model") == counts([*commits, fresh], "model") != counts(commits, "model")
