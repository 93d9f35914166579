"""Lineage edges from the Hub's relation sources, and the fixture tree's depths."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hubwatch.events import ModelCreated
from processors.lineage import lineage_disputes, lineage_edges, model_row
from producers.hub import model_created_from_api
from tests.conftest import depths_from_edges

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _event(**fields: Any) -> ModelCreated:
    return ModelCreated(fields.pop("repo_id", "me/model"), None, NOW, **fields)


def test_fixture_tree(fixture_items: list[dict[str, Any]], fixture_depths: dict[str, int]) -> None:
    events = [model_created_from_api(item, NOW) for item in fixture_items]
    edges = [e for event in events for e in lineage_edges(event)]
    assert len(edges) == 66
    assert {(e.relation, e.source, e.inferred) for e in edges} == {
        ("finetune", "baseModels", False)
    }
    models = [e.repo_id for e in events]
    histogram = depths_from_edges([(e.derivative_id, e.base_model_id) for e in edges], models)
    assert histogram == {0: 1, 1: 22, 2: 36, 3: 8}
    # And model by model, against the crawl's own depth column.
    parent = {e.derivative_id: e.base_model_id for e in edges}

    def depth(m: str) -> int:
        return 0 if m not in parent else 1 + depth(parent[m])

    assert {m: depth(m) for m in models} == fixture_depths


def test_hub_resolution_wins_and_the_cards_other_claim_is_kept_flagged() -> None:
    event = _event(
        tags=("base_model:finetune:arcee-ai/Arcee-Blitz",),
        card_base_models=("mistralai/Base", "arcee-ai/Arcee-Blitz"),
    )
    [edge] = lineage_edges(event)
    assert (edge.base_model_id, edge.relation, edge.source) == (
        "arcee-ai/Arcee-Blitz",
        "finetune",
        "tags",
    )
    [dispute] = lineage_disputes(event)
    assert (dispute.base_model_id, dispute.claimed_relation, dispute.resolved_relation) == (
        "mistralai/Base",
        "merge",
        "",
    )


def test_a_card_relation_that_contradicts_the_hub_is_flagged() -> None:
    event = _event(
        base_models=("a/x",),
        base_models_relation="finetune",
        card_base_models=("a/x",),
        card_base_model_relation="quantized",
    )
    [dispute] = lineage_disputes(event)
    assert (dispute.claimed_relation, dispute.resolved_relation) == ("quantized", "finetune")
    agreeing = _event(
        base_models=("a/x",), base_models_relation="finetune", card_base_models=("a/x",)
    )
    assert lineage_disputes(agreeing) == []


def test_fixture_disputes(fixture_items: list[dict[str, Any]]) -> None:
    disputes = [d for i in fixture_items for d in lineage_disputes(model_created_from_api(i, NOW))]
    assert [(d.derivative_id, d.base_model_id) for d in disputes] == [
        ("ConicCat/MistralSmallV3R", "mistralai/Mistral-Small-24B-Base-2501")
    ]


@pytest.mark.parametrize(
    ("fields", "relation"),
    [
        ({"card_base_models": ("a/x", "b/y")}, "merge"),
        ({"card_base_models": ("a/x",), "tags": ("gguf",)}, "quantized"),
        ({"card_base_models": ("a/x",), "siblings": ("model-Q4_K_M.gguf",)}, "quantized"),
        ({"card_base_models": ("a/x",), "siblings": ("adapter_config.json",)}, "adapter"),
        ({"card_base_models": ("a/x",)}, "finetune"),
    ],
)
def test_relation_inferred_from_the_card_when_the_hub_has_none(
    fields: dict[str, Any], relation: str
) -> None:
    edges = lineage_edges(_event(**fields))
    assert edges and {e.relation for e in edges} == {relation}
    assert all(e.inferred and e.source == "inferred" for e in edges)


def test_declared_card_relation_and_url_bases() -> None:
    event = _event(
        card_base_models=("https://huggingface.co/a/x",), card_base_model_relation="adapter"
    )
    [edge] = lineage_edges(event)
    assert (edge.base_model_id, edge.relation, edge.inferred) == ("a/x", "adapter", False)


def test_self_reference_is_dropped() -> None:
    assert lineage_edges(_event(repo_id="a/x", card_base_models=("a/x",))) == []


def test_model_row_fills_author_from_the_id() -> None:
    row = model_row(_event(repo_id="org/thing", siblings=("a", "b")))
    assert row.author == "org" and row.siblings_count == 2
