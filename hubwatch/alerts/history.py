"""``hubwatch alerts test RULES.yaml [--since 7d]``: what the rules would have fired on what
ClickHouse already holds, through the same evaluator the stream processors run.

Models first seen in the window are replayed in the order hubwatch saw them, each at its
``first_seen_at`` (so ``max_age`` and silences judge them as they would have live), with
their lineage from the family trees (``model_families``) and their bases' licences; then the
live engagement windows of the models snapshotted in the window. Groups close as they
would have: by the time of the next model after their window, or at the end.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hubwatch.alerts.alert import Alert
from hubwatch.alerts.evaluate import AlertEvaluator, ancestors
from hubwatch.alerts.match import ModelFacts, licence_of, quantization_formats
from hubwatch.alerts.rules import RuleSet
from hubwatch.clickhouse import as_utc, connect
from processors.engagement import EngagementRow
from processors.restore import load_aliases, load_forest

__all__ = ["Replayed", "replay_rules"]


@dataclass(frozen=True, slots=True)
class Replayed:
    alerts: list[Alert]
    models: int
    snapshots: int


class _Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def replay_rules(clickhouse_url: str, database: str, rules: RuleSet, since: timedelta) -> Replayed:
    now = datetime.now(UTC)
    start = now - since
    forest = load_forest(clickhouse_url, database)
    aliases = load_aliases(clickhouse_url, database)
    clock = _Clock(start)
    evaluator = AlertEvaluator(rules, clock=clock, canonical=aliases.canonical)
    fired: list[Alert] = []
    with contextlib.closing(connect(clickhouse_url, database=database)) as client:
        licences = {
            repo: licence_of(tags)
            for repo, tags in client.query(
                "SELECT repo_id, tags FROM models FINAL"
                " WHERE arrayExists(t -> startsWith(t, 'license:'), tags)"
            ).result_rows
        }
        evaluator.licences.update(licences)
        relations = dict(
            client.query(
                "SELECT model_id, relation FROM model_families FINAL WHERE is_deleted = 0"
            ).result_rows
        )
        bases: dict[str, list[str]] = {}
        for derivative, base in client.query(
            "SELECT derivative_id, base_model_id FROM lineage_edges FINAL WHERE is_deleted = 0"
        ).result_rows:
            bases.setdefault(derivative, []).append(aliases.canonical(base))
        models = client.query(
            "SELECT repo_id, author, created_at, first_seen_at, architectures, model_type,"
            " parameters, quant_bits, tags FROM models FINAL"
            " WHERE first_seen_at >= {start:DateTime64(3)} ORDER BY first_seen_at, repo_id",
            parameters={"start": start},
        ).result_rows
        for repo, author, created, seen, archs, mtype, params, bits, tags in models:
            clock.at = as_utc(seen)
            fired += evaluator.due_groups()
            primary = forest.parent(repo) if repo in forest else None
            facts = ModelFacts(
                model_id=repo,
                author=author or repo.split("/", 1)[0],
                created_at=as_utc(created),
                relation=relations.get(repo, "") if primary else "",
                ancestors=ancestors(forest, repo, primary),
                bases=tuple(bases.get(repo, ())),
                architectures=(*archs, *((mtype,) if mtype else ())),
                parameters=params,
                quant_bits=bits,
                formats=quantization_formats(tuple(tags)),
                licence=licence_of(tags),
                base_licence=licences.get(primary, "") if primary else None,
                card_text="\n".join((repo, *tags)),
            )
            evaluator.facts[repo] = facts
            fired += evaluator.evaluate(facts, None)[0]
        clock.at = now
        fired += evaluator.due_groups(now + timedelta(days=3650))  # the rest close now
        snapshots = 0
        if rules.watches_engagement:
            live = client.query(
                "SELECT repo_id, at, likes, downloads_all_time, likes_1h, likes_24h, likes_7d,"
                " downloads_1h, downloads_24h, downloads_7d, velocity_per_hour, acceleration"
                " FROM engagement_live FINAL WHERE at >= {start:DateTime64(3)} ORDER BY at",
                parameters={"start": start},
            ).result_rows
            rows = [EngagementRow(*row) for row in live]
            # Bases first: a derivative's breakout is against its base's velocity.
            evaluator.velocity.update({r.repo_id: r.velocity_per_hour for r in rows})
            for row in rows:
                snapshots += 1
                clock.at = as_utc(row.at)
                if row.repo_id not in evaluator.facts and row.repo_id in forest:
                    parent = forest.parent(row.repo_id)
                    evaluator.facts[row.repo_id] = ModelFacts(
                        row.repo_id,
                        row.repo_id.split("/", 1)[0],
                        None,
                        relations.get(row.repo_id, "") if parent else "",
                        ancestors(forest, row.repo_id, parent),
                        licence=licences.get(row.repo_id, ""),
                    )
                fired += evaluator.observe_engagement(row, forest)[0]
    return Replayed(fired, len(models), snapshots)
