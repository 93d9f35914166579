"""The engagement schedule within its budget: the plan's arithmetic, and the real Tracker
and state store kept within their promise when new models arrive faster than the budget
could snapshot them at the intervals the schedule wants."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from hubwatch.events import ModelCreated
from producers.snapshot_plan import DAY, plan_snapshots
from producers.state import StateStore
from producers.tracking import SnapshotSchedule, Tracker, TrackingPolicy

WANTED = {"followed": 900.0, "new": 900.0, "recent": 6 * 3600.0}
WEIGHTS = {"followed": 8.0, "new": 4.0, "recent": 1.0}


def test_within_budget_every_tier_gets_what_it_wants() -> None:
    plan = plan_snapshots({"new": 10, "recent": 100}, WANTED, WEIGHTS, 10_000, slack=0.8)
    assert plan.promise("new") == 900 and plan.every("new") == 720
    assert plan.promise("recent") == 6 * 3600


def test_over_budget_the_promise_is_what_the_share_buys() -> None:
    models = {"followed": 10, "new": 3000, "recent": 40_000}
    plan = plan_snapshots(models, WANTED, WEIGHTS, 42_000, slack=0.8)
    calls = {t: p.calls_per_day for t, p in plan.tiers.items()}
    # The followed tier fits its share and keeps 15 minutes; the rest is shared 4:1.
    assert plan.promise("followed") == 900
    assert calls["followed"] == pytest.approx(10 * DAY / 720)
    left = 42_000 - calls["followed"]
    assert calls["new"] == pytest.approx(left * 4 / 5)
    assert calls["recent"] == pytest.approx(left / 5)
    assert sum(calls.values()) == pytest.approx(42_000)
    for tier in ("new", "recent"):  # scheduled at what the calls buy, promised 1/slack
        assert plan.every(tier) * calls[tier] == pytest.approx(models[tier] * DAY)
        assert plan.promise(tier) == pytest.approx(plan.every(tier) / 0.8)
    assert plan.promise("new") == pytest.approx(3000 * DAY / calls["new"] / 0.8)
    assert plan.promise("new") > 900


def _created(repo_id: str, at: float, base: str | None = None) -> ModelCreated:
    when = datetime.fromtimestamp(at, UTC)
    return ModelCreated(repo_id, when, when, base_models=(base,) if base else ())


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_new_models_beyond_the_budget_stay_within_the_promise(tmp_path: Path) -> None:
    """12 new models an hour, each wanted every 15 minutes (1,440 calls an hour after a
    day), against 80 calls an hour: the old schedule fell behind without end; the plan
    stretches the promise to what the calls buy and keeps it, the watched base's new
    derivatives first."""
    start = 1_770_000_000.0
    clock = [start]
    store = StateStore(tmp_path / "producers.sqlite")
    calls_per_round, round_every = 20, 900.0  # 80 an hour
    tracker = Tracker(
        store,
        TrackingPolicy(watched_base_models=frozenset({"w/base"})),
        SnapshotSchedule(calls_per_day=calls_per_round * DAY / round_every),
        clock=lambda: clock[0],
        bulk_every=round_every,
    )
    count = 0
    snapped: dict[str, int] = {}
    for _ in range(int(DAY / round_every)):  # one day
        clock[0] += round_every
        now = clock[0]
        events = [
            _created(f"o/m{count + i}", now, "w/base" if (count + i) % 48 == 0 else None)
            for i in range(3)
        ]
        count += 3
        tracker.track_all(events)
        with store.transaction():
            for model in store.due_snapshots(now, calls_per_round):
                tracker.record(
                    model, now=now, downloads=0, likes=0, trending_downloads=0, bulk=False
                )
                snapped[model.repo_id] = snapped.get(model.repo_id, 0) + 1
    now = clock[0]
    plan = tracker.plan(now + 301)  # recounted: the gauges are set from this plan
    promise = plan.promise("new")
    assert 900 < promise < DAY  # stretched, but a promise that means something
    for tier in ("new", "followed"):
        overdue, late = store.overdue(tier, plan.promise(tier), now)
        # None overdue, bar models tracked within one round of the end (not yet due).
        assert overdue == 0, (tier, overdue, late)
        assert _sample("hubwatch_snapshot_overdue_models", tier=tier) == 0
        assert _sample("hubwatch_snapshot_promise_seconds", tier=tier) == plan.promise(tier)
    assert plan.promise("followed") == 900  # the watched base's derivatives keep 15 min
    older = {m: n for m, n in snapped.items() if int(m[3:]) < count // 2}
    followed = [n for m, n in older.items() if int(m[3:]) % 48 == 0]
    others = [n for m, n in older.items() if int(m[3:]) % 48 != 0]
    assert len(followed) == 3 and min(followed) > 2 * max(others)
    store.close()


def test_due_models_are_served_by_value_and_none_waits_for_ever(tmp_path: Path) -> None:
    """A young derivative of a popular base is snapshotted before plainer models that fell
    due earlier; a low-value model due for long is still served within a round or two
    while more valuable ones keep falling due."""
    start = 1_770_000_000.0
    clock = [start]
    store = StateStore(tmp_path / "producers.sqlite")
    tracker = Tracker(store, TrackingPolicy(), SnapshotSchedule(), clock=lambda: clock[0])
    popular = ModelCreated("big/base", None, datetime.fromtimestamp(start, UTC), likes=5000)
    tracker.track_all([popular])
    tracker.track_all([_created(f"o/plain{i}", start) for i in range(20)])
    clock[0] = start + 60
    tracker.track_all([_created("o/child", start + 60, "big/base")])
    child = store.get("o/child")
    assert child is not None and child.base_popularity == 5000
    now = start + 3600  # every one of them is due; the plain ones fell due first
    due = [m.repo_id for m in store.due_snapshots(now, 4)]
    assert "o/child" in due
    assert due[0] == "o/plain0"  # the oldest-due share: the one waiting longest
    # A tail model due for a week, while valuable models keep falling due every round.
    clock[0] = start - 8 * DAY
    tracker.track_all([_created("o/forgotten", start - 400 * DAY)])
    served_at = None
    for round_ in range(6):
        clock[0] = now + round_ * 300
        tracker.track_all(
            [_created(f"o/child{round_}-{i}", clock[0] - 3600, "big/base") for i in range(8)]
        )
        with store.transaction():
            for model in store.due_snapshots(clock[0] + 3600, 4):
                if model.repo_id == "o/forgotten" and served_at is None:
                    served_at = round_
                tracker.record(model, now=clock[0], downloads=0, likes=0, trending_downloads=0)
    assert served_at is not None and served_at <= 1
    store.close()


def test_velocity_from_five_minute_snapshots_is_smoothed(tmp_path: Path) -> None:
    """A model gaining 60 downloads an hour, in one step an hour as the Hub's counters move,
    snapshotted every 5 minutes by bulk calls: its velocity stays near 60 (warm), not 720
    (hot) for one snapshot and 0 for the next eleven. A model first seen 10 minutes ago
    that gained 150 is hot at once: its young gain counts."""
    start = 1_770_000_000.0
    clock = [start]
    store = StateStore(tmp_path / "producers.sqlite")
    tracker = Tracker(store, TrackingPolicy(), SnapshotSchedule(), clock=lambda: clock[0])
    tracker.track_all([_created("o/steady", start - 400 * DAY)])
    tiers, velocities = [], []
    for step in range(1, 4 * 12 + 1):  # four hours of 5-minute snapshots
        clock[0] = now = start + step * 300
        downloads = 1000 + 60 * (step // 12)  # a step of 60 on the hour
        model = store.get("o/steady")
        assert model is not None
        with store.transaction():
            tiers.append(
                tracker.record(
                    model,
                    now=now,
                    downloads=downloads,
                    likes=0,
                    trending_downloads=downloads,
                    bulk=True,
                )
            )
        velocities.append(store.get("o/steady").velocity)  # type: ignore[union-attr]
    settled = velocities[12:]  # after the first full hour
    assert max(settled) <= 100 and min(settled) >= 30, settled
    assert set(tiers[12:]) == {"warm"}, tiers
    young = start + 4 * 3600
    when = datetime.fromtimestamp(young, UTC)  # a new upload: the Hub lists it with 0 and 0
    tracker.track_all([ModelCreated("o/young", when, when, downloads=0, likes=0)])
    model = store.get("o/young")
    assert model is not None
    with store.transaction():
        tier = tracker.record(
            model, now=young + 600, downloads=150, likes=0, trending_downloads=150
        )
    assert tier == "new" and store.get("o/young").velocity >= 150  # type: ignore[union-attr]
    store.close()
