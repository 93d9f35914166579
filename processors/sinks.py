"""ClickHouse writes: pure insert plans, then a writer that only hands them to the client.

A plan the server refuses for its content (not for an outage) is split in halves until the
refused rows are found; they become dead letters (stage ``processor.clickhouse.<table>``,
reason the server's error name, ``violated_constraint``, …) and the rest is written.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from hubwatch import metrics
from hubwatch.alerts.alert import AlertRow, GroupMember
from hubwatch.errors import SchemaError, SinkError
from hubwatch.events import DeadLetter, encode
from processors.activity import CommunityRow, RepoSnapshotRow, SnapshotRow
from processors.aliases import AliasRow
from processors.engagement import EngagementRow
from processors.families import FamilyRow
from processors.leaderboard import LeaderboardEdge, ScoreRow
from processors.lineage import LineageDispute, LineageEdge, ModelRow
from processors.plans import InsertPlan, Origin, plan_dead_letters, plan_rows

__all__ = [
    "ROW_FAULT_CODES",
    "TABLES",
    "ClickHouseWriter",
    "InsertPlan",
    "Origin",
    "plan_dead_letters",
    "plan_rows",
]

log = logging.getLogger(__name__)


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
    AliasRow: "model_aliases",
    AlertRow: "alerts",
    GroupMember: "alert_group_members",
}
"Which table each row type goes to (the columns are its dataclass fields)."


class ClickHouseWriter:
    """Runs insert plans; retries while ClickHouse is unreachable, so nothing acknowledged
    upstream is dropped. Inserts are idempotent: tables replace on their natural keys.

    Rows the server refuses for what they hold are isolated (bisecting the plan) and
    returned by :meth:`write` as dead letters; with ``letters_to_table`` (the default: the
    embedded mode, backfill, imports) the writer also writes them to ``dead_letters``, and
    counts them; on Kafka the agent publishes them to the dead-letter topic instead.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        database: str,
        *,
        retry_for: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        letters_to_table: bool = True,
    ) -> None:
        self._connect = connect
        self._database = database
        self._client: Any = None
        self._retry_for = retry_for
        self._sleep = sleep
        self._letters_to_table = letters_to_table
        self._dropped: list[list[Any]] = []

    def write(self, plans: Sequence[InsertPlan]) -> list[DeadLetter]:
        """Write every plan; the dead letters of the rows the server refused.

        Raises :class:`SinkError` (retriable) only when ClickHouse stays unreachable for
        ``retry_for`` seconds."""
        deadline = time.monotonic() + self._retry_for
        refused: list[DeadLetter] = []
        for plan in plans:
            refused += self._write_isolating(plan, deadline)
        if refused and self._letters_to_table:
            letters = plan_dead_letters(refused)
            self._dropped = []
            self._write_isolating(letters, deadline)
            dropped = {id(row) for row in self._dropped}
            for letter, row in zip(refused, letters.rows, strict=True):
                if id(row) not in dropped:  # counted once delivered, not before
                    metrics.DEAD_LETTERS.labels(letter.stage, letter.reason).inc()
        return refused

    def _write_isolating(self, plan: InsertPlan, deadline: float) -> list[DeadLetter]:
        try:
            self._insert_retrying(plan, deadline)
            return []
        except SinkError as exc:
            if exc.retriable or plan.select:  # our own SQL refused: no row to blame
                raise
            if len(plan.rows) > 1:
                half = len(plan.rows) // 2
                return self._write_isolating(plan.part(0, half), deadline) + self._write_isolating(
                    plan.part(half, len(plan.rows)), deadline
                )
            if plan.table == "dead_letters":  # nowhere left to put it: say so, loudly
                log.error("ClickHouse refused a dead letter, dropped: %s (%s)", exc, plan.rows)
                self._dropped += plan.rows
                return []
            return [_refused_letter(plan, exc)]

    def _insert_retrying(self, plan: InsertPlan, deadline: float) -> None:
        attempt = 0
        while True:
            try:
                self._insert(plan)
                return
            except SinkError as exc:
                attempt += 1
                if not exc.retriable or time.monotonic() > deadline:
                    raise
                self._client = None
                metrics.CLICKHOUSE_WRITE_RETRIES.labels(plan.table).inc()
                log.warning("ClickHouse write failed (attempt %d), retrying: %s", attempt, exc)
                self._sleep(min(10.0, 0.2 * 2 ** min(attempt, 6)))

    def _insert(self, plan: InsertPlan) -> None:
        started = time.monotonic()
        try:
            self._insert_once(plan)
        except SinkError:
            metrics.CLICKHOUSE_WRITE_FAILURES.labels(plan.table).inc()
            raise
        finally:
            metrics.CLICKHOUSE_WRITE_SECONDS.labels(plan.table).observe(time.monotonic() - started)
        metrics.CLICKHOUSE_BATCH_ROWS.labels(plan.table).observe(len(plan.rows))
        metrics.ROWS_WRITTEN.labels(plan.table).inc(len(plan.rows))

    def _insert_once(self, plan: InsertPlan) -> None:
        from clickhouse_connect.driver.exceptions import (
            DatabaseError,
            Error,
            OperationalError,
        )

        try:
            if self._client is None:
                self._client = self._connect()
            if plan.select:
                self._client.command(
                    f"INSERT INTO `{self._database}`.`{plan.table}` ({', '.join(plan.columns)}) "
                    + plan.select.replace("{database}", f"`{self._database}`"),
                    parameters=dict(plan.parameters),
                )
            else:
                self._client.insert(
                    f"`{self._database}`.`{plan.table}`",
                    plan.rows,
                    column_names=list(plan.columns),
                )
        except OperationalError as exc:  # connection-level: worth retrying
            raise SinkError(f"ClickHouse unreachable: {exc}", retriable=True) from exc
        except DatabaseError as exc:
            code = getattr(exc, "code", None)
            # Only an error about the data isolates rows; any other (too many parts, memory,
            # a missing table, a proxy's 503) is the server's state: retried, then fatal,
            # never a reason to dead-letter good rows.
            raise SinkError(
                f"ClickHouse refused insert into {plan.table}: {exc}",
                code=code,
                retriable=code not in ROW_FAULT_CODES,
            ) from exc
        except Error as exc:
            raise SinkError(
                f"ClickHouse insert into {plan.table} failed: {exc}", retriable=True
            ) from exc
        except OSError as exc:
            raise SinkError(f"ClickHouse unreachable: {exc}", retriable=True) from exc
        except (ValueError, TypeError, OverflowError) as exc:
            # The client could not serialise a value (a lone surrogate in a str, …): the
            # row is at fault, not the server.
            raise SinkError(f"cannot serialise a row of {plan.table}: {exc!r}") from exc

    def column_types(self) -> dict[str, dict[str, str]]:
        """``{table: {column: type}}`` of the database, as the server declares them (what
        :class:`processors.validate.RowValidator` checks rows against)."""
        from clickhouse_connect.driver.exceptions import OperationalError

        deadline = time.monotonic() + self._retry_for
        while True:
            try:
                if self._client is None:
                    self._client = self._connect()
                result = self._client.query(
                    "SELECT table, name, type FROM system.columns WHERE database = {db:String}",
                    parameters={"db": self._database},
                )
                break
            except (SinkError, OperationalError) as exc:  # connect() maps an unreachable one
                if getattr(exc, "retriable", True) is False or time.monotonic() > deadline:
                    raise
                self._client = None
                log.warning("ClickHouse unreachable, retrying: %s", exc)
                self._sleep(2.0)
        types: dict[str, dict[str, str]] = {}
        for table, name, type_ in result.result_rows:
            types.setdefault(table, {})[name] = type_
        return types

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


ROW_FAULT_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        469,  # VIOLATED_CONSTRAINT
    }
)
"ClickHouse errors that blame the rows inserted (bisected and dead-lettered), not the server."

_ERROR_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)")


def _refusal_reason(exc: SinkError) -> str:
    """The server's name for its error (``VIOLATED_CONSTRAINT`` -> ``violated_constraint``),
    else its code; ``unserializable`` when the client could not even encode the row."""
    if exc.code is not None:
        match = _ERROR_NAME.search(str(exc))
        return match[1].lower() if match else f"clickhouse_error_{exc.code}"
    return "unserializable"


def _refused_letter(plan: InsertPlan, exc: SinkError) -> DeadLetter:
    origin = plan.origins[0] if plan.origins else None
    row = dict(zip(plan.columns, plan.rows[0], strict=True))
    if origin is None:
        source, key, payload = plan.table, None, repr(row).encode("utf-8", "backslashreplace")
    else:
        source, key = origin.source, origin.key
        payload = origin.payload if isinstance(origin.payload, bytes) else encode(origin.payload)
    log.warning("ClickHouse refused a row of %s (%s): %s", plan.table, source, exc)
    return DeadLetter.of(
        stage=f"processor.clickhouse.{plan.table}",
        error=SchemaError(_refusal_reason(exc), f"{exc}; row {row!r}"),
        source=source,
        key=key,
        payload=payload,
    )
