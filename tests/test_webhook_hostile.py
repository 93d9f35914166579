"""The webhook receiver over real HTTP, publishing to the real Kafka: hostile payloads get
a 400 and a dead letter, never a 500, and the next good webhook is still served."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubwatch.events import topics
from producers.publish import KafkaPublisher
from producers.state import StateStore
from producers.topics import ensure_topics
from producers.webhooks import WebhookReceiver
from tests.conftest import StackPart, kcat

SECRET = "s3cret"


def _discussion(num: Any = 1, **overrides: Any) -> dict[str, Any]:
    discussion = {
        "num": num,
        "title": "Hello",
        "status": "open",
        "isPullRequest": False,
        "createdAt": "2025-02-15T12:00:00.000Z",
        "author": {"name": "someone"},
    }
    discussion.update(overrides)
    return {
        "event": {"action": "create", "scope": "discussion"},
        "repo": {"type": "model", "name": "org/model"},
        "discussion": discussion,
    }


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


HOSTILE: dict[str, tuple[bytes, str]] = {
    # A repo name the poller refuses: it would be a 100 KB Kafka key.
    "huge_repo_name": (
        _json({**_discussion(), "repo": {"type": "model", "name": "org/" + "x" * 100_001}}),
        "bad_repo_id",
    ),
    "lone_surrogate": (
        _json(_discussion()).replace(b'"Hello"', b'"Hel\\ud800lo"'),
        "bad_unicode",
    ),
    "num_out_of_range": (_json(_discussion(num=2**80)), "bad_value"),
    "author_not_a_name": (_json(_discussion(author={"name": 5})), "bad_type"),
    "title_too_long": (_json(_discussion(title="t" * 100_000)), "too_long"),
    "repo_not_an_object": (_json({**_discussion(), "repo": ["model"]}), "bad_type"),
    "not_utf8": (_json(_discussion()).replace(b"Hello", b"H\xff\xfello"), "bad_encoding"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_hostile_webhook_is_refused_and_dead_lettered(
    case: str, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    body, reason = HOSTILE[case]
    await ensure_topics(kafka_bootstrap, topics(topic_prefix))
    store = StateStore(tmp_path / "producers.sqlite")
    try:
        async with (
            KafkaPublisher(kafka_bootstrap, topic_prefix=topic_prefix) as publisher,
            WebhookReceiver(publisher, store, SECRET) as receiver,
            httpx.AsyncClient(base_url=receiver.url, timeout=60) as client,
        ):
            headers = {"X-Webhook-Secret": SECRET, "Content-Type": "application/json"}
            bad = await client.post(WebhookReceiver.path, content=body, headers=headers)
            good = await client.post(
                WebhookReceiver.path, content=_json(_discussion(num=7)), headers=headers
            )
    finally:
        store.close()
    assert bad.status_code == 400, bad.text
    assert reason in bad.json()["error"]
    assert (good.status_code, good.json()) == (200, {"published": 1})

    [letter] = kcat(kafka_bootstrap, f"{topic_prefix}deadletter")
    assert (letter["stage"], letter["reason"]) == ("producer.webhooks", reason)
    assert letter["payload_bytes"] == len(body)
    published = kcat(kafka_bootstrap, f"{topic_prefix}model.discussion")
    assert [(e["key"], e["data"]["num"]) for e in published] == [("org/model", 7)]


async def test_a_webhook_during_a_kafka_outage_is_told_to_retry(
    own_kafka: StackPart, topic_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Kafka down: the receiver answers 503 with Retry-After and records nothing (the Hub
    sends the webhook again), logs the outage once and no traceback; Kafka back: the
    webhook sent again is published."""
    await ensure_topics(own_kafka.bootstrap, topics(topic_prefix))
    store = StateStore(tmp_path / "producers.sqlite")
    headers = {"X-Webhook-Secret": SECRET, "Content-Type": "application/json"}
    body = _json(_discussion(num=3))
    try:
        async with (
            KafkaPublisher(
                own_kafka.bootstrap,
                topic_prefix=topic_prefix,
                request_timeout=3,
                delivery_timeout=3,
            ) as publisher,
            WebhookReceiver(publisher, store, SECRET) as receiver,
            httpx.AsyncClient(base_url=receiver.url, timeout=60) as client,
        ):
            await asyncio.to_thread(own_kafka.down)
            during = [await client.post(WebhookReceiver.path, content=body, headers=headers)]
            during.append(await client.post(WebhookReceiver.path, content=body, headers=headers))
            await asyncio.to_thread(own_kafka.up)
            after = await client.post(WebhookReceiver.path, content=body, headers=headers)
    finally:
        store.close()
    assert [(r.status_code, r.headers.get("Retry-After")) for r in during] == [(503, "30")] * 2
    assert (after.status_code, after.json()) == (200, {"published": 1})
    published = kcat(own_kafka.bootstrap, f"{topic_prefix}model.discussion")
    assert {(e["key"], e["data"]["num"]) for e in published} == {("org/model", 3)}
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("unavailable" in r.getMessage() for r in warnings) == 1, warnings
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
