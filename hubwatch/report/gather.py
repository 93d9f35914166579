"""What the report reads from ClickHouse: plain rows, one query per kind of fact, no maths.

Derivation pairs are read from the same views the canned queries aggregate (migration
0041): ``scored_pairs`` (score_delta's pairs, one row per pair scored on both ends on a
board) and ``size_pairs`` (size_change's), so the report and ``hubwatch query`` answer from
one definition of a pair and cannot disagree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "BoardEntry",
    "Edge",
    "HubModel",
    "ScorePair",
    "SizePair",
    "Snapshot",
    "TableData",
    "gather",
    "known_boards",
]

log = logging.getLogger(__name__)

FULL_PRECISIONS = ("float16", "bfloat16", "float32")

# Every id at its canonical name (model_aliases, one hop deep), as the canned queries map
# them: a board row or an edge naming a renamed repo's old name, or another casing, counts
# for the repo, so the report agrees with score_delta.
_ALIASES = """WITH (SELECT (groupArray(alias_id), groupArray(canonical_id))
                    FROM model_aliases FINAL) AS aliases"""


def _canonical(column: str) -> str:
    return f"transform({column}, aliases.1, aliases.2, {column})"


@dataclass(frozen=True, slots=True)
class BoardEntry:
    """A model's average score on a board: its full-precision row if it has one, else its
    best; type, architecture, merge flag and size all from that same row."""

    board: str
    model_id: str
    score: float
    precision: str
    model_type: str
    architecture: str
    merged: bool | None
    params_b: float | None
    hub_license: str  # the board's copy of the Hub's licence, "" when it gives none


@dataclass(frozen=True, slots=True)
class ScorePair:
    """A row of ``scored_pairs``: a derivation pair with both ends scored on ``board``."""

    board: str
    derivative_id: str
    base_model_id: str
    relation: str
    source: str  # hub, board or hub+board
    disputed: bool
    delta: float
    architecture: str
    model_type: str


@dataclass(frozen=True, slots=True)
class SizePair:
    """A row of ``size_pairs``: a derivative and its primary base with a size ratio."""

    derivative_id: str
    base_model_id: str
    relation: str
    architecture: str
    pair_source: str  # hub (model_families) or board
    parameters_source: str  # hub, a board's name, or "" without a parameter ratio
    parameter_ratio: float | None
    byte_ratio: float | None
    smaller: bool


@dataclass(frozen=True, slots=True)
class Edge:
    """A derivation edge: the Hub's (board ``""``) or a board's base field."""

    derivative_id: str
    base_model_id: str
    relation: str
    board: str


@dataclass(frozen=True, slots=True)
class HubModel:
    repo_id: str
    created_at: datetime | None
    architecture: str
    parameters: int | None
    parameters_source: str
    size_bytes: int | None
    quant_bits: int | None
    likes: int | None
    downloads: int | None
    licence: str  # the Hub's ``license:`` tag, "" when the model has none


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A model's newest engagement snapshot."""

    repo_id: str
    observed_at: datetime
    likes: int | None
    downloads: int | None


@dataclass(slots=True)
class TableData:
    """Everything the report computes from, as read."""

    board_entries: dict[str, dict[str, BoardEntry]] = field(default_factory=dict)
    # Every precision's average score, per board and model (quantized vs full precision).
    precision_scores: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # board -> (first submitted, last submitted, first uploaded, last uploaded): the board's
    # own dates, not when it was imported.
    board_dates: dict[str, tuple[datetime | None, ...]] = field(default_factory=dict)
    scored: dict[str, list[ScorePair]] = field(default_factory=dict)
    sized: list[SizePair] = field(default_factory=list)
    # derivation_pairs by who names them (hub, board, hub+board), for the empty reasons.
    pair_sources: dict[str, int] = field(default_factory=dict)
    hub_edges: list[Edge] = field(default_factory=list)
    # model -> (primary base, relation, family root), from model_families.
    placement: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    models: dict[str, HubModel] = field(default_factory=dict)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    community: list[tuple[str, str, int, datetime | None, datetime | None]] = field(
        default_factory=list
    )  # (kind, source, events, first, last)


def _licence(tags: list[str]) -> str:
    for tag in tags:
        if tag.startswith("license:"):
            return tag.removeprefix("license:")
    return ""


def known_boards(client: Any) -> list[str]:
    """The boards with average scores (imported dumps; card scores have no average)."""
    rows = client.query(
        "SELECT DISTINCT toString(board) FROM leaderboard_scores WHERE benchmark = 'average' "
        "ORDER BY 1"
    ).result_rows
    return [board for (board,) in rows]


def gather(client: Any, boards: tuple[str, ...] | None = None) -> TableData:
    """Read what the report needs. ``boards`` limits the leaderboards read (None: all)."""
    data = TableData()
    board_filter = "" if boards is None else "AND board IN {boards:Array(String)}"
    params: dict[str, Any] = {} if boards is None else {"boards": list(boards)}

    model = _canonical("model_id")
    best = client.query(
        f"""
        {_ALIASES}
        SELECT board, {model} AS canonical,
               argMax((score, precision, model_type, architecture, merged, params_b,
                       hub_license),
                      (precision IN {FULL_PRECISIONS!r}, score)) AS row
        FROM leaderboard_scores FINAL
        WHERE benchmark = 'average' {board_filter}
        GROUP BY board, canonical
        """,
        parameters=params,
    ).result_rows
    for board, model_id, row in best:
        data.board_entries.setdefault(board, {})[model_id] = BoardEntry(board, model_id, *row)
    for board, model_id, precision, score in client.query(
        f"""{_ALIASES}
            SELECT board, {model} AS canonical, precision, max(score)
            FROM leaderboard_scores FINAL
            WHERE benchmark = 'average' {board_filter}
            GROUP BY board, canonical, precision""",
        parameters=params,
    ).result_rows:
        data.precision_scores.setdefault(board, {}).setdefault(model_id, {})[precision] = score
    for board, *dates in client.query(
        f"""SELECT board, min(submitted_at), max(submitted_at), min(uploaded_at),
                   max(uploaded_at)
            FROM leaderboard_scores WHERE board != 'card' {board_filter} GROUP BY board""",
        parameters=params,
    ).result_rows:
        data.board_dates[board] = tuple(dates)

    # The pairs: the canned queries' own views (one definition of a pair).
    for row in client.query(
        f"""SELECT board, derivative_id, base_model_id, relation, source, disputed, delta,
                   architecture, model_type
            FROM scored_pairs WHERE 1 {board_filter}
            ORDER BY board, derivative_id, base_model_id""",
        parameters=params,
    ).result_rows:
        data.scored.setdefault(row[0], []).append(ScorePair(*row))
    data.sized = [
        SizePair(*row)
        for row in client.query(
            """SELECT derivative_id, base_model_id, relation, architecture, pair_source,
                      parameters_source, parameter_ratio, byte_ratio, smaller
               FROM size_pairs ORDER BY derivative_id, base_model_id"""
        ).result_rows
    ]
    data.pair_sources = dict(
        client.query("SELECT source, count() FROM derivation_pairs GROUP BY source").result_rows
    )

    # Both ends canonical; a pair named under two names of one repo is one edge, and a name
    # that maps onto its own derivative names no base.
    ends = f"{_canonical('derivative_id')} AS d, {_canonical('base_model_id')} AS b"
    data.hub_edges = [
        Edge(d, b, r, "")
        for d, b, r in client.query(
            f"""{_ALIASES}
                SELECT {ends}, any(toString(relation)) FROM lineage_edges FINAL
                GROUP BY d, b HAVING d != b"""
        ).result_rows
    ]
    for model_id, parent_id, relation, root_id in client.query(
        "SELECT model_id, parent_id, relation, root_id FROM model_families FINAL"
    ).result_rows:
        data.placement[model_id] = (parent_id, relation, root_id)

    for row in client.query(
        """
        SELECT repo_id, created_at,
               if(empty(architectures), model_type, architectures[1]),
               parameters, parameters_source, size_bytes, quant_bits, likes, downloads,
               arrayFilter(t -> startsWith(t, 'license:'), tags)
        FROM models FINAL
        """
    ).result_rows:
        *head, tags = row
        data.models[row[0]] = HubModel(*head, licence=_licence(tags))

    for repo_id, at, likes, downloads in client.query(
        """SELECT repo_id, max(observed_at),
                  argMax(likes, observed_at), argMax(ifNull(downloads_all_time, downloads),
                                                     observed_at)
           FROM model_snapshots FINAL GROUP BY repo_id"""
    ).result_rows:
        data.snapshots[repo_id] = Snapshot(repo_id, at, likes, downloads)

    data.community = [
        tuple(r)  # type: ignore[misc]
        for r in client.query(
            """SELECT kind, source, count(), min(at), max(at) FROM community_events FINAL
               GROUP BY kind, source ORDER BY kind, source"""
        ).result_rows
    ]
    log.debug(
        "report data: %d boards, %d hub edges, %d models",
        len(data.board_entries),
        len(data.hub_edges),
        len(data.models),
    )
    return data
