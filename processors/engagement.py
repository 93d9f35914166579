"""Rolling engagement, live: likes and downloads gained over the last 1 h, 24 h and 7 d,
velocity and acceleration, recomputed for a model on each of its ``model.snapshot`` events.

The state is hourly buckets per model (the first and last counters seen in the hour) in a
mapping keyed ``(repo_id, hour)``: a dict in the embedded mode, a faust table of 1-hour
tumbling windows on Kafka (:class:`processors.app`). The numbers are those the
``engagement`` canned query computes from ``engagement_hourly``, taken at the snapshot's
time, so dashboards can read the live table and the history alike.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hubwatch.clickhouse import as_utc
from hubwatch.events import ModelSnapshot

__all__ = [
    "HORIZON_HOURS",
    "HOUR",
    "MIN_SPAN_HOURS",
    "EngagementRow",
    "RollingEngagement",
    "fold",
    "span_hours",
]

HOUR = 3600
HORIZON_HOURS = 15 * 24
"How far back buckets are kept: a weekly-sampled model still has a value 7 days back."
MIN_SPAN_HOURS = 1.0
"""Velocity divides a gain by the span its observations cover, but by no less than this:
two snapshots a minute apart would otherwise turn one download into 60 an hour."""

Bucket = Sequence[float]
"""[first_at, first_downloads, first_likes, last_at, last_downloads, last_likes]; a list,
so it round-trips through the faust table's JSON changelog unchanged."""


@dataclass(frozen=True, slots=True)
class EngagementRow:
    """A row of ``engagement_live`` (see hubwatch/migrations/0010_engagement_live.sql)."""

    repo_id: str
    at: datetime
    likes: int
    downloads_all_time: int
    likes_1h: int
    likes_24h: int
    likes_7d: int
    downloads_1h: int
    downloads_24h: int
    downloads_7d: int
    velocity_per_hour: float
    acceleration: float


def fold(bucket: Bucket | None, at: float, downloads: int, likes: int) -> list[float]:
    """One more snapshot into an hour's bucket; a redelivered snapshot changes nothing."""
    if not bucket:
        return [at, downloads, likes, at, downloads, likes]
    first = [at, downloads, likes] if at < bucket[0] else list(bucket[0:3])
    last = [at, downloads, likes] if at > bucket[3] else list(bucket[3:6])
    return first + last


def span_hours(start: float, end: float) -> float:
    """Hours from ``start`` to ``end`` (unix seconds), in whole milliseconds as ClickHouse
    stores them, and at least :data:`MIN_SPAN_HOURS`."""
    return max(MIN_SPAN_HOURS, round((end - start) * 1000) / 3_600_000)


class RollingEngagement:
    """Rolling windows over hourly buckets held in ``buckets``.

    With ``prune_every`` the mapping is a plain dict that this class keeps to the horizon;
    a faust windowed table expires its windows itself.
    """

    def __init__(
        self, buckets: MutableMapping[tuple[str, int], Any], *, prune_every: int | None = None
    ) -> None:
        self._buckets = buckets
        self._prune_every = prune_every
        self._seen = 0
        self._latest_hour = 0

    def observe(self, snapshot: ModelSnapshot) -> EngagementRow:
        observed = as_utc(snapshot.observed_at)  # naive would read as the host's zone
        # Milliseconds, as model_snapshots keeps them: the query's spans are the same.
        at = observed.replace(microsecond=observed.microsecond // 1000 * 1000).timestamp()
        self.fold(
            snapshot.repo_id, at, snapshot.downloads_all_time, snapshot.downloads, snapshot.likes
        )
        return self.rolling(snapshot.repo_id, at)

    def fold(
        self,
        repo_id: str,
        at: float,
        downloads_all_time: int | None,
        downloads: int | None,
        likes: int | None,
    ) -> None:
        """One snapshot's counters into its hour (all-time downloads, else the 30-day count,
        as ``engagement_hourly`` does)."""
        hour = int(at // HOUR)
        count = downloads_all_time if downloads_all_time is not None else downloads or 0
        key = (repo_id, hour)
        self._buckets[key] = fold(self._buckets.get(key), at, count, likes or 0)
        self._latest_hour = max(self._latest_hour, hour)
        self._seen += 1
        if self._prune_every and self._seen % self._prune_every == 0:
            self._prune()

    def rolling(self, repo_id: str, at: float) -> EngagementRow:
        """The windows as of ``at`` (the snapshot just folded in included)."""
        now_hour = int(at // HOUR)
        history = []  # newest first
        for hour in range(now_hour, now_hour - HORIZON_HOURS - 1, -1):
            bucket = self._buckets.get((repo_id, hour))
            if bucket:
                history.append((hour * HOUR, bucket))
        if not history:
            raise KeyError(repo_id)
        _, latest = history[0]
        _, oldest = history[-1]

        def last_before(seconds: int) -> Bucket | None:
            # The last counters of the newest hour that started before the window opened.
            return next((b for start, b in history if start < at - seconds), None)

        def baseline(seconds: int) -> Bucket:
            # What a window's gain is measured from: [at, downloads, likes].
            before = last_before(seconds)
            return before[3:6] if before else oldest[0:3]

        def gain(index: int, seconds: int) -> int:
            return int(latest[3 + index] - baseline(seconds)[index])

        # Velocity: the 24-hour gain over the span it actually covers (a model first seen
        # 2 hours ago gained over 2 hours, one sampled weekly over up to 7 days).
        downloads_24h = gain(1, 24 * HOUR)
        start = baseline(24 * HOUR)
        velocity = round(downloads_24h / span_hours(start[0], latest[3]), 3)
        at_24h = last_before(24 * HOUR)
        previous = 0.0
        if at_24h is not None:
            earlier = baseline(48 * HOUR)
            previous = (at_24h[4] - earlier[1]) / span_hours(earlier[0], at_24h[3])
        return EngagementRow(
            repo_id=repo_id,
            at=datetime.fromtimestamp(at, UTC),
            likes=int(latest[5]),
            downloads_all_time=int(latest[4]),
            likes_1h=gain(2, HOUR),
            likes_24h=gain(2, 24 * HOUR),
            likes_7d=gain(2, 7 * 24 * HOUR),
            downloads_1h=gain(1, HOUR),
            downloads_24h=downloads_24h,
            downloads_7d=gain(1, 7 * 24 * HOUR),
            velocity_per_hour=velocity,
            acceleration=round(velocity - previous, 3),
        )

    def _prune(self) -> None:
        horizon = self._latest_hour - HORIZON_HOURS
        for key in [k for k in self._buckets if k[1] < horizon]:
            del self._buckets[key]
