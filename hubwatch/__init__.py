"""hubwatch: a live monitor of how open models derive from each other on the Hugging Face Hub.

This package holds what producers and processors share: the event contract, the exception
tree, settings, ClickHouse migrations and the CLI.
"""

from hubwatch.errors import (
    ConfigError,
    HubwatchError,
    NotFound,
    RateLimited,
    SchemaError,
    SinkError,
    SourceError,
    SourceStatusError,
    SourceUnavailable,
)
from hubwatch.events import (
    DeadLetter,
    Event,
    GithubCommit,
    GithubIssue,
    GithubRelease,
    GithubRepoSnapshot,
    ModelAlias,
    ModelCommit,
    ModelCreated,
    ModelDiscussion,
    ModelSnapshot,
    ModelUpdated,
    decode,
    encode,
)
from hubwatch.settings import Settings

__version__ = "0.1.0"

__all__ = [
    # errors
    "ConfigError",
    # events
    "DeadLetter",
    "Event",
    "GithubCommit",
    "GithubIssue",
    "GithubRelease",
    "GithubRepoSnapshot",
    "HubwatchError",
    "ModelAlias",
    "ModelCommit",
    "ModelCreated",
    "ModelDiscussion",
    "ModelSnapshot",
    "ModelUpdated",
    "NotFound",
    "RateLimited",
    "SchemaError",
    # settings
    "Settings",
    "SinkError",
    "SourceError",
    "SourceStatusError",
    "SourceUnavailable",
    "decode",
    "encode",
]
