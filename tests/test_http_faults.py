"""The one retry loop against the replay server's scripted faults, over real sockets."""

from __future__ import annotations

import httpx
import pytest

from hubwatch.errors import NotFound, RateLimited
from hubwatch.replay import Fault, GithubWorld, ReplayServer
from producers._http import make_client, request
from producers._ratelimit import RequestBudget
from tests.test_ratelimit import FakeTime


async def _no_wait(_: float) -> None:
    return None


@pytest.mark.parametrize("kind", ["429", "500", "503", "truncate", "reset"])
async def test_transient_faults_are_retried(replay: ReplayServer, kind: str) -> None:
    replay.hub.release(67)
    replay.faults = [Fault(kind=kind, count=2, path="/api/models", seconds=1)]
    t = FakeTime()
    budget = RequestBudget("hub", limit=1000, window=300, clock=t.clock, sleep=t.sleep)
    async with make_client(base_url=replay.url) as client:
        body, _ = await request(
            client, "/api/models", params={"limit": "5"}, budget=budget, sleep=_no_wait
        )
    assert len(body) == 5
    assert replay.faults[0].count == 0
    if kind == "429":
        assert budget.throttled == 2 and t.now >= 2.0  # waited as told, twice


async def test_slow_answers_time_out_and_are_retried(replay: ReplayServer) -> None:
    replay.hub.release(3)
    replay.faults = [Fault(kind="slow", count=1, path="/api/models", seconds=2)]
    async with make_client(base_url=replay.url, timeout=0.5) as client:
        body, _ = await request(client, "/api/models", sleep=_no_wait)
    assert len(body) == 3


async def test_not_found_is_final(replay: ReplayServer) -> None:
    async with make_client(base_url=replay.url) as client:
        with pytest.raises(NotFound):
            await request(client, "/api/models/nobody/nothing", sleep=_no_wait)
    assert replay.requests == 1


async def test_github_403_with_no_remaining_is_a_rate_limit() -> None:
    github = GithubWorld()
    github.add_repo("octo/repo")
    from hubwatch.replay import HubWorld, ListSource

    async with ReplayServer(HubWorld(ListSource([])), github=github, github_quota=1) as server:
        # With a token, as GitHub counts it: a 304 is free only for an authorized request.
        token = {"Authorization": "Bearer ghp_test"}
        async with httpx.AsyncClient(base_url=server.url, headers=token) as client:
            first = await client.get("/repos/octo/repo")
            again = await client.get(
                "/repos/octo/repo", headers={"If-None-Match": first.headers["etag"]}
            )
            spent = await client.get("/repos/octo/repo/commits")
        assert (first.status_code, again.status_code, spent.status_code) == (200, 304, 403)
        async with make_client(base_url=server.url) as client:
            budget = RequestBudget("github", limit=1, window=3600)
            with pytest.raises(RateLimited) as caught:
                await request(client, "/repos/octo/repo/issues", budget=budget, max_attempts=1)
    assert caught.value.retry_after is not None and caught.value.retry_after > 0


async def test_github_secondary_limit_without_retry_after_waits_a_minute_doubling() -> None:
    """GitHub's secondary limit often comes as a 403 with primary quota left and no
    retry-after: a rate limit all the same, waited out a minute, then two, as it repeats."""
    github = GithubWorld()
    github.add_repo("octo/repo")
    from hubwatch.replay import HubWorld, ListSource

    async with ReplayServer(HubWorld(ListSource([])), github=github) as server:
        server.faults = [Fault(kind="secondary", count=2, path="/repos/octo/repo")]
        t = FakeTime()
        budget = RequestBudget("github", limit=5000, window=3600, clock=t.clock, sleep=t.sleep)
        async with make_client(base_url=server.url) as client:
            with pytest.raises(RateLimited) as caught:
                await request(client, "/repos/octo/repo", budget=budget, max_attempts=1)
            assert caught.value.status == 403 and caught.value.retry_after == 60
            body, _ = await request(client, "/repos/octo/repo", budget=budget, sleep=_no_wait)
    assert body["full_name"] == "octo/repo"
    assert budget.throttled == 2 and t.now >= 60 + 120  # a minute, then two
