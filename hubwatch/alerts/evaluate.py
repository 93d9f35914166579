"""Rules evaluated on events as the processors take them (processors/pipeline.py calls in).

State, all restorable from ClickHouse (:func:`hubwatch.alerts.store.load_evaluator`):

- what fired, per rule and model, so a model fires a rule once (unless ``repeat``) however
  often its events are redelivered or the processor restarts;
- open groups: a rule with ``group`` collects its matches under one base for that long and
  then fires one alert with the count and the list (``alert_group_members`` keeps the
  members, so a group survives a restart);
- each model's facts and licence (a base's licence is compared with its derivatives'), and
  the latest velocity of each model (a derivative's breakout is against its base's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hubwatch import metrics
from hubwatch.alerts import escape
from hubwatch.alerts.alert import Alert, GroupMember, alert_id
from hubwatch.alerts.match import (
    EngagementFacts,
    ModelFacts,
    licence_of,
    match_model,
    quantization_formats,
)
from hubwatch.alerts.rules import Rule, RuleSet
from hubwatch.clickhouse import as_utc
from hubwatch.events import ModelCreated, ModelUpdated
from processors.engagement import EngagementRow
from processors.families import FamilyForest
from processors.lineage import LineageEdge, ModelRow

__all__ = ["AlertEvaluator", "ancestors", "card_text", "facts_of"]

_MAX_DEPTH = 64
"Ancestors walked at most (the forest refuses cycles; this bounds a pathological chain)."


def card_text(event: ModelCreated) -> str:
    """What a rule's ``card`` pattern searches: the card's metadata hubwatch receives (tags,
    which carry the card's tags, licence, languages and datasets; its base models; pipeline
    and library) and the repo id."""
    parts = [
        event.repo_id,
        *event.tags,
        *event.card_base_models,
        event.pipeline_tag or "",
        event.library_name or "",
    ]
    return "\n".join(p for p in parts if p)


def ancestors(forest: FamilyForest | None, model_id: str, primary: str | None) -> tuple[str, ...]:
    """Primary base first, up to the root."""
    line: list[str] = []
    node = primary
    while node and len(line) < _MAX_DEPTH and node not in line and node != model_id:
        line.append(node)
        node = forest.parent(node) if forest is not None and node in forest else None
    return tuple(line)


def facts_of(
    model: ModelRow,
    edges: list[LineageEdge],
    forest: FamilyForest | None,
    *,
    siblings: tuple[str, ...] = (),
    card: str = "",
    licences: dict[str, str] | None = None,
) -> ModelFacts:
    """A model's facts from its ``models`` row and lineage edges (primary base first)."""
    live = [e for e in edges if not e.is_deleted]
    primary = live[0].base_model_id if live else None
    line = ancestors(forest, model.repo_id, primary)
    licence = licence_of(model.tags)
    base_licence = None
    if primary is not None and licences is not None and primary in licences:
        base_licence = licences[primary]
    return ModelFacts(
        model_id=model.repo_id,
        author=model.author or model.repo_id.split("/", 1)[0],
        created_at=as_utc(model.created_at),
        relation=live[0].relation if live else "",
        ancestors=line,
        bases=tuple(e.base_model_id for e in live),
        architectures=(*model.architectures, *((model.model_type,) if model.model_type else ())),
        parameters=model.parameters,
        quant_bits=model.quant_bits,
        formats=quantization_formats(model.tags, siblings),
        licence=licence,
        base_licence=base_licence,
        card_text=card or "\n".join((model.repo_id, *model.tags)),
    )


@dataclass(slots=True)
class _Group:
    opened_at: datetime
    members: list[GroupMember] = field(default_factory=list)


class AlertEvaluator:
    def __init__(
        self,
        rules: RuleSet,
        *,
        extra_targets: tuple[str, ...] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        canonical: Callable[[str], str] | None = None,
    ) -> None:
        self.rules = rules
        self.extra_targets = extra_targets
        "Targets every alert also goes to (the terminal, in hubwatch run)."
        # Milliseconds, as ClickHouse keeps them: a group's id is made from its opening time,
        # which must read back from alert_group_members the same.
        self._clock = lambda: _millis(clock())
        self._canonical = canonical
        self.fired: set[tuple[str, str]] = set()
        self.licences: dict[str, str] = {}
        self.facts: dict[str, ModelFacts] = {}
        "Models' facts, for the rules with engagement thresholds (snapshots carry counters)."
        self.velocity: dict[str, float] = {}
        self.groups: dict[tuple[str, str], _Group] = {}

    # -- restoring --

    def restore_group(self, member: GroupMember) -> None:
        group = self.groups.setdefault(
            (member.rule, member.base_model), _Group(as_utc(member.opened_at))
        )
        if all(m.model_id != member.model_id for m in group.members):
            group.members.append(member)
        self.fired.add((member.rule, member.model_id))

    # -- events --

    def observe_model(
        self,
        event: ModelCreated | ModelUpdated,
        rows: list[Any],
        forest: FamilyForest | None,
    ) -> tuple[list[Alert], list[GroupMember]]:
        """A model's event, with the rows the pipeline made of it (aliases applied)."""
        edges = [r for r in rows if isinstance(r, LineageEdge)]
        model = next((r for r in rows if isinstance(r, ModelRow)), None)
        if model is None:
            if not edges:
                return [], []
            # An edit that changes lineage: the same model under its new bases. A model whose
            # facts are not kept (they are only for engagement rules) is described by the
            # edit's tags and what the family trees know of it.
            known = self.facts.get(event.repo_id) or _facts_of_edit(event, forest)
            line = ancestors(forest, event.repo_id, edges[0].base_model_id)
            facts = _replace_line(known, edges, line, self.licences)
        else:
            self.licences[model.repo_id] = licence_of(model.tags)
            siblings = event.siblings if isinstance(event, ModelCreated) else ()
            text = card_text(event) if isinstance(event, ModelCreated) else ""
            facts = facts_of(
                model, edges, forest, siblings=siblings, card=text, licences=self.licences
            )
        if self.rules.watches_engagement:
            self.facts[facts.model_id] = facts
        return self.evaluate(facts, None, occurrence=event.event_id)

    def observe_engagement(
        self, row: EngagementRow, forest: FamilyForest | None = None
    ) -> tuple[list[Alert], list[GroupMember]]:
        self.velocity[row.repo_id] = row.velocity_per_hour
        facts = self.facts.get(row.repo_id)
        if facts is None:
            facts = ModelFacts(row.repo_id, row.repo_id.split("/", 1)[0], None, "", ())
        if forest is not None and row.repo_id in forest:
            # The family tree as it is now (restored facts know only the parent).
            line = ancestors(forest, row.repo_id, forest.parent(row.repo_id))
            if line != facts.ancestors:
                facts = replace(facts, ancestors=line)
        base = facts.ancestors[0] if facts.ancestors else None
        breakout = None
        if base is not None:
            breakout = round(row.velocity_per_hour / max(self.velocity.get(base, 0.0), 1.0), 3)
        engagement = EngagementFacts(
            likes_1h=row.likes_1h,
            likes_24h=row.likes_24h,
            likes_7d=row.likes_7d,
            downloads_1h=row.downloads_1h,
            downloads_24h=row.downloads_24h,
            downloads_7d=row.downloads_7d,
            velocity=row.velocity_per_hour,
            breakout=breakout,
        )
        return self.evaluate(facts, engagement, occurrence=row.at.isoformat())

    def evaluate(
        self, facts: ModelFacts, engagement: EngagementFacts | None, *, occurrence: str = ""
    ) -> tuple[list[Alert], list[GroupMember]]:
        """``occurrence`` names what matched (the event, the snapshot's time): a ``repeat``
        rule's alert id is made from it, so an input taken again after a crash fires the
        alert it already fired (the outbox dedupes it), not a new one."""
        now = self._clock()
        alerts: list[Alert] = []
        members: list[GroupMember] = []
        canonical = self._canonical_map()
        for rule in self.rules.rules:
            if not rule.repeat and (rule.name, facts.model_id) in self.fired:
                continue
            base = match_model(rule, facts, now, engagement=engagement, canonical=canonical)
            if base is None or self.rules.silenced(rule.name, facts.model_id, now):
                continue
            self.fired.add((rule.name, facts.model_id))
            metrics.ALERTS_FIRED.labels(rule.name).inc()
            if rule.group_seconds:
                group = self.groups.setdefault((rule.name, base), _Group(now))
                member = GroupMember(
                    rule.name, base, group.opened_at, facts.model_id, facts.relation, now
                )
                group.members.append(member)
                members.append(member)
                continue
            occurred = (occurrence or now.isoformat()) if rule.repeat else ""
            alerts.append(self._alert(rule, facts, base, now, occurred, engagement))
        return alerts, members

    def _canonical_map(self) -> dict[str, str]:
        if self._canonical is None:
            return {}
        return {b: self._canonical(b) for r in self.rules.rules for b in r.match.base_models}

    def targets_of(self, rule: Rule) -> tuple[str, ...]:
        named = rule.targets or tuple(self.rules.targets)
        return tuple(dict.fromkeys((*named, *self.extra_targets)))

    def _alert(
        self,
        rule: Rule,
        facts: ModelFacts,
        base: str,
        now: datetime,
        occurrence: str,
        engagement: EngagementFacts | None,
    ) -> Alert:
        reason = ""
        if engagement is not None:
            reason = ", ".join(f"{k} {engagement.get(k)}" for k in rule.match.engagement)
        return Alert(
            alert_id=alert_id(rule.name, facts.model_id, occurrence),
            rule=rule.name,
            model_id=facts.model_id,
            base_model=base,
            relation=facts.relation,
            link=escape.hub_url(facts.model_id),
            models=(facts.model_id,),
            count=1,
            fired_at=now,
            targets=self.targets_of(rule),
            author=facts.author,
            licence=facts.licence,
            base_licence=facts.base_licence or "",
            reason=reason,
        )

    # -- groups --

    def due_groups(self, now: datetime | None = None) -> list[Alert]:
        """The groups whose window has closed, as one alert each (a group of one is that
        model's own alert)."""
        now = _millis(now) if now is not None else self._clock()
        rules = {r.name: r for r in self.rules.rules}
        out = []
        for key, group in list(self.groups.items()):
            rule = rules.get(key[0])
            if rule is None:
                del self.groups[key]
                continue
            if now - group.opened_at < timedelta(seconds=rule.group_seconds):
                continue
            del self.groups[key]
            first = group.members[0]
            relations = {m.relation for m in group.members}
            models = tuple(m.model_id for m in group.members)
            out.append(
                Alert(
                    alert_id=alert_id(rule.name, f"group:{key[1]}", group.opened_at.isoformat()),
                    rule=rule.name,
                    model_id=first.model_id,
                    base_model=key[1],
                    relation=first.relation if len(relations) == 1 else "",
                    link=escape.hub_url(
                        first.model_id if len(models) == 1 else key[1] or first.model_id
                    ),
                    models=models,
                    count=len(models),
                    fired_at=now,
                    targets=self.targets_of(rule),
                    author=first.model_id.split("/", 1)[0] if len(models) == 1 else "",
                )
            )
        return out


def _facts_of_edit(event: ModelCreated | ModelUpdated, forest: FamilyForest | None) -> ModelFacts:
    """A model known only by an edit (full tags, bases) and the family trees (createdAt,
    architecture, parameters from its ``model.created``)."""
    placed = forest is not None and event.repo_id in forest
    size = forest.size(event.repo_id) if forest is not None and placed else None
    return ModelFacts(
        model_id=event.repo_id,
        author=event.repo_id.split("/", 1)[0],
        created_at=forest.created_at(event.repo_id) if forest is not None and placed else None,
        relation="",
        ancestors=(),
        architectures=(size.architecture,) if size is not None and size.architecture else (),
        parameters=size.parameters if size is not None else None,
        formats=quantization_formats(event.tags),
        licence=licence_of(event.tags),
        card_text="\n".join((event.repo_id, *event.tags, *event.card_base_models)),
    )


def _replace_line(
    known: ModelFacts, edges: list[LineageEdge], line: tuple[str, ...], licences: dict[str, str]
) -> ModelFacts:
    live = [e for e in edges if not e.is_deleted]
    primary = line[0] if line else None
    return replace(
        known,
        relation=live[0].relation if live else "",
        ancestors=line,
        bases=tuple(e.base_model_id for e in live),
        base_licence=licences.get(primary) if primary else None,
    )


def _millis(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)
