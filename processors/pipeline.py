"""From a batch of records (Kafka messages or in-process events) to ClickHouse insert plans.

Shared by the faust agents and the embedded runner, so both do exactly the same thing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hubwatch import metrics
from hubwatch.errors import SchemaError
from hubwatch.events import (
    DeadLetter,
    Event,
    GithubCommit,
    GithubIssue,
    GithubRelease,
    GithubRepoSnapshot,
    ModelCommit,
    ModelCreated,
    ModelDiscussion,
    ModelSnapshot,
    ModelUpdated,
    decode,
)
from processors.activity import community_row, repo_snapshot_row, snapshot_row
from processors.engagement import RollingEngagement
from processors.families import FamilyForest
from processors.leaderboard import card_score_rows
from processors.lineage import (
    LineageEdge,
    ModelRow,
    lineage_disputes,
    lineage_edges,
    model_row,
)
from processors.sinks import TABLES, InsertPlan, plan_dead_letters, plan_rows

__all__ = ["Batch", "RawRecord", "plan_batch", "rows_for"]


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One message as read from a topic."""

    topic: str
    key: bytes | None
    value: bytes


def rows_for(event: Event) -> list[Any]:
    """The ClickHouse rows one event becomes (each row type has its table in TABLES)."""
    match event:
        case ModelCreated():
            edges = lineage_edges(event)
            scores = card_score_rows(event)
            return [model_row(event), *edges, *lineage_disputes(event, edges), *scores]
        case ModelUpdated():
            edges = lineage_edges(event)
            return [*edges, *lineage_disputes(event, edges)]
        case ModelSnapshot():
            return [snapshot_row(event)]
        case GithubRepoSnapshot():
            return [repo_snapshot_row(event)]
        case ModelCommit() | ModelDiscussion() | GithubCommit() | GithubIssue() | GithubRelease():
            return [community_row(event)]
    return []


@dataclass(slots=True)
class Batch:
    rows: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    dead_letters: list[DeadLetter] = field(default_factory=list)
    forest: FamilyForest | None = None
    "The family trees to keep up to date; their changed rows join the batch at the end."
    engagement: RollingEngagement | None = None
    "Live rolling windows, recomputed per snapshot."
    _seen: set[str] = field(default_factory=set)
    kinds: Counter[str] = field(default_factory=Counter)
    "Events processed per kind (counted into the metric once per batch, not per event)."

    def add(self, item: Event | DeadLetter) -> None:
        if isinstance(item, DeadLetter):
            self.dead_letters.append(item)
            return
        if item.event_id in self._seen:  # a redelivery inside one batch
            return
        self._seen.add(item.event_id)
        self.kinds[item.KIND] += 1
        rows = rows_for(item)
        for row in rows:
            self.rows[TABLES[type(row)]].append(row)
        if self.forest is not None and isinstance(item, ModelCreated | ModelUpdated):
            edges = [r for r in rows if isinstance(r, LineageEdge)]
            model = next((r for r in rows if isinstance(r, ModelRow)), None)
            self.forest.observe_event(item, edges, model)
        elif self.engagement is not None and isinstance(item, ModelSnapshot):
            self.rows["engagement_live"].append(self.engagement.observe(item))

    def add_raw(self, record: RawRecord) -> None:
        try:
            self.add(decode(record.value))
        except SchemaError as error:
            key = record.key.decode("utf-8", "replace") if record.key is not None else None
            letter = DeadLetter.of(
                stage=f"processor.{record.topic}",
                error=error,
                source=record.topic,
                key=key,
                payload=record.value,
            )
            metrics.DEAD_LETTERS.labels(letter.stage, letter.reason).inc()
            self.dead_letters.append(letter)

    @property
    def edges(self) -> list[Any]:
        return self.rows["lineage_edges"]

    def plans(self, *, with_dead_letters: bool = True) -> list[InsertPlan]:
        """Insert plans; on Kafka dead letters go to their topic instead, and from there to
        ClickHouse by their own agent (``with_dead_letters=False``)."""
        plans = [plan_rows(table, rows) for table, rows in self.rows.items() if rows]
        if with_dead_letters and self.dead_letters:
            plans.append(plan_dead_letters(self.dead_letters))
        return plans


def plan_batch(
    items: Iterable[Event | DeadLetter | RawRecord],
    *,
    forest: FamilyForest | None = None,
    engagement: RollingEngagement | None = None,
) -> Batch:
    """A batch's rows. The stateful parts are optional: with ``forest`` also the
    ``model_families`` rows its lineage changed, with ``engagement`` the live windows of its
    snapshots (written with the rest, so they are acknowledged together)."""
    batch = Batch(forest=forest, engagement=engagement)
    for item in items:
        if isinstance(item, RawRecord):
            batch.add_raw(item)
        else:
            batch.add(item)
    if forest is not None:
        batch.rows["model_families"] = forest.drain()
    for kind, count in batch.kinds.items():
        metrics.EVENTS_PROCESSED.labels(kind).inc(count)
    return batch
