"""Why a canned query has no rows: one sentence from what the tables hold, so an empty
answer is never silent (``hubwatch query`` prints it; the report shows it in place of a
table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["why_empty"]

_SCORED = """
SELECT board, uniqExact(model_id) FROM leaderboard_scores FINAL
WHERE benchmark = 'average' OR board = 'card'
GROUP BY board ORDER BY board
"""
_PAIRS = "SELECT source, count() FROM derivation_pairs GROUP BY source ORDER BY source"
_SCORED_ENDS = """
SELECT s.board AS board,
       uniqExactIf(e.derivative_id, s.model_id = e.derivative_id) AS derivatives,
       uniqExactIf(e.base_model_id, s.model_id = e.base_model_id) AS bases
FROM derivation_pairs AS e
INNER JOIN (SELECT DISTINCT board, model_id FROM leaderboard_scores FINAL) AS s
    ON s.model_id = e.derivative_id OR s.model_id = e.base_model_id
GROUP BY board ORDER BY board
"""
_FAMILIES = "SELECT count(), countIf(parent_id != '') FROM model_families FINAL"
_SIZED = """
SELECT countIf(parameters > 0 OR size_bytes > 0),
       (SELECT uniqExact(model_id) FROM leaderboard_scores FINAL WHERE params_b > 0)
FROM models FINAL
"""

_NO_SCORES = (
    "no leaderboard scores yet: import a board (hubwatch import leaderboard FILE), "
    "or let model cards with a model-index bring theirs"
)
_NO_PAIRS = (
    "no derivation pairs: neither the Hub's lineage (lineage_edges) nor a board's base "
    "field (leaderboard_edges) names a base. open_llm_v1 has no base column: its pairs come "
    "from the Hub's lineage (hubwatch run or backfill)"
)


def _rows(client: Any, sql: str) -> list[tuple[Any, ...]]:
    return list(client.query(sql).result_rows)


def _rows_bound(client: Any, sql: str, parameters: dict[str, str]) -> list[tuple[Any, ...]]:
    return list(client.query(sql, parameters=parameters).result_rows)


def _pairs(client: Any) -> tuple[int, str]:
    by_source = dict(_rows(client, _PAIRS))
    total = sum(by_source.values())
    return total, ", ".join(f"{n} from {source}" for source, n in by_source.items())


def _scores(client: Any) -> str | None:
    scored = _rows(client, _SCORED)
    if not scored:
        return None
    return ", ".join(f"{board} {n} models" for board, n in scored)


def _score_pairs(client: Any, what: str) -> str:
    scored = _scores(client)
    if scored is None:
        return _NO_SCORES
    total, sources = _pairs(client)
    if total == 0:
        return f"{_NO_PAIRS}; scored: {scored}"
    ends = "; ".join(
        f"{board}: {d} derivatives and {b} bases scored"
        for board, d, b in _rows(client, _SCORED_ENDS)
    )
    return (
        f"no {what} has both ends scored on the same board: {total} pairs ({sources})"
        f"{'; ' + ends if ends else ', none with a scored end'}"
    )


def _quantized(client: Any) -> str:
    scored = _scores(client)
    if scored is None:
        return _NO_SCORES
    quantized = _rows(client, "SELECT count() FROM derivation_pairs WHERE relation = 'quantized'")
    return (
        "no model is scored both at a quantized precision (4bit, 8bit, GPTQ) and at full "
        "precision on one board, and no Hub quantization has its base scored at full "
        f"precision on its board ({quantized[0][0]} quantized pairs; scored: {scored})"
    )


def _sizes(client: Any) -> str:
    [(members, placed)] = _rows(client, _FAMILIES)
    total, sources = _pairs(client)
    [(hub_sized, board_sized)] = _rows(client, _SIZED)
    return (
        "no derivative and its primary base both have a size: "
        f"{placed} Hub family members with a base (of {members}), {total} derivation pairs"
        f"{' (' + sources + ')' if sources else ''}; sizes known for {hub_sized} Hub models "
        f"and {board_sized} board models"
    )


def _families(client: Any) -> str:
    [(members, placed)] = _rows(client, _FAMILIES)
    if members == 0:
        return (
            "no families: model_families is empty; the Hub's lineage fills it "
            "(hubwatch run or backfill)"
        )
    return f"no family has descendants: {members} models, {placed} of them under a base"


def _breakouts(client: Any, parameters: dict[str, str]) -> str:
    [(live, placed)] = _rows(
        client,
        """
        WITH (SELECT max(at) FROM engagement_live) AS newest
        SELECT count(),
               countIf(repo_id IN (SELECT model_id FROM model_lineage FINAL
                                   WHERE is_deleted = 0 AND parent_id != ''))
        FROM engagement_live FINAL
        WHERE at >= newest - INTERVAL 1 DAY
        """,
    )
    if live == 0:
        return (
            "no live engagement windows: engagement_live is empty; the engagement stream's "
            "snapshots fill it (hubwatch run, poll hub)"
        )
    if placed == 0:
        return (
            f"{live} models have a live window in the day before the newest snapshot, none "
            "of them a derivative with a known base (model_lineage)"
        )
    return (
        f"{placed} derivatives with a live window (of {live} models), none grows faster than "
        "its base, its siblings' median and 1 download an hour (a breakout score above 1)"
    )


def _community(client: Any, parameters: dict[str, str]) -> str:
    [(total, newest)] = _rows(client, "SELECT count(), max(at) FROM community_events")
    if total == 0:
        return (
            "no community events: the community and github streams fill community_events "
            "(hubwatch run, poll hub, poll github)"
        )
    at = parameters.get("at", "now")
    [(recent,)] = _rows_bound(
        client,
        "SELECT count() FROM community_events WHERE at < toDateTime64({at:DateTime}, 3, 'UTC') "
        "AND at >= toDateTime64({at:DateTime}, 3, 'UTC') - INTERVAL 7 DAY",
        {"at": at},
    )
    if recent == 0:
        return (
            f"{total} community events, none in the 7 days before {at} (the newest at "
            f"{str(newest)[:19]})"
        )
    return (
        f"{recent} community events in the 7 days before {at}, none of them on a model "
        "hubwatch tracks or a GitHub repo a tracked model's card links"
    )


def _tree(client: Any, parameters: dict[str, str]) -> str:
    model = parameters.get("model", "")
    [(placed,)] = _rows_bound(
        client,
        "SELECT count() FROM model_families FINAL WHERE model_id = {m:String} AND is_deleted = 0",
        {"m": model},
    )
    if placed == 0:
        return f"{model} is known, but not placed in a family yet (model_families)"
    return f"{model} is in a family, but its family's rows were not found"


_EXPLAIN: dict[str, Callable[[Any, dict[str, str]], str]] = {
    "score_delta": lambda c, _: _score_pairs(c, "derivation pair"),
    "benchmark_delta": lambda c, _: _score_pairs(c, "derivation pair"),
    "quantized_tradeoff": lambda c, _: _quantized(c),
    "size_change": lambda c, _: _sizes(c),
    "family_growth": lambda c, _: _families(c),
    "breakouts": _breakouts,
    "community_activity": _community,
    "tree": _tree,
}
_NOT_COMPARING = {"tree"}
"Queries that list rather than compare: their empty answer is no 'nothing to compare'."


def why_empty(client: Any, name: str, parameters: dict[str, str] | None = None) -> str:
    """One line saying why the canned query ``name`` answered no rows (asked with
    ``parameters``). ``client`` is a clickhouse_connect client on the hubwatch database."""
    explain = _EXPLAIN.get(name)
    reason = explain(client, parameters or {}) if explain else "no rows match"
    return (
        f"{name}: {reason}" if name in _NOT_COMPARING else f"{name}: nothing to compare: {reason}"
    )
