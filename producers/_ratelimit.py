"""Rate limits: header parsing (pure) and a per-API request budget that paces requests.

The Hub sends IETF-draft headers for 5-minute fixed windows::

    RateLimit: "api";r=0;t=55
    RateLimit-Policy: "fixed window";"api";q=500;w=300

GitHub sends ``x-ratelimit-{limit,remaining,used,reset}`` for an hourly window, ``reset``
in UTC epoch seconds, and signals a limit with 403 or 429 (``retry-after`` on secondary
limits).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from hubwatch import metrics

__all__ = [
    "RateLimit",
    "RequestBudget",
    "StreamBudget",
    "from_github_headers",
    "from_hub_headers",
    "parse_retry_after",
]


@dataclass(frozen=True, slots=True)
class RateLimit:
    remaining: int
    reset_after: float
    "Seconds until the window resets."
    limit: int | None = None
    window: float | None = None


_PARAM = re.compile(r"\b([a-z])=(\d+)")


def _params(value: str) -> dict[str, int]:
    return {k: int(v) for k, v in _PARAM.findall(value)}


def from_hub_headers(headers: Mapping[str, str]) -> RateLimit | None:
    current = headers.get("ratelimit")
    if not current:
        return None
    values = _params(current)
    if "r" not in values or "t" not in values:
        return None
    policy = _params(headers.get("ratelimit-policy", ""))
    return RateLimit(
        remaining=values["r"],
        reset_after=float(values["t"]),
        limit=policy.get("q"),
        window=float(policy["w"]) if "w" in policy else None,
    )


def from_github_headers(headers: Mapping[str, str], now: float | None = None) -> RateLimit | None:
    try:
        remaining = int(headers["x-ratelimit-remaining"])
        reset_at = float(headers["x-ratelimit-reset"])
    except (KeyError, ValueError):
        return None
    now = time.time() if now is None else now
    limit = headers.get("x-ratelimit-limit")
    return RateLimit(
        remaining=remaining,
        reset_after=max(0.0, reset_at - now),
        limit=int(limit) if limit and limit.isdigit() else None,
        window=3600.0,
    )


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in delay-seconds; HTTP dates are not used by the Hub or GitHub."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class RequestBudget:
    """Spreads one API's requests evenly so they use at most ``share`` of its limit.

    Requests are paced at ``limit * share / window`` per second (a token bucket with a
    small burst), the server's own figures replace the configured ones as soon as a
    response carries them, and when the server says fewer than ``(1 - share) * limit``
    remain, or answers 429, every caller waits for the window to reset.
    """

    def __init__(
        self,
        api: str,
        *,
        limit: int,
        window: float,
        share: float = 0.8,
        burst: int = 5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.api = api
        self.limit = limit
        self.window = window
        self.share = share
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._last = clock()
        self._paused_until = 0.0
        self.requests = 0
        "Requests that cost budget (an authorized 304 to GitHub refunds its token)."
        self.throttled = 0
        "429s and limit-403s received."
        self.last_seen: RateLimit | None = None
        self._secondary = (0.0, 0.0)
        "(when the last secondary limit ends, how long it was)."
        self.reserved: dict[str, float] = {}
        "Requests per window reserved for each stream (:meth:`reserve`)."
        metrics.RATE_LIMIT_LIMIT.labels(api).set(limit)
        self.configured_limit = limit
        "The limit the shares were reserved against; the server's own scales them."

    @property
    def rate(self) -> float:
        # The burst is part of the share too: burst + rate * window <= share * limit.
        allowed = self.limit * self.share
        return max(allowed * 0.1, allowed - self.burst) / self.window

    def parse(self, headers: Mapping[str, str]) -> RateLimit | None:
        return from_github_headers(headers) if self.api == "github" else from_hub_headers(headers)

    async def acquire(self, *, urgent: bool = False) -> None:
        """Wait for a token. Background callers leave one token for ``urgent`` ones (the
        new-uploads stream), so detection never queues behind a backlog of snapshots."""
        await self._take(0.0 if urgent else 1.0)

    def reserve(self, stream: str, per_window: float, *, burst: int = 5) -> StreamBudget:
        """A share of this budget that only ``stream`` spends: at most ``per_window``
        requests a window, so the shares together never exceed the whole and each stream
        can count on its own (the snapshot plan promises what its share buys)."""
        if per_window <= 0:
            raise ValueError(f"{stream}: a share must be positive")
        self.reserved[stream] = per_window
        return StreamBudget(self, stream, per_window, burst=burst)

    def scale(self) -> float:
        """Shares are reserved against the configured limit: the server's own limit (a
        lower one, or a larger account's) scales every share alike."""
        return self.limit / self.configured_limit if self.configured_limit else 1.0

    async def _take(self, reserve: float) -> None:
        while True:
            wait = self._try_take(reserve)
            if wait == 0.0:
                return
            await self._sleep(wait)

    def _try_take(self, reserve: float) -> float:
        """Take a token if more than ``reserve`` would be left: 0.0, else how long to
        wait before trying again. No await: asyncio makes the check and the take atomic."""
        now = self._clock()
        if now < self._paused_until:
            # Short steps: a limit learnt meanwhile (or a stop) takes effect soon.
            return min(1.0, self._paused_until - now)
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1 + reserve - 1e-9:
            self._tokens = max(0.0, self._tokens - 1)
            self.requests += 1
            return 0.0
        # At least 10 ms: a wait that shrinks towards zero would spin for ever.
        return max(0.01, min(1.0, (1 + reserve - self._tokens) / self.rate))

    def refund(self) -> None:
        """A request that did not count against the limit (GitHub's 304 with a token)."""
        self.requests -= 1
        self._tokens = min(self.burst, self._tokens + 1)

    def observe(self, limit: RateLimit | None) -> None:
        if limit is None:
            return
        self.last_seen = limit
        metrics.RATE_LIMIT_REMAINING.labels(self.api).set(limit.remaining)
        if limit.limit:
            self.limit = limit.limit
            metrics.RATE_LIMIT_LIMIT.labels(self.api).set(limit.limit)
        if limit.window:
            self.window = limit.window
        if limit.remaining <= self.limit * (1 - self.share):
            self.pause(limit.reset_after)

    def secondary_wait(self, first: float = 60.0, cap: float = 3600.0) -> float:
        """How long to wait on a secondary limit that names no time (GitHub: at least a
        minute, backing off exponentially): ``first``, doubled for each that follows
        within as long again after the last one ended."""
        now = self._clock()
        ends, last = self._secondary
        wait = min(cap, 2 * last) if last and now <= ends + last else first
        self._secondary = (now + wait, wait)
        return wait

    def pause(self, seconds: float) -> None:
        now = self._clock()
        until = max(self._paused_until, now + seconds)
        # Counted as the pause is set (the part not already paused): every waiting caller
        # shares one pause, so the counter is time, not caller-seconds.
        metrics.RATE_LIMIT_PAUSED.labels(self.api).inc(until - max(self._paused_until, now))
        self._paused_until = until

    def throttled_for(self, seconds: float) -> None:
        self.throttled += 1
        self.pause(seconds)


class StreamBudget(RequestBudget):
    """One stream's reserved share of an API's :class:`RequestBudget`: its own token bucket
    (``per_window`` requests a window, scaled with the API's limit), then a token of the
    whole. Beyond its share a stream may only borrow what lies idle (the whole's bucket
    nearly full: no one is drawing on it), so a busy stream never takes what another's
    share is owed, and an idle budget still serves a burst; limits the server announces
    pause the whole API."""

    def __init__(
        self, parent: RequestBudget, stream: str, per_window: float, *, burst: int
    ) -> None:
        super().__init__(
            parent.api,
            limit=parent.limit,
            window=parent.window,
            burst=max(1, min(burst, int(per_window))),
            clock=parent._clock,
            sleep=parent._sleep,
        )
        self.parent = parent
        self.stream = stream
        self.per_window = per_window
        self.borrowed = 0
        "Requests beyond the share, from capacity no one was using."

    @property
    def rate(self) -> float:
        return self.per_window * self.parent.scale() / self.parent.window

    @property
    def calls_per_day(self) -> float:
        """What this share buys in a day at the API's current limit."""
        return self.rate * 86_400

    async def acquire(self, *, urgent: bool = False) -> None:
        while True:
            wait = self._try_take(0.0)
            if wait == 0.0:
                await self.parent.acquire(urgent=urgent)
                return
            if self.parent._try_take(max(1.0, self.parent.burst - 2.0)) == 0.0:
                self.borrowed += 1
                return
            await self._sleep(min(wait, 0.25))

    def refund(self) -> None:
        super().refund()
        self.parent.refund()

    def observe(self, limit: RateLimit | None) -> None:
        self.parent.observe(limit)
        self.last_seen = self.parent.last_seen

    def secondary_wait(self, first: float = 60.0, cap: float = 3600.0) -> float:
        return self.parent.secondary_wait(first, cap)

    def pause(self, seconds: float) -> None:
        self.parent.pause(seconds)

    def throttled_for(self, seconds: float) -> None:
        self.throttled += 1
        self.parent.throttled_for(seconds)
