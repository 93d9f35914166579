"""The replay server speaks the Hub's list API; the poller walks it without gaps or repeats.

These run over real sockets against the replay server; events go to an in-process queue
(the embedded mode's transport), so each test sees exactly what the poller published.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from hubwatch.events import DeadLetter, ModelCreated
from hubwatch.replay import HubWorld, ListSource, ReplayServer
from producers._http import make_client
from producers._pagination import iter_pages
from producers.checkpoint import CheckpointStore
from producers.hub import EXPAND_FIELDS
from producers.hub_uploads import HubUploadsPoller
from producers.publish import QueuePublisher
from tests.conftest import MALFORMED_REJECTED, malformed_items, poll_draining


async def test_list_models_pages_by_link_cursor_newest_first(replay: ReplayServer) -> None:
    replay.hub.release(67)
    async with make_client(base_url=replay.url) as client:
        seen: list[dict[str, Any]] = []
        pages = 0
        params = [
            ("sort", "createdAt"),
            ("limit", "10"),
            ("expand", "createdAt"),
            ("expand", "tags"),
        ]
        async for page in iter_pages(client, "/api/models", params):
            pages += 1
            seen.extend(page)
    assert pages == 7
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)) == 67
    created = [item["createdAt"] for item in seen]
    assert created == sorted(created, reverse=True)
    assert all(set(item) == {"_id", "id", "createdAt", "tags"} for item in seen)


async def test_rate_limit_headers_and_429(fixture_items: list[dict[str, Any]]) -> None:
    server = ReplayServer(HubWorld(ListSource(fixture_items), start=5), api_quota=3)
    async with server, httpx.AsyncClient(base_url=server.url) as client:
        answers = [await client.get("/api/models", params={"limit": 1}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["RateLimit-Policy"] == '"fixed window";"api";q=3;w=300'
    assert answers[2].headers["RateLimit"].startswith('"api";r=0;t=')
    assert int(answers[3].headers["Retry-After"]) > 0


async def test_release_clock(fixture_items: list[dict[str, Any]]) -> None:
    world = HubWorld(ListSource(fixture_items), rate=200.0)
    await asyncio.sleep(0.1)
    world.tick()
    assert 5 <= world.released <= 67
    first = world.view(0)
    assert first["id"] == "mistralai/Mistral-Small-24B-Base-2501"  # the oldest comes first


def _poller(
    client: httpx.AsyncClient, queue: asyncio.Queue[Any], checkpoint: Path, overlap: float = 600.0
) -> HubUploadsPoller:
    return HubUploadsPoller(
        client,
        QueuePublisher(queue),
        CheckpointStore(checkpoint),
        overlap=timedelta(seconds=overlap),
        initial_lookback=None,
        page_limit=7,
    )


async def test_poller_no_gaps_no_repeats_across_restarts(
    replay: ReplayServer, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "uploads.json"
    queue: asyncio.Queue[Any] = asyncio.Queue()
    published: list[ModelCreated] = []
    async with make_client(base_url=replay.url) as client:
        for release in (1, 20, 0, 30, 16):
            replay.hub.release(release)
            # A new poller each round: state lives only in the checkpoint file.
            published += await poll_draining(_poller(client, queue, checkpoint), queue)
    ids = [e.repo_id for e in published]
    assert len(ids) == len(set(ids)) == 67
    assert {e.repo_id for e in published} == {v["id"] for v in replay.hub.released_views()}
    assert CheckpointStore(checkpoint).load()["watermark"] == "2025-03-30T19:55:05.000Z"


async def test_late_listed_upload_inside_overlap_is_caught(
    replay: ReplayServer, tmp_path: Path
) -> None:
    replay.hub.release(67)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    async with make_client(base_url=replay.url) as client:
        first = await poll_draining(_poller(client, queue, tmp_path / "c.json"), queue)
        # Listed only now, but created an hour before the newest: inside the overlap.
        replay.hub.add({"id": "late/upload", "createdAt": "2025-03-30T18:55:05.000Z", "tags": []})
        second = await poll_draining(
            _poller(client, queue, tmp_path / "c.json", overlap=7200), queue
        )
    assert len(first) == 67
    assert [e.repo_id for e in second] == ["late/upload"]


async def test_malformed_items_are_dead_lettered_once(
    fixture_items: list[dict[str, Any]], tmp_path: Path
) -> None:
    items = fixture_items + malformed_items()
    async with ReplayServer(HubWorld(ListSource(items), start=len(items))) as server:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        async with make_client(base_url=server.url) as client:
            out = await poll_draining(_poller(client, queue, tmp_path / "c.json"), queue)
            again = await poll_draining(_poller(client, queue, tmp_path / "c.json"), queue)
    letters = [o for o in out if isinstance(o, DeadLetter)]
    created = [o for o in out if isinstance(o, ModelCreated)]
    assert len(letters) == MALFORMED_REJECTED
    assert {"missing_field", "bad_type", "bad_repo_id", "bad_datetime"} == {
        d.reason for d in letters
    }
    assert all(d.stage == "producer.hub" and d.payload for d in letters)
    assert len(created) == 69  # the fixture, the 2 MB card and the hostile tag
    assert again == []  # nothing re-emitted, no letter repeated


async def test_expand_fields_are_all_served(replay: ReplayServer) -> None:
    replay.hub.release(67)
    async with httpx.AsyncClient(base_url=replay.url) as client:
        params = [("sort", "createdAt"), ("limit", "1")] + [("expand", f) for f in EXPAND_FIELDS]
        (item,) = (await client.get("/api/models", params=params)).json()
        info = await client.get(f"/api/models/{item['id']}")
        missing = await client.get("/api/models/nobody/nothing")
    assert {"createdAt", "tags", "cardData", "safetensors", "config"} <= set(item)
    # The listing refuses expand=baseModels; the relation tags carry the Hub's resolution.
    assert "baseModels" not in item
    assert any(tag.startswith("base_model:finetune:") for tag in item["tags"])
    assert info.json()["id"] == item["id"]
    # As on the Hub: anonymous requests for a repo not shown get 401, not 404.
    assert missing.status_code == 401
    assert missing.headers["X-Error-Code"] == "RepoNotFound"
