"""The replay server: the Hub's and GitHub's HTTP APIs, as ``shared/reference/`` describes
them, over a :mod:`~hubwatch.replay.world`.

Hub: ``GET /api/models`` (``sort`` always descending, repeated ``expand=``, ``limit``,
``filter``/``author``/``search``, ``Link`` cursor pagination), ``/api/models/{id}``,
``/commits/{rev}`` (``Link`` pagination), ``/discussions`` (page numbers, no Link),
``/discussions/{num}`` (with its status-change ``events``), and the 5-minute fixed-window
``RateLimit`` / ``RateLimit-Policy`` headers with 429 past the quota.

GitHub: ``/repos/{o}/{r}``, ``/commits`` (``since``), ``/issues`` (``state``, ``sort``,
``direction``, ``since``), ``/releases``; ``page``/``per_page`` with ``Link``; ETags with
304 (free); hourly ``x-ratelimit-*`` with 403 once spent.

A model's own endpoints answer as the Hub does for a repo it does not show (deleted,
private, gated, never there): 401 to anonymous requests, 404 (403 gated) with a token.

Control, for tests and demos, under ``/_replay/``: ``status``, ``release``, ``restrict``, ``edit``,
``engage``, ``commit``, ``discussion``, ``github/{repo,commit,issue,release,star}`` and
``faults`` (scripted 429s, 5xx, slow and truncated answers, reset connections). With a
webhook URL and secret it POSTs Hub-style webhooks for content and discussion changes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import heapq
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from hubwatch._server import LocalServer
from hubwatch.replay.world import GithubWorld, HubWorld

__all__ = ["Fault", "ReplayServer"]

_HUB_WINDOW = 300
_MAX_LIMIT = 1000
_SORTABLE = ("createdAt", "lastModified", "downloads", "likes", "trendingScore")
_REPO = "{repo_id:[^/]+(?:/[^/]+)?}"


@dataclass
class Fault:
    """The next ``count`` requests whose path starts with ``path`` get ``kind``:
    ``429``, ``500``/``502``/``503``, ``slow`` (``seconds`` late), ``truncate`` (half the
    body) or ``reset`` (connection closed)."""

    kind: str
    count: int = 1
    path: str = "/"
    seconds: float = 1.0


def _sort_value(item: Any, sort: str) -> tuple[Any, str]:
    if not isinstance(item, dict):  # malformed items sort last
        return ("", "") if sort in ("createdAt", "lastModified") else (-1, "")
    value = item.get(sort)
    ident = item.get("id") if isinstance(item.get("id"), str) else ""
    if sort in ("createdAt", "lastModified"):
        return (value if isinstance(value, str) else "", ident)
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else -1
    return (number, ident)


def _matches(item: Any, query: Mapping[str, list[str]]) -> bool:
    if not isinstance(item, dict):
        return not (query.get("filter") or query.get("author") or query.get("search"))
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


def _endpoint(request: web.Request) -> str:
    path = request.path
    if path == "/api/models":
        return "list:" + request.query.get("sort", "createdAt")
    for tail in ("commits", "discussions"):
        if f"/{tail}" in path:
            return tail
    return "info"


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _uncursor(token: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(token))


def _link(request: web.Request, **changes: str) -> str:
    pairs = [(k, v) for k, v in request.query.items() if k not in changes]
    pairs += list(changes.items())
    return f'<{request.url.origin()}{request.path}?{urlencode(pairs)}>; rel="next"'


class ReplayServer(LocalServer):
    def __init__(
        self,
        hub: HubWorld,
        *,
        github: GithubWorld | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_quota: int = 1000,
        github_quota: int = 5000,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        self.hub = hub
        self.github = github or GithubWorld()
        self.api_quota = api_quota
        self.github_quota = github_quota
        self.faults: list[Fault] = []
        self.requests = 0
        self.throttled = 0
        self.authorized = 0
        "Requests that carried an Authorization header (tokens are used, never shown)."
        self.refused: Counter[str] = Counter()
        "Requests for a repo's own endpoints answered 401/403/404, by repo id."
        self.by_endpoint: Counter[str] = Counter()
        "Requests per endpoint (``list:createdAt``, ``info``, ``commits``, ``github``, …)."
        self._hub_window = (0, 0)
        self._github_window = (0, 0)
        self._webhook = (webhook_url, webhook_secret)
        self._webhook_tasks: set[asyncio.Task[None]] = set()
        if webhook_url:
            hub.on_change = self._send_webhook

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._fault_middleware])
        get, post = app.router.add_get, app.router.add_post
        get("/api/models", self._list_models)
        get(f"/api/models/{_REPO}/commits/{{rev}}", self._commits)
        get(f"/api/models/{_REPO}/discussions", self._discussions)
        get(f"/api/models/{_REPO}/discussions/{{num:\\d+}}", self._discussion)
        get(f"/api/models/{_REPO}", self._model_info)
        get("/repos/{owner}/{name}", self._gh_repo)
        get("/repos/{owner}/{name}/commits", self._gh_commits)
        get("/repos/{owner}/{name}/issues", self._gh_issues)
        get("/repos/{owner}/{name}/releases", self._gh_releases)
        get("/_replay/status", self._status)
        post("/_replay/release", self._release)
        post("/_replay/faults", self._set_faults)
        post("/_replay/restrict", self._restrict)
        return app

    # -- faults --

    @web.middleware
    async def _fault_middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        self.hub.tick()
        self.github.tick()
        if request.headers.get("Authorization", "").startswith("Bearer "):
            self.authorized += 1
        fault = next(
            (f for f in self.faults if f.count > 0 and request.path.startswith(f.path)), None
        )
        if fault is None or request.path.startswith("/_replay"):
            return await handler(request)
        fault.count -= 1
        if fault.kind == "slow":
            await asyncio.sleep(fault.seconds)
            return await handler(request)
        if fault.kind == "reset":
            if request.transport is not None:
                request.transport.close()
            raise ConnectionResetError("fault: reset")
        if fault.kind == "429":
            self.throttled += 1
            if request.path.startswith("/repos/"):
                return web.json_response(
                    {"message": "You have exceeded a secondary rate limit."},
                    status=429,
                    headers={"retry-after": str(int(fault.seconds))},
                )
            return web.json_response(
                {"error": "You have exceeded our rate limit for api requests."},
                status=429,
                headers={
                    "RateLimit": f'"api";r=0;t={int(fault.seconds)}',
                    "RateLimit-Policy": f'"fixed window";"api";q={self.api_quota};w={_HUB_WINDOW}',
                    "Retry-After": str(int(fault.seconds)),
                },
            )
        if fault.kind == "truncate":
            response = await handler(request)
            body = getattr(response, "body", b"") or b""
            return web.Response(
                body=bytes(body)[: max(1, len(body) // 2)],
                status=response.status,
                content_type="application/json",
            )
        return web.json_response({"error": "fault"}, status=int(fault.kind))

    # -- rate limits --

    def _hub_limit(self, request: web.Request) -> web.Response | dict[str, str]:
        self.requests += 1
        self.by_endpoint[_endpoint(request)] += 1
        now = time.time()
        index = int(now // _HUB_WINDOW)
        window, used = self._hub_window
        used = used + 1 if window == index else 1
        self._hub_window = (index, used)
        reset = int((index + 1) * _HUB_WINDOW - now) + 1
        headers = {
            "RateLimit": f'"api";r={max(0, self.api_quota - used)};t={reset}',
            "RateLimit-Policy": f'"fixed window";"api";q={self.api_quota};w={_HUB_WINDOW}',
        }
        if used > self.api_quota:
            self.throttled += 1
            return web.json_response(
                {"error": "You have exceeded our rate limit for api requests."},
                status=429,
                headers={**headers, "Retry-After": str(reset)},
            )
        return headers

    def _github_answer(
        self, request: web.Request, body: Any, headers: dict[str, str] | None = None
    ) -> web.Response:
        """ETag and 304 (which costs nothing), else count against the hourly limit."""
        payload = json.dumps(body).encode()
        etag = f'W/"{hashlib.sha1(payload).hexdigest()}"'
        now = time.time()
        index = int(now // 3600)
        window, used = self._github_window
        used = used if window == index else 0
        reset = str((index + 1) * 3600)

        def limits(count: int) -> dict[str, str]:
            return {
                "x-ratelimit-limit": str(self.github_quota),
                "x-ratelimit-remaining": str(max(0, self.github_quota - count)),
                "x-ratelimit-used": str(count),
                "x-ratelimit-reset": reset,
                "x-ratelimit-resource": "core",
            }

        self.requests += 1
        self.by_endpoint["github"] += 1
        if request.headers.get("If-None-Match") == etag:
            self._github_window = (index, used)
            return web.Response(status=304, headers={"ETag": etag, **limits(used)})
        if used >= self.github_quota:
            self.throttled += 1
            return web.json_response(
                {"message": "API rate limit exceeded"}, status=403, headers=limits(used)
            )
        used += 1
        self._github_window = (index, used)
        return web.Response(
            body=payload,
            content_type="application/json",
            headers={"ETag": etag, **limits(used), **(headers or {})},
        )

    # -- Hub --

    async def _list_models(self, request: web.Request) -> web.Response:
        headers = self._hub_limit(request)
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
            token = query.get("cursor", [None])[-1]
            after = _uncursor(token) if token else None
        except ValueError:
            return web.json_response({"error": "Invalid limit or cursor"}, status=400)
        expand = query.get("expand", []) + query.get("expand[]", [])
        page, next_cursor = self._page(sort, query, limit, after)
        if next_cursor is not None:
            headers["Link"] = _link(request, cursor=_cursor(next_cursor))
        return web.json_response([_project(i, expand) for i in page], headers=headers)

    def _page(
        self, sort: str, query: Mapping[str, list[str]], limit: int, after: Any
    ) -> tuple[list[Any], Any]:
        hub = self.hub
        if sort == "createdAt" and not isinstance(after, list):
            # Release order is createdAt order: walk down from the cursor's index.
            page: list[Any] = []
            last = None
            for index, item in hub.newest_first(after):
                if _matches(item, query):
                    if len(page) == limit:
                        return page, last
                    page.append(item)
                    last = index
            return page, None
        if sort == "lastModified" and getattr(hub.source, "modified_is_created", False):
            return self._lazy_page(self._modified_order(), sort, limit, after)
        if sort == "trendingScore" and hasattr(hub.source, "ranked"):
            return self._lazy_page(self._trending_order(), sort, limit, after)
        candidates = sorted(
            (v for v in hub.released_views() if _matches(v, query)),
            key=lambda i: _sort_value(i, sort),
            reverse=True,
        )
        if after is not None:
            bound = tuple(after)
            candidates = [i for i in candidates if _sort_value(i, sort) < bound]
        page = candidates[:limit]
        more = len(candidates) > limit
        return page, list(_sort_value(page[-1], sort)) if more else None

    @staticmethod
    def _lazy_page(
        ordered: Iterator[Any], sort: str, limit: int, after: Any
    ) -> tuple[list[Any], Any]:
        bound = tuple(after) if after is not None else None
        page: list[Any] = []
        for item in ordered:
            if bound is not None and _sort_value(item, sort) >= bound:
                continue
            if len(page) == limit:
                return page, list(_sort_value(page[-1], sort))
            page.append(item)
        return page, None

    def _merged(self, changed: set[str], rest: Iterator[Any], sort: str) -> Iterator[Any]:
        # The few models the replay changed, sorted, merged into the catalog's own order.
        top = [self.hub.view(i) for i in (self.hub.find(r) for r in changed) if i is not None]
        top.sort(key=lambda i: _sort_value(i, sort), reverse=True)
        others = (v for v in rest if not (isinstance(v, dict) and v.get("id") in changed))
        return heapq.merge(top, others, key=lambda i: _sort_value(i, sort), reverse=True)

    def _modified_order(self) -> Iterator[Any]:
        # A generated catalog's lastModified is its createdAt: no sort over millions.
        rest = (v for _, v in self.hub.newest_first())
        return self._merged(set(self.hub.edited()), rest, "lastModified")

    def _trending_order(self) -> Iterator[Any]:
        hub = self.hub
        ranked = hub.source.ranked()  # type: ignore[attr-defined]
        rest = (hub.view(i) for i in ranked if i < hub.released)
        return self._merged(hub.engaged(), rest, "trendingScore")

    async def _model_info(self, request: web.Request) -> web.Response:
        headers = self._hub_limit(request)
        if isinstance(headers, web.Response):
            return headers
        repo_id = request.match_info["repo_id"]
        refused = self._refuse(request, repo_id, headers)
        if refused is not None:
            return refused
        index = self.hub.find(repo_id)
        assert index is not None  # _refuse answered for every repo not shown
        expand = request.query.getall("expand", [])
        return web.json_response(_project(self.hub.view(index), expand), headers=headers)

    def _refuse(
        self, request: web.Request, repo_id: str, headers: dict[str, str]
    ) -> web.Response | None:
        """The Hub's answer for a repo it does not show, or None to serve it.

        Anonymous requests get 401 whether the repo was deleted, is private, gated or never
        existed: the Hub does not say which (huggingface_hub's ``hf_raise_for_status`` reads
        such a 401 as "repository not found"). With a token, a repo not there is a 404 and a
        gated one the token may not read a 403. (The real Hub shows a gated repo's metadata
        and refuses its files; the replay refuses both, the case a poller must survive.)
        """
        why = self.hub.restricted.get(repo_id)
        if why is None and self.hub.find(repo_id) is not None:
            return None
        self.refused[repo_id] += 1
        token = request.headers.get("Authorization", "").startswith("Bearer ")
        if why == "gated" and token:
            code, status = "GatedRepo", 403
            message = (
                f"Access to model {repo_id} is restricted and you are not in the authorized list."
            )
        elif why == "gated":
            code, status = "GatedRepo", 401
            message = (
                f"Access to model {repo_id} is restricted. You must have access to it and be"
                " authenticated to access it. Please log in."
            )
        else:
            code, message, status = "RepoNotFound", "Repository not found", 404 if token else 401
        return web.json_response(
            {"error": message},
            status=status,
            headers={**headers, "X-Error-Code": code, "X-Error-Message": message},
        )

    _PER_PAGE = 50

    def _repo_listing(
        self, request: web.Request, listing: Callable[[str], list[Any]]
    ) -> web.Response | tuple[dict[str, str], list[Any], int, int]:
        """Rate limit, 404, then one page (``p``) of a model repo's listing."""
        headers = self._hub_limit(request)
        if isinstance(headers, web.Response):
            return headers
        repo_id = request.match_info["repo_id"]
        refused = self._refuse(request, repo_id, headers)
        if refused is not None:
            return refused
        every = listing(repo_id)
        start = int(request.query.get("p", "0")) * self._PER_PAGE
        return headers, every[start : start + self._PER_PAGE], start, len(every)

    async def _commits(self, request: web.Request) -> web.Response:
        listed = self._repo_listing(request, self.hub.commits)
        if isinstance(listed, web.Response):
            return listed
        headers, chunk, start, total = listed
        if start + self._PER_PAGE < total:  # Link pagination, like the Hub's commits
            headers["Link"] = _link(request, p=str(start // self._PER_PAGE + 1))
        return web.json_response(chunk, headers=headers)

    async def _discussions(self, request: web.Request) -> web.Response:
        listed = self._repo_listing(request, self.hub.discussions)
        if isinstance(listed, web.Response):
            return listed
        headers, chunk, start, total = listed  # page numbers, no Link, like the Hub's
        return web.json_response(
            {"discussions": chunk, "count": total, "start": start}, headers=headers
        )

    async def _discussion(self, request: web.Request) -> web.Response:
        headers = self._hub_limit(request)
        if isinstance(headers, web.Response):
            return headers
        repo_id = request.match_info["repo_id"]
        refused = self._refuse(request, repo_id, headers)
        if refused is not None:
            return refused
        detail = self.hub.discussion_detail(repo_id, int(request.match_info["num"]))
        if detail is None:
            return web.json_response({"error": "Discussion not found"}, status=404)
        return web.json_response(detail, headers=headers)

    # -- GitHub --

    def _gh(self, request: web.Request) -> Any:
        name = f"{request.match_info['owner']}/{request.match_info['name']}"
        return name, self.github.repos.get(name)

    @staticmethod
    def _paged(request: web.Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        per_page = min(100, max(1, int(request.query.get("per_page", "30"))))
        page = max(1, int(request.query.get("page", "1")))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            headers["Link"] = _link(request, page=str(page + 1))
        return chunk, headers

    async def _gh_repo(self, request: web.Request) -> web.Response:
        _, repo = self._gh(request)
        if repo is None:
            return web.json_response({"message": "Not Found"}, status=404)
        return self._github_answer(request, repo.info)

    async def _gh_commits(self, request: web.Request) -> web.Response:
        _, repo = self._gh(request)
        if repo is None:
            return web.json_response({"message": "Not Found"}, status=404)
        since = request.query.get("since")
        items = [c for c in repo.commits if since is None or c["commit"]["author"]["date"] >= since]
        chunk, headers = self._paged(request, items)
        return self._github_answer(request, chunk, headers)

    async def _gh_issues(self, request: web.Request) -> web.Response:
        _, repo = self._gh(request)
        if repo is None:
            return web.json_response({"message": "Not Found"}, status=404)
        state = request.query.get("state", "open")
        since = request.query.get("since")
        key = {"created": "created_at", "updated": "updated_at"}.get(
            request.query.get("sort", "created"), "created_at"
        )
        items = [
            i
            for i in repo.issues.values()
            if (state == "all" or i["state"] == state)
            and (since is None or i["updated_at"] >= since)
        ]
        items.sort(
            key=lambda i: (i[key], i["number"]),
            reverse=request.query.get("direction", "desc") == "desc",
        )
        chunk, headers = self._paged(request, items)
        return self._github_answer(request, chunk, headers)

    async def _gh_releases(self, request: web.Request) -> web.Response:
        _, repo = self._gh(request)
        if repo is None:
            return web.json_response({"message": "Not Found"}, status=404)
        chunk, headers = self._paged(request, repo.releases)
        return self._github_answer(request, chunk, headers)

    # -- control --

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "released": self.hub.released,
                "total": len(self.hub),
                "requests": self.requests,
                "throttled": self.throttled,
                "faults_left": sum(f.count for f in self.faults),
            }
        )

    async def _release(self, request: web.Request) -> web.Response:
        if request.query.get("all"):
            self.hub.release(len(self.hub))
        else:
            try:
                self.hub.release(int(request.query.get("n", "1")))
            except ValueError:
                return web.json_response({"error": "n must be an integer"}, status=400)
        return await self._status(request)

    async def _restrict(self, request: web.Request) -> web.Response:
        """``?repo=org/name&why=gated`` (or ``private``, ``deleted``)."""
        try:
            self.hub.restrict(request.query["repo"], request.query.get("why", "gated"))
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": f"bad restriction: {exc}"}, status=400)
        return await self._status(request)

    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            self.faults = [Fault(**f) for f in await request.json()]
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": f"bad fault script: {exc}"}, status=400)
        return await self._status(request)

    # -- webhooks out --

    def _send_webhook(self, scope: str, change: dict[str, Any]) -> None:
        url, secret = self._webhook
        repo_id = change["repo"]
        payload: dict[str, Any] = {
            "event": {"action": "update" if scope == "repo.content" else "create", "scope": scope},
            "repo": {
                "type": "model",
                "name": repo_id,
                "id": "",
                "private": False,
                "headSha": change.get("headSha"),
            },
            "webhook": {"id": "replay", "version": 3},
        }
        if "discussion" in change:
            payload["discussion"] = change["discussion"]
        task = asyncio.get_running_loop().create_task(self._post(url, secret, payload))
        self._webhook_tasks.add(task)
        task.add_done_callback(self._webhook_tasks.discard)

    @staticmethod
    async def _post(url: str | None, secret: str | None, payload: dict[str, Any]) -> None:
        if url is None:
            return
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=payload, headers={"X-Webhook-Secret": secret or ""}) as response,
        ):
            await response.read()
