"""Issue 9, item 3: the leaderboard answers, right and honest. Each board's headline numbers
(score_delta, size_change, quantized_tradeoff) against a plain-Python computation over the
shared v1 dump and v2 sample; relations from a row's own fields; boards never mixed; the
Hub's lineage giving v1 its pairs; a pair named by the Hub and a board counted once; an
empty answer that says why."""

from __future__ import annotations

import csv
import json
import re
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hubwatch.queries import load
from hubwatch.summaries import refresh
from processors.families import FamilyForest
from processors.pipeline import plan_batch
from processors.sinks import ClickHouseWriter
from producers.hub import model_created_from_api
from tests.conftest import FIXTURE, ImportBoard, hubwatch

DATA = FIXTURE.parent
V1 = DATA / "open_llm_leaderboard_v1_final_2024-07-07.csv"
V2 = DATA / "open_llm_leaderboard_v2_sample1000_2025-03-21.csv"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
FULL = ("float16", "bfloat16", "float32")
# Each board's own column names: model, precision, type, architecture, average, params.
COLUMNS = {
    "open_llm_v1": ("fullname", "precision", "type", "architecture", "average", "params_b"),
    "open_llm_v2": (
        "model_name",
        "model_precision",
        "model_type",
        "model_architecture",
        "model_average_score",
        "metadata_params_billions",
    ),
}
# What the Hub says of some v1 models (their model pages' base_model relations).
MIXTRAL = "mistralai/Mixtral-8x7B-v0.1"
HUB_LINEAGE = {
    "mistralai/Mixtral-8x7B-Instruct-v0.1": (MIXTRAL, "finetune"),
    "NousResearch/Nous-Hermes-2-Mixtral-8x7B-DPO": (MIXTRAL, "finetune"),
    "TheBloke/Mixtral-8x7B-v0.1-GPTQ": (MIXTRAL, "quantized"),
    "TheBloke/Llama-2-7B-GPTQ": ("meta-llama/Llama-2-7b-hf", "quantized"),
    "TheBloke/neural-chat-7B-v3-2-GPTQ": ("Intel/neural-chat-7b-v3-2", "quantized"),
    "Intel/neural-chat-7b-v3-2": ("mistralai/Mistral-7B-v0.1", "finetune"),
}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _query(ch: Any, name: str, **params: str) -> list[tuple[Any, ...]]:
    refresh(ch)
    return ch.query(load(name).sql, parameters=params).result_rows


@pytest.fixture
def writer(clickhouse_url: str, database: str) -> Any:
    from hubwatch.clickhouse import connect

    w = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    yield w
    w.close()


def type_word(raw: str) -> str:
    words = re.sub("[^a-z]", "", raw.lower())
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


def v2_pairs(rows: list[dict[str, str]]) -> dict[tuple[str, str], str]:
    """The v2 board's pairs, each with the derivative's own relation."""
    pairs = {}
    for r in rows:
        base = r["metadata_base_model"].strip().removesuffix("(Merge)").strip()
        if int(r["metadata_generation"]) == 0 or base in ("", "Removed", r["model_name"]):
            continue
        if r["features_is_merged"] == "TRUE" or type_word(r["model_type"]) == "merge":
            relation = "merge"
        elif r["model_weight_type"] == "Adapter":
            relation = "adapter"
        else:
            relation = "finetune"
        pairs[(r["model_name"], base)] = relation
    return pairs


def best_rows(board: str, rows: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Each model's best full-precision row (else its best), with that row's own fields."""
    model, precision, kind, arch, average, _ = COLUMNS[board]
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        rank = (r[precision] in FULL, float(r[average]))
        if r[model] not in best or rank > best[r[model]]["rank"]:
            best[r[model]] = {
                "rank": rank,
                "score": float(r[average]),
                "architecture": r[arch].strip(),
                "type": type_word(r[kind]),
            }
    return best


def headline(
    pairs: dict[tuple[str, str], str], best: dict[str, dict[str, Any]], by: str
) -> dict[str, tuple[int, float, float, float]]:
    deltas: dict[str, list[float]] = defaultdict(list)
    for (child, base), relation in pairs.items():
        if child in best and base in best:
            group = relation if by == "relation" else best[child][by]
            deltas[group].append(best[child]["score"] - best[base]["score"])
    return {
        g: (
            len(d),
            round(statistics.median(d), 3),
            round(statistics.fmean(d), 3),
            round(sum(x > 0 for x in d) / len(d), 3),
        )
        for g, d in deltas.items()
    }


def score_delta(ch: Any, by: str) -> dict[str, dict[str, tuple[Any, ...]]]:
    boards: dict[str, dict[str, tuple[Any, ...]]] = defaultdict(dict)
    for board, group, *numbers in _query(ch, "score_delta", by=by):
        boards[board][group] = tuple(numbers)
    return boards


def hub_models(writer: ClickHouseWriter, lineage: dict[str, tuple[str, str]], **items: Any) -> None:
    """The Hub's view of some models: each derivative with its base and relation."""
    models = {m for child, (base, _) in lineage.items() for m in (child, base)}
    api = [
        {
            "id": m,
            **(
                {"baseModels": {"relation": lineage[m][1], "models": [{"id": lineage[m][0]}]}}
                if m in lineage
                else {}
            ),
            **items.get(m, {}),
        }
        for m in sorted(models)
    ]
    events = [model_created_from_api(i, NOW) for i in api]
    writer.write(plan_batch(events, forest=FamilyForest()).plans())


def test_v2_relation_is_the_derivatives_own(ch: Any, import_board: ImportBoard) -> None:
    rows = _rows(V2)
    import_board(V2)
    stored = dict(
        ((d, b), rel)
        for d, b, rel in ch.query(
            "SELECT derivative_id, base_model_id, relation FROM leaderboard_edges FINAL"
        ).result_rows
    )
    assert stored == v2_pairs(rows)
    # The suffix names the base, not the derivative's relation: none of the sample's
    # suffixed pairs is a merged model, and none is filed as a merge.
    suffixed = {
        (r["model_name"], r["metadata_base_model"].removesuffix("(Merge)").strip())
        for r in rows
        if r["metadata_base_model"].endswith("(Merge)")
    }
    filed = [stored[p] for p in suffixed if p in stored]
    assert len(filed) == 9 and "merge" not in filed  # 10 rows, 9 distinct pairs
    assert {stored[p] for p in suffixed if p in stored} == {"finetune", "adapter"}


def test_headline_numbers_per_board(ch: Any, import_board: ImportBoard) -> None:
    """v1 and v2 imported together: each board's numbers are its own, over the same pairs
    (the v2 board's base field, and no Hub lineage here)."""
    v1, v2 = _rows(V1), _rows(V2)
    import_board(V2)
    import_board(V1)
    pairs = v2_pairs(v2)
    best = {
        "open_llm_v1": best_rows("open_llm_v1", v1),
        "open_llm_v2": best_rows("open_llm_v2", v2),
    }
    for by in ("relation", "architecture", "type"):
        got = score_delta(ch, by)
        expected = {board: headline(pairs, b, by) for board, b in best.items()}
        assert {b: {g: n[:4] for g, n in groups.items()} for b, groups in got.items()} == expected
        # Every pair here is the board's: none from the Hub, none disputed.
        assert all(n[4:] == (0, 0) for groups in got.values() for n in groups.values())
    assert set(score_delta(ch, "relation")) == {"open_llm_v1", "open_llm_v2"}


def test_v1_pairs_from_the_hub_and_disputes(
    ch: Any, import_board: ImportBoard, writer: ClickHouseWriter
) -> None:
    """v1 has no base column: the Hub's lineage gives its pairs, each model's type from the
    row its score comes from. A pair both the Hub and the board name is counted once, with
    the Hub's relation, and the disagreement is kept."""
    v1, v2 = _rows(V1), _rows(V2)
    import_board(V1)
    import_board(V2)
    board_pairs = v2_pairs(v2)
    best2 = best_rows("open_llm_v2", v2)
    disputed = next(
        (p, r)
        for p, r in sorted(board_pairs.items())
        if r == "finetune" and p[0] in best2 and p[1] in best2
    )
    lineage = {**HUB_LINEAGE, disputed[0][0]: (disputed[0][1], "merge")}
    hub_models(writer, lineage)

    pairs = {**board_pairs, **{(c, b): rel for c, (b, rel) in lineage.items()}}
    for board, rows in (("open_llm_v1", v1), ("open_llm_v2", v2)):
        best = best_rows(board, rows)
        for by in ("relation", "type", "architecture"):
            got = score_delta(ch, by)[board]
            assert {g: n[:4] for g, n in got.items()} == headline(pairs, best, by), (board, by)
    # Mixtral-8x7B-Instruct's best v1 row (float16) is a fine-tune; its bfloat16 row says chat.
    mixtral = [r for r in v1 if r["fullname"] == "mistralai/Mixtral-8x7B-Instruct-v0.1"]
    assert {(r["precision"], type_word(r["type"])) for r in mixtral} >= {
        ("float16", "fine_tuned"),
        ("bfloat16", "chat"),
    }
    v2_relations = score_delta(ch, "relation")["open_llm_v2"]
    assert v2_relations["merge"][4:] == (1, 1)  # the Hub's relation, the dispute counted
    stored = ch.query(
        "SELECT relation, source, board_relation, disputed FROM derivation_pairs "
        "WHERE derivative_id = {d:String}",
        parameters={"d": disputed[0][0]},
    ).result_rows
    assert stored == [("merge", "hub+board", "finetune", True)]


def test_sizes_from_the_board(ch: Any, import_board: ImportBoard) -> None:
    """With no Hub sizes, size_change compares the board's parameter counts and says so."""
    v2 = _rows(V2)
    import_board(V2)
    params: dict[str, float] = {}
    for r in v2:
        if float(r["metadata_params_billions"] or 0) > 0:
            params[r["model_name"]] = float(r["metadata_params_billions"])
    ratios: dict[str, list[float]] = defaultdict(list)
    for (child, base), relation in v2_pairs(v2).items():
        if child in params and base in params:
            ratios[relation].append(params[child] / params[base])
    got = {g: rest for g, *rest in _query(ch, "size_change", by="relation")}
    assert got == {
        rel: [
            len(r),
            round(statistics.median(r), 3),
            None,  # bytes: only the Hub knows weights
            round(sum(x < 1 for x in r) / len(r), 3),
            len(r),  # every ratio used the board's counts
        ]
        for rel, r in ratios.items()
    }


def test_quantized_tradeoff_measured_and_assumed(
    ch: Any, import_board: ImportBoard, writer: ClickHouseWriter
) -> None:
    v1 = _rows(V1)
    import_board(V1)
    # The Hub's sizes: the base's safetensors count; the others' counts from their names.
    hub_models(writer, HUB_LINEAGE, **{MIXTRAL: {"safetensors": {"total": 46_702_792_704}}})
    sizes = dict(ch.query("SELECT repo_id, size_bytes FROM models FINAL").result_rows)
    measured = {
        child: sizes[child] / sizes[base]
        for child, (base, relation) in HUB_LINEAGE.items()
        if relation == "quantized"
    }
    assert round(measured["TheBloke/Mixtral-8x7B-v0.1-GPTQ"], 3) != 0.25  # not the assumption

    scores: dict[tuple[str, str], float] = {}
    for r in v1:
        key = (r["fullname"], r["precision"])
        scores[key] = max(scores.get(key, -1e9), float(r["average"]))
    full = {}
    for (m, p), s in scores.items():
        if p in FULL:
            full[m] = max(full.get(m, -1e9), s)
    groups: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    for (m, p), s in scores.items():
        if p in ("4bit", "8bit", "GPTQ") and m in full:
            ratio = 0.5 if p == "8bit" else 0.25
            groups[(p, "same_model", "assumed_bits/16")].append((s - full[m], ratio))
    for child, (base, relation) in HUB_LINEAGE.items():
        if relation == "quantized" and base in full:
            s = scores[(child, "GPTQ")]
            groups[("GPTQ", "quantized_repo", "hub")].append((s - full[base], measured[child]))
    expected = [
        (
            "open_llm_v1",
            *key,
            len(v),
            round(statistics.median(r for _, r in v), 3),
            round(statistics.median(d for d, _ in v), 3),
            round(min(d for d, _ in v), 3),
            round(sum(-1 <= d <= 1 for d, _ in v) / len(v), 3),
        )
        for key, v in sorted(groups.items())
    ]
    assert _query(ch, "quantized_tradeoff") == expected


def test_empty_answers_say_why(clickhouse_url: str, database: str) -> None:
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": database}
    nothing = hubwatch("query", "score_delta", "--param", "by=relation", env=env)
    assert nothing.returncode == 0 and nothing.stdout == ""
    assert "score_delta: nothing to compare: no leaderboard scores yet" in nothing.stderr
    assert hubwatch("import", "leaderboard", str(V1), env=env).returncode == 0
    v1_only = hubwatch("query", "score_delta", "--param", "by=relation", env=env)
    assert v1_only.returncode == 0 and v1_only.stdout == ""
    assert "no derivation pairs" in v1_only.stderr
    assert "open_llm_v1 has no base column" in v1_only.stderr
    assert "open_llm_v1 6811 models" in v1_only.stderr
    growth = hubwatch("query", "family_growth", env=env)
    assert growth.returncode == 0 and "family_growth: nothing to compare" in growth.stderr
    assert len(growth.stderr.strip().splitlines()) == 1
    for name, reason in (
        ("breakouts", "no live engagement windows: engagement_live is empty"),
        ("community_activity", "no community events: the community and github streams"),
    ):
        empty = hubwatch("query", name, env=env)
        assert empty.returncode == 0 and empty.stdout == "", name
        [line] = empty.stderr.strip().splitlines()
        assert line.startswith(f"{name}: nothing to compare: {reason}"), line


RENAMED = {  # the Hub's renames behind the sample's old base names
    "meta-llama/Meta-Llama-3.1-8B": "meta-llama/Llama-3.1-8B",
    "meta-llama/Meta-Llama-3.1-70B": "meta-llama/Llama-3.1-70B",
}


async def test_import_resolves_renamed_bases(
    ch: Any, clickhouse_url: str, database: str, tmp_path: Path
) -> None:
    """`hubwatch import` maps the board's old names through the Hub (the aliases stream's
    cache), so the derivatives of a renamed base meet its scores; offline it imports anyway
    and says so in one line."""
    import asyncio

    from hubwatch.replay.server import ReplayServer
    from hubwatch.replay.world import HubWorld, ListSource

    rows = _rows(V2)
    # Independently: the board's pairs with the two renames applied, compared as score_delta.
    pairs = {(c, RENAMED.get(b, b)): rel for (c, b), rel in v2_pairs(rows).items()}
    expected = headline(pairs, best_rows("open_llm_v2", rows), "relation")
    assert (
        expected["finetune"][0]
        > headline(v2_pairs(rows), best_rows("open_llm_v2", rows), "relation")["finetune"][0]
    )

    env = {
        "HUBWATCH_CLICKHOUSE_URL": clickhouse_url,
        "HUBWATCH_CLICKHOUSE_DATABASE": database,
        "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
        "HUBWATCH_HUB_URL": "http://127.0.0.1:9",  # nothing listens: the Hub is out of reach
    }
    offline = hubwatch("import", "leaderboard", str(V2), env=env)
    assert offline.returncode == 0, offline.stderr
    assert [line for line in offline.stdout.splitlines() if "not resolved" in line] != []
    assert ch.query("SELECT count() FROM model_aliases").result_rows == [(0,)]

    created = "2024-07-23T00:00:00.000Z"
    world = HubWorld(
        ListSource(
            [
                {
                    "id": new,
                    "author": "meta-llama",
                    "createdAt": created,
                    "lastModified": created,
                    "tags": [],
                }
                for new in RENAMED.values()
            ]
        ),
        start=len(RENAMED),
    )
    for old, new in RENAMED.items():
        world.rename(old, new)
    # A quota a local replay can afford; the lookups are paced within it as on the Hub.
    async with ReplayServer(world, api_quota=100_000) as server:
        env["HUBWATCH_HUB_URL"] = server.url
        done = await asyncio.to_thread(hubwatch, "import", "leaderboard", str(V2), env=env)
        assert done.returncode == 0, done.stderr
        assert "not resolved" not in done.stdout
        # Each old name was asked for once; asked again, the cache answers.
        asked = {old: server.info_by_id[old] for old in RENAMED}
        assert asked == {old: 1 for old in RENAMED}
        again = await asyncio.to_thread(hubwatch, "import", "leaderboard", str(V2), env=env)
        assert again.returncode == 0, again.stderr
        assert {old: server.info_by_id[old] for old in RENAMED} == asked

    assert set(
        ch.query(
            "SELECT alias_id, canonical_id, resolved_by FROM model_aliases FINAL"
            " WHERE resolved_by = 'redirect'"
        ).result_rows
    ) == {(old, new, "redirect") for old, new in RENAMED.items()}
    got = score_delta(ch, "relation")["open_llm_v2"]
    assert {g: n[:4] for g, n in got.items()} == expected
    # Every query on derivation_pairs (size_change, quantized_tradeoff, ...) sees the pairs
    # at the canonical ids: the board's 17 rows naming an old name are the new name's.
    renamed = Counter(b for _, b in pairs if b in RENAMED.values())
    named = ch.query(
        "SELECT base_model_id, count() FROM derivation_pairs"
        " WHERE base_model_id IN {ids:Array(String)} GROUP BY base_model_id",
        parameters={"ids": [*RENAMED, *RENAMED.values()]},
    ).result_rows
    assert dict(named) == renamed

    # The report reads the tables directly: its accuracy section agrees with score_delta.
    out = tmp_path / "report"
    report = hubwatch("report", "--out", str(out), "--board", "open_llm_v2", env=env)
    assert report.returncode == 0, report.stderr
    overall = json.loads((out / "report.json").read_text())["accuracy"]["open_llm_v2"]["overall"]
    n, median, mean, share = expected["finetune"]
    assert overall == {"n": n, "median": median, "mean": mean, "share_improved": share}
