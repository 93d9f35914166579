"""The seed study's summaries (migrations 0045, 0046): after a refresh each answers what
its rows say, computed here in plain Python from those rows; a model moved between two
refreshes shows after the second, not before; an empty database says why there is nothing;
`hubwatch query` says as of when and `--fresh` recomputes."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubwatch.events import ModelUpdated
from hubwatch.panels import TimeRange, panel, run_panel
from hubwatch.queries import load
from hubwatch.summaries import refresh
from processors.families import FamilyForest
from processors.pipeline import plan_batch
from processors.sinks import ClickHouseWriter
from producers.hub import model_created_from_api
from tests.conftest import hold_summaries, hubwatch

NOW = datetime(2026, 6, 1, tzinfo=UTC)
MISTRAL = {"architectures": ["MistralForCausalLM"]}
LLAMA = {"architectures": ["LlamaForCausalLM"]}


def _item(repo: str, days: int, config: dict[str, Any], base: str = "", relation: str = "",
          params: int = 0, **extra: Any) -> dict[str, Any]:  # fmt: skip
    item: dict[str, Any] = {"id": repo, "createdAt": (NOW - timedelta(days=days)).isoformat(),
                            "config": config, **extra}  # fmt: skip
    if params:
        item["safetensors"] = {"total": params}
    if base:
        item["baseModels"] = {"relation": relation, "models": [{"id": base}]}
    return item


ITEMS = [
    _item("m/Big-24B", 200, MISTRAL, params=24_000_000_000),
    _item("l/Other-8B", 150, LLAMA, params=8_000_000_000),
    _item("f/Big-tuned", 190, MISTRAL, "m/Big-24B", "finetune", 24_000_000_000),
    _item("f/Big-tuned-2", 120, MISTRAL, "m/Big-24B", "finetune", 23_000_000_000),
    _item(
        "q/Big-GGUF",
        195,
        MISTRAL,
        "m/Big-24B",
        "quantized",
        siblings=[{"rfilename": "m.Q4_K_M.gguf"}],
    ),
    _item("f/Deeper", 100, MISTRAL, "f/Big-tuned", "finetune", 22_000_000_000),
    _item("f/Other-tuned", 140, LLAMA, "l/Other-8B", "finetune", 8_000_000_000),
    _item("a/Other-lora", 10, LLAMA, "l/Other-8B", "adapter"),
]
SCORES = {"m/Big-24B": 30.0, "f/Big-tuned": 33.0, "f/Big-tuned-2": 29.5, "f/Deeper": 34.0,
          "l/Other-8B": 20.0, "f/Other-tuned": 24.0}  # fmt: skip


@pytest.fixture
def ch(ch: Any) -> Any:
    return hold_summaries(ch)


@pytest.fixture
def written(ch: Any, clickhouse_url: str, database: str) -> Any:
    from hubwatch.clickhouse import connect

    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    forest = FamilyForest()

    def write(events: list[Any]) -> None:
        writer.write(plan_batch(events, forest=forest).plans())

    write([model_created_from_api(i, NOW) for i in ITEMS])
    ch.insert(
        "leaderboard_scores",
        [["open_llm_v2", m, "bfloat16", "average", s, "fine-tuned", "", None, None]
         for m, s in SCORES.items()],
        column_names=["board", "model_id", "precision", "benchmark", "score", "model_type",
                      "architecture", "params_b", "merged"],
    )  # fmt: skip
    yield write
    writer.close()


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _size_change_by_hand(ch: Any, by: str) -> list[tuple[Any, ...]]:
    column = {"relation": "relation", "architecture": "architecture", "base": "base_model_id",
              "root": "root_id"}[by]  # fmt: skip
    rows = ch.query(
        f"SELECT {column}, parameter_ratio, byte_ratio, smaller, parameters_source FROM size_pairs"
    ).result_rows
    groups: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for group, *rest in rows:
        groups[group].append(tuple(rest))
    answer = [
        (
            group,
            len(pairs),
            _round(_median([p[0] for p in pairs]), 3),
            _round(_median([p[1] for p in pairs]), 3),
            round(sum(bool(p[2]) for p in pairs) / len(pairs), 3),
            sum(p[3] not in ("", "hub") for p in pairs),
        )
        for group, pairs in groups.items()
    ]
    return sorted(answer, key=lambda r: (-r[1], r[0]))[:1000]


def _score_delta_by_hand(ch: Any, by: str) -> list[tuple[Any, ...]]:
    column = {"relation": "relation", "architecture": "architecture", "base": "base_model_id",
              "root": "root_id", "type": "model_type"}[by]  # fmt: skip
    rows = ch.query(
        f"SELECT board, {column}, delta, source, disputed FROM scored_pairs"
    ).result_rows
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for board, group, *rest in rows:
        groups[(board, group)].append(tuple(rest))
    answer = [
        (
            board,
            group,
            len(pairs),
            round(statistics.median(p[0] for p in pairs), 3),
            round(statistics.mean(p[0] for p in pairs), 3),
            round(sum(p[0] > 0 for p in pairs) / len(pairs), 3),
            sum(p[1] != "board" for p in pairs),
            sum(bool(p[2]) for p in pairs),
        )
        for (board, group), pairs in groups.items()
    ]
    return sorted(answer, key=lambda r: (r[0], -r[2], r[1]))


def _family_growth_by_hand(ch: Any) -> list[tuple[Any, ...]]:
    rows = ch.query(
        "SELECT root_id, depth, created_at, descendants, finetunes, quantized, adapters,"
        " merges FROM model_families FINAL"
    ).result_rows
    trees: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        trees[row[0]].append(row)
    answer = []
    for root, members in trees.items():
        [top] = [m for m in members if m[1] == 0]
        if top[3] == 0:
            continue
        born = [m[2] for m in members if m[1] > 0]
        within = [sum(b <= top[2] + timedelta(days=d) for b in born) for d in (7, 30, 90)]
        answer.append((root, *within, *top[3:], max(m[1] for m in members)))
    return sorted(answer, key=lambda r: (-r[4], r[0]))[:1000]


def _architectures_by_hand(ch: Any) -> dict[str, int]:
    rows = ch.query(
        "SELECT toString(architecture) FROM model_families FINAL"
        " WHERE is_deleted = 0 AND parent_id != '' AND architecture != ''"
    ).result_rows
    counted: dict[str, int] = defaultdict(int)
    for (architecture,) in rows:
        counted[architecture] += 1
    return dict(counted)


def _answers(ch: Any) -> dict[str, Any]:
    def query(name: str, **params: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in ch.query(load(name).sql, parameters=params).result_rows]

    whole = TimeRange(NOW - timedelta(days=3650), NOW + timedelta(days=1))
    table = run_panel(ch, panel("architectures"), whole)
    return {
        **{f"size_change {by}": query("size_change", by=by)
           for by in ("relation", "architecture", "base", "root")},
        **{f"score_delta {by}": query("score_delta", by=by)
           for by in ("relation", "architecture", "type", "base", "root")},
        "family_growth": query("family_growth"),
        "architectures": {r["architecture"]: r["derivatives"] for r in table.records()},
    }  # fmt: skip


def _by_hand(ch: Any) -> dict[str, Any]:
    return {
        **{f"size_change {by}": _size_change_by_hand(ch, by)
           for by in ("relation", "architecture", "base", "root")},
        **{f"score_delta {by}": _score_delta_by_hand(ch, by)
           for by in ("relation", "architecture", "type", "base", "root")},
        "family_growth": _family_growth_by_hand(ch),
        "architectures": _architectures_by_hand(ch),
    }  # fmt: skip


def test_each_summary_is_its_rows_and_follows_a_move_after_a_refresh(ch: Any, written: Any) -> None:
    refresh(ch)
    before = _answers(ch)
    assert before == _by_hand(ch)
    # Not vacuous: every answer has rows, and the data has more than one group.
    assert all(before.values()), before
    assert len(before["size_change base"]) == 3 and len(before["family_growth"]) == 2

    # f/Big-tuned-2 moves from the Mistral family to the Llama one, and a new model arrives.
    moved_at = NOW + timedelta(days=1)
    written([
        ModelUpdated("f/Big-tuned-2", moved_at, moved_at, ("base_models",),
                     base_models=("l/Other-8B",), base_models_relation="finetune"),
        model_created_from_api(
            _item("q/Other-GGUF", 5, LLAMA, "l/Other-8B", "quantized",
                  siblings=[{"rfilename": "m.Q8_0.gguf"}]), NOW),
    ])  # fmt: skip
    # Until the next refresh the summaries say what they said.
    assert _answers(ch) == before
    refresh(ch)
    after = _answers(ch)
    assert after == _by_hand(ch)
    assert after != before
    growth = {row[0]: row[4] for row in after["family_growth"]}
    assert growth == {"m/Big-24B": 3, "l/Other-8B": 4}
    assert after["architectures"]["LlamaForCausalLM"] == 3  # the new one and the lora


def test_an_empty_database_says_why_after_recomputing(clickhouse_url: str, database: str) -> None:
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": database}
    for name, args in (("family_growth", []), ("size_change", ["--param", "by=relation"])):
        done = hubwatch("query", name, *args, env=env)
        assert done.returncode == 0 and done.stdout == "", done.stderr
        [line] = done.stderr.strip().splitlines()
        assert f"{name}: nothing to compare" in line, line
        assert f"{name}_refresh: as of " in line and "recomputed now" in line, line


def test_query_says_as_of_when_and_fresh_recomputes(
    ch: Any, written: Any, clickhouse_url: str, database: str
) -> None:
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": database}
    refresh(ch)
    written([
        model_created_from_api(
            _item("q/Other-GGUF", 5, LLAMA, "l/Other-8B", "quantized",
                  siblings=[{"rfilename": "m.Q8_0.gguf"}]), NOW),
    ])  # fmt: skip
    stale = hubwatch("query", "family_growth", "--format", "TSV", env=env)
    assert stale.returncode == 0, stale.stderr
    assert {r.split("\t")[0]: r.split("\t")[4] for r in stale.stdout.splitlines()} == {
        "m/Big-24B": "4",
        "l/Other-8B": "2",
    }
    [line] = stale.stderr.strip().splitlines()
    assert line.startswith("family_growth_refresh: as of its last refresh, "), line
    assert "--fresh recomputes now" in line, line
    fresh = hubwatch("query", "family_growth", "--fresh", "--format", "TSV", env=env)
    assert fresh.returncode == 0, fresh.stderr
    assert {r.split("\t")[0]: r.split("\t")[4] for r in fresh.stdout.splitlines()} == {
        "m/Big-24B": "4",
        "l/Other-8B": "3",
    }
    [line] = fresh.stderr.strip().splitlines()
    assert line.startswith("family_growth_refresh: as of ") and "recomputed now" in line, line
