"""Which models hubwatch follows, and how often: the snapshot schedule and the choice of
models whose commits and discussions are polled."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from hubwatch import metrics
from hubwatch.events import ModelCreated
from producers.hub import named_bases, relation_fingerprint
from producers.snapshot_plan import TIERS, SnapshotPlan, plan_snapshots
from producers.state import StateStore, TrackedModel

__all__ = ["SnapshotSchedule", "Tracker", "TrackingPolicy", "gone_recheck"]

_HOUR = 3600.0
_DAY = 24 * _HOUR


def gone_recheck(strikes: int) -> float:
    """Seconds until a repo that answered "gone" ``strikes`` times in a row is asked again:
    a day, doubling to a month. Rarely, not never: a gated or private repo can reopen."""
    return min(30 * _DAY, _DAY * 2.0 ** max(0, strikes - 1))


@dataclass(frozen=True, slots=True)
class SnapshotSchedule:
    """How long until a model's next engagement snapshot: followed, new and fast-moving
    models often, the long tail rarely, each tier within what ``calls_per_day`` buys (see
    :mod:`producers.snapshot_plan`)."""

    new_age: float = _DAY
    new_every: float = 15 * 60
    followed_every: float = 15 * 60
    "New models worth most: descendants of watched base models, of watched orgs, liked."
    hot_velocity: float = 100.0
    "downloads+likes per hour that make a model hot."
    hot_every: float = 30 * 60
    warm_velocity: float = 10.0
    warm_every: float = 2 * _HOUR
    recent_age: float = 30 * _DAY
    recent_every: float = 6 * _HOUR
    tail_downloads: int = 10
    tail_every: float = 7 * _DAY
    default_every: float = _DAY
    calls_per_day: float | None = None
    "Per-model snapshot calls a day (bulk list calls not counted); None: unbounded."
    weights: Mapping[str, float] = field(
        default_factory=lambda: {
            "followed": 8.0,
            "new": 4.0,
            "hot": 4.0,
            "warm": 2.0,
            "recent": 1.0,
            "settled": 0.5,
            "tail": 0.25,
        }
    )
    "Each tier's share of a contested budget (what it does not need goes to the others)."
    slack: float = 0.8
    "Models are scheduled at this share of their tier's promise."
    replan_every: float = 300.0
    "Seconds between recounts of the tiers."
    velocity_span: float = _HOUR
    """The least span a velocity is measured over. Bulk calls snapshot a model every 5
    minutes and the Hub's counters move in steps, so a gain over 5 minutes is noise (one
    step of 60 downloads reads as 720 an hour, the next 5 minutes as 0)."""

    def velocity(
        self,
        anchor: tuple[float, int | None, int | None] | None,
        previous: float,
        *,
        now: float,
        downloads: int | None,
        likes: int | None,
    ) -> tuple[float, tuple[float, int | None, int | None] | None]:
        """(downloads+likes an hour, the window's new start: None to start it at this
        snapshot). Over a window of at least :attr:`velocity_span` the gain is divided by
        the span it covers; within a shorter one the last full window's velocity stands,
        unless the gain so far already beats it over a whole span (a young model gaining
        fast is not held at 0 until its first hour is up)."""
        if anchor is None or (anchor[1] is None and anchor[2] is None):
            return previous, None  # no counters to measure from: the window starts here
        if now <= anchor[0]:
            return previous, anchor
        at, anchor_downloads, anchor_likes = anchor
        gained = max(0, (downloads or 0) - (anchor_downloads or 0)) + max(
            0, (likes or 0) - (anchor_likes or 0)
        )
        span = now - at
        if span >= self.velocity_span:
            return gained * _HOUR / span, None
        return max(previous, gained * _HOUR / self.velocity_span), anchor

    def tier(
        self, *, age: float | None, velocity: float, downloads: int | None, followed: bool = False
    ) -> str:
        if age is not None and age < self.new_age:
            return "followed" if followed else "new"
        if velocity >= self.hot_velocity:
            return "hot"
        if velocity >= self.warm_velocity:
            return "warm"
        if age is not None and age < self.recent_age:
            return "recent"
        if (downloads or 0) < self.tail_downloads:
            return "tail"
        return "settled"

    def value(self, tier: str, *, velocity: float, base_popularity: float) -> float:
        """What a model's next snapshot is worth, to order the due ones: its tier's weight,
        times a factor for its recent velocity (downloads+likes an hour) and one for the
        popularity of its base (likes + downloads/1,000 of the most popular base it names:
        a young derivative of a popular base is what a breakout detector is for), each
        growing with the log, so no one figure swamps the others. The order also weighs
        how long a model has waited (:meth:`StateStore.due_snapshots`)."""
        return (
            self.weights[tier]
            * (1.0 + math.log10(1.0 + max(0.0, velocity)))
            * (1.0 + math.log10(1.0 + max(0.0, base_popularity)))
        )

    @property
    def wanted(self) -> dict[str, float]:
        """The interval each tier asks for, budget aside."""
        return {
            "followed": self.followed_every,
            "new": self.new_every,
            "hot": self.hot_every,
            "warm": self.warm_every,
            "recent": self.recent_every,
            "settled": self.default_every,
            "tail": self.tail_every,
        }

    def interval(self, *, age: float | None, velocity: float, downloads: int | None) -> float:
        """The interval wanted for a model, budget aside."""
        return self.wanted[self.tier(age=age, velocity=velocity, downloads=downloads)]

    def plan(self, models: Mapping[str, int]) -> SnapshotPlan:
        """Each tier's interval and promise, for ``models`` per tier, within the budget."""
        return plan_snapshots(
            models, self.wanted, self.weights, self.calls_per_day, slack=self.slack
        )


@dataclass(frozen=True, slots=True)
class TrackingPolicy:
    """Whose commits and discussions to poll: popular models, watched orgs, and every
    descendant of a watched base model."""

    community_min_likes: int = 10
    watched_orgs: frozenset[str] = field(default_factory=frozenset)
    watched_base_models: frozenset[str] = field(default_factory=frozenset)
    community_every: float = _HOUR
    webhook_every: float = 6 * _HOUR
    "Orgs whose changes arrive by webhook are polled this rarely, as a safety net."
    webhook_orgs: frozenset[str] = field(default_factory=frozenset)


class Tracker:
    def __init__(
        self,
        store: StateStore,
        policy: TrackingPolicy | None = None,
        schedule: SnapshotSchedule | None = None,
        clock: Callable[[], float] = time.time,
        *,
        bulk_every: float = 300.0,
        calls_per_day: Callable[[], float] | None = None,
    ) -> None:
        """``calls_per_day``: what the engagement stream's own share of the Hub budget buys
        in per-model calls now (it shrinks with the Hub's limit); each plan promises from
        it. None: the schedule's fixed figure."""
        self.store = store
        self.policy = policy or TrackingPolicy()
        self.schedule = schedule or SnapshotSchedule()
        self._clock = clock
        self._plan: SnapshotPlan | None = None
        self._planned_at = 0.0
        self.bulk_every = bulk_every
        self._calls_per_day = calls_per_day
        with store.transaction():
            for base in self.policy.watched_base_models:
                store.add_family(base)

    def plan(self, now: float | None = None) -> SnapshotPlan:
        """The snapshot plan for the tiers as now counted, recounted every
        ``schedule.replan_every`` seconds."""
        now = self._clock() if now is None else now
        if self._plan is None or now - self._planned_at >= self.schedule.replan_every:
            # A model a bulk call saw in its last two rounds will most likely be seen again.
            counts = self.store.tier_counts(bulk_since=now - 2 * self.bulk_every)
            if self._calls_per_day is not None:
                self.schedule = dataclasses.replace(
                    self.schedule, calls_per_day=max(0.0, self._calls_per_day())
                )
            self._plan = self.schedule.plan(counts)
            self._planned_at = now
            for tier in TIERS:
                promise = self._plan.promise(tier)
                count, late = self.store.overdue(tier, promise, now)
                metrics.SNAPSHOT_PROMISE.labels(tier).set(promise)
                metrics.SNAPSHOT_OVERDUE.labels(tier).set(count)
                metrics.SNAPSHOT_OVERDUE_SECONDS.labels(tier).set(late)
        return self._plan

    def record(
        self,
        model: TrackedModel,
        *,
        now: float,
        downloads: int | None,
        likes: int | None,
        trending_downloads: int | None,
        bulk: bool = False,
    ) -> str:
        """A snapshot of ``model`` taken at ``now`` (by a bulk list call, or its own): its
        velocity (over at least ``schedule.velocity_span``), its tier, and its next
        snapshot within the plan. ``downloads`` is the all-time count if the Hub gave one,
        ``trending_downloads`` the 30-day count. Returns the tier."""
        velocity, anchor = self.schedule.velocity(
            model.anchor, model.velocity, now=now, downloads=downloads, likes=likes
        )
        if not bulk and now > model.next_snapshot:
            metrics.SNAPSHOT_LAG.labels(model.tier).observe(now - model.next_snapshot)
        age = now - model.created_at if model.created_at is not None else None
        tier = self.schedule.tier(
            age=age, velocity=velocity, downloads=trending_downloads, followed=model.followed
        )
        self.store.record_snapshot(
            model.repo_id,
            at=now,
            downloads=downloads,
            likes=likes,
            velocity=velocity,
            next_snapshot=now + self.plan(now).every(tier),
            tier=tier,
            bulk=bulk,
            value=self.schedule.value(
                tier, velocity=velocity, base_popularity=model.base_popularity
            ),
            anchor=anchor,
        )
        return tier

    def wants_community(self, event: ModelCreated) -> bool:
        policy = self.policy
        author = event.author or event.repo_id.partition("/")[0]
        return (
            (event.likes or 0) >= policy.community_min_likes
            or author in policy.watched_orgs
            or event.repo_id in policy.watched_base_models
            or self.store.in_family(event.base_models + event.card_base_models)
        )

    def community_interval(self, repo_id: str) -> float:
        org = repo_id.partition("/")[0]
        return (
            self.policy.webhook_every
            if org in self.policy.webhook_orgs
            else self.policy.community_every
        )

    def track_all(self, events: Iterable[ModelCreated]) -> None:
        """Track models as any stream sees them (uploads, or an edit that arrives first);
        a model already known keeps its schedule and can only gain community polling."""
        now = self._clock()
        with self.store.transaction():
            for event in events:
                created = event.created_at.timestamp() if event.created_at else None
                bases = named_bases(event)
                community = self.wants_community(event)
                tier = self.schedule.tier(
                    age=None if created is None else now - created,
                    velocity=0.0,
                    downloads=event.downloads,
                    followed=community,
                )
                popularity = self.store.base_popularity(bases)
                self.store.track(
                    event.repo_id,
                    author=event.author,
                    created_at=created,
                    fingerprint=relation_fingerprint(event),
                    downloads=event.downloads,
                    likes=event.likes,
                    next_snapshot=now + self.plan(now).every(tier),
                    tier=tier,
                    community=community,
                    base_models=bases,
                    tracked_at=now,
                    value=self.schedule.value(tier, velocity=0.0, base_popularity=popularity),
                    base_popularity=popularity,
                )
                if community and self.store.in_family(bases):
                    self.store.add_family(event.repo_id)  # its descendants join too
                for repo in event.github_repos:
                    self.store.add_github_repo(repo, f"card:{event.repo_id}")
