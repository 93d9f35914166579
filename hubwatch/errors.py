"""The exception tree of hubwatch.

    HubwatchError
    ├── SourceError              talking to the Hub or GitHub
    │   ├── SourceUnavailable    timeout, reset, DNS, no network          retriable
    │   └── SourceStatusError    non-2xx answer: .status .url
    │       ├── RateLimited      429 (or GitHub's 403 limit): .retry_after retriable
    │       └── NotFound         repo deleted or made private
    ├── SchemaError              a payload or event breaks the contract
    ├── SinkError                Kafka or ClickHouse write failed (.code if any)
    │   └── NotMigrated          hubwatch's tables not created yet (migrations)  retriable
    └── ConfigError              bad settings, caught at startup

Callers branch on ``retriable`` rather than on lists of classes.
"""

from __future__ import annotations

from typing import ClassVar


class HubwatchError(Exception):
    retriable: ClassVar[bool] = False


class SourceError(HubwatchError):
    """Talking to an upstream API (the Hub, GitHub) failed."""


class SourceUnavailable(SourceError):
    """The request never got an answer: timeout, reset, DNS, no route."""

    retriable = True

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class SourceStatusError(SourceError):
    """The server answered with a status we do not treat as success."""

    def __init__(self, message: str, *, status: int, url: str) -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class RateLimited(SourceStatusError):
    retriable = True

    def __init__(self, message: str, *, status: int, url: str, retry_after: float | None) -> None:
        super().__init__(message, status=status, url=url)
        self.retry_after = retry_after


class NotFound(SourceStatusError):
    """The repo is gone or private; not worth retrying."""


class SchemaError(HubwatchError):
    """A payload or an event does not fit the contract. ``reason`` is short and stable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class SinkError(HubwatchError):
    """Writing to Kafka or ClickHouse failed."""

    def __init__(self, message: str, *, code: int | None = None, retriable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retriable = retriable  # type: ignore[misc]  # per instance: depends on the cause


class NotMigrated(SinkError):
    """hubwatch's tables are not (all) there yet in ``database``: its migrations have not
    run, or are running (the first seconds of ``hubwatch run``). Retriable: they come."""

    def __init__(self, database: str, *, code: int | None = None) -> None:
        super().__init__(
            f"hubwatch's tables are not created yet in database {database}; run `hubwatch "
            "migrate` (or wait for `hubwatch run` to finish starting)",
            code=code,
            retriable=True,
        )
        self.database = database


class ConfigError(HubwatchError):
    """Settings that cannot work; raised at startup, never mid-stream."""


def network_reason(exc: BaseException) -> str:
    """The socket's own words (``connection refused``, ``timed out``) from under the HTTP
    library's wrappers, whose text names pools, query ids and object addresses."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and type(seen).__module__ in ("builtins", "socket"):
            # gaierror carries its words in args, not strerror
            return (seen.strerror or str(seen) or "timed out").lower()
        seen = seen.__cause__ or seen.__context__
    return "no answer"
