"""The report's numbers, section by section, from what ``gather`` read. Pure: JSON-ready
dicts. Every section names its source and time range, and says why when it is empty."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from hubwatch.report.gather import FULL_PRECISIONS, ScorePair, TableData
from hubwatch.report.stats import bootstrap_ci, by_group, ratio_summary, summary

__all__ = [
    "MIN_RANKED",
    "ScorePair",
    "accuracy",
    "architectures",
    "engagement",
    "licences",
    "score_pairs",
    "sizes",
]

# An architecture needs this many scored edges to be ranked: fewer, and one lucky merge
# could top the table.
MIN_RANKED = 5
# Bits per weight the boards' quantized precisions stand for (the board has no bytes).
ASSUMED_BITS = {"8bit": 8, "4bit": 4, "GPTQ": 4}
NO_LICENCE = "(none)"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _range(values: Iterable[datetime | None]) -> dict[str, str | None]:
    known = [v for v in values if v is not None]
    return {"from": _iso(min(known)) if known else None, "to": _iso(max(known)) if known else None}


def _board_source(data: TableData, board: str) -> dict[str, Any]:
    """The source and the board's own time range: when its models were submitted (and, where
    it says, uploaded to the Hub), not when it was imported."""
    first, last, up_first, up_last = data.board_dates.get(board, (None, None, None, None))
    return {
        "source": f"leaderboard_scores (board {board}), derivation_pairs (lineage_edges, "
        "leaderboard_edges)",
        "time_range": {"submitted_from": _iso(first), "submitted_to": _iso(last)},
        "uploaded_range": {"from": _iso(up_first), "to": _iso(up_last)},
    }


def score_pairs(data: TableData, board: str) -> list[ScorePair]:
    """The pairs of ``scored_pairs`` on ``board``: score_delta's own pairs."""
    return data.scored.get(board, [])


def _empty_scores(data: TableData, board: str) -> str:
    scored = len(data.board_entries.get(board, {}))
    if not scored:
        return f"no {board} scores imported (hubwatch import leaderboard FILE)"
    known = sum(data.pair_sources.values())
    from_board = sum(n for s, n in data.pair_sources.items() if "board" in s)
    return (
        f"no derivation pair has an average score on both ends on {board}: {scored} models "
        f"scored, {known} pairs known ({from_board} named by a board's base-model field, "
        f"{known - from_board} by the Hub's lineage only)"
        + ("; no board names a base (v1 has no base-model column)" if not from_board else "")
    )


def accuracy(data: TableData, boards: list[str]) -> dict[str, Any]:
    """(a) derivative minus base average score, per board (boards never pool)."""
    out: dict[str, Any] = {}
    for board in boards:
        pairs = score_pairs(data, board)
        deltas = [p.delta for p in pairs]
        section: dict[str, Any] = {
            **_board_source(data, board),
            "overall": summary(deltas),
            "by_relation": _grouped(pairs, "relation"),
            "by_architecture": _grouped(pairs, "architecture"),
            "by_type": _grouped(pairs, "model_type"),
            "by_source": _grouped(pairs, "source"),
            "hub_board_disagreements": sum(p.disputed for p in pairs),
            "pairs": [
                {
                    "derivative": p.derivative_id,
                    "base": p.base_model_id,
                    "relation": p.relation,
                    "source": p.source,
                    "delta": round(p.delta, 3),
                    "architecture": p.architecture,
                    "type": p.model_type,
                }
                for p in pairs
            ],
        }
        if not pairs:
            section["empty_reason"] = _empty_scores(data, board)
        out[board] = section
    return out


def _grouped(pairs: list[ScorePair], attribute: str) -> dict[str, Any]:
    groups = by_group(pairs, lambda p: str(getattr(p, attribute)))
    return {
        g: summary([p.delta for p in items])
        for g, items in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    }


def architectures(data: TableData, boards: list[str]) -> dict[str, Any]:
    """(d) which architectures gain most: ranked by the lower end of a bootstrap interval
    of the median delta, only with at least MIN_RANKED edges."""
    out: dict[str, Any] = {}
    for board in boards:
        pairs = score_pairs(data, board)
        rows = []
        for arch, items in by_group(pairs, lambda p: p.architecture).items():
            deltas = [p.delta for p in items]
            row: dict[str, Any] = {"architecture": arch, **summary(deltas)}
            if len(deltas) >= MIN_RANKED:
                row["ci95_median"] = list(bootstrap_ci(deltas))
            rows.append(row)
        ranked = sorted(
            (r for r in rows if "ci95_median" in r),
            key=lambda r: (-r["ci95_median"][0], -r["median"], r["architecture"]),
        )
        for rank, row in enumerate(ranked, 1):
            row["rank"] = rank
        unranked = sorted(
            (r for r in rows if "ci95_median" not in r), key=lambda r: (-r["n"], r["architecture"])
        )
        section: dict[str, Any] = {
            **_board_source(data, board),
            "min_edges_to_rank": MIN_RANKED,
            "bootstrap": {"statistic": "median", "resamples": 1000, "seed": 9, "level": 0.95},
            "ranked": ranked,
            "unranked": unranked,
        }
        if not pairs:
            section["empty_reason"] = _empty_scores(data, board)
        elif not ranked:
            section["empty_reason"] = f"no architecture has {MIN_RANKED} or more scored edges"
        out[board] = section
    return out


def sizes(data: TableData, boards: list[str]) -> dict[str, Any]:
    """(b) size ratios derivative / primary base (size_change's own pairs, ``size_pairs``),
    and quantized precisions against full precision on the boards."""
    pairs: list[dict[str, Any]] = []
    for p in data.sized:
        pair: dict[str, Any] = {
            "derivative": p.derivative_id,
            "base": p.base_model_id,
            "relation": p.relation,
            "architecture": p.architecture,
            "pair_source": p.pair_source,
            "smaller": p.smaller,
        }
        if p.parameter_ratio is not None:
            pair["parameter_ratio"] = round(p.parameter_ratio, 4)
            pair["parameters_source"] = p.parameters_source
        if p.byte_ratio is not None:
            pair["byte_ratio"] = round(p.byte_ratio, 4)
        pairs.append(pair)
    by_relation = {}
    for relation, items in sorted(by_group(data.sized, lambda p: p.relation).items()):
        params = [p.parameter_ratio for p in items if p.parameter_ratio is not None]
        size_bytes = [p.byte_ratio for p in items if p.byte_ratio is not None]
        by_relation[relation] = {
            "n": len(items),
            "parameter_ratio": ratio_summary(params),
            "byte_ratio": ratio_summary(size_bytes),
            "share_smaller": round(sum(p.smaller for p in items) / len(items), 3),
            "parameters_sources": dict(Counter(p.parameters_source for p in items)),
        }
    members = {m for p in data.sized for m in (p.derivative_id, p.base_model_id)}
    section: dict[str, Any] = {
        "source": "size_pairs (model_families primary base, board-only pairs), models "
        "(sizes); leaderboard params_b where the Hub has none",
        "time_range": _range(data.models[m].created_at for m in members if m in data.models),
        "n": len(pairs),
        "share_smaller": (
            round(sum(p.smaller for p in data.sized) / len(data.sized), 3) if data.sized else None
        ),
        "by_relation": by_relation,
        "pairs": pairs,
        "quantized": _quantized(data, boards),
    }
    if not pairs:
        section["empty_reason"] = (
            "no derivative and its primary base both have a known size "
            f"({sum(1 for p in data.placement.values() if p[0])} placed derivatives, "
            f"{len(data.models)} models seen)"
        )
    return section


def _quantized(data: TableData, boards: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for board in boards:
        deltas: dict[str, list[float]] = {}
        for scores in data.precision_scores.get(board, {}).values():
            full = [s for p, s in scores.items() if p in FULL_PRECISIONS]
            if not full:
                continue
            for precision, score in scores.items():
                if precision not in FULL_PRECISIONS and precision:
                    deltas.setdefault(precision, []).append(score - max(full))
        rows = {
            precision: {
                **summary(values),
                "worst": round(min(values), 3),
                # Within one point either way: |delta| <= 1 (a gain of 3 is not "within").
                "share_within_1_point": round(sum(abs(v) <= 1 for v in values) / len(values), 3),
                "size_ratio": ASSUMED_BITS[precision] / 16 if precision in ASSUMED_BITS else None,
                "size_ratio_basis": "assumed bits/16 (the board has no weights' size)",
            }
            for precision, values in sorted(deltas.items())
        }
        section: dict[str, Any] = {**_board_source(data, board), "by_precision": rows}
        if not rows:
            section["empty_reason"] = (
                f"no model on {board} is scored both quantized and at full precision"
            )
        out[board] = section
    return out


def _counter(model: Any, snapshot: Any, name: str) -> tuple[int | None, str]:
    if snapshot is not None and getattr(snapshot, name) is not None:
        return getattr(snapshot, name), "snapshot"
    return getattr(model, name), "first seen"


def engagement(data: TableData) -> dict[str, Any]:
    """(c) likes and downloads of derivatives against their bases, family growth, and
    commit and discussion activity."""
    compared: dict[str, list[tuple[int, int]]] = {"likes": [], "downloads": []}
    counter_sources: Counter[str] = Counter()
    edges = {(e.derivative_id, e.base_model_id) for e in data.hub_edges}
    for child, base in sorted(edges):
        c, b = data.models.get(child), data.models.get(base)
        if c is None or b is None:
            continue
        for name, values in compared.items():
            cv, cs = _counter(c, data.snapshots.get(child), name)
            bv, bs = _counter(b, data.snapshots.get(base), name)
            if cv is not None and bv is not None:
                values.append((cv, bv))
                counter_sources[cs] += 1
                counter_sources[bs] += 1
    versus = {}
    for name, values in compared.items():
        if not values:
            versus[name] = {"n": 0}
            continue
        versus[name] = {
            "n": len(values),
            "median_derivative": statistics.median(c for c, _ in values),
            "median_base": statistics.median(b for _, b in values),
            "share_derivative_higher": round(sum(c > b for c, b in values) / len(values), 3),
            "derivatives_total": sum(c for c, _ in values),
            "bases_total": sum(b for _, b in values),
            "points": [list(v) for v in values],
        }
    members = [m for (m, _) in edges] + [b for (_, b) in edges]
    section: dict[str, Any] = {
        "versus_base": {
            "source": "lineage_edges, models (first-seen counters), model_snapshots (newest)",
            "time_range": _range(data.models[m].created_at for m in members if m in data.models),
            "counter_sources": dict(counter_sources),
            **versus,
        },
        "family_growth": _growth(data),
        "community": _community(data),
    }
    if not versus["likes"]["n"] and not versus["downloads"]["n"]:
        section["versus_base"]["empty_reason"] = (
            "no Hub derivation edge with both models seen"
            if edges
            else "no Hub lineage yet (hubwatch run, poll or backfill)"
        )
    return section


def _growth(data: TableData) -> dict[str, Any]:
    families: dict[str, list[str]] = {}
    for model, (_parent, _relation, root) in data.placement.items():
        families.setdefault(root or model, []).append(model)
    rows = []
    for root, members in families.items():
        root_model = data.models.get(root)
        born = root_model.created_at if root_model else None
        others = [m for m in members if m != root]
        if not others:
            continue
        row: dict[str, Any] = {
            "root": root,
            "root_created": _iso(born),
            "descendants": len(others),
        }
        if born is not None:
            days = sorted(
                (data.models[m].created_at - born).total_seconds() / 86400  # type: ignore[operator]
                for m in others
                if m in data.models and data.models[m].created_at is not None
            )
            row["dated"] = len(days)
            for n in (7, 30, 90):
                row[f"within_{n}_days"] = sum(d <= n for d in days)
            row["days_after_root"] = [round(d, 3) for d in days]
        rows.append(row)
    rows.sort(key=lambda r: (-r["descendants"], r["root"]))
    section: dict[str, Any] = {
        "source": "model_families (membership), models (created_at)",
        "time_range": _range(data.models[m].created_at for m in data.placement if m in data.models),
        "families": rows[:20],
        "n": len(rows),
    }
    if not rows:
        section["empty_reason"] = "no family with a derivative yet"
    elif not any("within_7_days" in r for r in rows):
        section["empty_reason"] = "no family root has been seen itself (its created_at unknown)"
    return section


def _community(data: TableData) -> dict[str, Any]:
    by_kind = {f"{kind} ({source})": n for kind, source, n, _, _ in data.community}
    section: dict[str, Any] = {
        "source": "community_events",
        "time_range": _range([*(r[3] for r in data.community), *(r[4] for r in data.community)]),
        "n": sum(by_kind.values()),
        "by_kind": by_kind,
    }
    if not by_kind:
        section["empty_reason"] = (
            "no commit or discussion events polled yet (the community and github streams of "
            "hubwatch run / poll fill community_events)"
        )
    return section


def _licence_of(data: TableData, model_id: str, boards: list[str]) -> tuple[str, str] | None:
    """A model's licence and where it came from: the Hub's ``license:`` tag, else the first
    of ``boards`` that gives one (the board's copy of the Hub's licence), else none. None
    when neither the Hub nor those boards know the model at all."""
    hub = data.models.get(model_id)
    if hub is not None and hub.licence:
        return hub.licence, "hub"
    known = hub is not None
    for board in boards:
        entry = data.board_entries.get(board, {}).get(model_id)
        if entry is not None:
            known = True
            if entry.hub_license:
                return entry.hub_license, board
    return (NO_LICENCE, "none") if known else None


def _licence_section(
    data: TableData, edges: list[tuple[str, str]], boards: list[str]
) -> dict[str, Any]:
    pairs: list[tuple[str, str]] = []
    sources: Counter[str] = Counter()
    for child, base in edges:
        c, b = _licence_of(data, child, boards), _licence_of(data, base, boards)
        if c is None or b is None:
            continue
        pairs.append((b[0], c[0]))
        sources[b[1]] += 1
        sources[c[1]] += 1
    return {**_licence_table(pairs), "licence_sources": dict(sorted(sources.items()))}


def licences(data: TableData, boards: list[str]) -> dict[str, Any]:
    """(e) which licences derivatives carry against their base's. Along the Hub's lineage
    (lineage_edges): the Hub's ``license:`` tags, a board's hub_license where the Hub has
    none (v2 before v1); along each board's scored pairs: the Hub's, else that board's."""
    edges = sorted({(e.derivative_id, e.base_model_id) for e in data.hub_edges})
    fallback = sorted(data.board_entries, reverse=True)  # open_llm_v2 before open_llm_v1
    out: dict[str, Any] = {
        "hub": {
            "source": "lineage_edges, models (license: tags), leaderboard_scores (hub_license "
            "where the Hub has none)",
            "time_range": _range(
                data.models[m].created_at for pair in edges for m in pair if m in data.models
            ),
            **_licence_section(data, edges, fallback),
        }
    }
    if not out["hub"]["n"]:
        out["hub"]["empty_reason"] = "no Hub derivation edge with both models known"
    for board in boards:
        pairs = [(p.derivative_id, p.base_model_id) for p in score_pairs(data, board)]
        out[board] = {**_board_source(data, board), **_licence_section(data, pairs, [board])}
        if not out[board]["n"]:
            out[board]["empty_reason"] = _empty_scores(data, board)
    return out


def _licence_table(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    if not pairs:
        return {"n": 0}
    counts = Counter(pairs)
    return {
        "n": len(pairs),
        "share_same_licence": round(sum(b == d for b, d in pairs) / len(pairs), 3),
        "base_to_derivative": [
            {"base": b, "derivative": d, "edges": n}
            for (b, d), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }
