"""Each Hub stream spends its own reserved share of the one Hub budget: a greedy stream
cannot eat the engagement stream's calls, and the snapshot plan promises what the
engagement share buys (shrinking with the Hub's limit)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from pathlib import Path

import pytest

from hubwatch.errors import ConfigError
from hubwatch.settings import Settings
from producers._ratelimit import RateLimit, RequestBudget
from producers.publish import QueuePublisher
from producers.runner import Producers

WINDOW = 300.0


class VirtualTime:
    """Discrete-event time for budgets: ``sleep`` parks a task until the driver moves the
    clock to its wake time; no real waiting, so the figures do not depend on CPU load."""

    def __init__(self) -> None:
        self.now = 0.0
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (self.now + seconds, next(self._seq), future))
        await future

    async def run_until(self, until: float) -> None:
        while self.now < until:
            for _ in range(3):  # every runnable task reaches its next sleep
                await asyncio.sleep(0)
            if not self._waiters:
                return
            at, _, future = heapq.heappop(self._waiters)
            self.now = max(self.now, at)
            future.set_result(None)


async def _greedy(budget: RequestBudget, counts: dict[str, int], name: str) -> None:
    while True:
        await budget.acquire()
        counts[name] = counts.get(name, 0) + 1


async def _race(shared: bool, windows: int) -> dict[str, int]:
    """Ten greedy community workers and one engagement worker, for ``windows`` windows."""
    vt = VirtualTime()
    hub = RequestBudget("hub", limit=1000, window=WINDOW, clock=vt.clock, sleep=vt.sleep)
    community = hub if shared else hub.reserve("community", 250)
    engagement = hub if shared else hub.reserve("engagement", 150)
    counts: dict[str, int] = {}
    tasks = [asyncio.create_task(_greedy(community, counts, "community")) for _ in range(10)]
    tasks.append(asyncio.create_task(_greedy(engagement, counts, "engagement")))
    await vt.run_until(windows * WINDOW)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return counts


async def test_a_greedy_stream_cannot_eat_the_engagement_share() -> None:
    windows = 4
    # One bucket for every stream: the busier stream takes most of it and the engagement
    # stream falls below the 150 calls per 5 minutes its promise is computed from.
    shared = await _race(shared=True, windows=windows)
    assert shared.get("engagement", 0) < 150 * windows * 0.5
    # Reserved shares: engagement gets its 150 a window whatever the others do; the greedy
    # stream gets its own share and borrows only what lies idle, within the whole.
    counts = await _race(shared=False, windows=windows)
    assert counts["engagement"] >= 150 * windows * 0.95
    assert counts["community"] >= 250 * windows * 0.95
    assert sum(counts.values()) <= 1000 * 0.8 * windows + 5


async def test_the_snapshot_plan_promises_what_the_engagement_share_buys(
    tmp_path: Path,
) -> None:
    settings = Settings(
        state_dir=tmp_path,
        hub_url="http://127.0.0.1:9",  # never asked: only the plan is read
        snapshot_requests_per_window=100,
        engagement_bulk_every=300.0,
    )
    producers = Producers(settings, QueuePublisher(asyncio.Queue()), github=False)
    await producers.start()
    try:
        tracker = producers.tracker
        assert tracker is not None
        shares = settings.hub_share_map()
        assert shares["engagement"] == 100
        assert producers.hub_shares["engagement"].per_window == 100
        bulk = 4 * 288  # four bulk orders every 5 minutes
        now = time.time()
        assert tracker.plan(now).calls_per_day == pytest.approx(100 * 288 - bulk)
        # The Hub says its limit is 500, not 1,000: every share shrinks alike, and the next
        # plan promises only what the engagement share now buys.
        producers.hub_budget.observe(RateLimit(remaining=500, reset_after=10, limit=500))
        later = tracker.plan(now + 301)
        assert later.calls_per_day == pytest.approx(100 * 0.5 * 288 - bulk)
    finally:
        await producers.stop()


def test_shares_that_do_not_fit_the_budget_are_refused() -> None:
    with pytest.raises(ConfigError, match="shares add up"):
        Settings.from_env(
            {
                "HUBWATCH_HUB_SHARES": "uploads=700,edits=60,community=250,"
                "reconcile=60,aliases=40,first_seen=20"
            }
        )
    with pytest.raises(ConfigError, match="unknown stream"):
        Settings.from_env({"HUBWATCH_HUB_SHARES": "uplods=10"})


async def test_a_stream_alone_borrows_what_lies_idle() -> None:
    """A share is owed, not a ceiling on an idle budget: the community stream alone (250 a
    window) gets far more, still within the whole budget's 80 %."""
    vt = VirtualTime()
    hub = RequestBudget("hub", limit=1000, window=WINDOW, clock=vt.clock, sleep=vt.sleep)
    community = hub.reserve("community", 250)
    hub.reserve("engagement", 150)  # reserved, and idle
    counts: dict[str, int] = {}
    task = asyncio.create_task(_greedy(community, counts, "community"))
    await vt.run_until(2 * WINDOW)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert 2 * 250 * 1.5 < counts["community"] <= 2 * 1000 * 0.8 + 5
    assert community.borrowed > 0
