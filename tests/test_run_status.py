"""`hubwatch run`'s status: off a terminal, one plain line every few seconds whose counts
are ClickHouse's; one line when a run resumes from a checkpoint; nothing per event."""

from __future__ import annotations

import contextlib
import re
import signal
from pathlib import Path
from typing import Any

from hubwatch.clickhouse import connect, ping
from hubwatch.status import count_alerts
from tests.conftest import (
    MALFORMED_REJECTED,
    hubwatch,
    malformed_items,
    spawn_embedded_replay,
    terminate,
    wait_until,
    while_alive,
    write_jsonl,
)

SUMMARY = re.compile(
    r"^hubwatch status: streams (?P<streams>.*?); rows (?P<rows>.*?); "
    r"dead letters (?P<dead>\d+); alerts (?P<alerts>[^;]+); view (?P<view>\S+)$",
    re.MULTILINE,
)
STREAM = re.compile(r"(?P<name>[\w.]+) (?P<events>\d+) events \(polled (?P<poll>[^)]+)\)")


def last_summary(log: Path) -> dict[str, object] | None:
    found = list(SUMMARY.finditer(log.read_text()))
    if not found:
        return None
    line = found[-1]
    rows = {}
    if line["rows"] != "none yet":
        rows = {t: int(n) for t, n in (part.split(" ") for part in line["rows"].split(", "))}
    return {
        "streams": {m["name"]: (int(m["events"]), m["poll"]) for m in STREAM.finditer(line[0])},
        "rows": rows,
        "dead": int(line["dead"]),
        "alerts": line["alerts"],
        "view": line["view"],
    }


def clickhouse_counts(url: str) -> dict[str, object]:
    with contextlib.closing(connect(url, database="hubwatch")) as client:
        tables = {
            name: int(client.command(f"SELECT count() FROM `{name}`"))
            for (name,) in client.query(
                "SELECT name FROM system.tables WHERE database = 'hubwatch' AND engine LIKE "
                "'%MergeTree'"
            ).result_rows
        }
        alerts: object = "none configured"
        if "alerts" in tables:
            alerts = str(client.command("SELECT count() FROM alerts FINAL"))
        return {"tables": tables, "alerts": alerts}


def stopped_counts(env: dict[str, str], tables: list[str]) -> dict[str, tuple[str, int]]:
    """Each table's engine and row count, read from the stopped run's data directory."""
    union = " UNION ALL ".join(
        f"SELECT '{t}', (SELECT engine FROM system.tables WHERE database = 'hubwatch' AND "
        f"name = '{t}'), count() FROM `{t}`"
        for t in tables
    )
    done = hubwatch("sql", union, "--format", "TSV", env=env)
    assert done.returncode == 0, done.stderr
    found = {}
    for line in done.stdout.splitlines():
        table, engine, count = line.split("\t")
        found[table] = (engine, int(count))
    return found


def test_status_lines_count_what_clickhouse_holds(tmp_path: Path) -> None:
    extra = write_jsonl(tmp_path / "extra.jsonl", malformed_items())
    env = {
        "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
        "HUBWATCH_STATUS_INTERVAL": "1",
        "HUBWATCH_VIEW_PORT": "0",
    }
    log = tmp_path / "run.log"
    run, url = spawn_embedded_replay("--replay-extra", str(extra), env=env, log=log)
    try:
        wait_until(while_alive(run, log, lambda: ping(url)), "the embedded ClickHouse")

        def settled() -> bool:
            summary = last_summary(log)
            if summary is None or not ping(url):
                return False
            rows = summary["rows"]
            assert isinstance(rows, dict)
            counts = clickhouse_counts(url)["tables"]
            assert isinstance(counts, dict)
            # Tables whose rows are each written once: the counts are exact.
            return rows.get("models") == 69 == counts.get("models") and all(
                rows.get(t) == counts.get(t) for t in ("models", "lineage_edges", "dead_letters")
            )

        wait_until(while_alive(run, log, settled), "status lines matching ClickHouse", 120)
        live = last_summary(log)
        assert live is not None
        assert live["alerts"] == clickhouse_counts(url)["alerts"]
    finally:
        run.send_signal(signal.SIGINT)
        code = run.wait(60)
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert "resuming from the checkpoint" not in output
    # Quiet: the 69 models and their snapshots are not a log line each.
    logged = [line for line in output.splitlines() if not SUMMARY.match(line)]
    assert len(logged) < 40, "\n".join(logged)

    # The last line, written once everything is in, against what ClickHouse holds then.
    summary = last_summary(log)
    assert summary is not None
    rows = summary["rows"]
    assert isinstance(rows, dict)
    # At the stopped server's address: nothing answers there now, so `sql` reads the files.
    tables = stopped_counts({**env, "HUBWATCH_CLICKHOUSE_URL": url}, sorted(rows))
    assert rows["models"] == tables["models"][1] == 69
    assert rows["lineage_edges"] == tables["lineage_edges"][1] > 0
    assert summary["dead"] == rows["dead_letters"] == tables["dead_letters"][1]
    assert summary["dead"] >= MALFORMED_REJECTED
    for table, written in rows.items():
        engine, held = tables[table]
        if engine == "MergeTree":
            assert held == written, (table, written, held)
        else:  # a merge folds a re-written row of a ReplacingMergeTree, never adds one
            assert 0 < held <= written, (table, engine, written, held)
    assert summary["view"] == "off"
    streams = summary["streams"]
    assert isinstance(streams, dict)
    # Each model is reported by the stream that saw it first (uploads, edits or
    # engagement), so only the sum is known: at least a model.created per model.
    assert sum(events for events, _ in streams.values()) >= 69
    assert streams["hub.uploads"][0] > 0
    assert "hub.engagement" in streams and "github" in streams
    assert all(poll != "not yet" for events, poll in streams.values() if events > 0)

    # Again from the same state: one line says where it resumes.
    run, url = spawn_embedded_replay(env=env, log=log)
    try:
        wait_until(
            while_alive(run, log, lambda: last_summary(log) is not None), "a status line", 120
        )
    finally:
        terminate(run)
    resumed = [line for line in log.read_text().splitlines() if "resuming" in line]
    assert len(resumed) == 1, log.read_text()[-3000:]
    assert "69 models in ClickHouse" in resumed[0]


def test_alerts_count_each_alert_once_whatever_its_targets(ch: Any, database: str) -> None:
    # One alert delivered to two targets is two rows (one per target), each written twice
    # (queued, then delivered): the status says one alert.
    ch.command(
        "INSERT INTO alerts (alert_id, rule, target, state, version) VALUES "
        "('a1', 'r', 'hook', 'queued', 1), ('a1', 'r', 'hook', 'delivered', 2), "
        "('a1', 'r', 'terminal', 'delivered', 1), ('a2', 'r', 'terminal', 'queued', 1)"
    )
    assert count_alerts(ch, database) == 2
