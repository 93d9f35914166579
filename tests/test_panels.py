"""Every ClickHouse panel run on the real ClickHouse against realistic data (the processors'
own output), after expanding the plugin's macros and the variables: each returns the
columns its visualisation needs, and rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubwatch.clickhouse import connect
from hubwatch.migrate import apply_migrations
from hubwatch.panels import (
    DASHBOARDS,
    Panel,
    PanelError,
    TimeRange,
    panel,
    panels,
    run_panel,
    variable_options,
)
from tests.panel_data import load_panel_data, panel_now

CLICKHOUSE_PANELS = [p for p in panels() if p.datasource == "clickhouse"]
BASE = "mistralai/Mistral-Small-24B-Base-2501"


@pytest.fixture(scope="module")
def loaded(
    clickhouse_url: str, fixture_items: list[dict[str, Any]]
) -> Iterator[tuple[Any, datetime]]:
    """One database for the module: loading the crawl through the processors is the slow
    part, and the panels only read."""
    from processors.leaderboard import import_leaderboard
    from processors.partitions import replace_partition
    from processors.sinks import ClickHouseWriter

    name = f"hubwatch_test_{uuid.uuid4().hex[:10]}"
    admin = connect(clickhouse_url)
    apply_migrations(admin, name)
    writer = ClickHouseWriter(lambda: connect(clickhouse_url), name)

    def import_board(path: Any) -> Any:
        return import_leaderboard(
            path,
            lambda board, plans: replace_partition(
                lambda: connect(clickhouse_url), name, board, plans
            ),
            writer.write,
        )

    now = panel_now()
    load_panel_data(clickhouse_url, name, fixture_items, import_board, now)
    writer.close()
    client = connect(clickhouse_url, database=name)
    yield client, now
    client.close()
    admin.command(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()


def _whole_range(now: datetime) -> TimeRange:
    # The crawl's models were created from early 2025; snapshots are in the last 30 hours.
    return TimeRange(datetime.fromisoformat("2024-06-01T00:00:00+00:00"), now)


@pytest.mark.parametrize("definition", CLICKHOUSE_PANELS, ids=lambda p: p.id)
def test_panel_returns_its_columns_and_rows(
    definition: Panel, loaded: tuple[Any, datetime]
) -> None:
    client, now = loaded
    time_range = _whole_range(now)
    if definition.dashboard == "hubwatch-engagement":
        time_range = TimeRange.last(timedelta(days=2), now=now)
    result = run_panel(client, definition, time_range, {"base_model": BASE})
    assert result.columns == definition.columns, result.sql
    assert result.rows, f"{definition.id} returned no rows:\n{result.sql}"
    assert result.message is None
    for name in definition.y:
        values = [v for v in result.column(name) if v is not None]
        assert values and all(isinstance(v, int | float) for v in values), (name, values[:5])
    if definition.visualisation == "timeseries":
        assert all(isinstance(t, datetime) for t in result.column("time"))


def test_family_variable_offers_the_base_and_its_panels_follow_it(
    loaded: tuple[Any, datetime],
) -> None:
    client, now = loaded
    family = next(d for d in DASHBOARDS if d.uid == "hubwatch-family")
    options = variable_options(client, family.variables[0])
    assert options[0] == BASE  # the root, with every other member below it
    # Another pick, another family: a leaf of the tree has derivatives of its own or none.
    tree = run_panel(client, panel("family_against_base"), _whole_range(now), {"base_model": BASE})
    assert {r["base"] for r in tree.records()} >= {BASE}
    unknown = run_panel(
        client, panel("family_against_base"), _whole_range(now), {"base_model": "no/such"}
    )
    assert unknown.rows == [] and unknown.message == panel("family_against_base").no_data


def _children(client: Any) -> dict[str, list[str]]:
    """Each family member's direct derivatives, from the parent links as stored."""
    rows = client.query(
        "SELECT model_id, parent_id FROM model_families FINAL WHERE is_deleted = 0"
    ).result_rows
    children: dict[str, list[str]] = {}
    for model, parent in rows:
        children.setdefault(parent, []).append(model)
    return children


def test_a_picked_derivative_shows_its_own_subtree_not_its_whole_family(
    loaded: tuple[Any, datetime],
) -> None:
    client, now = loaded
    children = _children(client)

    def subtree(model: str) -> set[str]:
        found, todo = {model}, [model]
        while todo:
            for child in children.get(todo.pop(), []):
                found.add(child)
                todo.append(child)
        return found

    family = next(d for d in DASHBOARDS if d.uid == "hubwatch-family")
    options = variable_options(client, family.variables[0])
    # A derivative with grandchildren: its branch reaches deeper than one step.
    picks = [o for o in options if o != BASE and any(children.get(c) for c in children.get(o, []))]
    assert picks, "the crawl has a derivative with derivatives of their own"
    pick = picks[0]
    branch = subtree(pick)
    whole = subtree(BASE)
    assert len(branch) > 2 and whole - branch  # the branch is a strict part of the family
    chosen = {"base_model": pick}

    against = run_panel(client, panel("family_against_base"), _whole_range(now), chosen)
    assert {r["model"] for r in against.records()} == branch  # each has a base: the pick too

    top = run_panel(client, panel("family_top_derivatives"), _whole_range(now), chosen)
    assert top.rows and {r["model"] for r in top.records()} <= branch

    by_relation = run_panel(client, panel("family_tree_by_relation"), _whole_range(now), chosen)
    assert sum(by_relation.column("models")) == len(branch)


def test_top_derivatives_are_the_picks_own_with_their_depth_below_it(
    loaded: tuple[Any, datetime],
) -> None:
    """For the root and for a pick below it: the pick's derivatives, never the pick, each
    at its depth below the pick, as a plain walk of the parent links finds them."""
    client, now = loaded
    children = _children(client)

    def below(model: str) -> dict[str, int]:
        depths, todo = {}, [(model, 0)]
        while todo:
            at, depth = todo.pop()
            for child in children.get(at, []):
                depths[child] = depth + 1
                todo.append((child, depth + 1))
        return depths

    snapshotted = {r[0] for r in client.query("SELECT repo_id FROM engagement_live").result_rows}
    family = next(d for d in DASHBOARDS if d.uid == "hubwatch-family")
    options = variable_options(client, family.variables[0])
    pick = next(o for o in options if o != BASE and any(children.get(c) for c in children[o]))
    for model in (BASE, pick):
        expected = {m: d for m, d in below(model).items() if m in snapshotted}
        top = run_panel(
            client, panel("family_top_derivatives"), _whole_range(now), {"base_model": model}
        )
        got = {r["model"]: r["depth_below_base"] for r in top.records()}
        assert model not in got
        assert len(got) == min(len(expected), 20) and got.items() <= expected.items(), model
        if model == pick:
            assert max(got.values()) > 1  # grandchildren of the pick are 2 below it


def test_architectures_table_matches_the_families(loaded: tuple[Any, datetime]) -> None:
    """The live central table counts each derivative once, under its own architecture."""
    client, now = loaded
    result = run_panel(client, panel("architectures"), _whole_range(now))
    expected = client.query(
        "SELECT architecture, count() FROM model_families FINAL"
        " WHERE is_deleted = 0 AND parent_id != '' AND architecture != '' GROUP BY architecture"
    ).result_rows
    assert {r["architecture"]: r["derivatives"] for r in result.records()} == dict(expected)
    # The board scores the root and five of its finetunes (-1.5, 0, 1.5, 3, 4.5 points):
    # three are Mistral, one a BERT classifier, one has no architecture (not in the table).
    by_architecture = {r["architecture"]: r for r in result.records()}
    mistral = by_architecture["MistralForCausalLM"]
    assert (mistral["scored"], mistral["median_accuracy_change"]) == (3, 1.5)
    bert = by_architecture["BertForSequenceClassification"]
    assert (bert["scored"], bert["median_accuracy_change"], bert["median_size_change"]) == (
        1,
        0.0,
        0.007,
    )
    family = run_panel(
        client, panel("family_against_base"), _whole_range(now), {"base_model": BASE}
    )
    changes = sorted(
        r["accuracy_change"] for r in family.records() if r["accuracy_change"] is not None
    )
    assert changes == [-1.5, 0.0, 1.5, 3.0, 4.5]


def test_time_range_limits_the_panels(loaded: tuple[Any, datetime]) -> None:
    client, now = loaded
    empty = TimeRange(now + timedelta(days=1), now + timedelta(days=2))
    for definition in CLICKHOUSE_PANELS:
        if "$__timeFilter" not in definition.query:
            continue
        result = run_panel(client, definition, empty, {"base_model": BASE})
        if definition.visualisation == "stat":
            assert result.rows == [(0,)], definition.id
        else:
            assert result.rows == [], definition.id


def test_missing_variable_and_promql_panels_are_refused(loaded: tuple[Any, datetime]) -> None:
    client, now = loaded
    with pytest.raises(PanelError, match="base_model"):
        run_panel(client, panel("family_top_derivatives"), _whole_range(now))
    with pytest.raises(PanelError, match="Prometheus"):
        run_panel(client, panel("poll_lag"), _whole_range(now))


def test_top_movers_break_ties_by_all_time_downloads_then_id(ch: Any) -> None:
    """Where every 24-hour gain is 0 (a quiet hour, a replay), the table still ranks by
    something that matters: all-time downloads, then the id."""
    at = datetime.now(UTC).replace(microsecond=0)
    models = {"a/quiet": 10, "b/popular": 90_000, "c/middling": 500, "d/middling": 500}
    ch.insert(
        "engagement_live",
        [[repo, at, 0, total, 0, 0, 0, 0, 0, 0, 0.0, 0.0] for repo, total in models.items()],
        column_names=[
            "repo_id", "at", "likes", "downloads_all_time", "likes_1h", "likes_24h", "likes_7d",
            "downloads_1h", "downloads_24h", "downloads_7d", "velocity_per_hour", "acceleration",
        ],
    )  # fmt: skip
    result = run_panel(ch, panel("top_movers"), TimeRange.last(timedelta(hours=1), now=at))
    assert result.column("model") == ["b/popular", "c/middling", "d/middling", "a/quiet"]


def test_a_database_not_migrated_yet_reads_as_starting(clickhouse_url: str) -> None:
    """The seconds after `hubwatch run` starts its server, before the migrations have made
    the tables: the view's panels and its model picker say it is starting, not an error
    (and not "no data"), for an empty database and for one not created yet."""
    import asyncio

    from hubwatch.errors import NotMigrated
    from hubwatch.view import PanelSource
    from hubwatch.view.data import STARTING

    name = f"hubwatch_test_{uuid.uuid4().hex[:10]}"
    admin = connect(clickhouse_url)

    async def ask(database: str) -> None:
        source = PanelSource(clickhouse_url, database)
        try:
            for definition in (panel("architectures"), panel("recent_alerts")):
                data = await source.panel(definition, "now-7d", {})
                assert (data.state, data.message) == ("starting", STARTING), definition.id
                assert data.detail == (
                    f"hubwatch's tables are not created yet in database {database}; run "
                    "`hubwatch migrate` (or wait for `hubwatch run` to finish starting)"
                )
            family = next(d for d in DASHBOARDS if d.uid == "hubwatch-family")
            with pytest.raises(NotMigrated):
                await source.options(family, "base_model")
        finally:
            await source.close()

    try:
        asyncio.run(ask(name))  # no database yet
        admin.command(f"CREATE DATABASE `{name}`")
        asyncio.run(ask(name))  # the database, no tables yet
        apply_migrations(admin, name)
        client = connect(clickhouse_url, database=name)
        client.command("DROP TABLE alerts")  # migrated: a missing table is not "starting"
        source = PanelSource(clickhouse_url, name)
        dropped = asyncio.run(source.panel(panel("recent_alerts"), "now-7d", {}))
        asyncio.run(source.close())
        client.close()
        assert dropped.state == "error" and "Unknown table" in (dropped.message or "")
    finally:
        admin.command(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
