"""Publish a whole partition at once: rows go to a staging twin of the table first, then
``ALTER TABLE … REPLACE PARTITION … FROM`` swaps them in atomically. Readers see the old
rows or the new, never a mix, and never both (no doubled rows waiting for a merge)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from hubwatch.errors import SinkError
from processors.plans import InsertPlan

__all__ = ["replace_partition"]


def replace_partition(
    connect: Callable[[], Any],
    database: str,
    partition: str,
    plans: Sequence[InsertPlan],
    *,
    stale_after: float = 3600.0,
) -> None:
    """Make ``partition`` of each plan's table hold exactly the plan's rows (none: empty).

    Each table's swap is atomic; the tables are swapped one after another.
    """
    from clickhouse_connect.driver.exceptions import Error, OperationalError

    client = connect()
    staged: list[str] = []
    try:
        _drop_stale_staging(client, database, {plan.table for plan in plans}, stale_after)
        for plan in plans:
            table = f"`{database}`.`{plan.table}`"
            staging = f"`{database}`.`{plan.table}_import_{uuid.uuid4().hex[:12]}`"
            client.command(f"CREATE TABLE {staging} AS {table}")
            staged.append(staging)
            if plan.rows:
                client.insert(staging, plan.rows, column_names=list(plan.columns))
        for plan, staging in zip(plans, staged, strict=True):
            client.command(
                f"ALTER TABLE `{database}`.`{plan.table}` REPLACE PARTITION {{p:String}} "
                f"FROM {staging}",
                parameters={"p": partition},
                # 26.9 refuses an empty source unless told: an import with no rows for a
                # table (a v1 board has no edges) means exactly "the board has none".
                settings={"allow_replace_partition_from_empty_source": int(not plan.rows)},
            )
    except OperationalError as exc:
        raise SinkError(f"ClickHouse unreachable: {exc}", retriable=True) from exc
    except Error as exc:
        raise SinkError(f"ClickHouse refused the import: {exc}") from exc
    finally:
        for staging in staged:
            # An unreachable server keeps a staging table, never a half import.
            with contextlib.suppress(Error, OSError):
                client.command(f"DROP TABLE IF EXISTS {staging}")
        client.close()


def _drop_stale_staging(client: Any, database: str, tables: set[str], older: float) -> None:
    """Staging tables left by imports that died (kill -9, a lost server) ``older`` seconds
    ago or more; a younger one may be another import's, at work."""
    stale = client.query(
        "SELECT name FROM system.tables WHERE database = {db:String}"
        " AND match(name, {pattern:String})"
        " AND metadata_modification_time <= now() - {age:UInt32}",
        parameters={
            "db": database,
            "pattern": "^(" + "|".join(sorted(tables)) + ")_import_[0-9a-f]{12}$",
            "age": int(older),
        },
    ).result_rows
    for (name,) in stale:
        client.command(f"DROP TABLE IF EXISTS `{database}`.`{name}`")
