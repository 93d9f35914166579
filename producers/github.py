"""GitHub: payloads to events (pure), and one poller for commits, issues and pull requests,
releases and repo counters of the configured repos and those linked from model cards.

Within GitHub's limits (README, "GitHub's budget"):

- A newly followed repo is read from now less a lookback, never from the start of its
  history.
- Each round polls as many due repos as the request budget has earned since the last one,
  most valuable first (configured repos, then card-linked ones by the likes and downloads of
  the models linking them, weighed by how long they have waited); the rest wait their turn.
- Every list is walked page by page, and each page is published, flushed and checkpointed
  before the next is asked for, so a failure on page 3 keeps pages 1-2. The walks are
  keyset walks (each page asked for from the saved mark), which page numbers are not:
  issues ascend by ``updated_at`` from ``since``; commits only descend, so a walk that
  does not fit one page leaves a pending window (``since`` .. ``until``) narrowed page by
  page, and only when it closes does ``since`` move up to the newest commit of the walk.
- The first request of each walk is conditional (``If-None-Match``); its ETag is kept per
  repo and endpoint (not per ``since``), one row each. A 304 is free only with a token:
  anonymous, GitHub counts it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from hubwatch import metrics
from hubwatch.errors import NotFound, RateLimited, SchemaError, SourceStatusError
from hubwatch.events import (
    GithubCommit,
    GithubIssue,
    GithubRelease,
    GithubRepoSnapshot,
    parse_datetime,
)
from producers._http import request
from producers._lenient import Fields
from producers._pagination import next_link
from producers._ratelimit import RequestBudget
from producers.hub import now_utc
from producers.hub_uploads import reject
from producers.publish import EventPublisher
from producers.state import FollowedRepo, StateStore

__all__ = [
    "GITHUB_HEADERS",
    "REPO_COST",
    "GithubPoller",
    "advance_commits",
    "advance_issues",
    "cap_followed",
    "commit_from_api",
    "due_in_order",
    "issue_from_api",
    "release_from_api",
    "repo_snapshot_from_api",
]

log = logging.getLogger(__name__)

GITHUB_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]{0,38}/[\w.-]{1,100}$")


def _obj(item: object, what: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise SchemaError("bad_type", f"{what} is not an object")
    return item


def _int(item: Mapping[str, Any], key: str) -> int:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError("bad_type", f"{key}: expected int")
    return value


def commit_from_api(repo: str, item: object) -> GithubCommit:
    """Required: ``sha``; date, message and author are optional."""
    data = _obj(item, "commit")
    sha = data.get("sha")
    if not isinstance(sha, str) or not sha:
        raise SchemaError("missing_field", "sha")
    f = Fields(GithubCommit.KIND)
    commit = f.mapping(data, "commit")
    author = f.mapping(commit, "author", "commit.author")
    login = f.text(f.mapping(data, "author"), "login", "author.login")
    return GithubCommit(
        repo=repo,
        sha=sha,
        committed_at=f.when(author, "date", "commit.author.date"),
        message=f.text(commit, "message", "commit.message") or "",
        author=login or f.text(author, "name", "commit.author.name"),
    )


def issue_from_api(repo: str, item: object) -> GithubIssue:
    """Required: ``number``; the rest is optional."""
    data = _obj(item, "issue")
    number = _int(data, "number")
    f = Fields(GithubIssue.KIND)
    return GithubIssue(
        repo=repo,
        number=number,
        title=f.text(data, "title") or "",
        state=f.text(data, "state") or "open",
        is_pull_request="pull_request" in data,  # pull requests come in the issues list too
        created_at=f.when(data, "created_at"),
        updated_at=f.when(data, "updated_at"),
        author=f.text(f.mapping(data, "user"), "login", "user.login"),
        closed_at=f.when(data, "closed_at"),
        merged_at=f.when(f.mapping(data, "pull_request"), "merged_at", "pull_request.merged_at"),
        state_reason=f.text(data, "state_reason"),
    )


def release_from_api(repo: str, item: object) -> GithubRelease:
    """Required: ``id`` and ``tag_name``; the rest is optional."""
    data = _obj(item, "release")
    tag = data.get("tag_name")
    if not isinstance(tag, str):
        raise SchemaError("missing_field", "tag_name")
    release_id = _int(data, "id")
    f = Fields(GithubRelease.KIND)
    return GithubRelease(
        repo=repo,
        release_id=release_id,
        tag_name=tag,
        published_at=f.when(data, "published_at"),
        name=f.text(data, "name") or "",
        prerelease=bool(f.flag(data, "prerelease")),
    )


def repo_snapshot_from_api(repo: str, item: object, observed_at: datetime) -> GithubRepoSnapshot:
    """Required: the three counters (they are the snapshot); ``pushed_at`` is optional."""
    data = _obj(item, "repository")
    stars, forks = _int(data, "stargazers_count"), _int(data, "forks_count")
    open_issues = _int(data, "open_issues_count")
    f = Fields(GithubRepoSnapshot.KIND)
    return GithubRepoSnapshot(
        repo=repo,
        observed_at=observed_at,
        stars=stars,
        forks=forks,
        open_issues=open_issues,
        pushed_at=f.when(data, "pushed_at"),
    )


REPO_COST = 4
"Requests one repo costs at least: its counters, commits, issues and releases."


def _value(repo: FollowedRepo) -> float:
    return 1.0 + math.log10(1.0 + repo.likes + repo.downloads / 1000)


def cap_followed(
    repos: list[FollowedRepo], max_repos: int | None
) -> tuple[list[FollowedRepo], list[FollowedRepo]]:
    """(followed, left out): at most ``max_repos`` repos, configured ones always, then
    card-linked ones by the likes + downloads/1,000 of the models linking them (ties: the
    one followed first). None: no cap."""
    if max_repos is None or len(repos) <= max_repos:
        return repos, []
    ranked = sorted(repos, key=lambda r: (not r.configured, -_value(r), r.followed_at, r.repo))
    room = max(max_repos, sum(1 for r in repos if r.configured))
    return ranked[:room], ranked[room:]


def due_in_order(repos: list[FollowedRepo], now: float, repo_interval: float) -> list[FollowedRepo]:
    """The repos due a poll (none in the last ``repo_interval``), most valuable first:
    configured ones, then card-linked ones by ``weight x waited``, where weight grows with
    the log of the linking models' likes + downloads / 1,000 (a like is worth about a
    thousand monthly downloads on the Hub). A repo never polled has waited since one
    interval before it was followed. Weighing by time waited means every repo gets its
    turn, a popular one proportionally more often."""

    def waited(repo: FollowedRepo) -> float:
        last = repo.last_polled
        return now - (repo.followed_at - repo_interval if last is None else last)

    due = [r for r in repos if waited(r) >= repo_interval]
    return sorted(due, key=lambda r: (not r.configured, -_value(r) * waited(r), r.repo))


def _second(value: datetime) -> str:
    """GitHub's own timestamp form (whole seconds, ``Z``), for ``since`` and ``until``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _normal(value: object) -> str | None:
    """A stored mark's time in GitHub's form (older marks kept milliseconds)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return _second(parse_datetime(value))
    except SchemaError:
        return None


def _raw_time(item: object, *path: str) -> str | None:
    """A timestamp inside a raw item, as a whole second, or None."""
    for step in path:
        if not isinstance(item, Mapping):
            return None
        item = item.get(step)
    return _normal(item)


@dataclass(frozen=True, slots=True)
class _Page:
    """One page of a walk: its new events and each item's (ident, second)."""

    fresh: list[Any]
    seen: list[tuple[str, str | None]]
    more: bool
    "GitHub has a next page (a refused cross-origin link counts too)."
    link: str | None
    "The next page's URL, if it may be followed."


def _at(seen: list[tuple[str, str | None]], second: str | None) -> set[str]:
    return {ident for ident, at in seen if at == second and second is not None}


def advance_issues(mark: dict[str, Any], seen: list[tuple[str, str | None]]) -> dict[str, Any]:
    """Issues ascend by ``updated_at``: ``since`` moves to the page's newest second, and
    the items at that second are remembered (``since`` is inclusive)."""
    times = [at for _, at in seen if at is not None]
    newest = max(times, default=None)
    since = mark.get("since")
    if newest is None or (since is not None and newest < since):
        return mark
    at = _at(seen, newest) | (set(mark.get("at", [])) if newest == since else set())
    return {"since": newest, "at": sorted(at)}


def advance_commits(
    mark: dict[str, Any], seen: list[tuple[str, str | None]], more: bool
) -> dict[str, Any]:
    """Commits descend, newest first. A walk that ends on its first page moves ``since``
    to its newest commit. One that does not leaves a pending ``window``: everything above
    ``window.until`` down to ``since`` is still to read, newest first, and ``since``
    moves to ``window.top`` (the walk's newest commit) only once the window closes."""
    times = [at for _, at in seen if at is not None]
    since, window = mark.get("since"), mark.get("window")
    if window is None:
        top = max(times, default=since)
        top_at = _at(seen, top) | (set(mark.get("at", [])) if top == since else set())
        if not more:
            return {"since": top, "at": sorted(top_at), "window": None}
        window = {"top": top, "top_at": sorted(top_at), "until": None, "at": []}
    elif not more:
        return {"since": window["top"], "at": window["top_at"], "window": None}
    low = min(times, default=window["until"])
    at = _at(seen, low) | (set(window["at"]) if low == window["until"] else set())
    return {**mark, "window": {**window, "until": low, "at": sorted(at)}}


class GithubPoller:
    """One round polls the due repos the budget affords: counters, commits, issues,
    releases."""

    name = "github"

    def __init__(
        self,
        client: httpx.AsyncClient,
        publisher: EventPublisher,
        store: StateStore,
        *,
        repos: tuple[str, ...] = (),
        budget: RequestBudget | None = None,
        lookback: timedelta | None = timedelta(days=3),
        repo_interval: float = 3600.0,
        round_seconds: float = 300.0,
        per_page: int = 100,
        max_pages: int = 5,
        max_repos: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``lookback``: how far back a newly followed repo is read (None: its whole
        history). ``repo_interval``: how often one repo is polled when the budget allows.
        ``round_seconds``: how often rounds come, so unspent budget carries over one round
        at most. ``max_pages``: pages per list per repo and round (the walk goes on next
        round from its checkpoint). ``max_repos``: at most this many repos followed, the
        most valuable (:func:`cap_followed`); None: all."""
        self._max_repos = max_repos
        self._client = client
        self._publisher = publisher
        self._store = store
        self._budget = budget
        self._lookback = lookback
        self._repo_interval = repo_interval
        self._round_seconds = round_seconds
        self._per_page = per_page
        self._max_pages = max_pages
        self._clock = clock
        self._credit: float | None = None
        """Requests the budget has earned and this poller not spent (negative: a debt); a
        first round starts with a round's worth."""
        self._credit_at = clock()
        for repo in repos:
            if not _REPO.match(repo):
                raise SchemaError("bad_repo", f"not a GitHub owner/name: {repo!r}")
        with store.transaction():
            store.configure_github_repos(repos, at=clock())

    async def poll_once(self) -> int:
        now = self._clock()
        # Off the loop: it sums the likes of every model card linking a followed repo.
        linked = await self._store.read_off_loop(lambda s: s.followed_github_repos())
        followed, capped = cap_followed(linked, self._max_repos)
        due = due_in_order(followed, now, self._repo_interval)
        if self._budget is not None:
            rate = self._budget.rate
            cap = rate * self._round_seconds + REPO_COST
            earned = rate * max(0.0, now - self._credit_at)
            self._credit = cap if self._credit is None else min(cap, self._credit + earned)
        self._credit_at = now
        published = polled = 0
        try:
            for repo in due:
                if self._credit is not None and self._credit < REPO_COST:
                    break
                before = self._budget.requests if self._budget is not None else 0
                try:
                    published += await self.poll_repo(repo.repo)
                finally:
                    if self._budget is not None and self._credit is not None:
                        self._credit -= self._budget.requests - before
                with self._store.transaction():
                    self._store.set_github_polled(repo.repo, self._clock())
                polled += 1
        finally:
            metrics.GITHUB_REPOS.labels("followed").set(len(followed))
            metrics.GITHUB_REPOS.labels("polled").set(polled)
            metrics.GITHUB_REPOS.labels("overdue").set(len(due) - polled)
            metrics.GITHUB_REPOS.labels("capped").set(len(capped))
        return published

    def _start(self) -> str | None:
        """Where a newly followed repo's lists start."""
        if self._lookback is None:
            return None
        return _second(datetime.fromtimestamp(self._clock(), UTC) - self._lookback)

    async def _get(
        self, url: str, params: dict[str, str] | None, etag_key: str | None
    ) -> tuple[Any, httpx.Response]:
        """GET, conditional when ``etag_key`` names a stored ETag; body None on a 304."""
        etag = self._store.etag(etag_key) if etag_key else None
        headers = {"If-None-Match": etag} if etag else None
        return await request(self._client, url, params=params, headers=headers, budget=self._budget)

    async def _save(
        self, events: list[Any], marks: dict[str, str], etags: dict[str, str | None]
    ) -> None:
        """Published and flushed first, then the checkpoint: a crash repeats, never skips."""
        for event in events:
            await self._publisher.publish(event)
        if events:
            await self._publisher.flush()
        with self._store.transaction():
            for name, value in marks.items():
                self._store.set_mark(name, value)
            for key, etag in etags.items():
                self._store.set_etag(key, etag)

    async def _reject(self, what: str, repo: str, item: object, error: SchemaError) -> None:
        await reject(
            self._publisher,
            seen=self._store,
            stage=f"producer.github.{what}" if what else "producer.github",
            source=f"/repos/{repo}/{what}" if what else f"/repos/{repo}",
            item=item,
            error=error,
        )

    async def poll_repo(self, repo: str) -> int:
        """One repo, each list checkpointed as it goes. Gone (404 for the repo itself):
        dropped from the followed set and counted, not polled again. An error
        answer for one list: logged, what it published so far kept, the repo's other lists
        and the round go on. A rate limit or an unreachable GitHub ends the round."""
        published = 0
        lists = (
            ("", self._counters),
            ("commits", self._commits),
            ("issues", self._issues),
            ("releases", self._releases),
        )
        for what, poll in lists:
            try:
                published += await poll(repo)
            except NotFound:
                if not what:  # the repo itself: gone, renamed away or private
                    log.warning("github: %s is gone (404); no longer following it", repo)
                    with self._store.transaction():
                        self._store.drop_github_repo(repo, self._clock())
                    metrics.GITHUB_REPOS_DROPPED.labels("gone").inc()
                else:
                    log.warning("github: %s %s is gone; skipping it", repo, what)
                break
            except SchemaError as error:
                await self._reject(what, repo, None, error)
            except RateLimited:
                raise
            except SourceStatusError as error:
                log.warning(
                    "github: %s %s failed (%s); its progress so far is kept",
                    repo,
                    what or "counters",
                    error,
                )
        return published

    async def _counters(self, repo: str) -> int:
        """A 304 when nothing moved; otherwise one snapshot."""
        key = f"/repos/{repo}"
        body, response = await self._get(key, None, key)
        if body is None:
            return 0
        snapshot = repo_snapshot_from_api(repo, body, now_utc())
        await self._save([snapshot], {}, {key: response.headers.get("etag")})
        return 1

    async def _next(
        self, repo: str, what: str, response: httpx.Response
    ) -> tuple[bool, str | None]:
        """(more pages?, the next page's URL if it may be followed)."""
        if "next" not in response.links:
            return False, None
        try:
            return True, next_link(self._client, response)
        except SchemaError as error:
            # Refused (another origin): this walk stops here, and resumes from its
            # checkpoint next round (never by that link).
            await self._reject(what, repo, {"link": error.detail}, error)
            return True, None

    async def _page(
        self,
        repo: str,
        what: str,
        body: Any,
        parse: Callable[[str, object], Any],
        ident: Callable[[Any], str],
        when: Callable[[object], str | None],
        skip: set[str],
    ) -> tuple[list[Any], list[tuple[str, str | None]]]:
        fresh: list[Any] = []
        seen: list[tuple[str, str | None]] = []
        for item in body if isinstance(body, list) else []:
            try:
                event = parse(repo, item)
            except SchemaError as error:
                await self._reject(what, repo, item, error)
                continue
            at = when(item)
            key = f"{ident(event)}@{at}"
            seen.append((key, at))
            if key not in skip:
                fresh.append(event)
        return fresh, seen

    async def _walk(
        self,
        repo: str,
        what: str,
        params: Callable[[dict[str, Any]], dict[str, str]],
        advance: Callable[[dict[str, Any], list[tuple[str, str | None]], bool], dict[str, Any]],
        skip: Callable[[dict[str, Any]], set[str]],
        parse: Callable[[str, object], Any],
        ident: Callable[[Any], str],
        when: Callable[[object], str | None],
    ) -> int:
        """Up to ``max_pages`` pages, each asked for from the mark the last one left
        (keyset), except when a full page did not move the mark (more items in one second
        than fit a page): then GitHub's next link is followed."""
        name, path = f"github.{what}.{repo}", f"/repos/{repo}/{what}"
        stored = json.loads(self._store.mark(name) or "null")
        mark = _upgrade_mark(stored) if stored is not None else {"since": self._start()}
        published = 0
        url: str = path
        query: dict[str, str] | None = params(mark)
        for page in range(self._max_pages):
            body, response = await self._get(url, query, path if page == 0 else None)
            if body is None:
                return published  # 304: the same answer as the last complete walk
            if not isinstance(body, list):
                raise SchemaError("bad_page", f"{path}: expected a JSON list")
            fresh, seen = await self._page(repo, what, body, parse, ident, when, skip(mark))
            more, link = await self._next(repo, what, response)
            moved = advance(mark, seen, more)
            # Only a walk done in one conditional request leaves its ETag: the next round
            # asks the same question. Otherwise the next question differs; ask it in full.
            etags = {path: None if more else response.headers.get("etag")} if page == 0 else {}
            fresh.sort(key=lambda e: when_of(e) or "")
            await self._save(fresh, {name: json.dumps(moved)}, etags)
            published += len(fresh)
            if not more or link is None:
                return published
            if _progressed(mark, moved):
                url, query = path, params(moved)
            else:
                url, query = link, None
            mark = moved
        return published

    async def _commits(self, repo: str) -> int:
        def params(mark: dict[str, Any]) -> dict[str, str]:
            query = {"per_page": str(self._per_page)}
            if mark.get("since"):
                query["since"] = mark["since"]
            window = mark.get("window")
            if window and window.get("until"):
                query["until"] = window["until"]
            return query

        def skip(mark: dict[str, Any]) -> set[str]:
            window = mark.get("window") or {}
            return set(mark.get("at", [])) | set(window.get("at", []))

        try:
            return await self._walk(
                repo,
                "commits",
                params,
                advance_commits,
                skip,
                commit_from_api,
                lambda e: e.sha,
                # ``since`` and ``until`` filter on the committer's date
                lambda item: (
                    _raw_time(item, "commit", "committer", "date")
                    or _raw_time(item, "commit", "author", "date")
                ),
            )
        except SourceStatusError as error:
            if error.status == 409:  # "Git Repository is empty": no commits yet
                return 0
            raise

    async def _issues(self, repo: str) -> int:
        def params(mark: dict[str, Any]) -> dict[str, str]:
            query = {
                "state": "all",
                "sort": "updated",
                "direction": "asc",
                "per_page": str(self._per_page),
            }
            if mark.get("since"):
                query["since"] = mark["since"]
            return query

        return await self._walk(
            repo,
            "issues",
            params,
            lambda mark, seen, _more: advance_issues(mark, seen),
            lambda mark: set(mark.get("at", [])),
            issue_from_api,
            lambda e: str(e.number),
            lambda item: _raw_time(item, "updated_at"),
        )

    async def _releases(self, repo: str) -> int:
        """The newest page only (releases have no ``since``); the mark is that page's ids,
        so it stays one page long. A newly followed repo's releases before the lookback
        are marked known, not emitted."""
        name, path = f"github.releases.{repo}", f"/repos/{repo}/releases"
        stored = json.loads(self._store.mark(name) or "null")
        body, response = await self._get(path, {"per_page": "100"}, path)
        if body is None:
            return 0
        start = self._start() if stored is None else None
        known = set(stored if isinstance(stored, list) else [])
        fresh, ids = [], []
        for item in body if isinstance(body, list) else []:
            try:
                release = release_from_api(repo, item)
            except SchemaError as error:
                await self._reject("releases", repo, item, error)
                continue
            ids.append(release.release_id)
            published = release.published_at
            old = start is not None and (published is None or _second(published) < start)
            if release.release_id not in known and not old:
                fresh.append(release)
        fresh.sort(key=lambda r: r.release_id)
        etag = response.headers.get("etag")
        await self._save(fresh, {name: json.dumps(sorted(ids))}, {path: etag})
        return len(fresh)


def _progressed(mark: dict[str, Any], moved: dict[str, Any]) -> bool:
    """Did the keyset move (not just more ids remembered at the same second)?"""
    window, before = moved.get("window") or {}, mark.get("window") or {}
    return moved.get("since") != mark.get("since") or window.get("until") != before.get("until")


def when_of(event: Any) -> str | None:
    """An event's own time, for publishing a page in time order."""
    for attr in ("committed_at", "updated_at"):
        value = getattr(event, attr, None)
        if isinstance(value, datetime):
            return _second(value)
    return None


def _upgrade_mark(stored: Any) -> dict[str, Any]:
    """A mark as saved; those from before the budget (``at_mark``, milliseconds) too."""
    if not isinstance(stored, dict):
        return {"since": None}
    mark = dict(stored)
    mark["since"] = _normal(mark.get("since"))
    if "at_mark" in mark:
        mark["at"] = mark.pop("at_mark")
    return mark
