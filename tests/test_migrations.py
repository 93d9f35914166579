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
    assert "0001_models" in first.stdout and second.stdout.strip() == "applied: nothing"


def test_schema_doc_matches_the_migrations(ch: Any, database: str) -> None:
    """docs/schema.md is what `hubwatch schema` prints for a freshly migrated database, and
    every column says what it means."""
    described = describe_schema(ch, database)
    doc = Path(__file__).parents[1] / "docs" / "schema.md"
    assert described == doc.read_text(), "regenerate: hubwatch schema > docs/schema.md"
    assert "|  |" not in described  # no column without a meaning
