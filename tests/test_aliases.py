"""One canonical identity across renames, transfers and case: derivatives naming a renamed
base's old id, or another casing of its id, land in the canonical base's family in any
arrival order; the producers ask the Hub once per unknown id (case-only differences not at
all); and score comparisons count each pair once, at the canonical id. Expected values are
written out here from the scenario, not computed by hubwatch."""

from __future__ import annotations

import asyncio
import random
import signal
import statistics
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hubwatch.events import ModelAlias, ModelCreated
from hubwatch.queries import load
from hubwatch.replay.server import ReplayServer
from hubwatch.replay.world import HubWorld, ListSource
from hubwatch.summaries import refresh
from processors.aliases import Aliases
from processors.families import FamilyForest
from processors.pipeline import plan_batch
from processors.restore import load_aliases, load_forest
from processors.sinks import ClickHouseWriter
from producers._http import make_client
from producers.checkpoint import CheckpointStore
from producers.hub import model_created_from_api
from producers.hub_aliases import AliasPoller
from producers.hub_edits import HubEditsPoller
from producers.hub_uploads import HubUploadsPoller
from producers.publish import QueuePublisher
from producers.state import StateStore
from producers.tracking import Tracker
from tests.conftest import hubwatch, kcat, poll_draining, spawn, wait_until
from tests.test_families import _as_table

CANONICAL = "meta-llama/Llama-3.1-8B"
OLD = "meta-llama/Meta-Llama-3.1-8B"  # the name before the rename
CASED = "meta-llama/llama-3.1-8b"  # the canonical id in other letters
GHOST = "ghost/Never-There"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _item(repo_id: str, created: datetime, base: str | None = None, relation: str = "finetune"):
    item: dict[str, Any] = {
        "id": repo_id,
        "author": repo_id.split("/")[0],
        "createdAt": created.isoformat().replace("+00:00", "Z"),
        "lastModified": created.isoformat().replace("+00:00", "Z"),
        "tags": [],
    }
    if base is not None:
        item["tags"] = [f"base_model:{base}", f"base_model:{relation}:{base}"]
        item["cardData"] = {"base_model": base}
    return item


def _scenario(start: datetime) -> list[dict[str, Any]]:
    """The canonical base, a child naming each of its names, and a grandchild."""
    at = [start + timedelta(minutes=n) for n in range(6)]
    return [
        _item(CANONICAL, at[0]),
        _item("a/ft-old-name", at[1], OLD),
        _item("b/ft-canonical", at[2], CANONICAL),
        _item("c/ft-other-case", at[3], CASED),
        _item("d/ft-old-name-GGUF", at[4], "a/ft-old-name", "quantized"),
        _item("e/ft-of-a-ghost", at[5], GHOST),
    ]


def _events() -> list[Any]:
    models = [model_created_from_api(i, NOW) for i in _scenario(NOW - timedelta(days=30))]
    aliases = [
        ModelAlias(OLD, CANONICAL, "redirect", NOW),
        ModelAlias(CASED, CANONICAL, "case", NOW),
    ]
    return models + aliases


# What the trees must hold, from the scenario above: every child of any name of the base
# under the canonical id; the ghost's family apart.
FAMILIES = {
    CANONICAL: (CANONICAL, 0, Counter(finetune=3, quantized=1)),
    "a/ft-old-name": (CANONICAL, 1, Counter(quantized=1)),
    "b/ft-canonical": (CANONICAL, 1, Counter()),
    "c/ft-other-case": (CANONICAL, 1, Counter()),
    "d/ft-old-name-GGUF": (CANONICAL, 2, Counter()),
    GHOST: (GHOST, 0, Counter(finetune=1)),
    "e/ft-of-a-ghost": (GHOST, 1, Counter()),
}


def test_every_name_of_a_base_lands_in_one_family_in_any_order() -> None:
    events = _events()
    count = len(events)
    # Aliases first and last, oldest and newest first, and 3,000 shuffles besides.
    orders = [tuple(range(count)), tuple(reversed(range(count)))]
    orders += [(count - 2, count - 1, *range(count - 2)), (*range(count - 3, -1, -1), 6, 7)]
    rng = random.Random(9)
    orders += [tuple(rng.sample(range(count), count)) for _ in range(3000)]
    for n, order in enumerate(orders):
        forest, aliases, rows, edges = FamilyForest(), Aliases(), [], []
        size = 1 + n % 3  # aliases learned within a batch and across batches
        ordered = [events[i] for i in order]
        for start in range(0, len(ordered), size):
            batch = plan_batch(ordered[start : start + size], forest=forest, aliases=aliases)
            rows += batch.rows["model_families"]
            edges += batch.edges
        assert _as_table(rows) == FAMILIES, order
        # Edges that arrived after their base's alias name the canonical id.
        alias_at = {e.alias_id: ordered.index(e) for e in ordered if isinstance(e, ModelAlias)}
        for edge in edges:
            named = next(
                e
                for e in ordered
                if isinstance(e, ModelCreated) and e.repo_id == edge.derivative_id
            )
            if edge.base_model_id in alias_at:
                assert ordered.index(named) < alias_at[edge.base_model_id], (order, edge)


def test_alias_chains_are_kept_one_hop_deep() -> None:
    aliases = Aliases()
    batch = plan_batch(
        [
            ModelAlias("x/first", "x/second", "redirect", NOW),
            ModelAlias("x/second", "x/third", "redirect", NOW),
            ModelAlias("X/FIRST", "x/first", "case", NOW),
        ],
        aliases=aliases,
    )
    newest = {row.alias_id: row.canonical_id for row in batch.rows["model_aliases"]}
    assert newest == {"x/first": "x/third", "x/second": "x/third", "X/FIRST": "x/third"}
    assert {aliases.canonical(a) for a in ("x/first", "x/second", "X/FIRST")} == {"x/third"}


@pytest.fixture
def writer(clickhouse_url: str, database: str) -> Any:
    from hubwatch.clickhouse import connect

    w = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    yield w
    w.close()


BOARD = [  # (model as the board names it, average): the base only under its old name
    (OLD, 60.0),
    ("a/ft-old-name", 65.0),
    ("b/ft-canonical", 58.0),
    ("c/ft-other-case", 70.0),
]


@pytest.mark.parametrize("aliases_first", [True, False])
def test_score_delta_counts_each_pair_once_at_the_canonical_id(
    ch: Any, writer: Any, clickhouse_url: str, database: str, aliases_first: bool
) -> None:
    events = _events()
    models, learned = events[:-2], events[-2:]
    ordered = learned + models if aliases_first else models + learned
    forest, aliases = FamilyForest(), Aliases()
    half = len(ordered) // 2
    writer.write(plan_batch(ordered[:half], forest=forest, aliases=aliases).plans())
    # A restart: both maps come back from ClickHouse.
    forest, aliases = load_forest(clickhouse_url, database), load_aliases(clickhouse_url, database)
    writer.write(plan_batch(ordered[half:], forest=forest, aliases=aliases).plans())

    ch.insert(
        "leaderboard_scores",
        [
            ("open_llm_v2", m, "bfloat16", "average", s, "fine-tuned", "LlamaForCausalLM", 8.0)
            for m, s in BOARD
        ],
        column_names=[
            "board",
            "model_id",
            "precision",
            "benchmark",
            "score",
            "model_type",
            "architecture",
            "params_b",
        ],
    )
    # The board's own base field names the old id for a pair the Hub has too.
    ch.insert(
        "leaderboard_edges",
        [("b/ft-canonical", OLD, "finetune", 1, "open_llm_v2")],
        column_names=["derivative_id", "base_model_id", "relation", "generation", "board"],
    )

    # Independently: the pairs are the three children of the base, at its canonical id.
    score = dict(BOARD)
    deltas = [
        score[child] - score[OLD]
        for child in ("a/ft-old-name", "b/ft-canonical", "c/ft-other-case")
    ]
    expected = (
        CANONICAL,
        3,
        round(statistics.median(deltas), 3),
        round(statistics.mean(deltas), 3),
        round(sum(d > 0 for d in deltas) / 3, 3),
    )
    refresh(ch)
    for by in ("base", "root"):
        got = ch.query(load("score_delta").sql, parameters={"by": by}).result_rows
        # board first; then hub_relations (all three pairs the Hub's) and disputed (none)
        assert [tuple(r) for r in got] == [("open_llm_v2", *expected, 3, 0)], by
    per_benchmark = ch.query(load("benchmark_delta").sql).result_rows
    assert [(b, bench, n) for b, bench, n, *_ in per_benchmark] == [("open_llm_v2", "average", 3)]

    family = ch.query(
        "SELECT model_id, root_id, depth, finetunes, quantized FROM model_families FINAL"
    ).result_rows
    assert {
        m: (r, d, Counter(finetune=f, quantized=q) - Counter()) for m, r, d, f, q in family
    } == {m: (root, depth, +counts) for m, (root, depth, counts) in FAMILIES.items()}
    assert set(
        ch.query("SELECT alias_id, canonical_id, resolved_by FROM model_aliases FINAL").result_rows
    ) == {(OLD, CANONICAL, "redirect"), (CASED, CANONICAL, "case")}


@pytest.mark.parametrize("split", ["one batch", "aliases in a later batch"])
def test_old_name_edges_move_to_the_canonical_id_when_the_alias_arrives(
    ch: Any, writer: Any, split: str
) -> None:
    """Edges written under an old name before its alias arrived are retracted there and
    written at the canonical id (relation, source and version kept): lineage_edges FINAL
    then holds exactly the scenario's edges at canonical ids, whatever the batching."""
    events = _events()
    models, learned = events[:-2], events[-2:]
    forest, aliases = FamilyForest(), Aliases()
    if split == "one batch":
        writer.write(plan_batch(models + learned, forest=forest, aliases=aliases).plans())
    else:
        writer.write(plan_batch(models, forest=forest, aliases=aliases).plans())
        writer.write(plan_batch(learned, forest=forest, aliases=aliases).plans())
    # From the scenario: each child's one base, at its canonical id, as its tags name it.
    expected = {
        ("a/ft-old-name", CANONICAL, "finetune", "tags", 0),
        ("b/ft-canonical", CANONICAL, "finetune", "tags", 0),
        ("c/ft-other-case", CANONICAL, "finetune", "tags", 0),
        ("d/ft-old-name-GGUF", "a/ft-old-name", "quantized", "tags", 0),
        ("e/ft-of-a-ghost", GHOST, "finetune", "tags", 0),
    }
    edges = ch.query(
        "SELECT derivative_id, base_model_id, toString(relation), toString(source), is_deleted "
        "FROM lineage_edges FINAL"
    ).result_rows
    assert set(edges) == expected
    # The moved edge keeps the version of the metadata it came from.
    created = {i["id"]: i["lastModified"] for i in _scenario(NOW - timedelta(days=30))}
    [(version,)] = ch.query(
        "SELECT version FROM lineage_edges FINAL WHERE derivative_id = 'a/ft-old-name'"
    ).result_rows
    at = datetime.fromisoformat(created["a/ft-old-name"].replace("Z", "+00:00"))
    assert version == int(at.timestamp()) * 10**9
    # Moving again (a redelivered alias) changes nothing.
    writer.write(plan_batch(learned, forest=forest, aliases=aliases).plans())
    assert set(ch.query(
        "SELECT derivative_id, base_model_id, toString(relation), toString(source), is_deleted "
        "FROM lineage_edges FINAL"
    ).result_rows) == expected  # fmt: skip


def test_size_change_reads_board_sizes_at_the_canonical_id(ch: Any, writer: Any) -> None:
    """A board that names a base by an old name sizes it: size_change maps the board's names
    through model_aliases. The ghost base has no size on the Hub (none in its name either),
    so only the board's count, under its old name, gives its children a ratio."""
    ghost_old = "ghost/Old-Name"
    events = [*_events(), ModelAlias(ghost_old, GHOST, "redirect", NOW)]
    writer.write(plan_batch(events, forest=FamilyForest(), aliases=Aliases()).plans())
    params = {
        OLD: 8.0, "a/ft-old-name": 8.0, "b/ft-canonical": 4.0, "c/ft-other-case": 16.0,
        ghost_old: 7.0, "e/ft-of-a-ghost": 3.5,
    }  # fmt: skip
    ch.insert(
        "leaderboard_scores",
        [("open_llm_v2", m, "bfloat16", "average", 50.0, "", "", p) for m, p in params.items()],
        column_names=[
            "board", "model_id", "precision", "benchmark", "score", "model_type",
            "architecture", "params_b",
        ],
    )  # fmt: skip
    refresh(ch)
    got = ch.query(load("size_change").sql, parameters={"by": "base"}).result_rows
    # Independently: the Llama base is 8 B by its name on the Hub; its children by the board.
    llama = [params[c] / 8.0 for c in ("a/ft-old-name", "b/ft-canonical", "c/ft-other-case")]
    ghost = [params["e/ft-of-a-ghost"] / params[ghost_old]]
    assert [tuple(r) for r in got] == [
        (base, len(r), round(statistics.median(r), 3), None,
         round(sum(x < 1 for x in r) / len(r), 3), len(r))
        for base, r in ((CANONICAL, llama), (GHOST, ghost))
    ]  # fmt: skip


async def test_producers_ask_the_hub_once_per_unknown_id(tmp_path: Path) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    items = _scenario(start)
    world = HubWorld(ListSource(items), start=len(items))
    world.rename(OLD, CANONICAL)
    async with ReplayServer(world) as server, make_client(base_url=server.url) as client:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        publisher = QueuePublisher(queue)
        edits: HubEditsPoller | None = None

        def open_store() -> tuple[StateStore, HubUploadsPoller, AliasPoller]:
            nonlocal edits
            store = StateStore(tmp_path / "producers.sqlite")
            edits = HubEditsPoller(
                client,
                publisher,
                Tracker(store),
                overlap=timedelta(minutes=10),
                initial_lookback=None,
                page_limit=50,
            )
            uploads = HubUploadsPoller(
                client,
                publisher,
                CheckpointStore(tmp_path / "uploads.json"),
                overlap=timedelta(minutes=10),
                initial_lookback=None,
                page_limit=50,
                tracker=Tracker(store),
            )
            return store, uploads, AliasPoller(client, publisher, store)

        store, uploads, aliases = open_store()
        assert len(await poll_draining(uploads, queue)) == len(items)
        first = await poll_draining(aliases, queue)
        assert {(e.alias_id, e.canonical_id, e.resolved_by) for e in first} == {
            (OLD, CANONICAL, "redirect"),  # the Hub's redirect
            (CASED, CANONICAL, "case"),  # the canonical id was tracked: no request
        }
        assert await poll_draining(aliases, queue) == []
        store.close()
        store, uploads, aliases = open_store()  # a restart keeps every answer
        assert await poll_draining(aliases, queue) == []

        # New derivatives name the old id again, and yet another casing of the new one.
        world.list_now(_item("f/second-old", datetime.now(UTC) - timedelta(minutes=5), OLD))
        world.list_now(
            _item("g/upper", datetime.now(UTC) - timedelta(minutes=4), "META-LLAMA/LLAMA-3.1-8B")
        )
        assert len(await poll_draining(uploads, queue)) == 2
        [upper] = await poll_draining(aliases, queue)
        assert (upper.alias_id, upper.canonical_id, upper.resolved_by) == (
            "META-LLAMA/LLAMA-3.1-8B",
            CANONICAL,
            "case",
        )

        # An edit makes a derivative name a base renamed since: resolved like the rest.
        world.rename("b/older-name", "b/ft-canonical")
        tags = ["base_model:b/older-name", "base_model:finetune:b/older-name"]
        world.edit("c/ft-other-case", {"tags": tags, "cardData": {"base_model": "b/older-name"}})
        assert edits is not None
        assert [type(e).__name__ for e in await poll_draining(edits, queue)] == ["ModelUpdated"]
        [edited] = await poll_draining(aliases, queue)
        assert (edited.alias_id, edited.canonical_id) == ("b/older-name", "b/ft-canonical")
        store.close()

    # One lookup per unknown id across rounds and the restart; case-only differences none.
    # (The old name's redirect is followed once: the Hub's answer to that one lookup.)
    assert server.info_by_id == Counter(
        {OLD: 1, CANONICAL: 1, GHOST: 1, "b/older-name": 1, "b/ft-canonical": 1}
    )


MISTRAL = "mistralai/Mistral-Small-24B-Base-2501"
MISTRAL_OLD = "mistralai/Mistral-Small-Base-24B"  # a name it had before, as a test fixes it


async def test_renamed_base_through_kafka(
    kafka_bootstrap: str,
    clickhouse_url: str,
    database: str,
    topic_prefix: str,
    replay: ReplayServer,
    ch: Any,
    tmp_path: Path,
) -> None:
    """The Mistral tree, plus a derivative naming its root by an old name and one naming it
    in other letters: through Kafka and faust, every one lands in the root's family."""
    created = datetime.now(UTC) - timedelta(days=1)
    replay.hub.add(_item("x/ft-of-the-old-name", created, MISTRAL_OLD))
    replay.hub.add(_item("y/ft-in-lower-case", created, MISTRAL.lower()))
    replay.hub.rename(MISTRAL_OLD, MISTRAL)
    replay.hub.release(len(replay.hub))
    env = {
        "HUBWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HUBWATCH_CLICKHOUSE_URL": clickhouse_url,
        "HUBWATCH_CLICKHOUSE_DATABASE": database,
        "HUBWATCH_HUB_URL": replay.url,
        "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
        "HUBWATCH_TOPIC_PREFIX": topic_prefix,
        "HUBWATCH_PROCESSOR_APP_ID": f"{topic_prefix}processors",
        "HUBWATCH_HUB_STREAMS": "uploads,aliases",
    }
    log = tmp_path / "process.log"
    process = spawn("process", env=env, log=log)
    try:
        done = await asyncio.to_thread(hubwatch, "poll", "hub", "--once", "--since", "all", env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[:2] == [
            "hub.uploads: published 69",
            "hub.aliases: published 2",
        ]

        def root_row() -> tuple[Any, ...] | None:
            rows = ch.query(
                "SELECT descendants, finetunes FROM model_families FINAL"
                f" WHERE model_id = '{MISTRAL}'"
            ).result_rows
            return rows[0] if rows else None

        # The crawl's tree has 66 descendants under its root; the two new ones join them.
        await asyncio.to_thread(
            wait_until, lambda: root_row() == (68, 68), "both children in the root's family"
        )
        stray = ch.query(
            "SELECT model_id FROM model_families FINAL WHERE model_id IN"
            f" ('{MISTRAL_OLD}', '{MISTRAL.lower()}') OR root_id != '{MISTRAL}'"
        ).result_rows
        assert stray == []
        assert set(
            ch.query(
                "SELECT alias_id, canonical_id, resolved_by FROM model_aliases FINAL"
            ).result_rows
        ) == {(MISTRAL_OLD, MISTRAL, "redirect"), (MISTRAL.lower(), MISTRAL, "case")}
        published = kcat(kafka_bootstrap, f"{topic_prefix}model.alias")
        assert sorted(m["key"] for m in published) == sorted([MISTRAL_OLD, MISTRAL.lower()])
        assert replay.info_by_id == Counter({MISTRAL_OLD: 1, MISTRAL: 1})
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"hubwatch process did not stop on SIGTERM; log:\n{log.read_text()}")


def test_a_model_naming_its_own_old_name_has_no_base() -> None:
    forest = FamilyForest()
    own = _item("z/new-name", NOW, "z/old-name")
    child = _item("z/child", NOW, "z/new-name")
    events = [model_created_from_api(i, NOW) for i in (own, child)]
    rows = plan_batch(events, forest=forest).rows["model_families"]
    rows += plan_batch(
        [ModelAlias("z/old-name", "z/new-name", "redirect", NOW)], forest=forest
    ).rows["model_families"]
    assert _as_table(rows) == {
        "z/new-name": ("z/new-name", 0, Counter(finetune=1)),
        "z/child": ("z/new-name", 1, Counter()),
    }
    assert forest.parent("z/new-name") is None
    assert not [r for r in rows if r.model_id == "z/new-name"][-1].cycle
