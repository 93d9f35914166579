"""Edges and disputes that are no longer true are retracted, and the newest metadata wins
whatever order the events are processed in (rows versioned by the metadata's time), across
a restart too: checked in ClickHouse with FINAL and through `score_delta`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubwatch.events import ModelCreated, ModelUpdated
from hubwatch.queries import load
from hubwatch.summaries import refresh
from processors.families import FamilyForest
from processors.pipeline import plan_batch
from processors.restore import load_forest
from processors.sinks import ClickHouseWriter

T0 = datetime(2025, 6, 1, tzinfo=UTC)
T1, T2 = T0 + timedelta(days=1), T0 + timedelta(days=2)


def _history() -> list[ModelCreated | ModelUpdated]:
    """o/child's card first claims o/a (the Hub has not resolved it yet); a day later the
    Hub resolves o/b while the card still says o/a (a dispute); a day after, the card says
    o/b too. o/merge is first a merge of o/a and o/c, then a finetune of o/b only."""
    return [
        ModelCreated("o/child", T0, T0, last_modified=T0, card_base_models=("o/a",)),
        ModelCreated(
            "o/merge",
            T0,
            T0,
            last_modified=T0,
            base_models=("o/a", "o/c"),
            base_models_relation="merge",
        ),
        ModelUpdated(
            "o/child",
            T1,
            T1,
            ("base_models",),
            card_base_models=("o/a",),
            card_base_model_relation="finetune",
            base_models=("o/b",),
            base_models_relation="finetune",
        ),
        ModelUpdated(
            "o/merge",
            T1,
            T1,
            ("base_models",),
            base_models=("o/b",),
            base_models_relation="finetune",
        ),
        ModelUpdated(
            "o/child",
            T2,
            T2,
            ("card",),
            card_base_models=("o/b",),
            base_models=("o/b",),
            base_models_relation="finetune",
        ),
    ]


def _edges(ch: Any) -> set[tuple[str, str]]:
    rows = ch.query("SELECT derivative_id, base_model_id FROM lineage_edges FINAL").result_rows
    return {(d, b) for d, b in rows}


def _disputes(ch: Any) -> set[tuple[str, str]]:
    rows = ch.query("SELECT derivative_id, base_model_id FROM lineage_disputes FINAL")
    return {(d, b) for d, b in rows.result_rows}


@pytest.mark.parametrize("how", ["in_order", "newest_first"])
def test_bases_no_longer_named_are_retracted(
    ch: Any, clickhouse_url: str, database: str, how: str
) -> None:
    history = _history()
    if how == "newest_first":  # a replayed or late old event must not bring an edge back
        history.reverse()
    writer = ClickHouseWriter(lambda: ch, database)

    def process(events: list[Any]) -> None:
        # A new processor for each event: the forest comes back from ClickHouse each time.
        for event in events:
            writer.write(plan_batch([event], forest=load_forest(clickhouse_url, database)).plans())

    process(history[:3])
    if how == "in_order":
        # The Hub resolved o/b: o/a is gone from the edges, and the card's claim disputed.
        assert _edges(ch) == {("o/child", "o/b"), ("o/merge", "o/a"), ("o/merge", "o/c")}
        assert _disputes(ch) == {("o/child", "o/a")}
    process(history[3:])
    assert _edges(ch) == {("o/child", "o/b"), ("o/merge", "o/b")}
    assert _disputes(ch) == set()
    families = ch.query(
        "SELECT model_id, parent_id FROM model_families FINAL WHERE parent_id != ''"
    ).result_rows
    assert sorted(families) == [("o/child", "o/b"), ("o/merge", "o/b")]

    # score_delta compares a derivative only with the bases it has now.
    ch.insert(
        "leaderboard_scores",
        [
            ["open_llm_v2", m, "bfloat16", "average", s, "fine_tuned", "X", None, None]
            for m, s in (
                ("o/a", 10.0),
                ("o/b", 20.0),
                ("o/c", 30.0),
                ("o/child", 25.0),
                ("o/merge", 21.0),
            )
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
            "merged",
        ],
    )
    refresh(ch)
    by_base = ch.query(load("score_delta").sql, parameters={"by": "base"}).result_rows
    assert [(board, group, edges) for board, group, edges, *_ in by_base] == [
        ("open_llm_v2", "o/b", 2)
    ]


def test_a_batch_with_both_events_keeps_the_newest() -> None:
    """Within one batch, in either order, the deletion outranks the older claim."""
    history = _history()[:3]
    for events in (history, history[::-1]):
        batch = plan_batch(events, forest=FamilyForest())
        newest: dict[tuple[str, str], Any] = {}
        for row in batch.rows["lineage_edges"]:
            key = (row.derivative_id, row.base_model_id)
            if key not in newest or row.version >= newest[key].version:
                newest[key] = row
        assert {k for k, r in newest.items() if not r.is_deleted} == {
            ("o/child", "o/b"),
            ("o/merge", "o/a"),
            ("o/merge", "o/c"),
        }


@pytest.mark.parametrize("how", ["in_order", "old_replayed_last"])
def test_card_scores_newest_card_wins(ch: Any, database: str, how: str) -> None:
    """A replayed old model.created (an older card) does not overwrite newer card scores."""
    old = ModelCreated("o/scored", T0, T0, last_modified=T0, card_scores=(("arc", "acc", 40.0),))
    new = ModelCreated("o/scored", T0, T2, last_modified=T1, card_scores=(("arc", "acc", 55.0),))
    writer = ClickHouseWriter(lambda: ch, database)
    for event in [old, new] if how == "in_order" else [new, old]:
        writer.write(plan_batch([event]).plans())
    scores = ch.query(
        "SELECT score FROM leaderboard_scores FINAL WHERE board = 'card' AND model_id = 'o/scored'"
    ).result_rows
    assert scores == [(55.0,)]
