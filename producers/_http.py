"""The one HTTP client factory and the one retry loop every producer goes through."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import httpx

from hubwatch import __version__, metrics
from hubwatch.errors import (
    NotFound,
    RateLimited,
    SchemaError,
    SourceStatusError,
    SourceUnavailable,
)
from producers._ratelimit import parse_retry_after

__all__ = ["Response", "get_json", "make_client"]

Sleep = Callable[[float], Awaitable[None]]
Response = httpx.Response

_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def make_client(
    *,
    base_url: str,
    token: str | None = None,
    timeout: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    headers = {"User-Agent": f"hubwatch/{__version__}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=timeout,
        transport=transport,
        follow_redirects=True,
    )


@contextlib.contextmanager
def _map_transport_errors(url: str) -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as exc:
        # The message names the URL and the failure class, never request headers (tokens).
        raise SourceUnavailable(f"{type(exc).__name__} talking to {url}", url=url) from exc


def _raise_for_status(response: httpx.Response) -> None:
    status, url = response.status_code, str(response.url.copy_with(query=None))
    if status < 400:
        return
    if status == 429:
        raise RateLimited(
            f"rate limited by {url}",
            status=status,
            url=url,
            retry_after=parse_retry_after(response.headers),
        )
    if status == 404:
        raise NotFound(f"not found: {url}", status=status, url=url)
    error = SourceStatusError(f"HTTP {status} from {url}", status=status, url=url)
    error.retriable = status in _RETRY_STATUSES  # type: ignore[misc]
    raise error


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Capped exponential backoff with full jitter (attempt counts from 1)."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


async def get_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: Mapping[str, Any] | list[tuple[str, str]] | None = None,
    max_attempts: int = 6,
    sleep: Sleep = asyncio.sleep,
) -> tuple[Any, httpx.Response]:
    """GET and parse JSON, retrying what is worth retrying; returns (body, response).

    Transport failures, 408/429/5xx and truncated or non-JSON bodies are retried with capped
    exponential backoff (or the server's Retry-After); anything else raises at once.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            try:
                with _map_transport_errors(url):
                    response = await client.get(url, params=params)
            except SourceUnavailable:
                metrics.HTTP_REQUESTS.labels(client.base_url.host, "unavailable").inc()
                raise
            metrics.HTTP_REQUESTS.labels(client.base_url.host, str(response.status_code)).inc()
            _raise_for_status(response)
            try:
                return json.loads(response.content), response
            except ValueError as exc:
                raise SchemaError("bad_json", f"{url}: {exc}") from exc
        except (SourceUnavailable, SourceStatusError, SchemaError) as exc:
            retriable = exc.retriable or isinstance(exc, SchemaError)
            if not retriable or attempt >= max_attempts:
                raise
            retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
            await sleep(retry_after + 1.0 if retry_after is not None else backoff_delay(attempt))
