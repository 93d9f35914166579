"""GitHub: payloads to events (pure), and one poller for commits, issues and pull requests,
releases and repo counters of the configured repos and those linked from model cards.

Every list call is conditional (``If-None-Match`` with the stored ETag): an unchanged
resource costs a 304, which GitHub does not count against the rate limit.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from hubwatch.errors import NotFound, SchemaError
from hubwatch.events import (
    GithubCommit,
    GithubIssue,
    GithubRelease,
    GithubRepoSnapshot,
    format_datetime,
)
from producers._http import request
from producers._lenient import Fields
from producers._pagination import next_link
from producers._ratelimit import RequestBudget
from producers.hub import now_utc
from producers.hub_uploads import reject
from producers.publish import EventPublisher
from producers.state import StateStore

__all__ = [
    "GITHUB_HEADERS",
    "GithubPoller",
    "commit_from_api",
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


def _etag_key(url: str, params: dict[str, str] | None) -> str:
    return url + ("?" + json.dumps(params, sort_keys=True) if params else "")


class GithubPoller:
    """One round polls every followed repo: counters, commits, issues, releases."""

    name = "github"

    def __init__(
        self,
        client: httpx.AsyncClient,
        publisher: EventPublisher,
        store: StateStore,
        *,
        repos: tuple[str, ...] = (),
        budget: RequestBudget | None = None,
    ) -> None:
        self._client = client
        self._publisher = publisher
        self._store = store
        self._budget = budget
        with store.transaction():
            for repo in repos:
                if not _REPO.match(repo):
                    raise SchemaError("bad_repo", f"not a GitHub owner/name: {repo!r}")
                store.add_github_repo(repo, "config")

    async def poll_once(self) -> int:
        published = 0
        for repo in self._store.github_repos():
            published += await self.poll_repo(repo)
        return published

    async def _get(
        self, url: str, etags: dict[str, str], params: dict[str, str] | None = None
    ) -> tuple[Any, httpx.Response]:
        """Conditional GET; body is None when unchanged (304). The new ETag goes to
        ``etags``, stored only once the events it covers are published."""
        key = _etag_key(url, params)
        etag = self._store.etag(key)
        headers = {"If-None-Match": etag} if etag else None
        body, response = await request(
            self._client, url, params=params, headers=headers, budget=self._budget
        )
        if response.headers.get("etag"):
            etags[key] = response.headers["etag"]
        return body, response

    async def poll_repo(self, repo: str) -> int:
        events: list[Any] = []
        marks: dict[str, str] = {}
        etags: dict[str, str] = {}
        base = f"/repos/{repo}"
        try:
            # Counters: a 304 when nothing moved; otherwise one snapshot.
            body, _ = await self._get(base, etags)
            if body is not None:
                events.append(repo_snapshot_from_api(repo, body, now_utc()))
            events += await self._since(
                repo,
                "commits",
                commit_from_api,
                lambda e: e.committed_at,
                lambda e: e.sha,
                marks,
                etags,
            )
            events += await self._since(
                repo,
                "issues",
                issue_from_api,
                lambda e: e.updated_at,
                lambda e: f"{e.number}@{e.updated_at}",
                marks,
                etags,
            )
            events += await self._releases(repo, marks, etags)
        except NotFound:
            log.warning("github: %s is gone; skipping it", repo)
            return 0
        except SchemaError as error:
            await reject(
                self._publisher,
                seen=self._store,
                stage="producer.github",
                source=base,
                item=None,
                error=error,
            )
            return 0
        for event in events:
            await self._publisher.publish(event)
        await self._publisher.flush()
        with self._store.transaction():
            for name, value in marks.items():
                self._store.set_mark(name, value)
            for key, value in etags.items():
                self._store.set_etag(key, value)
        return len(events)

    async def _since(
        self,
        repo: str,
        what: str,
        parse: Any,
        when: Any,
        ident: Any,
        marks: dict[str, str],
        etags: dict[str, str],
    ) -> list[Any]:
        """``since=`` incremental lists; ``since`` is inclusive, so the items at the mark are
        remembered and not emitted twice."""
        name = f"github.{what}.{repo}"
        state = json.loads(self._store.mark(name) or "{}")
        params = {"per_page": "100"}
        if what == "issues":
            params.update(state="all", sort="updated", direction="asc")
        if state.get("since"):
            params["since"] = state["since"]
        at_mark = set(state.get("at_mark", []))
        fresh: list[Any] = []
        url: str | None = f"/repos/{repo}/{what}"
        first = True
        cut_short = False
        while url is not None:
            if first:
                body, response = await self._get(url, etags, params)
                if body is None:
                    return []  # 304: nothing new, and it cost no rate limit
            else:
                body, response = await request(self._client, url, budget=self._budget)
            first = False
            for item in body if isinstance(body, list) else []:
                try:
                    event = parse(repo, item)
                except SchemaError as error:
                    await reject(
                        self._publisher,
                        seen=self._store,
                        stage=f"producer.github.{what}",
                        source=f"/repos/{repo}/{what}",
                        item=item,
                        error=error,
                    )
                    continue
                if ident(event) not in at_mark:
                    fresh.append(event)
            try:
                url = next_link(self._client, response)
            except SchemaError as error:
                # Keep what the pages before it gave; neither the mark nor the first page's
                # ETag moves, so the rest is read again next round (same event ids).
                await reject(
                    self._publisher,
                    seen=self._store,
                    stage=f"producer.github.{what}",
                    source=f"/repos/{repo}/{what}",
                    item={"link": error.detail},
                    error=error,
                )
                etags.pop(_etag_key(f"/repos/{repo}/{what}", params), None)
                url, cut_short = None, True
        if fresh and not cut_short:
            newest = max((when(e) for e in fresh if when(e) is not None), default=None)
            if newest is not None:
                at_newest = [ident(e) for e in fresh if when(e) == newest]
                if state.get("since") == format_datetime(newest):
                    at_newest += list(at_mark)
                marks[name] = json.dumps(
                    {"since": format_datetime(newest), "at_mark": sorted(set(at_newest))}
                )
        fresh.sort(key=lambda e: (when(e) is None, when(e) or now_utc()))
        return fresh

    async def _releases(
        self, repo: str, marks: dict[str, str], etags: dict[str, str]
    ) -> list[GithubRelease]:
        name = f"github.releases.{repo}"
        known = set(json.loads(self._store.mark(name) or "[]"))
        body, _ = await self._get(f"/repos/{repo}/releases", etags, {"per_page": "100"})
        if body is None:
            return []
        fresh = []
        for item in body if isinstance(body, list) else []:
            try:
                release = release_from_api(repo, item)
            except SchemaError as error:
                await reject(
                    self._publisher,
                    seen=self._store,
                    stage="producer.github.releases",
                    source=f"/repos/{repo}/releases",
                    item=item,
                    error=error,
                )
                continue
            if release.release_id not in known:
                fresh.append(release)
        if fresh:
            marks[name] = json.dumps(sorted(known | {r.release_id for r in fresh}))
        return sorted(fresh, key=lambda r: r.release_id)
