"""Does a model match a rule? Plain functions over plain facts, the same for the stream
processors and for ``hubwatch alerts test`` (which reads the facts back from ClickHouse)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hubwatch.alerts.rules import Match, Rule

__all__ = ["EngagementFacts", "ModelFacts", "licence_of", "match_model", "quantization_formats"]

_FORMAT_HINTS = {
    "gguf": ("gguf",),
    "gptq": ("gptq",),
    "awq": ("awq",),
    "exl2": ("exl2", "exl3"),
    "mlx": ("mlx",),
    "bnb": ("bnb", "bitsandbytes", "4bit", "8bit"),
}


def licence_of(tags: tuple[str, ...] | list[str]) -> str:
    """The Hub's ``license:`` tag, "" when the model has none."""
    for tag in tags:
        if tag.startswith("license:"):
            return tag.removeprefix("license:").lower()
    return ""


def quantization_formats(tags: tuple[str, ...], siblings: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The quantization formats a model's tags and file names show."""
    names = [t.lower() for t in tags] + [s.lower() for s in siblings]
    return tuple(
        fmt
        for fmt, hints in _FORMAT_HINTS.items()
        if any(hint in name for name in names for hint in hints)
    )


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What rules look at about one model."""

    model_id: str
    author: str
    created_at: datetime | None
    relation: str
    "To its primary base; empty for a root."
    ancestors: tuple[str, ...]
    "Primary base first, then its base, up to the family's root (canonical ids)."
    bases: tuple[str, ...] = ()
    "Every base the model names directly (a merge has several)."
    architectures: tuple[str, ...] = ()
    parameters: int | None = None
    quant_bits: int | None = None
    formats: tuple[str, ...] = ()
    licence: str = ""
    base_licence: str | None = None
    "The primary base's licence; None when the base is unknown."
    card_text: str = ""


@dataclass(frozen=True, slots=True)
class EngagementFacts:
    likes_1h: int
    likes_24h: int
    likes_7d: int
    downloads_1h: int
    downloads_24h: int
    downloads_7d: int
    velocity: float
    breakout: float | None = None
    "Velocity over the larger of the base's and 1 download an hour; None without a base."

    def get(self, name: str) -> float | None:
        return getattr(self, name)


def _watched_base(match: Match, facts: ModelFacts, canonical: dict[str, str]) -> str | None:
    """The watched base the model derives from (canonical), or None."""
    direct = set(facts.bases) | set(facts.ancestors[:1])
    line = facts.ancestors if match.descendants else ()
    for base in match.base_models:
        watched = canonical.get(base, base)
        if watched in direct or watched in line:
            return watched
    return None


def match_model(
    rule: Rule,
    facts: ModelFacts,
    at: datetime,
    *,
    engagement: EngagementFacts | None = None,
    canonical: dict[str, str] | None = None,
) -> str | None:
    """None if ``facts`` do not satisfy ``rule`` at ``at``; else the base the alert is
    about (the watched base matched, or the model's primary base, "" for a root).

    Engagement thresholds are checked only with ``engagement`` (a snapshot); a rule with
    thresholds never matches without it, and one without never matches with it."""
    m = rule.match
    if bool(m.engagement) != (engagement is not None):
        return None
    base = facts.ancestors[0] if facts.ancestors else ""
    if m.base_models:
        watched = _watched_base(m, facts, canonical or {})
        if watched is None:
            return None
        base = watched
    if m.authors and facts.author.lower() not in m.authors:
        return None
    if m.architectures and not set(m.architectures) & set(facts.architectures):
        return None
    if m.relations and facts.relation not in m.relations:
        return None
    if m.parameters is not None and not m.parameters.holds(facts.parameters):
        return None
    if m.quantization is not None:
        quantized = (
            facts.relation == "quantized" or facts.quant_bits is not None or bool(facts.formats)
        )
        if isinstance(m.quantization, bool):
            if quantized != m.quantization:
                return None
        elif not set(m.quantization) & set(facts.formats):
            return None
    if m.licences and facts.licence not in m.licences:
        return None
    if m.licence_differs_from_base is not None:
        if facts.base_licence is None or not facts.ancestors:
            return None  # nothing known to compare with
        if (facts.licence != facts.base_licence) != m.licence_differs_from_base:
            return None
    if m.card is not None and not m.card.search(facts.card_text):
        return None
    if engagement is None and m.max_age_seconds is not None:
        age = None if facts.created_at is None else (at - facts.created_at).total_seconds()
        if age is None or age > m.max_age_seconds:
            return None
    if engagement is not None:
        for name, minimum in m.engagement.items():
            value = engagement.get(name)
            if value is None or value < minimum:
                return None
    return base
