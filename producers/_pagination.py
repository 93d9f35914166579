"""Follow ``Link: <…>; rel="next"`` cursors (the Hub and GitHub use the same format)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from hubwatch.errors import SchemaError
from producers._http import request
from producers._ratelimit import RequestBudget

__all__ = ["iter_pages"]


async def iter_pages(
    client: httpx.AsyncClient,
    url: str,
    params: list[tuple[str, str]],
    *,
    budget: RequestBudget | None = None,
    urgent: bool = False,
) -> AsyncIterator[list[Any]]:
    """Yield each page's list of items; the caller stops early by breaking out."""
    page_url: str | None = url
    query: list[tuple[str, str]] | None = params
    while page_url is not None:
        body, response = await request(client, page_url, params=query, budget=budget, urgent=urgent)
        if not isinstance(body, list):
            raise SchemaError("bad_page", f"{page_url}: expected a JSON list")
        yield body
        query = None  # the next URL carries its own query
        nxt = response.links.get("next")
        page_url = nxt.get("url") if nxt else None
