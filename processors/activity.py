"""Engagement snapshots and community activity as ClickHouse rows. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

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
    "community_rows",
    "repo_snapshot_row",
    "snapshot_row",
]

CommunityEvent = ModelCommit | ModelDiscussion | GithubCommit | GithubIssue | GithubRelease

UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"``at`` of a row whose upstream time is missing: part of the sort key, so never NULL."


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """A row of ``model_snapshots``."""

    repo_id: str
    observed_at: datetime
    downloads: int | None
    downloads_all_time: int | None
    likes: int | None
    trending_score: float | None
    # No event_id: (repo_id, observed_at), the sort key, is the snapshot's identity.


@dataclass(frozen=True, slots=True)
class CommunityRow:
    """A row of ``community_events``: a commit, a release, or one status transition of a
    discussion, issue or pull request (its natural key: kind, repo, item, transition, at)."""

    kind: str
    source: str
    repo: str
    item: str
    transition: str
    "opened, closed, merged or reopened; empty for commits and releases."
    at: datetime
    state: str
    is_pull_request: bool
    title: str
    author: str


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
    )


def repo_snapshot_row(event: GithubRepoSnapshot) -> RepoSnapshotRow:
    return RepoSnapshotRow(
        event.repo, event.observed_at, event.stars, event.forks, event.open_issues, event.event_id
    )


def community_rows(event: CommunityEvent) -> list[CommunityRow]:
    """The rows of one community event; a discussion or issue gives one per transition its
    times show, so the same item polled again adds nothing and counts stay per item."""
    match event:
        case ModelCommit():
            return [
                CommunityRow(
                    kind=event.KIND,
                    source="hub",
                    repo=event.repo_id,
                    item=event.commit_id,
                    transition="",
                    at=event.committed_at or UNKNOWN_TIME,
                    state="",
                    is_pull_request=False,
                    title=event.title,
                    author=",".join(event.authors),
                )
            ]
        case ModelDiscussion():
            return [
                CommunityRow(
                    kind=event.KIND,
                    source="hub",
                    repo=event.repo_id,
                    item=str(event.num),
                    transition=_discussion_transition(event),
                    at=event.changed_at or event.created_at or UNKNOWN_TIME,
                    state=event.status,
                    is_pull_request=event.is_pull_request,
                    title=event.title,
                    author=event.author or "",
                )
            ]
        case GithubCommit():
            return [
                CommunityRow(
                    kind=event.KIND,
                    source="github",
                    repo=event.repo,
                    item=event.sha,
                    transition="",
                    at=event.committed_at or UNKNOWN_TIME,
                    state="",
                    is_pull_request=False,
                    title=event.message.partition("\n")[0],
                    author=event.author or "",
                )
            ]
        case GithubIssue():
            return [
                CommunityRow(
                    kind=event.KIND,
                    source="github",
                    repo=event.repo,
                    item=str(event.number),
                    transition=transition,
                    at=at or UNKNOWN_TIME,
                    state=event.state,
                    is_pull_request=event.is_pull_request,
                    title=event.title,
                    author=event.author or "",
                )
                for transition, at in issue_transitions(event)
            ]
        case GithubRelease():
            return [
                CommunityRow(
                    kind=event.KIND,
                    source="github",
                    repo=event.repo,
                    item=str(event.release_id),
                    transition="",
                    at=event.published_at or UNKNOWN_TIME,
                    state="",
                    is_pull_request=False,
                    title=event.tag_name,
                    author="",
                )
            ]
    raise TypeError(type(event))  # pragma: no cover - the union above is exhaustive


def _discussion_transition(event: ModelDiscussion) -> str:
    if event.status in ("closed", "merged"):
        return event.status
    # open or draft: its first status, or open again after a close.
    reopened = event.changed_at is not None and event.changed_at != event.created_at
    return "reopened" if reopened else "opened"


def issue_transitions(event: GithubIssue) -> list[tuple[str, datetime | None]]:
    """(transition, when) that an issue's fields show: opened at ``created_at``; closed
    (merged, for a merged pull request) at ``closed_at``; reopened at ``updated_at`` while
    GitHub says ``state_reason: reopened`` (a reopen clears ``closed_at``; an edit after it
    moves ``updated_at``, so a later poll may place the reopen later, never count it
    twice in one window)."""
    found: list[tuple[str, datetime | None]] = [("opened", event.created_at)]
    if event.state == "closed":
        if event.merged_at is not None:
            found.append(("merged", event.merged_at))
        else:
            found.append(("closed", event.closed_at or event.updated_at))
    elif event.state_reason == "reopened":
        found.append(("reopened", event.updated_at))
    return found
