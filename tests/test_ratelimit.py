"""Rate-limit headers and the request budget's pacing, on a fake clock."""

from __future__ import annotations

import pytest

from producers._ratelimit import (
    RateLimit,
    RequestBudget,
    from_github_headers,
    from_hub_headers,
    parse_retry_after,
)


def test_hub_headers() -> None:
    parsed = from_hub_headers(
        {"ratelimit": '"api";r=12;t=55', "ratelimit-policy": '"fixed window";"api";q=500;w=300'}
    )
    assert parsed == RateLimit(remaining=12, reset_after=55.0, limit=500, window=300.0)
    assert from_hub_headers({}) is None
    assert from_hub_headers({"ratelimit": "garbage"}) is None


def test_github_headers() -> None:
    headers = {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "1000",
        "x-ratelimit-used": "5000",
    }
    assert from_github_headers(headers, now=940.0) == RateLimit(0, 60.0, 5000, 3600.0)
    assert from_github_headers({"x-ratelimit-remaining": "x"}, now=0) is None


@pytest.mark.parametrize(
    ("value", "expected"), [("7", 7.0), ("-3", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", None)]
)
def test_retry_after(value: str, expected: float | None) -> None:
    assert parse_retry_after({"retry-after": value}) == expected


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_budget_spreads_requests_at_the_share() -> None:
    t = FakeTime()
    budget = RequestBudget(
        "hub", limit=500, window=300, share=0.8, burst=5, clock=t.clock, sleep=t.sleep
    )
    for _ in range(105):
        await budget.acquire(urgent=True)
    # 5 from the burst, then 100 at (400 - 5)/300 s: the burst counts against the share.
    assert t.now == pytest.approx(100 / ((500 * 0.8 - 5) / 300), rel=0.01)
    assert max(t.slept) < 1.0  # spread out, not bursts and long stalls


async def test_budget_waits_out_the_window_when_little_remains() -> None:
    t = FakeTime()
    budget = RequestBudget("hub", limit=500, window=300, share=0.8, clock=t.clock, sleep=t.sleep)
    budget.observe(RateLimit(remaining=90, reset_after=42.0, limit=500, window=300.0))
    await budget.acquire()
    assert t.now == pytest.approx(42.0)


async def test_budget_adopts_the_servers_limit_and_refunds_304s() -> None:
    t = FakeTime()
    budget = RequestBudget("github", limit=60, window=3600, clock=t.clock, sleep=t.sleep)
    budget.observe(RateLimit(remaining=4999, reset_after=3000.0, limit=5000, window=3600.0))
    assert budget.limit == 5000
    await budget.acquire()
    budget.refund()
    assert budget.requests == 0


async def test_background_callers_leave_a_token_for_urgent_ones() -> None:
    t = FakeTime()
    budget = RequestBudget("hub", limit=500, window=300, burst=3, clock=t.clock, sleep=t.sleep)
    for _ in range(2):
        await budget.acquire()  # background: takes 2 of 3, leaves one
    assert t.now == 0
    await budget.acquire(urgent=True)  # detection gets the reserved token at once
    assert t.now == 0
    await budget.acquire()  # background now waits for the bucket to refill to two
    assert t.now > 0
