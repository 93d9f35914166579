"""`hubwatch report` on the real ClickHouse: the shared v2 sample and v1 dump imported, the
Mistral tree through the processors (in both arrival orders), the report run as a user runs
it, and every number in its JSON checked against a computation here, in plain Python over
the CSV files in /work/shared/data (csv, json, statistics, random; nothing from hubwatch)."""

from __future__ import annotations

import csv
import json
import random
import re
import statistics
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from processors.families import FamilyForest
from processors.pipeline import plan_batch
from processors.sinks import ClickHouseWriter
from producers.hub import model_created_from_api
from tests.conftest import FIXTURE, ImportBoard, free_port, hubwatch

DATA = FIXTURE.parent
V1 = DATA / "open_llm_leaderboard_v1_final_2024-07-07.csv"
V2 = DATA / "open_llm_leaderboard_v2_sample1000_2025-03-21.csv"
BASE = "mistralai/Mistral-Small-24B-Base-2501"
FULL = ("float16", "bfloat16", "float32")
RELATION_TAG = re.compile(r"^base_model:(finetune|quantized|adapter|merge):(.+)$")


def _rows(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(1 << 30)
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _kind(raw: str) -> str:
    """The board's model type in one word, from the dumps' own spellings."""
    text = raw.lower().replace(" ", "").replace("-", "")
    for key, name in (
        ("continuous", "continuously_pretrained"),
        ("pretrained", "pretrained"),
        ("finetuned", "fine_tuned"),
        ("chat", "chat"),
        ("merge", "merge"),
    ):
        if key in text:
            return name
    return "other"


# --- the independent computation -------------------------------------------------------


def board_entries(board: str) -> dict[str, dict[str, Any]]:
    """Per model: its full-precision row if any, else its best; every field from that row."""
    best: dict[str, dict[str, Any]] = {}
    for r in _rows(V1 if board == "open_llm_v1" else V2):
        if board == "open_llm_v1":
            merged = {"TRUE": False, "FALSE": True}.get(r["merged"])  # inverted in v1
            entry = {
                "model": r["fullname"], "precision": r["precision"],
                "score": float(r["average"]), "architecture": r["architecture"],
                "type": _kind(r["type"]), "merged": merged,
                "params": float(r["params_b"]) if r["params_b"] else None,
            }  # fmt: skip
        else:
            entry = {
                "model": r["model_name"], "precision": r["model_precision"],
                "score": float(r["model_average_score"]),
                "architecture": r["model_architecture"], "type": _kind(r["model_type"]),
                "merged": r["features_is_merged"] == "TRUE",
                "params": float(r["metadata_params_billions"])
                if r["metadata_params_billions"] else None,
                "base": r["metadata_base_model"].strip(),
                "generation": int(float(r["metadata_generation"] or 0)),
            }  # fmt: skip
        key = (entry["precision"] in FULL, entry["score"])
        old = best.get(entry["model"])
        if old is None or key > (old["precision"] in FULL, old["score"]):
            best[entry["model"]] = entry
    return best


def tree() -> dict[str, dict[str, Any]]:
    """The crawl: id -> metadata, with the crawl's own parent (its children column)."""
    rows = _rows(FIXTURE)
    models = {r["model_id"]: json.loads(r["metadata"]) for r in rows}
    for r in rows:
        for url in json.loads(r["children"].replace("'", '"')):
            child = url.removeprefix("https://huggingface.co/")
            if child in models:  # the crawl lists children it did not fetch
                models[child]["parent"] = r["model_id"]
    return models


def hub_edges(models: dict[str, dict[str, Any]]) -> dict[tuple[str, str], str]:
    edges = {}
    for model_id, meta in models.items():
        for tag in meta["tags"]:
            match = RELATION_TAG.match(tag)
            if match:
                edges[(model_id, match.group(2))] = match.group(1)
    return edges


def expected_pairs(board: str, hub: dict[tuple[str, str], str]) -> dict[tuple[str, str], Any]:
    """(derivative, base) -> (relation, delta, architecture, type): the Hub's edges and the
    board's base field, each pair once (the Hub's relation first); a board edge is a merge
    only when the derivative itself is flagged or typed a merge."""
    entries = board_entries(board)
    edges = dict(hub)
    for model, e in entries.items():
        base = e.get("base", "").removesuffix("(Merge)").strip()
        if e.get("generation", 0) > 0 and base not in ("", "Removed", model):
            merge = e["merged"] or e["type"] == "merge"
            edges.setdefault((model, base), "merge" if merge else "finetune")
    return {
        (d, b): (rel, entries[d]["score"] - entries[b]["score"], entries[d]["architecture"],
                 entries[d]["type"])
        for (d, b), rel in edges.items()
        if d in entries and b in entries
    }  # fmt: skip


def stats(deltas: list[float]) -> dict[str, Any]:
    return {
        "n": len(deltas),
        "median": round(statistics.median(deltas), 3),
        "mean": round(sum(deltas) / len(deltas), 3),
        "share_improved": round(sum(d > 0 for d in deltas) / len(deltas), 3),
    }


def grouped(pairs: dict[tuple[str, str], Any], index: int) -> dict[str, Any]:
    groups: dict[str, list[float]] = {}
    for value in pairs.values():
        groups.setdefault(value[index] or "(unknown)", []).append(value[1])
    return {g: stats(d) for g, d in groups.items()}


def ci(values: list[float]) -> list[float]:
    rng = random.Random(9)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(1000))
    return [round(medians[25], 3), round(medians[975], 3)]


# --- the test ---------------------------------------------------------------------------


def _ingest(
    clickhouse_url: str, database: str, items: list[dict[str, Any]], oldest_first: bool
) -> None:
    from hubwatch.clickhouse import connect

    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    order = sorted(items, key=lambda i: i["createdAt"], reverse=not oldest_first)
    forest = FamilyForest()
    now = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    for start in range(0, len(order), 10):
        events = [model_created_from_api(i, now) for i in order[start : start + 10]]
        writer.write(plan_batch(events, forest=forest).plans())
    writer.close()


@pytest.mark.parametrize("oldest_first", [True, False], ids=["oldest-first", "newest-first"])
def test_report_numbers(
    oldest_first: bool,
    clickhouse_url: str,
    database: str,
    import_board: ImportBoard,
    fixture_items: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    import_board(V1)
    import_board(V2)
    _ingest(clickhouse_url, database, fixture_items, oldest_first)
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": database}
    done = hubwatch("report", "--out", str(tmp_path / "out"), env=env)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "out" / "report.html").read_text()
    report = json.loads((tmp_path / "out" / "report.json").read_text())

    # The page: every figure inline (offline), each with its n, source and time range.
    assert report["figures"] and html.count('src="data:image/png;base64,') == len(report["figures"])
    for figure in report["figures"]:
        assert f'id="{figure["id"]}"' in html
        assert "n = " in figure["caption"] and "source: " in figure["caption"]
        assert re.search(r"(created|imported) \d{4}-\d\d-\d\d to \d{4}", figure["caption"])
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere
    assert report["boards"] == ["open_llm_v1", "open_llm_v2"]

    models = tree()
    hub = hub_edges(models)

    # (a) accuracy, per board, never pooled.
    for board in report["boards"]:
        want = expected_pairs(board, hub)
        part = report["accuracy"][board]
        assert {(p["derivative"], p["base"]) for p in part["pairs"]} == set(want)
        if not want:
            assert part["overall"] == {"n": 0} and part["empty_reason"]
            continue
        assert part["overall"] == stats([v[1] for v in want.values()])
        assert part["by_relation"] == grouped(want, 0)
        assert part["by_architecture"] == grouped(want, 2)
        assert part["by_type"] == grouped(want, 3)
        # (d) architectures: ranked by the lower end of a seeded bootstrap of the median.
        arch = report["architectures"][board]
        groups: dict[str, list[float]] = {}
        for _rel, delta, architecture, _ in want.values():
            groups.setdefault(architecture, []).append(delta)
        ranked = sorted(
            (
                {"architecture": a, **stats(d), "ci95_median": ci(d)}
                for a, d in groups.items()
                if len(d) >= 5
            ),
            key=lambda r: (-r["ci95_median"][0], -r["median"], r["architecture"]),
        )
        assert [{k: v for k, v in r.items() if k != "rank"} for r in arch["ranked"]] == ranked
        assert [r["rank"] for r in arch["ranked"]] == list(range(1, len(ranked) + 1))
        assert {r["architecture"]: r["n"] for r in arch["unranked"]} == {
            a: len(d) for a, d in groups.items() if len(d) < 5
        }
    # v1 has no base-model column and no Hub edge joins two of its models: said so.
    assert "no base-model column" in report["accuracy"]["open_llm_v1"]["empty_reason"]
    v2 = report["accuracy"]["open_llm_v2"]
    assert v2["overall"]["n"] == 23  # the 1,000-row sample holds few bases of its rows
    # A "(Merge)" suffix on the base does not make a plain fine-tune a merge.
    suffix_only = [
        e for e in board_entries("open_llm_v2").values()
        if e["base"].endswith("(Merge)") and not e["merged"] and e["type"] != "merge"
    ]  # fmt: skip
    assert suffix_only
    relation = {(p["derivative"], p["base"]): p["relation"] for p in v2["pairs"]}
    for e in suffix_only:
        key = (e["model"], e["base"].removesuffix("(Merge)").strip())
        assert relation.get(key, "finetune") == "finetune"

    # (b) sizes: Hub pairs (primary base) with the crawl's own parameter counts; board
    # pairs with the board's, where the Hub has none.
    sizes = report["sizes"]
    hub_sizes = [p for p in sizes["pairs"] if p.get("parameters_source") != "open_llm_v2"]
    for p in hub_sizes:
        assert models[p["derivative"]]["parent"] == p["base"]
        d, b = models[p["derivative"]], models[p["base"]]
        if (d.get("safetensors") or {}).get("total") and b["safetensors"]["total"]:
            want = round(d["safetensors"]["total"] / b["safetensors"]["total"], 4)
            assert p["parameter_ratio"] == want
    with_weights = {m for m, meta in models.items() if (meta.get("safetensors") or {}).get("total")}
    assert {(p["derivative"], p["base"]) for p in hub_sizes} >= {
        (m, meta["parent"])
        for m, meta in models.items()
        if m in with_weights and meta.get("parent") in with_weights
    }
    # Oldest first, too, the base's size is there: all 22 depth-1 derivatives that have a
    # size of their own have a ratio (the canned size_change query drops them today).
    depth1 = [p for p in hub_sizes if p["base"] == BASE]
    assert len(depth1) >= len([m for m in with_weights if models[m].get("parent") == BASE])
    assert len(depth1) > 0
    v2_entries = board_entries("open_llm_v2")
    hub_pair_keys = {(p["derivative"], p["base"]) for p in hub_sizes}
    want_board = {
        (d, b): round(v2_entries[d]["params"] / v2_entries[b]["params"], 4)
        for (d, b) in expected_pairs("open_llm_v2", hub)
        if (d, b) not in hub_pair_keys and v2_entries[d]["params"] and v2_entries[b]["params"]
    }
    assert {
        (p["derivative"], p["base"]): p["parameter_ratio"]
        for p in sizes["pairs"]
        if p.get("parameters_source") == "open_llm_v2"
    } == want_board
    smaller = [p.get("byte_ratio", p.get("parameter_ratio")) < 1 for p in sizes["pairs"]]
    assert sizes["share_smaller"] == round(sum(smaller) / len(smaller), 3)
    for relation_name, part in sizes["by_relation"].items():
        ratios = [p["parameter_ratio"] for p in sizes["pairs"] if p["relation"] == relation_name]
        assert part["parameter_ratio"]["n"] == len(ratios)
        assert part["parameter_ratio"]["median"] == round(statistics.median(ratios), 3)
    # Quantized precisions against the same model at full precision, per board.
    for board, path_rows in (("open_llm_v1", _rows(V1)), ("open_llm_v2", _rows(V2))):
        name = "fullname" if board == "open_llm_v1" else "model_name"
        prec = "precision" if board == "open_llm_v1" else "model_precision"
        score = "average" if board == "open_llm_v1" else "model_average_score"
        full: dict[str, float] = {}
        for r in path_rows:
            if r[prec] in FULL:
                full[r[name]] = max(full.get(r[name], -1e9), float(r[score]))
        deltas: dict[str, list[float]] = {}
        for r in path_rows:
            if r[prec] not in FULL and r[name] in full:
                deltas.setdefault(r[prec], []).append(float(r[score]) - full[r[name]])
        got = report["sizes"]["quantized"][board]["by_precision"]
        assert {p: {k: s[k] for k in ("n", "median", "mean")} for p, s in got.items()} == {
            p: {k: v for k, v in stats(d).items() if k != "share_improved"}
            for p, d in deltas.items()
        }
        assert {p: s["worst"] for p, s in got.items()} == {
            p: round(min(d), 3) for p, d in deltas.items()
        }
    # v1's GPTQ rows have no full-precision row of the same model.
    assert set(report["sizes"]["quantized"]["open_llm_v1"]["by_precision"]) == {"4bit", "8bit"}
    assert report["sizes"]["quantized"]["open_llm_v2"]["empty_reason"]

    # (c) engagement: likes and downloads as first seen, derivative against base.
    versus = report["engagement"]["versus_base"]
    for counter in ("likes", "downloads"):
        points = [
            (models[d][counter], models[b][counter])
            for d, b in sorted(hub)
            if d in models and b in models
            and models[d][counter] is not None and models[b][counter] is not None
        ]  # fmt: skip
        assert versus[counter]["n"] == len(points) > 0
        assert versus[counter]["points"] == [list(p) for p in points]
        assert versus[counter]["median_derivative"] == statistics.median(c for c, _ in points)
        assert versus[counter]["median_base"] == statistics.median(b for _, b in points)
        assert versus[counter]["share_derivative_higher"] == round(
            sum(c > b for c, b in points) / len(points), 3
        )
    # Family growth, from the crawl's creation dates, whichever order models arrived in.
    created = {m: datetime.fromisoformat(meta["created_at"]) for m, meta in models.items()}
    ages = sorted((created[m] - created[BASE]).total_seconds() / 86400 for m in models if m != BASE)
    [family] = report["engagement"]["family_growth"]["families"]
    assert (family["root"], family["descendants"], family["dated"]) == (BASE, 66, 66)
    assert [family[f"within_{n}_days"] for n in (7, 30, 90)] == [
        sum(a <= n for a in ages) for n in (7, 30, 90)
    ]
    assert [family[f"within_{n}_days"] for n in (7, 30, 90)] == [2, 45, 66]  # as issue 9 says
    assert family["days_after_root"] == [round(a, 3) for a in ages]
    community = report["engagement"]["community"]
    assert community["n"] == 0 and "no commit or discussion events" in community["empty_reason"]

    # (e) licences along the Hub's lineage, from the crawl's license: tags.
    def licence(m: str) -> str:
        tags = [t for t in models[m]["tags"] if t.startswith("license:")]
        return tags[0].removeprefix("license:") if tags else "(none)"

    pairs = [(licence(b), licence(d)) for d, b in hub if d in models and b in models]
    lic = report["licences"]["hub"]
    assert lic["n"] == len(pairs)
    assert lic["share_same_licence"] == round(sum(b == d for b, d in pairs) / len(pairs), 3)
    assert {(r["base"], r["derivative"]): r["edges"] for r in lic["base_to_derivative"]} == dict(
        Counter(pairs)
    )
    assert "hub_license" in report["licences"]["open_llm_v2"]["empty_reason"]


def test_report_one_board_and_empty_database(
    clickhouse_url: str, database: str, import_board: ImportBoard, tmp_path: Path
) -> None:
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": database}
    empty = hubwatch("report", "--out", str(tmp_path / "empty"), env=env)
    assert empty.returncode == 0, empty.stderr
    report = json.loads((tmp_path / "empty" / "report.json").read_text())
    assert report["boards"] == [] and report["figures"] == []
    html = (tmp_path / "empty" / "report.html").read_text()
    for reason in (
        report["sizes"]["empty_reason"],
        report["engagement"]["versus_base"]["empty_reason"],
        report["engagement"]["family_growth"]["empty_reason"],
        report["engagement"]["community"]["empty_reason"],
    ):
        assert reason and reason.split(";")[0].split("(")[0].strip() in html

    import_board(V2)
    import_board(V1)
    one = hubwatch("report", "--out", str(tmp_path / "v1"), "--board", "open_llm_v1", env=env)
    assert one.returncode == 0, one.stderr
    report = json.loads((tmp_path / "v1" / "report.json").read_text())
    assert report["boards"] == ["open_llm_v1"] and list(report["accuracy"]) == ["open_llm_v1"]
    assert list(report["sizes"]["quantized"]) == ["open_llm_v1"]


def test_report_without_clickhouse(tmp_path: Path) -> None:
    env = {"HUBWATCH_CLICKHOUSE_URL": f"http://127.0.0.1:{free_port()}"}
    done = hubwatch("report", "--out", str(tmp_path / "out"), env=env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "no ClickHouse answers" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
