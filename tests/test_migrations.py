"""Migrations on the real ClickHouse: ordered, recorded, idempotent, edit-proof."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from hubwatch import migrate
from hubwatch.errors import ConfigError
from hubwatch.schema import describe_schema


def test_applied_once_and_recorded(ch: Any, database: str) -> None:
    assert migrate.apply_migrations(ch, database) == []  # the fixture already applied them
    recorded = ch.query("SELECT version, name FROM schema_migrations ORDER BY version")
    expected = [(m.version, m.name) for m in migrate.load_migrations()]
    assert recorded.result_rows == expected
    tables = {r[0] for r in ch.query("SHOW TABLES").result_rows}
    assert {"models", "lineage_edges", "dead_letters", "schema_migrations"} <= tables


def test_an_edited_migration_is_refused(
    ch: Any, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = migrate.load_migrations()
    edited = [dataclasses.replace(original[0], sql=original[0].sql + "\n-- edited")]
    monkeypatch.setattr(migrate, "load_migrations", lambda: edited + original[1:])
    with pytest.raises(ConfigError, match="changed after it was applied"):
        migrate.apply_migrations(ch, database)


def test_cli_migrate(clickhouse_url: str) -> None:
    import uuid

    from tests.conftest import hubwatch

    name = f"hubwatch_cli_{uuid.uuid4().hex[:8]}"
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": name}
    try:
        first = hubwatch("migrate", env=env)
        second = hubwatch("migrate", env=env)
    finally:
        hubwatch("sql", f"DROP DATABASE IF EXISTS {name}", env=env)
    assert first.returncode == 0, first.stderr
    assert second.stdout.strip() == "applied: nothing"
    # One short line: how many, the first and the last, not every name.
    last = migrate.load_migrations()[-1]
    assert first.stdout.strip() == (
        f"applied {len(migrate.load_migrations())} migrations: 0001_models … "
        f"{last.version:04d}_{last.name}"
    )


def test_schema_doc_matches_the_migrations(ch: Any, database: str) -> None:
    """docs/schema.md is what `hubwatch schema` prints for a freshly migrated database, and
    every column says what it means."""
    described = describe_schema(ch, database)
    doc = Path(__file__).parents[1] / "docs" / "schema.md"
    assert described == doc.read_text(), "regenerate: hubwatch schema > docs/schema.md"
    assert "|  |" not in described  # no column without a meaning


def test_snapshot_retention_is_a_setting(clickhouse_url: str) -> None:
    """HUBWATCH_SNAPSHOT_RETENTION_DAYS sets the TTL of raw snapshots at `hubwatch migrate`:
    expired snapshots go, their hourly aggregates stay; re-running changes nothing."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from hubwatch.clickhouse import connect
    from hubwatch.retention import snapshot_retention_days
    from tests.conftest import hubwatch

    name = f"hubwatch_ttl_{uuid.uuid4().hex[:8]}"
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": name}
    ch = connect(clickhouse_url, database="default")
    try:
        assert hubwatch("migrate", env=env).returncode == 0
        assert snapshot_retention_days(ch, name) == 90
        now = datetime.now(UTC)
        # 40 and 1 days old: always in different monthly parts.
        ch.insert(
            f"{name}.model_snapshots",
            [["org/m", now - timedelta(days=40), 1, 1, 1, 0.0], ["org/m", now, 2, 2, 2, 0.0]],
            column_names=[
                "repo_id",
                "observed_at",
                "downloads",
                "downloads_all_time",
                "likes",
                "trending_score",
            ],
        )

        def kept() -> tuple[int, int]:
            ch.command(f"OPTIMIZE TABLE {name}.model_snapshots FINAL")
            snapshots = ch.query(f"SELECT count() FROM {name}.model_snapshots").result_rows
            hours = ch.query(f"SELECT count() FROM {name}.engagement_hourly").result_rows
            return snapshots[0][0], hours[0][0]

        assert kept() == (2, 2)
        short = hubwatch("migrate", env={**env, "HUBWATCH_SNAPSHOT_RETENTION_DAYS": "30"})
        assert short.returncode == 0, short.stderr
        assert snapshot_retention_days(ch, name) == 30
        assert kept() == (1, 2)  # the 40-day-old poll is gone, its hour is not
        again = hubwatch("migrate", env={**env, "HUBWATCH_SNAPSHOT_RETENTION_DAYS": "30"})
        assert (
            again.stdout.strip() == "applied: nothing" and snapshot_retention_days(ch, name) == 30
        )
        forever = hubwatch("migrate", env={**env, "HUBWATCH_SNAPSHOT_RETENTION_DAYS": "0"})
        assert forever.returncode == 0 and snapshot_retention_days(ch, name) == 0
        too_short = hubwatch("migrate", env={**env, "HUBWATCH_SNAPSHOT_RETENTION_DAYS": "7"})
        assert too_short.returncode != 0 and "Traceback" not in too_short.stderr
        assert "snapshot_retention_days must be 0 (for ever) or at least 16" in too_short.stderr
        assert snapshot_retention_days(ch, name) == 0
    finally:
        ch.command(f"DROP DATABASE IF EXISTS {name}")
        ch.close()
