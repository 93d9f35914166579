"""Settings, read once from the environment (``HUBWATCH_*``), overridable by CLI flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from hubwatch.errors import ConfigError
from hubwatch.retention import DEFAULT_SNAPSHOT_RETENTION_DAYS, MIN_SNAPSHOT_RETENTION_DAYS

__all__ = ["Settings", "split_list"]

LIVE_HUB_URL = "https://huggingface.co"


@dataclass(frozen=True, slots=True)
class Settings:
    hub_url: str = LIVE_HUB_URL
    hf_token: str | None = dataclasses.field(default=None, repr=False)
    "Read from HF_TOKEN; never logged (repr=False)."
    github_url: str = "https://api.github.com"
    github_token: str | None = dataclasses.field(default=None, repr=False)
    "Read from GITHUB_TOKEN; never logged."
    github_repos: str = ""
    "Comma-separated owner/name repos to follow (repos linked from model cards come too)."
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_request_timeout: float = 40.0
    "Seconds one Kafka request may take (the producer's request_timeout_ms)."
    kafka_delivery_timeout: float = 30.0
    "Seconds a poller waits for Kafka to acknowledge a round before it waits Kafka out."
    sink_retry_max: float = 60.0
    "Longest pause between a poller's retries while Kafka is unavailable (doubling from 1 s)."
    topic_prefix: str = "hubwatch."
    "Prefix of every topic name; lets several hubwatch deployments share one cluster."
    clickhouse_url: str = "http://127.0.0.1:8123"
    clickhouse_database: str = "hubwatch"
    snapshot_retention_days: int = DEFAULT_SNAPSHOT_RETENTION_DAYS
    """Days raw model_snapshots are kept (engagement_hourly keeps their hourly aggregates
    for ever); 0: for ever. Applied by ``hubwatch migrate`` (and embedded mode's start)."""
    state_dir: Path = Path(".hubwatch")
    "Checkpoints, and in embedded mode the ClickHouse data directory."
    poll_interval: float = 60.0
    "Seconds between polls of the new-uploads stream."
    overlap_seconds: float = 120.0
    "How far behind the createdAt watermark each poll looks again (late-listed uploads)."
    initial_lookback_seconds: float | None = 3600.0
    "On a first poll with no checkpoint, how far back to start; None: everything listed."
    page_limit: int = 500
    hub_streams: str = "uploads,edits,engagement,community"
    "Which Hub streams ``poll hub`` and ``run`` drive."
    rate_share: float = 0.8
    "Share of each API's rate limit hubwatch may use; the rest is left for other clients."
    hub_requests_per_window: int = 1000
    "The Hub's API quota per 5 minutes (free user); the server's own headers win."
    github_requests_per_hour: int = 5000
    edits_interval: float = 60.0
    engagement_interval: float = 30.0
    engagement_bulk_every: float = 300.0
    "Seconds between bulk trending snapshot calls (1,000 models each)."
    snapshot_requests_per_window: int = 150
    "Per-model snapshot calls per 5 minutes (one bulk trending call comes on top)."
    community_interval: float = 60.0
    community_min_likes: int = 10
    community_repo_interval: float = 3600.0
    "How often one followed model's commits and discussions are polled."
    watched_orgs: str = ""
    watched_base_models: str = ""
    github_interval: float = 300.0
    webhook_port: int | None = None
    "Serve Hub webhooks on 127.0.0.1:PORT/webhooks/hub (needs webhook_secret)."
    webhook_secret: str | None = dataclasses.field(default=None, repr=False)
    batch_size: int = 500
    "Rows per ClickHouse insert."
    batch_seconds: float = 1.0
    "Longest wait before a partial batch is written."
    processor_app_id: str = "hubwatch-processors"
    processor_instance_id: str | None = "processor-1"
    """Static group membership (``group.instance.id``): a processor started again with the
    same id takes its partitions back at once (a killed one's replacement works in ~3 s).
    Unique per running processor; empty: dynamic membership."""
    processor_session_timeout: float = 10.0
    """Seconds Kafka waits for a silent processor (killed, hung) before its partitions go
    to another member; heartbeats go every fifth of it. Kafka accepts 6 to 300."""
    metrics_port: int | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            name = _ENV_NAMES.get(f.name, f"HUBWATCH_{f.name.upper()}")
            if name in env:
                values[f.name] = _convert(f.name, str(f.type), env[name])
        values.update(overrides)  # applied as given: None can be a deliberate value
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def validate(self) -> None:
        for name in ("hub_url", "clickhouse_url", "github_url"):
            url = getattr(self, name)
            if urlsplit(url).scheme not in ("http", "https"):
                raise ConfigError(f"{name} must be an http(s) URL, got {url!r}")
        if not 6 <= self.processor_session_timeout <= 300:
            # The broker's group.min/max.session.timeout.ms defaults.
            raise ConfigError("processor_session_timeout must be between 6 and 300 seconds")
        if self.poll_interval <= 0 or self.batch_seconds <= 0:
            raise ConfigError("poll_interval and batch_seconds must be positive")
        if min(self.kafka_request_timeout, self.kafka_delivery_timeout, self.sink_retry_max) <= 0:
            raise ConfigError("Kafka timeouts and sink_retry_max must be positive")
        if not 0 < self.rate_share <= 1:
            raise ConfigError("rate_share must be in (0, 1]")
        if self.webhook_port is not None and not self.webhook_secret:
            raise ConfigError("webhook_port needs HUBWATCH_WEBHOOK_SECRET")
        unknown = set(split_list(self.hub_streams)) - {
            "uploads",
            "edits",
            "engagement",
            "community",
        }
        if unknown:
            raise ConfigError(f"unknown hub streams: {', '.join(sorted(unknown))}")
        if not 1 <= self.page_limit <= 1000:
            raise ConfigError("page_limit must be between 1 and 1000")
        days = self.snapshot_retention_days
        if days != 0 and days < MIN_SNAPSHOT_RETENTION_DAYS:
            raise ConfigError(
                f"snapshot_retention_days must be 0 (for ever) or at least "
                f"{MIN_SNAPSHOT_RETENTION_DAYS}, got {days}"
            )
        if not self.clickhouse_database.replace("_", "").isalnum():
            raise ConfigError(
                f"clickhouse_database must be a plain identifier, got {self.clickhouse_database!r}"
            )

    @property
    def checkpoint_dir(self) -> Path:
        return self.state_dir / "checkpoints"

    @property
    def clickhouse_data_dir(self) -> Path:
        return self.state_dir / "clickhouse"


_ENV_NAMES = {"hf_token": "HF_TOKEN", "github_token": "GITHUB_TOKEN"}


def split_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _convert(name: str, type_name: str, raw: str) -> object:
    try:
        if "Path" in type_name:
            return Path(raw)
        if raw == "" and "None" in type_name:
            return None
        if type_name.startswith("float"):
            return float(raw)
        if type_name.startswith("int"):
            return int(raw)
    except ValueError as exc:
        raise ConfigError(f"HUBWATCH_{name.upper()}={raw!r} is not a number") from exc
    return raw
