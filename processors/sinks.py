"""ClickHouse writes: pure insert plans, then a writer that only hands them to the client."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hubwatch import metrics
from hubwatch.errors import SinkError
from hubwatch.events import DeadLetter
from processors.activity import CommunityRow, RepoSnapshotRow, SnapshotRow
from processors.engagement import EngagementRow
from processors.families import FamilyRow
from processors.leaderboard import LeaderboardEdge, ScoreRow
from processors.lineage import LineageDispute, LineageEdge, ModelRow

__all__ = [
    "TABLES",
    "ClickHouseWriter",
    "InsertPlan",
    "plan_dead_letters",
    "plan_rows",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InsertPlan:
    table: str
    columns: tuple[str, ...]
    rows: list[list[Any]]


TABLES: dict[type, str] = {
    ModelRow: "models",
    LineageEdge: "lineage_edges",
    LineageDispute: "lineage_disputes",
    SnapshotRow: "model_snapshots",
    CommunityRow: "community_events",
    RepoSnapshotRow: "github_repo_snapshots",
    ScoreRow: "leaderboard_scores",
    LeaderboardEdge: "leaderboard_edges",
    FamilyRow: "model_families",
    EngagementRow: "engagement_live",
}
"Which table each row type goes to (the columns are its dataclass fields)."


def plan_rows(table: str, rows: Sequence[Any]) -> InsertPlan:
    columns = tuple(f.name for f in dataclasses.fields(rows[0])) if rows else ()
    return InsertPlan(table, columns, [[getattr(r, c) for c in columns] for r in rows])


_DEAD_LETTER_COLUMNS = (
    "at",
    "stage",
    "reason",
    "detail",
    "source",
    "key",
    "payload",
    "payload_bytes",
)


def plan_dead_letters(letters: Sequence[DeadLetter]) -> InsertPlan:
    return InsertPlan(
        "dead_letters",
        _DEAD_LETTER_COLUMNS,
        [[getattr(d, c) for c in _DEAD_LETTER_COLUMNS] for d in letters],
    )


class ClickHouseWriter:
    """Runs insert plans; retries while ClickHouse is unreachable, so nothing acknowledged
    upstream is dropped. Inserts are idempotent: tables replace on their natural keys."""

    def __init__(
        self,
        connect: Callable[[], Any],
        database: str,
        *,
        retry_for: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._connect = connect
        self._database = database
        self._client: Any = None
        self._retry_for = retry_for
        self._sleep = sleep

    def write(self, plans: Sequence[InsertPlan]) -> None:
        deadline = time.monotonic() + self._retry_for
        attempt = 0
        for plan in plans:
            while True:
                try:
                    self._insert(plan)
                    break
                except SinkError as exc:
                    attempt += 1
                    self._client = None
                    if not exc.retriable or time.monotonic() > deadline:
                        raise
                    log.warning("ClickHouse write failed (attempt %d), retrying: %s", attempt, exc)
                    self._sleep(min(10.0, 0.2 * 2 ** min(attempt, 6)))

    def _insert(self, plan: InsertPlan) -> None:
        from clickhouse_connect.driver.exceptions import (
            DatabaseError,
            Error,
            OperationalError,
        )

        try:
            if self._client is None:
                self._client = self._connect()
            self._client.insert(
                f"`{self._database}`.`{plan.table}`", plan.rows, column_names=list(plan.columns)
            )
        except OperationalError as exc:  # connection-level: worth retrying
            raise SinkError(f"ClickHouse unreachable: {exc}", retriable=True) from exc
        except DatabaseError as exc:
            raise SinkError(
                f"ClickHouse refused insert into {plan.table}: {exc}",
                code=getattr(exc, "code", None),
            ) from exc
        except Error as exc:
            raise SinkError(f"ClickHouse insert into {plan.table} failed: {exc}") from exc
        except OSError as exc:
            raise SinkError(f"ClickHouse unreachable: {exc}", retriable=True) from exc
        metrics.ROWS_WRITTEN.labels(plan.table).inc(len(plan.rows))

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
