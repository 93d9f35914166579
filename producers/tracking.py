"""Which models hubwatch follows, and how often: the snapshot schedule and the choice of
models whose commits and discussions are polled."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hubwatch.events import ModelCreated
from producers.hub import named_bases, relation_fingerprint
from producers.state import StateStore

__all__ = ["SnapshotSchedule", "Tracker", "TrackingPolicy", "gone_recheck"]

_HOUR = 3600.0
_DAY = 24 * _HOUR


def gone_recheck(strikes: int) -> float:
    """Seconds until a repo that answered "gone" ``strikes`` times in a row is asked again:
    a day, doubling to a month. Rarely, not never: a gated or private repo can reopen."""
    return min(30 * _DAY, _DAY * 2.0 ** max(0, strikes - 1))


@dataclass(frozen=True, slots=True)
class SnapshotSchedule:
    """How long until a model's next engagement snapshot: new and fast-moving models
    often, the long tail rarely."""

    new_age: float = _DAY
    new_every: float = 15 * 60
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

    def interval(self, *, age: float | None, velocity: float, downloads: int | None) -> float:
        if age is not None and age < self.new_age:
            return self.new_every
        if velocity >= self.hot_velocity:
            return self.hot_every
        if velocity >= self.warm_velocity:
            return self.warm_every
        if age is not None and age < self.recent_age:
            return self.recent_every
        if (downloads or 0) < self.tail_downloads:
            return self.tail_every
        return self.default_every


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
    ) -> None:
        self.store = store
        self.policy = policy or TrackingPolicy()
        self.schedule = schedule or SnapshotSchedule()
        self._clock = clock
        with store.transaction():
            for base in self.policy.watched_base_models:
                store.add_family(base)

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
                self.store.track(
                    event.repo_id,
                    author=event.author,
                    created_at=created,
                    fingerprint=relation_fingerprint(event),
                    downloads=event.downloads,
                    likes=event.likes,
                    next_snapshot=now + self.schedule.new_every,
                    community=community,
                    base_models=bases,
                )
                if community and self.store.in_family(bases):
                    self.store.add_family(event.repo_id)  # its descendants join too
                for repo in event.github_repos:
                    self.store.add_github_repo(repo, f"card:{event.repo_id}")
