"""What the real Hub and GitHub APIs accept, so the replay refuses what they refuse.

A double that ignores what it does not understand lets a wrong parameter pass every test and
fail only against the real service. So each endpoint here names the parameters the service
documents; the replay honours those it emulates, answers 400 (Hub) or 422 (GitHub) for what
the service itself rejects (an unknown parameter or ``expand``, a ``since`` that is not a
time), and 501 Not Implemented for a parameter the service accepts but the replay cannot
answer truthfully: the call is right, the double is what falls short, and a test failing on
it says so. Sources: ``shared/reference/hub_api.md``, ``github_api.md``, and huggingface_hub
(``ExpandModelProperty_T``; PR #3182: ``baseModels``, ``childrenModelCount`` and
``usedStorage`` are accepted by ``/api/models/{id}`` only, not by the listing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

__all__ = [
    "INFO_EXPAND",
    "LIST_DEFAULT_FIELDS",
    "LIST_EXPAND",
    "LIST_FULL_FIELDS",
    "bad_parameters",
    "github_time",
    "info_expand",
    "list_fields",
    "not_emulated",
]

INFO_EXPAND = frozenset(
    {
        "author",
        "baseModels",
        "cardData",
        "childrenModelCount",
        "config",
        "createdAt",
        "disabled",
        "downloads",
        "downloadsAllTime",
        "evalResults",
        "gated",
        "gguf",
        "inference",
        "inferenceProviderMapping",
        "lastModified",
        "library_name",
        "likes",
        "mask_token",
        "model-index",
        "pipeline_tag",
        "private",
        "resourceGroup",
        "safetensors",
        "sha",
        "siblings",
        "spaces",
        "tags",
        "transformersInfo",
        "trendingScore",
        "usedStorage",
        "widgetData",
    }
)
"``expand`` values ``/api/models/{id}`` accepts."

LIST_EXPAND = INFO_EXPAND - {"baseModels", "childrenModelCount", "usedStorage"}
"``expand`` values ``/api/models`` accepts: the listing refuses the three computed per repo."

LIST_DEFAULT_FIELDS = (
    "likes",
    "trendingScore",
    "private",
    "downloads",
    "tags",
    "pipeline_tag",
    "library_name",
    "createdAt",
)
"What a listing item carries without ``expand`` (plus ``_id``, ``id`` and ``modelId``)."

LIST_FULL_FIELDS = LIST_EXPAND - {"cardData", "config"}
"``full=true``: most fields; ``config`` and ``cardData`` have their own flags."

_TRUE = ("true", "1")


def bad_parameters(
    query: Mapping[str, object], emulated: Iterable[str], documented: Iterable[str] = ()
) -> str | None:
    """Why the service itself refuses this query (400 / 422), or None.

    ``emulated`` parameters are honoured; ``documented`` ones the service takes but the
    replay cannot answer truthfully (:func:`not_emulated`: 501); anything else is no
    parameter of the endpoint at all. A silent "ignored" would be the leniency that hides a
    wrong call.
    """
    known = set(emulated) | set(documented)
    for name in query:
        if name not in known:
            return f"unknown parameter {name!r}"
    return None


def not_emulated(query: Mapping[str, object], documented: Iterable[str]) -> str | None:
    """The 501 message for a parameter the real service accepts and the replay does not
    emulate, or None. Checked after :func:`bad_parameters`: what the service would refuse
    is refused as it would be."""
    for name in query:
        if name in set(documented):
            return (
                f"the replay does not implement the {name!r} parameter, which the real API "
                "accepts: the request is valid, the double cannot answer it truthfully"
            )
    return None


def list_fields(query: Mapping[str, list[str]]) -> tuple[frozenset[str] | None, str | None]:
    """The fields a ``/api/models`` item shows for this query, or the Hub's 400 message.

    None as the field set means the default listing fields.
    """
    expand = query.get("expand", []) + query.get("expand[]", [])
    flags = {
        name: (query.get(name) or ["false"])[-1].lower() in _TRUE
        for name in ("full", "config", "cardData")
    }
    if expand:
        if any(flags.values()):
            return None, "expand cannot be combined with full, config or cardData"
        unknown = sorted(set(expand) - LIST_EXPAND)
        if unknown:
            allowed = ", ".join(sorted(LIST_EXPAND))
            return None, f'"expand" must be one of [{allowed}]; got {", ".join(unknown)}'
        return frozenset(expand), None
    if not any(flags.values()):
        return None, None
    fields = set(LIST_FULL_FIELDS) if flags["full"] else set(LIST_DEFAULT_FIELDS)
    fields |= {name for name in ("config", "cardData") if flags[name]}
    return frozenset(fields), None


def info_expand(query: Mapping[str, list[str]]) -> tuple[frozenset[str] | None, str | None]:
    """``/api/models/{id}``: every field, or the ``expand`` subset, or the Hub's 400."""
    expand = query.get("expand", []) + query.get("expand[]", [])
    if not expand:
        return None, None
    unknown = sorted(set(expand) - INFO_EXPAND)
    if unknown:
        allowed = ", ".join(sorted(INFO_EXPAND))
        return None, f'"expand" must be one of [{allowed}]; got {", ".join(unknown)}'
    return frozenset(expand), None


def github_time(value: str) -> datetime | None:
    """An ISO 8601 ``since``/``until`` as GitHub reads it (``Z``, offsets, fractions, or a
    bare date), or None when it is not a time."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
