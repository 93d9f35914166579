"""Fixtures for the replay: the shared crawl (the Python client's snake_case ModelInfo,
mapped to the HTTP API's camelCase shapes) and JSONL files of raw API items."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "FIXTURE_NAME",
    "api_item_from_client_metadata",
    "default_fixture",
    "load_fixture_csv",
    "load_jsonl",
]

FIXTURE_NAME = "hf_model_tree_Mistral-Small-24B-Base-2501_2025-04-05.csv"


def default_fixture() -> Path:
    """``shared/data``'s Mistral tree, found beside the checkout (or the working directory)."""
    candidates = [
        Path.cwd() / "../shared/data",
        Path(__file__).resolve().parents[3] / "shared/data",
    ]
    for folder in candidates:
        if (folder / FIXTURE_NAME).exists():
            return (folder / FIXTURE_NAME).resolve()
    raise FileNotFoundError(f"{FIXTURE_NAME} not found in ../shared/data; pass --fixture")


# --- the fixture: the Python client's snake_case ModelInfo to the HTTP API's camelCase ------

_SIBLING = re.compile(r"rfilename='([^']*)'")
_RELATION_TAG = re.compile(r"^base_model:(finetune|quantized|adapter|merge):(.+)$")
_SNAKE_TO_API = {
    "created_at": "createdAt",
    "last_modified": "lastModified",
    "downloads_all_time": "downloadsAllTime",
    "trending_score": "trendingScore",
    "transformers_info": "transformersInfo",
    "widget_data": "widgetData",
    "model_index": "model-index",
    "inference_provider_mapping": "inferenceProviderMapping",
    "used_storage": "usedStorage",
}
_API_FIELDS = (
    "author",
    "sha",
    "createdAt",
    "lastModified",
    "private",
    "gated",
    "disabled",
    "downloads",
    "downloadsAllTime",
    "likes",
    "library_name",
    "gguf",
    "inference",
    "tags",
    "pipeline_tag",
    "mask_token",
    "trendingScore",
    "cardData",
    "widgetData",
    "model-index",
    "config",
    "transformersInfo",
    "siblings",
    "spaces",
    "safetensors",
    "usedStorage",
    "baseModels",
)


def _api_time(value: object) -> object:
    """``2025-01-23 14:13:54+00:00`` (the client's repr) to the API's ``…T14:13:54.000Z``."""
    if not isinstance(value, str) or not value:
        return value
    text = value.replace(" ", "T").replace("+00:00", "")
    if "." not in text:
        text += ".000"
    return text if text.endswith("Z") else text + "Z"


def api_item_from_client_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild what the Hub's HTTP API returns from a ModelInfo dumped by the Python client."""
    item: dict[str, Any] = {"_id": meta.get("_id") or "", "id": meta["id"]}
    for key, value in meta.items():
        item.setdefault(_SNAKE_TO_API.get(key, key), value)
    for key in ("createdAt", "lastModified"):
        item[key] = _api_time(item.get(key))
    card = meta.get("card_data", item.get("cardData"))
    item["cardData"] = yaml.safe_load(card) if isinstance(card, str) else card
    item["siblings"] = [
        {"rfilename": m[1]} if isinstance(s, str) and (m := _SIBLING.search(s)) else s
        for s in meta.get("siblings") or []
    ]
    # The Hub derives baseModels from the same relation it puts in the tags.
    relations = [m.groups() for t in item.get("tags") or [] if (m := _RELATION_TAG.match(t))]
    if relations:
        item["baseModels"] = {
            "relation": relations[0][0],
            "models": [{"id": base, "_id": ""} for _, base in relations],
        }
    return {k: item[k] for k in ("_id", "id", *_API_FIELDS) if k in item}


def load_fixture_csv(path: Path) -> list[dict[str, Any]]:
    csv.field_size_limit(1 << 30)
    with path.open(newline="") as handle:
        return [
            api_item_from_client_metadata(json.loads(row["metadata"]))
            for row in csv.DictReader(handle)
        ]


def load_jsonl(path: Path) -> list[Any]:
    """Extra items, kept verbatim (malformed ones included: the replay serves what it gets)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
