"""Follow ``Link: <…>; rel="next"`` cursors (the Hub and GitHub use the same format)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from hubwatch.errors import SchemaError
from producers._http import origin, request
from producers._ratelimit import RequestBudget

__all__ = ["iter_pages", "next_link"]


def next_link(client: httpx.AsyncClient, response: httpx.Response) -> str | None:
    """The absolute URL of the ``rel="next"`` page, or None on the last page.

    A next link to another origin is refused (SchemaError ``cross_origin_link``): the
    client would carry its API token there, and a page from elsewhere is not the API's.
    """
    nxt = response.links.get("next")
    if not nxt or not nxt.get("url"):
        return None
    url = response.url.join(nxt["url"])  # relative links are relative to the page
    if origin(url) != origin(client.base_url):
        raise SchemaError(
            "cross_origin_link",
            f"next page {url.copy_with(query=None)} is not on {origin(client.base_url)}",
        )
    return str(url)


async def iter_pages(
    client: httpx.AsyncClient,
    url: str,
    params: list[tuple[str, str]],
    *,
    budget: RequestBudget | None = None,
    urgent: bool = False,
) -> AsyncIterator[list[Any]]:
    """Yield each page's list of items; the caller stops early by breaking out.

    A next link to another origin raises SchemaError ``cross_origin_link`` after the
    pages before it were yielded, so a caller that catches it keeps what it read.
    """
    page_url: str | None = url
    query: list[tuple[str, str]] | None = params
    while page_url is not None:
        body, response = await request(client, page_url, params=query, budget=budget, urgent=urgent)
        if not isinstance(body, list):
            raise SchemaError("bad_page", f"{page_url}: expected a JSON list")
        yield body
        query = None  # the next URL carries its own query
        page_url = next_link(client, response)
