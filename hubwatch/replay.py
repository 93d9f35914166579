"""A local double of the Hub's HTTP API that replays a fixture as if uploads were happening.

It speaks ``GET /api/models`` as ``shared/reference/hub_api.md`` describes it: ``sort``
(always descending), repeated ``expand=`` (only those fields plus ``id``/``_id``),
``limit``, ``filter``/``author``/``search``, cursor pagination in the ``Link`` header,
and the 5-minute fixed-window ``RateLimit`` / ``RateLimit-Policy`` headers with 429 past the
quota. ``GET /api/models/{id}`` returns one model.

Models are released over time in createdAt order: ``rate`` per second after ``start``
initially released, or on demand with ``POST /_replay/release?n=K`` (``?all=1``).
``GET /_replay/status`` tells how many are out.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from aiohttp import web

__all__ = ["Catalog", "ReplayServer", "default_fixture", "load_fixture_csv"]

FIXTURE_NAME = "hf_model_tree_Mistral-Small-24B-Base-2501_2025-04-05.csv"
_WINDOW_SECONDS = 300
_MAX_LIMIT = 1000
_SORTABLE = ("createdAt", "lastModified", "downloads", "likes", "trendingScore")


def default_fixture() -> Path:
    """``shared/data``'s Mistral tree, found beside the checkout (or the working directory)."""
    candidates = [
        Path.cwd() / "../shared/data",
        Path(__file__).resolve().parents[2] / "shared/data",
    ]
    for folder in candidates:
        if (folder / FIXTURE_NAME).exists():
            return (folder / FIXTURE_NAME).resolve()
    raise FileNotFoundError(f"{FIXTURE_NAME} not found in ../shared/data; pass --fixture")


# --- the fixture: the Python client's snake_case ModelInfo to the HTTP API's camelCase ------

_SIBLING = re.compile(r"rfilename='([^']*)'")
_RELATION_TAG = re.compile(r"^base_model:(finetune|quantized|adapter|merge):(.+)$")
_SNAKE_TO_API = {
    "created_at": "createdAt",
    "last_modified": "lastModified",
    "downloads_all_time": "downloadsAllTime",
    "trending_score": "trendingScore",
    "transformers_info": "transformersInfo",
    "widget_data": "widgetData",
    "model_index": "model-index",
    "inference_provider_mapping": "inferenceProviderMapping",
    "used_storage": "usedStorage",
}
_API_FIELDS = (
    "author",
    "sha",
    "createdAt",
    "lastModified",
    "private",
    "gated",
    "disabled",
    "downloads",
    "downloadsAllTime",
    "likes",
    "library_name",
    "gguf",
    "inference",
    "tags",
    "pipeline_tag",
    "mask_token",
    "trendingScore",
    "cardData",
    "widgetData",
    "model-index",
    "config",
    "transformersInfo",
    "siblings",
    "spaces",
    "safetensors",
    "usedStorage",
    "baseModels",
)


def _api_time(value: object) -> object:
    """``2025-01-23 14:13:54+00:00`` (the client's repr) to the API's ``…T14:13:54.000Z``."""
    if not isinstance(value, str) or not value:
        return value
    text = value.replace(" ", "T").replace("+00:00", "")
    if "." not in text:
        text += ".000"
    return text if text.endswith("Z") else text + "Z"


def api_item_from_client_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild what the Hub's HTTP API returns from a ModelInfo dumped by the Python client."""
    item: dict[str, Any] = {"_id": meta.get("_id") or "", "id": meta["id"]}
    for key, value in meta.items():
        item.setdefault(_SNAKE_TO_API.get(key, key), value)
    for key in ("createdAt", "lastModified"):
        item[key] = _api_time(item.get(key))
    card = meta.get("card_data", item.get("cardData"))
    item["cardData"] = yaml.safe_load(card) if isinstance(card, str) else card
    item["siblings"] = [
        {"rfilename": m[1]} if isinstance(s, str) and (m := _SIBLING.search(s)) else s
        for s in meta.get("siblings") or []
    ]
    # The Hub derives baseModels from the same relation it puts in the tags.
    relations = [m.groups() for t in item.get("tags") or [] if (m := _RELATION_TAG.match(t))]
    if relations:
        item["baseModels"] = {
            "relation": relations[0][0],
            "models": [{"id": base, "_id": ""} for _, base in relations],
        }
    return {k: item[k] for k in ("_id", "id", *_API_FIELDS) if k in item}


def load_fixture_csv(path: Path) -> list[dict[str, Any]]:
    csv.field_size_limit(1 << 30)
    with path.open(newline="") as handle:
        return [
            api_item_from_client_metadata(json.loads(row["metadata"]))
            for row in csv.DictReader(handle)
        ]


def load_jsonl(path: Path) -> list[Any]:
    """Extra items, kept verbatim (malformed ones included: the replay serves what it gets)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- the catalog and its release clock ---------------------------------------------------


@dataclass
class Catalog:
    """Items in release order; ``released`` of them are visible."""

    items: list[Any]
    released: int = 0
    rate: float = 0.0
    "Further releases per second, counted from ``clock_start``."
    clock_start: float = field(default_factory=time.monotonic)

    @classmethod
    def of(cls, items: Iterable[Any], *, start: int = 0, rate: float = 0.0) -> Catalog:
        ordered = sorted(items, key=_release_key)
        return cls(ordered, released=min(start, len(ordered)), rate=rate)

    def tick(self) -> None:
        if self.rate > 0:
            due = math.floor((time.monotonic() - self.clock_start) * self.rate)
            if due > 0:
                self.released = min(len(self.items), self.released + due)
                self.clock_start += due / self.rate

    def release(self, count: int) -> None:
        self.released = min(len(self.items), self.released + max(0, count))

    def visible(self) -> list[Any]:
        self.tick()
        return self.items[: self.released]


def _release_key(item: Any) -> str:
    created = item.get("createdAt") if isinstance(item, dict) else None
    return created if isinstance(created, str) else ""


def _sort_value(item: Any, sort: str) -> tuple[Any, str]:
    if not isinstance(item, dict):
        return ("", "")
    value = item.get(sort)
    ident = item.get("id") if isinstance(item.get("id"), str) else ""
    if sort in ("createdAt", "lastModified"):
        return (value if isinstance(value, str) else "", ident)
    return (value if isinstance(value, (int, float)) and not isinstance(value, bool) else -1, ident)


def _matches(item: Any, query: Mapping[str, list[str]]) -> bool:
    if not isinstance(item, dict):
        return True
    tags = item.get("tags") if isinstance(item.get("tags"), list) else []
    ident = item.get("id") if isinstance(item.get("id"), str) else ""
    if any(tag not in tags for tag in query.get("filter", [])):
        return False
    if any(item.get("author") != author for author in query.get("author", [])):
        return False
    return all(term.lower() in ident.lower() for term in query.get("search", []))


def _project(item: Any, expand: list[str]) -> Any:
    if not expand or not isinstance(item, dict):
        return item
    return {k: v for k, v in item.items() if k in ("_id", "id") or k in expand}


class ReplayServer:
    """The replay as an aiohttp app with an explicit start and stop, on 127.0.0.1."""

    def __init__(
        self, catalog: Catalog, *, host: str = "127.0.0.1", port: int = 0, api_quota: int = 1000
    ) -> None:
        self.catalog = catalog
        self.host = host
        self.port = port
        self.api_quota = api_quota
        self._window: tuple[int, int] = (0, 0)  # (window index, requests in it)
        self._runner: web.AppRunner | None = None
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/models", self._list_models)
        app.router.add_get("/api/models/{repo_id:.+}", self._model_info)
        app.router.add_get("/_replay/status", self._status)
        app.router.add_post("/_replay/release", self._release)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> ReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- rate limit: the Hub's 5-minute fixed window, "api" bucket --

    def _rate_headers(self) -> tuple[dict[str, str], bool]:
        now = time.time()
        index = int(now // _WINDOW_SECONDS)
        window, used = self._window
        used = used + 1 if window == index else 1
        self._window = (index, used)
        reset = int((index + 1) * _WINDOW_SECONDS - now) + 1
        remaining = max(0, self.api_quota - used)
        headers = {
            "RateLimit": f'"api";r={remaining};t={reset}',
            "RateLimit-Policy": f'"fixed window";"api";q={self.api_quota};w={_WINDOW_SECONDS}',
        }
        if used > self.api_quota:
            headers["Retry-After"] = str(reset)
            return headers, False
        return headers, True

    def _limited(self) -> web.Response | dict[str, str]:
        self.requests += 1
        headers, allowed = self._rate_headers()
        if not allowed:
            return web.json_response(
                {"error": "You have exceeded our rate limit for api requests."},
                status=429,
                headers=headers,
            )
        return headers

    async def _list_models(self, request: web.Request) -> web.Response:
        headers = self._limited()
        if isinstance(headers, web.Response):
            return headers
        query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query.setdefault(key, []).append(value)
        sort = query.get("sort", ["createdAt"])[-1]
        if sort not in _SORTABLE:
            return web.json_response({"error": f"Invalid sort: {sort}"}, status=400)
        try:
            limit = min(_MAX_LIMIT, max(1, int(query.get("limit", ["1000"])[-1])))
        except ValueError:
            return web.json_response({"error": "limit must be an integer"}, status=400)
        expand = query.get("expand", []) + query.get("expand[]", [])

        items = [i for i in self.catalog.visible() if _matches(i, query)]
        items.sort(key=lambda i: _sort_value(i, sort), reverse=True)  # always descending
        cursor = query.get("cursor", [None])[-1]
        if cursor:
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(cursor)))
            except ValueError:
                return web.json_response({"error": "Invalid cursor"}, status=400)
            items = [i for i in items if _sort_value(i, sort) < after]
        page = items[:limit]
        if len(items) > limit:
            last = _sort_value(page[-1], sort)
            token = base64.urlsafe_b64encode(json.dumps(list(last)).encode()).decode()
            pairs = [(k, v) for k, vs in query.items() if k != "cursor" for v in vs]
            pairs.append(("cursor", token))
            next_url = f"{request.url.origin()}/api/models?{urlencode(pairs)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return web.json_response([_project(i, expand) for i in page], headers=headers)

    async def _model_info(self, request: web.Request) -> web.Response:
        headers = self._limited()
        if isinstance(headers, web.Response):
            return headers
        repo_id = request.match_info["repo_id"]
        for item in self.catalog.visible():
            if isinstance(item, dict) and item.get("id") == repo_id:
                expand = request.query.getall("expand", [])
                return web.json_response(_project(item, expand), headers=headers)
        return web.json_response(
            {"error": "Repository not found"},
            status=404,
            headers={"X-Error-Code": "RepoNotFound", **headers},
        )

    async def _status(self, request: web.Request) -> web.Response:
        self.catalog.tick()
        return web.json_response(
            {
                "released": self.catalog.released,
                "total": len(self.catalog.items),
                "requests": self.requests,
            }
        )

    async def _release(self, request: web.Request) -> web.Response:
        if request.query.get("all"):
            self.catalog.release(len(self.catalog.items))
        else:
            try:
                self.catalog.release(int(request.query.get("n", "1")))
            except ValueError:
                return web.json_response({"error": "n must be an integer"}, status=400)
        return await self._status(request)
