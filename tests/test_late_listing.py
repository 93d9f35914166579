"""Models listed late: a repo created privately and made public later is listed with an old
createdAt, below the uploads stream's watermark. Whichever stream finds it first (edits,
the engagement bulk call, the reconciliation sweep) reports it once as ``model.created``
with ``first_seen_at``; restarts do not report it again."""

from __future__ import annotations

import asyncio
import copy
import logging
import signal
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from hubwatch.clickhouse import connect, ping
from hubwatch.events import ModelCreated, ModelSnapshot, format_datetime, parse_datetime
from hubwatch.replay import HubWorld, ListSource, ReplayServer
from hubwatch.settings import Settings
from producers._http import make_client
from producers.checkpoint import CheckpointStore
from producers.hub_edits import HubEditsPoller
from producers.hub_engagement import EngagementPoller
from producers.hub_reconcile import ReconcilePoller
from producers.hub_uploads import HubUploadsPoller
from producers.publish import QueuePublisher
from producers.runner import Producers
from producers.state import StateStore
from producers.tracking import Tracker
from tests.conftest import (
    drain,
    kcat,
    poll_draining,
    spawn,
    spawn_embedded_replay,
    wait_until,
)

CHILD = "allura-org/Mistral-Small-24b-Sertraline-0304"
FRESH = "newlab/Fresh-7B"
LATE = "biglab/Launch-70B"
OLDER = "biglab/Launch-8B"
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


def _first_seen(stream: str) -> float:
    return REGISTRY.get_sample_value("hubwatch_models_first_seen_total", {"stream": stream}) or 0.0


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
            self.client, self.publisher, tracker, requests_per_round=5
        )

    def restart(self) -> None:
        self.store.close()
        self.open()

    async def poll(self, poller: Any) -> list[Any]:
        return await poll_draining(poller, self.queue)

    async def list_now(self, repo_id: str, created: datetime) -> None:
        template = self.server.hub.view(self.server.hub.find(CHILD))  # type: ignore[arg-type]
        self.server.hub.list_now(model_item(template, repo_id, created))


async def test_the_uploads_walk_of_history_is_old_not_late(
    fixture_items: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Reading the whole history, the uploads stream meets 67 models created in 2025: they
    are first seen (counted), none of them late (hubwatch was not watching then)."""
    server = ReplayServer(HubWorld(ListSource(fixture_items), start=len(fixture_items)))
    async with server:
        s = Streams(server, tmp_path)
        late, first = _late_seen("hub.uploads"), _first_seen("hub.uploads")
        assert len(await s.poll(s.uploads)) == 67
        assert _first_seen("hub.uploads") - first == 67
        assert _late_seen("hub.uploads") == late
        s.store.close()
        await s.client.aclose()


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


async def test_the_sweep_leaves_what_a_lagging_uploads_stream_has_yet_to_list(
    fixture_items: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The uploads stream's watermark is behind (its last round listed only the fixture's
    old models): a model created since, though older than the overlap, is the uploads
    stream's to report, not one for the sweep to spend a lookup on and count as missed."""
    server = ReplayServer(HubWorld(ListSource(fixture_items), start=len(fixture_items)))
    async with server:
        s = Streams(server, tmp_path)
        try:
            assert len(await s.poll(s.uploads)) == 67
            await s.list_now(LATE, datetime.now(UTC) - timedelta(minutes=5))
            before, late = server.info_by_id[LATE], _late_seen("hub.reconcile")
            assert await s.poll(s.sweep) == []
            assert server.info_by_id[LATE] == before  # not looked up
            [event] = await s.poll(s.uploads)
            assert event.repo_id == LATE
            assert await s.poll(s.sweep) == []
            assert _late_seen("hub.reconcile") == late
        finally:
            s.store.close()
            await s.client.aclose()


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


async def test_an_unseen_model_in_an_engagement_bulk_call_is_reported_by_the_sweep(
    streams: Streams,
) -> None:
    """Created before the sweep's window, so only the bulk call lists it: the bulk call
    (counters and createdAt only) names it, and the sweep's lookup reports it, once."""
    await streams.list_now(LATE, datetime.now(UTC) - timedelta(days=30))
    streams.server.hub.engage(LATE, downloads=10**6)  # trending
    assert await streams.poll(streams.sweep) == []  # older than the sweep's window
    bulk = await streams.poll(streams.engagement)
    # Not followed yet: no model.created and no snapshot from the bulk call.
    assert not [e for e in bulk if e.repo_id == LATE]
    assert bulk and all(streams.store.get(e.repo_id) is not None for e in bulk)
    [event] = await streams.poll(streams.sweep)
    assert isinstance(event, ModelCreated) and event.repo_id == LATE
    assert event.first_seen_at is not None and streams.store.get(LATE) is not None
    streams.engagement._next_bulk = 0.0  # the next bulk call snapshots it
    again = await streams.poll(streams.engagement)
    assert any(isinstance(e, ModelSnapshot) and e.repo_id == LATE for e in again)
    for poller in (streams.sweep, streams.uploads, streams.edits, streams.engagement):
        assert not _created(await streams.poll(poller)), poller.name


@pytest.mark.parametrize("repo_id", [CHILD, FRESH], ids=["old", "within-overlap"])
async def test_a_repo_deleted_and_created_again_is_a_new_model(
    streams: Streams, repo_id: str
) -> None:
    """A model's identity is (repo id, createdAt): a repo deleted and created again under its
    name is reported again, by the uploads stream, and tracked as the new model."""
    hub = streams.server.hub
    template = hub.view(hub.find(repo_id))  # type: ignore[arg-type]
    old = streams.store.get(repo_id)
    assert old is not None and old.created_at is not None
    hub.delete(repo_id)
    created = datetime.now(UTC) - timedelta(seconds=1)
    hub.list_now(model_item(template, repo_id, created))
    [event] = await streams.poll(streams.uploads)
    assert isinstance(event, ModelCreated) and event.repo_id == repo_id
    assert event.created_at == parse_datetime(_iso(created))
    model = streams.store.get(repo_id)
    assert model is not None and model.created_at == event.created_at.timestamp()
    assert model.created_at != old.created_at and model.last_snapshot is None
    assert model.tier in ("new", "followed")
    for poller in (streams.uploads, streams.edits, streams.sweep, streams.engagement):
        assert not _created(await streams.poll(poller)), poller.name


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


@pytest.mark.parametrize(("finder", "holder"), [("edits", "uploads"), ("uploads", "edits")])
async def test_a_repo_another_stream_has_in_flight_is_left_for_the_sweep(
    streams: Streams, finder: str, holder: str
) -> None:
    """A stream that finds a repo another stream has claimed notes it for the sweep: when
    the claiming stream's round fails, the sweep looks it up, whatever its window (here:
    created before it, or too young for it)."""
    hub = streams.server.hub
    if finder == "edits":
        await streams.list_now(LATE, datetime.now(UTC) - timedelta(days=30))
        hub.edit(LATE, {"tags": [*hub.view(hub.find(LATE))["tags"], "license:mit"]})  # type: ignore[arg-type]
    else:
        await streams.list_now(LATE, datetime.now(UTC) - timedelta(seconds=5))
    assert streams.store.claim_first_sight(LATE, getattr(streams, holder).name)
    assert not _created(await streams.poll(getattr(streams, finder)))
    streams.restart()  # the claiming stream's round failed: its claim went with it
    [event] = await streams.poll(streams.sweep)
    assert isinstance(event, ModelCreated) and event.repo_id == LATE
    for poller in (streams.sweep, streams.uploads, streams.edits, streams.engagement):
        assert not _created(await streams.poll(poller)), poller.name


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


async def test_the_daily_deep_sweep_finds_what_is_older_than_the_hourly_window(
    streams: Streams,
) -> None:
    """Repos listed 20 and 40 days late are beyond the hourly sweep's 7 days; the deep
    sweep (90 days) reports them, and stops at its page bound: two pages of one id (the
    fixture's fresh upload, then the 20-day one) find only the newer one; a sweep with
    room for more pages finds the other."""
    now = datetime.now(UTC)
    await streams.list_now(LATE, now - timedelta(days=20))
    await streams.list_now(OLDER, now - timedelta(days=40))
    assert _created(await streams.poll(streams.sweep)) == []
    deep = ReconcilePoller(
        streams.client,
        streams.publisher,
        Tracker(streams.store),
        days=90,
        overlap=OVERLAP,
        initial_lookback=None,
        page_limit=1,
        max_pages=2,
        name="hub.reconcile.deep",
    )
    assert [e.repo_id for e in _created(await streams.poll(deep))] == [LATE]
    assert [e.repo_id for e in _created(await streams.poll(deep))] == []  # bound: 2 pages
    unbounded = ReconcilePoller(
        streams.client,
        streams.publisher,
        Tracker(streams.store),
        days=90,
        overlap=OVERLAP,
        initial_lookback=None,
        page_limit=1,
        max_pages=5,
        name="hub.reconcile.deep",
    )
    assert [e.repo_id for e in _created(await streams.poll(unbounded))] == [OLDER]
    assert _late_seen("hub.reconcile.deep") >= 2


async def test_a_repo_named_by_a_webhook_is_reported_within_seconds(
    fixture_items: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The producers as `poll hub` runs them, the hourly sweep already done: a webhook for
    a repo no listing showed (created a month ago, beyond the sweep's window) is looked up
    at once, one model-info request, and reported as first seen by the webhooks, not left
    for the next sweep an hour later."""
    server = ReplayServer(HubWorld(ListSource(fixture_items), start=len(fixture_items)))
    async with server:
        settings = Settings(
            hub_url=server.url,
            state_dir=tmp_path,
            hub_streams="uploads,reconcile",
            initial_lookback_seconds=None,
            poll_interval=3600.0,
            reconcile_interval=3600.0,
            deep_reconcile_interval=86_400.0,
            first_seen_interval=0.5,
            webhook_port=0,
            webhook_secret="s3cret",
        )
        queue: asyncio.Queue[Any] = asyncio.Queue()
        seen: list[Any] = []
        stop = asyncio.Event()

        async def take() -> None:
            while True:
                seen.extend(await drain(queue))
                await asyncio.sleep(0.05)

        async with Producers(settings, QueuePublisher(queue), github=False) as producers:
            taker = asyncio.create_task(take())
            run = asyncio.create_task(producers.run(stop))
            try:
                await asyncio.to_thread(
                    wait_until, lambda: len(_created(seen)) >= 67, "the 67 uploads"
                )
                sweeps = server.by_endpoint["list:createdAt"]
                await asyncio.sleep(1.0)  # every listing's first round is over: next in an hour
                assert server.by_endpoint["list:createdAt"] == sweeps
                await streams_list_now(server, LATE, datetime.now(UTC) - timedelta(days=30))
                lookups = server.by_endpoint["info"]
                assert producers.webhooks is not None
                async with httpx.AsyncClient() as client:
                    answer = await client.post(
                        producers.webhooks.url + producers.webhooks.path,
                        json={
                            "event": {"action": "update", "scope": "repo.content"},
                            "repo": {"type": "model", "name": LATE},
                        },
                        headers={"X-Webhook-Secret": "s3cret"},
                    )
                assert answer.status_code == 202, answer.text
                await asyncio.to_thread(
                    wait_until,
                    lambda: any(e.repo_id == LATE for e in _created(seen)),
                    "the webhook's repo reported",
                )
            finally:
                stop.set()
                await run
                taker.cancel()
    [late] = [e for e in _created(seen) if e.repo_id == LATE]
    assert late.first_seen_at is not None
    assert late.first_seen_at - late.created_at >= timedelta(days=29)
    assert server.by_endpoint["info"] - lookups == 1  # one model-info request
    assert server.by_endpoint["list:createdAt"] == sweeps  # no sweep found it


async def streams_list_now(server: ReplayServer, repo_id: str, created: datetime) -> None:
    template = server.hub.view(server.hub.find(CHILD))  # type: ignore[arg-type]
    server.hub.list_now(model_item(template, repo_id, created))


async def test_killed_and_restarted_poller_reports_a_late_model_once(
    fixture_items: list[dict[str, Any]], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """`hubwatch poll hub` on Kafka, SIGKILLed before and after the late model is listed:
    one model.created for it on the topic, with first_seen_at."""
    server = ReplayServer(
        HubWorld(ListSource(fixture_items), start=len(fixture_items)), api_quota=60_000
    )
    async with server:
        env = {
            "HUBWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "HUBWATCH_TOPIC_PREFIX": topic_prefix,
            "HUBWATCH_HUB_URL": server.url,
            "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
            "HUBWATCH_INITIAL_LOOKBACK_SECONDS": "",
            "HUBWATCH_HUB_STREAMS": "uploads,edits,engagement,reconcile",
            "HUBWATCH_ENGAGEMENT_BULK_EVERY": "1",
        }
        for name in ("POLL", "EDITS", "ENGAGEMENT", "RECONCILE"):
            env[f"HUBWATCH_{name}_INTERVAL"] = "0.5"

        def created(repo_id: str | None = None) -> list[dict[str, Any]]:
            try:
                messages = kcat(kafka_bootstrap, f"{topic_prefix}model.created")
            except subprocess.CalledProcessError:
                return []  # no topic yet
            return [m for m in messages if repo_id is None or m["key"] == repo_id]

        def rounds(count: int) -> None:
            """Wait for ``count`` more createdAt listings (uploads and sweeps)."""
            start = server.by_endpoint["list:createdAt"]
            wait_until(
                lambda: server.by_endpoint["list:createdAt"] >= start + count, f"{count} rounds"
            )

        template = server.hub.view(server.hub.find(CHILD))  # type: ignore[arg-type]
        logs = iter(tmp_path / f"poll-{n}.log" for n in range(1, 10))
        poller = spawn("poll", "hub", env=env, log=next(logs))
        try:
            await asyncio.to_thread(wait_until, lambda: len(created()) >= 67, "67 uploads")
            server.hub.list_now(model_item(template, FRESH, datetime.now(UTC)))
            await asyncio.to_thread(wait_until, lambda: created(FRESH), "the fresh upload")
            poller.send_signal(signal.SIGKILL)
            poller.wait(10)
            server.hub.list_now(model_item(template, LATE, datetime.now(UTC) - timedelta(days=3)))
            poller = spawn("poll", "hub", env=env, log=next(logs))
            await asyncio.to_thread(wait_until, lambda: created(LATE), "the late model")
            poller.send_signal(signal.SIGKILL)
            poller.wait(10)
            hub = server.hub
            hub.edit(LATE, {"tags": [*hub.view(hub.find(LATE))["tags"], "license:mit"]})  # type: ignore[arg-type]
            poller = spawn("poll", "hub", env=env, log=next(logs))
            await asyncio.to_thread(rounds, 20)
        finally:
            poller.send_signal(signal.SIGTERM)
            assert poller.wait(30) == 0
    [late] = created(LATE)
    assert late["data"]["first_seen_at"] is not None
    first_seen = parse_datetime(late["data"]["first_seen_at"])
    assert first_seen - parse_datetime(late["data"]["created_at"]) >= timedelta(days=3)
    assert len({m["event_id"] for m in created()}) == 69


def test_embedded_late_model_gets_a_row_tracking_and_snapshots(tmp_path: Path) -> None:
    """`hubwatch run --replay`: a model listed three days late gets its `models` row with
    first_seen_at, is tracked by the producers, and is snapshotted."""
    state = tmp_path / "state"
    env = {
        "HUBWATCH_STATE_DIR": str(state),
        "HUBWATCH_ENGAGEMENT_INTERVAL": "1",
        "HUBWATCH_ENGAGEMENT_BULK_EVERY": "2",
        "HUBWATCH_RECONCILE_INTERVAL": "1",
        "HUBWATCH_EDITS_INTERVAL": "1",
    }
    log = tmp_path / "run.log"
    run, url = spawn_embedded_replay(env=env, log=log)
    try:
        wait_until(lambda: "replaying" in log.read_text(), "the replay")
        replay = log.read_text().split(" models at ", 1)[1].split(",", 1)[0].strip()
        wait_until(lambda: ping(url), "the embedded ClickHouse")

        def count(sql: str) -> int:
            try:
                client = connect(url, database="hubwatch")
            except Exception:  # not migrated yet
                return -1
            try:
                return int(client.query(sql).result_rows[0][0])
            except Exception:  # not migrated yet
                return -1
            finally:
                client.close()

        wait_until(lambda: count("SELECT count() FROM models FINAL") == 67, "67 models")
        status = httpx.get(f"{replay}/_replay/status").json()
        template = {"id": CHILD, "createdAt": _iso(datetime.now(UTC)), "likes": 1}

        def list_now(repo_id: str, created: datetime) -> None:
            item = {**template, "id": repo_id, "author": repo_id.split("/")[0]}
            item.update(createdAt=_iso(created), lastModified=_iso(created))
            answer = httpx.post(f"{replay}/_replay/list", json=item)
            assert answer.status_code == 200, answer.text

        list_now(FRESH, datetime.now(UTC))
        wait_until(lambda: count("SELECT count() FROM models FINAL") == 68, "the fresh upload")
        created = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
        list_now(LATE, created)
        assert httpx.get(f"{replay}/_replay/status").json()["released"] == status["released"] + 2
        where = f"WHERE repo_id = '{LATE}'"
        wait_until(lambda: count(f"SELECT count() FROM models FINAL {where}") == 1, "its row")
        delay = count(
            f"SELECT dateDiff('second', created_at, first_seen_at) FROM models FINAL {where}"
        )
        # first_seen_at is the start of the round that found it, which may have begun a
        # moment before the listing.
        assert 3 * 86_400 - 60 <= delay <= 3 * 86_400 + 600
        wait_until(lambda: count(f"SELECT count() FROM model_snapshots {where}") > 0, "snapshots")
        db = sqlite3.connect(state / "producers.sqlite")  # the producers' tracking
        try:
            [(tracked,)] = db.execute("SELECT count(*) FROM models WHERE repo_id = ?", (LATE,))
        finally:
            db.close()
        assert tracked == 1
    finally:
        run.send_signal(signal.SIGINT)
        assert run.wait(60) == 0, log.read_text()[-3000:]


async def test_a_round_of_late_models_is_one_log_line(
    fixture_items: list[dict[str, Any]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The edits stream meeting the whole crawl before the uploads stream has walked it:
    67 late arrivals in one round are one log line, not one per model."""
    server = ReplayServer(HubWorld(ListSource(fixture_items), start=len(fixture_items)))
    async with server:
        s = Streams(server, tmp_path)
        late = _late_seen("hub.edits")
        with caplog.at_level(logging.INFO, logger="producers.first_seen"):
            found = await s.poll(s.edits)
        assert len(found) == 67 and _late_seen("hub.edits") - late == 67
        lines = [r.getMessage() for r in caplog.records if r.name == "producers.first_seen"]
        assert len(lines) == 1, lines
        assert lines[0].startswith("hub.edits: 67 models listed late")
        s.store.close()
        await s.client.aclose()
