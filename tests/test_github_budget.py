"""GitHub within its limits, against the replay's GithubWorld over real sockets: where a
newly followed repo starts, per-page checkpoints, a round within the anonymous budget in
priority order, one ETag row per repo and endpoint, and what a 304 costs."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hubwatch import metrics
from hubwatch.errors import RateLimited
from hubwatch.events import GithubCommit, GithubIssue, GithubRelease, GithubRepoSnapshot
from hubwatch.replay import Fault, GithubWorld, HubWorld, ListSource, ReplayServer
from producers._http import make_client, request
from producers._ratelimit import RequestBudget
from producers.github import GITHUB_HEADERS, GithubPoller
from producers.publish import QueuePublisher
from producers.state import StateStore
from tests.conftest import poll_draining

REPO = "octo/lib"
DAY = 86_400.0


@pytest.fixture
async def server() -> AsyncIterator[ReplayServer]:
    # GitHub's anonymous quota: 60 requests an hour.
    async with ReplayServer(HubWorld(ListSource([])), github=GithubWorld(), github_quota=60) as s:
        yield s


def _whole_second(ts: float) -> float:
    """Real GitHub timestamps have no fraction of a second."""
    return float(int(ts))


def _poller(client: Any, queue: asyncio.Queue[Any], store: StateStore, **kw: Any) -> GithubPoller:
    kw.setdefault("repos", (REPO,))
    kw.setdefault("repo_interval", 0)
    return GithubPoller(client, QueuePublisher(queue), store, **kw)


async def test_a_newly_followed_repo_starts_at_the_lookback(
    server: ReplayServer, tmp_path: Path
) -> None:
    world = server.github
    world.add_repo(REPO, history=0)  # one issue, one PR and a release, a day old
    now = _whole_second(time.time())
    world.commit(REPO, "ancient", at=now - 400 * DAY)
    world.commit(REPO, "last week", at=now - 10 * DAY)
    world.commit(REPO, "yesterday", at=now - DAY)
    world.issue(REPO, "old bug", at=now - 10 * DAY)
    world.release(REPO, "v0.0.1", at=now - 10 * DAY)
    store = StateStore(tmp_path / "producers.sqlite")
    queue: asyncio.Queue[Any] = asyncio.Queue()
    async with make_client(base_url=server.url, headers=GITHUB_HEADERS) as client:
        poller = _poller(client, queue, store, lookback=timedelta(days=3))
        events = await poll_draining(poller, queue)
        world.commit(REPO, "today")
        again = await poll_draining(poller, queue)
    store.close()
    commits = [e.message for e in events if isinstance(e, GithubCommit)]
    issues = sorted(e.title for e in events if isinstance(e, GithubIssue))
    releases = [e.tag_name for e in events if isinstance(e, GithubRelease)]
    assert commits == ["yesterday"]
    assert issues == ["Add a feature", "First bug"]
    assert releases == ["v0.1.0"]
    assert [e.message for e in again if isinstance(e, GithubCommit)] == ["today"]


async def _poll_failing_after_first(
    poller: GithubPoller,
    queue: asyncio.Queue[Any],
    server: ReplayServer,
    kind: type,
    path: str,
) -> list[Any]:
    """One round, in which GitHub fails ``path`` (5xx, through every retry) from the moment
    the first page's events are taken: before the second page is asked for."""
    task = asyncio.create_task(poller.poll_once())
    taken: list[Any] = []
    while not task.done() or not queue.empty():
        while not queue.empty():
            event = queue.get_nowait()
            taken.append(event)
            if isinstance(event, kind) and not server.faults:
                server.faults.append(Fault("502", count=6, path=path))
            queue.task_done()  # the poller's flush returns only after this
        await asyncio.sleep(0.01)
    await task
    return taken


@pytest.mark.parametrize("what", ["commits", "issues"])
async def test_a_failure_on_page_2_keeps_page_1(
    server: ReplayServer, tmp_path: Path, what: str
) -> None:
    world = server.github
    world.add_repo(REPO, history=0)
    now = _whole_second(time.time())
    for i in range(5):
        world.commit(REPO, f"commit {i}", at=now - DAY + i * 60)
        world.issue(REPO, f"issue {i}", at=now - DAY + 1000 + i * 60)
    kind = GithubCommit if what == "commits" else GithubIssue
    store = StateStore(tmp_path / "producers.sqlite")
    queue: asyncio.Queue[Any] = asyncio.Queue()
    async with make_client(base_url=server.url, headers=GITHUB_HEADERS) as client:
        first = await _poll_failing_after_first(
            _poller(client, queue, store, per_page=2),
            queue,
            server,
            kind,
            f"/repos/{REPO}/{what}",
        )
        assert server.faults[0].count == 0  # page 2 was asked for, and failed
        server.faults.clear()
        second = await poll_draining(_poller(client, queue, store, per_page=2), queue)
        third = await poll_draining(_poller(client, queue, store, per_page=2), queue)
    store.close()

    def ids(events: list[Any]) -> list[object]:
        return [e.identity() for e in events if isinstance(e, kind)]

    assert len(ids(first)) == 2  # page 1, published before page 2 failed
    assert len(ids(second)) == (5 if what == "commits" else 7) - 2  # the rest, once
    assert not set(ids(first)) & set(ids(second))
    assert ids(third) == []


async def test_fifty_repos_on_the_anonymous_budget_in_priority_order(
    server: ReplayServer, tmp_path: Path
) -> None:
    """An hour of rounds every 5 minutes on GitHub's anonymous 60 an hour (at hubwatch's
    80 % share): the requests stay within it, no 403, and the repos polled are the most
    valuable: configured first, then by the likes and downloads of the cards linking them."""
    world = server.github
    configured = ("cfg/zeta", "cfg/alpha")
    for repo in configured:
        world.add_repo(repo, history=1)
    store = StateStore(tmp_path / "producers.sqlite")
    card_linked = []
    with store.transaction():
        for i in range(48):
            repo, model = f"lab{i:02d}/code", f"lab{i:02d}/model"
            world.add_repo(repo, history=1)
            # Likes and downloads in a shuffled order (i * 7 % 48), so neither the names
            # nor the order followed can pass for the priority.
            likes = (i * 7) % 48 * 100
            store.track(
                model,
                author=None,
                created_at=None,
                fingerprint="",
                downloads=likes * 500,
                likes=likes,
                next_snapshot=0,
                community=False,
            )
            store.add_github_repo(repo, f"card:{model}")
            card_linked.append((likes, repo))
    expected = sorted(configured) + [repo for _, repo in sorted(card_linked, reverse=True)]

    now = [time.time()]

    async def sleep(seconds: float) -> None:
        now[0] += seconds  # simulated time: the budget's waits pass at once
        await asyncio.sleep(0)

    budget = RequestBudget(
        "github", limit=60, window=3600, share=0.8, clock=lambda: now[0], sleep=sleep
    )
    queue: asyncio.Queue[Any] = asyncio.Queue()
    start = now[0]
    polled: list[str] = []
    async with make_client(base_url=server.url, headers=GITHUB_HEADERS) as client:
        poller = _poller(
            client,
            queue,
            store,
            repos=configured,
            budget=budget,
            repo_interval=3600,
            round_seconds=300,
            clock=lambda: now[0],
        )
        for round_ in range(12):  # an hour
            now[0] = max(now[0], start + round_ * 300)
            events = await poll_draining(poller, queue)
            polled += [e.repo for e in events if isinstance(e, GithubRepoSnapshot)]
    store.close()
    assert server.throttled == 0
    assert server.by_endpoint["github"] <= 60 * 0.8
    assert len(polled) >= 8  # the budget is used, not left idle
    assert polled == expected[: len(polled)]
    assert metrics.GITHUB_REPOS.labels("followed")._value.get() == 50
    left = metrics.GITHUB_REPOS.labels("overdue")._value.get()
    assert left == 50 - len(polled)  # none polled twice within its hour


async def test_etag_rows_stay_one_per_repo_and_endpoint_across_days(
    server: ReplayServer, tmp_path: Path
) -> None:
    world = server.github
    world.add_repo(REPO)
    path = tmp_path / "producers.sqlite"
    # A store from before: ETags keyed by URL and query (one more each time `since` moved),
    # repos without poll times, card links only in `source`.
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE github_repos (repo TEXT PRIMARY KEY, source TEXT);"
            "CREATE TABLE etags (url TEXT PRIMARY KEY, etag TEXT);"
        )
        db.execute("INSERT INTO github_repos VALUES (?, 'card:org/model')", (REPO,))
        for day in range(3):
            key = f'/repos/{REPO}/commits?{{"per_page": "100", "since": "2025-01-0{day + 1}"}}'
            db.execute("INSERT INTO etags VALUES (?, ?)", (key, f'W/"{day}"'))
    store = StateStore(path)

    def rows() -> int:
        with sqlite3.connect(path) as db:
            return int(db.execute("SELECT count(*) FROM etags").fetchone()[0])

    assert rows() == 0  # old keys dropped on open
    [followed] = store.followed_github_repos()
    assert (followed.repo, followed.configured, followed.last_polled) == (REPO, False, None)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    counts = []
    async with make_client(base_url=server.url, headers=GITHUB_HEADERS) as client:
        poller = _poller(client, queue, store, repos=())
        for day in range(4):
            if day:  # a day's activity moves every list's `since`
                world.commit(REPO, f"day {day}")
                world.issue(REPO, f"bug of day {day}")
                world.release(REPO, f"v{day}")
            await poll_draining(poller, queue)
            counts.append(rows())
    store.close()
    assert counts == [4, 4, 4, 4]  # the counters, commits, issues, releases


@pytest.mark.parametrize(("token", "cost"), [(None, 1), ("ghp_test", 0)])
async def test_a_304_is_free_only_with_a_token(
    server: ReplayServer, token: str | None, cost: int
) -> None:
    """GitHub: a conditional request answered 304 does not count against the primary
    limit when it is authorized; anonymous, it counts like any other."""
    server.github.add_repo(REPO)
    budget = RequestBudget("github", limit=5000, window=3600)
    async with make_client(base_url=server.url, token=token, headers=GITHUB_HEADERS) as client:
        _, response = await request(client, f"/repos/{REPO}", budget=budget)
        etag = response.headers["etag"]
        before = budget.requests
        body, response = await request(
            client, f"/repos/{REPO}", headers={"If-None-Match": etag}, budget=budget
        )
    assert (body, response.status_code) == (None, 304)
    assert budget.requests - before == cost


async def test_a_secondary_rate_limit_ends_the_round(server: ReplayServer, tmp_path: Path) -> None:
    """A 403 secondary limit with quota left and no retry-after is waited out (a minute,
    doubling) and, when it persists, ends the round: the next repo is not asked for."""
    world = server.github
    for repo in ("cfg/first", "cfg/second"):
        world.add_repo(repo, history=0)
    server.faults = [Fault("secondary", count=6, path="/repos/cfg/first")]
    now = [time.time()]

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0)

    budget = RequestBudget("github", limit=5000, window=3600, clock=lambda: now[0], sleep=sleep)
    store = StateStore(tmp_path / "producers.sqlite")
    queue: asyncio.Queue[Any] = asyncio.Queue()
    start = now[0]
    async with make_client(base_url=server.url, headers=GITHUB_HEADERS) as client:
        poller = _poller(client, queue, store, repos=("cfg/first", "cfg/second"), budget=budget)
        with pytest.raises(RateLimited):
            await poll_draining(poller, queue)
    store.close()
    assert server.faults[0].count == 0
    assert server.by_endpoint["github"] == 6  # all on the limited repo, none on the next
    assert now[0] - start >= 60 * (1 + 2 + 4 + 8 + 16)  # waited before each retry


async def test_an_empty_repo_or_one_failing_list_skips_nothing_else(
    server: ReplayServer, tmp_path: Path
) -> None:
    """An empty repo answers its commits with 409 (no commits, not a failure), and an error
    answer for one list leaves the repo's other lists polled all the same."""
    world = server.github
    world.add_repo("octo/empty", history=0)  # an issue, a PR and a release; no commits
    world.add_repo(REPO, history=1)
    server.faults = [Fault("422", count=1, path=f"/repos/{REPO}/issues")]
    store = StateStore(tmp_path / "producers.sqlite")
    queue: asyncio.Queue[Any] = asyncio.Queue()
    async with make_client(base_url=server.url, headers=GITHUB_HEADERS) as client:
        probe = await client.get("/repos/octo/empty/commits")
        assert probe.status_code == 409 and "empty" in probe.json()["message"]
        poller = _poller(client, queue, store, repos=("octo/empty", REPO))
        events = await poll_draining(poller, queue)
    store.close()

    def kinds(repo: str) -> list[str]:
        return sorted(type(e).__name__ for e in events if e.repo == repo)

    assert server.faults[0].count == 0
    assert kinds("octo/empty") == [
        "GithubIssue",
        "GithubIssue",
        "GithubRelease",
        "GithubRepoSnapshot",
    ]
    assert kinds(REPO) == ["GithubCommit", "GithubRelease", "GithubRepoSnapshot"]


async def test_the_followed_set_is_capped_by_value_and_gone_repos_are_dropped(
    tmp_path: Path,
) -> None:
    """At most four repos followed: the configured one, then card-linked ones by the likes
    of the models linking them. The most liked answers 404: it is dropped (counted once,
    never asked again, not revived by its card) and the next by value takes its place."""
    async with ReplayServer(
        HubWorld(ListSource([])), github=GithubWorld(), github_quota=5000
    ) as server:
        await _capped_and_gone(server, tmp_path)


async def _capped_and_gone(server: ReplayServer, tmp_path: Path) -> None:
    world = server.github
    world.add_repo("cfg/alpha", history=1)
    store = StateStore(tmp_path / "producers.sqlite")
    with store.transaction():
        for name, likes in [("gone", 900), ("a", 500), ("b", 400), ("c", 300), ("d", 200)]:
            repo, model = f"lab/{name}", f"lab/model-{name}"
            if name != "gone":
                world.add_repo(repo, history=1)
            store.track(
                model,
                author=None,
                created_at=None,
                fingerprint="",
                downloads=0,
                likes=likes,
                next_snapshot=0,
                community=False,
            )
            store.add_github_repo(repo, f"card:{model}")
    dropped = metrics.GITHUB_REPOS_DROPPED.labels("gone")._value.get()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    rounds: list[list[str]] = []
    async with make_client(base_url=server.url, headers=GITHUB_HEADERS) as client:
        poller = _poller(client, queue, store, repos=("cfg/alpha",), max_repos=4)
        for round_ in range(3):
            events = await poll_draining(poller, queue)
            rounds.append(sorted({e.repo for e in events if isinstance(e, GithubRepoSnapshot)}))
            capped = metrics.GITHUB_REPOS.labels("capped")._value.get()
            assert capped == (2 if round_ == 0 else 1)  # lab/c and lab/d, then lab/d
        with store.transaction():  # another model card linking the gone repo
            store.add_github_repo("lab/gone", "card:lab/model-other")
        again = await poll_draining(poller, queue)
    # New counters (a 304 has none): lab/gone answered 404, lab/c took its place.
    assert rounds[0] == ["cfg/alpha", "lab/a", "lab/b"]
    assert rounds[1] == ["lab/c"]
    assert rounds[2] == [] and not [e for e in again if isinstance(e, GithubRepoSnapshot)]
    # Asked once: a repo asked again would answer 404 again and be counted again.
    assert metrics.GITHUB_REPOS_DROPPED.labels("gone")._value.get() == dropped + 1
    assert "lab/gone" not in store.github_repos()
    store.close()
