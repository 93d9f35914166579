"""The Hugging Face Hub: API payloads to events (pure), and the new-uploads poller."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from hubwatch.errors import SchemaError
from hubwatch.events import (
    ModelCommit,
    ModelCreated,
    ModelDiscussion,
    ModelSnapshot,
    ModelUpdated,
    check_repo_id,
    parse_datetime,
)

__all__ = [
    "CREATED_AT_PLACEHOLDER",
    "ENGAGEMENT_FIELDS",
    "EXPAND_FIELDS",
    "RELATION_FIELDS",
    "card_scores_in",
    "github_repos_in",
    "model_commit_from_api",
    "model_created_from_api",
    "model_discussion_from_api",
    "model_snapshot_from_api",
    "model_updated",
    "now_utc",
    "relation_fingerprint",
]

log = logging.getLogger(__name__)

# One list call carries everything derivation needs: no per-model info calls.
EXPAND_FIELDS = (
    "author",
    "baseModels",
    "cardData",
    "config",
    "createdAt",
    "downloads",
    "evalResults",
    "gguf",
    "gated",
    "lastModified",
    "library_name",
    "likes",
    "pipeline_tag",
    "private",
    "safetensors",
    "sha",
    "siblings",
    "tags",
)

# Every repo created before the Hub stored creation dates carries this createdAt.
CREATED_AT_PLACEHOLDER = "2022-03-02T23:29:04.000Z"
_PLACEHOLDER = parse_datetime(CREATED_AT_PLACEHOLDER)


def now_utc() -> datetime:
    """Now, at the millisecond precision events carry."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def model_created_from_api(item: object, observed_at: datetime) -> ModelCreated:
    """One ``GET /api/models`` item to a :class:`ModelCreated`.

    Required: ``id``. Optional fields missing become None or empty; unknown keys are
    ignored; a field of the wrong type raises :class:`SchemaError` naming it.
    """
    if not isinstance(item, Mapping):
        raise SchemaError("bad_type", "model item is not an object")
    repo_id = _repo_id(item)
    card = _opt(item, "cardData", Mapping) or {}
    config = _opt(item, "config", Mapping) or {}
    safetensors = _opt(item, "safetensors", Mapping) or {}
    base_models = _opt(item, "baseModels", Mapping) or {}
    gated = item.get("gated")
    if gated is not None and not isinstance(gated, (bool, str)):
        raise SchemaError("bad_type", "gated: expected bool or str")

    return ModelCreated(
        repo_id=repo_id,
        created_at=_created_at(item.get("createdAt")),
        observed_at=observed_at,
        author=_opt(item, "author", str),
        sha=_opt(item, "sha", str),
        last_modified=_opt_datetime(item, "lastModified"),
        private=_opt(item, "private", bool),
        gated=None if gated is None else str(gated).lower(),
        pipeline_tag=_opt(item, "pipeline_tag", str),
        library_name=_opt(item, "library_name", str),
        tags=_str_tuple(item.get("tags"), "tags"),
        card_base_models=_base_model_ids(card.get("base_model"), "cardData.base_model"),
        card_base_model_relation=_opt(card, "base_model_relation", str),
        base_models=tuple(
            _str_field(m, "id", "baseModels.models")
            for m in _list(base_models.get("models"), "baseModels.models")
        ),
        base_models_relation=_opt(base_models, "relation", str),
        architectures=_str_tuple(config.get("architectures"), "config.architectures"),
        model_type=_opt(config, "model_type", str),
        parameters=_opt_int(safetensors, "total", "safetensors.total"),
        downloads=_opt_int(item, "downloads", "downloads"),
        likes=_opt_int(item, "likes", "likes"),
        siblings=tuple(
            _str_field(s, "rfilename", "siblings") for s in _list(item.get("siblings"), "siblings")
        ),
        github_repos=github_repos_in(card),
        gguf_parameters=_opt_int(_opt(item, "gguf", Mapping) or {}, "total", "gguf.total"),
        card_scores=card_scores_in(card.get("model-index"), item.get("evalResults")),
    )


def _created_at(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SchemaError("bad_type", "createdAt: expected str")
    parsed = parse_datetime(value)
    return None if parsed == _PLACEHOLDER else parsed


def _opt(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        raise SchemaError("bad_type", f"{key}: expected {kind.__name__}")
    return value


def _opt_int(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SchemaError("bad_type", f"{where}: expected a non-negative int")
    return value


def _opt_datetime(data: Mapping[str, Any], key: str) -> datetime | None:
    value = _opt(data, key, str)
    return None if value is None else parse_datetime(value)


def _list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SchemaError("bad_type", f"{where}: expected a list")
    return value


def _str_tuple(value: object, where: str) -> tuple[str, ...]:
    items = _list(value, where)
    if not all(isinstance(v, str) for v in items):
        raise SchemaError("bad_type", f"{where}: expected a list of str")
    return tuple(items)


def _str_field(item: object, key: str, where: str) -> str:
    if not isinstance(item, Mapping) or not isinstance(item.get(key), str):
        raise SchemaError("bad_type", f"{where}: expected objects with a str {key!r}")
    return str(item[key])


def _base_model_ids(value: object, where: str) -> tuple[str, ...]:
    """``cardData.base_model``: a string or a list of strings (2+ means a merge)."""
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    return tuple(v.strip() for v in _str_tuple(values, where) if v.strip())


ENGAGEMENT_FIELDS = ("downloads", "downloadsAllTime", "likes", "trendingScore")

# The fields whose change makes an edit worth an event.
RELATION_FIELDS = (
    "tags",
    "card_base_models",
    "card_base_model_relation",
    "base_models",
    "base_models_relation",
)

_GITHUB_REPO = re.compile(r"github\.com/([A-Za-z0-9][\w.-]{0,38})/([\w.-]{1,100})")


def github_repos_in(card: object, limit: int = 5) -> tuple[str, ...]:
    """GitHub ``owner/name`` repos linked anywhere in card metadata, in order, deduplicated."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            for owner, name in _GITHUB_REPO.findall(value):
                repo = f"{owner}/{name.removesuffix('.git').rstrip('.')}"
                if repo not in found:
                    found.append(repo)
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(card)
    return tuple(found[:limit])


_SHOTS = re.compile(r"\([^)]*\)")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def _slug(text: str) -> str:
    return _NOT_WORD.sub("_", _SHOTS.sub("", text.lower())).strip("_")


def card_scores_in(*sources: object) -> tuple[tuple[str, str, float], ...]:
    """(benchmark, metric, value) from a card's ``model-index`` (and ``evalResults``, in the
    same results shape). Cards are hand-written: an entry that does not parse is skipped,
    never the model. The benchmark is the dataset's name without its few-shot note
    ("IFEval (0-Shot)" -> "ifeval"); one value per benchmark and metric, the first given."""
    found: dict[tuple[str, str], float] = {}
    for source in sources:
        for entry in source if isinstance(source, list) else []:
            results = entry.get("results") if isinstance(entry, Mapping) else None
            for result in results if isinstance(results, list) else [entry]:
                if not isinstance(result, Mapping):
                    continue
                dataset = result.get("dataset")
                name = (
                    dataset.get("name") or dataset.get("type")
                    if isinstance(dataset, Mapping)
                    else None
                )
                metrics = result.get("metrics")
                if not isinstance(name, str) or not _slug(name) or not isinstance(metrics, list):
                    continue
                for metric in metrics:
                    if not isinstance(metric, Mapping):
                        continue
                    label = metric.get("type") or metric.get("name")
                    value = _number(metric.get("value"))
                    if isinstance(label, str) and _slug(label) and value is not None:
                        found.setdefault((_slug(name), _slug(label)), value)
    return tuple((benchmark, metric, value) for (benchmark, metric), value in found.items())


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def relation_fingerprint(event: ModelCreated | ModelUpdated) -> str:
    """Per-field digests of the relation fields, so a change says which field moved."""
    digests = {
        name: hashlib.sha256(json.dumps(getattr(event, name)).encode()).hexdigest()[:12]
        for name in RELATION_FIELDS
    }
    return json.dumps(digests, sort_keys=True)


def changed_fields(before: str | None, after: str) -> tuple[str, ...]:
    if before is None:
        return ("first_seen",)
    old, new = json.loads(before), json.loads(after)
    return tuple(name for name in RELATION_FIELDS if old.get(name) != new.get(name))


def model_updated(created: ModelCreated, changed: tuple[str, ...]) -> ModelUpdated:
    if created.last_modified is None:
        raise SchemaError("missing_field", "lastModified")
    return ModelUpdated(
        repo_id=created.repo_id,
        last_modified=created.last_modified,
        observed_at=created.observed_at,
        changed=changed,
        sha=created.sha,
        tags=created.tags,
        card_base_models=created.card_base_models,
        card_base_model_relation=created.card_base_model_relation,
        base_models=created.base_models,
        base_models_relation=created.base_models_relation,
    )


def model_snapshot_from_api(item: object, observed_at: datetime) -> ModelSnapshot:
    if not isinstance(item, Mapping):
        raise SchemaError("bad_type", "model item is not an object")
    repo_id = _repo_id(item)
    score = item.get("trendingScore")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise SchemaError("bad_type", "trendingScore: expected a number")
    return ModelSnapshot(
        repo_id=repo_id,
        observed_at=observed_at,
        downloads=_opt_int(item, "downloads", "downloads"),
        downloads_all_time=_opt_int(item, "downloadsAllTime", "downloadsAllTime"),
        likes=_opt_int(item, "likes", "likes"),
        trending_score=None if score is None else float(score),
    )


def model_commit_from_api(repo_id: str, item: object) -> ModelCommit:
    if not isinstance(item, Mapping):
        raise SchemaError("bad_type", "commit is not an object")
    commit_id = item.get("id")
    if not isinstance(commit_id, str) or not commit_id:
        raise SchemaError("missing_field", "commit id")
    authors = [
        a.get("user") for a in _list(item.get("authors"), "authors") if isinstance(a, Mapping)
    ]
    return ModelCommit(
        repo_id=repo_id,
        commit_id=commit_id,
        committed_at=_opt_datetime(item, "date"),
        title=_opt(item, "title", str) or "",
        authors=tuple(a for a in authors if isinstance(a, str)),
    )


def model_discussion_from_api(repo_id: str, item: object) -> ModelDiscussion:
    if not isinstance(item, Mapping):
        raise SchemaError("bad_type", "discussion is not an object")
    num = item.get("num")
    if isinstance(num, bool) or not isinstance(num, int):
        raise SchemaError("missing_field", "discussion num")
    if not 0 <= num < 2**31:  # the Hub numbers discussions from 1; SQLite holds 64 bits
        raise SchemaError("bad_value", f"discussion num out of range: {str(num)[:40]}")
    author = item.get("author")
    return ModelDiscussion(
        repo_id=repo_id,
        num=num,
        title=_opt(item, "title", str) or "",
        status=_opt(item, "status", str) or "open",
        is_pull_request=bool(_opt(item, "isPullRequest", bool)),
        created_at=_opt_datetime(item, "createdAt"),
        author=_opt(author, "name", str) if isinstance(author, Mapping) else None,
    )


def _repo_id(item: Mapping[str, Any]) -> str:
    return check_repo_id(item.get("id"))
