"""The replay server: the Hub's and GitHub's HTTP APIs, as ``shared/reference/`` describes
them, over a :mod:`~hubwatch.replay.world`.

Hub: ``GET /api/models`` (``sort`` always descending with ties in one fixed order, repeated
``expand=`` checked against what the listing accepts, the default field set without it,
``full``/``config``/``cardData``, the filters ``filter``/``author``/``search``/
``pipeline_tag``/``gated``/``num_parameters``, ``limit``, ``Link`` cursor pagination),
``/api/models/{id}`` and ``/revision/{rev}`` (``expand``; a renamed repo's old name answers
307 with a relative ``Location`` to its new one, an id in another case is the model),
``/commits/{rev}`` (``Link`` pagination, ``expand[]=formatted``), ``/discussions`` (page
numbers, no Link; ``type``, ``status``, ``author``), ``/discussions/{num}`` (with its
status-change ``events``), and the 5-minute fixed-window ``RateLimit`` /
``RateLimit-Policy`` headers with 429 past the quota.

GitHub: ``/repos/{o}/{r}``, ``/commits`` (``sha``, ``since``/``until`` as times, ``author``;
409 for a repo with no commits at all),
``/issues`` (``state``, ``labels``, ``creator``, ``sort``, ``direction``, ``since``),
``/releases``; ``page``/``per_page`` with ``Link``; timestamps in whole seconds; ETags with
304 (free only with a token); hourly ``x-ratelimit-*`` with 403 once spent.

What the real services refuse, the replay refuses too (:mod:`~hubwatch.replay.contract`): an
unknown ``expand`` or parameter is a 400 (422 on GitHub); one the real API accepts but the
replay cannot answer truthfully is a 501 Not Implemented saying so; never silently ignored.
``tests/test_contract.py`` holds it to that with ``huggingface_hub`` and PyGithub.

A model's own endpoints answer as the Hub does for a repo it does not show (deleted,
private, gated, never there): 401 to anonymous requests, 404 (403 gated) with a token.

Control, for tests and demos, under ``/_replay/``: ``status``, ``release``, ``list`` (a model
listed now whatever its createdAt: a late-listed repo), ``rename``, ``restrict``, ``edit``,
``engage``, ``commit``, ``discussion``, ``github/{repo,commit,issue,release,star}`` and
``faults`` (scripted 429s, GitHub secondary limits, 5xx, slow and truncated answers, reset
connections). With a
webhook URL and secret it POSTs Hub-style webhooks for content and discussion changes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import heapq
import html
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from hubwatch._server import LocalServer
from hubwatch.replay.contract import (
    LIST_DEFAULT_FIELDS,
    bad_parameters,
    github_time,
    info_expand,
    list_fields,
    not_emulated,
)
from hubwatch.replay.world import GithubWorld, HubWorld

__all__ = ["Fault", "ReplayServer"]

_HUB_WINDOW = 300
_MAX_LIMIT = 1000
_SORTABLE = ("createdAt", "lastModified", "downloads", "likes", "trendingScore")
_INFO_PARAMS = ("expand", "expand[]", "securityStatus", "blobs")
_STATUSES = ("all", "open", "closed")
_GH_DOCS = {"documentation_url": "https://docs.github.com/rest"}
_GH_NOT_FOUND = {"message": "Not Found", **_GH_DOCS}
_GH_COMMIT_PARAMS = ("sha", "since", "until", "author")
_GH_ISSUE_PARAMS = ("state", "labels", "creator", "sort", "direction", "since")
_GH_SORTS = {"created": "created_at", "updated": "updated_at", "comments": "comments"}
_REPO = "{repo_id:[^/]+(?:/[^/]+)?}"


@dataclass
class Fault:
    """The next ``count`` requests whose path starts with ``path`` get ``kind``:
    ``429``, ``500``/``502``/``503``, ``slow`` (``seconds`` late), ``truncate`` (half the
    body), ``reset`` (connection closed) or ``secondary`` (GitHub's secondary rate limit as
    it often comes: 403, primary quota left, no ``retry-after``)."""

    kind: str
    count: int = 1
    path: str = "/"
    seconds: float = 1.0


def _sort_value(item: Any, sort: str) -> tuple[Any, str, str]:
    """The listing's order, descending: the sort field, then ``_id`` and ``id`` so that ties
    (thousands of models share a trendingScore) fall in one fixed order and a cursor past
    one of them neither skips nor repeats the rest."""
    if not isinstance(item, dict):  # malformed items sort last
        return ("", "", "") if sort in ("createdAt", "lastModified") else (-1, "", "")
    value = item.get(sort)
    ident = item.get("id") if isinstance(item.get("id"), str) else ""
    oid = item.get("_id") if isinstance(item.get("_id"), str) else ""
    if sort in ("createdAt", "lastModified"):
        return (value if isinstance(value, str) else "", oid, ident)
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else -1
    return (number, oid, ident)


_SIZE = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def _parameters(text: str) -> int:
    """``6B``, ``500M``, ``7000000`` as a number of parameters."""
    text = text.strip().upper()
    scale = _SIZE.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def _num_parameters(spec: str) -> tuple[int, int]:
    """``min:6B,max:128B`` (either bound optional) as inclusive bounds; ValueError if not."""
    low, high = 0, 1 << 62
    for part in spec.split(","):
        key, _, value = part.partition(":")
        if key == "min":
            low = _parameters(value)
        elif key == "max":
            high = _parameters(value)
        else:
            raise ValueError(spec)
    return low, high


def _matches(item: Any, query: Mapping[str, list[str]]) -> bool:
    """The listing filters the Hub documents: ``filter`` (tags, all of them), ``author``,
    ``search`` (substring of the id), ``pipeline_tag``, ``gated`` and ``num_parameters``
    (safetensors total)."""
    if not isinstance(item, dict):
        return not any(query.get(name) for name in _LIST_FILTERS)
    tags = item.get("tags") if isinstance(item.get("tags"), list) else []
    ident = item.get("id") if isinstance(item.get("id"), str) else ""
    if any(tag not in tags for tag in query.get("filter", [])):
        return False
    if any(item.get("author") != author for author in query.get("author", [])):
        return False
    if any(item.get("pipeline_tag") != tag for tag in query.get("pipeline_tag", [])):
        return False
    for gated in query.get("gated", []):
        if (item.get("gated") not in (False, None)) != (gated.lower() in ("true", "1")):
            return False
    for spec in query.get("num_parameters", []):
        low, high = _num_parameters(spec)
        safetensors = item.get("safetensors")
        total = safetensors.get("total") if isinstance(safetensors, dict) else None
        if not isinstance(total, int) or not low <= total <= high:
            return False
    return all(term.lower() in ident.lower() for term in query.get("search", []))


_LIST_FILTERS = ("filter", "author", "search", "pipeline_tag", "gated", "num_parameters")
_LIST_PARAMS = (
    *_LIST_FILTERS,
    *("sort", "direction", "limit", "cursor", "expand", "expand[]", "full", "config", "cardData"),
)
_LIST_DOCUMENTED = ("inference", "inference_provider", "apps")
"Listing filters the Hub takes that the replay has no data for: 501, not ignored."


def _project(item: Any, fields: frozenset[str] | None, *, listing: bool = False) -> Any:
    """An item as the Hub shows it: only the ``fields`` asked for (with ``_id`` and ``id``);
    None means every field for a model's own endpoint and the default set in a listing."""
    if not isinstance(item, dict):
        return item
    if fields is None and not listing:
        return item
    keep = fields if fields is not None else LIST_DEFAULT_FIELDS
    shown = {k: v for k, v in item.items() if k in ("_id", "id") or k in keep}
    if listing and fields is None:
        shown["modelId"] = item.get("id")  # the default listing carries it, expand drops it
    return shown


def _hub_error(
    status: int, message: str, headers: Mapping[str, str], code: str = ""
) -> web.Response:
    extra = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {})}
    return web.json_response({"error": message}, status=status, headers={**headers, **extra})


def _multi(request: web.Request) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for key, value in request.query.items():
        query.setdefault(key, []).append(value)
    return query


def _formatted(commit: Mapping[str, Any]) -> dict[str, str]:
    title, message = html.escape(commit["title"]), html.escape(commit["message"])
    return {"title": f"<p>{title}</p>", "message": f"<p>{message}</p>" if message else ""}


def _gh_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _gh_links(name: str) -> dict[str, str]:
    return {"html_url": f"https://github.com/{name}"}


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
        self.info_by_id: Counter[str] = Counter()
        "``/api/models/{id}`` requests by the id asked for, as asked."
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
        get(f"/api/models/{_REPO}/revision/{{rev}}", self._model_info)
        get("/repos/{owner}/{name}", self._gh_repo)
        get("/repos/{owner}/{name}/commits", self._gh_commits)
        get("/repos/{owner}/{name}/issues", self._gh_issues)
        get("/repos/{owner}/{name}/releases", self._gh_releases)
        get("/_replay/status", self._status)
        post("/_replay/release", self._release)
        post("/_replay/faults", self._set_faults)
        post("/_replay/restrict", self._restrict)
        post("/_replay/list", self._list_late)
        post("/_replay/rename", self._rename)
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
        if fault.kind == "secondary":
            self.throttled += 1
            return self._github_answer(
                request,
                {
                    "message": "You have exceeded a secondary rate limit. Please wait a few"
                    " minutes before you try again.",
                    **_GH_DOCS,
                },
                status=403,
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
        self,
        request: web.Request,
        body: Any,
        headers: dict[str, str] | None = None,
        status: int = 200,
    ) -> web.Response:
        """Every request counts against the hourly limit, as on GitHub, except a 304 to an
        authenticated conditional request ("does not count ... when the request is
        authorized"); an anonymous 304 costs one like any other answer."""
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
                "x-ratelimit-resource": "core",
                "x-ratelimit-reset": reset,
            }

        self.requests += 1
        self.by_endpoint["github"] += 1
        authorized = request.headers.get("Authorization", "") != ""
        unchanged = status == 200 and request.headers.get("If-None-Match") == etag
        if unchanged and authorized:
            self._github_window = (index, used)
            return web.Response(status=304, headers={"ETag": etag, **limits(used)})
        if used >= self.github_quota:
            self._github_window = (index, used)
            self.throttled += 1
            return web.json_response(
                {"message": "API rate limit exceeded"}, status=403, headers=limits(used)
            )
        used += 1
        self._github_window = (index, used)
        if unchanged:
            return web.Response(status=304, headers={"ETag": etag, **limits(used)})
        if status != 200:
            return web.Response(
                body=payload, status=status, content_type="application/json", headers=limits(used)
            )
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
        query = _multi(request)
        refused = bad_parameters(query, _LIST_PARAMS, _LIST_DOCUMENTED)
        fields, bad_expand = list_fields(query)
        refused = refused or bad_expand
        sort = query.get("sort", ["createdAt"])[-1]
        if sort not in _SORTABLE:
            refused = refused or f"Invalid sort: {sort}"
        try:
            for spec in query.get("num_parameters", []):
                _num_parameters(spec)
            limit = min(_MAX_LIMIT, max(1, int(query.get("limit", ["1000"])[-1])))
            token = query.get("cursor", [None])[-1]
            after = _uncursor(token) if token else None
        except ValueError:
            refused = refused or "Invalid limit, cursor or num_parameters"
        if refused:
            return _hub_error(400, refused, headers)
        missing = not_emulated(query, _LIST_DOCUMENTED)
        if missing:
            return _hub_error(501, missing, headers)
        page, next_cursor = self._page(sort, query, limit, after)
        if next_cursor is not None:
            headers["Link"] = _link(request, cursor=_cursor(next_cursor))
        return web.json_response([_project(i, fields, listing=True) for i in page], headers=headers)

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
            return self._lazy_page(self._modified_order(), sort, query, limit, after)
        if sort == "trendingScore" and hasattr(hub.source, "ranked"):
            return self._lazy_page(self._trending_order(), sort, query, limit, after)
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
        ordered: Iterator[Any],
        sort: str,
        query: Mapping[str, list[str]],
        limit: int,
        after: Any,
    ) -> tuple[list[Any], Any]:
        bound = tuple(after) if after is not None else None
        page: list[Any] = []
        for item in ordered:
            if bound is not None and _sort_value(item, sort) >= bound:
                continue
            if not _matches(item, query):
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
        """``/api/models/{id}`` and ``/api/models/{id}/revision/{rev}``."""
        headers = self._hub_limit(request)
        if isinstance(headers, web.Response):
            return headers
        query = _multi(request)
        fields, refused = info_expand(query)
        refused = bad_parameters(query, _INFO_PARAMS) or refused
        if refused:
            return _hub_error(400, refused, headers)
        repo_id = request.match_info["repo_id"]
        self.info_by_id[repo_id] += 1
        repo_id = self._canonical(request, repo_id, headers)
        if isinstance(repo_id, web.Response):
            return repo_id
        denied = self._refuse(request, repo_id, headers)
        if denied is not None:
            return denied
        index = self.hub.find(repo_id)
        assert index is not None  # _refuse answered for every repo not shown
        view = self.hub.view(index)
        rev = request.match_info.get("rev")
        if rev is not None:
            history = self._history(repo_id, rev)
            if history is None:
                return self._no_revision(repo_id, rev, headers)
            if isinstance(view, dict) and history and history[0]["id"] != view.get("sha"):
                # An older commit: the repo as it was then, as far as the replay knows it.
                view = {**view, "sha": history[0]["id"], "lastModified": history[0]["date"]}
        return web.json_response(_project(view, fields), headers=headers)

    def _history(self, repo_id: str, rev: str) -> list[dict[str, Any]] | None:
        """A model's commits from ``rev`` (a branch, ``refs/heads/…``, or a commit id) down,
        newest first; None for a revision the repo does not have."""
        history = self.hub.commits(repo_id)
        if rev in ("main", "refs/heads/main"):
            return history
        start = next((n for n, c in enumerate(history) if c["id"] == rev), None)
        return None if start is None else history[start:]

    @staticmethod
    def _no_revision(repo_id: str, rev: str, headers: Mapping[str, str]) -> web.Response:
        # huggingface_hub reads X-Error-Code RevisionNotFound as RevisionNotFoundError.
        return _hub_error(404, f"Invalid rev id: {rev}", headers, "RevisionNotFound")

    def _canonical(
        self, request: web.Request, repo_id: str, headers: dict[str, str]
    ) -> str | web.Response:
        """The id to answer for: a renamed repo's old name gets the Hub's redirect to the
        new one (307, a relative ``Location`` keeping the rest of the path and the query,
        which huggingface_hub follows); an id that differs from a model's in case only is
        that model (the Hub resolves ids case-insensitively and answers with its own id)."""
        moved = self.hub.moved_to(repo_id) if self.hub.find(repo_id) is None else None
        if moved is not None:
            prefix = f"/api/models/{repo_id}"
            location = f"/api/models/{moved}{request.path[len(prefix) :]}"
            if request.query_string:
                location += f"?{request.query_string}"
            return web.Response(status=307, headers={**headers, "Location": location})
        return self.hub.canonical(repo_id) or repo_id

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
        self, request: web.Request, params: tuple[str, ...]
    ) -> web.Response | tuple[dict[str, str], dict[str, list[str]], str, int]:
        """Rate limit, parameters, 401/403/404, then (headers, query, repo id, page ``p``)."""
        headers = self._hub_limit(request)
        if isinstance(headers, web.Response):
            return headers
        query = _multi(request)
        refused = bad_parameters(query, params)
        try:
            page = int(query.get("p", ["0"])[-1])
        except ValueError:
            page = -1
        if refused or page < 0:
            return _hub_error(400, refused or "p must be a page index", headers)
        repo_id = self._canonical(request, request.match_info["repo_id"], headers)
        if isinstance(repo_id, web.Response):
            return repo_id
        denied = self._refuse(request, repo_id, headers)
        return denied or (headers, query, repo_id, page)

    async def _commits(self, request: web.Request) -> web.Response:
        """``/commits/{rev}``: newest first from ``rev``, ``Link`` pages, and with
        ``expand[]=formatted`` the title and message as HTML too."""
        listed = self._repo_listing(request, ("p", "expand", "expand[]"))
        if isinstance(listed, web.Response):
            return listed
        headers, query, repo_id, page = listed
        expand = set(query.get("expand", []) + query.get("expand[]", []))
        if expand - {"formatted"}:
            return _hub_error(400, f'"expand" must be one of [formatted]; got {expand}', headers)
        history = self._history(repo_id, request.match_info["rev"])
        if history is None:
            return self._no_revision(repo_id, request.match_info["rev"], headers)
        start = page * self._PER_PAGE
        chunk = history[start : start + self._PER_PAGE]
        if expand:
            chunk = [{**c, "formatted": _formatted(c)} for c in chunk]
        if start + self._PER_PAGE < len(history):  # Link pagination, like the Hub's commits
            headers["Link"] = _link(request, p=str(page + 1))
        return web.json_response(chunk, headers=headers)

    async def _discussions(self, request: web.Request) -> web.Response:
        """Page numbers (``p``), no Link, like the Hub's; ``type``, ``status``, ``author``."""
        listed = self._repo_listing(request, ("p", "type", "status", "author"))
        if isinstance(listed, web.Response):
            return listed
        headers, query, repo_id, page = listed
        kind = query.get("type", ["all"])[-1]
        status = query.get("status", ["all"])[-1]
        if kind not in ("all", "discussion", "pull_request") or status not in _STATUSES:
            return _hub_error(400, f"Invalid type or status: {kind}, {status}", headers)
        every = [
            d
            for d in self.hub.discussions(repo_id)
            if (kind == "all" or d["isPullRequest"] == (kind == "pull_request"))
            and (status == "all" or d["status"] == status)
            and all(d["author"].get("name") == a for a in query.get("author", []))
        ]
        start = page * self._PER_PAGE
        chunk = every[start : start + self._PER_PAGE]
        return web.json_response(
            {"discussions": chunk, "count": len(every), "start": start}, headers=headers
        )

    async def _discussion(self, request: web.Request) -> web.Response:
        """``/discussions/{num}``: one discussion with its status-change ``events``."""
        listed = self._repo_listing(request, ())
        if isinstance(listed, web.Response):
            return listed
        headers, _, repo_id, _ = listed
        detail = self.hub.discussion_detail(repo_id, int(request.match_info["num"]))
        if detail is None:
            return _hub_error(404, "Discussion not found", headers)
        return web.json_response(detail, headers=headers)

    # -- GitHub --

    def _gh(
        self, request: web.Request, emulated: tuple[str, ...], documented: tuple[str, ...] = ()
    ) -> tuple[str, Any, web.Response | None]:
        """The repo's name and record, or a 404 / 422 to answer instead."""
        name = f"{request.match_info['owner']}/{request.match_info['name']}"
        repo = self.github.repos.get(name)
        if repo is None:
            return name, None, self._github_answer(request, _GH_NOT_FOUND, status=404)
        problem = bad_parameters(request.query, (*emulated, "per_page", "page"), documented)
        for key in ("per_page", "page"):
            if key in request.query and not request.query[key].isdigit():
                problem = problem or f"{key} must be a positive integer"
        for key in ("since", "until"):
            if key in request.query and github_time(request.query[key]) is None:
                problem = problem or f"{key} is not an ISO 8601 timestamp"
        if problem:
            failed = {"message": f"Invalid request.\n\n{problem}", **_GH_DOCS}
            return name, repo, self._github_answer(request, failed, status=422)
        missing = not_emulated(request.query, documented)
        if missing:
            return name, repo, self._github_answer(request, {"message": missing}, status=501)
        return name, repo, None

    @staticmethod
    def _paged(request: web.Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        per_page = min(100, max(1, int(request.query.get("per_page", "30"))))
        page = max(1, int(request.query.get("page", "1")))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            headers["Link"] = _link(request, page=str(page + 1))
        return chunk, headers

    @staticmethod
    def _api(request: web.Request, name: str) -> str:
        return f"{request.url.origin()}/repos/{name}"

    async def _gh_repo(self, request: web.Request) -> web.Response:
        name, repo, refused = self._gh(request, ())
        if refused is not None:
            return refused
        api = self._api(request, name)
        return self._github_answer(request, {**repo.info, "url": api, **_gh_links(name)})

    async def _gh_commits(self, request: web.Request) -> web.Response:
        """``sha`` (a branch or a commit to start from), ``since``/``until`` compared as
        times on the committer date, ``author`` (login)."""
        name, repo, refused = self._gh(request, _GH_COMMIT_PARAMS, ("path", "committer"))
        if refused is not None:
            return refused
        if not repo.commits:
            empty = {"message": "Git Repository is empty.", **_GH_DOCS}
            return self._github_answer(request, empty, status=409)
        query = request.query
        commits = repo.commits
        start = query.get("sha", repo.info.get("default_branch", "main"))
        if start != repo.info.get("default_branch", "main"):
            first = next((n for n, c in enumerate(commits) if c["sha"].startswith(start)), None)
            if len(start) < 4 or first is None:
                return self._github_answer(request, _GH_NOT_FOUND, status=404)
            commits = commits[first:]
        since, until = (github_time(query[k]) if k in query else None for k in ("since", "until"))
        api = self._api(request, name)
        items = [
            {**c, "url": f"{api}/commits/{c['sha']}"}
            for c in commits
            if (since is None or since <= _gh_time(c["commit"]["committer"]["date"]))
            and (until is None or _gh_time(c["commit"]["committer"]["date"]) <= until)
            and all(c["author"]["login"] == a for a in query.getall("author", []))
        ]
        chunk, headers = self._paged(request, items)
        return self._github_answer(request, chunk, headers)

    async def _gh_issues(self, request: web.Request) -> web.Response:
        """``state``, ``labels`` (all of them), ``creator``, ``sort``, ``direction`` and
        ``since`` (updated at or after, as a time); pull requests are listed too."""
        name, repo, refused = self._gh(
            request, _GH_ISSUE_PARAMS, ("assignee", "mentioned", "milestone", "type")
        )
        if refused is not None:
            return refused
        query = request.query
        state = query.get("state", "open")
        sort = query.get("sort", "created")
        direction = query.get("direction", "desc")
        if state not in _STATUSES or sort not in _GH_SORTS or direction not in ("asc", "desc"):
            failed = {"message": "Validation Failed", **_GH_DOCS}
            return self._github_answer(request, failed, status=422)
        since = github_time(query["since"]) if "since" in query else None
        labels = {label.strip() for label in query.get("labels", "").split(",") if label.strip()}
        key = _GH_SORTS[sort]
        api = self._api(request, name)
        items = [
            {**i, "url": f"{api}/issues/{i['number']}", "repository_url": api}
            for i in repo.issues.values()
            if (state == "all" or i["state"] == state)
            and (since is None or _gh_time(i["updated_at"]) >= since)
            and labels <= {label["name"] for label in i["labels"]}
            and all(i["user"]["login"] == c for c in query.getall("creator", []))
        ]
        items.sort(key=lambda i: (i[key], i["number"]), reverse=direction == "desc")
        chunk, headers = self._paged(request, items)
        return self._github_answer(request, chunk, headers)

    async def _gh_releases(self, request: web.Request) -> web.Response:
        name, repo, refused = self._gh(request, ())
        if refused is not None:
            return refused
        api = self._api(request, name)
        items = [{**r, "url": f"{api}/releases/{r['id']}"} for r in repo.releases]
        chunk, headers = self._paged(request, items)
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

    async def _list_late(self, request: web.Request) -> web.Response:
        """A JSON model item (or a list of them) listed from now on: one created before the
        newest listed model shows up inside the listing, as a repo made public late does."""
        try:
            body = await request.json()
        except ValueError as exc:
            return web.json_response({"error": f"bad item: {exc}"}, status=400)
        items = body if isinstance(body, list) else [body]
        if not all(isinstance(i, dict) and isinstance(i.get("id"), str) for i in items):
            return web.json_response({"error": "each item needs an id"}, status=400)
        try:
            for item in items:
                self.hub.list_now(item)
        except TypeError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return await self._status(request)

    async def _rename(self, request: web.Request) -> web.Response:
        """``?from=org/old&to=org/new``: the old name redirects to the new one from now on."""
        try:
            self.hub.rename(request.query["from"], request.query["to"])
        except KeyError as exc:
            return web.json_response({"error": f"bad rename: missing {exc}"}, status=400)
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
