"""What the producers know between polls: tracked models, their schedules, commit heads,
discussion statuses, GitHub ETags and watermarks. One SQLite file under the state dir.

Pollers publish, flush the publisher, and only then record what they did in one
:meth:`StateStore.transaction` (with no ``await`` inside, so pollers sharing the store never
interleave in it). A crash (even kill -9) leaves a state whose events are all published: a
restart re-emits at most what the event ids deduplicate, and skips nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from producers.state_kept import TIER, keep

__all__ = [
    "WRITE_BATCH",
    "WRITE_SLICE",
    "FollowedRepo",
    "RejectedSet",
    "StateStore",
    "TrackedModel",
]

T = TypeVar("T")

WRITE_BATCH = 100
"""Writes per transaction in :meth:`StateStore.write_in_batches`: some 10-30 ms of SQLite at
a year's store (bench/bench_state.py), after which the event loop serves the other pollers."""
WRITE_SLICE = 0.03
"""...and seconds of them at most: at a million models on a busy machine one write can take
a millisecond (bench/bench_state.py)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    repo_id TEXT PRIMARY KEY,
    author TEXT,
    created_at REAL,                -- unix seconds; NULL when the Hub has no date
    fingerprint TEXT,               -- of the fields whose change is an edit event
    downloads INTEGER,
    likes INTEGER,
    velocity REAL DEFAULT 0,        -- downloads+likes per hour at the last snapshot
    last_snapshot REAL,
    next_snapshot REAL NOT NULL,
    community INTEGER DEFAULT 0,    -- 1: poll its commits and discussions
    next_community REAL DEFAULT 0,
    commit_head TEXT
);
CREATE INDEX IF NOT EXISTS models_next_snapshot ON models (next_snapshot);
CREATE INDEX IF NOT EXISTS models_next_community ON models (community, next_community);
CREATE TABLE IF NOT EXISTS families (base_model TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS model_bases (   -- so a family can adopt children seen before it
    repo_id TEXT, base_model TEXT, PRIMARY KEY (base_model, repo_id));
CREATE TABLE IF NOT EXISTS discussions (
    repo_id TEXT, num INTEGER, status TEXT, PRIMARY KEY (repo_id, num));
CREATE TABLE IF NOT EXISTS github_repos (repo TEXT PRIMARY KEY, source TEXT);
CREATE TABLE IF NOT EXISTS github_links (   -- which model cards link a followed repo
    repo TEXT, model TEXT, PRIMARY KEY (repo, model));
CREATE TABLE IF NOT EXISTS rejected (
    stage TEXT, fingerprint TEXT, PRIMARY KEY (stage, fingerprint));
CREATE TABLE IF NOT EXISTS etags (url TEXT PRIMARY KEY, etag TEXT);
CREATE TABLE IF NOT EXISTS marks (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS heard (         -- repos named by a webhook before any listing
    repo_id TEXT PRIMARY KEY, stream TEXT, at REAL);
CREATE INDEX IF NOT EXISTS heard_at ON heard (at);  -- the sweep's oldest first, not a sort
CREATE TABLE IF NOT EXISTS aliases (       -- base ids resolved: one Hub request each, ever
    alias_id TEXT PRIMARY KEY,
    canonical_id TEXT,                     -- '' when the Hub does not show it (gone)
    resolved_by TEXT,                      -- exact, redirect, case or gone
    at REAL);
CREATE INDEX IF NOT EXISTS aliases_canonical_nocase ON aliases (canonical_id COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS models_repo_nocase ON models (repo_id COLLATE NOCASE);
"""


_ADDED_COLUMNS = (  # added later: stores made before lack them
    ("tier", "TEXT DEFAULT 'new'"),  # its snapshot tier (producers.snapshot_plan.TIERS)
    ("tracked_at", "REAL"),  # when tracking began: a model never snapshotted is due from it
    ("bulk_at", "REAL"),  # last seen in a bulk list call, which will likely see it again
    ("value", "REAL DEFAULT 1"),  # what its next snapshot is worth (tracking.snapshot_value)
    ("base_popularity", "REAL DEFAULT 0"),  # likes + downloads/1,000 of its best-known base
    ("anchor_at", "REAL"),  # where its velocity's window starts (tracking.Tracker.record)
    ("anchor_downloads", "INTEGER"),
    ("anchor_likes", "INTEGER"),
)

OLDEST_SHARE = 0.25
"""Share of each round's due snapshots served oldest-due first whatever their value: the
rest go by priority, and this part guarantees that no due model waits for ever."""

_MODEL = (
    "SELECT repo_id, created_at, downloads, likes, velocity, last_snapshot, next_snapshot,"
    " community, tier, base_popularity, coalesce(anchor_at, last_snapshot, tracked_at),"
    " CASE WHEN anchor_at IS NULL THEN downloads ELSE anchor_downloads END,"
    " CASE WHEN anchor_at IS NULL THEN likes ELSE anchor_likes END FROM models"
)


@dataclass(frozen=True, slots=True)
class TrackedModel:
    repo_id: str
    created_at: float | None
    downloads: int | None
    likes: int | None
    velocity: float
    last_snapshot: float | None
    next_snapshot: float = 0.0
    followed: bool = False
    "Its commits and discussions are polled: watched family or org, or enough likes."
    tier: str = "new"
    base_popularity: float = 0.0
    "likes + downloads/1,000 of its most popular base when it was first tracked."
    anchor: tuple[float, int | None, int | None] | None = None
    """(at, downloads, likes) where its velocity's window starts: the last snapshot that
    closed a window, else its last snapshot, else when tracking began."""


@dataclass(frozen=True, slots=True)
class FollowedRepo:
    repo: str
    configured: bool
    "Named in HUBWATCH_GITHUB_REPOS (else only linked from model cards)."
    likes: int
    downloads: int
    "Summed over the tracked models whose cards link it."
    followed_at: float
    last_polled: float | None


class StateStore:
    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """``read_only``: a connection for :meth:`read_off_loop` (the store exists)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are ours (BEGIN IMMEDIATE ... COMMIT).
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._path = path
        self._depth = 0
        self._claims: dict[str, str] = {}
        "repo id -> the stream about to report it as first seen (in flight, this process)."
        self._reader: StateStore | None = None
        self._reader_lock = threading.Lock()
        if read_only:
            self._db.execute("PRAGMA query_only = ON")
            return
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(models)")}
        if "gone_strikes" not in columns:  # added later: stores made before lack it
            # Answers in a row saying the repo is gone (404, or 401 when deleted, private or
            # gated): each one puts its next check further off.
            self._db.execute("ALTER TABLE models ADD COLUMN gone_strikes INTEGER DEFAULT 0")
        for column, kind in _ADDED_COLUMNS:
            if column not in columns:
                self._db.execute(f"ALTER TABLE models ADD COLUMN {column} {kind}")
        # Replaced by models_live_tier_since, which leaves gone models out.
        self._db.execute("DROP INDEX IF EXISTS models_tier_since")
        keep(self._db)  # tier counts and pending bases (producers.state_kept)
        self._upgrade_github()

    def _upgrade_github(self) -> None:
        """Stores made before the GitHub budget: repos get when they were followed and last
        polled, card links get their own table, and ETags keyed by URL *and* query (a new
        key whenever ``since`` moved, so one more row a day per repo and list) are dropped;
        keys are now one per repo and endpoint."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(github_repos)")}
        if "followed_at" not in columns:
            self._db.execute("ALTER TABLE github_repos ADD COLUMN followed_at REAL")
            self._db.execute("ALTER TABLE github_repos ADD COLUMN last_polled REAL")
            self._db.execute(
                "UPDATE github_repos SET followed_at = ? WHERE followed_at IS NULL", (time.time(),)
            )
            self._db.execute(
                "INSERT OR IGNORE INTO github_links SELECT repo, substr(source, 6)"
                " FROM github_repos WHERE source LIKE 'card:%'"
            )
        if "gone_at" not in columns:  # added later: repos that answered 404, no longer polled
            self._db.execute("ALTER TABLE github_repos ADD COLUMN gone_at REAL")
        self._db.execute("DELETE FROM etags WHERE url LIKE '%?%'")

    def close(self) -> None:
        # A cancelled read_off_loop still runs in its thread: wait for it, not under it.
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        self._db.close()

    async def read_off_loop(self, read: Callable[[StateStore], T]) -> T:
        """``read(store)`` in a worker thread, on a read-only connection of its own, so a
        read that grows with the store (the due models of a round with a backlog) does not
        hold the event loop. It sees what is committed, which is what this connection sees
        between transactions (no transaction stays open across an ``await``)."""

        def run() -> T:
            with self._reader_lock:  # one connection, one reader at a time
                if self._reader is None:
                    self._reader = StateStore(self._path, read_only=True)
                return read(self._reader)

        return await asyncio.to_thread(run)

    async def write_in_batches(
        self, writes: Sequence[Callable[[], None]], *, size: int | None = None
    ) -> None:
        """Run ``writes``, ``size`` (:data:`WRITE_BATCH`) or :data:`WRITE_SLICE` seconds'
        worth to a transaction, yielding to the event loop between transactions: a round's
        thousands of writes in one would hold it for seconds at a year's store. Each write
        is whole in one transaction; a crash between them leaves the rest undone, as a round
        that failed part-way (what they record is published already: the models are simply
        due again)."""
        if self._depth:
            raise RuntimeError("write_in_batches inside a transaction would yield within it")
        size = size or WRITE_BATCH
        done = 0
        while done < len(writes):
            until = time.monotonic() + WRITE_SLICE
            with self.transaction():
                for write in writes[done : done + size]:
                    write()
                    done += 1
                    if time.monotonic() >= until:
                        break
            # The loop runs while the batch's pages are copied from the WAL into the store
            # off it, so SQLite's own checkpoint (at 1,000 WAL pages, with its fsync, in
            # whichever COMMIT crosses them, on the loop) seldom comes due.
            await self.read_off_loop(_checkpoint)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing; nests (only the outermost block commits)."""
        if self._depth == 0:
            self._db.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("ROLLBACK")
            raise
        self._depth -= 1
        if self._depth == 0:
            self._db.execute("COMMIT")

    # -- tracked models --

    def track(
        self,
        repo_id: str,
        *,
        author: str | None,
        created_at: float | None,
        fingerprint: str,
        downloads: int | None,
        likes: int | None,
        next_snapshot: float,
        community: bool,
        base_models: tuple[str, ...] = (),
        tracked_at: float | None = None,
        tier: str = "new",
        value: float = 1.0,
        base_popularity: float = 0.0,
    ) -> None:
        """Start tracking a model. Streams see a model in any order (an edit can arrive
        before its upload), so a repeat only fills what is missing and can turn community
        polling on, never off. A repo re-created under the same name (another createdAt)
        is a new model: what was known of the old one is dropped and it is tracked anew."""
        if self._recreated(repo_id, created_at):
            for table in ("models", "model_bases", "discussions"):
                self._db.execute(f"DELETE FROM {table} WHERE repo_id = ?", (repo_id,))
        self._db.execute(
            "INSERT INTO models (repo_id, author, created_at, fingerprint, downloads,"
            " likes, next_snapshot, community, tier, tracked_at, value, base_popularity)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (repo_id) DO UPDATE SET"
            " author = coalesce(author, excluded.author),"
            " created_at = coalesce(created_at, excluded.created_at),"
            " community = max(community, excluded.community)",
            (
                repo_id,
                author,
                created_at,
                fingerprint,
                downloads,
                likes,
                next_snapshot,
                int(community),
                tier,
                tracked_at,
                value,
                base_popularity,
            ),
        )
        self.add_bases(repo_id, base_models)

    def base_popularity(self, base_models: Iterable[str]) -> float:
        """likes + downloads/1,000 of the most popular tracked model among ``base_models``
        (a like is worth about a thousand monthly downloads on the Hub); 0 if none is."""
        bases = list(base_models)
        if not bases:
            return 0.0
        marks = ",".join("?" * len(bases))
        row = self._db.execute(
            "SELECT max(coalesce(likes, 0) + coalesce(downloads, 0) / 1000.0) FROM models"
            f" WHERE repo_id IN ({marks})",
            bases,
        ).fetchone()
        return float(row[0] or 0.0)

    def add_bases(self, repo_id: str, base_models: Iterable[str]) -> None:
        """Bases ``repo_id`` names (at first sight, or after an edit): for families to adopt
        it, and for the aliases stream to resolve."""
        self._db.executemany(
            "INSERT OR IGNORE INTO model_bases VALUES (?, ?)",
            [(repo_id, base) for base in base_models],
        )

    # -- first sight: which stream reports a repo as first seen --

    def seen(self, repo_id: str, created_at: float | None = None) -> bool:
        """Whether ``repo_id`` is tracked as the repo created at ``created_at`` (either
        unknown counts as the same): a repo deleted and re-created under the same name is
        not seen."""
        row = self._db.execute("SELECT 1 FROM models WHERE repo_id = ?", (repo_id,)).fetchone()
        return row is not None and not self._recreated(repo_id, created_at)

    def _recreated(self, repo_id: str, created_at: float | None) -> bool:
        """A tracked ``repo_id`` whose createdAt is known and not ``created_at``."""
        if created_at is None:
            return False
        row = self._db.execute(
            "SELECT created_at FROM models WHERE repo_id = ?", (repo_id,)
        ).fetchone()
        return row is not None and row[0] is not None and row[0] != created_at

    def claim_first_sight(self, repo_id: str, stream: str, created_at: float | None = None) -> bool:
        """Whether ``stream`` is to report ``repo_id`` (created at ``created_at``) as first
        seen: no stream has tracked it yet (or only a repo of that name created at another
        time) and no other has it in flight. A claim lasts until the stream's next round
        (:meth:`release_claims`); by then it is tracked, or its round failed and any stream
        may claim the repo again."""
        if self.seen(repo_id, created_at):
            return False
        return self._claims.setdefault(repo_id, stream) == stream

    def in_flight(self, repo_id: str, stream: str) -> bool:
        """Whether a stream other than ``stream`` has claimed ``repo_id`` this round."""
        return self._claims.get(repo_id, stream) != stream

    def release_claims(self, stream: str) -> None:
        self._claims = {r: s for r, s in self._claims.items() if s != stream}

    def hear_of(self, repo_id: str, stream: str, at: float) -> bool:
        """Note a repo named by ``stream`` (a webhook) that no listing has shown yet, for the
        reconciliation sweep to look up; False if it is tracked already."""
        if self.get(repo_id) is not None:
            return False
        self._db.execute("INSERT OR IGNORE INTO heard VALUES (?, ?, ?)", (repo_id, stream, at))
        return True

    def heard(self, limit: int) -> list[tuple[str, str]]:
        """(repo id, stream that named it) of repos heard of and not yet tracked."""
        rows = self._db.execute("SELECT repo_id, stream FROM heard ORDER BY at LIMIT ?", (limit,))
        return [(row[0], row[1]) for row in rows]

    def forget_heard(self, repo_id: str) -> None:
        self._db.execute("DELETE FROM heard WHERE repo_id = ?", (repo_id,))

    def fingerprint(self, repo_id: str) -> str | None:
        row = self._db.execute(
            "SELECT fingerprint FROM models WHERE repo_id = ?", (repo_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_fingerprint(self, repo_id: str, fingerprint: str) -> None:
        self._db.execute(
            "UPDATE models SET fingerprint = ? WHERE repo_id = ?", (fingerprint, repo_id)
        )

    def due_snapshots(self, now: float, limit: int) -> list[TrackedModel]:
        """Up to ``limit`` models due a snapshot, most urgent first. A share
        (:data:`OLDEST_SHARE`) goes to those due longest, so none waits for ever; the rest
        by priority: the model's value times how many of its intervals it has waited
        (``(now - last snapshot) / (next - last snapshot)``, at least 1 once due), so a
        valuable model goes first and a waiting one climbs until it is served."""
        if limit <= 0:
            return []
        oldest = max(1, math.ceil(limit * OLDEST_SHARE))
        rows = self._db.execute(
            f"{_MODEL} WHERE next_snapshot <= ? ORDER BY next_snapshot LIMIT ?", (now, oldest)
        ).fetchall()
        taken = {row[0] for row in rows}
        since = "coalesce(last_snapshot, tracked_at, next_snapshot)"
        for row in self._db.execute(
            f"{_MODEL} WHERE next_snapshot <= ?"
            f" ORDER BY coalesce(value, 1) * (? - {since}) / max(1.0, next_snapshot - {since})"
            " DESC, next_snapshot LIMIT ?",
            (now, now, limit),
        ):
            if len(rows) >= limit:
                break
            if row[0] not in taken:
                rows.append(row)
        return [_tracked(row) for row in rows]

    def get(self, repo_id: str) -> TrackedModel | None:
        row = self._db.execute(f"{_MODEL} WHERE repo_id = ?", (repo_id,)).fetchone()
        return None if row is None else _tracked(row)

    def record_snapshot(
        self,
        repo_id: str,
        *,
        at: float,
        downloads: int | None,
        likes: int | None,
        velocity: float,
        next_snapshot: float,
        tier: str | None = None,
        bulk: bool = False,
        value: float | None = None,
        anchor: tuple[float, int | None, int | None] | None = None,
    ) -> None:
        """``anchor``: where the velocity's window now starts (None: this snapshot)."""
        anchor_at, anchor_downloads, anchor_likes = anchor or (at, downloads, likes)
        self._db.execute(
            "UPDATE models SET downloads = ?, likes = ?, velocity = ?, last_snapshot = ?,"
            " next_snapshot = ?, gone_strikes = 0, tier = coalesce(?, tier),"
            " bulk_at = CASE WHEN ? THEN ? ELSE bulk_at END, value = coalesce(?, value),"
            " anchor_at = ?, anchor_downloads = ?, anchor_likes = ? WHERE repo_id = ?",
            (
                downloads,
                likes,
                velocity,
                at,
                next_snapshot,
                tier,
                bulk,
                at,
                value,
                anchor_at,
                anchor_downloads,
                anchor_likes,
                repo_id,
            ),
        )

    def tier_counts(self, *, bulk_since: float) -> dict[str, int]:
        """Models per snapshot tier that per-model calls must reach: not gone, and not seen
        by a bulk list call since ``bulk_since`` (those the bulk calls keep covering)."""
        counts = {str(tier): int(n) for tier, n in self._db.execute("SELECT * FROM tier_counts")}
        # The kept counts less the live models a bulk call saw since: only those are read.
        for tier, n in self._db.execute(
            f"SELECT {TIER}, count(*) FROM models INDEXED BY models_live_bulk_at"
            f" WHERE gone_strikes = 0 AND bulk_at >= ? GROUP BY {TIER}",
            (bulk_since,),
        ):
            counts[str(tier)] -= int(n)
        return {tier: n for tier, n in counts.items() if n > 0}

    def overdue(self, tier: str, promise: float, now: float) -> tuple[int, float]:
        """Models of ``tier`` not snapshotted within ``promise`` seconds (since tracking
        began, if never), and by how many seconds the longest-waiting one is late."""
        count, oldest = self._db.execute(
            "SELECT count(*), min(coalesce(last_snapshot, tracked_at)) FROM models"
            " INDEXED BY models_live_tier_since WHERE tier = ?"
            " AND coalesce(last_snapshot, tracked_at) < ? AND gone_strikes = 0",
            (tier, now - promise),
        ).fetchone()
        return int(count), 0.0 if oldest is None else now - promise - float(oldest)

    def strike_gone(self, repo_id: str) -> int:
        """One more answer in a row saying ``repo_id`` is gone; returns how many."""
        self._db.execute(
            "UPDATE models SET gone_strikes = gone_strikes + 1 WHERE repo_id = ?", (repo_id,)
        )
        row = self._db.execute(
            "SELECT gone_strikes FROM models WHERE repo_id = ?", (repo_id,)
        ).fetchone()
        return 1 if row is None else int(row[0])

    def clear_gone(self, repo_id: str) -> None:
        self._db.execute("UPDATE models SET gone_strikes = 0 WHERE repo_id = ?", (repo_id,))

    def schedule_snapshot(self, repo_id: str, at: float) -> None:
        self._db.execute("UPDATE models SET next_snapshot = ? WHERE repo_id = ?", (at, repo_id))

    def set_community(self, repo_id: str, community: bool) -> None:
        self._db.execute(
            "UPDATE models SET community = ? WHERE repo_id = ?", (int(community), repo_id)
        )

    def due_community(self, now: float, limit: int) -> list[str]:
        rows = self._db.execute(
            "SELECT repo_id FROM models WHERE community = 1 AND next_community <= ?"
            " ORDER BY next_community LIMIT ?",
            (now, limit),
        )
        return [row[0] for row in rows]

    def schedule_community(self, repo_id: str, at: float) -> None:
        self._db.execute("UPDATE models SET next_community = ? WHERE repo_id = ?", (at, repo_id))

    def commit_head(self, repo_id: str) -> str | None:
        row = self._db.execute(
            "SELECT commit_head FROM models WHERE repo_id = ?", (repo_id,)
        ).fetchone()
        return None if row is None else row[0]

    def set_commit_head(self, repo_id: str, commit_id: str) -> None:
        self._db.execute(
            "UPDATE models SET commit_head = ? WHERE repo_id = ?", (commit_id, repo_id)
        )

    # -- families of watched base models --

    def add_family(self, base_model: str) -> None:
        """Watch a base model's family: it and every known descendant (children can be seen
        before their parent) get their commits and discussions polled from now on."""
        pending = [base_model]
        while pending:
            model = pending.pop()
            if self._db.execute("INSERT OR IGNORE INTO families VALUES (?)", (model,)).rowcount:
                self._db.execute("UPDATE models SET community = 1 WHERE repo_id = ?", (model,))
                pending += [
                    row[0]
                    for row in self._db.execute(
                        "SELECT repo_id FROM model_bases WHERE base_model = ?", (model,)
                    )
                ]

    def in_family(self, base_models: tuple[str, ...]) -> bool:
        if not base_models:
            return False
        marks = ",".join("?" * len(base_models))
        row = self._db.execute(
            f"SELECT 1 FROM families WHERE base_model IN ({marks}) LIMIT 1", base_models
        ).fetchone()
        return row is not None

    # -- canonical ids of the bases models name (producers/hub_aliases.py) --

    def unresolved_bases(self, limit: int) -> list[str]:
        """Base ids tracked models name that are neither tracked nor resolved yet."""
        rows = self._db.execute(
            "SELECT base_model FROM pending_bases ORDER BY base_model LIMIT ?", (limit,)
        )
        return [row[0] for row in rows]

    def known_casing(self, repo_id: str) -> str | None:
        """A known id (tracked, or the Hub's answer for some name) equal to ``repo_id`` but
        for case, itself first (Hub ids are ASCII; SQLite's NOCASE folds ASCII)."""
        row = self._db.execute(
            "SELECT id FROM (SELECT repo_id AS id FROM models WHERE repo_id = ? COLLATE NOCASE"
            " UNION ALL SELECT canonical_id FROM aliases WHERE canonical_id = ? COLLATE NOCASE)"
            " ORDER BY id != ? LIMIT 1",
            (repo_id, repo_id, repo_id),
        ).fetchone()
        return None if row is None else str(row[0])

    def resolve_alias(self, alias_id: str, canonical_id: str, resolved_by: str, at: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO aliases VALUES (?, ?, ?, ?)",
            (alias_id, canonical_id, resolved_by, at),
        )

    def alias(self, alias_id: str) -> tuple[str, str] | None:
        """(canonical id, how it was resolved) of a base id resolved before."""
        row = self._db.execute(
            "SELECT canonical_id, resolved_by FROM aliases WHERE alias_id = ?", (alias_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    # -- GitHub repos to follow --

    def add_github_repo(self, repo: str, source: str, *, at: float | None = None) -> None:
        """Follow ``repo``; ``source`` is ``config`` or ``card:<model id>`` (the model whose
        card links it, which lends the repo its likes and downloads). Config wins."""
        self._db.execute(
            "INSERT INTO github_repos (repo, source, followed_at) VALUES (?, ?, ?)"
            " ON CONFLICT (repo) DO UPDATE SET source = 'config' WHERE excluded.source = 'config'",
            (repo, source, time.time() if at is None else at),
        )
        if source.startswith("card:"):
            self._db.execute(
                "INSERT OR IGNORE INTO github_links VALUES (?, ?)", (repo, source[len("card:") :])
            )

    def configure_github_repos(self, repos: Iterable[str], *, at: float | None = None) -> None:
        """Make ``repos`` the configured set: one dropped from the configuration stays
        followed if a card links it, and is forgotten (marks, ETags) otherwise."""
        wanted = set(repos)
        for (repo,) in self._db.execute(
            "SELECT repo FROM github_repos WHERE source = 'config'"
        ).fetchall():
            if repo in wanted:
                continue
            if self._db.execute("SELECT 1 FROM github_links WHERE repo = ?", (repo,)).fetchone():
                self._db.execute("UPDATE github_repos SET source = 'card' WHERE repo = ?", (repo,))
            else:
                self.forget_github_repo(repo)
        for repo in sorted(wanted):
            self.add_github_repo(repo, "config", at=at)
        # A configured repo that was gone is asked once more at each start (it was named on
        # purpose); one only linked from cards stays dropped.
        self._db.executemany(
            "UPDATE github_repos SET gone_at = NULL WHERE repo = ?", [(r,) for r in wanted]
        )

    def forget_github_repo(self, repo: str) -> None:
        self._db.execute("DELETE FROM github_repos WHERE repo = ?", (repo,))
        self._db.execute("DELETE FROM github_links WHERE repo = ?", (repo,))
        self._forget_github_progress(repo)

    def drop_github_repo(self, repo: str, at: float) -> None:
        """``repo`` is gone (GitHub answered 404 for it): no longer followed, its marks and
        ETags forgotten; the row stays so a card linking it again does not revive it."""
        self._db.execute("UPDATE github_repos SET gone_at = ? WHERE repo = ?", (at, repo))
        self._forget_github_progress(repo)

    def _forget_github_progress(self, repo: str) -> None:
        self._db.execute(
            "DELETE FROM etags WHERE url = ? OR url LIKE ?", (f"/repos/{repo}", f"/repos/{repo}/%")
        )
        self._db.execute(
            "DELETE FROM marks WHERE name IN (?, ?, ?)",
            tuple(f"github.{what}.{repo}" for what in ("commits", "issues", "releases")),
        )

    def github_repos(self) -> list[str]:
        """Followed repos (not gone)."""
        return [
            row[0]
            for row in self._db.execute(
                "SELECT repo FROM github_repos WHERE gone_at IS NULL ORDER BY repo"
            )
        ]

    def followed_github_repos(self) -> list[FollowedRepo]:
        rows = self._db.execute(
            "SELECT g.repo, g.source = 'config', coalesce(sum(m.likes), 0),"
            " coalesce(sum(m.downloads), 0), g.followed_at, g.last_polled"
            " FROM github_repos g LEFT JOIN github_links l ON l.repo = g.repo"
            " LEFT JOIN models m ON m.repo_id = l.model WHERE g.gone_at IS NULL"
            " GROUP BY g.repo ORDER BY g.repo"
        )
        return [
            FollowedRepo(repo, bool(configured), int(likes), int(downloads), float(at or 0), last)
            for repo, configured, likes, downloads, at, last in rows
        ]

    def set_github_polled(self, repo: str, at: float) -> None:
        self._db.execute("UPDATE github_repos SET last_polled = ? WHERE repo = ?", (at, repo))

    # -- dead-lettered input, reported once --

    def rejected(self, stage: str) -> RejectedSet:
        return RejectedSet(self, stage)

    # -- discussions, ETags, marks --

    def discussion_status(self, repo_id: str, num: int) -> str | None:
        row = self._db.execute(
            "SELECT status FROM discussions WHERE repo_id = ? AND num = ?", (repo_id, num)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_discussion_status(self, repo_id: str, num: int, status: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO discussions VALUES (?, ?, ?)", (repo_id, num, status)
        )

    def etag(self, url: str) -> str | None:
        row = self._db.execute("SELECT etag FROM etags WHERE url = ?", (url,)).fetchone()
        return None if row is None else str(row[0])

    def set_etag(self, url: str, etag: str | None) -> None:
        """None forgets it (the next request is unconditional)."""
        if etag is None:
            self._db.execute("DELETE FROM etags WHERE url = ?", (url,))
        else:
            self._db.execute("INSERT OR REPLACE INTO etags VALUES (?, ?)", (url, etag))

    def etag_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM etags").fetchone()[0])

    def mark(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM marks WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_mark(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?)", (name, value))


def _checkpoint(store: StateStore) -> None:
    store._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _tracked(row: tuple[object, ...]) -> TrackedModel:
    repo_id, created, downloads, likes, velocity, last, next_at, community, tier, base = row[:10]
    anchor_at, anchor_downloads, anchor_likes = row[10:]
    return TrackedModel(
        str(repo_id),
        created,  # type: ignore[arg-type]
        downloads,  # type: ignore[arg-type]
        likes,  # type: ignore[arg-type]
        float(velocity or 0.0),  # type: ignore[arg-type]
        last,  # type: ignore[arg-type]
        float(next_at),  # type: ignore[arg-type]
        bool(community),
        str(tier or "new"),
        float(base or 0.0),  # type: ignore[arg-type]
        None if anchor_at is None else (float(anchor_at), anchor_downloads, anchor_likes),  # type: ignore[arg-type]
    )


class RejectedSet:
    """Fingerprints of input one stage already dead-lettered (``in`` and ``add``)."""

    def __init__(self, store: StateStore, stage: str) -> None:
        self._db = store._db
        self._stage = stage

    def __contains__(self, fingerprint: object) -> bool:
        return (
            self._db.execute(
                "SELECT 1 FROM rejected WHERE stage = ? AND fingerprint = ?",
                (self._stage, fingerprint),
            ).fetchone()
            is not None
        )

    def add(self, fingerprint: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO rejected VALUES (?, ?)", (self._stage, fingerprint))
