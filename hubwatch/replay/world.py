"""The replay's simulated world: Hub models released over time and what then happens to them
(likes, downloads, edits, commits, discussions), and GitHub repos with their history.

Everything is deterministic for a seed. Time-driven changes (releases, activity) are applied
lazily by :meth:`HubWorld.tick` from the elapsed time, so a paused server costs nothing.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = [
    "RESTRICTIONS",
    "GithubWorld",
    "HubWorld",
    "ListSource",
    "ModelSource",
    "iso_now",
]

RESTRICTIONS = ("deleted", "private", "gated")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_now() -> str:
    return iso(time.time())


def github_iso(ts: float) -> str:
    """GitHub's timestamps: whole seconds, ``Z`` (``2025-01-01T00:00:00Z``)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sha(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()


class ModelSource(Protocol):
    """Models in release (createdAt) order."""

    def __len__(self) -> int: ...
    def item(self, index: int) -> Any: ...
    def index_of(self, repo_id: str) -> int | None: ...


class ListSource:
    def __init__(self, items: Sequence[Any]) -> None:
        self._items = sorted(items, key=_created_key)
        self._index: dict[str, int] = {}
        self._folded: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def item(self, index: int) -> Any:
        return self._items[index]

    def index_of(self, repo_id: str) -> int | None:
        if not self._index:
            self._index = {
                i["id"]: n
                for n, i in enumerate(self._items)
                if isinstance(i, dict) and isinstance(i.get("id"), str)
            }
        return self._index.get(repo_id)

    def index_of_folded(self, repo_id: str) -> int | None:
        """The index of the item whose id equals ``repo_id`` but for case."""
        if not self._folded:
            self._folded = {
                i["id"].lower(): n
                for n, i in enumerate(self._items)
                if isinstance(i, dict) and isinstance(i.get("id"), str)
            }
        return self._folded.get(repo_id.lower())

    def insert(self, item: Any) -> int:
        """Add an item in createdAt order; returns its index."""
        index = bisect.bisect_right([_created_key(i) for i in self._items], _created_key(item))
        self._items.insert(index, item)
        self._index.clear()
        self._folded.clear()
        return index

    def remove(self, repo_id: str) -> int | None:
        """Drop the item ``repo_id``; returns the index it had."""
        index = self.index_of(repo_id)
        if index is not None:
            del self._items[index]
            self._index.clear()
            self._folded.clear()
        return index


def _created_key(item: Any) -> str:
    created = item.get("createdAt") if isinstance(item, dict) else None
    return created if isinstance(created, str) else ""


@dataclass
class _Overlay:
    """What happened to one model since it was released."""

    fields: dict[str, Any] = field(default_factory=dict)
    likes: int = 0
    downloads: int = 0
    commits: list[dict[str, Any]] = field(default_factory=list)
    "Newest first, before the generated history."
    discussions: list[dict[str, Any]] = field(default_factory=list)
    discussion_events: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    "Per discussion number, its status-change events (the detail endpoint's ``events``)."


class HubWorld:
    def __init__(
        self,
        source: ModelSource,
        *,
        start: int = 0,
        rate: float = 0.0,
        activity_rate: float = 0.0,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.source = source
        self.released = min(start, len(source))
        self.rate = rate
        "Further releases per second."
        self.activity_rate = activity_rate
        "Likes, downloads, commits and discussions per second, spread over released models."
        self._clock = clock
        self._release_mark = clock()
        self._activity_mark = clock()
        self._rng = random.Random(seed)
        self._overlays: dict[str, _Overlay] = {}
        self._edited: dict[str, str] = {}
        "repo id -> lastModified of models edited in the replay."
        self.on_change = on_change
        "Called with (scope, payload) on discussion and content changes (webhooks)."
        self.released_at: dict[int, float] = {}
        "Wall-clock time each model was due, for those released by the clock."
        self._engaged: set[str] = set()
        self.restricted: dict[str, str] = {}
        "repo id -> ``deleted``, ``private`` or ``gated``: what its own endpoints refuse."
        self.renamed: dict[str, str] = {}
        "lower-cased old repo id -> the id it was renamed or transferred to."

    def __len__(self) -> int:
        return len(self.source)

    # -- time --

    def tick(self) -> None:
        now = self._clock()
        if self.rate > 0:
            due = math.floor((now - self._release_mark) * self.rate)
            if due > 0:
                lag = time.time() - now  # monotonic -> wall clock
                for k in range(due):
                    index = self.released + k
                    if index < len(self.source):
                        self.released_at[index] = self._release_mark + (k + 1) / self.rate + lag
                self.release(due)
                self._release_mark += due / self.rate
        if self.activity_rate > 0 and self.released:
            due = math.floor((now - self._activity_mark) * self.activity_rate)
            for _ in range(min(due, 10_000)):
                self._random_activity()
            if due > 0:
                self._activity_mark += due / self.activity_rate

    def release_from_now(self, rate: float) -> None:
        """Release ``rate`` models per second from now on (a soak's uploads start when its
        faults do, not when the world was built)."""
        self.tick()
        self.rate = rate
        self._release_mark = self._clock()

    def release(self, count: int) -> None:
        self.released = min(len(self.source), self.released + max(0, count))

    def add(self, item: Any) -> None:
        """List one more item (a fixture source only). One created before the newest
        released model is listed at once, as a late-listed upload would be."""
        insert = getattr(self.source, "insert", None)
        if insert is None:
            raise TypeError("this source is fixed")
        if insert(item) < self.released:
            self.released += 1

    def list_now(self, item: Any) -> None:
        """List one more item from now on, whatever its createdAt: an old one shows up inside
        the createdAt listing, as a repo created privately and made public late does (models
        due before a newer one are released with it)."""
        self.add(item)
        index = self.source.index_of(item["id"]) if isinstance(item, dict) else None
        if index is not None and index >= self.released:
            self.released = index + 1

    def delete(self, repo_id: str) -> None:
        """The repo is deleted (a fixture source only): gone from listings and its own
        endpoints, and what happened to it with it. Its name is free to be created again."""
        remove = getattr(self.source, "remove", None)
        if remove is None:
            raise TypeError("this source is fixed")
        index = remove(repo_id)
        if index is not None and index < self.released:
            self.released -= 1
        self._overlays.pop(repo_id, None)
        self._edited.pop(repo_id, None)
        self._engaged.discard(repo_id)

    def _random_activity(self) -> None:
        item = self.source.item(self._rng.randrange(self.released))
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            return
        repo_id = item["id"]
        roll = self._rng.random()
        if roll < 0.4:
            self.engage(repo_id, likes=self._rng.randint(1, 5))
        elif roll < 0.8:
            self.engage(repo_id, downloads=self._rng.randint(10, 1000))
        elif roll < 0.9:
            self.commit(repo_id, "Update README.md")
        else:
            self.discussion(repo_id, title="Question about the weights")

    # -- reading --

    def find(self, repo_id: str) -> int | None:
        index = self.source.index_of(repo_id)
        return index if index is not None and index < self.released else None

    def view(self, index: int) -> Any:
        """A released model as the API shows it now."""
        item = self.source.item(index)
        if not isinstance(item, dict):
            return item
        overlay = self._overlays.get(item.get("id"))  # type: ignore[arg-type]
        if overlay is None:
            return item
        shown = {**item, **overlay.fields}
        for key, extra in (("likes", overlay.likes), ("downloads", overlay.downloads)):
            if isinstance(shown.get(key), int) or shown.get(key) is None:
                shown[key] = (shown.get(key) or 0) + extra
        if overlay.downloads:
            # Only a count the model has: an all-time count made up from the overlay alone
            # would sit far below its 30-day count, and a consumer that falls back from one
            # to the other would read the switch as downloads lost.
            if isinstance(shown.get("downloadsAllTime"), int):
                shown["downloadsAllTime"] += overlay.downloads
            shown["trendingScore"] = (shown.get("trendingScore") or 0) + overlay.downloads // 100
        return shown

    def rename(self, old_id: str, new_id: str) -> None:
        """``old_id`` was renamed or transferred to ``new_id``: the Hub redirects the old
        name's endpoints to the new one (whatever the case of the old name asked)."""
        self.renamed[old_id.lower()] = new_id

    def moved_to(self, repo_id: str) -> str | None:
        """Where a renamed repo's old name points now (following later renames)."""
        target, hops = self.renamed.get(repo_id.lower()), 0
        while target is not None and target.lower() in self.renamed and hops < 10:
            target, hops = self.renamed[target.lower()], hops + 1
        return target

    def canonical(self, repo_id: str) -> str | None:
        """The id a released model is shown under when asked for as ``repo_id``: itself, or
        the one that differs in case only (the Hub resolves ids case-insensitively)."""
        if self.find(repo_id) is not None:
            return repo_id
        folded = getattr(self.source, "index_of_folded", None)
        index = folded(repo_id) if folded is not None else None
        if index is None or index >= self.released:
            return None
        item = self.source.item(index)
        return item["id"] if isinstance(item, dict) else None

    def released_views(self) -> Iterator[Any]:
        for i in range(self.released):
            yield self.view(i)

    def newest_first(self, before: int | None = None) -> Iterator[tuple[int, Any]]:
        start = self.released - 1 if before is None else min(before, self.released) - 1
        for i in range(start, -1, -1):
            yield i, self.view(i)

    def edited(self) -> dict[str, str]:
        return dict(self._edited)

    def engaged(self) -> set[str]:
        """Models whose counters moved in the replay (their trending rank may have too)."""
        return set(self._engaged)

    def commits(self, repo_id: str) -> list[dict[str, Any]]:
        index = self.find(repo_id)
        if index is None:
            return []
        item = self.source.item(index)
        overlay = self._overlays.get(repo_id)
        history = [] if overlay is None else list(overlay.commits)
        author = item.get("author") or repo_id.partition("/")[0]
        created, modified = item.get("createdAt"), item.get("lastModified")
        if isinstance(modified, str) and modified != created:
            history.append(
                {
                    "id": item.get("sha") or _sha(repo_id, modified),
                    "title": "Upload folder using huggingface_hub",
                    "message": "",
                    "authors": [{"user": author}],
                    "date": modified,
                }
            )
        only = not (isinstance(modified, str) and modified != created)
        sha = item.get("sha") if only and isinstance(item.get("sha"), str) else None
        history.append(
            {
                # A repo never changed since it was made shows that commit as its sha.
                "id": sha or _sha(repo_id, "initial"),
                "title": "initial commit",
                "message": "",
                "authors": [{"user": author}],
                "date": created,
            }
        )
        return history

    def discussions(self, repo_id: str) -> list[dict[str, Any]]:
        overlay = self._overlays.get(repo_id)
        return [] if overlay is None else sorted(overlay.discussions, key=lambda d: -d["num"])

    # -- changes --

    def _overlay(self, repo_id: str) -> _Overlay:
        if self.find(repo_id) is None:
            raise KeyError(f"no released model {repo_id!r}")
        return self._overlays.setdefault(repo_id, _Overlay())

    def engage(self, repo_id: str, *, likes: int = 0, downloads: int = 0) -> None:
        overlay = self._overlay(repo_id)
        overlay.likes += likes
        overlay.downloads += downloads
        self._engaged.add(repo_id)

    def edit(self, repo_id: str, fields: dict[str, Any]) -> str:
        """Change card/tag fields as a commit would; returns the new lastModified."""
        overlay = self._overlay(repo_id)
        modified = iso_now()
        sha = _sha(repo_id, modified, len(overlay.commits))
        overlay.fields.update(fields, lastModified=modified, sha=sha)
        overlay.commits.insert(
            0,
            {
                "id": sha,
                "title": "Update README.md",
                "message": "",
                "authors": [{"user": repo_id.partition("/")[0]}],
                "date": modified,
            },
        )
        self._edited[repo_id] = modified
        self._notify("repo.content", repo_id, {"headSha": sha})
        return modified

    def commit(self, repo_id: str, title: str) -> str:
        overlay = self._overlay(repo_id)
        now = iso_now()
        sha = _sha(repo_id, now, len(overlay.commits), title)
        overlay.commits.insert(
            0,
            {
                "id": sha,
                "title": title,
                "message": "",
                "authors": [{"user": repo_id.partition("/")[0]}],
                "date": now,
            },
        )
        overlay.fields.update(lastModified=now, sha=sha)
        self._edited[repo_id] = now
        self._notify("repo.content", repo_id, {"headSha": sha})
        return sha

    def discussion(
        self,
        repo_id: str,
        *,
        title: str = "",
        num: int | None = None,
        status: str = "open",
        is_pull_request: bool = False,
        at: float | None = None,
    ) -> dict[str, Any]:
        overlay = self._overlay(repo_id)
        when = iso(at if at is not None else time.time())
        existing = next((d for d in overlay.discussions if d["num"] == num), None)
        if existing is not None:
            if existing["status"] != status:
                overlay.discussion_events.setdefault(existing["num"], []).append(
                    {"type": "status-change", "createdAt": when, "data": {"status": status}}
                )
            existing["status"] = status
            discussion = existing
        else:
            discussion = {
                "num": num or len(overlay.discussions) + 1,
                "title": title,
                "status": status,
                "isPullRequest": is_pull_request,
                "createdAt": when,
                "author": {"name": "someuser"},
                "repo": {"name": repo_id, "type": "model"},
            }
            overlay.discussions.append(discussion)
        self._notify("discussion", repo_id, {"discussion": dict(discussion)})
        return discussion

    def discussion_detail(self, repo_id: str, num: int) -> dict[str, Any] | None:
        """``/discussions/{num}``: the listed fields and the status-change ``events``."""
        overlay = self._overlays.get(repo_id)
        found = next((d for d in overlay.discussions if d["num"] == num), None) if overlay else None
        if overlay is None or found is None:
            return None
        return {**found, "events": list(overlay.discussion_events.get(num, []))}

    def restrict(self, repo_id: str, why: str) -> None:
        """Make a model's own endpoints (info, commits, discussions) refuse requests as the
        Hub does for a ``deleted``, ``private`` or ``gated`` repo; listings keep it."""
        if why not in RESTRICTIONS:
            raise ValueError(f"why must be one of {', '.join(RESTRICTIONS)}")
        self.restricted[repo_id] = why

    def _notify(self, scope: str, repo_id: str, payload: dict[str, Any]) -> None:
        if self.on_change is not None:
            self.on_change(scope, {"repo": repo_id, **payload})


@dataclass
class _Repo:
    info: dict[str, Any]
    commits: list[dict[str, Any]] = field(default_factory=list)
    "Newest first."
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    releases: list[dict[str, Any]] = field(default_factory=list)


class GithubWorld:
    """GitHub repos with a seeded history, changed by hand or by the activity clock."""

    def __init__(
        self,
        *,
        seed: int = 0,
        activity_rate: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repos: dict[str, _Repo] = {}
        self._rng = random.Random(seed)
        self.activity_rate = activity_rate
        self._clock = clock
        self._mark = clock()
        self._ids = 1000

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def add_repo(self, name: str, *, history: int = 3) -> None:
        if name in self.repos:
            return
        owner = name.partition("/")[0]
        repo = _Repo(
            info={
                "id": self._next_id(),
                "full_name": name,
                "name": name.split("/")[1],
                "owner": {"login": owner},
                "stargazers_count": 10,
                "forks_count": 2,
                "open_issues_count": 0,
                "pushed_at": github_iso(time.time()),
                "default_branch": "main",
            }
        )
        self.repos[name] = repo
        base = time.time() - 86_400
        for i in range(history):
            self.commit(name, f"change {i}", at=base + i * 3600)
        self.issue(name, "First bug", at=base + 100)
        self.issue(name, "Add a feature", pull_request=True, at=base + 200)
        self.release(name, "v0.1.0", at=base + 300)

    def tick(self) -> None:
        if self.activity_rate <= 0 or not self.repos:
            return
        now = self._clock()
        due = math.floor((now - self._mark) * self.activity_rate)
        for _ in range(min(due, 10_000)):
            name = self._rng.choice(sorted(self.repos))
            roll = self._rng.random()
            if roll < 0.4:
                self.star(name, 1)
            elif roll < 0.7:
                self.commit(name, "Fix a typo")
            elif roll < 0.9:
                self.issue(name, "Something broke")
            else:
                self.release(name, f"v0.{self._next_id()}.0")
        if due > 0:
            self._mark += due / self.activity_rate

    def commit(self, name: str, message: str, *, at: float | None = None) -> str:
        repo = self.repos[name]
        when = github_iso(at if at is not None else time.time())
        sha = _sha(name, when, len(repo.commits), message)
        owner = name.partition("/")[0]
        repo.commits.insert(
            0,
            {
                "sha": sha,
                "node_id": "",
                "html_url": f"https://github.com/{name}/commit/{sha}",
                "commit": {
                    "author": {"name": owner, "email": "", "date": when},
                    "committer": {"name": owner, "email": "", "date": when},
                    "message": message,
                    "comment_count": 0,
                },
                "author": {"login": owner, "id": 1},
                "committer": {"login": owner, "id": 1},
                "parents": [{"sha": repo.commits[0]["sha"]}] if repo.commits else [],
            },
        )
        repo.info["pushed_at"] = when
        return sha

    def issue(
        self,
        name: str,
        title: str,
        *,
        number: int | None = None,
        state: str = "open",
        pull_request: bool = False,
        merged: bool = False,
        labels: Sequence[str] | None = None,
        at: float | None = None,
    ) -> dict[str, Any]:
        """Open an issue (or PR), or with the ``number`` of one, change its state (and
        ``labels``, when given)."""
        repo = self.repos[name]
        when = github_iso(at if at is not None else time.time())
        shown_labels = [
            {"id": self._next_id(), "name": label, "color": "ededed", "default": False}
            for label in labels or ()
        ]
        if number is not None and number in repo.issues:
            issue = repo.issues[number]
            if issue["state"] != state:  # as GitHub: a reopen clears closed_at
                issue["state_reason"] = (
                    "reopened" if state == "open" else None if merged else "completed"
                )
                issue["closed_at"] = when if state == "closed" else None
                if merged and "pull_request" in issue:
                    issue["pull_request"]["merged_at"] = when
            issue.update(state=state, updated_at=when)
            if labels is not None:
                issue["labels"] = shown_labels
        else:
            number = max(repo.issues, default=0) + 1
            issue = {
                "id": self._next_id(),
                "number": number,
                "title": title,
                "state": state,
                "user": {"login": "someuser", "id": 2},
                "labels": shown_labels,
                "comments": 0,
                "created_at": when,
                "updated_at": when,
                "closed_at": None,
                "state_reason": None,
                "author_association": "NONE",
            }
            if pull_request:
                issue["pull_request"] = {
                    "url": f"https://api.github.com/repos/{name}/pulls/{number}",
                    "merged_at": None,
                }
            repo.issues[number] = issue
        repo.info["open_issues_count"] = sum(
            1 for i in repo.issues.values() if i["state"] == "open"
        )
        return issue

    def release(self, name: str, tag: str, *, at: float | None = None) -> None:
        repo = self.repos[name]
        when = github_iso(at if at is not None else time.time())
        repo.releases.insert(
            0,
            {
                "id": self._next_id(),
                "tag_name": tag,
                "name": tag,
                "draft": False,
                "prerelease": False,
                "created_at": when,
                "published_at": when,
            },
        )

    def star(self, name: str, count: int) -> None:
        self.repos[name].info["stargazers_count"] += count
