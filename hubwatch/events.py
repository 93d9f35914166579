"""The event contract: every record hubwatch carries between producers and processors.

Producers and processors deploy separately and share only this module. Each event is a
small frozen dataclass that registers its ``KIND`` when defined; only :func:`encode` and
:func:`decode` know the JSON wire shape::

    {"kind": "model.created", "version": 1, "event_id": "…", "key": "org/name", "data": {…}}

``event_id`` is derived from the fact an event reports (not from when it was seen), so a
re-poll or a redelivery of the same fact carries the same id; consumers deduplicate on it.
``key`` is the Kafka partition key (a Hub repo id or a GitHub ``owner/name``), which keeps
one repo's events in order.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar, Union

from hubwatch._json import loads
from hubwatch.errors import SchemaError

__all__ = [
    "DEAD_LETTER",
    "DEAD_LETTER_MAX_BYTES",
    "DEFAULT_TOPIC_PREFIX",
    "MAX_RECORD_BYTES",
    "DeadLetter",
    "Event",
    "GithubCommit",
    "GithubIssue",
    "GithubRelease",
    "GithubRepoSnapshot",
    "ModelAlias",
    "ModelCommit",
    "ModelCreated",
    "ModelDiscussion",
    "ModelSnapshot",
    "ModelUpdated",
    "TopicSpec",
    "check_github_repo",
    "check_repo_id",
    "decode",
    "encode",
    "event_types",
    "format_datetime",
    "parse_datetime",
    "topic_for",
    "topics",
]

DEFAULT_TOPIC_PREFIX = "hubwatch."
DEAD_LETTER = "deadletter"
"Suffix of the dead-letter topic (``hubwatch.deadletter`` by default)."

MAX_RECORD_BYTES = 1024 * 1024
"""The largest Kafka record hubwatch writes: the broker's ``message.max.bytes``
(deploy/stack.sh fills it into server.properties), every topic's ``max.message.bytes`` and
the producer's ``max_request_size`` all come from this one number."""

_REGISTRY: dict[str, type[Event]] = {}


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How one Kafka topic is laid out; documented in docs/topics.md."""

    name: str
    key: str
    partitions: int
    cleanup_policy: str
    retention_ms: int
    "-1 keeps records for ever (compacted topics keep the latest per key)."

    def config(self) -> dict[str, str]:
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "max.message.bytes": str(MAX_RECORD_BYTES),
        }


_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Event(abc.ABC):
    """Base of every event. Subclasses set KIND, VERSION and the topic layout."""

    # Not a field: the event id, computed once (a batch asks for it several times).
    __slots__ = ("_event_id",)

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    PARTITIONS: ClassVar[int] = 3
    CLEANUP_POLICY: ClassVar[str] = "delete"
    RETENTION_MS: ClassVar[int] = 30 * _DAY_MS

    def __init_subclass__(cls) -> None:
        # No zero-argument super() here: dataclass(slots=True) re-creates the class, which
        # breaks its __class__ cell. The re-created (slotted) class registers last and wins.
        if cls.KIND:
            _REGISTRY[cls.KIND] = cls

    @property
    @abc.abstractmethod
    def key(self) -> str:
        """The Kafka partition key: the repo whose events stay in order."""

    @abc.abstractmethod
    def identity(self) -> tuple[object, ...]:
        """The parts of the fact this event reports; what ``event_id`` hashes."""

    @property
    def event_id(self) -> str:
        try:
            return self._event_id
        except AttributeError:
            parts = [self.KIND, *(_identity_part(p) for p in self.identity())]
            event_id = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
            object.__setattr__(self, "_event_id", event_id)  # frozen, but this is a cache
            return event_id

    @classmethod
    def topic(cls, prefix: str = DEFAULT_TOPIC_PREFIX) -> TopicSpec:
        return TopicSpec(
            name=prefix + cls.KIND,
            key=_KEY_DOC.get(cls.KIND, "repo id"),
            partitions=cls.PARTITIONS,
            cleanup_policy=cls.CLEANUP_POLICY,
            retention_ms=cls.RETENTION_MS,
        )


def _identity_part(value: object) -> str:
    if isinstance(value, datetime):
        return format_datetime(value)
    return "" if value is None else str(value)


# --- Hub events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelCreated(Event):
    """A model repository seen for the first time on the Hub, with what derivation needs.

    Its topic is compacted; a tombstone there (a null value for a repo id) is not an event
    (:func:`decode` refuses it) and the processors skip it, counted: see README, Topics.
    """

    KIND: ClassVar[str] = "model.created"
    # One record per repo is all a consumer ever needs again: compact, keep for ever.
    CLEANUP_POLICY: ClassVar[str] = "compact"
    RETENTION_MS: ClassVar[int] = -1

    repo_id: str
    "The Hub's ``author/name``."
    created_at: datetime | None
    "None where the Hub has only its 2022-03-02 placeholder (created before it kept dates)."
    observed_at: datetime
    "When the producer saw it (UTC)."
    author: str | None = None
    sha: str | None = None
    last_modified: datetime | None = None
    private: bool | None = None
    gated: str | None = None
    "``false``, ``auto`` or ``manual`` as the Hub reports it."
    pipeline_tag: str | None = None
    library_name: str | None = None
    tags: tuple[str, ...] = ()
    card_base_models: tuple[str, ...] = ()
    "``cardData.base_model`` (string or list) as the card declares it."
    card_base_model_relation: str | None = None
    "``cardData.base_model_relation`` when the card sets it."
    base_models: tuple[str, ...] = ()
    "``expand=baseModels``: the bases the Hub resolved."
    base_models_relation: str | None = None
    "``expand=baseModels`` relation: finetune, quantized, adapter or merge."
    architectures: tuple[str, ...] = ()
    model_type: str | None = None
    parameters: int | None = None
    "``safetensors.total`` where the Hub reports it."
    downloads: int | None = None
    "Downloads over the last 30 days at observation time."
    likes: int | None = None
    siblings: tuple[str, ...] = ()
    "File names in the repo (quantized formats and adapters show here)."
    github_repos: tuple[str, ...] = ()
    "GitHub ``owner/name`` repos the model card links to."
    gguf_parameters: int | None = None
    "``gguf.total``: the parameter count a GGUF file declares."
    card_scores: tuple[tuple[str, str, float], ...] = ()
    "(benchmark, metric, value) the card reports in ``model-index`` or ``evalResults``."
    dropped: tuple[str, ...] = ()
    """Fields the producer left out or cut short: an optional field of an odd shape upstream
    (``cardData.base_model`` as an object…) or trimmed to fit a Kafka record (``siblings``…)."""
    first_seen_at: datetime | None = None
    """When hubwatch first saw the repo listed, by whichever stream (UTC). Days after
    ``created_at`` for a repo created privately and made public later (a late arrival).
    None in records written before producers set it."""

    @property
    def key(self) -> str:
        return self.repo_id

    def identity(self) -> tuple[object, ...]:
        # A repo deleted and created again under the same name is a new model.
        return (self.repo_id, self.created_at)


@dataclass(frozen=True, slots=True)
class ModelUpdated(Event):
    """A known model whose derivation-relevant metadata changed (tags, base models, card
    relation). A model first met through the edits stream is a :class:`ModelCreated`."""

    KIND: ClassVar[str] = "model.updated"

    repo_id: str
    last_modified: datetime
    observed_at: datetime
    changed: tuple[str, ...]
    "Names of the fields below that differ from what hubwatch knew."
    sha: str | None = None
    tags: tuple[str, ...] = ()
    card_base_models: tuple[str, ...] = ()
    card_base_model_relation: str | None = None
    base_models: tuple[str, ...] = ()
    base_models_relation: str | None = None

    @property
    def key(self) -> str:
        return self.repo_id

    def identity(self) -> tuple[object, ...]:
        # One edit is one lastModified (and sha) of the repo.
        return (self.repo_id, self.last_modified, self.sha)


@dataclass(frozen=True, slots=True)
class ModelSnapshot(Event):
    """Engagement counters of one model at the moment one poll saw them."""

    KIND: ClassVar[str] = "model.snapshot"
    RETENTION_MS: ClassVar[int] = 7 * _DAY_MS

    repo_id: str
    observed_at: datetime
    downloads: int | None = None
    "Last 30 days."
    downloads_all_time: int | None = None
    likes: int | None = None
    trending_score: float | None = None

    @property
    def key(self) -> str:
        return self.repo_id

    def identity(self) -> tuple[object, ...]:
        return (self.repo_id, self.observed_at)


@dataclass(frozen=True, slots=True)
class ModelCommit(Event):
    """One commit on a model repo's main branch."""

    KIND: ClassVar[str] = "model.commit"

    repo_id: str
    commit_id: str
    committed_at: datetime | None
    title: str = ""
    authors: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.repo_id

    def identity(self) -> tuple[object, ...]:
        return (self.repo_id, self.commit_id)


@dataclass(frozen=True, slots=True)
class ModelDiscussion(Event):
    """A discussion or pull request on a model repo taking one status at one time: opened
    (its first status, at its creation), or changed to closed, merged or open again."""

    KIND: ClassVar[str] = "model.discussion"

    repo_id: str
    num: int
    title: str
    status: str
    "open, closed, merged or draft."
    is_pull_request: bool
    created_at: datetime | None
    author: str | None = None
    changed_at: datetime | None = None
    "When it took ``status`` (the Hub's status-change event); its creation for the first."

    @property
    def key(self) -> str:
        return self.repo_id

    def identity(self) -> tuple[object, ...]:
        # A status change is news; the same change seen again is not, a reopen is.
        return (self.repo_id, self.num, self.status, self.changed_at)


@dataclass(frozen=True, slots=True)
class ModelAlias(Event):
    """Another name for a model repo: an old one (the repo was renamed or transferred, and
    the Hub's model endpoint redirects it) or another casing (the Hub resolves ids without
    regard to case). Metadata that names ``alias_id`` means ``canonical_id``."""

    KIND: ClassVar[str] = "model.alias"
    # What a name means is needed for ever (a late derivative may still use the old one).
    CLEANUP_POLICY: ClassVar[str] = "compact"
    RETENTION_MS: ClassVar[int] = -1

    alias_id: str
    "The id as some metadata names it."
    canonical_id: str
    "The id the Hub lists the repo under now."
    resolved_by: str
    "``redirect`` (the Hub's model endpoint answered with another id) or ``case``."
    resolved_at: datetime

    @property
    def key(self) -> str:
        return self.alias_id

    def identity(self) -> tuple[object, ...]:
        return (self.alias_id, self.canonical_id)


# --- GitHub events ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GithubCommit(Event):
    KIND: ClassVar[str] = "github.commit"

    repo: str
    "GitHub ``owner/name``."
    sha: str
    committed_at: datetime | None
    message: str = ""
    author: str | None = None

    @property
    def key(self) -> str:
        return self.repo

    def identity(self) -> tuple[object, ...]:
        return (self.repo, self.sha)


@dataclass(frozen=True, slots=True)
class GithubIssue(Event):
    """An issue or pull request as of its ``updated_at``; the processor turns it into the
    status transitions its times show (opened, closed or merged, reopened)."""

    KIND: ClassVar[str] = "github.issue"

    repo: str
    number: int
    title: str
    state: str
    is_pull_request: bool
    created_at: datetime | None
    updated_at: datetime | None
    author: str | None = None
    closed_at: datetime | None = None
    merged_at: datetime | None = None
    "A pull request's ``pull_request.merged_at``."
    state_reason: str | None = None
    "``completed``, ``not_planned`` or ``reopened`` (GitHub sets it on a reopen)."

    @property
    def key(self) -> str:
        return self.repo

    def identity(self) -> tuple[object, ...]:
        return (self.repo, self.number, self.updated_at)


@dataclass(frozen=True, slots=True)
class GithubRelease(Event):
    KIND: ClassVar[str] = "github.release"

    repo: str
    release_id: int
    tag_name: str
    published_at: datetime | None
    name: str = ""
    prerelease: bool = False

    @property
    def key(self) -> str:
        return self.repo

    def identity(self) -> tuple[object, ...]:
        return (self.repo, self.release_id)


@dataclass(frozen=True, slots=True)
class GithubRepoSnapshot(Event):
    """Stars, forks and open issues of a GitHub repo when one poll saw them change."""

    KIND: ClassVar[str] = "github.repo"
    RETENTION_MS: ClassVar[int] = 7 * _DAY_MS

    repo: str
    observed_at: datetime
    stars: int
    forks: int
    open_issues: int
    pushed_at: datetime | None = None

    @property
    def key(self) -> str:
        return self.repo

    def identity(self) -> tuple[object, ...]:
        return (self.repo, self.observed_at)


_KEY_DOC = {
    "model.created": "Hub repo id",
    "model.updated": "Hub repo id",
    "model.snapshot": "Hub repo id",
    "model.commit": "Hub repo id",
    "model.discussion": "Hub repo id",
    "model.alias": "Hub repo id (the alias)",
    "github.commit": "GitHub owner/name",
    "github.issue": "GitHub owner/name",
    "github.release": "GitHub owner/name",
    "github.repo": "GitHub owner/name",
}


# --- dead letters -----------------------------------------------------------------------

DEAD_LETTER_MAX_BYTES = 256 * 1024
"""The most one encoded dead letter (``DeadLetter.to_json()``) takes, whatever it carries:
well inside Kafka's 1 MB record limit, and the bound of a ``dead_letters`` row too."""

# Every field but the payload is cut to a size of its own; the payload gets what is left.
_FIELD_LIMITS = {"stage": 200, "reason": 200, "detail": 2000, "source": 1000, "key": 1000}


def _clean(text: str) -> str:
    """``text`` encodable as UTF-8: a lone surrogate (valid in a JSON string, not in UTF-8)
    is kept as its escape, ``\\udc80``, rather than making the letter unsendable."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _encoded_size(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode())


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input that could not become (or be read as) an event, kept with the reason.

    Bounded whatever it carries: its JSON (:meth:`to_json`) never exceeds
    :data:`DEAD_LETTER_MAX_BYTES`. The payload is cut so that the *encoded* letter fits (JSON
    writes a control byte as six, ``\\u0001``), ``truncated`` says so and ``payload_bytes``
    keeps the original size. The payload is text: bytes that are not UTF-8 are kept as
    ``\\xNN`` escapes (readable in SQL, unlike base64; a literal backslash followed by
    ``xNN`` in the input reads the same, which a dead letter can live with).
    """

    stage: str
    "Where it failed: ``producer.hub``, ``processor.model.created``, …"
    reason: str
    "Short and stable, for counting: ``missing_field``, ``bad_type``, ``bad_json``, …"
    detail: str
    source: str
    "The URL or topic it came from."
    key: str | None
    payload: str
    payload_bytes: int
    "Size of the input as received, before any cut."
    at: datetime
    truncated: bool = False
    "The payload holds only the first part of the input."

    def __post_init__(self) -> None:
        # Frozen: the cut values are set once, here, so no letter can exceed the bound.
        for name, limit in _FIELD_LIMITS.items():
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _clean(value[:limit]))
        payload = _clean(self.payload)
        budget = DEAD_LETTER_MAX_BYTES - len(self._encode(payload="", truncated=False))
        if _encoded_size(payload) - 2 > budget:
            # The longest prefix whose JSON string fits (binary search: each character
            # takes one to six bytes once encoded).
            low, high = 0, len(payload)
            while low < high:
                mid = (low + high + 1) // 2
                if _encoded_size(payload[:mid]) - 2 <= budget:
                    low = mid
                else:
                    high = mid - 1
            payload = payload[:low]
            object.__setattr__(self, "truncated", True)
        object.__setattr__(self, "payload", payload)

    @classmethod
    def of(
        cls, *, stage: str, error: SchemaError, source: str, key: str | None, payload: bytes | str
    ) -> DeadLetter:
        if isinstance(payload, bytes):
            text, size = payload.decode("utf-8", "backslashreplace"), len(payload)
        else:  # already text; lone surrogates are escaped when the letter is built
            text, size = payload, len(payload.encode("utf-8", "surrogatepass"))
        return cls(
            stage=stage,
            reason=error.reason,
            detail=error.detail,
            source=source,
            key=key,
            payload=text,
            payload_bytes=size,
            at=datetime.now(UTC),
        )

    @classmethod
    def from_json(cls, raw: bytes) -> DeadLetter:
        try:
            body = json.loads(raw)
            return cls(
                **{
                    f.name: body[f.name]
                    for f in dataclasses.fields(cls)
                    if f.name not in ("at", "truncated")
                },
                at=parse_datetime(body["at"]),
                truncated=bool(body.get("truncated", False)),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SchemaError("bad_dead_letter", str(exc)[:200]) from exc

    def to_json(self) -> bytes:
        return self._encode(payload=self.payload, truncated=self.truncated)

    def _encode(self, *, payload: str, truncated: bool) -> bytes:
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        body["at"] = format_datetime(self.at)
        body["payload"] = payload
        body["truncated"] = truncated
        return json.dumps(body, ensure_ascii=False).encode()


# --- identifiers ----------------------------------------------------------------------

# The Hub's repo ids: optional namespace, then name; ASCII letters, digits, - _ . only.
_HUB_REPO_ID = re.compile(r"(?:[A-Za-z0-9][\w.-]{0,95}/)?[\w.-]{1,96}", re.ASCII)
# GitHub: a login (letters, digits, hyphens; 39 at most), then a repo name.
_GITHUB_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[\w.-]{1,100}", re.ASCII)


def _check_id(value: object, pattern: re.Pattern[str], where: str) -> str:
    if value is None:
        raise SchemaError("missing_field", where)
    if not isinstance(value, str):
        raise SchemaError("bad_type", f"{where}: expected str")
    if not pattern.fullmatch(value) or ".." in value:
        raise SchemaError("bad_repo_id", f"{where}: {value[:200]!r}")
    return value


def check_repo_id(value: object, where: str = "id") -> str:
    """``value`` if it is a Hub repo id (``org/name`` or a legacy bare name), else SchemaError.
    Producers, the webhook receiver and the processors apply the same rule."""
    return _check_id(value, _HUB_REPO_ID, where)


def check_github_repo(value: object, where: str = "repo") -> str:
    """``value`` if it is a GitHub ``owner/name``, else SchemaError."""
    return _check_id(value, _GITHUB_REPO, where)


# --- wire format ------------------------------------------------------------------------


def event_types() -> dict[str, type[Event]]:
    """Every registered kind, by KIND."""
    return dict(_REGISTRY)


def topics(prefix: str = DEFAULT_TOPIC_PREFIX) -> list[TopicSpec]:
    """Every topic hubwatch uses, dead letters last."""
    specs = [cls.topic(prefix) for cls in _REGISTRY.values()]
    specs.append(
        TopicSpec(
            prefix + DEAD_LETTER, "the failed record's key, if any", 1, "delete", 30 * _DAY_MS
        )
    )
    return specs


def topic_for(kind: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    """The topic of an event kind, or of dead letters (``kind=DEAD_LETTER``)."""
    return prefix + kind


def format_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise SchemaError("naive_datetime", "timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_datetime(value: str) -> datetime:
    """ISO 8601 to an aware UTC datetime; accepts ``Z`` and the Python client's spaced form."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError) as exc:
        raise SchemaError("bad_datetime", repr(value)[:100]) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def encode(event: Event) -> bytes:
    data = {f.name: _to_wire(getattr(event, f.name)) for f in dataclasses.fields(event)}
    envelope = {
        "kind": event.KIND,
        "version": event.VERSION,
        "event_id": event.event_id,
        "key": event.key,
        "data": data,
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def decode(raw: bytes | str | None) -> Event:
    """Bytes from the wire to an event; anything off raises :class:`SchemaError`.

    ``None`` is a tombstone (a null value: "this key is deleted" on a compacted topic), not
    an event (``tombstone``). An envelope whose ``key`` is not the event's own key is
    refused (``key_mismatch``): the key decides the partition, and so the order.
    """
    if raw is None:
        raise SchemaError("tombstone", "a null value (a deleted key), not an event")
    if not isinstance(raw, bytes | bytearray | memoryview | str):
        raise SchemaError("bad_envelope", f"a {type(raw).__name__}, not bytes")
    try:
        envelope = loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SchemaError("bad_json", str(exc)[:200]) from exc
    if not isinstance(envelope, dict):
        raise SchemaError("bad_envelope", "not a JSON object")
    kind = envelope.get("kind")
    cls = _REGISTRY.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SchemaError("unknown_kind", repr(kind)[:100])
    version = envelope.get("version")
    if version != cls.VERSION:
        raise SchemaError(
            "unknown_version", f"{kind} v{version!r}, this build reads v{cls.VERSION}"
        )
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise SchemaError("bad_envelope", "data is not an object")
    event = from_fields(cls, data)
    key = envelope.get("key")
    if key is not None and key != event.key:
        raise SchemaError("key_mismatch", f"envelope key {key!r:.200} is not {event.key!r:.200}")
    return event


def from_fields(cls: type[_E], data: dict[str, Any]) -> _E:
    """Build ``cls`` from plain JSON values, checking each against its annotation."""
    values: dict[str, Any] = {}
    for name, convert, required in _readers(cls):
        if name not in data:
            if required:
                raise SchemaError("missing_field", f"{cls.KIND}.{name}")
            continue
        values[name] = convert(data[name])
    return cls(**values)


_Reader = tuple[str, Callable[[Any], Any], bool]
_READERS: dict[type, list[_Reader]] = {}
_E = TypeVar("_E", bound=Event)


def _readers(cls: type[Event]) -> list[_Reader]:
    """Per field: its name, a converter built once from its annotation, and whether it is
    required (resolving annotations per value cost more than the rest of decoding)."""
    readers = _READERS.get(cls)
    if readers is None:
        hints = typing.get_type_hints(cls)
        readers = _READERS[cls] = [
            (
                f.name,
                _converter(hints[f.name], f"{cls.KIND}.{f.name}"),
                f.default is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls)
        ]
    return readers


def _to_wire(value: object) -> object:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, tuple):
        return (
            [_to_wire(v) for v in value] if value and isinstance(value[0], tuple) else list(value)
        )
    return value


def _converter(hint: Any, where: str) -> Callable[[Any], Any]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        (inner_hint,) = [a for a in args if a is not type(None)]
        inner = _converter(inner_hint, where)
        if type(None) not in args:
            return inner
        return lambda value: None if value is None else inner(value)
    if origin is tuple and typing.get_args(hint)[-1] is not Ellipsis:
        parts = [_converter(h, where) for h in typing.get_args(hint)]

        def to_record(value: Any) -> tuple[Any, ...]:
            if not isinstance(value, list) or len(value) != len(parts):
                raise SchemaError("bad_type", f"{where}: expected a list of {len(parts)}")
            return tuple(convert(v) for convert, v in zip(parts, value, strict=True))

        return to_record
    if origin is tuple:
        item = _converter(typing.get_args(hint)[0], where)

        def to_tuple(value: Any) -> tuple[Any, ...]:
            if not isinstance(value, list):
                raise SchemaError("bad_type", f"{where}: expected a list")
            return tuple(item(v) for v in value)

        return to_tuple
    if hint is datetime:

        def to_datetime(value: Any) -> datetime:
            if not isinstance(value, str):
                raise SchemaError("bad_type", f"{where}: expected an ISO timestamp")
            return parse_datetime(value)

        return to_datetime

    def checked(value: Any) -> Any:
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        # bool is an int in Python; keep them apart so a flag never passes for a count.
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise SchemaError("bad_type", f"{where}: expected {hint.__name__}")
        return value

    return checked
