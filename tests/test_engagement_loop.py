"""The engagement round leaves the event loop to the other pollers: it records the thousands
of snapshots its bulk calls bring in transactions of :data:`producers.state.WRITE_BATCH`,
yielding between them, and reads the due models and first sights in a worker thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import producers.state
from hubwatch.events import ModelSnapshot
from producers.hub_engagement import EngagementPoller
from producers.state import StateStore
from tests.test_streams import Rig, rig  # noqa: F401  (the fixture)


async def test_a_round_records_its_snapshots_in_batches_the_loop_runs_between(
    rig: Rig,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = rig.store()
    tracker = rig.tracker(store)
    await rig.uploads(tracker)
    tracked = store_size(rig.state)
    later = time.time() + 3600
    monkeypatch.setattr(producers.state, "WRITE_BATCH", 10, raising=False)
    poller = EngagementPoller(
        rig.client, rig.publisher, tracker, requests_per_round=30, clock=lambda: later
    )
    # Another task on the loop, reading through a connection of its own what is committed:
    # how many models the round has recorded each time the loop lets it run (never in the
    # middle of a transaction: those have no await inside).
    seen: set[int] = set()
    done = asyncio.Event()
    reader = sqlite3.connect(rig.state / "producers.sqlite")

    async def watch() -> None:
        while not done.is_set():
            seen.add(
                reader.execute(
                    "SELECT count(*) FROM models WHERE last_snapshot = ?", (later,)
                ).fetchone()[0]
            )
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    snaps = await rig.poll(poller)
    done.set()
    await watcher
    reader.close()
    assert len({s.repo_id for s in snaps if isinstance(s, ModelSnapshot)}) == tracked == 67
    assert store.due_snapshots(later, 100) == []  # all recorded in the end
    # The loop ran between the batches: the watcher saw the round part-way.
    partial = {n for n in seen if 0 < n < tracked}
    assert len(partial) >= 3, sorted(seen)


async def test_reads_off_the_loop_run_in_a_worker_thread(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "producers.sqlite")
    with store.transaction():
        store.track(
            "org/model",
            author=None,
            created_at=None,
            fingerprint="f",
            downloads=1,
            likes=0,
            next_snapshot=0.0,
            community=False,
        )

    def due(s: StateStore) -> tuple[list[str], bool]:
        return [m.repo_id for m in s.due_snapshots(1.0, 5)], threading.current_thread() is (
            threading.main_thread()
        )

    assert await store.read_off_loop(due) == (["org/model"], False)
    store.close()


def store_size(state: Path) -> int:
    with sqlite3.connect(state / "producers.sqlite") as db:
        return int(db.execute("SELECT count(*) FROM models").fetchone()[0])
