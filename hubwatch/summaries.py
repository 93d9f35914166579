"""Summaries: small answer tables ClickHouse recomputes on a schedule.

A whole-ecosystem answer (the median size change per architecture over 2.2 M models, the
breakouts among 300 k live models) costs a second or more to compute and is asked for by
every dashboard refresh. A summary computes it once per interval instead: a refreshable
materialized view (``CREATE MATERIALIZED VIEW name REFRESH EVERY N SECOND TO table AS
SELECT …``, in a migration) whose refresh replaces the target table's rows atomically, so
readers see the previous answer until the next one is complete, never a half-written one.
Readers then scan hundreds of rows, not millions. What a summary says is as of its last
refresh (``system.view_refreshes``); :func:`refresh` recomputes now, for one-shot readers
(``hubwatch report``, ``hubwatch query --fresh``, tests) that must see what was just written.

The same views run on the embedded chdb-core server and on a ClickHouse server. A refresh
swaps its new table in for the old one, so an ALTER of a summary's table made while it
refreshes is undone: a migration changes a summary by a new table and view.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hubwatch.clickhouse import as_utc

__all__ = [
    "SummaryState",
    "refresh",
    "refreshed_at",
    "summary_state",
    "summary_states",
    "summary_views",
]


def summary_views(client: Any) -> list[str]:
    """The refreshable views of the client's database, by name."""
    rows = client.query(
        "SELECT view FROM system.view_refreshes WHERE database = currentDatabase() ORDER BY view"
    ).result_rows
    return [str(view) for (view,) in rows]


def refresh(client: Any, views: Iterable[str] | None = None) -> None:
    """Recompute ``views`` (every summary of the database when None) now, and return once
    each has finished (``SYSTEM WAIT VIEW`` raises a refresh's error)."""
    names = summary_views(client) if views is None else list(views)
    # Start them all, then wait: independent refreshes overlap instead of queueing.
    for name in names:
        client.command(f"SYSTEM REFRESH VIEW `{name}`")
    for name in names:
        client.command(f"SYSTEM WAIT VIEW `{name}`")


def refreshed_at(client: Any, view: str) -> datetime | None:
    """When ``view`` last refreshed successfully (UTC), None before its first refresh."""
    rows = client.query(
        "SELECT last_success_time FROM system.view_refreshes"
        " WHERE database = currentDatabase() AND view = {view:String}",
        parameters={"view": view},
    ).result_rows
    if not rows or rows[0][0] is None:
        return None
    return as_utc(rows[0][0])


@dataclass(frozen=True, slots=True)
class SummaryState:
    """A summary's schedule as ClickHouse reports it."""

    view: str
    last_success: datetime | None  # when its newest good answer was computed (UTC)
    next_refresh: datetime | None
    error: str  # the last attempt's error, empty when it succeeded


_STATE = (
    "SELECT view, last_success_time, next_refresh_time, exception FROM system.view_refreshes"
    " WHERE database = currentDatabase()"
)


def _state(row: Any) -> SummaryState:
    view, last, following, error = row
    return SummaryState(str(view), as_utc(last), as_utc(following), str(error or ""))


def summary_state(client: Any, view: str) -> SummaryState | None:
    """``view``'s state, None when the database has no such refreshable view."""
    rows = client.query(
        f"{_STATE} AND view = {{view:String}}", parameters={"view": view}
    ).result_rows
    return _state(rows[0]) if rows else None


def summary_states(client: Any) -> list[SummaryState]:
    """Every summary of the client's database, by view name."""
    return [_state(row) for row in client.query(f"{_STATE} ORDER BY view").result_rows]
