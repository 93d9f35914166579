"""State store benchmark: what the engagement poller's store work costs on the event loop
at a year of tracked models, before and after the kept tier counts, side by side.

For each size (100 k and 1 M tracked models by default) it fills a fresh store the way a
year leaves it (stated assumptions: tiers by a year of ~3 k new models a day, most settled
or in the tail; 1 % gone; ~6,000 seen by the bulk calls in the last 10 minutes; half of
the models name a base, most of them tracked or resolved), then times:

- replan: ``Tracker.plan`` recomputed (the tier counts and the seven overdue figures);
  *before* runs the queries it ran until now (a ``GROUP BY`` over every live model, and
  the overdue counts over an index that still holds the gone models);
- due: ``StateStore.due_snapshots`` for one round (150 calls), which reads every due model
  (about 9 % of the store here: some past their interval); it now runs off the loop;
- round: the store work of one engagement round (the due models, ``seen`` for the 4,000
  models the four bulk calls list, their snapshots recorded by ``Tracker.record``):
  *before* all on the event loop with the writes in one transaction, *after* as
  ``EngagementPoller.poll_once`` does it now (reads in a thread, writes in batches of
  ``WRITE_BATCH`` writes or ``WRITE_SLICE`` seconds); "loop held" is the longest a 1 ms
  ticker waited meanwhile, "wall" the round's duration;
- bases: ``StateStore.unresolved_bases`` for one aliases round, once the aliases stream
  has caught up (nothing left to resolve); *before*: the query it ran until now;
- github repos: ``StateStore.followed_github_repos`` for one GitHub round (5 % of the
  models link one of size/100 repos): the same query, now run off the loop.

    .venv/bin/python bench/bench_state.py [--sizes 100000,1000000] [--repeat 5]

Prints the median milliseconds per operation (blank: not applicable); asserts nothing.
On a shared machine compare the two columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from producers.snapshot_plan import TIERS
from producers.state import StateStore
from producers.tracking import SnapshotSchedule, Tracker

DAY = 86_400.0
NOW = 1_800_000_000.0
BULK_EVERY = 300.0
BULK_LISTED = 4 * 1000  # four bulk orders, a thousand models each
TIER_SHARES = {  # of a year's tracked models
    "followed": 0.0005,
    "new": 0.0015,
    "hot": 0.002,
    "warm": 0.02,
    "recent": 0.08,
    "settled": 0.3,
    "tail": 0.596,
}
_ROUNDS = itertools.count(1)
"Rounds run so far: each is one bulk interval after the last."
OLD_TIER_COUNTS = (
    "SELECT tier, count(*) FROM models WHERE gone_strikes = 0"
    " AND (bulk_at IS NULL OR bulk_at < ?) GROUP BY tier"
)
OLD_UNRESOLVED = (
    "SELECT DISTINCT b.base_model FROM model_bases b"
    " WHERE NOT EXISTS (SELECT 1 FROM models m WHERE m.repo_id = b.base_model)"
    " AND NOT EXISTS (SELECT 1 FROM aliases a WHERE a.alias_id = b.base_model)"
    " ORDER BY b.base_model LIMIT ?"
)
OLD_OVERDUE = (
    "SELECT count(*), min(coalesce(last_snapshot, tracked_at)) FROM models"
    " INDEXED BY models_tier_since WHERE tier = ? AND coalesce(last_snapshot, tracked_at) < ?"
    " AND gone_strikes = 0"
)


def _fill(store: StateStore, size: int, rng: random.Random) -> list[str]:
    """``size`` tracked models as a year leaves them; returns their ids."""
    schedule = SnapshotSchedule()
    wanted = schedule.wanted
    tiers = rng.choices(list(TIER_SHARES), weights=list(TIER_SHARES.values()), k=size)
    ids = [f"org{i % 50_000}/model-{i}" for i in range(size)]
    rows = []
    bases = []
    for i, (repo_id, tier) in enumerate(zip(ids, tiers, strict=True)):
        every = wanted[tier]
        created = NOW - (
            rng.random() * DAY if tier in ("new", "followed") else rng.random() * 365 * DAY
        )
        last = NOW - rng.random() * every * 1.1  # a few past their interval
        gone = 1 if rng.random() < 0.01 else 0
        bulk_at = NOW - rng.random() * 600 if i % (size // 6000 or 1) == 0 else None
        rows.append((repo_id, created, last, last + every, tier, created, bulk_at, gone))
        if i % 2:
            # Most bases are tracked models; a few name something resolved or unknown.
            base = ids[rng.randrange(max(1, i))] if rng.random() < 0.98 else f"ext/base-{i}"
            bases.append((repo_id, base))
    with store.transaction():
        store._db.executemany(
            "INSERT INTO models (repo_id, author, created_at, fingerprint, downloads, likes,"
            " last_snapshot, next_snapshot, tier, tracked_at, bulk_at, gone_strikes)"
            " VALUES (?1, 'a', ?2, 'f', 100, 1, ?3, ?4, ?5, ?6, ?7, ?8)",
            rows,
        )
        store._db.executemany("INSERT OR IGNORE INTO model_bases VALUES (?, ?)", bases)
        # 5 % of the cards link a GitHub repo, among size/100 repos followed.
        for i in range(0, size, 20):
            store.add_github_repo(f"gh/repo-{rng.randrange(size // 100)}", f"card:{ids[i]}", at=NOW)
        # The aliases stream keeps up: every base that is not tracked is resolved.
        for _, base in bases:
            if base.startswith("ext/"):
                store.resolve_alias(base, "", "gone", NOW)
    return ids


def _median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _old_replan(store: StateStore, tracker: Tracker) -> None:
    """What a replan read until now: the same arithmetic over the old queries."""
    db = store._db
    counts = {str(t): int(n) for t, n in db.execute(OLD_TIER_COUNTS, (NOW - 2 * BULK_EVERY,))}
    plan = tracker.schedule.plan(counts)
    for tier in TIERS:
        db.execute(OLD_OVERDUE, (tier, NOW - plan.promise(tier))).fetchone()


def _new_replan(tracker: Tracker) -> None:
    tracker._plan = None  # force the recount a replan does every replan_every seconds
    tracker.plan(NOW)


def _record(tracker: Tracker, repo_id: str, at: float) -> None:
    model = tracker.store.get(repo_id)
    assert model is not None
    tracker.record(model, now=at, downloads=200, likes=2, trending_downloads=200, bulk=True)


async def _old_round(store: StateStore, tracker: Tracker, listed: list[str], at: float) -> None:
    """The store work of one engagement round as it was: the due models, first sight checks
    for the listed models, their snapshots recorded in one transaction, all on the loop."""
    store.due_snapshots(at, 150)
    seen = [repo_id for repo_id in listed if store.seen(repo_id, None)]
    with store.transaction():
        for repo_id in seen:
            _record(tracker, repo_id, at)


async def _new_round(store: StateStore, tracker: Tracker, listed: list[str], at: float) -> None:
    """As ``EngagementPoller.poll_once`` does it now: reads off the loop, writes in batches."""
    await store.read_off_loop(lambda s: s.due_snapshots(at, 150))
    seen = await store.read_off_loop(lambda s: [s.seen(r, None) for r in listed])
    await store.write_in_batches(
        [
            functools.partial(_record, tracker, repo_id, at)
            for repo_id, known in zip(listed, seen, strict=True)
            if known
        ]
    )


async def _longest_stall(work: Awaitable[None]) -> float:
    """Milliseconds ``work`` held the event loop at most: the longest a 1 ms ticker waited
    past its tick while it ran."""
    longest = 0.0
    done = False

    async def tick() -> None:
        nonlocal longest
        while not done:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            longest = max(longest, (time.perf_counter() - start) * 1000 - 1)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    await work
    done = True
    await ticker
    return longest


def _stall_ms(
    round_: Callable[[StateStore, Tracker, list[str], float], Awaitable[None]],
    store: StateStore,
    tracker: Tracker,
    ids: list[str],
    rng: random.Random,
    repeat: int,
) -> tuple[float, float]:
    """(median longest loop stall, median wall time) of ``repeat`` rounds, in ms."""
    stalls, walls = [], []
    for _ in range(repeat):
        at = NOW + BULK_EVERY * next(_ROUNDS)
        start = time.perf_counter()
        stalls.append(
            asyncio.run(_longest_stall(round_(store, tracker, rng.sample(ids, BULK_LISTED), at)))
        )
        walls.append((time.perf_counter() - start) * 1000)
    return statistics.median(stalls), statistics.median(walls)


def bench(size: int, repeat: int) -> dict[str, tuple[float, float]]:
    rng = random.Random(size)
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(Path(tmp) / "state.sqlite3")
        ids = _fill(store, size, rng)
        # The index the old overdue query used, for the before column only.
        store._db.execute(
            "CREATE INDEX models_tier_since ON models (tier, coalesce(last_snapshot, tracked_at))"
        )
        tracker = Tracker(
            store,
            schedule=SnapshotSchedule(calls_per_day=43_000.0),
            clock=lambda: NOW,
            bulk_every=BULK_EVERY,
        )
        assert tracker.store.tier_counts(bulk_since=NOW - 2 * BULK_EVERY) == {
            str(t): int(n) for t, n in store._db.execute(OLD_TIER_COUNTS, (NOW - 2 * BULK_EVERY,))
        }
        out = {
            "replan": (
                _median_ms(lambda: _old_replan(store, tracker), repeat),
                _median_ms(lambda: _new_replan(tracker), repeat),
            ),
        }
        store._db.execute("DROP INDEX models_tier_since")  # not kept: writes would pay it
        due = _median_ms(lambda: store.due_snapshots(NOW, 150), repeat)
        out["due (150), off loop now"] = (due, float("nan"))  # the same query, in a thread
        old_stall, old_wall = _stall_ms(_old_round, store, tracker, ids, rng, repeat)
        new_stall, new_wall = _stall_ms(_new_round, store, tracker, ids, rng, repeat)
        out["round: loop held"] = (old_stall, new_stall)
        out["round: wall"] = (old_wall, new_wall)
        github = _median_ms(store.followed_github_repos, repeat)
        out["github repos, off loop now"] = (github, float("nan"))
        out["bases (40)"] = (
            _median_ms(lambda: store._db.execute(OLD_UNRESOLVED, (40,)).fetchall(), repeat),
            _median_ms(lambda: store.unresolved_bases(40), repeat),
        )
        store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'tracked':>10}  {'operation':<28} {'before ms':>10} {'after ms':>10}")
    for size in (int(s) for s in args.sizes.split(",")):
        for name, (before, after) in bench(size, args.repeat).items():
            shown = ["" if v != v else f"{v:10.1f}" for v in (before, after)]  # nan: n/a
            print(f"{size:>10,}  {name:<28} {shown[0]:>10} {shown[1]:>10}", flush=True)


if __name__ == "__main__":
    main()
