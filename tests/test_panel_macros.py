"""The Grafana ClickHouse plugin's macros, with the cases its documentation and its own tests
give (README macro table; pkg/macros/macros_test.go: 2014-11-12T11:45:26.371Z to
2015-11-12T11:45:26.371Z, a 20 s interval), Grafana's variable formats, and the expanded
SQL run on the real ClickHouse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubwatch.panels.macros import (
    ALL,
    MacroError,
    Selection,
    TimeRange,
    auto_interval,
    expand,
)

RANGE = TimeRange(
    datetime.fromisoformat("2014-11-12T11:45:26.371+00:00"),
    datetime.fromisoformat("2015-11-12T11:45:26.371+00:00"),
)
TWENTY = timedelta(seconds=20)


def _expand(sql: str, **variables: Any) -> str:
    return expand(sql, RANGE, interval=TWENTY, variables=variables)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "$__timeFilter(time)",
            "time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)",
        ),
        (
            "$__timeFilter_ms(time)",
            "time >= fromUnixTimestamp64Milli(1415792726371)"
            " AND time <= fromUnixTimestamp64Milli(1447328726371)",
        ),
        ("$__dateFilter(date)", "date >= toDate('2014-11-12') AND date <= toDate('2015-11-12')"),
        (
            "$__dateTimeFilter(date, time)",
            "(date >= toDate('2014-11-12') AND date <= toDate('2015-11-12'))"
            " AND (time >= toDateTime(1415792726) AND time <= toDateTime(1447328726))",
        ),
        (
            "$__dt(d, t)",
            "(d >= toDate('2014-11-12') AND d <= toDate('2015-11-12'))"
            " AND (t >= toDateTime(1415792726) AND t <= toDateTime(1447328726))",
        ),
        ("$__fromTime", "toDateTime(1415792726)"),
        ("$__toTime", "toDateTime(1447328726)"),
        ("$__fromTime_ms", "fromUnixTimestamp64Milli(1415792726371)"),
        ("$__toTime_ms", "fromUnixTimestamp64Milli(1447328726371)"),
        ("$__fromTime()", "toDateTime(1415792726)"),
        ("$__interval_s", "20"),
        ("$__timeInterval(column)", "toStartOfInterval(toDateTime(column), INTERVAL 20 second)"),
        (
            "$__timeInterval_ms(column)",
            "toStartOfInterval(toDateTime64(column, 3), INTERVAL 20000 millisecond)",
        ),
        # An argument that is itself a call keeps its commas.
        (
            "$__timeFilter(toDateTime(at, 'UTC'))",
            "toDateTime(at, 'UTC') >= toDateTime(1415792726)"
            " AND toDateTime(at, 'UTC') <= toDateTime(1447328726)",
        ),
    ],
)
def test_documented_macros(sql: str, expected: str) -> None:
    assert _expand(sql) == expected


def test_interval_below_a_second_is_one_second_and_ms_keeps_its_precision() -> None:
    sql = "$__interval_s $__timeInterval(c) $__timeInterval_ms(c)"
    out = expand(sql, RANGE, interval=timedelta(milliseconds=250))
    assert out == (
        "1 toStartOfInterval(toDateTime(c), INTERVAL 1 second)"
        " toStartOfInterval(toDateTime64(c, 3), INTERVAL 250 millisecond)"
    )


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (Selection(("a", "b"), all=True), "1=1"),
        (Selection(("a",)), "col IN (${v:singlequote})"),
        (Selection(("a", "b")), "col IN (${v:singlequote})"),
        (Selection(("",)), "1=1"),
    ],
)
def test_conditional_all_is_the_condition_unless_all_is_selected(
    selection: Selection, expected: str
) -> None:
    from hubwatch.panels.macros import _conditional_all

    sql = "$__conditionalAll(col IN (${v:singlequote}), $v)"
    assert _conditional_all(sql, {"v": selection}) == expected
    braced = "$__conditionalAll(col IN (${v:singlequote}), ${v})"
    assert _conditional_all(braced, {"v": selection}) == expected


def test_conditional_all_then_variables_then_macros() -> None:
    sql = (
        "WHERE $__timeFilter(at) AND $__conditionalAll(rule IN (${rule:singlequote}), $rule)"
        " AND $__conditionalAll(target IN (${target:singlequote}), $target)"
    )
    out = _expand(sql, rule=Selection(("x", "y"), all=True), target=["t1", "t'2"])
    assert out == (
        "WHERE at >= toDateTime(1415792726) AND at <= toDateTime(1447328726)"
        " AND 1=1 AND target IN ('t1','t\\'2')"
    )


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        ("", "a", "a"),
        ("", ["a", "b"], "{a,b}"),
        (":csv", ["a", "b"], "a,b"),
        (":singlequote", ["a", "it's"], "'a','it\\'s'"),
        (":doublequote", ["a", "b"], '"a","b"'),
        (":sqlstring", ["a", "it's"], "'a','it''s'"),
        (":sqlstring", "o'neil/model", "'o''neil/model'"),
        (":pipe", ["a", "b"], "a|b"),
        (":raw", ["a", "b"], "a,b"),
        (":json", ["a", "b"], '["a", "b"]'),
        (":regex", ["a.b", "c"], "(a\\.b|c)"),
    ],
)
def test_variable_formats(fmt: str, value: Any, expected: str) -> None:
    assert _expand(f"${{v{fmt}}}", v=value) == expected
    if not fmt:
        assert _expand("$v", v=value) == expected
        assert _expand("[[v]]", v=value) == expected


def test_all_with_a_custom_all_value_and_grafana_globals() -> None:
    assert _expand("${v:singlequote}", v=Selection(("a",), all=True, all_value="%")) == "%"
    assert _expand("$__from $__to $__interval $__interval_ms") == (
        "1415792726371 1447328726371 20s 20000"
    )
    assert ALL == "$__all"


def test_mistakes_are_reported() -> None:
    with pytest.raises(MacroError, match=r"\$missing"):
        _expand("SELECT $missing")
    with pytest.raises(MacroError, match="timeFilter"):
        _expand("$__timeFilter()")
    with pytest.raises(MacroError, match="dateTimeFilter"):
        _expand("$__dateTimeFilter(a)")
    with pytest.raises(MacroError, match="conditionalAll"):
        _expand("$__conditionalAll(a)")
    with pytest.raises(MacroError, match="unknown variable format"):
        _expand("${v:bogus}", v="a")
    with pytest.raises(MacroError, match="timezone"):
        TimeRange(datetime(2025, 1, 1), datetime(2025, 1, 2))  # noqa: DTZ001


def test_auto_interval_rounds_to_grafanas_steps() -> None:
    day = TimeRange(RANGE.start, RANGE.start + timedelta(days=1))
    assert auto_interval(day, max_points=500) == timedelta(minutes=5)  # 172.8 s -> 5 min
    assert auto_interval(day, max_points=500, minimum=timedelta(hours=1)) == timedelta(hours=1)


def test_expanded_macros_run_on_clickhouse(clickhouse_url: str) -> None:
    from hubwatch.clickhouse import connect

    client = connect(clickhouse_url)
    sql = _expand(
        "SELECT $__timeInterval(t) AS bucket, $__timeInterval_ms(t) AS bucket_ms, count() AS n"
        " FROM (SELECT toDateTime64('2015-01-01 00:00:07.5', 3, 'UTC') AS t, toDate(t) AS d)"
        " WHERE $__timeFilter(t) AND $__timeFilter_ms(t) AND $__dateFilter(d)"
        " AND $__dateTimeFilter(d, t) AND t > $__fromTime AND t < $__toTime"
        " AND t > $__fromTime_ms AND t < $__toTime_ms AND $__interval_s = 20"
        " AND $__conditionalAll(d IN (${day:singlequote}), $day)"
        " GROUP BY bucket, bucket_ms",
        day=Selection(("2015-01-01",), all=True),
    )
    rows = client.query(sql).result_rows
    start = datetime(2015, 1, 1, tzinfo=UTC)
    assert rows == [(start, start, 1)]
    client.close()
