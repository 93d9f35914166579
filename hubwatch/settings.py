"""Settings, read once from the environment (``HUBWATCH_*``), overridable by CLI flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from hubwatch.errors import ConfigError
from hubwatch.retention import DEFAULT_SNAPSHOT_RETENTION_DAYS, MIN_SNAPSHOT_RETENTION_DAYS

__all__ = ["Settings", "parse_bool", "split_list"]

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
    kafka_request_timeout: float = 20.0
    "Seconds one Kafka request may take (the producer's request_timeout_ms)."
    kafka_delivery_timeout: float = 30.0
    """Seconds a poller waits for Kafka to acknowledge a round before it waits Kafka out; at
    least the request timeout, or a slow but healthy request would count as an outage."""
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
    hub_streams: str = "uploads,edits,engagement,community,reconcile,aliases"
    "Which Hub streams ``poll hub`` and ``run`` drive."
    rate_share: float = 0.8
    "Share of each API's rate limit hubwatch may use; the rest is left for other clients."
    hub_requests_per_window: int = 1000
    "The Hub's API quota per 5 minutes (free user); the server's own headers win."
    github_requests_per_hour: int = 5000
    edits_interval: float = 60.0
    engagement_interval: float = 30.0
    engagement_bulk_every: float = 300.0
    "Seconds between rounds of bulk snapshot calls (1,000 models each, one per sort)."
    engagement_bulk_sorts: str = "trendingScore,likes,downloads,lastModified"
    "The list orders each bulk round reads (the Hub's sort names)."
    snapshot_requests_per_window: int = 150
    """Engagement calls per 5 minutes, bulk and per-model: the engagement stream's reserved
    share of the Hub budget; the snapshot schedule promises each tier what the per-model
    part of it buys (README, "Engagement snapshots")."""
    hub_shares: str = "uploads=200,edits=60,community=250,reconcile=60,aliases=40,first_seen=20"
    """Each other Hub stream's reserved share of the Hub budget, in calls per 5 minutes
    (``first_seen``: lookups of repos a webhook or bulk call named). A stream never spends
    more than its share, so no stream can eat another's; together with the engagement
    share they must fit ``hub_requests_per_window * rate_share``."""
    community_interval: float = 60.0
    community_min_likes: int = 10
    community_repo_interval: float = 3600.0
    "How often one followed model's commits and discussions are polled."
    watched_orgs: str = ""
    watched_base_models: str = ""
    github_interval: float = 300.0
    "Seconds between GitHub rounds; each polls the due repos the budget affords."
    github_repo_interval: float = 3600.0
    "How often one followed GitHub repo is polled, budget allowing (else: overdue)."
    github_max_repos: int | None = None
    """At most this many GitHub repos followed: configured ones always, then those linked
    from model cards by the likes and downloads of the models linking them. Empty: as many
    as the budget polls once per ``github_repo_interval`` (~10 anonymous, ~1,000 with a
    token)."""
    github_lookback_days: float | None = 3.0
    "How far back a newly followed GitHub repo is read; empty: its whole history."
    reconcile_interval: float = 3600.0
    "Seconds between reconciliation sweeps (repos no stream reported, e.g. listed late)."
    reconcile_days: float = 7.0
    "How far back in createdAt each sweep looks."
    reconcile_lookups: int = 200
    "Per-repo lookups a sweep may spend on unseen repos; the rest wait for the next one."
    deep_reconcile_days: float = 90.0
    """How far back the daily deep sweep looks (beyond the hourly sweep's window), within
    the reconcile share; not above ``reconcile_days``: no deep sweep."""
    deep_reconcile_interval: float = 86_400.0
    deep_reconcile_pages: int = 300
    "Listing pages (1,000 ids each) one deep sweep may read: its bound."
    first_seen_interval: float = 10.0
    """Seconds between lookups of repos a webhook (or an engagement bulk call) named before
    any listing showed them: reported as first seen within seconds, not at the next sweep."""
    first_seen_lookups: int = 20
    "Model-endpoint lookups one first-seen round may spend (within the first_seen share)."
    alias_interval: float = 300.0
    "Seconds between rounds resolving base ids the Hub does not list under that name."
    alias_lookups: int = 100
    "Model-endpoint lookups one alias round may spend (one per unknown base id, ever)."
    webhook_port: int | None = None
    "Serve Hub webhooks on 127.0.0.1:PORT/webhooks/hub (needs webhook_secret)."
    webhook_secret: str | None = dataclasses.field(default=None, repr=False)
    batch_size: int = 500
    "Rows per ClickHouse insert."
    batch_seconds: float = 1.0
    "Longest wait before a partial batch is written."
    processor_app_id: str = "hubwatch-processors"
    processor_instance_id: str | None = None
    """Static group membership (``group.instance.id``), off by default: a processor started
    again with the same id takes its partitions back at once (~3 s instead of a session
    timeout). Must be unique per running processor: Kafka does not fence a second member
    with the same id under aiokafka, and both would then consume every partition."""
    processor_session_timeout: float = 10.0
    """Seconds Kafka waits for a silent processor (killed, hung) before its partitions go
    to another member; heartbeats go every fifth of it. Kafka accepts 6 to 300."""
    metrics_port: int | None = None
    alert_rules: Path | None = None
    "Alert rules (YAML, docs/alerts.md); none: no alerts."
    alert_targets: str = ""
    "More delivery targets, name=type=url, comma-separated: webhook URLs out of the rules file."
    alert_retry_seconds: float = 5.0
    "First wait before a failed alert delivery is tried again; doubles each time."
    alert_retry_max_seconds: float = 300.0
    "Longest wait between delivery attempts."
    metrics_host: str = "127.0.0.1"
    "Address --metrics-port listens on (0.0.0.0 in a container Prometheus scrapes)."
    lag_interval: float = 15.0
    "Seconds between the processors' readings of their consumer lag (a metric)."
    summary_watch_interval: float = 15.0
    "Seconds between the processors' readings of the summaries' refresh state (metrics)."
    view_port: int = 8787
    "The built-in web view of the dashboards' panels (``run``, ``serve``); 0: off."
    prometheus_url: str | None = None
    "Where ``serve`` reads the operations panels' PromQL; without it they say so."
    status_interval: float = 30.0
    "Seconds between ``run``'s one-line status summaries when stdout is not a terminal."

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
        if not 0 < self.alert_retry_seconds <= self.alert_retry_max_seconds:
            raise ConfigError("alert_retry_seconds must be positive and at most its maximum")
        if not 0 <= self.view_port <= 65535:
            raise ConfigError(f"view_port must be a port number (0: off), got {self.view_port}")
        if self.status_interval <= 0:
            raise ConfigError("status_interval must be positive")
        if self.poll_interval <= 0 or self.batch_seconds <= 0:
            raise ConfigError("poll_interval and batch_seconds must be positive")
        if min(self.kafka_request_timeout, self.kafka_delivery_timeout, self.sink_retry_max) <= 0:
            raise ConfigError("Kafka timeouts and sink_retry_max must be positive")
        if self.kafka_delivery_timeout < self.kafka_request_timeout:
            # Kafka's own rule (delivery.timeout.ms >= request.timeout.ms + linger.ms).
            raise ConfigError("kafka_delivery_timeout must be at least kafka_request_timeout")
        if not 0 < self.rate_share <= 1:
            raise ConfigError("rate_share must be in (0, 1]")
        if self.webhook_port is not None and not self.webhook_secret:
            raise ConfigError("webhook_port needs HUBWATCH_WEBHOOK_SECRET")
        unknown = set(split_list(self.hub_streams)) - {
            "uploads",
            "edits",
            "engagement",
            "community",
            "reconcile",
            "aliases",
        }
        if unknown:
            raise ConfigError(f"unknown hub streams: {', '.join(sorted(unknown))}")
        if self.github_interval <= 0 or self.github_repo_interval < 0:
            raise ConfigError("github_interval must be positive, github_repo_interval not negative")
        if self.github_max_repos is not None and self.github_max_repos < 1:
            raise ConfigError("github_max_repos must be positive (empty: what the budget polls)")
        if self.github_lookback_days is not None and self.github_lookback_days < 0:
            raise ConfigError("github_lookback_days must not be negative")
        bad_sorts = set(split_list(self.engagement_bulk_sorts)) - {
            "trendingScore",
            "likes",
            "downloads",
            "lastModified",
            "createdAt",
        }
        if bad_sorts:
            raise ConfigError(f"unknown engagement bulk sorts: {', '.join(sorted(bad_sorts))}")
        if self.snapshot_requests_per_window < 1 or self.engagement_bulk_every <= 0:
            raise ConfigError(
                "snapshot_requests_per_window and engagement_bulk_every must be positive"
            )
        if self.deep_reconcile_pages < 1 or self.deep_reconcile_interval <= 0:
            raise ConfigError("deep_reconcile_pages and deep_reconcile_interval must be positive")
        if self.first_seen_interval <= 0 or self.first_seen_lookups < 1:
            raise ConfigError("first_seen_interval and first_seen_lookups must be positive")
        shares = self.hub_share_map()
        if sum(shares.values()) > self.hub_requests_per_window * self.rate_share:
            raise ConfigError(
                f"the Hub streams' shares add up to {sum(shares.values())} calls per 5 min, "
                f"more than the {self.hub_requests_per_window * self.rate_share:.0f} "
                "hubwatch may use (HUBWATCH_HUB_SHARES, HUBWATCH_SNAPSHOT_REQUESTS_PER_WINDOW)"
            )
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

    def hub_share_map(self) -> dict[str, int]:
        """Calls per 5 minutes reserved for each Hub stream, engagement included."""
        shares: dict[str, int] = {}
        for part in split_list(self.hub_shares):
            stream, _, value = part.partition("=")
            stream = stream.strip()
            if stream not in HUB_SHARE_STREAMS or stream == "engagement":
                raise ConfigError(
                    f"HUBWATCH_HUB_SHARES: unknown stream {stream!r} (one of "
                    f"{', '.join(s for s in HUB_SHARE_STREAMS if s != 'engagement')}; the "
                    "engagement share is HUBWATCH_SNAPSHOT_REQUESTS_PER_WINDOW)"
                )
            try:
                shares[stream] = int(value)
            except ValueError as exc:
                raise ConfigError(f"HUBWATCH_HUB_SHARES: {part!r} is not stream=number") from exc
            if shares[stream] < 1:
                raise ConfigError(f"HUBWATCH_HUB_SHARES: {stream}'s share must be positive")
        missing = set(HUB_SHARE_STREAMS) - set(shares) - {"engagement"}
        if missing:
            raise ConfigError(f"HUBWATCH_HUB_SHARES: no share for {', '.join(sorted(missing))}")
        shares["engagement"] = self.snapshot_requests_per_window
        return shares

    @property
    def snapshot_calls_per_day(self) -> float:
        """Per-model snapshot calls a day: the engagement share less its bulk calls."""
        bulk = len(split_list(self.engagement_bulk_sorts)) * 86_400 / self.engagement_bulk_every
        return max(0.0, self.snapshot_requests_per_window * 86_400 / 300 - bulk)

    @property
    def checkpoint_dir(self) -> Path:
        return self.state_dir / "checkpoints"

    @property
    def clickhouse_data_dir(self) -> Path:
        return self.state_dir / "clickhouse"


HUB_SHARE_STREAMS: tuple[str, ...] = (
    "uploads",
    "edits",
    "engagement",
    "community",
    "reconcile",
    "aliases",
    "first_seen",
)
"Hub streams with a reserved share of the Hub budget."

_ENV_NAMES = {"hf_token": "HF_TOKEN", "github_token": "GITHUB_TOKEN"}


def split_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def parse_bool(variable: str, raw: str) -> bool:
    """A boolean setting in the usual spellings (1/0, true/false, yes/no, on/off, any case;
    empty: false); anything else is refused, naming ``variable``: a typo must not read as
    either answer."""
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigError(f"{variable}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off")


def _convert(name: str, type_name: str, raw: str) -> object:
    if type_name.startswith("bool"):
        return parse_bool(_ENV_NAMES.get(name, f"HUBWATCH_{name.upper()}"), raw)
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
