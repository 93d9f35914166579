"""Issue 4's analysis on the real ClickHouse: the leaderboard importer, sizes, and the
canned queries, each checked against values computed here independently from the files."""

from __future__ import annotations

import csv
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hubwatch.events import (
    GithubCommit,
    GithubIssue,
    GithubRelease,
    ModelCommit,
    ModelCreated,
    ModelDiscussion,
    ModelSnapshot,
)
from hubwatch.queries import canned_queries, load
from hubwatch.summaries import refresh
from processors.engagement import RollingEngagement
from processors.families import FamilyForest
from processors.pipeline import plan_batch
from processors.restore import load_engagement
from processors.sinks import ClickHouseWriter
from processors.sizes import model_size, params_from_name, quant_bits
from producers.hub import model_created_from_api
from tests.conftest import FIXTURE, ImportBoard, hubwatch

DATA = FIXTURE.parent
V1 = DATA / "open_llm_leaderboard_v1_final_2024-07-07.csv"
V2 = DATA / "open_llm_leaderboard_v2_sample1000_2025-03-21.csv"
BASE = "mistralai/Mistral-Small-24B-Base-2501"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _query(ch: Any, name: str, **params: str) -> list[tuple[Any, ...]]:
    query = load(name)
    refresh(ch)
    return ch.query(query.sql, parameters=query.bind(params)).result_rows


@pytest.fixture
def writer(clickhouse_url: str, database: str) -> Any:
    from hubwatch.clickhouse import connect

    w = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    yield w
    w.close()


def test_sizes() -> None:
    assert params_from_name("x/Mixtral-8x7B-Instruct") == 56_000_000_000
    assert params_from_name("x/SmolLM2-135M") == 135_000_000
    assert params_from_name("x/llama-v1b") is None
    assert quant_bits("x/Foo-GGUF", (), ("foo.Q5_K_M.gguf",)) == 5
    assert quant_bits("x/foo-exl2-6.5bpw", (), ()) == 6
    assert quant_bits("x/foo", ("safetensors",), ("model.safetensors",)) is None
    base = model_size(
        model_created_from_api({"id": BASE, "safetensors": {"total": 23_572_403_200}}, NOW)
    )
    assert (base.parameters_source, base.size_bytes) == ("safetensors", 47_144_806_400)
    gguf = model_size(
        model_created_from_api(
            {"id": "x/Small-24B-GGUF", "siblings": [{"rfilename": "m.Q4_K_M.gguf"}]}, NOW
        )
    )
    assert (gguf.parameters, gguf.parameters_source, gguf.quant_bits, gguf.size_bytes) == (
        24_000_000_000,
        "name",
        4,
        12_000_000_000,
    )


def test_import_v1(ch: Any, import_board: ImportBoard) -> None:
    summary = import_board(V1)
    rows = _rows(V1)
    assert (summary.board, summary.rejected) == ("open_llm_v1", [])
    assert summary.scores == 7 * len(rows)
    assert ch.query("SELECT count() FROM leaderboard_scores FINAL").result_rows == [
        (len({(r["fullname"], r["precision"]) for r in rows}) * 7,)
    ]
    # The v1 "merged" column is inverted: FALSE there means a merge.
    merged = ch.query(
        "SELECT merged FROM leaderboard_scores FINAL WHERE model_id = "
        "'paloalma/Le_Triomphant-ECE-TW3' AND benchmark = 'average'"
    )
    assert merged.result_rows == [(True,)]
    # Quantized variants against full precision, computed here from the CSV.
    full: dict[str, float] = {}
    for r in rows:
        if r["precision"] in ("float16", "bfloat16"):
            full[r["fullname"]] = max(full.get(r["fullname"], -1e9), float(r["average"]))
    deltas: dict[str, list[float]] = {}
    for r in rows:
        if r["precision"] in ("4bit", "8bit", "GPTQ") and r["fullname"] in full:
            deltas.setdefault(r["precision"], []).append(float(r["average"]) - full[r["fullname"]])
    got = {p: (n, m) for _, p, _, _, n, _, m, *_ in _query(ch, "quantized_tradeoff")}
    assert got == {p: (len(d), round(statistics.median(d), 3)) for p, d in deltas.items()}


def _v2_edges(rows: list[dict[str, str]]) -> dict[tuple[str, str], str]:
    edges = {}
    for r in rows:
        base = r["metadata_base_model"].strip().removesuffix("(Merge)").strip()
        merge = r["features_is_merged"] == "TRUE" or "merge" in r["model_type"]
        adapter = r["model_weight_type"] == "Adapter"
        if int(r["metadata_generation"]) > 0 and base not in ("", "Removed", r["model_name"]):
            edges[(r["model_name"], base)] = (
                "merge" if merge else "adapter" if adapter else "finetune"
            )
    return edges


def test_import_v2_and_score_deltas(ch: Any, import_board: ImportBoard) -> None:
    summary = import_board(V2)
    rows = _rows(V2)
    edges = _v2_edges(rows)
    assert summary.edges == len(edges)  # each edge once, however many rows give it
    stored = ch.query(
        "SELECT derivative_id, base_model_id, relation FROM leaderboard_edges FINAL"
    ).result_rows
    assert {(d, b): rel for d, b, rel in stored} == edges

    average = {}
    for r in rows:
        average[r["model_name"]] = max(
            average.get(r["model_name"], -1e9), float(r["model_average_score"])
        )
    by_relation: dict[str, list[float]] = {}
    for (child, base), relation in edges.items():
        if child in average and base in average:
            by_relation.setdefault(relation, []).append(average[child] - average[base])
    expected = {
        rel: (len(d), round(statistics.median(d), 3), round(sum(x > 0 for x in d) / len(d), 3))
        for rel, d in by_relation.items()
    }
    got = {
        g: (n, med, share)
        for _, g, n, med, _, share, *_ in _query(ch, "score_delta", by="relation")
    }
    assert got == expected
    by_base: dict[str, list[float]] = {}
    for (child, base), _ in edges.items():
        if child in average and base in average:
            by_base.setdefault(base, []).append(average[child] - average[base])
    got_base = {g: (n, med) for _, g, n, med, *_ in _query(ch, "score_delta", by="base")}
    assert got_base == {b: (len(d), round(statistics.median(d), 3)) for b, d in by_base.items()}
    # No Hub lineage was loaded here: a base is its own family root.
    assert {g: n for _, g, n, *_ in _query(ch, "score_delta", by="root")} == {
        b: n for b, (n, _) in got_base.items()
    }
    types = {g for _, g, *_ in _query(ch, "score_delta", by="type")}
    assert types <= {
        "pretrained",
        "continuously_pretrained",
        "fine_tuned",
        "chat",
        "merge",
        "other",
    }
    assert {b for _, b, *_ in _query(ch, "benchmark_delta")} == {
        "average",
        "ifeval",
        "bbh",
        "math",
        "gpqa",
        "musr",
        "mmlu_pro",
    }


def test_bad_leaderboard_input(
    ch: Any, import_board: ImportBoard, tmp_path: Path, clickhouse_url: str, database: str
) -> None:
    rows = _rows(V2)[:5]
    rows[2]["model_average_score"] = "not-a-number"
    broken = tmp_path / "v2.csv"
    with broken.open("w", newline="") as handle:
        out = csv.DictWriter(handle, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    summary = import_board(broken)
    assert summary.models == 4 and [line for line, _ in summary.rejected] == [4]  # CSV line
    assert ch.query(
        "SELECT reason FROM dead_letters WHERE stage = 'import.leaderboard'"
    ).result_rows == [("bad_number",)]
    unknown = tmp_path / "other.csv"
    unknown.write_text("a,b\n1,2\n")
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": database}
    done = hubwatch("import", "leaderboard", str(unknown), env=env)
    assert done.returncode == 1 and "neither the v1 nor the v2" in done.stderr


def test_tree_and_family_growth(
    ch: Any,
    writer: ClickHouseWriter,
    fixture_items: list[dict[str, Any]],
    fixture_depths: dict[str, int],
) -> None:
    # Newest first: nearly every child arrives before its parent.
    items = sorted(fixture_items, key=lambda i: i["createdAt"], reverse=True)
    forest = FamilyForest()
    for start in range(0, len(items), 10):
        events = [model_created_from_api(i, NOW) for i in items[start : start + 10]]
        writer.write(plan_batch(events, forest=forest).plans())
    child = "allura-org/Mistral-Small-24b-Sertraline-0304"
    tree = _query(ch, "tree", model=child)
    assert {m: d for m, _, _, d, _, _ in tree} == fixture_depths  # from a leaf: the whole tree
    assert Counter(d for *_, d, _, _ in tree) == {0: 1, 1: 22, 2: 36, 3: 8}
    assert tree[0][:4] == (BASE, "", "", 0) and tree[0][5] == 66

    created = {
        i["id"]: datetime.fromisoformat(i["createdAt"].replace("Z", "+00:00"))
        for i in fixture_items
    }
    ages = [created[m] - created[BASE] for m in fixture_depths if m != BASE]
    relations = Counter(relation for _, _, relation, depth, _, _ in tree if depth > 0)
    [(root, d7, d30, d90, total, *by_relation, depth)] = _query(ch, "family_growth")
    assert (root, total, depth) == (BASE, 66, 3)
    assert (d7, d30, d90) == tuple(sum(a <= timedelta(days=n) for a in ages) for n in (7, 30, 90))
    assert by_relation == [relations[r] for r in ("finetune", "quantized", "adapter", "merge")]


# Recent, on the hour: raw snapshots older than their 90-day TTL are dropped on insert.
SNAPSHOT_AT = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
# Hours before SNAPSHOT_AT, all-time downloads, likes.
SNAPSHOT_POINTS = [(50, 100, 10), (30, 400, 12), (23, 1000, 15), (0.5, 1600, 20), (0.2, 1700, 21)]


def engagement_snapshots(repo_id: str = "org/m") -> list[ModelSnapshot]:
    return [
        ModelSnapshot(repo_id, SNAPSHOT_AT - timedelta(hours=h), downloads_all_time=d, likes=likes)
        for h, d, likes in SNAPSHOT_POINTS
    ]


# The windows at the last snapshot, worked out by hand: hourly buckets, so "an hour ago"
# is the value last seen in an hour that started before the window opened (the 23 h point
# for 1 h: 11:00 holds the last two points); before the first point a window starts at it.
# Velocity: the 24-hour gain (from the 30 h point) over the 29.8 hours it covers; the day
# before, the 50 h to 30 h points: 300 downloads over 20 hours.
_VELOCITY = round(1300 / (30 - 0.2), 3)
EXPECTED_WINDOWS = {
    "likes_1h": 21 - 15,
    "likes_24h": 21 - 12,
    "likes_7d": 21 - 10,
    "downloads_1h": 1700 - 1000,
    "downloads_24h": 1700 - 400,
    "downloads_7d": 1700 - 100,
    "velocity_per_hour": _VELOCITY,
    "acceleration": round(_VELOCITY - (400 - 100) / (50 - 30), 3),
}


def test_engagement_windows(
    ch: Any, writer: ClickHouseWriter, clickhouse_url: str, database: str
) -> None:
    snaps = engagement_snapshots()
    live = RollingEngagement({})
    batch = plan_batch(snaps + snaps, engagement=live)  # delivered twice: counted once
    writer.write(batch.plans())
    at = snaps[-1].observed_at + timedelta(seconds=1)
    refresh(ch)
    [row] = _query(ch, "engagement", at=at.strftime("%Y-%m-%d %H:%M:%S"))
    repo, *windows = row
    assert repo == "org/m"
    assert dict(zip(EXPECTED_WINDOWS, windows, strict=True)) == EXPECTED_WINDOWS

    # Live, in the processor: the same numbers, after each snapshot.
    stored = ch.query("SELECT * FROM engagement_live FINAL").named_results()
    [latest] = list(stored)
    assert {k: latest[k] for k in EXPECTED_WINDOWS} == EXPECTED_WINDOWS
    assert latest["at"] == snaps[-1].observed_at and latest["likes"] == 21
    rows = batch.rows["engagement_live"]
    assert [r.likes_24h for r in rows] == [0, 2, 5, 8, 9]  # each as of its own snapshot

    # A later snapshot of another model: the same `at` is now in the past and the windows
    # come from engagement_hourly; at or after the newest snapshot, "now", they come from
    # engagement_live, as of each model's latest snapshot (hourly, two hours on, org/m
    # would have gained nothing in the last hour).
    later = ModelSnapshot("org/later", snaps[-1].observed_at + timedelta(hours=2), likes=1)
    writer.write(plan_batch([later], engagement=live).plans())
    past = {r[0]: r[1:] for r in _query(ch, "engagement", at=at.strftime("%Y-%m-%d %H:%M:%S"))}
    assert dict(zip(EXPECTED_WINDOWS, past["org/m"], strict=True)) == EXPECTED_WINDOWS
    assert "org/later" not in past  # not yet snapshotted then
    now = later.observed_at + timedelta(seconds=1)
    refresh(ch)
    current = {r[0]: r[1:] for r in _query(ch, "engagement", at=now.strftime("%Y-%m-%d %H:%M:%S"))}
    assert dict(zip(EXPECTED_WINDOWS, current["org/m"], strict=True)) == EXPECTED_WINDOWS
    assert set(current) == {"org/m", "org/later"}

    # Out of order: the older snapshots after the newer ones give the same final windows.
    shuffled = RollingEngagement({})
    for snap in reversed(snaps):
        shuffled.observe(snap)
    final = shuffled.rolling("org/m", snaps[-1].observed_at.timestamp())
    assert {k: getattr(final, k) for k in EXPECTED_WINDOWS} == EXPECTED_WINDOWS

    # An embedded restart: the windows come back from model_snapshots alone.
    restored = load_engagement(clickhouse_url, database)
    again = restored.rolling("org/m", snaps[-1].observed_at.timestamp())
    assert {k: getattr(again, k) for k in EXPECTED_WINDOWS} == EXPECTED_WINDOWS


def _model(repo_id: str, base: str | None = None, **fields: Any) -> ModelCreated:
    relation = {"base_models": (base,), "base_models_relation": "finetune"} if base else {}
    return ModelCreated(repo_id, NOW - timedelta(days=30), NOW, **relation, **fields)  # type: ignore[arg-type]


def test_breakouts(ch: Any, writer: ClickHouseWriter) -> None:
    base, fast, slow, slower, grandchild = "b/base", "f/fast", "s/slow", "s/slower", "g/grand"
    models = [
        _model(base),
        _model(fast, base),
        _model(slow, base),
        _model(slower, base),
        _model(grandchild, fast),
    ]
    # All-time downloads 25 h apart: velocity per hour = gain / 25 (the span covered).
    gains = {base: 240, fast: 2_400, slow: 120, slower: 24, grandchild: 2_400 * 3}
    t1 = datetime(2026, 3, 10, 12, tzinfo=UTC)
    snaps = [
        ModelSnapshot(m, at, downloads_all_time=d)
        for m, gain in gains.items()
        for at, d in ((t1 - timedelta(hours=25), 1_000), (t1, 1_000 + gain))
    ]
    writer.write(
        plan_batch(
            [*models, *snaps], forest=FamilyForest(), engagement=RollingEngagement({})
        ).plans()
    )
    velocity = {m: g / 25 for m, g in gains.items()}
    siblings = statistics.median([velocity[fast], velocity[slow], velocity[slower]])
    expected = [
        (
            grandchild,
            fast,
            velocity[grandchild] / max(velocity[fast], velocity[grandchild], 1),
        ),
        (fast, base, velocity[fast] / max(velocity[base], siblings, 1)),
    ]
    expected = sorted((e for e in expected if e[2] > 1), key=lambda e: -e[2])
    refresh(ch)
    found = _query(ch, "breakouts")
    assert [(r[0], r[1], r[8]) for r in found] == [(m, b, round(s, 3)) for m, b, s in expected]
    assert found[0][:2] == (fast, base) and found[0][6] == round(siblings, 3)


def test_young_model_velocity_over_the_span_it_covers(ch: Any, writer: ClickHouseWriter) -> None:
    """A derivative first seen 2 hours ago gained over 2 hours, not 24: the live table and
    the query divide by the span covered, and so it breaks out against its base."""
    base, young, older = "b/base", "y/young", ("s/one", "s/two")
    now = datetime(2026, 3, 10, 12, 5, tzinfo=UTC)
    # (minutes before now, all-time downloads)
    points = {
        base: [(25 * 60, 5_000), (23 * 60, 5_100), (0, 5_600)],
        young: [(120, 0), (95, 40), (30, 150), (0, 200)],
        **{m: [(25 * 60, 0), (0, 50)] for m in older},
    }
    snaps = [
        ModelSnapshot(m, now - timedelta(minutes=ago), downloads_all_time=d)
        for m, series in points.items()
        for ago, d in series
    ]
    live = RollingEngagement({})
    batch = plan_batch(
        [_model(base), *(_model(m, base) for m in (young, *older)), *snaps],
        forest=FamilyForest(),
        engagement=live,
    )
    writer.write(batch.plans())

    # Plain Python: the gain since the first point (young) or the last point more than a
    # day old (base), per hour between those points; at least 1 hour.
    def velocity(series: list[tuple[int, int]]) -> float:
        before = [p for p in series if p[0] > 24 * 60]
        start = before[-1] if before else series[0]
        end = series[-1]
        return round((end[1] - start[1]) / max(1.0, (start[0] - end[0]) / 60), 3)

    expected = {m: velocity(series) for m, series in points.items()}
    assert expected[young] == 100.0 and expected[base] == 24.0
    stored = ch.query("SELECT repo_id, velocity_per_hour FROM engagement_live FINAL")
    assert dict(stored.result_rows) == expected
    at = (now + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    refresh(ch)
    queried = {r[0]: r[7] for r in _query(ch, "engagement", at=at)}
    assert queried == expected
    # Once another model is snapshotted later, the same `at` is in the past: the query
    # computes it from engagement_hourly, over the same spans.
    later = ModelSnapshot("o/later", now + timedelta(hours=3), downloads_all_time=1)
    writer.write(plan_batch([later], engagement=live).plans())
    past = {r[0]: r[7] for r in _query(ch, "engagement", at=at)}
    assert past == expected
    # 100 an hour against its base's 24 and its siblings' 2: a breakout (200 / 24 h, 8.3
    # an hour, would not have been).
    refresh(ch)
    [found] = _query(ch, "breakouts")
    assert (found[0], found[1], found[8]) == (young, base, round(100 / 24, 3))


def test_card_scores_compare_derivative_and_base(ch: Any, writer: ClickHouseWriter) -> None:
    def card(**scores: float) -> dict[str, Any]:
        results = [
            {
                "dataset": {"name": f"{name.upper()} (5-Shot)"},
                "metrics": [{"type": "acc", "value": v}],
            }
            for name, v in scores.items()
        ]
        return {"model-index": [{"name": "m", "results": results}]}

    items = [
        {"id": "b/base", "cardData": card(gsm8k=40.0, arc=60.0)},
        {
            "id": "c/tuned",
            "cardData": card(gsm8k=55.5, arc=58.0, mmlu=70.0),
            "baseModels": {"relation": "finetune", "models": [{"id": "b/base"}]},
        },
        {
            "id": "c/other",
            "cardData": card(gsm8k=41.0),
            "baseModels": {"relation": "finetune", "models": [{"id": "b/base"}]},
        },
    ]
    writer.write(plan_batch(model_created_from_api(i, NOW) for i in items).plans())
    rows = {(board, bench): rest for board, bench, *rest in _query(ch, "benchmark_delta")}
    # Deltas derivative minus base, only where both report the same dataset and metric.
    assert rows == {
        ("card", "arc/acc"): [1, -2.0, 0.0],
        ("card", "gsm8k/acc"): [2, statistics.median([15.5, 1.0]), 1.0],
    }


def test_size_change(ch: Any, writer: ClickHouseWriter) -> None:
    base = {
        "id": "m/Small-24B",
        "safetensors": {"total": 24_000_000_000},
        "config": {"architectures": ["MistralForCausalLM"]},
    }

    def child(name: str, relation: str, **item: Any) -> dict[str, Any]:
        bases = {"relation": relation, "models": [{"id": base["id"]}]}
        return {"id": name, "baseModels": bases, "config": base["config"], **item}

    items = [
        child("q/Small-24B-GGUF", "quantized", siblings=[{"rfilename": "m.Q4_K_M.gguf"}]),
        child("q/Small-24B-Q8-GGUF", "quantized", siblings=[{"rfilename": "m.Q8_0.gguf"}]),
        child("f/Small-tuned", "finetune", safetensors={"total": 24_000_000_000}),
        child("a/Small-lora", "adapter"),  # no size: not an edge with a ratio
    ]
    # Children first: the base's size reaches their rows when it arrives.
    events = [model_created_from_api(i, NOW) for i in [*items, base]]
    writer.write(plan_batch(events, forest=FamilyForest()).plans())
    sizes = {e.repo_id: model_size(e) for e in events}
    full = sizes[base["id"]]
    quantized = [sizes[i["id"]] for i in items[:2]]
    rows = {r[0]: r[1:] for r in _query(ch, "size_change", by="relation")}
    assert rows == {
        "quantized": (
            2,
            round(statistics.median(q.parameters / full.parameters for q in quantized), 3),
            round(statistics.median(q.size_bytes / full.size_bytes for q in quantized), 3),
            1.0,
            0,
        ),
        "finetune": (1, 1.0, 1.0, 0.0, 0),
    }
    assert rows["quantized"][2] == round((0.25 + 0.5) / 2, 3)  # 4 and 8 bits of 16
    assert _query(ch, "size_change", by="root") == [(base["id"], 3, 1.0, 0.5, 0.667, 0)]
    assert [r[0] for r in _query(ch, "size_change", by="architecture")] == ["MistralForCausalLM"]


def test_community_activity(ch: Any, writer: ClickHouseWriter) -> None:
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    models = [
        _model("b/base", architectures=("MistralForCausalLM",), author="b"),
        _model("x/child", "b/base", architectures=("MistralForCausalLM",), author="x"),
        _model("y/other", architectures=("LlamaForCausalLM",), author="y", github_repos=("o/r",)),
    ]
    ago = [timedelta(minutes=30), timedelta(hours=5), timedelta(days=3), timedelta(days=9)]
    events: list[Any] = [
        ModelCommit("x/child", f"c{i}", at - a, title="t") for i, a in enumerate(ago)
    ]
    h = timedelta(hours=1)
    events += [
        # A discussion opened and closed the same day, a pull request opened and merged.
        ModelDiscussion("b/base", 1, "GGUF?", "open", False, at - ago[1], changed_at=at - ago[1]),
        ModelDiscussion("b/base", 1, "GGUF?", "closed", False, at - ago[1], changed_at=at - h),
        ModelDiscussion("b/base", 2, "Fix", "open", True, at - ago[2], changed_at=at - ago[2]),
        ModelDiscussion("b/base", 2, "Fix", "merged", True, at - ago[2], changed_at=at - h),
        GithubCommit("o/r", "s1", at - ago[0]),
        # An issue edited three times is one issue opened.
        *(
            GithubIssue("o/r", 7, "bug", "open", False, at - ago[2], at - ago[2] + e * h)
            for e in range(3)
        ),
        # Opened before the window, closed, then reopened inside it.
        GithubIssue(
            "o/r",
            9,
            "old",
            "closed",
            False,
            at - ago[3],
            at - ago[1],
            closed_at=at - ago[1],
            state_reason="completed",
        ),
        GithubIssue(
            "o/r", 9, "old", "open", False, at - ago[3], at - ago[0], state_reason="reopened"
        ),
        GithubIssue(
            "o/r",
            8,
            "pr",
            "closed",
            True,
            at - ago[1],
            at - h,
            closed_at=at - h,
            merged_at=at - h,
        ),
        GithubRelease("o/r", 1, "v1", at - ago[1]),
        GithubRelease("o/unlinked", 2, "v1", at - ago[1]),  # no model links it
    ]
    writer.write(plan_batch([*models, *events, *events], forest=FamilyForest()).plans())

    def activity(by: str) -> dict[str, tuple[Any, ...]]:
        rows = _query(ch, "community_activity", by=by, at=at.strftime("%Y-%m-%d %H:%M:%S"))
        return {r[0]: r[1:] for r in rows}

    # hub commits 1h/24h/7d; discussions opened 24h/7d, closed; Hub reopened; Hub PRs
    # opened, merged; GitHub commits 24h/7d; issues opened, closed; GitHub reopened; GitHub
    # PRs opened, merged; releases; distinct items in 7 days.
    child = (1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3)
    base = (0, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2)
    other = (0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 5)
    assert activity("model") == {"x/child": child, "b/base": base, "y/other": other}
    family = tuple(c + b for c, b in zip(child, base, strict=True))
    assert activity("family") == {"b/base": family, "y/other": other}
    assert activity("org") == {"x": child, "b": base, "y": other}
    assert activity("architecture") == {"MistralForCausalLM": family, "LlamaForCausalLM": other}
    assert list(activity("model")) == ["y/other", "x/child", "b/base"]
    top = _query(ch, "community_activity", by="model", limit="1", at=str(at)[:19])
    assert [r[0] for r in top] == ["y/other"]
    with pytest.raises(Exception, match="by must be model, family, org or architecture"):
        activity("planet")


def test_every_canned_query_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name, query in canned_queries().items():
        assert f"`{name}`" in readme, name
        assert query.description, name


def test_cli_import_and_query(clickhouse_url: str, database: str) -> None:
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": database}
    imported = hubwatch("import", "leaderboard", str(V2), env=env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("open_llm_v2: 7000 scores for 997 models")
    listed = hubwatch("query", "--list", env=env)
    assert all(name in listed.stdout for name in canned_queries())
    needs = hubwatch("query", "score_delta", env=env)
    assert needs.returncode == 1 and "--param by" in needs.stderr
    answer = hubwatch("query", "score_delta", "--param", "by=relation", "--format", "TSV", env=env)
    assert answer.returncode == 0 and answer.stdout.startswith("open_llm_v2\tfinetune\t")
