"""The Hugging Face Hub: API payloads to events (pure), and the new-uploads poller."""

from __future__ import annotations

import dataclasses
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
from producers._lenient import Fields

__all__ = [
    "CREATED_AT_PLACEHOLDER",
    "ENGAGEMENT_FIELDS",
    "EXPAND_FIELDS",
    "RELATION_FIELDS",
    "card_scores_in",
    "discussion_transitions",
    "github_repos_in",
    "listed_id_and_created",
    "model_commit_from_api",
    "model_created_from_api",
    "model_discussion_from_api",
    "model_snapshot_from_api",
    "model_updated",
    "named_bases",
    "now_utc",
    "relation_fingerprint",
]

log = logging.getLogger(__name__)

# One list call carries everything derivation needs: no per-model info calls. Not
# ``baseModels``: the listing refuses it (400; only /api/models/{id} takes it, huggingface_hub
# PR #3182), and the Hub's relation tags (``base_model:<relation>:<id>``) carry the same.
EXPAND_FIELDS = (
    "author",
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


_RELATIONS = frozenset({"adapter", "merge", "quantized", "finetune"})


def model_created_from_api(item: object, observed_at: datetime) -> ModelCreated:
    """One ``GET /api/models`` item to a :class:`ModelCreated`.

    Required: ``id``, and ``createdAt`` when present must be an ISO timestamp (it is the
    event's identity); an item without them raises :class:`SchemaError`. Every other field
    is optional: missing becomes None or empty, and one of an odd shape (a card's
    ``base_model`` as an object, an unknown relation, a list with a number in it) is left out
    and named in ``dropped``, so the model still arrives. Unknown keys are ignored.
    """
    if not isinstance(item, Mapping):
        raise SchemaError("bad_type", "model item is not an object")
    repo_id = _repo_id(item)
    created_at = _created_at(item.get("createdAt"))
    f = Fields(ModelCreated.KIND)
    card = f.mapping(item, "cardData")
    config = f.mapping(item, "config")
    safetensors = f.mapping(item, "safetensors")
    base_models = f.mapping(item, "baseModels")
    gated = f.get(item, "gated", (bool, str), "gated")
    event = ModelCreated(
        repo_id=repo_id,
        created_at=created_at,
        observed_at=observed_at,
        author=f.text(item, "author"),
        sha=f.text(item, "sha"),
        last_modified=f.when(item, "lastModified"),
        private=f.flag(item, "private"),
        gated=None if gated is None else str(gated).lower(),
        pipeline_tag=f.text(item, "pipeline_tag"),
        library_name=f.text(item, "library_name"),
        tags=f.strings(item.get("tags"), "tags"),
        card_base_models=_base_model_ids(f, card.get("base_model"), "cardData.base_model"),
        card_base_model_relation=_relation(f, card, "base_model_relation", "cardData"),
        base_models=f.keyed(base_models.get("models"), "id", "baseModels.models"),
        base_models_relation=_relation(f, base_models, "relation", "baseModels"),
        architectures=f.strings(config.get("architectures"), "config.architectures"),
        model_type=f.text(config, "model_type", "config.model_type"),
        parameters=f.count(safetensors, "total", "safetensors.total"),
        downloads=f.count(item, "downloads"),
        likes=f.count(item, "likes"),
        siblings=f.keyed(item.get("siblings"), "rfilename", "siblings"),
        github_repos=github_repos_in(card),
        gguf_parameters=f.count(f.mapping(item, "gguf"), "total", "gguf.total"),
        card_scores=card_scores_in(card.get("model-index"), item.get("evalResults")),
    )
    if f.dropped:
        event = dataclasses.replace(event, dropped=tuple(f.dropped))
    return event


def _created_at(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SchemaError("bad_type", "createdAt: expected str")
    parsed = parse_datetime(value)
    return None if parsed == _PLACEHOLDER else parsed


def _relation(f: Fields, data: Mapping[str, Any], key: str, where: str) -> str | None:
    """One of the Hub's four relations; any other value is dropped."""
    value = f.text(data, key, f"{where}.{key}")
    if value is None:
        return None
    relation = value.strip().lower()
    if relation not in _RELATIONS:
        f.drop(f"{where}.{key}")
        return None
    return relation


def _base_model_ids(f: Fields, value: object, where: str) -> tuple[str, ...]:
    """``cardData.base_model``: a string or a list of strings (2+ means a merge)."""
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    return tuple(v.strip() for v in f.strings(values, where) if v.strip())


_BASE_TAG = re.compile(r"^base_model:(?:(?:finetune|quantized|adapter|merge):)?(.+)$")
_HUB_URL = re.compile(r"^https?://(?:www\.)?huggingface\.co/")


def named_bases(event: ModelCreated | ModelUpdated) -> tuple[str, ...]:
    """Every base id the event's metadata names (``baseModels``, the relation tags, the
    card, a card's Hub URL as its id), in that order, once each, as written: ids to resolve
    when the Hub does not list them under that exact name."""
    found: dict[str, None] = {}
    tagged = [m[1] for t in event.tags if (m := _BASE_TAG.match(t))]
    for base in (*event.base_models, *tagged, *event.card_base_models):
        base = _HUB_URL.sub("", base.strip()).strip("/")
        try:
            found[check_repo_id(base)] = None
        except SchemaError:
            continue  # not an id the Hub could list
    found.pop(event.repo_id, None)
    return tuple(found)


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
    """Required: ``id``; a counter of an odd shape is left out (None), not the snapshot."""
    if not isinstance(item, Mapping):
        raise SchemaError("bad_type", "model item is not an object")
    repo_id = _repo_id(item)
    f = Fields(ModelSnapshot.KIND)
    return ModelSnapshot(
        repo_id=repo_id,
        observed_at=observed_at,
        downloads=f.count(item, "downloads"),
        downloads_all_time=f.count(item, "downloadsAllTime"),
        likes=f.count(item, "likes"),
        trending_score=f.number(item, "trendingScore"),
    )


def model_commit_from_api(repo_id: str, item: object) -> ModelCommit:
    """Required: the commit ``id``; date, title and authors are optional."""
    if not isinstance(item, Mapping):
        raise SchemaError("bad_type", "commit is not an object")
    commit_id = item.get("id")
    if not isinstance(commit_id, str) or not commit_id:
        raise SchemaError("missing_field", "commit id")
    f = Fields(ModelCommit.KIND)
    authors = f.items(item.get("authors"), "authors")
    users = [a.get("user") if isinstance(a, Mapping) else None for a in authors]
    if not all(isinstance(u, str) for u in users):
        f.drop("authors")
    return ModelCommit(
        repo_id=repo_id,
        commit_id=commit_id,
        committed_at=f.when(item, "date"),
        title=f.text(item, "title") or "",
        authors=tuple(u for u in users if isinstance(u, str)),
    )


def model_discussion_from_api(repo_id: str, item: object) -> ModelDiscussion:
    """Required: ``num``; title, status, kind, date and author are optional."""
    if not isinstance(item, Mapping):
        raise SchemaError("bad_type", "discussion is not an object")
    num = item.get("num")
    if isinstance(num, bool) or not isinstance(num, int):
        raise SchemaError("missing_field", "discussion num")
    if not 0 <= num < 2**31:  # the Hub numbers discussions from 1; SQLite holds 64 bits
        raise SchemaError("bad_value", f"discussion num out of range: {str(num)[:40]}")
    f = Fields(ModelDiscussion.KIND)
    author = f.mapping(item, "author")
    return ModelDiscussion(
        repo_id=repo_id,
        num=num,
        title=f.text(item, "title") or "",
        status=f.text(item, "status") or "open",
        is_pull_request=bool(f.flag(item, "isPullRequest")),
        created_at=f.when(item, "createdAt"),
        author=f.text(author, "name", "author.name"),
    )


def discussion_transitions(
    listed: ModelDiscussion, detail: object, observed_at: datetime
) -> list[ModelDiscussion]:
    """Every status a discussion took, with when, from its detail (``events`` of type
    ``status-change``): opened at its creation, then closed, merged or open again. A PR
    leaving or entering draft is not a transition. Without usable events, a discussion no
    longer open is taken as changed when it was seen so (``observed_at``)."""
    events = detail.get("events") if isinstance(detail, Mapping) else None
    changes = []
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, Mapping) or event.get("type") != "status-change":
            continue
        data = event.get("data")
        status = data.get("status") if isinstance(data, Mapping) else None
        at = Fields(ModelDiscussion.KIND).when(event, "createdAt")
        if isinstance(status, str) and at is not None:
            changes.append((at, status))
    changes.sort()
    taken = [dataclasses.replace(listed, status="open", changed_at=listed.created_at)]
    previous = "open"
    for at, status in changes:
        if {previous, status} == {"open", "draft"}:
            previous = status
            continue
        taken.append(dataclasses.replace(listed, status=status, changed_at=at))
        previous = status
    if not changes and listed.status not in ("open", "draft"):
        taken.append(dataclasses.replace(listed, changed_at=observed_at))
    return taken


def _repo_id(item: Mapping[str, Any]) -> str:
    return check_repo_id(item.get("id"))


def listed_id_and_created(item: object) -> tuple[str | None, datetime | None]:
    """A listed item's id and createdAt, or Nones when either is missing or malformed (a
    stream that reports the item dead-letters it)."""
    if not isinstance(item, dict):
        return None, None
    repo_id, created = item.get("id"), item.get("createdAt")
    if not isinstance(repo_id, str) or not isinstance(created, str):
        return None, None
    try:
        return repo_id, parse_datetime(created)
    except SchemaError:
        return None, None
