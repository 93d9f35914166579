"""Derivation (lineage): which base models a new model derives from, and how. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from hubwatch.events import ModelCreated, ModelUpdated
from processors.sizes import model_size

__all__ = [
    "RELATIONS",
    "LineageDispute",
    "LineageEdge",
    "ModelRow",
    "lineage_disputes",
    "lineage_edges",
    "model_row",
]

RELATIONS = ("finetune", "quantized", "adapter", "merge")

_RELATION_TAG = re.compile(r"^base_model:(finetune|quantized|adapter|merge):(.+)$")
_QUANTIZED_HINTS = ("gguf", "gptq", "awq", "exl2", "bnb", "4bit", "8bit", "bitsandbytes")
_HUB_URL_PREFIX = re.compile(r"^https?://(www\.)?huggingface\.co/")


@dataclass(frozen=True, slots=True)
class ModelRow:
    """A row of ``models`` (see hubwatch/migrations/0001_models.sql)."""

    repo_id: str
    author: str
    created_at: datetime | None
    last_modified: datetime | None
    sha: str
    private: bool | None
    gated: str
    pipeline_tag: str
    library_name: str
    architectures: tuple[str, ...]
    model_type: str
    parameters: int | None
    parameters_source: str
    quant_bits: int | None
    size_bytes: int | None
    downloads: int | None
    likes: int | None
    tags: tuple[str, ...]
    github_repos: tuple[str, ...]
    siblings_count: int
    observed_at: datetime
    first_seen_at: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """A row of ``lineage_edges``: ``derivative_id`` derives from ``base_model_id``."""

    derivative_id: str
    base_model_id: str
    relation: str
    source: str
    "baseModels, tags, card, or inferred."
    inferred: bool
    observed_at: datetime
    event_id: str


def model_row(event: ModelCreated) -> ModelRow:
    size = model_size(event)
    author = event.author or (event.repo_id.split("/", 1)[0] if "/" in event.repo_id else "")
    return ModelRow(
        repo_id=event.repo_id,
        author=author,
        created_at=event.created_at,
        last_modified=event.last_modified,
        sha=event.sha or "",
        private=event.private,
        gated=event.gated or "",
        pipeline_tag=event.pipeline_tag or "",
        library_name=event.library_name or "",
        architectures=event.architectures,
        model_type=event.model_type or "",
        parameters=size.parameters,
        parameters_source=size.parameters_source,
        quant_bits=size.quant_bits,
        size_bytes=size.size_bytes,
        downloads=event.downloads,
        likes=event.likes,
        tags=event.tags,
        github_repos=event.github_repos,
        siblings_count=len(event.siblings),
        observed_at=event.observed_at,
        # Records from before producers set it were emitted on first sight.
        first_seen_at=event.first_seen_at or event.observed_at,
        event_id=event.event_id,
    )


def _normalise(base: str) -> str:
    return _HUB_URL_PREFIX.sub("", base.strip()).strip("/")


def infer_relation(event: ModelCreated | ModelUpdated, base_count: int) -> str:
    """The relation when no source names one, by the Hub's own rules of thumb."""
    if base_count > 1:
        return "merge"
    siblings: tuple[str, ...] = getattr(event, "siblings", ())
    names = [t.lower() for t in event.tags] + [s.lower() for s in siblings]
    if any(hint in name for name in names for hint in _QUANTIZED_HINTS):
        return "quantized"
    if getattr(event, "library_name", None) == "peft" or any(
        s.endswith("adapter_config.json") for s in siblings
    ):
        return "adapter"
    return "finetune"


def lineage_edges(event: ModelCreated | ModelUpdated) -> list[LineageEdge]:
    """Edges from the Hub's resolved ``baseModels`` and relation tags, else from the card.

    The Hub's resolution is authoritative when it exists; the card (``base_model`` with
    ``base_model_relation``, or an inferred relation, ``inferred=True``) speaks only for
    models the Hub has not resolved yet. Self-references are dropped.
    """
    found: dict[str, tuple[str, str, bool]] = {}

    def add(base: str, relation: str, source: str, inferred: bool = False) -> None:
        base = _normalise(base)
        if base and base != event.repo_id and base not in found:
            found[base] = (relation, source, inferred)

    if event.base_models_relation in RELATIONS:
        for base in event.base_models:
            add(base, event.base_models_relation, "baseModels")
    for tag in event.tags:
        if match := _RELATION_TAG.match(tag):
            add(match[2], match[1], "tags")
    card_bases = [] if found else [_normalise(b) for b in event.card_base_models]
    if event.card_base_model_relation in RELATIONS:
        for base in card_bases:
            add(base, event.card_base_model_relation, "card")
    elif card_bases:
        relation = infer_relation(event, len(card_bases))
        for base in card_bases:
            add(base, relation, "inferred", inferred=True)
    return [
        LineageEdge(
            derivative_id=event.repo_id,
            base_model_id=base,
            relation=relation,
            source=source,
            inferred=inferred,
            observed_at=event.observed_at,
            event_id=event.event_id,
        )
        for base, (relation, source, inferred) in found.items()
    ]


@dataclass(frozen=True, slots=True)
class LineageDispute:
    """A row of ``lineage_disputes``: a claim the Hub's resolution does not share."""

    derivative_id: str
    base_model_id: str
    claimed_by: str
    claimed_relation: str
    resolved_relation: str
    observed_at: datetime
    event_id: str


def lineage_disputes(
    event: ModelCreated | ModelUpdated, edges: list[LineageEdge] | None = None
) -> list[LineageDispute]:
    """The card's claims that differ from the edges :func:`lineage_edges` keeps (pass them
    as ``edges`` when they are at hand)."""
    resolved = {e.base_model_id: e for e in (lineage_edges(event) if edges is None else edges)}
    if not resolved or all(e.source in ("card", "inferred") for e in resolved.values()):
        return []  # the card is the only source: nothing to disagree with
    card_bases = [_normalise(b) for b in event.card_base_models]
    card_bases = [b for b in card_bases if b and b != event.repo_id]
    if event.card_base_model_relation in RELATIONS:
        claimed = event.card_base_model_relation
    else:
        claimed = infer_relation(event, len(card_bases))
    out = []
    for base in card_bases:
        edge = resolved.get(base)
        if edge is not None and (
            edge.relation == claimed or event.card_base_model_relation not in RELATIONS
        ):
            continue  # same claim, or the card states no relation to disagree about
        out.append(
            LineageDispute(
                derivative_id=event.repo_id,
                base_model_id=base,
                claimed_by="card",
                claimed_relation=claimed,
                resolved_relation=edge.relation if edge else "",
                observed_at=event.observed_at,
                event_id=event.event_id,
            )
        )
    return out
