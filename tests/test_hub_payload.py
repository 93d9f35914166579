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
