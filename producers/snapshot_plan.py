"""What the engagement budget buys: per tier of followed models, the calls a day it gets and
the snapshot interval it can be promised. Pure arithmetic, no I/O.

The schedule wants every new model every 15 minutes, which at ~3 k new models a day is
~288 k calls, against ~43 k a day the engagement stream may spend. So the calls are shared
out by value: each tier gets what it wants if that fits its weighted share, and what the
others leave over is shared again among the rest (water-filling). A tier whose share falls
short is promised the interval its share buys. Models are scheduled at ``slack`` of their
promise, so a round that runs late still keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["TIERS", "SnapshotPlan", "TierPlan", "plan_snapshots"]

DAY = 86_400.0
_LONGEST = 365 * DAY
"No budget at all still leaves a date, a year out, rather than never."

TIERS: tuple[str, ...] = ("followed", "new", "hot", "warm", "recent", "settled", "tail")
"""Most valuable first: descendants of watched base models, liked models and watched orgs;
models in their first day; fast-moving ones; recent ones; older ones; the long tail."""


@dataclass(frozen=True, slots=True)
class TierPlan:
    tier: str
    models: int
    "Models in the tier that per-model calls must reach (bulk list calls cover the rest)."
    wanted: float
    "The interval the schedule asks for, in seconds."
    calls_per_day: float
    "What the budget gives the tier."
    every: float
    "The interval its models are scheduled at."
    promise: float
    "The interval it keeps: a model not snapshotted within it is overdue."


@dataclass(frozen=True, slots=True)
class SnapshotPlan:
    tiers: Mapping[str, TierPlan]
    calls_per_day: float | None
    "Per-model calls a day; None: unbounded (every tier gets what it wants)."

    def every(self, tier: str) -> float:
        return self.tiers[tier].every

    def promise(self, tier: str) -> float:
        return self.tiers[tier].promise


def plan_snapshots(
    models: Mapping[str, int],
    wanted: Mapping[str, float],
    weights: Mapping[str, float],
    calls_per_day: float | None,
    *,
    slack: float = 0.8,
) -> SnapshotPlan:
    """Share ``calls_per_day`` among the tiers of ``wanted`` holding ``models`` each."""
    if calls_per_day is None:
        return SnapshotPlan(
            {
                t: TierPlan(t, models.get(t, 0), w, models.get(t, 0) * DAY / w, w, w)
                for t, w in wanted.items()
            },
            None,
        )
    # Calls a day each tier needs to be scheduled at slack * wanted.
    demand = {t: models.get(t, 0) * DAY / (w * slack) for t, w in wanted.items()}
    granted: dict[str, float] = {}
    left = max(0.0, calls_per_day)
    contested = {t for t, d in demand.items() if d > 0}
    while contested:
        total = sum(weights[t] for t in contested)
        share = {t: left * weights[t] / total for t in contested}
        fits = {t for t in contested if demand[t] <= share[t]}
        if not fits:
            granted.update(share)
            break
        for t in fits:
            granted[t] = demand[t]
            left -= demand[t]
        contested -= fits
    tiers = {}
    for t, w in wanted.items():
        count = models.get(t, 0)
        calls = granted.get(t, 0.0)
        every = w * slack
        if count and calls < demand[t]:
            every = min(_LONGEST, count * DAY / calls) if calls > 0 else _LONGEST
        tiers[t] = TierPlan(t, count, w, calls, every, every / slack)
    return SnapshotPlan(tiers, calls_per_day)
