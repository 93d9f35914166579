"""Models listed late: a repo created privately and made public later is listed with an old
createdAt, below the uploads stream's watermark. Whichever stream finds it first (edits,
the engagement bulk call, the reconciliation sweep) reports it once as ``model.created``
with ``first_seen_at``; restarts do not report it again."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from hubwatch.events import ModelCreated, ModelSnapshot, format_datetime, parse_datetime
from hubwatch.replay import HubWorld, ListSource, ReplayServer
from producers._http import make_client
from producers.checkpoint import CheckpointStore
from producers.hub_edits import HubEditsPoller
from producers.hub_engagement import EngagementPoller
from producers.hub_reconcile import ReconcilePoller
from producers.hub_uploads import HubUploadsPoller
from producers.publish import QueuePublisher
from producers.state import StateStore
from producers.tracking import Tracker
from tests.conftest import poll_draining

CHILD = "allura-org/Mistral-Small-24b-Sertraline-0304"
FRESH = "newlab/Fresh-7B"
LATE = "biglab/Launch-70B"
OVERLAP = timedelta(seconds=120)


def _iso(at: datetime) -> str:
    return format_datetime(at)


def model_item(template: dict[str, Any], repo_id: str, created: datetime) -> dict[str, Any]:
    """A fixture item under a new id, created (and last modified) at ``created``."""
    item = copy.deepcopy(template)
    item.update(id=repo_id, author=repo_id.split("/")[0], createdAt=_iso(created))
    item["lastModified"] = _iso(created)
    return item


def _late_seen(stream: str) -> float:
    return REGISTRY.get_sample_value("hubwatch_late_arrivals_total", {"stream": stream}) or 0.0


class Streams:
    """A replay and every Hub stream that reports first sights, over one state store."""

    def __init__(self, server: ReplayServer, state: Path) -> None:
        self.server = server
        self.state = state
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.publisher = QueuePublisher(self.queue)
        self.client = make_client(base_url=server.url)
        self.open()

    def open(self) -> None:
        """A (re)started process: pollers whose state is the store and checkpoint alone."""
        self.store = StateStore(self.state / "producers.sqlite")
        tracker = Tracker(self.store)
        common: dict[str, Any] = {"overlap": OVERLAP, "initial_lookback": None}
        self.uploads = HubUploadsPoller(
            self.client,
            self.publisher,
            CheckpointStore(self.state / "uploads.json"),
            page_limit=50,
            tracker=tracker,
            **common,
        )
        self.edits = HubEditsPoller(self.client, self.publisher, tracker, page_limit=50, **common)
        self.sweep = ReconcilePoller(
            self.client, self.publisher, tracker, days=7, page_limit=50, **common
        )
        self.engagement = EngagementPoller(
            self.client, self.publisher, tracker, requests_per_round=5, **common
        )

    def restart(self) -> None:
        self.store.close()
        self.open()

    async def poll(self, poller: Any) -> list[Any]:
        return await poll_draining(poller, self.queue)

    async def list_now(self, repo_id: str, created: datetime) -> None:
        template = self.server.hub.view(self.server.hub.find(CHILD))  # type: ignore[arg-type]
        self.server.hub.list_now(model_item(template, repo_id, created))


@pytest.fixture
async def streams(fixture_items: list[dict[str, Any]], tmp_path: Path) -> AsyncIterator[Streams]:
    server = ReplayServer(HubWorld(ListSource(fixture_items), start=len(fixture_items)))
    async with server:
        s = Streams(server, tmp_path)
        assert len(await s.poll(s.uploads)) == 67
        assert await s.poll(s.edits) == []  # all seen: nothing to report
        # A new upload now moves the uploads stream's watermark to the present.
        await s.list_now(FRESH, datetime.now(UTC) - timedelta(seconds=10))
        [fresh] = await s.poll(s.uploads)
        assert fresh.repo_id == FRESH and fresh.first_seen_at == fresh.observed_at
        assert await s.poll(s.edits) == []
        yield s
        s.store.close()
        await s.client.aclose()


def _created(events: list[Any]) -> list[ModelCreated]:
    return [e for e in events if isinstance(e, ModelCreated)]


@pytest.mark.parametrize("late", [timedelta(minutes=5), timedelta(days=3)], ids=["5min", "3d"])
async def test_a_late_listed_model_is_reported_once_by_the_sweep(
    streams: Streams, late: timedelta
) -> None:
    """Listed late, with an old createdAt and no lastModified change: below the uploads
    stream's floor and the edits stream's; the sweep reports it, once."""
    created = datetime.now(UTC) - late
    await streams.list_now(LATE, created)
    assert await streams.poll(streams.uploads) == []
    assert await streams.poll(streams.edits) == []
    before = _late_seen("hub.reconcile")
    [event] = await streams.poll(streams.sweep)
    assert isinstance(event, ModelCreated) and event.repo_id == LATE
    assert event.created_at == parse_datetime(_iso(created))
    assert event.first_seen_at is not None
    assert event.first_seen_at - created >= late
    assert _late_seen("hub.reconcile") == before + 1
    assert streams.store.get(LATE) is not None  # tracked: snapshots and community follow
    for poller in (streams.sweep, streams.uploads, streams.edits, streams.engagement):
        assert not _created(await streams.poll(poller)), poller.name


async def test_a_late_model_with_a_fresh_last_modified_is_reported_by_the_edits_stream(
    streams: Streams,
) -> None:
    await streams.list_now(LATE, datetime.now(UTC) - timedelta(minutes=5))
    hub = streams.server.hub
    hub.edit(LATE, {"tags": [*hub.view(hub.find(LATE))["tags"], "license:mit"]})  # type: ignore[arg-type]
    assert await streams.poll(streams.uploads) == []
    [event] = await streams.poll(streams.edits)
    assert isinstance(event, ModelCreated) and event.repo_id == LATE
    assert event.first_seen_at is not None and "license:mit" in event.tags
    for poller in (streams.sweep, streams.uploads, streams.edits, streams.engagement):
        assert not _created(await streams.poll(poller)), poller.name


async def test_the_engagement_bulk_call_reports_an_unseen_trending_model(
    streams: Streams,
) -> None:
    await streams.list_now(LATE, datetime.now(UTC) - timedelta(days=3))
    streams.server.hub.engage(LATE, downloads=10**6)  # trending
    found = await streams.poll(streams.engagement)
    [event] = _created(found)
    assert event.repo_id == LATE and event.first_seen_at is not None
    # Reported before its snapshot, and tracked with it.
    assert found.index(event) < next(
        i for i, e in enumerate(found) if isinstance(e, ModelSnapshot) and e.repo_id == LATE
    )
    assert streams.store.get(LATE).last_snapshot is not None  # type: ignore[union-attr]
    assert await streams.poll(streams.sweep) == []


async def test_a_restart_between_sightings_reports_it_once(streams: Streams) -> None:
    """The store is the arbiter across restarts, and among streams in one round: a claim
    by one stream keeps the others from reporting the same repo while it is in flight."""
    await streams.list_now(LATE, datetime.now(UTC) - timedelta(days=3))
    streams.restart()
    [event] = await streams.poll(streams.sweep)
    assert event.repo_id == LATE
    streams.restart()
    hub = streams.server.hub
    hub.edit(LATE, {"tags": [*hub.view(hub.find(LATE))["tags"], "license:mit"]})  # type: ignore[arg-type]
    hub.engage(LATE, downloads=10**6)
    for poller in (streams.sweep, streams.uploads, streams.edits, streams.engagement):
        assert not _created(await streams.poll(poller)), poller.name

    # In flight: the edits stream has claimed a repo; the sweep leaves it.
    other = "biglab/Other-8B"
    await streams.list_now(other, datetime.now(UTC) - timedelta(days=2))
    assert streams.store.claim_first_sight(other, streams.edits.name)
    assert await streams.poll(streams.sweep) == []
    streams.restart()  # the claim was in memory: a crash before delivery leaves it free
    [again] = await streams.poll(streams.sweep)
    assert again.repo_id == other


async def test_a_repo_named_by_a_webhook_is_looked_up_by_the_sweep(streams: Streams) -> None:
    """A webhook for a repo no listing showed (the sweep's window is days; this one was
    created before it) is looked up by id and reported, counted for the webhooks."""
    await streams.list_now(LATE, datetime.now(UTC) - timedelta(days=30))
    assert await streams.poll(streams.sweep) == []  # older than the sweep's window
    with streams.store.transaction():
        assert streams.store.hear_of(LATE, "hub.webhooks", 0.0)
    [event] = await streams.poll(streams.sweep)
    assert event.repo_id == LATE and streams.store.heard(10) == []
    assert _late_seen("hub.webhooks") >= 1
