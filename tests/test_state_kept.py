"""What the state store keeps by triggers (producers/state_kept.py), the tier counts and the
base ids still to resolve: equal to a plain reading of its rows after any mix of tracking,
tier moves, gone strikes, re-creations and resolved aliases, across reopening and a crash in
the middle of a write, and read without visiting every tracked model."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from producers.snapshot_plan import TIERS
from producers.state import StateStore

NOW = 1_800_000_000.0
BULK_SINCE = NOW - 600


def _plain_count(path: Path, bulk_since: float = BULK_SINCE) -> dict[str, int]:
    """The definition, counted in Python over every row (a connection of its own)."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT tier, gone_strikes, bulk_at FROM models").fetchall()
    counts = Counter(
        tier or "new"
        for tier, gone, bulk_at in rows
        if gone == 0 and (bulk_at is None or bulk_at < bulk_since)
    )
    return dict(counts)


def _plain_unresolved(path: Path) -> list[str]:
    """Bases named, neither tracked nor resolved, in Python over every row."""
    with sqlite3.connect(path) as db:
        named = {row[0] for row in db.execute("SELECT base_model FROM model_bases")}
        tracked = {row[0] for row in db.execute("SELECT repo_id FROM models")}
        resolved = {row[0] for row in db.execute("SELECT alias_id FROM aliases")}
    return sorted(named - tracked - resolved)


def _kept(store: StateStore, bulk_since: float = BULK_SINCE) -> tuple[dict[str, int], list[str]]:
    return store.tier_counts(bulk_since=bulk_since), store.unresolved_bases(1_000_000)


def _plain(path: Path, bulk_since: float = BULK_SINCE) -> tuple[dict[str, int], list[str]]:
    return _plain_count(path, bulk_since), _plain_unresolved(path)


def _track(
    store: StateStore,
    repo_id: str,
    tier: str,
    created_at: float,
    base_models: tuple[str, ...] = (),
) -> None:
    store.track(
        repo_id,
        author=None,
        created_at=created_at,
        fingerprint="f",
        downloads=1,
        likes=0,
        next_snapshot=NOW,
        community=False,
        tier=tier,
        tracked_at=NOW,
        base_models=base_models,
    )


def _random_writes(store: StateStore, rng: random.Random, steps: int) -> None:
    ids = [f"org/m{i}" for i in range(60)]
    others = [f"elsewhere/b{i}" for i in range(20)]  # named as bases, never tracked
    for _ in range(steps):
        repo_id = rng.choice(ids)
        action = rng.random()
        with store.transaction():
            if action < 0.35:  # track, or re-create under the same name (another createdAt)
                bases = tuple(rng.sample(ids + others, rng.randrange(3)))
                _track(store, repo_id, rng.choice(TIERS), float(rng.randrange(3)), bases)
            elif action < 0.4:  # the aliases stream resolved a base
                store.resolve_alias(rng.choice(others + ids), "", "gone", NOW)
            elif action < 0.45:  # an edit names more bases
                store.add_bases(repo_id, tuple(rng.sample(ids + others, 2)))
            elif action < 0.7:  # a snapshot moves it to another tier, maybe by a bulk call
                store.record_snapshot(
                    repo_id,
                    at=NOW - rng.choice((0, 3600)),
                    downloads=5,
                    likes=1,
                    velocity=0.0,
                    next_snapshot=NOW + 60,
                    tier=rng.choice((*TIERS, None)),
                    bulk=rng.random() < 0.5,
                )
            elif action < 0.9:  # untracked from the counts: the Hub says it is gone
                store.strike_gone(repo_id)
            else:
                store.clear_gone(repo_id)


@pytest.mark.parametrize("seed", range(5))
def test_counts_equal_a_plain_count_after_random_writes(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "state.sqlite3"
    rng = random.Random(seed)
    store = StateStore(path)
    for _ in range(8):
        _random_writes(store, rng, 40)
        assert _kept(store) == _plain(path)
    # A transaction that fails half-way leaves the counts with the rows it rolled back.
    with pytest.raises(RuntimeError), store.transaction():
        _random_writes(store, rng, 30)
        raise RuntimeError("round failed")
    assert _kept(store) == _plain(path)
    store.close()
    reopened = StateStore(path)
    assert _kept(reopened) == _plain(path)
    _random_writes(reopened, rng, 100)
    assert _kept(reopened) == _plain(path)
    assert _kept(reopened, 0.0) == _plain(path, 0.0)


def test_a_store_killed_in_the_middle_of_a_write_reopens_with_true_counts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite3"
    store = StateStore(path)
    _random_writes(store, random.Random(7), 200)
    store.close()
    # Another process writes half a transaction and dies (kill -9: no rollback, no close).
    script = f"""
import os, random, signal
from pathlib import Path
from producers.state import StateStore
from tests.test_state_kept import _random_writes
store = StateStore(Path({str(path)!r}))
store._db.execute("BEGIN IMMEDIATE")
store._depth = 1  # the writes below join this transaction, never committed
_random_writes(store, random.Random(8), 200)
os.kill(os.getpid(), signal.SIGKILL)
"""
    dead = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[1])
    assert dead.returncode == -9
    reopened = StateStore(path)
    assert _kept(reopened) == _plain(path)
    _random_writes(reopened, random.Random(9), 100)
    assert _kept(reopened) == _plain(path)


def test_a_store_made_before_the_counts_is_recounted_at_open(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = StateStore(path)
    _random_writes(store, random.Random(3), 150)
    store.close()
    # As a store made before the counts were kept: no triggers, no counts, rows written.
    with sqlite3.connect(path) as db:
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall():
            db.execute(f"DROP TRIGGER {name}")
        db.execute("DROP TABLE tier_counts")
        db.execute("DROP TABLE pending_bases")
        db.execute("UPDATE models SET tier = 'tail' WHERE rowid % 3 = 0")
        db.execute("DELETE FROM models WHERE rowid % 5 = 0")
        db.execute("DELETE FROM aliases WHERE rowid % 2 = 0")
    reopened = StateStore(path)
    assert _kept(reopened) == _plain(path)
    _random_writes(reopened, random.Random(4), 100)
    assert _kept(reopened) == _plain(path)


def _steps(store: StateStore, read: Callable[[], object]) -> int:
    """SQLite virtual machine steps (in hundreds) that ``read`` takes: the work it does,
    independent of the machine's speed or load."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    store._db.set_progress_handler(count, 100)
    try:
        read()
    finally:
        store._db.set_progress_handler(None, 100)
    return steps


def test_per_round_reads_do_not_visit_every_model(tmp_path: Path) -> None:
    """The replan's tier counts and the aliases round's bases to resolve, at 2 k and at
    40 k tracked models each naming a tracked base (none left to resolve): the same few
    rows read, not twenty times the work."""
    path = tmp_path / "state.sqlite3"
    store = StateStore(path)

    def reads() -> tuple[int, int]:
        return (
            _steps(store, lambda: store.tier_counts(bulk_since=BULK_SINCE)),
            _steps(store, lambda: store.unresolved_bases(40)),
        )

    def track(first: int, last: int) -> None:
        with store.transaction():
            for i in range(first, last):
                _track(store, f"org/m{i}", TIERS[i % len(TIERS)], NOW, (f"org/m{i // 2}",))

    track(0, 2_000)
    small = reads()
    track(2_000, 40_000)
    assert _kept(store) == _plain(path)
    counts, bases = reads()
    assert counts <= small[0] + 2 and bases <= small[1] + 2


def test_counts_kept_by_other_triggers_are_recounted_at_open(tmp_path: Path) -> None:
    """A store whose counts another version kept (here one counting every insert twice)
    has those triggers replaced and its counts recounted."""
    path = tmp_path / "state.sqlite3"
    StateStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TRIGGER tier_counts_twice AFTER INSERT ON models BEGIN"
            " UPDATE tier_counts SET live = live + 1 WHERE tier = new.tier; END"
        )
    store = StateStore(path)
    _random_writes(store, random.Random(5), 150)
    assert _kept(store) == _plain(path)
