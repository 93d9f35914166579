"""How long raw ``model_snapshots`` are kept: a setting, applied by ``hubwatch migrate``.

The hourly aggregates (``engagement_hourly``) are kept for ever whatever this says; raw
polls are the bulk of the disk (about 120 M rows a year at Hub scale). Whole monthly parts
are dropped once every row in them has expired (``ttl_only_drop_parts``).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "DEFAULT_SNAPSHOT_RETENTION_DAYS",
    "MIN_SNAPSHOT_RETENTION_DAYS",
    "apply_snapshot_retention",
    "snapshot_retention_days",
]

DEFAULT_SNAPSHOT_RETENTION_DAYS = 90
"Migration 0026's TTL."
MIN_SNAPSHOT_RETENTION_DAYS = 16
"""An embedded restart rebuilds the live engagement windows from the last 15 days of
snapshots (processors/engagement.py HORIZON_HOURS); a shorter retention would lose them."""

_TTL_DAYS = re.compile(r"\bTTL toDateTime\(observed_at\) \+ toIntervalDay\((\d+)\)")


def snapshot_retention_days(client: Any, database: str) -> int:
    """The retention in force, in days; 0: kept for ever (no TTL)."""
    engine = client.query(
        "SELECT engine_full FROM system.tables"
        " WHERE database = {database:String} AND name = 'model_snapshots'",
        parameters={"database": database},
    ).result_rows[0][0]
    match = _TTL_DAYS.search(engine)
    return int(match[1]) if match else 0


def apply_snapshot_retention(client: Any, database: str, days: int) -> bool:
    """Make the TTL of ``model_snapshots`` ``days`` (0: none); True when it changed.

    Idempotent: the table is altered only when its TTL differs. A changed TTL is applied
    to the parts already written too (ClickHouse materializes it)."""
    if snapshot_retention_days(client, database) == days:
        return False
    table = f"`{database}`.model_snapshots"
    if days == 0:
        client.command(f"ALTER TABLE {table} REMOVE TTL")
    else:
        client.command(
            f"ALTER TABLE {table} MODIFY TTL toDateTime(observed_at) + INTERVAL {int(days)} DAY"
        )
    return True
