"""Every user-facing command fails with one clear line and a non-zero exit, never a
traceback; a leaderboard import is all or nothing. Each runs the real CLI as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, free_port, hubwatch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
V1 = DATA / "open_llm_leaderboard_v1_final_2024-07-07.csv"
V2 = DATA / "open_llm_leaderboard_v2_sample1000_2025-03-21.csv"
ALERT_RULES = Path(__file__).resolve().parents[1] / "deploy" / "alerts.example.yaml"


def _one_line_failure(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hubwatch: "), done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def env(clickhouse_url: str, database: str, tmp_path: Path) -> dict[str, str]:
    return {
        "HUBWATCH_CLICKHOUSE_URL": clickhouse_url,
        "HUBWATCH_CLICKHOUSE_DATABASE": database,
        "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
    }


def test_bad_sql_shows_the_servers_message_about_it(env: dict[str, str]) -> None:
    line = _one_line_failure(hubwatch("sql", "SELEC 1", env=env), "Syntax error")
    assert "FORMAT" not in line and "DB::Exception" not in line and "version" not in line
    done = hubwatch("sql", "SELECT 41 + 1 AS answer", env=env)
    assert done.returncode == 0 and "42" in done.stdout


def test_select_star_of_a_table_of_aggregate_states_prints_them_finalized(
    env: dict[str, str], ch: Any
) -> None:
    """engagement_hourly keeps argMin/argMax states (binary): `SELECT *` shows their
    values, says so, and never fails on bytes that are not UTF-8."""
    ch.command(
        "INSERT INTO engagement_hourly (hour, repo_id, likes_first, likes_last,"
        " downloads_first, downloads_last)"
        " SELECT toStartOfHour(now()), 'org/model', argMinState(toUInt64(5), now64(3)),"
        " argMaxState(toUInt64(7), now64(3)), argMinState(toUInt64(300), now64(3)),"
        " argMaxState(toUInt64(3000002), now64(3))"
    )
    done = hubwatch("sql", "SELECT * FROM engagement_hourly;", env=env)
    assert done.returncode == 0, done.stderr
    assert "org/model" in done.stdout and "3000002" in done.stdout, done.stdout
    assert done.stderr.strip() == (
        "likes_first, likes_last, downloads_first, downloads_last: aggregate function "
        "states, shown finalized (finalizeAggregation of each row's own state)"
    )
    # What cannot be finalized (a format named in the SQL, a String of raw bytes) prints
    # its bytes escaped.
    done = hubwatch("sql", "SELECT * FROM engagement_hourly FORMAT TSV", env=env)
    assert done.returncode == 0 and "org/model" in done.stdout, done.stderr
    done = hubwatch("sql", "SELECT unhex('ff41') AS raw", env=env)
    assert done.returncode == 0 and "\\xffA" in done.stdout, done.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["query", "nosuch"], "no canned query 'nosuch'"),
        (["query", "tree", "--param", "model"], "bad --param 'model'"),
        (["query", "tree", "--param", "x=1"], "tree has no parameter 'x'"),
        (["query", "tree"], "tree needs --param model"),
        (["query", "engagement", "--param", "at=yesterday"], "Cannot parse datetime"),
    ],
)
def test_bad_query_use(env: dict[str, str], args: list[str], needle: str) -> None:
    _one_line_failure(hubwatch(*args, env=env), needle)


def test_a_model_hubwatch_does_not_know_is_said_so_with_the_id_meant(
    env: dict[str, str], ch: Any
) -> None:
    ch.command("INSERT INTO models (repo_id) VALUES ('Org/Model-X')")
    ch.command(
        "INSERT INTO model_aliases (alias_id, canonical_id, resolved_by)"
        " VALUES ('old/name', 'Org/Model-X', 'redirect')"
    )
    _one_line_failure(
        hubwatch("query", "tree", "--param", "model=nobody/nothing", env=env),
        "--param model: model 'nobody/nothing' is not known to hubwatch",
    )
    line = _one_line_failure(hubwatch("query", "tree", "--param", "model=org/model-x", env=env))
    assert line.endswith("did you mean 'Org/Model-X'?"), line
    line = _one_line_failure(hubwatch("query", "tree", "--param", "model=old/name", env=env))
    assert line.endswith("did you mean 'Org/Model-X'?"), line
    # Known, but the lineage has not placed it yet: no rows, said, and no failure.
    done = hubwatch("query", "tree", "--param", "model=Org/Model-X", env=env)
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert done.stderr.strip() == (
        "tree: Org/Model-X is known, but not placed in a family yet (model_families)"
    )


def test_query_and_each_query_parameter_say_what_they_are(env: dict[str, str]) -> None:
    import argparse

    from hubwatch.cli import _parser
    from hubwatch.queries import canned_queries

    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    query = commands.choices["query"]
    for action in query._actions:
        assert action.help, action.dest
    listed = hubwatch("query", "--list", env=env)
    assert listed.returncode == 0, listed.stderr
    for name, canned in canned_queries().items():
        assert set(canned.param_help) == set(canned.params), name
        for param, text in canned.param_help.items():
            assert f"--param {param}=<{canned.params[param]}>  {text}" in listed.stdout
        assert "-- param" not in canned.description and "defaults:" not in canned.description


def test_a_query_that_throws_says_its_own_words_not_the_plan_it_stopped(
    env: dict[str, str],
) -> None:
    # How the canned queries refuse a bad --param by (throwIf), on rows so it fires.
    sql = "SELECT number FROM numbers(3) WHERE throwIf(number = 1, 'by must be x') = 0"
    line = _one_line_failure(hubwatch("sql", sql, env=env), "by must be x")
    assert "while executing" not in line and "FUNCTION" not in line, line


@pytest.mark.parametrize("created", [False, True], ids=["no database", "no tables"])
def test_before_the_migrations_every_command_says_so_in_one_line(
    clickhouse_url: str, tmp_path: Path, created: bool
) -> None:
    """Right after `hubwatch run` starts its server, before the migrations have made the
    tables (or against a database never migrated), a command says that, not the server's
    "unknown table" (nor "refreshable view doesn't exist")."""
    import uuid

    from hubwatch.clickhouse import connect

    name = f"hubwatch_test_{uuid.uuid4().hex[:10]}"
    env = {
        "HUBWATCH_CLICKHOUSE_URL": clickhouse_url,
        "HUBWATCH_CLICKHOUSE_DATABASE": name,
        "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
    }
    expected = (
        f"hubwatch: hubwatch's tables are not created yet in database {name}; run "
        "`hubwatch migrate` (or wait for `hubwatch run` to finish starting)"
    )
    admin = connect(clickhouse_url)
    try:
        if created:
            admin.command(f"CREATE DATABASE `{name}`")
        for args in (
            ["query", "breakouts"],  # reads a summary
            ["query", "tree", "--param", "model=a/b"],  # reads tables
            ["query", "engagement", "--fresh"],
            ["sql", "SELECT count() FROM models"],
            ["report", "--out", str(tmp_path / "report")],
            ["alerts", "test", str(ALERT_RULES)],
        ):
            assert _one_line_failure(hubwatch(*args, env=env)) == expected, args
        # Migrated, a table the user names that does not exist is the server's word on it.
        assert hubwatch("migrate", env=env).returncode == 0
        line = _one_line_failure(hubwatch("sql", "SELECT * FROM no_such_table", env=env))
        assert "no_such_table" in line and "not created yet" not in line, line
        # Migrated, a model it never saw is the user's to fix, said as such.
        done = hubwatch("query", "tree", "--param", "model=a/b", env=env)
        _one_line_failure(done, "model 'a/b' is not known to hubwatch")
    finally:
        admin.command(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def test_missing_fixture_is_refused_before_anything_starts(
    env: dict[str, str], tmp_path: Path
) -> None:
    missing = str(tmp_path / "nope.csv")
    port = str(free_port())
    done = hubwatch(
        "run", "--replay", "--fixture", missing, "--http-port", port, "--tcp-port", port, env=env
    )
    _one_line_failure(done, "no such file", missing)
    assert not (tmp_path / "state").exists()  # no ClickHouse started, nothing migrated
    _one_line_failure(
        hubwatch("replay", "--fixture", missing, "--port", port, env=env), "no such file"
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--replay-rate", "0"], "--replay-rate must be positive"),
        (["--replay-rate", "-1"], "--replay-rate must be positive"),
        (["--replay-activity", "-3"], "--replay-activity must not be negative"),
        (["--poll-interval", "-5"], "--poll-interval must be positive"),
        (["--http-port", "99999"], "--http-port must be a port number"),
        (["--http-port", "PORT", "--tcp-port", "PORT"], "must differ"),
    ],
)
def test_run_refuses_bad_numbers_before_anything_starts(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    port = str(free_port())
    if "--http-port" not in args:
        args = [*args, "--http-port", port]
    if "--tcp-port" not in args:
        args = [*args, "--tcp-port", str(free_port())]
    args = [port if a == "PORT" else a for a in args]
    state = tmp_path / "state"
    done = hubwatch(
        "run", "--replay", *args, env={"HUBWATCH_STATE_DIR": str(state), "HUBWATCH_VIEW_PORT": "0"}
    )
    _one_line_failure(done, needle)
    assert not state.exists()  # no ClickHouse started, nothing migrated


def test_unreachable_services(env: dict[str, str]) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    _one_line_failure(
        hubwatch("--clickhouse-url", f"http://{nowhere}", "migrate", env=env),
        "cannot reach ClickHouse",
    )
    _one_line_failure(hubwatch("--kafka", nowhere, "topics", "--create", env=env), "Kafka")
    _one_line_failure(hubwatch("--kafka", nowhere, "poll", "hub", "--once", env=env), "Kafka")


@pytest.mark.parametrize(
    "args",
    [["migrate"], ["schema"], ["query", "family_growth"], ["alerts", "test", "RULES"]],
)
def test_no_clickhouse_says_what_to_do_not_the_http_librarys_internals(
    env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: any\n    match: {relation: finetune}\n")
    url = f"http://127.0.0.1:{free_port()}"
    args = [str(rules) if a == "RULES" else a for a in args]
    line = _one_line_failure(
        hubwatch(*args, env={**env, "HUBWATCH_CLICKHOUSE_URL": url}),
        f"cannot reach ClickHouse at {url}",
        "connection refused",
        "hubwatch run",
    )
    for internal in ("HTTPConnectionPool", "urllib3", "query_id", "object at 0x"):
        assert internal not in line, line


def _scores(ch: Any, final: bool = False) -> int:
    return int(
        ch.query(f"SELECT count() FROM leaderboard_scores {'FINAL' if final else ''}").result_rows[
            0
        ][0]
    )


def _import(path: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return hubwatch("import", "leaderboard", str(path), *extra, env=env)


def test_import_twice_replaces(env: dict[str, str], ch: Any) -> None:
    for _ in range(2):
        assert _import(V1, env).returncode == 0
        assert _import(V2, env).returncode == 0
    distinct = ch.query(
        "SELECT uniqExact(board, model_id, precision, benchmark) FROM leaderboard_scores"
    ).result_rows[0][0]
    assert _scores(ch) == _scores(ch, final=True) == distinct == 7169 * 7 + 1000 * 7
    edges = "SELECT count(), uniqExact(derivative_id, base_model_id) FROM leaderboard_edges"
    assert ch.query(edges).result_rows == [(157, 157)]


def test_truncated_file_imports_nothing(env: dict[str, str], ch: Any, tmp_path: Path) -> None:
    cut = tmp_path / "v1_cut.csv"
    data = V1.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # in the middle of a line, as a killed copy does
    _one_line_failure(_import(cut, env), "cut short")
    assert _scores(ch) == 0


def test_file_cut_inside_its_last_column(env: dict[str, str], ch: Any, tmp_path: Path) -> None:
    data = V2.read_bytes()
    assert data.endswith(b"\r\n")
    cut = tmp_path / "v2_cut.csv"
    cut.write_bytes(data[:-6])  # the last field, metadata_co2_cost, loses its last digits
    _one_line_failure(_import(cut, env), "cut short", "line 1001")
    assert _scores(ch) == 0


def test_a_failed_import_keeps_the_board_it_had(
    env: dict[str, str], ch: Any, tmp_path: Path
) -> None:
    assert _import(V2, env).returncode == 0
    lines = V2.read_bytes().split(b"\r\n")
    short = tmp_path / "v2_short_row.csv"
    short.write_bytes(b"\r\n".join([*lines[:500], b"a,b,c", *lines[500:]]))
    _one_line_failure(_import(short, env), "line 501", "3 fields")
    assert _scores(ch) == 7000


def test_a_file_cut_at_a_line_break_does_not_replace_the_board(
    env: dict[str, str], ch: Any, tmp_path: Path
) -> None:
    """Cut at a line break, a dump reads as a sound, shorter one: far fewer scores than the
    board holds, or none at all, need --force."""
    assert _import(V2, env).returncode == 0
    lines = V2.read_bytes().split(b"\r\n")
    head = tmp_path / "v2_head.csv"
    head.write_bytes(b"\r\n".join(lines[:300]) + b"\r\n")  # `head -n 300`
    _one_line_failure(_import(head, env), "shrinking_board", "7000 scores", "--force")
    header_only = tmp_path / "v2_header.csv"
    header_only.write_bytes(lines[0] + b"\r\n")
    _one_line_failure(_import(header_only, env), "empty_board")
    assert _scores(ch) == 7000
    assert _import(head, env, "--force").returncode == 0
    assert _scores(ch) == 299 * 7


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (bytes(range(256)) * 40, "not UTF-8"),
        (b"\x00\x01PK\x03\x04" + b"\x00" * 64 + b"\n", "binary"),
        ("fullname,average,arc,gsm8k\nmodèle,1,2,3\n".encode("latin-1"), "not UTF-8"),
        (V2.read_text(encoding="utf-8").encode("utf-16"), "not UTF-8"),
        (b"", "neither the v1 nor the v2"),
    ],
    ids=["random", "binary", "latin1", "utf16", "empty"],
)
def test_unreadable_files(
    env: dict[str, str], ch: Any, tmp_path: Path, content: bytes, needle: str
) -> None:
    path = tmp_path / "board.csv"
    path.write_bytes(content)
    _one_line_failure(_import(path, env), needle)
    assert _scores(ch) == 0


def test_an_import_drops_staging_tables_left_by_a_dead_one(
    clickhouse_url: str, database: str, ch: Any
) -> None:
    """An import killed mid-way leaves its staging table; the next import drops it once it
    is old enough not to be another import's at work."""
    from hubwatch.clickhouse import connect
    from processors.partitions import replace_partition
    from processors.sinks import InsertPlan

    left = "leaderboard_scores_import_0123456789ab"
    ch.command(f"CREATE TABLE {left} AS leaderboard_scores")
    empty = [InsertPlan("leaderboard_scores", (), [])]

    def tables() -> set[str]:
        return {name for (name,) in ch.query("SHOW TABLES").result_rows}

    replace_partition(lambda: connect(clickhouse_url), database, "open_llm_v1", empty)
    assert left in tables()  # young: perhaps another import's
    replace_partition(
        lambda: connect(clickhouse_url), database, "open_llm_v1", empty, stale_after=0
    )
    assert not {t for t in tables() if "_import_" in t}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["alerts", "check", "DIR"], "an alert rules YAML file"),
        (["alerts", "test", "DIR"], "an alert rules YAML file"),
        (["import", "leaderboard", "DIR"], "an Open LLM Leaderboard CSV file"),
        (["replay", "--fixture", "DIR", "--port", "PORT"], "a replay fixture CSV file"),
        (["replay", "--extra", "DIR", "--port", "PORT"], "a JSONL file of raw API items"),
        (["run", "--replay", "--fixture", "DIR"], "a replay fixture CSV file"),
        (["run", "--replay", "--replay-extra", "DIR"], "a JSONL file of raw API items"),
    ],
)
def test_a_directory_given_for_a_file_says_it_is_a_directory(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    directory = tmp_path / "rules.d"
    directory.mkdir()
    state = tmp_path / "state"
    port = str(free_port())
    args = [str(directory) if a == "DIR" else port if a == "PORT" else a for a in args]
    env = {"HUBWATCH_STATE_DIR": str(state), "HUBWATCH_VIEW_PORT": "0"}
    line = _one_line_failure(
        hubwatch(*args, env=env), f"{directory} is a directory; expected {expected}"
    )
    assert "no such file" not in line
    assert not state.exists()  # refused before anything started


def test_alert_rules_setting_naming_a_directory_says_so(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {
        "HUBWATCH_STATE_DIR": str(state),
        "HUBWATCH_VIEW_PORT": "0",
        "HUBWATCH_ALERT_RULES": str(tmp_path),
    }
    port = str(free_port())
    done = hubwatch("run", "--replay", "--http-port", port, "--tcp-port", str(free_port()), env=env)
    _one_line_failure(
        done, f"HUBWATCH_ALERT_RULES: {tmp_path} is a directory; expected an alert rules YAML"
    )
    assert not state.exists()


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "tru"])
def test_a_boolean_setting_refuses_what_is_not_a_boolean(tmp_path: Path, value: str) -> None:
    directory = tmp_path / "d"
    directory.mkdir()
    # A command that fails anyway: the setting is read first, and named.
    done = hubwatch("alerts", "check", str(directory), env={"HUBWATCH_DEBUG": value})
    line = _one_line_failure(done, "HUBWATCH_DEBUG", repr(value), "1/0, true/false")
    assert "is a directory" not in line


@pytest.mark.parametrize(
    ("value", "traceback"),
    [
        *[("1", True), ("TRUE", True), ("Yes", True), ("on", True)],
        *[("0", False), ("off", False), ("No", False), ("false", False), ("", False)],
    ],
)
def test_a_boolean_setting_takes_the_usual_spellings(
    tmp_path: Path, value: str, traceback: bool
) -> None:
    done = hubwatch("alerts", "check", str(tmp_path / "nope.yaml"), env={"HUBWATCH_DEBUG": value})
    assert done.returncode == 1 and "no such file" in done.stderr, done.stderr
    assert ("Traceback" in done.stderr) == traceback, done.stderr


def test_render_refuses_an_unknown_variable_naming_the_dashboards_ones(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "png"
    done = hubwatch("dashboards", "render", "--out", str(out), "--var", "nosuch=1", env=env)
    _one_line_failure(done, "no dashboard variable 'nosuch'", "variables are base_model")
    assert not out.exists()  # nothing rendered


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--prometheus-url", "http://127.0.0.1:PORT"], ["no Prometheus answers at", "PORT"]),
        (["--prometheus-url", "http://no-such-host.invalid:1"], ["no Prometheus answers at"]),
        (["--prometheus-url", "CLICKHOUSE"], ["not Prometheus's query API"]),
        (["--range", "yesterday"], ["--range: a time range is now-N", "or all"]),
        (["--range", "now-0d"], ["--range: the time range 'now-0d' is empty"]),
        (["--range", "now-99999999999y"], ["--range: the time range", "reaches back too far"]),
        (["--var", "base_model=no/such"], ["base_model: model 'no/such' is not known"]),
    ],
    ids=["no prometheus", "no host", "not prometheus", "bad range", "empty", "huge", "model"],
)
def test_render_checks_what_it_is_given_before_drawing(
    env: dict[str, str], tmp_path: Path, args: list[str], needles: list[str]
) -> None:
    port = str(free_port())
    args = [
        a.replace("PORT", port).replace("CLICKHOUSE", env["HUBWATCH_CLICKHOUSE_URL"]) for a in args
    ]
    needles = [n.replace("PORT", port) for n in needles]
    out = tmp_path / "png"
    done = hubwatch("dashboards", "render", "--out", str(out), *args, env=env)
    _one_line_failure(done, *needles)
    assert not out.exists()  # found before any panel was drawn


def test_serve_on_a_taken_port_it_was_asked_for_is_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = hubwatch("serve", "--port", str(port), env=env)
        _one_line_failure(done, f"port {port} is taken", "--port")
        # HUBWATCH_VIEW_PORT is asked for as much as --port is.
        done = hubwatch("serve", env={**env, "HUBWATCH_VIEW_PORT": str(port)})
        _one_line_failure(done, f"port {port} is taken")
        # Found before waiting for ClickHouse (here: one that never answers).
        silent = {**env, "HUBWATCH_CLICKHOUSE_URL": "http://10.255.255.1:8123"}
        done = hubwatch("serve", "--port", str(port), env=silent)
        _one_line_failure(done, f"port {port} is taken")


def test_run_on_a_taken_view_port_it_was_asked_for_is_one_line(tmp_path: Path) -> None:
    """`hubwatch run` keeps HUBWATCH_VIEW_PORT as `serve` does: only the default moves."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"HUBWATCH_STATE_DIR": str(tmp_path / "state"), "HUBWATCH_VIEW_PORT": str(port)}
        done = hubwatch(
            "run",
            "--replay",
            "--http-port",
            str(free_port()),
            "--tcp-port",
            str(free_port()),
            env=env,
        )
        # Found before anything starts: no ClickHouse, no migrations, no log of them.
        _one_line_failure(done, f"port {port} is taken", "HUBWATCH_VIEW_PORT")
        assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["query", "--list"],
        ["sql", "SELECT number FROM numbers(100000)", "--format", "TSV"],
        ["schema"],
        ["topics"],
    ],
)
def test_a_reader_that_went_away_ends_a_command_quietly(
    env: dict[str, str], args: list[str]
) -> None:
    """`hubwatch query --list | head`: stdout's reader gone is no failure to report; the
    command ends as a Unix tool that SIGPIPE ends (141), saying nothing."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write: every write is refused
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hubwatch", *args],
            env={**os.environ, **env},
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, ""), done.stderr
