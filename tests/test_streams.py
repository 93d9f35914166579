"""Each Hub and GitHub stream against the replay, over real sockets, with state kept in the
producers' store across poller restarts. Events go to the embedded mode's queue, so each
test sees exactly what was published."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubwatch.events import (
    DeadLetter,
    GithubCommit,
    GithubIssue,
    GithubRelease,
    GithubRepoSnapshot,
    ModelCommit,
    ModelCreated,
    ModelDiscussion,
    ModelSnapshot,
    ModelUpdated,
)
from hubwatch.replay import GithubWorld, HubWorld, ListSource, ReplayServer
from producers._http import make_client
from producers._ratelimit import RequestBudget
from producers.checkpoint import CheckpointStore
from producers.github import GITHUB_HEADERS, GithubPoller
from producers.hub import model_created_from_api, now_utc
from producers.hub_community import CommunityPoller
from producers.hub_edits import HubEditsPoller
from producers.hub_engagement import EngagementPoller
from producers.hub_uploads import HubUploadsPoller
from producers.publish import QueuePublisher
from producers.state import StateStore
from producers.tracking import Tracker, TrackingPolicy
from producers.webhooks import WebhookReceiver
from tests.conftest import poll_draining

BASE = "mistralai/Mistral-Small-24B-Base-2501"
CHILD = "allura-org/Mistral-Small-24b-Sertraline-0304"


class Rig:
    """A replay, a queue publisher, and a producer state dir that outlives pollers."""

    def __init__(self, server: ReplayServer, state: Path) -> None:
        self.server = server
        self.state = state
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.publisher = QueuePublisher(self.queue)
        self.client = make_client(base_url=server.url)

    def store(self) -> StateStore:
        return StateStore(self.state / "producers.sqlite")

    def tracker(self, store: StateStore, **policy: Any) -> Tracker:
        return Tracker(store, TrackingPolicy(**policy))

    async def poll(self, poller: Any) -> list[Any]:
        return await poll_draining(poller, self.queue)

    async def uploads(self, tracker: Tracker) -> list[Any]:
        poller = HubUploadsPoller(
            self.client,
            self.publisher,
            CheckpointStore(self.state / "uploads.json"),
            overlap=timedelta(minutes=10),
            initial_lookback=None,
            page_limit=50,
            tracker=tracker,
        )
        return await self.poll(poller)


@pytest.fixture
async def rig(fixture_items: list[dict[str, Any]], tmp_path: Path) -> AsyncIterator[Rig]:
    github = GithubWorld()
    github.add_repo("octo/inference")
    server = ReplayServer(
        HubWorld(ListSource(fixture_items), start=len(fixture_items)), github=github
    )
    async with server:
        rig = Rig(server, tmp_path)
        yield rig
        await rig.client.aclose()


def _edits(
    rig: Rig, store: StateStore, lookback: timedelta | None = None, **policy: Any
) -> HubEditsPoller:
    return HubEditsPoller(
        rig.client,
        rig.publisher,
        rig.tracker(store, **policy),
        overlap=timedelta(minutes=10),
        initial_lookback=lookback,
        page_limit=20,
    )


async def test_edits_report_relation_changes_once(rig: Rig) -> None:
    store = rig.store()
    assert len(await rig.uploads(rig.tracker(store))) == 67
    assert await rig.poll(_edits(rig, store)) == []  # nothing changed since upload

    item = rig.server.hub.view(rig.server.hub.find(CHILD))  # type: ignore[arg-type]
    rig.server.hub.edit(CHILD, {"tags": [*item["tags"], "base_model:adapter:org/extra"]})
    rig.server.hub.commit(BASE, "Update generation_config.json")  # not a relation change
    [update] = await rig.poll(_edits(rig, store))
    assert isinstance(update, ModelUpdated)
    assert update.repo_id == CHILD and update.changed == ("tags",)
    assert "base_model:adapter:org/extra" in update.tags
    store.close()

    restarted = rig.store()  # a new process: state comes from the store alone
    assert await rig.poll(_edits(rig, restarted)) == []


async def test_edits_and_uploads_report_each_model_once(rig: Rig) -> None:
    """Edits polled before the uploads stream's first round (a slow start, faults) report
    what they see first as model.created (never a model.updated for a model not yet
    created), and the uploads stream then reports only the rest: each model once."""
    store = rig.store()
    hub = rig.server.hub
    item = hub.view(hub.find(CHILD))  # type: ignore[arg-type]
    hub.edit(CHILD, {"tags": [*item["tags"], "license:mit"]})
    first = await rig.poll(_edits(rig, store))
    assert all(isinstance(e, ModelCreated) and e.first_seen_at for e in first)
    assert len({e.repo_id for e in first}) == len(first) == 67
    assert await rig.uploads(rig.tracker(store)) == []  # all seen already
    hub.edit(CHILD, {"tags": [*item["tags"], "base_model:adapter:org/extra"]})
    [update] = await rig.poll(_edits(rig, store))
    assert isinstance(update, ModelUpdated) and update.repo_id == CHILD


async def test_engagement_snapshots_follow_the_schedule(rig: Rig) -> None:
    store = rig.store()
    tracker = rig.tracker(store)
    await rig.uploads(tracker)
    rig.server.hub.engage(CHILD, likes=7, downloads=500)
    later = time.time() + 3600  # everything tracked is due by then
    poller = EngagementPoller(
        rig.client, rig.publisher, tracker, requests_per_round=30, clock=lambda: later
    )
    before = rig.server.requests
    snaps = await rig.poll(poller)
    assert all(isinstance(s, ModelSnapshot) for s in snaps)
    # The bulk calls (trending, likes, downloads, lastModified) cover all 67 replayed
    # models; no per-model call is needed, and each model's schedule moves on.
    assert rig.server.requests - before == 4
    assert len({s.repo_id for s in snaps}) == 67
    assert store.due_snapshots(later, 100) == []
    child = next(s for s in snaps if s.repo_id == CHILD)
    assert child.likes == 3 + 7
    assert store.get(CHILD).likes == 10  # type: ignore[union-attr]
    # Nothing is due again yet: the bulk call is not repeated within its period.
    assert await rig.poll(poller) == []


async def test_per_model_snapshots_within_the_round_budget(rig: Rig) -> None:
    store = rig.store()
    tracker = rig.tracker(store)
    await rig.uploads(tracker)
    # The replayed models are months old: their tiers want a snapshot within 7 days at most.
    later = time.time() + 8 * 86400
    poller = EngagementPoller(
        rig.client,
        rig.publisher,
        tracker,
        requests_per_round=10,
        bulk_every=10**9,
        clock=lambda: later,
    )
    poller._next_bulk = 10**12  # this round: per-model calls only
    before = rig.server.requests
    snaps = await rig.poll(poller)
    assert len(snaps) == 10 and rig.server.requests - before == 10


async def test_community_commits_and_discussions(rig: Rig) -> None:
    store = rig.store()
    tracker = rig.tracker(store, watched_base_models=frozenset({BASE}), community_min_likes=10**6)
    await rig.uploads(tracker)
    hub = rig.server.hub
    poller = CommunityPoller(
        rig.client, rig.publisher, tracker, repos_per_round=100, clock=lambda: time.time() + 10
    )
    first = await rig.poll(poller)
    commits = [e for e in first if isinstance(e, ModelCommit)]
    # The base and its whole family (every model in the tree) are followed.
    assert {c.repo_id for c in commits} == {v["id"] for v in hub.released_views()}

    hub.discussion(CHILD, title="GGUF please?")
    hub.commit(CHILD, "Add GGUF")
    poller = CommunityPoller(
        rig.client, rig.publisher, tracker, repos_per_round=100, clock=lambda: time.time() + 7200
    )
    second = await rig.poll(poller)
    assert [(type(e).__name__, e.repo_id) for e in second] == [
        ("ModelCommit", CHILD),
        ("ModelDiscussion", CHILD),
    ]
    hub.discussion(CHILD, num=1, status="closed")
    poller = CommunityPoller(
        rig.client,
        rig.publisher,
        tracker,
        repos_per_round=100,
        clock=lambda: time.time() + 4 * 7200,
    )
    # A status change brings the discussion's transitions, each timed when it happened
    # (re-sending the opening is harmless: the row's natural key replaces it).
    opened, closed = await rig.poll(poller)
    assert isinstance(closed, ModelDiscussion) and closed.status == "closed"
    assert isinstance(opened, ModelDiscussion) and opened.status == "open"
    assert opened.changed_at == opened.created_at
    assert closed.changed_at is not None and closed.changed_at > opened.created_at


async def test_a_watched_family_is_followed_in_whatever_order_it_is_seen(rig: Rig) -> None:
    """The edits stream can see models first (and reports them as first seen), and
    children can arrive before their parents: the whole family is still followed."""
    family = {v["id"] for v in rig.server.hub.released_views()}
    watched = {"watched_base_models": frozenset({BASE}), "community_min_likes": 10**6}
    store = rig.store()
    day = timedelta(days=1)  # the fixture's models are older: edits, not new uploads
    assert await rig.poll(_edits(rig, store, day, **watched)) == []  # sets its marks
    hub = rig.server.hub
    for repo_id in (CHILD, BASE):  # edited before the uploads stream has reported them
        item = hub.view(hub.find(repo_id))  # type: ignore[arg-type]
        hub.edit(repo_id, {"tags": [*item["tags"], "license:mit"]})
    edited = await rig.poll(_edits(rig, store, day, **watched))
    assert {CHILD, BASE} == {e.repo_id for e in edited}  # first seen here
    assert all(isinstance(e, ModelCreated) for e in edited)
    assert len(await rig.uploads(rig.tracker(store, **watched))) == 65  # the rest
    assert set(store.due_community(time.time(), 1000)) == family

    # Newest first, so nearly every child comes before its parent.
    reordered = StateStore(rig.state / "reordered.sqlite")
    tracker = rig.tracker(reordered, **watched)
    tracker.track_all(
        model_created_from_api(item, now_utc())
        for item in sorted(rig.server.hub.released_views(), key=lambda v: v["createdAt"])[::-1]
    )
    assert set(reordered.due_community(time.time(), 1000)) == family


async def test_webhooks_push_and_polling_do_not_duplicate(rig: Rig) -> None:
    store = rig.store()
    tracker = rig.tracker(store, watched_orgs=frozenset({"allura-org"}))
    await rig.uploads(tracker)
    received: list[Any] = []

    async def processors() -> None:  # take events as the embedded processors would
        while True:
            received.append(await rig.queue.get())
            rig.queue.task_done()

    taking = asyncio.create_task(processors())
    async with WebhookReceiver(rig.publisher, store, "s3cret") as receiver:
        rig.server._webhook = (receiver.url + WebhookReceiver.path, "s3cret")
        rig.server.hub.on_change = rig.server._send_webhook
        rig.server.hub.discussion(CHILD, title="Pushed")
        for _ in range(200):
            if received:
                break
            await asyncio.sleep(0.02)
        [pushed] = received
        assert isinstance(pushed, ModelDiscussion) and pushed.title == "Pushed"

        async with httpx.AsyncClient(base_url=receiver.url) as client:
            wrong = await client.post(
                WebhookReceiver.path, json={}, headers={"X-Webhook-Secret": "nope"}
            )
            broken = await client.post(
                WebhookReceiver.path, content=b"{oops", headers={"X-Webhook-Secret": "s3cret"}
            )
        assert (wrong.status_code, broken.status_code) == (401, 400)
        assert isinstance(received[-1], DeadLetter) and len(received) == 2
    taking.cancel()

    poller = CommunityPoller(
        rig.client, rig.publisher, tracker, repos_per_round=100, clock=lambda: time.time() + 10
    )
    polled = await rig.poll(poller)
    assert not [e for e in polled if isinstance(e, ModelDiscussion)]  # pushed already


async def test_github_conditional_polls(rig: Rig) -> None:
    store = rig.store()
    budget = RequestBudget("github", limit=5000, window=3600)
    # With a token: only then is a 304 free (tests/test_github_budget.py has anonymous).
    async with make_client(
        base_url=rig.server.url, token="ghp_test", headers=GITHUB_HEADERS
    ) as client:

        def poller() -> GithubPoller:
            return GithubPoller(
                client,
                rig.publisher,
                store,
                repos=("octo/inference",),
                budget=budget,
                repo_interval=0,  # every round, as if the budget were endless
            )

        first = await rig.poll(poller())
        kinds = sorted(type(e).__name__ for e in first)
        assert kinds == ["GithubCommit"] * 3 + ["GithubIssue"] * 2 + [
            "GithubRelease",
            "GithubRepoSnapshot",
        ]
        assert sum(isinstance(e, GithubIssue) and e.is_pull_request for e in first) == 1
        # The next poll asks from the new ``since`` marks (new URLs, full answers, nothing
        # new in them); from then on every answer is a 304...
        assert await rig.poll(poller()) == []
        spent = budget.requests
        assert await rig.poll(poller()) == []
        assert budget.requests == spent  # ...which cost no rate limit

        world = rig.server.github
        world.commit("octo/inference", "Fix the tokenizer")
        world.issue("octo/inference", "", number=1, state="closed")
        world.release("octo/inference", "v0.2.0")
        news = await rig.poll(poller())
        assert sorted(type(e).__name__ for e in news) == [
            "GithubCommit",
            "GithubIssue",
            "GithubRelease",
            "GithubRepoSnapshot",
        ]
        closed = next(e for e in news if isinstance(e, GithubIssue))
        assert closed.number == 1 and closed.state == "closed"
        assert isinstance(next(e for e in news if isinstance(e, GithubCommit)), GithubCommit)
        assert any(isinstance(e, GithubRelease) and e.tag_name == "v0.2.0" for e in news)
        assert any(isinstance(e, GithubRepoSnapshot) for e in news)
        assert await rig.poll(poller()) == []
