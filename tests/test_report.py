"""`hubwatch report` on the real ClickHouse: the shared v2 sample and v1 dump imported, the
Mistral tree through the processors (in both arrival orders), the report run as a user runs
it, and every number in its JSON checked against a computation here, in plain Python over
the CSV files in /work/shared/data (csv, json, statistics, random; nothing from hubwatch)."""

from __future__ import annotations

import csv
import functools
import json
import random
import re
import statistics
from collections import Counter
from datetime import UTC, datetime
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


@functools.cache
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


@functools.cache
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
                "licence": r["hub_license"], "submitted": r["date"],
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
                "licence": r["metadata_hub_license"], "submitted": r["metadata_submission_date"],
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


def board_edges() -> dict[tuple[str, str], str]:
    """The v2 file's base fields, every row: (derivative, base) -> the derivative's own
    relation (merged flag or merge type: merge; adapter weights: adapter; else finetune). A
    " (Merge)" suffix is only stripped. The last row naming a pair wins, as in the file."""
    edges = {}
    for r in _rows(V2):
        model, base = r["model_name"], r["metadata_base_model"].strip()
        base = base.removesuffix("(Merge)").strip()
        if int(float(r["metadata_generation"] or 0)) == 0 or base in ("", "Removed", model):
            continue
        if not re.fullmatch(r"(?:[\w.-]+/)?[\w.-]+", base):
            continue
        if r["features_is_merged"] == "TRUE" or _kind(r["model_type"]) == "merge":
            edges[(model, base)] = "merge"
        elif r["model_weight_type"].strip().lower() == "adapter":
            edges[(model, base)] = "adapter"
        else:
            edges[(model, base)] = "finetune"
    return edges


def expected_pairs(board: str, hub: dict[tuple[str, str], str]) -> dict[tuple[str, str], Any]:
    """(derivative, base) -> (relation, delta, architecture, type): every pair the Hub's
    edges or ANY board's base field names (lineage is a fact about the two models: v2's base
    field pairs v1's models too), each once with the Hub's relation first, where both ends
    are scored on ``board``."""
    entries = board_entries(board)
    edges = dict(hub)
    for pair, relation in board_edges().items():
        edges.setdefault(pair, relation)
    return {
        (d, b): (rel, entries[d]["score"] - entries[b]["score"], entries[d]["architecture"],
                 entries[d]["type"])
        for (d, b), rel in edges.items()
        if d in entries and b in entries
    }  # fmt: skip


def board_params(model: str) -> tuple[float, str] | None:
    """A model's parameter count from the boards: the v2 file's largest, else the v1's."""
    for board, path, name, column in (
        ("open_llm_v2", V2, "model_name", "metadata_params_billions"),
        ("open_llm_v1", V1, "fullname", "params_b"),
    ):
        given = [float(r[column]) for r in _rows(path) if r[name] == model and r[column]]
        given = [g for g in given if g > 0]
        if given:
            return max(given) * 1e9, board
    return None


def submitted_range(board: str) -> dict[str, str]:
    """The board file's submission dates, first and last, as ClickHouse keeps them (ms)."""
    column = "date" if board == "open_llm_v1" else "metadata_submission_date"
    times = []
    for r in _rows(V1 if board == "open_llm_v1" else V2):
        if r[column]:
            at = datetime.fromisoformat(r[column])
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
            times.append(at.replace(microsecond=at.microsecond // 1000 * 1000))
    return {"submitted_from": min(times).isoformat(), "submitted_to": max(times).isoformat()}


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
        assert re.search(r"(created|submitted) \d{4}-\d\d-\d\d to \d{4}", figure["caption"])
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
        # The board's own dates, not when it was imported.
        assert part["time_range"] == submitted_range(board)
    # v1 has no base-model column: its pairs are those v2's base field names (no Hub edge
    # joins two of its models), compared on v1's own scores.
    v1 = report["accuracy"]["open_llm_v1"]
    assert v1["overall"]["n"] > 0 and {p["source"] for p in v1["pairs"]} == {"board"}
    assert {(p["derivative"], p["base"]) for p in v1["pairs"]} <= set(board_edges())
    v2 = report["accuracy"]["open_llm_v2"]
    assert v2["overall"]["n"] == 23  # the 1,000-row sample holds few bases of its rows

    # One definition: the canned queries answer what the report shows.
    def query(name: str, by: str) -> list[dict[str, Any]]:
        done = hubwatch("query", name, "--param", f"by={by}", "--format", "JSONEachRow", env=env)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    for by, key in (("relation", "by_relation"), ("architecture", "by_architecture"),
                    ("type", "by_type")):  # fmt: skip
        got = {
            (r["board"], r["group"] or "(unknown)"): {
                "n": int(r["edges"]), "median": r["median_delta"], "mean": r["mean_delta"],
                "share_improved": r["share_improved"],
            }
            for r in query("score_delta", by)
        }  # fmt: skip
        assert got == {
            (board, group): summary
            for board in report["boards"]
            for group, summary in report["accuracy"][board][key].items()
        }, by
    sized = {r["group"]: r for r in query("size_change", "relation")}
    assert set(sized) == set(report["sizes"]["by_relation"])
    for relation_name, part in report["sizes"]["by_relation"].items():
        row = sized[relation_name]
        assert int(row["edges"]) == part["n"]
        assert row["median_parameter_ratio"] == part["parameter_ratio"].get("median")
        assert row["median_byte_ratio"] == part["byte_ratio"].get("median")
        assert row["share_smaller"] == part["share_smaller"]
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
    hub_sizes = [p for p in sizes["pairs"] if p["pair_source"] == "hub"]
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
    # Pairs only a board names, for a derivative the Hub has not placed: the boards' counts
    # (none of these models is in the crawl, so the Hub has no size for them).
    placed = {m for m, meta in models.items() if meta.get("parent")}
    want_board = {}
    for d, b in board_edges():
        if (d, b) in hub or d in placed:
            continue
        dp, bp = board_params(d), board_params(b)
        if dp and bp:
            want_board[(d, b)] = (round(dp[0] / bp[0], 4), dp[1])
    assert {
        (p["derivative"], p["base"]): (p["parameter_ratio"], p["parameters_source"])
        for p in sizes["pairs"]
        if p["pair_source"] == "board"
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
        assert {p: s["share_within_1_point"] for p, s in got.items()} == {
            p: round(sum(-1 <= x <= 1 for x in d) / len(d), 3) for p, d in deltas.items()
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

    # (e) licences along the Hub's lineage, from the crawl's license: tags (a board's
    # hub_license where the crawl has none), and along each board's pairs.
    def tag(m: str) -> str:
        tags = [t for t in models.get(m, {}).get("tags", []) if t.startswith("license:")]
        return tags[0].removeprefix("license:") if tags else ""

    def licence(m: str, boards: list[str]) -> str | None:
        if tag(m):
            return tag(m)
        known = m in models
        for board in boards:
            entry = board_entries(board).get(m)
            if entry is not None:
                known = True
                if entry["licence"]:
                    return entry["licence"]
        return "(none)" if known else None

    for key, edges, boards in (
        ("hub", sorted(hub), ["open_llm_v2", "open_llm_v1"]),
        *((b, sorted(expected_pairs(b, hub)), [b]) for b in report["boards"]),
    ):
        pairs = [
            (licence(b, boards), licence(d, boards))
            for d, b in edges
            if licence(b, boards) is not None and licence(d, boards) is not None
        ]
        lic = report["licences"][key]
        assert lic["n"] == len(pairs) > 0, key
        assert lic["share_same_licence"] == round(sum(b == d for b, d in pairs) / len(pairs), 3)
        assert {
            (r["base"], r["derivative"]): r["edges"] for r in lic["base_to_derivative"]
        } == dict(Counter(pairs)), key
    # The v2 board's licences fill in what the Hub's tags leave out.
    assert report["licences"]["open_llm_v2"]["licence_sources"].get("open_llm_v2", 0) > 0


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
    # (a) and (d) are per board: with none, each says so rather than stand bare.
    for section in ("(a) Accuracy change", "(d) Which architectures"):
        after = html.split(section, 1)[1].split("</h2>", 1)[1].lstrip()
        assert after.startswith('<p class="empty">Empty: no leaderboard imported'), after[:200]

    import_board(V2)
    import_board(V1)
    one = hubwatch("report", "--out", str(tmp_path / "v1"), "--board", "open_llm_v1", env=env)
    assert one.returncode == 0, one.stderr
    report = json.loads((tmp_path / "v1" / "report.json").read_text())
    assert report["boards"] == ["open_llm_v1"] and list(report["accuracy"]) == ["open_llm_v1"]
    assert list(report["sizes"]["quantized"]) == ["open_llm_v1"]
    # A board that is not there: one clear line, non-zero, nothing written.
    bogus = hubwatch("report", "--out", str(tmp_path / "bogus"), "--board", "bogus", env=env)
    assert bogus.returncode == 1 and bogus.stderr.count("\n") == 1, bogus.stderr
    assert "no board 'bogus'" in bogus.stderr and "open_llm_v1, open_llm_v2" in bogus.stderr
    assert "Traceback" not in bogus.stderr and not (tmp_path / "bogus").exists()


def test_report_without_clickhouse(tmp_path: Path) -> None:
    env = {"HUBWATCH_CLICKHOUSE_URL": f"http://127.0.0.1:{free_port()}"}
    done = hubwatch("report", "--out", str(tmp_path / "out"), env=env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "no ClickHouse answers" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
