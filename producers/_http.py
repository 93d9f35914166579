"""The one HTTP client factory and the one retry loop every producer goes through."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import httpx

from hubwatch import __version__, metrics
from hubwatch._json import loads
from hubwatch.errors import (
    NotFound,
    RateLimited,
    SchemaError,
    SourceStatusError,
    SourceUnavailable,
)
from producers._ratelimit import RequestBudget, parse_retry_after

__all__ = ["Params", "Response", "backoff_delay", "make_client", "origin", "request"]

Sleep = Callable[[float], Awaitable[None]]
Response = httpx.Response
Params = Mapping[str, Any] | list[tuple[str, str]] | None

_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: httpx.URL | str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    url = httpx.URL(url)
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def _token_for(
    api: tuple[str, str, int | None], token: str
) -> Callable[[httpx.Request], Awaitable[None]]:
    """A request hook: the bearer token on requests to ``api``'s origin, and on no other.

    httpx runs request hooks on every request it sends, redirects included, so a
    redirect or a link elsewhere never carries the token (httpx alone would keep it
    on an http->https redirect to the same host, another origin).
    """
    bearer = f"Bearer {token}"

    async def hook(request: httpx.Request) -> None:
        if origin(request.url) == api:
            request.headers["Authorization"] = bearer
        else:
            request.headers.pop("Authorization", None)

    return hook


def make_client(
    *,
    base_url: str,
    token: str | None = None,
    timeout: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    all_headers = {"User-Agent": f"hubwatch/{__version__}", **(headers or {})}
    all_headers.pop("Authorization", None)  # only the hook below sends a token
    hooks = [_token_for(origin(base_url), token)] if token else []
    return httpx.AsyncClient(
        base_url=base_url,
        headers=all_headers,
        timeout=timeout,
        transport=transport,
        follow_redirects=True,
        event_hooks={"request": hooks},
    )


@contextlib.contextmanager
def _map_transport_errors(url: str) -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as exc:
        # The message names the URL and the failure class, never request headers (tokens).
        raise SourceUnavailable(f"{type(exc).__name__} talking to {url}", url=url) from exc


def _raise_for_status(response: httpx.Response, budget: RequestBudget | None) -> None:
    status, url = response.status_code, str(response.url.copy_with(query=None))
    if status < 400:
        return
    retry_after = parse_retry_after(response.headers)
    limit = budget.parse(response.headers) if budget is not None else None
    # GitHub says "limited" with 403 too, recognisable by its headers.
    github_limited = status == 403 and (
        retry_after is not None or (limit is not None and limit.remaining == 0)
    )
    if status in (403, 429) and retry_after is None and _secondary_limit(response):
        # GitHub: "wait at least one minute", longer while it repeats.
        wait = budget.secondary_wait() if budget is not None else _SECONDARY_WAIT
        raise RateLimited(
            f"secondary rate limit from {url}", status=status, url=url, retry_after=wait
        )
    if status == 429 or github_limited:
        wait = retry_after if retry_after is not None else (limit.reset_after if limit else None)
        raise RateLimited(f"rate limited by {url}", status=status, url=url, retry_after=wait)
    if status == 404 or _gone_401(response):
        raise NotFound(f"not found: {url}", status=status, url=url)
    error = SourceStatusError(f"HTTP {status} from {url}", status=status, url=url)
    error.retriable = status in _RETRY_STATUSES  # type: ignore[misc]
    raise error


_SECONDARY_WAIT = 60.0


def _secondary_limit(response: httpx.Response) -> bool:
    """GitHub's secondary rate limit, often sent with primary quota left and no
    ``retry-after``: known by its message."""
    try:
        message = loads(response.content).get("message")
    except (ValueError, AttributeError):
        return False
    return isinstance(message, str) and "secondary rate limit" in message.lower()


_REPO_API = re.compile(r"/api/(?:models|datasets|spaces)/[^/]+(?:/[^/]+)?(?:/|$)")
_BAD_TOKEN = "Invalid credentials in Authorization header"


def _gone_401(response: httpx.Response) -> bool:
    """The Hub answers an anonymous request for a deleted, private or gated repo (and for
    one that never existed) with 401, not 404: a repo gone from where hubwatch can see it.
    A 401 for a bad token is not that; it is reported as what it is."""
    if response.status_code == 401 and response.headers.get("X-Error-Message") != _BAD_TOKEN:
        return _REPO_API.search(response.url.path) is not None
    # With a token but no access to a gated repo, the Hub says 403 GatedRepo.
    return response.status_code == 403 and response.headers.get("X-Error-Code") == "GatedRepo"


def _authorized(response: httpx.Response) -> bool:
    """Did the request that got ``response`` carry a token (the hook adds it per origin)?"""
    return "Authorization" in response.request.headers


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Capped exponential backoff with full jitter (attempt counts from 1)."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


async def request(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: Params = None,
    headers: Mapping[str, str] | None = None,
    budget: RequestBudget | None = None,
    max_attempts: int = 6,
    sleep: Sleep = asyncio.sleep,
    parse_json: bool = True,
    urgent: bool = False,
) -> tuple[Any, httpx.Response]:
    """GET with retries; returns (parsed JSON or None for a 304, response).

    ``urgent`` requests (new-upload detection) may spend the token background streams
    leave in reserve.

    Transport failures, 408/429/5xx (and GitHub's limit-403) and truncated or non-JSON
    bodies are retried with capped exponential backoff, or after the server's Retry-After;
    a rate limit also pauses the whole ``budget``. Anything else raises at once.
    """
    api = budget.api if budget is not None else client.base_url.host
    attempt = 0
    while True:
        attempt += 1
        if budget is not None:
            await budget.acquire(urgent=urgent)
        try:
            try:
                with _map_transport_errors(url):
                    response = await client.get(url, params=params, headers=headers)
            except SourceUnavailable:
                metrics.HTTP_REQUESTS.labels(api, "unavailable").inc()
                raise
            metrics.HTTP_REQUESTS.labels(api, str(response.status_code)).inc()
            if budget is not None:
                budget.observe(budget.parse(response.headers))
            if response.status_code == 304:
                if budget is not None and budget.api == "github" and _authorized(response):
                    # Free only when authorized: anonymous, GitHub counts a 304 like any
                    # other answer against the 60 an hour.
                    budget.refund()
                return None, response
            _raise_for_status(response, budget)
            if not parse_json:
                return None, response
            try:
                return loads(response.content), response
            except ValueError as exc:
                raise SchemaError("bad_json", f"{url}: {exc}") from exc
        except RateLimited as exc:
            wait = exc.retry_after if exc.retry_after is not None else 60.0
            if budget is not None:
                budget.throttled_for(wait + 1.0)
            if attempt >= max_attempts:
                raise
            if budget is None:
                await sleep(wait + 1.0)
        except (SourceUnavailable, SourceStatusError, SchemaError) as exc:
            retriable = exc.retriable or isinstance(exc, SchemaError)
            if not retriable or attempt >= max_attempts:
                raise
            await sleep(backoff_delay(attempt))
