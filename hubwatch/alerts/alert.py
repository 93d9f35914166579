"""One alert: what fired, on which model, under which base; and its rows in ``alerts``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from hubwatch.clickhouse import as_utc

__all__ = [
    "FIRED_VERSION",
    "HUB_PAGE",
    "Alert",
    "AlertRow",
    "GroupMember",
    "alert_id",
    "delivery_key",
]

HUB_PAGE = "https://huggingface.co/"
"Where an alert links: the model's page on the Hub."
FIRED_VERSION = 0
"Version of an alert's first row: every delivery attempt's row replaces it."


def alert_id(rule: str, subject: str, occurrence: str = "") -> str:
    """The same rule, model (or group) and occurrence give the same id, in any process."""
    return hashlib.sha256(f"{rule}\x00{subject}\x00{occurrence}".encode()).hexdigest()[:32]


def delivery_key(alert_id: str, target: str) -> str:
    """The idempotency key of one delivery: an alert is sent to a target once."""
    return f"{alert_id}:{target}"


# A group counts models: "66 new finetunes", not "66 new finetune".
_PLURALS = {
    "finetune": "finetunes",
    "quantized": "quantizations",
    "adapter": "adapters",
    "merge": "merges",
}


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    rule: str
    model_id: str
    base_model: str
    relation: str
    link: str
    models: tuple[str, ...]
    count: int
    fired_at: datetime
    targets: tuple[str, ...]
    author: str = ""
    licence: str = ""
    base_licence: str = ""
    reason: str = ""
    "Plain text: what matched (engagement figures for a threshold rule)."

    @property
    def title(self) -> str:
        """Plain text; each target escapes it its own way."""
        if self.count > 1:
            plural = _PLURALS.get(self.relation, "derivatives")
            return f"{self.count} new {plural} of {self.base_model}"
        what = self.relation or "model"
        under = f" of {self.base_model}" if self.base_model else ""
        return f"new {what}{under}: {self.model_id}"

    def to_json(self) -> str:
        data = asdict(self)
        data["fired_at"] = self.fired_at.astimezone(UTC).isoformat(timespec="milliseconds")
        data["models"] = list(self.models)
        data["targets"] = list(self.targets)
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Alert:
        data: dict[str, Any] = json.loads(text)
        data["fired_at"] = as_utc(datetime.fromisoformat(data["fired_at"]))
        data["models"] = tuple(data["models"])
        data["targets"] = tuple(data["targets"])
        return cls(**data)

    def row(
        self,
        target: str,
        state: str,
        *,
        at: datetime | None = None,
        attempts: int = 0,
        error: str = "",
        next_attempt_at: datetime | None = None,
    ) -> AlertRow:
        """The alert's row for ``target``: ``state`` as of ``at``."""
        now = at or datetime.now(UTC)
        return AlertRow(
            alert_id=self.alert_id,
            rule=self.rule,
            model_id=self.model_id,
            base_model=self.base_model,
            relation=self.relation,
            link=self.link,
            models=list(self.models),
            count=self.count,
            fired_at=self.fired_at,
            target=target,
            state=state,
            delivered_at=now if state == "delivered" else None,
            attempts=attempts,
            last_error=error[:1000],
            next_attempt_at=next_attempt_at or now,
            payload=self.to_json(),
            # Milliseconds, and past the firing: a delivery's row replaces the queued one.
            version=int(now.timestamp() * 1000) * 1000 + min(attempts, 999),
        )

    def fired_row(self, target: str) -> AlertRow:
        """The row written with the batch that fired the alert (``queued``). Its version
        is the floor: the same alert fired again (its input taken again after a crash, a
        repeat rule's event redelivered) must never replace what a delivery recorded, or
        the alert would read as queued and be sent again at the next start."""
        row = self.row(target, "queued", at=self.fired_at)
        return replace(row, version=FIRED_VERSION)


@dataclass(frozen=True, slots=True)
class AlertRow:
    """A row of ``alerts`` (hubwatch/migrations/0043_alerts.sql)."""

    alert_id: str
    rule: str
    model_id: str
    base_model: str
    relation: str
    link: str
    models: list[str] = field(default_factory=list)
    count: int = 1
    fired_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    target: str = ""
    state: str = "queued"
    delivered_at: datetime | None = None
    attempts: int = 0
    last_error: str = ""
    next_attempt_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    payload: str = ""
    version: int = 0


@dataclass(slots=True)
class GroupMember:
    """A row of ``alert_group_members`` (hubwatch/migrations/0044_alert_groups.sql)."""

    rule: str
    base_model: str
    opened_at: datetime
    model_id: str
    relation: str
    matched_at: datetime
