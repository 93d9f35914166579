"""Family trees kept incrementally: in any arrival order, across a restart, with cycles,
moves and stale events, checked against trees computed here from the generator's own
lineage arrays (not from hubwatch's parsing)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from hubwatch.queries import load
from hubwatch.replay.generate import GeneratedSource
from processors.families import FamilyForest, FamilyRow
from processors.lineage import RELATIONS
from processors.pipeline import plan_batch
from processors.restore import load_forest
from processors.sinks import ClickHouseWriter
from producers.hub import model_created_from_api

NOW = datetime(2026, 1, 1, tzinfo=UTC)
_GENERATED = ("", "adapter", "finetune", "quantized", "merge")  # the generator's codes


def _truth(gen: GeneratedSource) -> dict[str, tuple[str, int, Counter[str]]]:
    """model -> (root, depth, descendants by relation), walking the generator's arrays."""
    members = {i for i in range(gen.n) if gen.parent[i] >= 0}
    members |= {gen.parent[i] for i in members}
    counts: dict[int, Counter[str]] = {i: Counter() for i in members}
    out = {}
    for i in members:
        node, depth = i, 0
        while gen.parent[node] >= 0:
            node, depth = gen.parent[node], depth + 1
            counts[node][_GENERATED[gen.relation[i]]] += 1
        out[gen.repo_id(i)] = (gen.repo_id(node), depth)
    return {m: (root, depth, counts[gen.index_of(m)]) for m, (root, depth) in out.items()}  # type: ignore[index]


def _as_table(rows: list[FamilyRow]) -> dict[str, tuple[str, int, Counter[str]]]:
    """What ReplacingMergeTree(version, is_deleted) FINAL keeps of these rows."""
    newest: dict[tuple[str, str], FamilyRow] = {}
    for row in rows:
        key = (row.root_id, row.model_id)
        if key not in newest or row.version >= newest[key].version:
            newest[key] = row
    table = {}
    for row in newest.values():
        if not row.is_deleted:
            assert row.model_id not in table, f"{row.model_id} in two families"
            table[row.model_id] = (row.root_id, row.depth, _counts(row))
    return table


def _counts(row: FamilyRow) -> Counter[str]:
    return _by_relation((row.finetunes, row.quantized, row.adapters, row.merges))


def _by_relation(values: tuple[int, ...]) -> Counter[str]:
    return Counter({r: v for r, v in zip(RELATIONS, values, strict=True) if v})


def _events(gen: GeneratedSource, order: list[int]) -> list[Any]:
    return [model_created_from_api(gen.item(i), NOW) for i in order]


def test_any_arrival_order_gives_the_same_trees() -> None:
    gen = GeneratedSource(3_000, seed=7)
    truth = _truth(gen)
    assert max(depth for _, depth, _ in truth.values()) >= 3  # deep enough to matter
    for seed in (1, 2):
        order = list(range(gen.n))
        random.Random(seed).shuffle(order)
        forest, rows = FamilyForest(), []
        events = _events(gen, order)
        for start in range(0, len(events), 97):
            rows += plan_batch(events[start : start + 97], forest=forest).rows["model_families"]
        assert _as_table(rows) == truth
        some = next(m for m, (_, depth, _) in truth.items() if depth >= 3)
        assert forest.place(some) == truth[some][:2]


def test_cycles_moves_and_stale_metadata() -> None:
    forest = FamilyForest()
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    forest.observe("a/leaf", [("a/mid", "quantized")], t0, t0)
    forest.observe("a/mid", [("a/base", "finetune")], t0, t0)
    forest.observe("b/other", [("b/root", "adapter")], t0, t0)
    first = {r.model_id: r for r in forest.drain(1)}
    assert (first["a/leaf"].root_id, first["a/leaf"].depth) == ("a/base", 2)
    assert _counts(first["a/base"]) == Counter(finetune=1, quantized=1)

    # Bad metadata: the base claims its grandchild as base. Refused and flagged.
    forest.observe("a/base", [("a/leaf", "merge")], t0, t0)
    [flagged] = forest.drain(2)
    assert flagged.model_id == "a/base" and flagged.cycle and flagged.depth == 0
    assert forest.place("a/leaf") == ("a/base", 2)

    # An edit moves a/mid (and a/leaf with it) into b's family: deletions under the old root.
    t1 = t0 + timedelta(days=1)
    forest.observe("a/mid", [("b/other", "merge")], None, t1)
    moved = forest.drain(3)
    table = _as_table([*first.values(), *moved])
    assert table["a/leaf"][:2] == ("b/root", 3)
    assert table["a/base"] == ("a/base", 0, Counter())
    assert table["b/root"][2] == Counter(adapter=1, merge=1, quantized=1)
    assert {(r.root_id, r.model_id) for r in moved if r.is_deleted} == {
        ("a/base", "a/mid"),
        ("a/base", "a/leaf"),
    }

    # The upload event, older than that edit, arrives late: it does not move a/mid back.
    forest.observe("a/mid", [("a/base", "finetune")], t0, t0)
    assert forest.place("a/mid") == ("b/root", 2)
    assert forest.parent("a/mid") == "b/other"


def test_families_in_clickhouse_across_a_restart(
    ch: Any, clickhouse_url: str, database: str
) -> None:
    gen = GeneratedSource(2_000, seed=3)
    truth = _truth(gen)
    order = list(range(gen.n))
    random.Random(5).shuffle(order)
    events = _events(gen, order)
    writer = ClickHouseWriter(lambda: ch, database)
    forest = load_forest(clickhouse_url, database)
    assert len(forest) == 0
    for start in range(0, 1_000, 250):
        writer.write(plan_batch(events[start : start + 250], forest=forest).plans())
    # A new processor: the forest comes back from ClickHouse alone.
    forest = load_forest(clickhouse_url, database)
    for start in range(1_000, len(events), 250):
        writer.write(plan_batch(events[start : start + 250], forest=forest).plans())

    stored = ch.query(
        "SELECT model_id, root_id, depth, finetunes, quantized, adapters, merges"
        " FROM model_families FINAL"
    ).result_rows
    assert {m: (root, depth, _by_relation(counts)) for m, root, depth, *counts in stored} == truth

    leaf = max(truth, key=lambda m: truth[m][1])
    root = truth[leaf][0]
    tree = ch.query(load("tree").sql, parameters={"model": leaf}).result_rows
    family = {m for m, (r, _, _) in truth.items() if r == root}
    assert {row[0] for row in tree} == family
    assert tree[0][0] == root and tree[0][5] == sum(truth[root][2].values())
