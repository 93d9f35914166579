"""Hugging Face webhooks: push where the Hub offers it (watched orgs), merged with polling.

Discussion changes become ``model.discussion`` events at once (the same event ids polling
would produce, and the discussion's known status is recorded, so polling does not repeat
them); content changes bring the repo's commit and discussion poll forward.
"""

from __future__ import annotations

import hmac
import json
import logging

from aiohttp import web

from hubwatch._server import LocalServer
from hubwatch.errors import SchemaError
from hubwatch.events import DeadLetter
from producers.hub import model_discussion_from_api
from producers.publish import EventPublisher
from producers.state import StateStore

__all__ = ["WebhookReceiver"]

log = logging.getLogger(__name__)


class WebhookReceiver(LocalServer):
    path = "/webhooks/hub"

    def __init__(
        self,
        publisher: EventPublisher,
        store: StateStore,
        secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self._publisher = publisher
        self._store = store
        self._secret = secret.encode()
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
        try:
            payload = json.loads(raw)
            if not isinstance(payload, dict):
                raise SchemaError("bad_type", "webhook payload is not an object")
            scope = str((payload.get("event") or {}).get("scope", ""))
            repo = payload.get("repo") or {}
            repo_id = repo.get("name")
            if repo.get("type") != "model" or not isinstance(repo_id, str):
                return web.json_response({"ignored": "not a model repo"})
            if scope.startswith("discussion"):
                discussion = model_discussion_from_api(repo_id, payload.get("discussion"))
            elif scope.startswith("repo.content"):
                discussion = None
            else:
                return web.json_response({"ignored": scope})
        except (ValueError, SchemaError) as exc:
            error = exc if isinstance(exc, SchemaError) else SchemaError("bad_json", str(exc))
            await self._publisher.dead_letter(
                DeadLetter.of(
                    stage="producer.webhooks", error=error, source=self.path, key=None, payload=raw
                )
            )
            await self._publisher.flush()
            return web.json_response({"error": str(error)}, status=400)

        self.received += 1
        if discussion is None:
            with self._store.transaction():
                self._store.set_community(repo_id, True)
                self._store.schedule_community(repo_id, 0.0)  # poll its commits now
            return web.json_response({"scheduled": repo_id}, status=202)
        if self._store.discussion_status(repo_id, discussion.num) == discussion.status:
            return web.json_response({"duplicate": True})
        await self._publisher.publish(discussion)
        await self._publisher.flush()
        with self._store.transaction():
            self._store.set_discussion_status(repo_id, discussion.num, discussion.status)
        return web.json_response({"published": 1})
