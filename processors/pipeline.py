"""From a batch of records (Kafka messages or in-process events) to ClickHouse insert plans.

Shared by the faust agents and the embedded runner, so both do exactly the same thing. Every
record either becomes rows or a dead letter with its stage and reason; nothing one record
holds stops the batch:

- a tombstone (null value: a key deleted from the compacted ``model.created``) is skipped,
  counted in ``hubwatch_tombstones_total``: hubwatch keeps what it saw of a model, and a
  compaction delete is not an error to alarm on;
- a record on another kind's topic (``kind_mismatch``) or whose Kafka key is not its
  envelope's and event's key (``key_mismatch``) is dead-lettered, not stored;
- an event whose rows the tables would not accept (:mod:`processors.validate`) is
  dead-lettered whole (``out_of_range``, ``too_long``, ``bad_repo_id``, …);
- anything else raised while planning one record (a bug) dead-letters that record
  (``processing_error``), logged with its traceback.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hubwatch import metrics
from hubwatch.alerts.alert import Alert
from hubwatch.alerts.evaluate import AlertEvaluator
from hubwatch.errors import SchemaError
from hubwatch.events import (
    DEFAULT_TOPIC_PREFIX,
    DeadLetter,
    Event,
    GithubCommit,
    GithubIssue,
    GithubRelease,
    GithubRepoSnapshot,
    ModelAlias,
    ModelCommit,
    ModelCreated,
    ModelDiscussion,
    ModelSnapshot,
    ModelUpdated,
    decode,
    encode,
)
from processors.activity import community_rows, repo_snapshot_row, snapshot_row
from processors.aliases import Aliases, AliasRow, alias_row, moved_lineage_plans
from processors.engagement import RollingEngagement
from processors.families import FamilyForest
from processors.leaderboard import card_score_rows
from processors.lineage import (
    LineageDispute,
    LineageEdge,
    ModelRow,
    lineage_disputes,
    lineage_edges,
    model_row,
    retracted_dispute,
    retracted_edge,
)
from processors.sinks import TABLES, InsertPlan, Origin, plan_dead_letters, plan_rows
from processors.validate import RowValidator

__all__ = ["Batch", "RawRecord", "count_delivered", "plan_batch", "rows_for"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One message as read from a topic."""

    topic: str
    key: bytes | None
    value: bytes | None
    "None: a tombstone."


def count_delivered(letters: Iterable[DeadLetter]) -> None:
    """Count dead letters once they are delivered (on their topic, or in ClickHouse)."""
    for letter in letters:
        metrics.DEAD_LETTERS.labels(letter.stage, letter.reason).inc()


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
            return list(community_rows(event))
        case ModelAlias():
            return [alias_row(event)]
    return []


@dataclass(slots=True)
class Batch:
    rows: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    origins: dict[str, list[Origin | None]] = field(default_factory=lambda: defaultdict(list))
    "Per table, parallel to ``rows``: the input each row came from."
    dead_letters: list[DeadLetter] = field(default_factory=list)
    "Every dead letter of the batch: those handed in (the embedded producers') and ``rejected``."
    rejected: list[DeadLetter] = field(default_factory=list)
    "The dead letters this batch made; count them (:func:`count_delivered`) once delivered."
    forest: FamilyForest | None = None
    "The family trees to keep up to date; their changed rows join the batch at the end."
    aliases: Aliases | None = None
    "Other names of models: base ids are made canonical before lineage is kept."
    engagement: RollingEngagement | None = None
    "Live rolling windows, recomputed per snapshot."
    validator: RowValidator | None = None
    "What the tables accept; rows are not checked before the insert without it."
    alerts: AlertEvaluator | None = None
    "Alert rules, evaluated on each model and snapshot; their rows join the batch."
    fired: list[Alert] = field(default_factory=list)
    "Alerts the batch fired: hand them to the outbox once the batch is written."
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    "Records of a kind must come from ``topic_prefix + kind``."
    tombstones: int = 0
    renamed: dict[str, str] = field(default_factory=dict)
    "Aliases learned in this batch (alias -> canonical): their lineage rows move after it."
    _seen: set[str] = field(default_factory=set)
    kinds: Counter[str] = field(default_factory=Counter)
    "Events processed per kind (counted into the metric once per batch, not per event)."

    def add(self, item: Event | DeadLetter) -> None:
        """An in-process event (embedded mode, backfill), or a producer's dead letter."""
        if isinstance(item, DeadLetter):
            self.dead_letters.append(item)
            return
        self._add_event(item, f"processor.{item.KIND}", Origin(item.KIND, item.key, item))

    def add_raw(self, record: RawRecord) -> None:
        """A record as read from Kafka."""
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        origin = Origin(record.topic, key, record.value or b"")
        stage = f"processor.{record.topic}"
        if record.value is None:
            self.tombstones += 1
            metrics.TOMBSTONES.labels(record.topic).inc()
            return
        try:
            event = decode(record.value)
            expected = self.topic_prefix + event.KIND
            if record.topic != expected:
                raise SchemaError("kind_mismatch", f"a {event.KIND} on {record.topic}")
            if key != event.key:
                raise SchemaError(
                    "key_mismatch", f"Kafka key {key!r:.200} is not {event.key!r:.200}"
                )
        except SchemaError as error:
            self._reject(stage, origin, error)
            return
        except Exception as exc:  # a bug on one record must not stop the stream
            log.exception("cannot read a record of %s (key %r)", record.topic, key)
            self._reject(stage, origin, SchemaError("processing_error", repr(exc)))
            return
        self._add_event(event, stage, origin)

    def _add_event(self, event: Event, stage: str, origin: Origin) -> None:
        if event.event_id in self._seen:  # a redelivery inside one batch
            return
        try:
            found = rows_for(event)
            if self.aliases is not None:
                found = self.aliases.canonical_rows(found)
            rows = [(TABLES[type(row)], row) for row in found]
            if self.validator is not None:
                self.validator.check_event(event, rows)
            rows += self._observe(event, [row for _, row in rows])
        except SchemaError as error:
            self._reject(stage, origin, error)
            return
        except Exception as exc:  # a bug on one record must not stop the stream
            log.exception("cannot process %s %s", event.KIND, event.key)
            self._reject(stage, origin, SchemaError("processing_error", repr(exc)))
            return
        self._seen.add(event.event_id)
        self.kinds[event.KIND] += 1
        for table, row in rows:
            self.rows[table].append(row)
            self.origins[table].append(origin)

    def _observe(self, event: Event, rows: list[Any]) -> list[tuple[str, Any]]:
        """The stateful parts: the family trees (their rows come at the end of the batch),
        with the retraction of bases and card claims the model's newest metadata no longer
        names, and the live windows of a snapshot."""
        if isinstance(event, ModelAlias):
            return self._rename(rows)
        if self.forest is not None and isinstance(event, ModelCreated | ModelUpdated):
            edges = [r for r in rows if isinstance(r, LineageEdge)]
            model = next((r for r in rows if isinstance(r, ModelRow)), None)
            disputed = [r.base_model_id for r in rows if isinstance(r, LineageDispute)]
            gone = self.forest.observe_event(event, edges, model, disputed)
            return [
                *self._alert_rows(event, rows),
                *(
                    ("lineage_edges", retracted_edge(event, b, gone.version))
                    for b in gone.retracted
                ),
                *(
                    ("lineage_disputes", retracted_dispute(event, b, gone.version))
                    for b in gone.undisputed
                ),
            ]
        if self.forest is None and isinstance(event, ModelCreated | ModelUpdated):
            return self._alert_rows(event, rows)
        if self.engagement is not None and isinstance(event, ModelSnapshot):
            live = self.engagement.observe(event)
            out: list[tuple[str, Any]] = [("engagement_live", live)]
            if self.alerts is not None:
                out += self.add_fired(*self.alerts.observe_engagement(live, self.forest))
            return out
        return []

    def _alert_rows(
        self, event: ModelCreated | ModelUpdated, rows: list[Any]
    ) -> list[tuple[str, Any]]:
        """The rules on a model, once the family trees have placed it."""
        if self.alerts is None:
            return []
        return self.add_fired(*self.alerts.observe_model(event, rows, self.forest))

    def add_fired(self, alerts: list[Alert], members: list[Any]) -> list[tuple[str, Any]]:
        """Alerts (and group members) fired: their rows, one per alert and target, queued."""
        self.fired += alerts
        return [
            *(("alerts", a.fired_row(t)) for a in alerts for t in a.targets),
            *(("alert_group_members", m) for m in members),
        ]

    def _rename(self, rows: list[Any]) -> list[tuple[str, Any]]:
        """A learned alias: later events map it, and what earlier ones hung under the old
        name moves to the canonical one; older aliases of the old name are re-pointed."""
        out: list[tuple[str, Any]] = []
        for row in rows:
            if not isinstance(row, AliasRow):
                continue
            self.renamed[row.alias_id] = row.canonical_id
            if self.aliases is not None:
                out += [("model_aliases", moved) for moved in self.aliases.learn(row)]
            if self.forest is not None:
                self.forest.rename(row.alias_id, row.canonical_id)
        return out

    def _reject(self, stage: str, origin: Origin, error: SchemaError) -> None:
        payload = origin.payload
        letter = DeadLetter.of(
            stage=stage,
            error=error,
            source=origin.source,
            key=origin.key,
            payload=payload if isinstance(payload, bytes) else encode(payload),
        )
        self.dead_letters.append(letter)
        self.rejected.append(letter)

    @property
    def edges(self) -> list[Any]:
        return self.rows["lineage_edges"]

    def plans(self, *, with_dead_letters: bool = True) -> list[InsertPlan]:
        """Insert plans; on Kafka dead letters go to their topic instead, and from there to
        ClickHouse by their own agent (``with_dead_letters=False``)."""
        plans = [
            plan_rows(table, rows, self.origins.get(table, ()))
            for table, rows in self.rows.items()
            if rows
        ]
        # After the batch's own rows, which may have named an alias learned later in it.
        plans += moved_lineage_plans(self.renamed)
        if with_dead_letters and self.dead_letters:
            plans.append(plan_dead_letters(self.dead_letters))
        return plans


def plan_batch(
    items: Iterable[Event | DeadLetter | RawRecord],
    *,
    forest: FamilyForest | None = None,
    engagement: RollingEngagement | None = None,
    validator: RowValidator | None = None,
    topic_prefix: str = DEFAULT_TOPIC_PREFIX,
    aliases: Aliases | None = None,
    alerts: AlertEvaluator | None = None,
) -> Batch:
    """A batch's rows. The stateful parts are optional: with ``forest`` also the
    ``model_families`` rows its lineage changed, with ``engagement`` the live windows of its
    snapshots (written with the rest, so they are acknowledged together); with
    ``validator`` every event's rows are checked against the tables before any is kept; with
    ``aliases`` base ids are made canonical and ``model.alias`` events extend the map; with
    ``alerts`` the rules are evaluated and what fired is in ``fired`` (and its rows)."""
    batch = Batch(
        forest=forest,
        aliases=aliases,
        engagement=engagement,
        validator=validator,
        topic_prefix=topic_prefix,
        alerts=alerts,
    )
    for item in items:
        if isinstance(item, RawRecord):
            batch.add_raw(item)
        else:
            batch.add(item)
    if alerts is not None:
        for table, row in batch.add_fired(alerts.due_groups(), []):
            batch.rows[table].append(row)
            batch.origins[table].append(None)
    if forest is not None:
        batch.rows["model_families"] = forest.drain()
    for kind, count in batch.kinds.items():
        metrics.EVENTS_PROCESSED.labels(kind).inc(count)
    return batch
