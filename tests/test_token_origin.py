"""A token goes to its API's origin only: never along a next link or a redirect elsewhere.

Two real local servers: the "API" (the configured base URL) answers with a Link or a
redirect to a second server, which records every request's headers.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from hubwatch._server import LocalServer
from hubwatch.events import DeadLetter, GithubCommit, ModelCreated
from producers._http import make_client, request
from producers.checkpoint import CheckpointStore
from producers.github import GITHUB_HEADERS, GithubPoller
from producers.hub_uploads import HubUploadsPoller
from producers.publish import QueuePublisher
from producers.state import StateStore
from tests.conftest import poll_draining

TOKEN = "hf_secret_token_never_elsewhere"


class Recorder(LocalServer):
    """Answers every GET with an empty page and keeps each request's Authorization."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str | None]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._any)
        return app

    async def _any(self, request: web.Request) -> web.Response:
        self.seen.append((request.path_qs, request.headers.get("Authorization")))
        return web.json_response([])


class Api(LocalServer):
    """One page of the Hub's list and of GitHub's commits, each linking to ``elsewhere``."""

    def __init__(self, elsewhere: str) -> None:
        super().__init__()
        self.elsewhere = elsewhere
        self.seen: list[tuple[str, str | None]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._any)
        return app

    async def _any(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, request.headers.get("Authorization")))
        link = {"Link": f'<{self.elsewhere}{request.path}?cursor=2>; rel="next"'}
        if request.path == "/api/models":
            models = [
                {"id": f"org/model-{i}", "createdAt": f"2025-02-1{i}T12:00:00.000Z"} for i in (2, 1)
            ]
            return web.json_response(models, headers=link)
        if request.path == "/repos/octo/lib/commits":
            commit = {
                "sha": "a" * 40,
                "commit": {"message": "init", "author": {"date": "2025-02-11T12:00:00Z"}},
            }
            return web.json_response([commit], headers=link)
        if request.path == "/repos/octo/lib":
            return web.json_response(
                {"stargazers_count": 1, "forks_count": 0, "open_issues_count": 0}
            )
        if request.path == "/redirect":
            raise web.HTTPFound(f"{self.elsewhere}/landed")
        if request.path == "/here":
            raise web.HTTPFound("/repos/octo/lib")  # same origin: the token may follow
        return web.json_response([])


async def _servers() -> tuple[Recorder, Api]:
    recorder = Recorder()
    await recorder.start()
    api = Api(recorder.url)
    await api.start()
    return recorder, api


def _tokens(seen: list[tuple[str, str | None]]) -> list[str]:
    return [path for path, auth in seen if auth is not None]


async def test_hub_token_never_follows_a_next_link_elsewhere(tmp_path: Path) -> None:
    recorder, api = await _servers()
    try:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        async with make_client(base_url=api.url, token=TOKEN) as client:
            poller = HubUploadsPoller(
                client,
                QueuePublisher(queue),
                CheckpointStore(tmp_path / "uploads.json"),
                overlap=timedelta(minutes=2),
                initial_lookback=None,
            )
            first = await poll_draining(poller, queue)
            again = await poll_draining(poller, queue)
    finally:
        await api.stop()
        await recorder.stop()
    # The page before the refused link is kept, and published once.
    models = sorted(e.repo_id for e in first if isinstance(e, ModelCreated))
    assert models == ["org/model-1", "org/model-2"]
    [letter] = [e for e in first if isinstance(e, DeadLetter)]
    assert letter.reason == "cross_origin_link" and letter.stage == "producer.hub"
    assert again == []  # the same page again: nothing new, the letter not repeated
    assert _tokens(api.seen) == ["/api/models", "/api/models"]  # the API gets its token
    assert recorder.seen == []  # the other host is never even asked


async def test_github_token_never_follows_a_next_link_elsewhere(tmp_path: Path) -> None:
    recorder, api = await _servers()
    store = StateStore(tmp_path / "producers.sqlite")
    try:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        async with make_client(base_url=api.url, token=TOKEN, headers=GITHUB_HEADERS) as client:
            poller = GithubPoller(client, QueuePublisher(queue), store, repos=("octo/lib",))
            events = await poll_draining(poller, queue)
    finally:
        store.close()
        await api.stop()
        await recorder.stop()
    commits = [e for e in events if isinstance(e, GithubCommit)]
    assert [c.sha for c in commits] == ["a" * 40]
    [letter] = [e for e in events if isinstance(e, DeadLetter)]
    assert letter.reason == "cross_origin_link" and letter.stage == "producer.github.commits"
    assert "/repos/octo/lib/commits" in _tokens(api.seen)
    assert recorder.seen == []


async def test_token_is_dropped_on_a_redirect_elsewhere_and_kept_at_home() -> None:
    recorder, api = await _servers()
    try:
        async with make_client(base_url=api.url, token=TOKEN) as client:
            await request(client, "/redirect", max_attempts=1)
            await request(client, "/here", max_attempts=1)
    finally:
        await api.stop()
        await recorder.stop()
    assert recorder.seen == [("/landed", None)]
    assert _tokens(api.seen) == ["/redirect", "/here", "/repos/octo/lib"]


async def test_token_is_dropped_on_an_upgrade_to_https() -> None:
    """httpx keeps Authorization on an http->https redirect to the same host; that is
    another origin (and another port), so hubwatch drops it. Ports 80 and 443 need root,
    hence httpx's own transport double here: httpx's redirect logic runs for real."""
    seen: list[tuple[str, str | None]] = []

    def answer(req: httpx.Request) -> httpx.Response:
        seen.append((str(req.url), req.headers.get("Authorization")))
        if req.url.scheme == "http":
            return httpx.Response(301, headers={"Location": "https://hub.example/api/models"})
        return httpx.Response(200, json=[])

    transport = httpx.MockTransport(answer)
    async with make_client(
        base_url="http://hub.example", token=TOKEN, transport=transport
    ) as client:
        await request(client, "/api/models", max_attempts=1)
    assert seen == [
        ("http://hub.example/api/models", f"Bearer {TOKEN}"),
        ("https://hub.example/api/models", None),
    ]
