"""Snapshot schedule benchmark: 14 simulated days of engagement snapshots at Hub rates,
driven by the project's own schedule code (``Tracker``, ``StateStore``, ``SnapshotSchedule``
and its budget plan), before and after the budget-aware schedule, side by side.

The simulated Hub (stated assumptions, not measurements):
- ~3,000 new models a day (Poisson), 3 % of them derivatives of a watched base model;
- each model's downloads per hour start at a log-normal rate (median 0.3, sigma 2: ~2 % reach
  20 an hour, ~0.2 % 100) and decay with a 3-day time constant; likes are 1 % of downloads;
- a bulk list call (1,000 models) reaches a simulated model when it would rank there on the
  whole Hub: ``trendingScore`` at >= 20 downloads an hour, ``likes`` at >= 1,000 likes,
  ``downloads`` at >= 300 k downloads in 30 days, ``lastModified`` when it was modified in the
  last 58 minutes (the Hub's ~25 k modifications a day put 1,000 in that window); a new model
  is modified at creation and ~2 times more within hours;
- the engagement stream's 15 calls per 30 s (150 per 5-minute round), bulk calls included.

Two starts, both with the plan within the budget and four bulk orders: an empty store, and a
year-scale one (``--year`` models, 60,000 by default, created over the past year and
snapshotted last at a random point of their interval: most settled or in the long tail, 2 %
evergreen with steady downloads). ``--before`` adds the old schedule (every tier at the
interval it wants, whatever the budget, one ``trendingScore`` bulk call a round) from an
empty store. All runs use the same code paths.

    .venv/bin/python bench/bench_schedule.py [--days 14] [--per-day 3000] [--scale 0.25]

By default a quarter of the Hub is simulated (750 new models a day against a quarter of the
per-model calls; the bulk calls' coverage is per model, so it needs no scaling): the shares
and per-model figures are the full-size ones, in a minute rather than eight. ``--scale 1``
runs it whole.

Prints share overdue, lag, first-day snapshots per new model and the promise per tier;
asserts nothing.
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hubwatch.events import ModelCreated
from producers.hub_engagement import BULK_SORTS
from producers.snapshot_plan import TIERS
from producers.state import StateStore
from producers.tracking import SnapshotSchedule, Tracker, TrackingPolicy

HOUR = 3600.0
DAY = 24 * HOUR
ROUND = 300.0  # one bulk round, and the budget's window
CALLS_PER_ROUND = 150  # 15 calls per 30 s
TAU = 3 * DAY  # download rate decay
WATCHED = "watched/base"
MODIFIED_WINDOW = 1000 / 25_000 * DAY  # lastModified's first 1,000 at 25 k changes a day
START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


@dataclass
class SimModel:
    repo_id: str
    created: float
    rate: float  # downloads an hour at creation
    tau: float = TAU  # decay time constant; math.inf: an evergreen model, steady for ever

    def downloads(self, now: float) -> int:
        age = max(0.0, now - self.created)
        if math.isinf(self.tau):
            return int(self.rate * age / HOUR)
        return int(self.rate * self.tau / HOUR * (1 - math.exp(-age / self.tau)))

    def rate_at(self, now: float) -> float:
        if math.isinf(self.tau):
            return self.rate
        return self.rate * math.exp(-max(0.0, now - self.created) / self.tau)


@dataclass
class Hub:
    rng: random.Random
    models: dict[str, SimModel] = field(default_factory=dict)
    strong: list[SimModel] = field(default_factory=list)  # may reach a bulk order's top 1,000
    modified: list[tuple[float, str]] = field(default_factory=list)  # sorted

    def arrive(self, now: float, count: int) -> list[ModelCreated]:
        out = []
        for _ in range(count):
            created = now - self.rng.random() * ROUND
            model = SimModel(
                f"org/m{len(self.models):07d}", created, math.exp(self.rng.gauss(math.log(0.3), 2))
            )
            self.models[model.repo_id] = model
            if model.rate >= 20:
                self.strong.append(model)
            for at in [created] + [
                created + self.rng.expovariate(1 / (2 * HOUR)) for _ in range(_poisson(self.rng, 2))
            ]:
                bisect.insort(self.modified, (at, model.repo_id))
            watched = self.rng.random() < 0.03
            out.append(
                ModelCreated(
                    model.repo_id,
                    datetime.fromtimestamp(created, UTC),
                    datetime.fromtimestamp(now, UTC),
                    author="org",
                    base_models=(WATCHED,) if watched else (),
                    downloads=0,
                    likes=0,
                )
            )
        return out

    def past_year(self, now: float, count: int) -> list[ModelCreated]:
        """``count`` models created over the past year (as a year of hubwatch would track):
        most decayed into the settled and tail tiers, 2 % evergreen (steady downloads, a
        log-normal rate of median 2 an hour: the hot and warm tiers' old members)."""
        out = []
        for _ in range(count):
            created = now - self.rng.random() * 365 * DAY
            evergreen = self.rng.random() < 0.02
            rate = math.exp(self.rng.gauss(math.log(2.0 if evergreen else 0.3), 2))
            model = SimModel(
                f"old/m{len(self.models):07d}", created, rate, math.inf if evergreen else TAU
            )
            self.models[model.repo_id] = model
            if model.rate >= 20:
                self.strong.append(model)
            out.append(
                ModelCreated(
                    model.repo_id,
                    datetime.fromtimestamp(created, UTC),
                    datetime.fromtimestamp(now, UTC),
                    author="old",
                    base_models=(WATCHED,) if self.rng.random() < 0.03 else (),
                    downloads=model.downloads(now),
                    likes=model.downloads(now) // 100,
                )
            )
        return out

    def listed(self, sort: str, now: float) -> set[str]:
        """The simulated models a bulk call in ``sort`` order returns now."""
        if sort == "lastModified":
            lo = bisect.bisect_left(self.modified, (now - MODIFIED_WINDOW, ""))
            hi = bisect.bisect_right(self.modified, (now, "\uffff"))
            return {repo for _, repo in self.modified[lo:hi]}
        if sort == "trendingScore":
            return {m.repo_id for m in self.strong if m.rate_at(now) >= 20}
        if sort == "likes":
            return {m.repo_id for m in self.strong if m.downloads(now) // 100 >= 1000}
        if sort == "downloads":
            return {m.repo_id for m in self.strong if m.downloads(now) >= 300_000}
        raise ValueError(sort)


def _poisson(rng: random.Random, mean: float) -> int:
    count, threshold, product = 0, math.exp(-mean), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


@dataclass
class Result:
    name: str
    tracked: int
    overdue: int
    lag_median: float
    lag_p95: float
    first_day: list[int]
    plan: dict[str, tuple[int, float, float]]  # tier: models, calls a day, promise
    overdue_by_day: list[float]
    seconds: float


def simulate(
    name: str,
    *,
    budget: bool,
    days: int,
    per_day: int,
    scale: float,
    seed: int,
    year: int = 0,
) -> Result:
    started = time.perf_counter()
    rng = random.Random(seed)
    hub = Hub(rng)
    sorts = BULK_SORTS if budget else ("trendingScore",)
    # At a scale below 1 the Hub's arrivals and the per-model calls shrink together, so
    # every ratio (calls per model, promises, shares) is the full-size one.
    per_round = (CALLS_PER_ROUND - len(sorts)) * scale
    schedule = SnapshotSchedule(calls_per_day=per_round * DAY / ROUND if budget else None)
    credit = 0.0
    clock = [START]
    first_day: dict[str, int] = {}
    overdue_by_day = []
    # In memory if the host has it: the store syncs every round, which is not what is timed.
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        path = Path(tmp) / "producers.sqlite"
        store = StateStore(path)
        tracker = Tracker(
            store,
            TrackingPolicy(watched_base_models=frozenset({WATCHED})),
            schedule,
            clock=lambda: clock[0],
            bulk_every=ROUND,
        )
        if year:
            _start_from_a_year(hub, tracker, store, int(year * scale), rng)
        for step in range(int(days * DAY / ROUND)):
            now = clock[0] = START + (step + 1) * ROUND
            tracker.track_all(hub.arrive(now, _poisson(rng, scale * per_day * ROUND / DAY)))
            with store.transaction():
                seen: set[str] = set()
                for sort in sorts:
                    seen |= hub.listed(sort, now)
                for repo_id in seen:
                    _snapshot(tracker, store, hub.models[repo_id], now, True, first_day)
                credit += per_round
                calls = int(credit)
                credit -= calls
                for model in store.due_snapshots(now, calls + len(seen)):
                    if calls == 0:
                        break
                    if model.repo_id in seen:
                        continue
                    calls -= 1
                    _snapshot(tracker, store, hub.models[model.repo_id], now, False, first_day)
            if (step + 1) % int(DAY / ROUND) == 0:
                overdue_by_day.append(_overdue(path, tracker, now)[0])
        now = clock[0]
        share, lags, tracked = _overdue(path, tracker, now)
        plan = tracker.plan(now)
        store.close()
    complete = [
        first_day.get(m.repo_id, 0)
        for m in hub.models.values()
        if m.created >= START and m.created + DAY <= now
    ]
    return Result(
        name,
        tracked,
        round(share * tracked),
        statistics.median(lags) if lags else 0.0,
        _quantile(lags, 0.95),
        complete,
        {t: (p.models, p.calls_per_day, p.promise) for t, p in plan.tiers.items()},
        overdue_by_day,
        time.perf_counter() - started,
    )


def _start_from_a_year(
    hub: Hub, tracker: Tracker, store: StateStore, count: int, rng: random.Random
) -> None:
    """The store as a year of hubwatch leaves it: ``count`` models tracked, each snapshotted
    last at a random point of its tier's interval (as a running schedule spreads them)."""
    events = hub.past_year(START, count)
    tracker.track_all(events)
    plan = tracker.plan(START)
    with store.transaction():
        for event in events:
            tracked = store.get(event.repo_id)
            assert tracked is not None
            at = START - rng.random() * min(plan.every(tracked.tier), 30 * DAY)
            downloads = hub.models[event.repo_id].downloads(at)
            tracker.record(
                tracked,
                now=at,
                downloads=downloads,
                likes=downloads // 100,
                trending_downloads=downloads,
            )


def _snapshot(
    tracker: Tracker,
    store: StateStore,
    model: SimModel,
    now: float,
    bulk: bool,
    first_day: dict[str, int],
) -> None:
    tracked = store.get(model.repo_id)
    if tracked is None:
        return
    downloads = model.downloads(now)
    tracker.record(
        tracked,
        now=now,
        downloads=downloads,
        likes=downloads // 100,
        trending_downloads=downloads,
        bulk=bulk,
    )
    if now - model.created < DAY:
        first_day[model.repo_id] = first_day.get(model.repo_id, 0) + 1


def _overdue(path: Path, tracker: Tracker, now: float) -> tuple[float, list[float], int]:
    """Share of tracked models past their tier's promise, and how far past (seconds)."""
    plan = tracker.plan(now)
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT tier, coalesce(last_snapshot, tracked_at) FROM models WHERE gone_strikes = 0"
        ).fetchall()
    lags = [now - since - plan.promise(tier) for tier, since in rows]
    late = [lag for lag in lags if lag > 0]
    return len(late) / max(1, len(rows)), late, len(rows)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _duration(seconds: float) -> str:
    if seconds >= DAY:
        return f"{seconds / DAY:.1f} d"
    if seconds >= HOUR:
        return f"{seconds / HOUR:.1f} h"
    return f"{seconds / 60:.0f} min"


def report(results: list[Result]) -> None:
    rows = [
        ("tracked models", lambda r: f"{r.tracked:,}"),
        ("overdue", lambda r: f"{r.overdue:,} ({r.overdue / max(1, r.tracked):.1%})"),
        (
            "overdue share, day 1/7/14",
            lambda r: " / ".join(
                f"{r.overdue_by_day[d - 1]:.0%}" for d in (1, 7, 14) if d <= len(r.overdue_by_day)
            ),
        ),
        ("lag of the overdue, median", lambda r: _duration(r.lag_median)),
        ("lag of the overdue, p95", lambda r: _duration(r.lag_p95)),
        (
            "first-day snapshots per new model, median (mean)",
            lambda r: f"{statistics.median(r.first_day):.0f} ({statistics.mean(r.first_day):.1f})",
        ),
        (
            "new models with < 4 first-day snapshots",
            lambda r: f"{sum(1 for n in r.first_day if n < 4) / len(r.first_day):.1%}",
        ),
        ("simulation wall time", lambda r: f"{r.seconds:.0f} s"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'':{width}}  " + "  ".join(f"{r.name:>22}" for r in results))
    for label, cell in rows:
        print(f"{label:{width}}  " + "  ".join(f"{cell(r):>22}" for r in results))
    print("\npromise per tier (models per-model calls reach, calls a day, promised interval):")
    for tier in TIERS:
        cells = []
        for r in results:
            models, calls, promise = r.plan[tier]
            cells.append(f"{models:>6,} {calls:>8,.0f}/d {_duration(promise):>7}")
        print(f"  {tier:<{width - 2}}  " + "  ".join(f"{c:>22}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--per-day", type=int, default=3000, help="new models a day")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument(
        "--scale",
        type=float,
        default=0.25,
        help="share of the Hub's new models and of the per-model calls simulated (1: all)",
    )
    parser.add_argument(
        "--year",
        type=int,
        default=60_000,
        help="models tracked at the year-scale start (full size; scaled by --scale)",
    )
    parser.add_argument(
        "--before", action="store_true", help="also run the old fixed-interval schedule"
    )
    args = parser.parse_args()
    runs = [("before, empty start", False, 0)] if args.before else []
    runs += [("empty start", True, 0), ("year-scale start", True, args.year)]
    results = [
        simulate(
            name,
            budget=budget,
            days=args.days,
            per_day=args.per_day,
            scale=args.scale,
            seed=args.seed,
            year=year,
        )
        for name, budget, year in runs
    ]
    print(
        f"{args.days} simulated days, ~{args.per_day:,} new models a day, "
        f"{CALLS_PER_ROUND} engagement calls per {ROUND:.0f} s, at scale {args.scale:g}; "
        f"the year-scale start tracks {int(args.year * args.scale):,} models from day 0\n"
    )
    report(results)


if __name__ == "__main__":
    main()
