"""Tables the state store keeps by SQLite triggers, so that what a poller asks every round
costs what the answer holds, not what the store holds: live models per snapshot tier (read
at every replan) and the base ids still to resolve (read at every aliases round).

A trigger writes in the transaction of the statement that fired it, so a crash (even
kill -9) keeps a write and what it changed in a kept table, or neither. A kept table is
trusted only if its triggers are exactly those here (named after it): a store made before
them, or by a version that kept it otherwise, is filled once, at open, in the transaction
that creates them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

__all__ = ["KEPT", "TIER", "Kept", "keep"]

TIER = "coalesce(tier, 'new')"
"A model's tier as counted (a row without one is read as new, as the store reads it)."


@dataclass(frozen=True, slots=True)
class Kept:
    table: str
    schema: tuple[str, ...]
    "The table and the indexes its readers use (all IF NOT EXISTS)."
    triggers: dict[str, str]
    "name -> the trigger after its name."
    fill: tuple[str, ...]
    "Statements filling the table from scratch."


def _count(sign: str, row: str) -> str:
    """A trigger statement adding ``sign``1 to the tier of ``row`` (``new`` or ``old``) if
    the row is live."""
    return (
        f"INSERT INTO tier_counts SELECT coalesce({row}.tier, 'new'), {sign}1"
        f" WHERE {row}.gone_strikes IS 0 ON CONFLICT (tier) DO UPDATE SET live = live {sign} 1;"
    )


TIER_COUNTS = Kept(
    "tier_counts",
    (
        "CREATE TABLE IF NOT EXISTS tier_counts (tier TEXT PRIMARY KEY, live INTEGER NOT NULL)",
        # Live models a bulk call saw lately: a range of this index, bounded by what the
        # bulk calls list in a window, not by the store.
        "CREATE INDEX IF NOT EXISTS models_live_bulk_at ON models (bulk_at, tier)"
        " WHERE gone_strikes = 0",
        # Overdue live models of a tier: a range of this index, without reading the rows.
        "CREATE INDEX IF NOT EXISTS models_live_tier_since"
        " ON models (tier, coalesce(last_snapshot, tracked_at)) WHERE gone_strikes = 0",
    ),
    {
        "tier_counts_insert": f"AFTER INSERT ON models BEGIN {_count('+', 'new')} END",
        "tier_counts_delete": f"AFTER DELETE ON models BEGIN {_count('-', 'old')} END",
        # One trigger for both sides of a move: every snapshot sets tier and gone_strikes,
        # and each trigger run costs (bench/bench_state.py).
        "tier_counts_move": "AFTER UPDATE OF tier, gone_strikes ON models"
        " WHEN coalesce(old.tier, 'new') != coalesce(new.tier, 'new')"
        " OR (old.gone_strikes IS 0) != (new.gone_strikes IS 0)"
        f" BEGIN {_count('-', 'old')} {_count('+', 'new')} END",
    },
    (
        "DELETE FROM tier_counts",
        f"INSERT INTO tier_counts SELECT {TIER}, count(*) FROM models WHERE gone_strikes = 0"
        f" GROUP BY {TIER}",
    ),
)
"Live (not gone) models per tier."

_UNRESOLVED = (
    "NOT EXISTS (SELECT 1 FROM models WHERE repo_id = {base})"
    " AND NOT EXISTS (SELECT 1 FROM aliases WHERE alias_id = {base})"
)

PENDING_BASES = Kept(
    "pending_bases",
    ("CREATE TABLE IF NOT EXISTS pending_bases (base_model TEXT PRIMARY KEY)",),
    {
        "pending_bases_named": "AFTER INSERT ON model_bases"
        f" WHEN {_UNRESOLVED.format(base='new.base_model')}"
        " BEGIN INSERT OR IGNORE INTO pending_bases VALUES (new.base_model); END",
        "pending_bases_unnamed": "AFTER DELETE ON model_bases WHEN NOT EXISTS"
        " (SELECT 1 FROM model_bases WHERE base_model = old.base_model)"
        " BEGIN DELETE FROM pending_bases WHERE base_model = old.base_model; END",
        "pending_bases_tracked": "AFTER INSERT ON models"
        " BEGIN DELETE FROM pending_bases WHERE base_model = new.repo_id; END",
        "pending_bases_untracked": "AFTER DELETE ON models"
        " WHEN EXISTS (SELECT 1 FROM model_bases WHERE base_model = old.repo_id)"
        f" AND {_UNRESOLVED.format(base='old.repo_id')}"
        " BEGIN INSERT OR IGNORE INTO pending_bases VALUES (old.repo_id); END",
        "pending_bases_resolved": "AFTER INSERT ON aliases"
        " BEGIN DELETE FROM pending_bases WHERE base_model = new.alias_id; END",
    },
    (
        "DELETE FROM pending_bases",
        "INSERT INTO pending_bases SELECT DISTINCT b.base_model FROM model_bases b"
        f" WHERE {_UNRESOLVED.format(base='b.base_model')}",
    ),
)
"Base ids tracked models name that are neither tracked nor resolved."

KEPT: tuple[Kept, ...] = (TIER_COUNTS, PENDING_BASES)


def keep(db: sqlite3.Connection) -> None:
    """Create the kept tables and their triggers, filling those not kept until now. ``db``
    is in autocommit mode (no transaction open)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        triggers = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
        tables = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        for kept in KEPT:
            trusted = kept.table in tables and {
                t for t in triggers if t.startswith(f"{kept.table}_")
            } == set(kept.triggers)
            for name in triggers - set(kept.triggers):
                if name.startswith(f"{kept.table}_"):  # of another version of this table
                    db.execute(f"DROP TRIGGER {name}")
            for statement in kept.schema:
                db.execute(statement)
            for name, body in kept.triggers.items():
                db.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")
            if not trusted:
                for statement in kept.fill:
                    db.execute(statement)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
