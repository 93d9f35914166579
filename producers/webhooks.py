"""Hugging Face webhooks: push where the Hub offers it (watched orgs), merged with polling.

Discussion changes become ``model.discussion`` events at once (the same event ids polling
would produce, and the discussion's known status is recorded, so polling does not repeat
them); content changes bring the repo's commit and discussion poll forward.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from hubwatch._server import LocalServer
from hubwatch.errors import SchemaError, SinkError
from hubwatch.events import DeadLetter, Event, ModelDiscussion, check_repo_id
from producers.hub import model_discussion_from_api
from producers.outage import Outage
from producers.publish import EventPublisher, Publisher
from producers.state import StateStore

__all__ = ["WebhookReceiver", "parse_webhook"]

log = logging.getLogger(__name__)


class WebhookReceiver(LocalServer):
    path = "/webhooks/hub"

    def __init__(
        self,
        publisher: Publisher,
        store: StateStore,
        secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        outage: Outage | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        self._publisher = publisher
        self._store = store
        self._secret = secret.encode()
        self._outage = outage or Outage()
        self.received = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post(self.path, self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Webhook-Secret", "").encode()
        if not hmac.compare_digest(given, self._secret):
            return web.json_response({"error": "bad secret"}, status=401)
        raw = await request.read()
        # A delivery scope per request: requests run concurrently, and one request's flush
        # must not take another's events and leave it answering before they are durable.
        publisher = self._publisher.session()
        try:
            parsed = parse_webhook(raw)
        except SchemaError as error:
            letter = DeadLetter.of(
                stage="producer.webhooks", error=error, source=self.path, key=None, payload=raw
            )
            if not await self._deliver(publisher, letter):
                return self._unavailable()
            return web.json_response({"error": str(error)[:300]}, status=400)
        if isinstance(parsed, str):
            return web.json_response({"ignored": parsed})
        repo_id, discussion = parsed

        self.received += 1
        if self._store.get(repo_id) is None:
            # A repo no listing has shown us (made public a moment ago, or listed late):
            # the reconciliation sweep looks it up and reports it as first seen.
            with self._store.transaction():
                self._store.hear_of(repo_id, "hub.webhooks", time.time())
        if discussion is None:
            with self._store.transaction():
                self._store.set_community(repo_id, True)
                self._store.schedule_community(repo_id, 0.0)  # poll its commits now
            return web.json_response({"scheduled": repo_id}, status=202)
        known = self._store.discussion_status(repo_id, discussion.num)
        if known == discussion.status:
            return web.json_response({"duplicate": True})
        # A push comes as the status changes: now is when, unless this is its first status.
        first = known is None and discussion.status in ("open", "draft")
        changed_at = discussion.created_at if first else datetime.now(UTC)
        discussion = dataclasses.replace(discussion, changed_at=changed_at)
        if not await self._deliver(publisher, discussion):
            return self._unavailable()
        with self._store.transaction():
            self._store.set_discussion_status(repo_id, discussion.num, discussion.status)
        return web.json_response({"published": 1})

    async def _deliver(self, publisher: EventPublisher, item: Event | DeadLetter) -> bool:
        """Publish and wait until it is durable; False while Kafka is out (reported once,
        with the pollers' outage), so the Hub is told to come back rather than handed a
        traceback."""
        try:
            if isinstance(item, DeadLetter):
                await publisher.dead_letter(item)
            else:
                await publisher.publish(item)
            await publisher.flush()
        except SinkError as exc:
            self._outage.noticed(exc)
            return False
        if self._outage.ongoing:
            self._outage.recovered("webhooks")
        return True

    @staticmethod
    def _unavailable() -> web.Response:
        # Nothing was recorded: the Hub retries a webhook that did not get a 2xx.
        return web.json_response(
            {"error": "event store unavailable, retry later"},
            status=503,
            headers={"Retry-After": "30"},
        )


def parse_webhook(raw: bytes) -> tuple[str, ModelDiscussion | None] | str:
    """(repo id, discussion or None for a content change), or why it is ignored.

    Raises SchemaError on anything that is not a well-formed Hub webhook: bytes that are
    not UTF-8, text that is not JSON or holds a lone surrogate (it cannot be encoded
    again for Kafka), a field of the wrong type or past its bound, a repo name the
    poller would refuse too.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError("bad_encoding", f"not UTF-8 at byte {exc.start}") from exc
    try:
        payload = json.loads(text)
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SchemaError("bad_unicode", "a lone surrogate in a string") from exc
    except (ValueError, RecursionError) as exc:
        raise SchemaError("bad_json", str(exc)[:200]) from exc
    payload = _object(payload, "payload")
    event = _object(payload.get("event") or {}, "event")
    scope = _text(event.get("scope"), "event.scope", 100)
    repo = _object(payload.get("repo") or {}, "repo")
    if repo.get("type") != "model":
        return "not a model repo"
    repo_id = check_repo_id(repo.get("name"), "repo.name")
    if scope.startswith("discussion"):
        item = _object(payload.get("discussion"), "discussion")
        for key, bound in _DISCUSSION_TEXT.items():
            _text(item.get(key), f"discussion.{key}", bound)
        author = item.get("author")
        if author is not None:
            _text(_object(author, "discussion.author").get("name"), "discussion.author.name", 200)
        return repo_id, model_discussion_from_api(repo_id, item)
    if scope.startswith("repo.content"):
        return repo_id, None
    return scope


# Bounds on the strings a discussion event carries (the Hub's own are smaller still).
_DISCUSSION_TEXT = {"title": 1_000, "status": 32, "createdAt": 64}


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SchemaError("bad_type", f"{where}: expected an object")
    return value


def _text(value: object, where: str, bound: int) -> str:
    """A str of at most ``bound`` characters, or "" when absent."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SchemaError("bad_type", f"{where}: expected str")
    if len(value) > bound:
        raise SchemaError("too_long", f"{where}: {len(value):,} characters, at most {bound:,}")
    return value
