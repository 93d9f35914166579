"""Accuracy: Open LLM Leaderboard dumps (v1 and v2 schemas) and model cards' own
``model-index`` to score and edge rows. Pure.

Card scores go to ``leaderboard_scores`` as board ``card``, benchmark ``dataset/metric``
(e.g. ``ifeval/inst_level_strict_acc``), so a derivative and its base compare only on the
same dataset and metric.

v1 (final, 2024-07-07): six benchmarks (ARC, HellaSwag, MMLU, TruthfulQA, Winogrande,
GSM8K) in raw percent; its ``merged`` column is inverted (TRUE means *not* merged); the
same model appears once per precision (quantized variants are rows of their own).
v2: IFEval, BBH, MATH Lvl 5, GPQA, MuSR, MMLU-Pro, normalised percent; ``metadata_base_model``
and ``metadata_generation`` give derivation edges (``Removed`` skipped). The edge's relation
is the derivative's own: its merged flag, weight type and model type. A ``" (Merge)"``
suffix on the base name says nothing about the derivative (most rows that carry it are not
merged, and many name themselves with it), so it is only stripped.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hubwatch.errors import SchemaError
from hubwatch.events import DeadLetter, ModelCreated
from processors.lineage import fact_version
from processors.plans import InsertPlan, plan_dead_letters, plan_rows

__all__ = [
    "ImportSummary",
    "LeaderboardEdge",
    "ScoreRow",
    "card_score_rows",
    "detect_board",
    "import_leaderboard",
    "read_leaderboard",
]

V1_BENCHMARKS = ("arc", "hellaswag", "mmlu", "truthfulqa", "winogrande", "gsm8k")
V2_BENCHMARKS = ("ifeval", "bbh", "math", "gpqa", "musr", "mmlu_pro")
_REPO_ID = re.compile(r"^(?:[\w.-]+/)?[\w.-]+$")  # legacy ids (gpt2) have no namespace
_TYPE_WORDS = re.compile(r"[^a-z]")


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """A row of ``leaderboard_scores``."""

    board: str
    model_id: str
    precision: str
    benchmark: str
    score: float
    model_type: str
    architecture: str
    params_b: float | None
    merged: bool | None
    version: int = 0
    "Card scores: the card's time in ns (the newest card wins); imported boards: 0."
    hub_license: str = ""
    "The licence the board read from the Hub (v1 ``hub_license``, v2 ``metadata_hub_license``)."
    submitted_at: datetime | None = None
    "When the model was submitted to the board (v1 ``date``, v2 ``metadata_submission_date``)."
    uploaded_at: datetime | None = None
    "When it was uploaded to the Hub, as the board says (v2 ``metadata_upload_date``)."


def card_score_rows(event: ModelCreated) -> list[ScoreRow]:
    architecture = event.architectures[0] if event.architectures else ""
    return [
        ScoreRow(
            board="card",
            model_id=event.repo_id,
            precision="",
            benchmark=f"{benchmark}/{metric}",
            score=value,
            model_type=event.model_type or "",
            architecture=architecture,
            params_b=None if event.parameters is None else event.parameters / 1e9,
            merged=None,
            version=fact_version(event),
        )
        for benchmark, metric, value in event.card_scores
    ]


@dataclass(frozen=True, slots=True)
class LeaderboardEdge:
    """A row of ``leaderboard_edges``."""

    derivative_id: str
    base_model_id: str
    relation: str
    generation: int
    board: str


def detect_board(header: Iterable[str]) -> str:
    columns = set(header)
    if {"fullname", "average", "arc", "gsm8k"} <= columns:
        return "open_llm_v1"
    if {"model_name", "model_average_score", "metadata_base_model"} <= columns:
        return "open_llm_v2"
    raise SchemaError("unknown_board", "neither the v1 nor the v2 leaderboard schema")


def model_type(raw: str) -> str:
    """The board's type as one plain word: pretrained, continuously_pretrained,
    fine_tuned, chat, merge, other (v1 says "🔶 fine-tuned on …", v2 "fine-tunedon…")."""
    words = _TYPE_WORDS.sub("", raw.lower())
    for key, name in (
        ("continuous", "continuously_pretrained"),
        ("pretrained", "pretrained"),
        ("finetuned", "fine_tuned"),
        ("chat", "chat"),
        ("merge", "merge"),
    ):
        if key in words:
            return name
    return "other"


def _float(value: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError as exc:
        raise SchemaError("bad_number", f"{where}: {value!r}") from exc
    if not math.isfinite(number):
        raise SchemaError("bad_number", f"{where}: {value!r}")
    return number


def _opt_float(value: str) -> float | None:
    try:
        return float(value) if value.strip() else None
    except ValueError:
        return None


def _flag(value: str) -> bool | None:
    upper = value.strip().upper()
    return True if upper == "TRUE" else False if upper == "FALSE" else None


def _date(value: str) -> datetime | None:
    """A board's date (v1 ``2023-07-19T17:17:58Z`` or with microseconds and no zone, v2
    ``2024-12-29``) as aware UTC; None when empty or unreadable (the row is kept)."""
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _repo(value: str) -> str:
    value = value.strip()
    if not _REPO_ID.match(value):
        raise SchemaError("bad_repo_id", repr(value)[:200])
    return value


def v1_rows(row: Mapping[str, str]) -> list[ScoreRow]:
    model = _repo(row["fullname"])
    inverted = _flag(row.get("merged", ""))
    common = {
        "board": "open_llm_v1",
        "model_id": model,
        "precision": row["precision"].strip(),
        "model_type": model_type(row.get("type", "")),
        "architecture": row.get("architecture", "").strip(),
        "params_b": _opt_float(row.get("params_b", "")),
        "merged": None if inverted is None else not inverted,  # the column is inverted
        "hub_license": row.get("hub_license", "").strip(),
        "submitted_at": _date(row.get("date", "")),
    }
    scores = [
        ScoreRow(benchmark=b, score=_float(row[b], b), **common)  # type: ignore[arg-type]
        for b in (*V1_BENCHMARKS, "average")
    ]
    return scores


def v2_rows(row: Mapping[str, str]) -> tuple[list[ScoreRow], LeaderboardEdge | None]:
    model = _repo(row["model_name"])
    merged = _flag(row.get("features_is_merged", ""))
    common = {
        "board": "open_llm_v2",
        "model_id": model,
        "precision": row["model_precision"].strip(),
        "model_type": model_type(row.get("model_type", "")),
        "architecture": row.get("model_architecture", "").strip(),
        "params_b": _opt_float(row.get("metadata_params_billions", "")),
        "merged": merged,
        "hub_license": row.get("metadata_hub_license", "").strip(),
        "submitted_at": _date(row.get("metadata_submission_date", "")),
        "uploaded_at": _date(row.get("metadata_upload_date", "")),
    }
    scores = [
        ScoreRow(benchmark=b, score=_float(row[f"evaluations_{b}_normalized_score"], b), **common)  # type: ignore[arg-type]
        for b in V2_BENCHMARKS
    ]
    scores.append(
        ScoreRow(
            benchmark="average",  # type: ignore[arg-type]
            score=_float(row["model_average_score"], "average"),
            **common,
        )
    )
    return scores, _v2_edge(row, model, merged)


def v2_relation(row: Mapping[str, str], merged: bool | None) -> str:
    """The derivative's relation to its base from its own row: merged (the board's flag,
    or the type it was submitted as), an adapter (weight type), else a finetune (original
    or delta weights)."""
    if merged or model_type(row.get("model_type", "")) == "merge":
        return "merge"
    if row.get("model_weight_type", "").strip().lower() == "adapter":
        return "adapter"
    return "finetune"


def _v2_edge(row: Mapping[str, str], model: str, merged: bool | None) -> LeaderboardEdge | None:
    base = row.get("metadata_base_model", "").strip().removesuffix("(Merge)").strip()
    generation = int(_opt_float(row.get("metadata_generation", "")) or 0)
    if (
        generation == 0
        or not base
        or base == "Removed"
        or base == model
        or not _REPO_ID.match(base)
    ):
        return None
    return LeaderboardEdge(
        derivative_id=model,
        base_model_id=base,
        relation=v2_relation(row, merged),
        generation=generation,
        board="open_llm_v2",
    )


@dataclass(slots=True)
class Rejected:
    line: int
    error: SchemaError


def _text(path: Path) -> str:
    """The whole file as text, or SchemaError if it is not UTF-8 or was cut short.

    The rule for a cut: a CSV line ends with a line break, and the real dumps' last lines
    do too (the v1 dump ends in LF, the v2 sample in CRLF); a file whose last line has no
    break was cut inside that line, whatever its fields look like (7.616 cut to 7 still
    parses as a number). A cut exactly at a line break leaves a well-formed shorter file,
    which no format check can tell from a smaller board.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SchemaError(
            "bad_encoding", f"{path.name} is not UTF-8 text (line {line}, byte {exc.start})"
        ) from exc
    if "\x00" in text:
        raise SchemaError("bad_csv", f"{path.name} is binary, not CSV (a NUL byte)")
    if text and not text.endswith("\n"):
        line = text.count("\n") + 1
        raise SchemaError(
            "truncated", f"{path.name} was cut short: its last line, line {line}, has no line break"
        )
    return text


def read_leaderboard(
    path: Path,
) -> Iterator[tuple[list[ScoreRow], LeaderboardEdge | None] | Rejected]:
    """Rows of a dump, one CSV line at a time; a bad line is yielded as :class:`Rejected`.

    The file as a whole must be sound first: UTF-8, ending in a line break, every line
    with as many fields as the header; else SchemaError before any row is yielded.
    """
    csv.field_size_limit(1 << 24)
    text = _text(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, [])
        board = detect_board(header)
        lines: list[tuple[int, list[str]]] = []
        for fields in reader:
            if len(fields) != len(header):
                raise SchemaError(
                    "bad_row",
                    f"{path.name} line {reader.line_num}: {len(fields)} fields, "
                    f"the header has {len(header)}",
                )
            lines.append((reader.line_num, fields))
    except csv.Error as exc:
        raise SchemaError("bad_csv", f"{path.name} line {reader.line_num}: {exc}") from exc
    for line, fields in lines:
        row = dict(zip(header, fields, strict=True))
        try:
            if board == "open_llm_v1":
                yield v1_rows(row), None
            else:
                yield v2_rows(row)
        except (SchemaError, KeyError, TypeError) as exc:
            error = exc if isinstance(exc, SchemaError) else SchemaError("missing_field", str(exc))
            yield Rejected(line, error)


@dataclass(frozen=True, slots=True)
class ImportSummary:
    board: str
    models: int
    scores: int
    edges: int
    rejected: list[tuple[int, str]]
    repeated: int = 0
    "Scores the file gives more than once (the last one counts, as the board shows)."
    model_ids: frozenset[str] = frozenset()
    "The models the board scores, as it names them."
    base_ids: frozenset[str] = frozenset()
    "The bases its rows name, as they name them."


def import_leaderboard(
    path: Path,
    replace: Callable[[str, list[InsertPlan]], None],
    write: Callable[[list[InsertPlan]], None],
) -> ImportSummary:
    """Read and check the whole dump, then publish it as the board's new contents at once.

    ``replace(board, plans)`` makes the board's partition of each plan's table hold exactly
    those rows (processors.partitions.replace_partition); a file that fails its checks
    raises SchemaError before anything is written. Bad lines in a sound file become dead
    letters through ``write``, after the board is published.
    """

    scores: dict[tuple[str, str, str], ScoreRow] = {}
    edges: dict[tuple[str, str], LeaderboardEdge] = {}
    letters: list[DeadLetter] = []
    rejected: list[tuple[int, str]] = []
    given = 0
    for item in read_leaderboard(path):
        if isinstance(item, Rejected):
            rejected.append((item.line, str(item.error)))
            letters.append(
                DeadLetter.of(
                    stage="import.leaderboard",
                    error=item.error,
                    source=f"{path.name}:{item.line}",
                    key=None,
                    payload=f"line {item.line}",
                )
            )
            continue
        rows, edge = item
        for row in rows:
            scores[(row.model_id, row.precision, row.benchmark)] = row
        given += len(rows)
        if edge is not None:
            edges[(edge.derivative_id, edge.base_model_id)] = edge
    with path.open(newline="", encoding="utf-8") as handle:  # sound: read_leaderboard said so
        board = detect_board(next(csv.reader(handle), []))
    score_rows, edge_rows = list(scores.values()), list(edges.values())
    replace(
        board,
        [plan_rows("leaderboard_scores", score_rows), plan_rows("leaderboard_edges", edge_rows)],
    )
    if letters:
        write([plan_dead_letters(letters)])
    models = len({row.model_id for row in score_rows})
    return ImportSummary(
        board,
        models,
        len(score_rows),
        len(edge_rows),
        rejected,
        given - len(score_rows),
        model_ids=frozenset(row.model_id for row in score_rows),
        base_ids=frozenset(edge.base_model_id for edge in edge_rows),
    )
