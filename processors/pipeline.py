"""From a batch of records (Kafka messages or in-process events) to ClickHouse insert plans.

Shared by the faust agents and the embedded runner, so both do exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hubwatch import metrics
from hubwatch.errors import SchemaError
from hubwatch.events import DeadLetter, Event, ModelCreated, decode
from processors.lineage import LineageEdge, ModelRow, lineage_edges, model_row
from processors.sinks import InsertPlan, plan_dead_letters, plan_edges, plan_models

__all__ = ["Batch", "RawRecord", "plan_batch"]


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One message as read from a topic."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass(slots=True)
class Batch:
    models: list[ModelRow] = field(default_factory=list)
    edges: list[LineageEdge] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)

    def add(self, item: Event | DeadLetter) -> None:
        if isinstance(item, DeadLetter):
            self.dead_letters.append(item)
            return
        if item.event_id in self._seen:  # a redelivery inside one batch
            return
        self._seen.add(item.event_id)
        metrics.EVENTS_PROCESSED.labels(item.KIND).inc()
        if isinstance(item, ModelCreated):
            self.models.append(model_row(item))
            self.edges.extend(lineage_edges(item))

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

    def plans(self, *, with_dead_letters: bool = True) -> list[InsertPlan]:
        """Insert plans; on Kafka dead letters go to their topic instead, and from there to
        ClickHouse by their own agent (``with_dead_letters=False``)."""
        plans = [plan_models(self.models), plan_edges(self.edges)]
        if with_dead_letters:
            plans.append(plan_dead_letters(self.dead_letters))
        return [p for p in plans if p.rows]


def plan_batch(items: Iterable[Event | DeadLetter | RawRecord]) -> Batch:
    batch = Batch()
    for item in items:
        if isinstance(item, RawRecord):
            batch.add_raw(item)
        else:
            batch.add(item)
    return batch
