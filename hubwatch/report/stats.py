"""Summary statistics for the report: plain Python, seeded, no I/O."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

__all__ = ["BOOTSTRAP_SEED", "bootstrap_ci", "by_group", "summary"]

BOOTSTRAP_SEED = 9
BOOTSTRAP_RESAMPLES = 1000
T = TypeVar("T")


def _r(value: float) -> float:
    return round(value, 3)


def summary(deltas: Sequence[float]) -> dict[str, Any]:
    """n, median, mean and share above zero (an improvement), rounded to 3 places."""
    if not deltas:
        return {"n": 0}
    return {
        "n": len(deltas),
        "median": _r(statistics.median(deltas)),
        "mean": _r(statistics.fmean(deltas)),
        "share_improved": _r(sum(d > 0 for d in deltas) / len(deltas)),
    }


def ratio_summary(ratios: Sequence[float]) -> dict[str, Any]:
    if not ratios:
        return {"n": 0}
    return {
        "n": len(ratios),
        "median": _r(statistics.median(ratios)),
        "share_smaller": _r(sum(r < 1 for r in ratios) / len(ratios)),
    }


def by_group(items: Iterable[T], key: Callable[[T], str]) -> dict[str, list[T]]:
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item) or "(unknown)", []).append(item)
    return groups


def bootstrap_ci(
    values: Sequence[float],
    *,
    seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the median: ``resamples`` draws with replacement
    from ``random.Random(seed)``, so the same values always give the same interval."""
    rng = random.Random(seed)
    medians = sorted(
        statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples)
    )
    tail = (1 - level) / 2
    low = medians[int(tail * resamples)]
    high = medians[min(resamples - 1, int((1 - tail) * resamples))]
    return _r(low), _r(high)
