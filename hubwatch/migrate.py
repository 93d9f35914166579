"""Apply the ordered ClickHouse migrations in ``hubwatch/migrations`` once each."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from hubwatch.errors import ConfigError
from hubwatch.retention import DEFAULT_SNAPSHOT_RETENTION_DAYS, apply_snapshot_retention

__all__ = [
    "Migration",
    "applied_summary",
    "apply_migrations",
    "load_migrations",
    "split_statements",
]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


def applied_summary(ran: Sequence[Migration]) -> str:
    """One short line for what :func:`apply_migrations` ran: how many, the first and the
    last (a fresh database runs them all; naming each made a line of 1,000 characters)."""
    names = [f"{m.version:04d}_{m.name}" for m in ran]
    if not names:
        return "applied: nothing"
    if len(names) <= 2:
        return f"applied {len(names)} migration{'s' if len(names) > 1 else ''}: {', '.join(names)}"
    return f"applied {len(names)} migrations: {names[0]} … {names[-1]}"


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("hubwatch.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ConfigError(f"two migrations share a number: {versions}")
    return found


def apply_migrations(
    client: Any, database: str, *, snapshot_retention_days: int = DEFAULT_SNAPSHOT_RETENTION_DAYS
) -> list[Migration]:
    """Create ``database`` if needed and run what has not run yet; returns what ran.

    Records each migration with its checksum in ``schema_migrations``; a recorded migration
    whose file changed since is an error, not a silent re-run. Then sets how long raw
    snapshots are kept (``hubwatch/retention.py``), which is a setting, not a migration.
    """
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    client.command(
        f"CREATE TABLE IF NOT EXISTS `{database}`.schema_migrations "
        "(version UInt32 COMMENT 'the migration file''s number',"
        " name String COMMENT 'the rest of its file name',"
        " checksum String COMMENT 'sha256 of the file as applied; an edited file is refused',"
        " applied_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'when it ran')"
        " ENGINE = MergeTree ORDER BY version"
    )
    applied = {
        int(version): checksum
        for version, checksum in client.query(
            f"SELECT version, checksum FROM `{database}`.schema_migrations"
        ).result_rows
    }
    ran = []
    for migration in load_migrations():
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise ConfigError(
                    f"migration {migration.version:04d}_{migration.name} changed after it was "
                    "applied; add a new migration instead of editing an old one"
                )
            continue
        for statement in split_statements(migration.sql):
            client.command(statement, settings={"database": database})
        client.insert(
            f"`{database}`.schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        ran.append(migration)
    apply_snapshot_retention(client, database, snapshot_retention_days)
    return ran


def split_statements(sql: str) -> Sequence[str]:
    """Split a migration file on ``;`` at line ends; our DDL has no ``;`` inside strings."""
    statements, current = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--") and not current:
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return [s for s in statements if s.strip()]
