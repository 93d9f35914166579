"""Delivery targets: each renders an alert as its service expects, escaped its own way, and
sends it. A generic JSON webhook, Slack- and Discord-compatible incoming webhooks, and
Alertmanager's API (``POST /api/v2/alerts``), so Alertmanager's routing, grouping and
silences apply; plus the terminal of ``hubwatch run``."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from hubwatch.alerts import escape
from hubwatch.alerts.alert import Alert, delivery_key
from hubwatch.alerts.rules import Target
from hubwatch.errors import HubwatchError

__all__ = ["DeliveryError", "render", "send", "terminal_line"]

_MAX_LISTED = 20
"A grouped alert names this many of its models in chat messages (the JSON has them all)."


class DeliveryError(HubwatchError):
    """A target did not take an alert; ``retriable`` says whether to try again."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable  # type: ignore[misc]  # per instance: depends on the cause


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


def _facts(alert: Alert) -> dict[str, Any]:
    data = json.loads(alert.to_json())
    data.pop("targets", None)
    return data


def _listed(alert: Alert) -> tuple[list[str], int]:
    shown = list(alert.models[:_MAX_LISTED])
    return shown, alert.count - len(shown)


def _slack(alert: Alert) -> dict[str, Any]:
    s = escape.slack
    link = f"<{escape.hub_url(alert.model_id)}|{s(alert.model_id)}>"
    head = f"*{s(alert.rule)}*: {s(alert.title)}"
    lines = [head]
    if alert.count > 1:
        shown, more = _listed(alert)
        lines += [f"• <{escape.hub_url(m)}|{s(m)}>" for m in shown]
        if more:
            lines.append(f"… and {more} more")
    else:
        lines.append(link)
    if alert.licence or alert.base_licence:
        lines.append(f"licence {s(alert.licence or '?')} (base: {s(alert.base_licence or '?')})")
    if alert.reason:
        lines.append(s(alert.reason))
    # parse=none and no link names: Slack itself turns nothing in the text into a mention.
    return {"text": "\n".join(lines), "parse": "none", "link_names": False, "unfurl_links": False}


def _discord(alert: Alert) -> dict[str, Any]:
    d = escape.discord
    lines = [f"**{d(alert.rule)}**: {d(alert.title)}"]
    models = _listed(alert)[0] if alert.count > 1 else [alert.model_id]
    lines += [f"[{d(m)}](<{escape.hub_url(m)}>)" for m in models]
    if alert.count > len(models):
        lines.append(f"… and {alert.count - len(models)} more")
    if alert.licence or alert.base_licence:
        lines.append(f"licence {d(alert.licence or '?')} (base: {d(alert.base_licence or '?')})")
    if alert.reason:
        lines.append(d(alert.reason))
    return {"content": "\n".join(lines)[:2000], "allowed_mentions": {"parse": []}}


def _alertmanager(alert: Alert) -> list[dict[str, Any]]:
    labels = {
        "alertname": "HubwatchDataAlert",
        "rule": alert.rule,
        "model": alert.model_id,
        "base_model": alert.base_model,
        "relation": alert.relation or "none",
        "alert_id": alert.alert_id,
    }
    return [
        {
            "labels": labels,
            "annotations": {
                "summary": alert.title,
                "link": alert.link,
                "models": "\n".join(alert.models),
                "count": str(alert.count),
                "reason": alert.reason,
            },
            "generatorURL": escape.hub_url(alert.model_id),
            "startsAt": alert.fired_at.isoformat(timespec="milliseconds"),
        }
    ]


def render(target: Target, alert: Alert) -> Request:
    """The request ``target`` gets for ``alert``; JSON escaping is the JSON encoder's."""
    key = delivery_key(alert.alert_id, target.name)
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    url = target.url
    body: Any
    match target.type:
        case "slack":
            body = _slack(alert)
        case "discord":
            body = _discord(alert)
        case "alertmanager":
            url = target.url.rstrip("/") + "/api/v2/alerts"
            body = _alertmanager(alert)
        case _:
            body = {**_facts(alert), "idempotency_key": key}
    return Request(url, json.dumps(body, ensure_ascii=False).encode(), headers)


async def send(client: httpx.AsyncClient, target: Target, alert: Alert) -> None:
    """Deliver once; raises :class:`DeliveryError` (retriable for outages, 408, 429, 5xx)."""
    request = render(target, alert)
    try:
        answer = await client.post(request.url, content=request.body, headers=request.headers)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{target.name}: {type(exc).__name__}: {exc}", retriable=True) from exc
    if answer.is_success:
        return
    status = answer.status_code
    retriable = status in (408, 425, 429) or status >= 500
    raise DeliveryError(f"{target.name}: HTTP {status}: {answer.text[:200]}", retriable=retriable)


def terminal_line(alert: Alert, out: TextIO | None = None) -> str:
    """``hubwatch run``'s line for an alert; control characters in names are shown escaped
    so a hostile id cannot move the cursor or clear the screen."""
    text = f"alert {alert.rule}: {alert.title}"
    if alert.count > 1:
        text += " (" + ", ".join(alert.models[:_MAX_LISTED]) + ")"
    text += f" {alert.link}"
    safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    print(safe, file=out or sys.stdout, flush=True)
    return safe
