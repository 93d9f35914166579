"""Engagement snapshots and community activity as ClickHouse rows. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hubwatch.events import (
    GithubCommit,
    GithubIssue,
    GithubRelease,
    GithubRepoSnapshot,
    ModelCommit,
    ModelDiscussion,
    ModelSnapshot,
)

__all__ = [
    "CommunityRow",
    "RepoSnapshotRow",
    "SnapshotRow",
    "community_row",
    "repo_snapshot_row",
    "snapshot_row",
]

CommunityEvent = ModelCommit | ModelDiscussion | GithubCommit | GithubIssue | GithubRelease


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """A row of ``model_snapshots``."""

    repo_id: str
    observed_at: datetime
    downloads: int | None
    downloads_all_time: int | None
    likes: int | None
    trending_score: float | None
    event_id: str


@dataclass(frozen=True, slots=True)
class CommunityRow:
    """A row of ``community_events``."""

    kind: str
    source: str
    repo: str
    item: str
    at: datetime | None
    state: str
    is_pull_request: bool
    title: str
    author: str
    event_id: str


@dataclass(frozen=True, slots=True)
class RepoSnapshotRow:
    """A row of ``github_repo_snapshots``."""

    repo: str
    observed_at: datetime
    stars: int
    forks: int
    open_issues: int
    event_id: str


def snapshot_row(event: ModelSnapshot) -> SnapshotRow:
    return SnapshotRow(
        event.repo_id,
        event.observed_at,
        event.downloads,
        event.downloads_all_time,
        event.likes,
        event.trending_score,
        event.event_id,
    )


def repo_snapshot_row(event: GithubRepoSnapshot) -> RepoSnapshotRow:
    return RepoSnapshotRow(
        event.repo, event.observed_at, event.stars, event.forks, event.open_issues, event.event_id
    )


def community_row(event: CommunityEvent) -> CommunityRow:
    common = {"kind": event.KIND, "event_id": event.event_id}
    match event:
        case ModelCommit():
            return CommunityRow(
                source="hub",
                repo=event.repo_id,
                item=event.commit_id,
                at=event.committed_at,
                state="",
                is_pull_request=False,
                title=event.title,
                author=",".join(event.authors),
                **common,
            )
        case ModelDiscussion():
            return CommunityRow(
                source="hub",
                repo=event.repo_id,
                item=str(event.num),
                at=event.created_at,
                state=event.status,
                is_pull_request=event.is_pull_request,
                title=event.title,
                author=event.author or "",
                **common,
            )
        case GithubCommit():
            return CommunityRow(
                source="github",
                repo=event.repo,
                item=event.sha,
                at=event.committed_at,
                state="",
                is_pull_request=False,
                title=event.message.partition("\n")[0],
                author=event.author or "",
                **common,
            )
        case GithubIssue():
            return CommunityRow(
                source="github",
                repo=event.repo,
                item=str(event.number),
                at=event.updated_at,
                state=event.state,
                is_pull_request=event.is_pull_request,
                title=event.title,
                author=event.author or "",
                **common,
            )
        case GithubRelease():
            return CommunityRow(
                source="github",
                repo=event.repo,
                item=str(event.release_id),
                at=event.published_at,
                state="",
                is_pull_request=False,
                title=event.tag_name,
                author="",
                **common,
            )
    raise TypeError(type(event))  # pragma: no cover - the union above is exhaustive
