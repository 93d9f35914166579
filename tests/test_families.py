"""Family trees kept incrementally: in any arrival order (oldest first, as the live poller
publishes; newest first; shuffled), across a restart, with cycles, moves and stale events,
checked against trees computed here from the generator's own lineage arrays and from the
shared crawl's CSV (not from hubwatch's parsing)."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubwatch.queries import load
from hubwatch.replay import load_fixture_csv
from hubwatch.replay.generate import _ARCHITECTURES, GeneratedSource
from hubwatch.summaries import refresh
from processors.families import FamilyForest, FamilyRow, Size
from processors.lineage import RELATIONS
from processors.pipeline import plan_batch
from processors.restore import load_forest
from processors.sinks import ClickHouseWriter
from producers.hub import model_created_from_api
from tests.conftest import FIXTURE

NOW = datetime(2026, 1, 1, tzinfo=UTC)
_GENERATED = ("", "adapter", "finetune", "quantized", "merge")  # the generator's codes
ORDERS = ("oldest_first", "newest_first", "shuffled")
"The live poller publishes oldest first; a backfill walks newest first; Kafka mixes them."


def _order(n: int, how: str, seed: int = 1) -> list[int]:
    """Indices in arrival order (the generator creates model i before model i + 1)."""
    order = list(range(n))
    if how == "newest_first":
        order.reverse()
    elif how == "shuffled":
        random.Random(seed).shuffle(order)
    return order


def _truth(gen: GeneratedSource) -> dict[str, tuple[str, int, Counter[str]]]:
    """model -> (root, depth, descendants by relation), walking the generator's arrays.
    Every model is a member: one with no base and no derivative is a family of one."""
    members = set(range(gen.n))
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


def _newest(rows: list[FamilyRow]) -> dict[str, FamilyRow]:
    """model -> its row as FINAL keeps it."""
    newest: dict[tuple[str, str], FamilyRow] = {}
    for row in rows:
        key = (row.root_id, row.model_id)
        if key not in newest or row.version >= newest[key].version:
            newest[key] = row
    return {r.model_id: r for r in newest.values() if not r.is_deleted}


def _facts(gen: GeneratedSource) -> dict[str, tuple[datetime, str]]:
    """model -> (created_at, architecture), as the generator makes them."""
    return {
        gen.repo_id(i): (
            datetime.fromisoformat(gen.created_at(i)),
            _ARCHITECTURES[i % len(_ARCHITECTURES)][0],
        )
        for i in range(gen.n)
    }


@pytest.mark.parametrize("how", [*ORDERS, "shuffled_again"])
def test_any_arrival_order_gives_the_same_trees(how: str) -> None:
    gen = GeneratedSource(3_000, seed=7)
    truth = _truth(gen)
    assert max(depth for _, depth, _ in truth.values()) >= 3  # deep enough to matter
    order = _order(gen.n, how.removesuffix("_again"), seed=2 if how.endswith("again") else 1)
    forest, rows = FamilyForest(), []
    events = _events(gen, order)
    for start in range(0, len(events), 97):
        rows += plan_batch(events[start : start + 97], forest=forest).rows["model_families"]
    assert _as_table(rows) == truth
    some = next(m for m, (_, depth, _) in truth.items() if depth >= 3)
    assert forest.place(some) == truth[some][:2]
    # Every member keeps its own facts, a base seen before its derivatives too, and each
    # row carries its primary base's size.
    table = _newest(rows)
    assert {m: (r.created_at, r.architecture) for m, r in table.items()} == _facts(gen)
    for row in table.values():
        if row.parent_id:
            base = table[row.parent_id]
            assert (row.base_parameters, row.base_size_bytes) == (base.parameters, base.size_bytes)


@pytest.mark.parametrize("how", ["oldest_first", "newest_first"])
def test_cycles_moves_and_stale_metadata(how: str) -> None:
    forest = FamilyForest()
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    base_size = Size(7_000_000_000, 14_000_000_000, "MistralForCausalLM")
    arrivals: list[tuple[str, list[tuple[str, str]], Size | None]] = [
        ("a/base", [], base_size),
        ("a/mid", [("a/base", "finetune")], None),
        ("a/leaf", [("a/mid", "quantized")], None),
        ("b/other", [("b/root", "adapter")], None),
    ]
    if how == "newest_first":
        arrivals.reverse()
    for model, bases, size in arrivals:
        forest.observe(model, bases, t0, t0, size)
    first = {r.model_id: r for r in forest.drain(1)}
    assert (first["a/leaf"].root_id, first["a/leaf"].depth) == ("a/base", 2)
    assert _counts(first["a/base"]) == Counter(finetune=1, quantized=1)
    # The base keeps what it is, whichever came first; its derivative carries its size.
    assert (first["a/base"].created_at, first["a/base"].parameters) == (t0, 7_000_000_000)
    assert (first["a/mid"].base_parameters, first["a/mid"].base_size_bytes) == base_size[:2]

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


@pytest.mark.parametrize("how", ORDERS)
def test_families_in_clickhouse_across_a_restart(
    ch: Any, clickhouse_url: str, database: str, how: str
) -> None:
    gen = GeneratedSource(2_000, seed=3)
    truth = _truth(gen)
    events = _events(gen, _order(gen.n, how, seed=5))
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
    # Facts survive the restart too: a base seen before it, a derivative after.
    facts = ch.query("SELECT model_id, created_at, architecture FROM model_families FINAL")
    assert {m: (c, a) for m, c, a in facts.result_rows} == _facts(gen)
    unmatched = ch.query(
        "SELECT count() FROM model_families AS d FINAL"
        " JOIN (SELECT model_id, parameters FROM model_families FINAL) AS b"
        " ON d.parent_id = b.model_id"
        " WHERE NOT (d.base_parameters <=> b.parameters)"
    )
    assert unmatched.result_rows == [(0,)]

    leaf = max(truth, key=lambda m: truth[m][1])
    root = truth[leaf][0]
    tree = ch.query(load("tree").sql, parameters={"model": leaf}).result_rows
    family = {m for m, (r, _, _) in truth.items() if r == root}
    assert {row[0] for row in tree} == family
    assert tree[0][0] == root and tree[0][5] == sum(truth[root][2].values())


def crawl_answers() -> tuple[str, datetime, int, list[datetime], int]:
    """The shared crawl's own answer, read from its CSV columns and metadata (not through
    hubwatch): the root, its creation and parameters, its descendants' creations, its
    depth-1 count."""
    csv.field_size_limit(1 << 30)
    with FIXTURE.open(newline="") as handle:
        rows = list(csv.DictReader(handle))

    def created(row: dict[str, str]) -> datetime:
        return datetime.fromisoformat(json.loads(row["metadata"])["created_at"])

    [root] = [r for r in rows if r["depth"] == "0"]
    born = [created(r) for r in rows if r["depth"] != "0"]
    parameters = json.loads(root["metadata"])["safetensors"]["total"]
    depth_one = sum(r["depth"] == "1" for r in rows)
    return root["model_id"], created(root), parameters, born, depth_one


@pytest.mark.parametrize("how", ["oldest_first", "newest_first"])
def test_mistral_tree_answers_in_both_orders(
    ch: Any, clickhouse_url: str, database: str, how: str
) -> None:
    """The seed study's family answers on the shared crawl, with a restart half way: the
    live order (oldest first) sees every base before its derivatives."""
    events = [model_created_from_api(item, NOW) for item in load_fixture_csv(FIXTURE)]
    events.sort(key=lambda e: e.created_at, reverse=how == "newest_first")
    writer = ClickHouseWriter(lambda: ch, database)
    forest = load_forest(clickhouse_url, database)
    half = len(events) // 2
    for start in range(0, half, 10):
        writer.write(plan_batch(events[start : min(start + 10, half)], forest=forest).plans())
    forest = load_forest(clickhouse_url, database)
    for start in range(half, len(events), 10):
        writer.write(plan_batch(events[start : start + 10], forest=forest).plans())

    root, root_created, root_parameters, born, depth_one = crawl_answers()
    within = [sum(c <= root_created + timedelta(days=d) for c in born) for d in (7, 30, 90)]
    assert within == [2, 45, 66]  # the crawl's answer, as the issue quotes it
    refresh(ch)
    growth = ch.query(load("family_growth").sql).result_rows
    assert [row[:5] for row in growth] == [(root, *within, len(born))]

    by_base = ch.query(load("size_change").sql, parameters={"by": "base"}).result_rows
    assert depth_one == 22
    assert {group: edges for group, edges, *_ in by_base}[root] == depth_one
    root_row = ch.query(
        "SELECT created_at, parameters, architecture FROM model_families FINAL"
        " WHERE model_id = {m:String}",
        parameters={"m": root},
    ).result_rows
    assert root_row == [(root_created, root_parameters, "MistralForCausalLM")]
