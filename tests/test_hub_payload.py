"""Hub API items to events, on the real fixture and on broken input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hubwatch.errors import SchemaError
from producers.hub import CREATED_AT_PLACEHOLDER, model_created_from_api
from tests.conftest import malformed_items

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_every_fixture_item_parses(fixture_items: list[dict[str, Any]]) -> None:
    parsed = [model_created_from_api(item, NOW) for item in fixture_items]
    assert len({p.repo_id for p in parsed}) == 67
    base = next(p for p in parsed if p.repo_id == "mistralai/Mistral-Small-24B-Base-2501")
    assert base.created_at == datetime(2025, 1, 23, 14, 13, 54, tzinfo=UTC)
    assert base.architectures == ("MistralForCausalLM",) and base.model_type == "mistral"
    assert base.parameters and base.parameters > 20_000_000_000
    assert base.base_models == () and base.gated == "auto"
    derivatives = [p for p in parsed if p.base_models]
    assert len(derivatives) == 66
    assert {p.base_models_relation for p in derivatives} == {"finetune"}


def test_placeholder_created_at_means_unknown() -> None:
    event = model_created_from_api({"id": "gpt2", "createdAt": CREATED_AT_PLACEHOLDER}, NOW)
    assert event.created_at is None


def test_card_base_model_string_or_list() -> None:
    one = model_created_from_api({"id": "a/b", "cardData": {"base_model": " x/y "}}, NOW)
    assert one.card_base_models == ("x/y",)
    two = model_created_from_api(
        {"id": "a/b", "cardData": {"base_model": ["x/y", "z/w"], "base_model_relation": "merge"}},
        NOW,
    )
    assert two.card_base_models == ("x/y", "z/w") and two.card_base_model_relation == "merge"


def test_unknown_fields_are_ignored() -> None:
    event = model_created_from_api({"id": "a/b", "brandNewField": {"x": 1}}, NOW)
    assert event.repo_id == "a/b"


@pytest.mark.parametrize(
    "item",
    [
        i
        for i in malformed_items()
        if not (isinstance(i, dict) and i.get("id") in ("big/card", "evil/tags"))
    ],
)
def test_malformed_items_raise_schema_errors(item: Any) -> None:
    with pytest.raises(SchemaError) as caught:
        model_created_from_api(item, NOW)
    assert caught.value.reason in {"missing_field", "bad_type", "bad_repo_id", "bad_datetime"}


def test_card_scores_from_model_index(fixture_items: list[dict[str, Any]]) -> None:
    by_id = {i["id"]: i for i in fixture_items}
    item = by_id["SaisExperiments/Not-So-Small-Alpaca-24B"]
    # Independently: every (dataset name, metric type) the card lists, values as given.
    expected = [
        (r["dataset"]["name"], m["type"], float(m["value"]))
        for entry in item["cardData"]["model-index"]
        for r in entry["results"]
        for m in r["metrics"]
    ]
    scores = model_created_from_api(item, NOW).card_scores
    assert len(scores) == len(expected) >= 6
    assert [value for *_, value in scores] == [value for *_, value in expected]
    assert scores[0][0] == "ifeval"  # "IFEval (0-Shot)": the few-shot note is dropped
    # An empty results list (DeepHermes) gives none.
    deephermes = by_id["NousResearch/DeepHermes-3-Mistral-24B-Preview"]
    assert deephermes["cardData"]["model-index"][0]["results"] == []
    assert model_created_from_api(deephermes, NOW).card_scores == ()


def test_messy_card_scores_are_skipped_not_fatal() -> None:
    card = {
        "model-index": [
            {"name": "m", "results": "not a list"},
            {
                "results": [
                    {
                        "dataset": {"name": "GSM8k (5-shot)"},
                        "metrics": [{"type": "acc", "value": "71.5%"}],
                    },
                    {"dataset": {"name": "ARC"}, "metrics": [{"type": "acc", "value": "N/A"}]},
                    {"dataset": "ARC", "metrics": [{"type": "acc", "value": 1}]},
                    {
                        "dataset": {"name": "MMLU"},
                        "metrics": [{"value": 60}, 7, {"type": "acc", "value": True}],
                    },
                    {
                        "dataset": {"name": "HellaSwag"},
                        "metrics": [{"name": "acc_norm", "value": 80}],
                    },
                ]
            },
            "garbage",
        ]
    }
    evals = [{"dataset": {"name": "GSM8k"}, "metrics": [{"type": "acc", "value": 99}]}]
    item = {"id": "org/messy", "cardData": card, "evalResults": evals}
    assert model_created_from_api(item, NOW).card_scores == (
        ("gsm8k", "acc", 71.5),  # the card's value comes first and wins
        ("hellaswag", "acc_norm", 80.0),
    )
