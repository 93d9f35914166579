"""Alert state back from ClickHouse at start: what fired (so nothing fires twice across a
restart), the open groups, licences and facts for the rules that need them, and the
deliveries still queued or already done (the outbox's dedupe)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hubwatch.alerts.alert import Alert, GroupMember, alert_id, delivery_key
from hubwatch.alerts.evaluate import AlertEvaluator
from hubwatch.alerts.match import ModelFacts, licence_of
from hubwatch.alerts.rules import RuleSet
from hubwatch.clickhouse import as_utc, connect

__all__ = ["DeliveryState", "load_deliveries", "load_evaluator"]


def load_evaluator(
    clickhouse_url: str,
    database: str,
    rules: RuleSet,
    *,
    extra_targets: tuple[str, ...] = (),
    canonical: Callable[[str], str] | None = None,
) -> AlertEvaluator:
    evaluator = AlertEvaluator(rules, extra_targets=extra_targets, canonical=canonical)
    client = connect(clickhouse_url, database=database)
    try:
        for rule, model in client.query(
            "SELECT DISTINCT rule, arrayJoin(models) FROM alerts"
        ).result_rows:
            evaluator.fired.add((rule, model))
        closed = {
            row[0] for row in client.query("SELECT DISTINCT alert_id FROM alerts").result_rows
        }
        for rule, base, opened, model, relation, matched in client.query(
            "SELECT rule, base_model, opened_at, model_id, relation, matched_at"
            " FROM alert_group_members FINAL ORDER BY matched_at"
        ).result_rows:
            opened = as_utc(opened)
            if alert_id(rule, f"group:{base}", opened.isoformat()) in closed:
                evaluator.fired.add((rule, model))
                continue
            evaluator.restore_group(
                GroupMember(rule, base, opened, model, relation, as_utc(matched))
            )
        if any(r.match.licence_differs_from_base is not None for r in rules.rules):
            for repo_id, tags in client.query(
                "SELECT repo_id, tags FROM models FINAL"
                " WHERE arrayExists(t -> startsWith(t, 'license:'), tags)"
            ).result_rows:
                evaluator.licences[repo_id] = licence_of(tags)
        if rules.watches_engagement:
            _load_facts(client, evaluator)
    finally:
        client.close()
    return evaluator


def _load_facts(client: Any, evaluator: AlertEvaluator) -> None:
    """Facts of every model, for rules on engagement (a snapshot names only the model),
    and each model's latest velocity: a derivative's snapshot may come before its base's,
    and its breakout is against the base's (unknown, it would count as none)."""
    for repo_id, velocity in client.query(
        "SELECT repo_id, velocity_per_hour FROM engagement_live FINAL"
    ).result_rows:
        evaluator.velocity[repo_id] = velocity
    for repo_id, author, created, architectures, parameters, tags, path, relation in client.query(
        "SELECT m.repo_id, m.author, m.created_at, m.architectures, m.parameters, m.tags,"
        " l.path, l.relation FROM models AS m FINAL LEFT JOIN"
        " (SELECT model_id, relation, [parent_id] AS path FROM model_families FINAL"
        "  WHERE is_deleted = 0 AND parent_id != '') AS l ON l.model_id = m.repo_id"
    ).result_rows:
        evaluator.licences[repo_id] = licence_of(tags)
        evaluator.facts[repo_id] = ModelFacts(
            model_id=repo_id,
            author=author,
            created_at=as_utc(created),
            relation=relation or "",
            ancestors=tuple(p for p in path or () if p),
            architectures=tuple(architectures),
            parameters=parameters,
            licence=licence_of(tags),
        )


class DeliveryState:
    """Deliveries already done (delivered or refused for good) and those still queued."""

    def __init__(self, done: set[str], queued: list[tuple[Alert, str, int]]) -> None:
        self.done = done
        self.queued = queued


def load_deliveries(clickhouse_url: str, database: str) -> DeliveryState:
    client = connect(clickhouse_url, database=database)
    try:
        done: set[str] = set()
        queued: list[tuple[Alert, str, int]] = []
        for aid, target, state, attempts, payload in client.query(
            "SELECT alert_id, target, state, attempts, payload FROM alerts FINAL"
            " WHERE state = 'queued' OR fired_at > now() - INTERVAL 30 DAY"
        ).result_rows:
            if state == "queued":
                queued.append((Alert.from_json(payload), target, attempts))
            else:
                done.add(delivery_key(aid, target))
    finally:
        client.close()
    return DeliveryState(done, queued)
