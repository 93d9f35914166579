"""Settings, read once from the environment (``HUBWATCH_*``), overridable by CLI flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from hubwatch.errors import ConfigError

__all__ = ["Settings"]

LIVE_HUB_URL = "https://huggingface.co"


@dataclass(frozen=True, slots=True)
class Settings:
    hub_url: str = LIVE_HUB_URL
    hf_token: str | None = dataclasses.field(default=None, repr=False)
    "Read from HF_TOKEN; never logged (repr=False)."
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = "hubwatch."
    "Prefix of every topic name; lets several hubwatch deployments share one cluster."
    clickhouse_url: str = "http://127.0.0.1:8123"
    clickhouse_database: str = "hubwatch"
    state_dir: Path = Path(".hubwatch")
    "Checkpoints, and in embedded mode the ClickHouse data directory."
    poll_interval: float = 60.0
    "Seconds between polls of the new-uploads stream."
    overlap_seconds: float = 600.0
    "How far behind the createdAt watermark each poll looks again (late-listed uploads)."
    initial_lookback_seconds: float | None = 3600.0
    "On a first poll with no checkpoint, how far back to start; None: everything listed."
    page_limit: int = 500
    batch_size: int = 500
    "Rows per ClickHouse insert."
    batch_seconds: float = 1.0
    "Longest wait before a partial batch is written."
    processor_app_id: str = "hubwatch-processors"
    metrics_port: int | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            name = "HF_TOKEN" if f.name == "hf_token" else f"HUBWATCH_{f.name.upper()}"
            if name in env:
                values[f.name] = _convert(f.name, str(f.type), env[name])
        values.update(overrides)  # applied as given: None can be a deliberate value
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def validate(self) -> None:
        for name in ("hub_url", "clickhouse_url"):
            url = getattr(self, name)
            if urlsplit(url).scheme not in ("http", "https"):
                raise ConfigError(f"{name} must be an http(s) URL, got {url!r}")
        if self.poll_interval <= 0 or self.batch_seconds <= 0:
            raise ConfigError("poll_interval and batch_seconds must be positive")
        if not 1 <= self.page_limit <= 1000:
            raise ConfigError("page_limit must be between 1 and 1000")
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
