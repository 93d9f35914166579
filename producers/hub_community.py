"""Commits and discussions of the models the tracker follows (popular ones, watched orgs,
families of watched base models): ``model.commit`` and ``model.discussion``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from hubwatch import metrics
from hubwatch.errors import NotFound, SchemaError
from hubwatch.events import ModelCommit, ModelDiscussion
from producers._http import request
from producers._pagination import iter_pages
from producers._ratelimit import RequestBudget
from producers.hub import (
    discussion_transitions,
    model_commit_from_api,
    model_discussion_from_api,
)
from producers.hub_uploads import reject
from producers.publish import EventPublisher
from producers.tracking import Tracker, gone_recheck

__all__ = ["CommunityPoller"]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class _RepoNews:
    repo_id: str
    commits: list[ModelCommit] = field(default_factory=list)
    discussions: list[ModelDiscussion] = field(default_factory=list)
    statuses: dict[int, str] = field(default_factory=dict)
    "Listed status of each discussion whose status is news (what the store keeps)."
    gone: bool = False


class CommunityPoller:
    name = "hub.community"

    def __init__(
        self,
        client: httpx.AsyncClient,
        publisher: EventPublisher,
        tracker: Tracker,
        *,
        repos_per_round: int = 20,
        first_commit_pages: int = 1,
        budget: RequestBudget | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._publisher = publisher
        self._tracker = tracker
        self._repos = repos_per_round
        self._first_pages = first_commit_pages
        self._budget = budget
        self._clock = clock

    async def poll_once(self) -> int:
        now = self._clock()
        store = self._tracker.store
        news = [await self.poll_repo(repo_id) for repo_id in store.due_community(now, self._repos)]
        events: list[ModelCommit | ModelDiscussion] = []
        for repo in news:
            events += repo.commits + repo.discussions
        for event in events:
            await self._publisher.publish(event)
        await self._publisher.flush()
        with store.transaction():
            for repo in news:
                if repo.gone:
                    # Kept followed: a gated or private repo can reopen. Asked rarely.
                    strikes = store.strike_gone(repo.repo_id)
                    store.schedule_community(repo.repo_id, now + gone_recheck(strikes))
                    continue
                store.clear_gone(repo.repo_id)
                if repo.commits:
                    store.set_commit_head(repo.repo_id, repo.commits[-1].commit_id)
                for num, status in repo.statuses.items():
                    store.set_discussion_status(repo.repo_id, num, status)
                store.schedule_community(
                    repo.repo_id, now + self._tracker.community_interval(repo.repo_id)
                )
        return len(events)

    async def poll_repo(self, repo_id: str) -> _RepoNews:
        news = _RepoNews(repo_id)
        try:
            news.commits = await self._commits(repo_id)
            news.discussions, news.statuses = await self._discussions(repo_id)
        except NotFound as exc:
            metrics.SOURCE_GONE.labels(self.name, str(exc.status)).inc()
            news.gone = True
        return news

    async def _commits(self, repo_id: str) -> list[ModelCommit]:
        head = self._tracker.store.commit_head(repo_id)
        url = f"/api/models/{repo_id}/commits/{quote('main', safe='')}"
        fresh: list[ModelCommit] = []
        pages = 0
        async for page in iter_pages(self._client, url, [], budget=self._budget):
            pages += 1
            reached = False
            for item in page:
                try:
                    commit = model_commit_from_api(repo_id, item)
                except SchemaError as error:
                    await reject(
                        self._publisher,
                        seen=self._tracker.store,
                        stage="producer.hub.commits",
                        source=url,
                        item=item,
                        error=error,
                    )
                    continue
                if commit.commit_id == head:
                    reached = True
                    break
                fresh.append(commit)
            # Newest first; a model seen for the first time gets its recent history only.
            if reached or (head is None and pages >= self._first_pages):
                break
        fresh.reverse()
        return fresh

    async def _discussions(self, repo_id: str) -> tuple[list[ModelDiscussion], dict[int, str]]:
        url = f"/api/models/{repo_id}/discussions"
        changed: list[ModelDiscussion] = []
        statuses: dict[int, str] = {}
        page = 0
        while True:
            body, _ = await request(self._client, url, params={"p": page}, budget=self._budget)
            items: list[Any] = body.get("discussions", []) if isinstance(body, dict) else []
            for item in items:
                try:
                    discussion = model_discussion_from_api(repo_id, item)
                except SchemaError as error:
                    await reject(
                        self._publisher,
                        seen=self._tracker.store,
                        stage="producer.hub.discussions",
                        source=url,
                        item=item,
                        error=error,
                    )
                    continue
                known = self._tracker.store.discussion_status(repo_id, discussion.num)
                if known != discussion.status:
                    changed += await self._transitions(url, discussion, known)
                    statuses[discussion.num] = discussion.status
            start, count = body.get("start", 0), body.get("count", 0)
            # Page-number pagination, as huggingface_hub reads it: no Link header here.
            if not items or start + len(items) >= count:
                break
            page += 1
        changed.sort(key=lambda d: (d.num, d.changed_at or d.created_at or _EPOCH))
        return changed, statuses

    async def _transitions(
        self, url: str, listed: ModelDiscussion, known: str | None
    ) -> list[ModelDiscussion]:
        """A discussion whose status is news, as the transitions that led to it. One first
        seen in its first status needs nothing more; any other asks the discussion's detail
        for when its status changed (events already sent carry the same ids)."""
        observed = datetime.fromtimestamp(self._clock(), UTC)
        if known is None and listed.status in ("open", "draft"):
            return discussion_transitions(listed, None, observed)
        try:
            detail, _ = await request(
                self._client, f"{url}/{listed.num}", params={}, budget=self._budget
            )
        except NotFound:
            detail = None
        return discussion_transitions(listed, detail, observed)
