"""`hubwatch run --replay`: one process, no Kafka, into its own ClickHouse; Ctrl-C loses
nothing and `hubwatch sql` reads the result, while it runs and after it stopped."""

from __future__ import annotations

import contextlib
import signal
from datetime import timedelta
from pathlib import Path

import httpx

from hubwatch.clickhouse import connect, ping
from hubwatch.queries import load
from hubwatch.replay import load_fixture_csv
from hubwatch.summaries import refresh
from tests.conftest import (
    FIXTURE,
    MALFORMED_REJECTED,
    depths_from_edges,
    free_port,
    hubwatch,
    malformed_items,
    spawn,
    spawn_embedded_replay,
    terminate,
    wait_until,
    write_jsonl,
)
from tests.test_families import crawl_answers


def test_embedded_replay_fills_clickhouse(tmp_path: Path) -> None:
    http_port, tcp_port, metrics_port = free_port(), free_port(), free_port()
    state = tmp_path / "state"
    extra = write_jsonl(tmp_path / "extra.jsonl", malformed_items())
    # Rounds that fit together in the replay's quota (1,000 per 5 min, paced at 80 %).
    env = {
        "HUBWATCH_STATE_DIR": str(state),
        "HUBWATCH_ENGAGEMENT_INTERVAL": "2",
        "HUBWATCH_ENGAGEMENT_BULK_EVERY": "5",
        "HUBWATCH_COMMUNITY_INTERVAL": "1",
    }
    log = tmp_path / "run.log"
    run = spawn(
        "--metrics-port",
        str(metrics_port),
        "run",
        "--replay",
        "--replay-rate",
        "100",
        "--replay-extra",
        str(extra),
        "--poll-interval",
        "1",
        "--http-port",
        str(http_port),
        "--tcp-port",
        str(tcp_port),
        env=env,
        log=log,
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_until(lambda: ping(url), "the embedded ClickHouse")
        admin = connect(url)
        wait_until(
            lambda: (
                admin.query(
                    "SELECT count() FROM system.tables WHERE database = 'hubwatch'"
                    " AND name = 'dead_letters'"
                ).result_rows
                == [(1,)]
            ),
            "migrations",
        )
        admin.close()
        client = connect(url, database="hubwatch")
        wait_until(
            lambda: client.query("SELECT count() FROM models FINAL").result_rows == [(69,)],
            "69 models",
        )
        edges = client.query(
            "SELECT derivative_id, base_model_id FROM lineage_edges FINAL "
            "WHERE derivative_id != 'big/card'"
        ).result_rows
        models = [
            r[0]
            for r in client.query(
                "SELECT repo_id FROM models FINAL WHERE repo_id NOT IN ('big/card', 'evil/tags')"
            ).result_rows
        ]
        assert depths_from_edges(edges, models) == {0: 1, 1: 22, 2: 36, 3: 8}

        # The embedded processors keep the family tree too (written after the models of
        # the same batch: wait for them rather than race the last insert).
        # Every model seen has a row (a lone one is a family of one): count the crawl's tree.
        def families() -> dict[int, int]:
            return dict(
                client.query(
                    "SELECT depth, count() FROM model_families FINAL WHERE model_id != 'big/card'"
                    " AND root_id = {root:String} GROUP BY depth ORDER BY depth",
                    parameters={"root": root},
                ).result_rows
            )

        root = crawl_answers()[0]
        wait_until(
            lambda: families() == {0: 1, 1: 22, 2: 36, 3: 8}, "the family tree", show=families
        )
        wait_until(
            lambda: (
                client.query(
                    "SELECT count() FROM dead_letters WHERE stage = 'producer.hub'"
                ).result_rows
                == [(MALFORMED_REJECTED,)]
            ),
            "dead letters",
        )
        # Every stream reports a bad item once, however often it polls past it.
        repeats = client.query("SELECT count() - uniqExact(stage, payload) FROM dead_letters")
        assert repeats.result_rows == [(0,)]
        # The other streams land too: a bulk trending call snapshots every followed model
        # (the 69; not broken/date and broken/types, never followed: their createdAt is
        # bad), and the models with >= 10 likes have their commits followed.
        popular = sum(1 for i in load_fixture_csv(FIXTURE) if (i.get("likes") or 0) >= 10)
        snapshotted = "SELECT uniqExact(repo_id) FROM model_snapshots"
        wait_until(
            lambda: client.query(snapshotted).result_rows == [(69,)],
            "engagement snapshots",
            show=lambda: client.query(snapshotted).result_rows,
        )
        live_windows = "SELECT count() FROM engagement_live FINAL"
        wait_until(
            lambda: client.query(live_windows).result_rows == [(69,)],
            "live engagement windows",
            show=lambda: client.query(live_windows).result_rows,
        )
        wait_until(
            lambda: (
                client.query(
                    "SELECT uniqExact(repo) FROM community_events WHERE kind = 'model.commit'"
                ).result_rows
                == [(popular,)]
            ),
            "commits of the popular models",
        )
        client.close()

        live = hubwatch(
            "sql",
            "SELECT count() FROM lineage_edges FINAL",
            "--format",
            "TSV",
            env={**env, "HUBWATCH_CLICKHOUSE_URL": url},
        )
        assert live.returncode == 0 and live.stdout.strip() == "67", live.stderr

        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert 'hubwatch_events_published_total{kind="model.created"} 69.0' in scraped
        assert 'hubwatch_clickhouse_rows_written_total{table="models"} 69.0' in scraped
        assert 'reason="bad_repo_id",stage="producer.hub"} 1.0' in scraped
    finally:
        run.send_signal(signal.SIGINT)  # Ctrl-C
        code = run.wait(60)
    output = log.read_text()
    assert code == 0, output
    assert "stopped cleanly" in output
    [applied] = [line for line in output.splitlines() if " applied " in line]
    assert applied.endswith("migrations: 0001_models … " + _last_migration()), applied
    assert not ping(url)  # the server went with it

    # Stopped: `hubwatch sql` reads the data directory itself.
    after = hubwatch(
        "sql",
        "SELECT count() FROM models FINAL",
        "--format",
        "TSV",
        env={**env, "HUBWATCH_CLICKHOUSE_URL": url},
    )
    assert after.returncode == 0, after.stderr
    assert after.stdout.strip() == "69"


def test_embedded_replay_answers_the_family_questions_oldest_first(tmp_path: Path) -> None:
    """The live order: the poller publishes oldest first, so the root arrives before its
    derivatives, and it keeps its own facts: `family_growth` and `size_change` give the
    crawl's answers (computed from the CSV, not by hubwatch)."""
    env = {"HUBWATCH_STATE_DIR": str(tmp_path / "state")}
    log = tmp_path / "run.log"
    run, url = spawn_embedded_replay(env=env, log=log)
    root, root_created, _, born, depth_one = crawl_answers()
    try:
        wait_until(lambda: ping(url), "the embedded ClickHouse")

        def members() -> object:
            with contextlib.closing(connect(url)) as client:
                migrated = client.query(
                    "SELECT count() FROM system.tables WHERE database = 'hubwatch'"
                    " AND name = 'model_families'"
                ).result_rows
                if migrated != [(1,)]:
                    return "not migrated yet"
                return client.query(
                    "SELECT count() FROM hubwatch.model_families FINAL"
                    " WHERE root_id = {root:String}",
                    parameters={"root": root},
                ).result_rows

        wait_until(lambda: members() == [(len(born) + 1,)], "the whole family", show=members)
        client = connect(url, database="hubwatch")
        within = [sum(c <= root_created + timedelta(days=d) for c in born) for d in (7, 30, 90)]
        refresh(client)
        growth = client.query(load("family_growth").sql).result_rows
        assert [row[:5] for row in growth] == [(root, *within, len(born))]
        assert within == [2, 45, 66]
        by_base = client.query(load("size_change").sql, parameters={"by": "base"}).result_rows
        assert {group: edges for group, edges, *_ in by_base}[root] == depth_one == 22
        client.close()
    finally:
        run.send_signal(signal.SIGINT)
        code = run.wait(60)
    assert code == 0, log.read_text()


def test_live_hub_unreachable_says_so_in_one_line(tmp_path: Path) -> None:
    # Nothing listens on this port: the same failure as no network, without leaving loopback.
    env = {
        "HUBWATCH_STATE_DIR": str(tmp_path),
        "HUBWATCH_HUB_URL": f"http://127.0.0.1:{free_port()}",
    }
    done = hubwatch("run", env=env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Hub" in lines[0] and "--replay" in lines[0]


def test_a_killed_run_takes_its_clickhouse_server_with_it(tmp_path: Path) -> None:
    """`hubwatch run` killed with SIGKILL cannot stop its ClickHouse child in order; the
    child notices its parent is gone and stops, so the ports and the data directory are free
    for the next run."""
    env = {"HUBWATCH_STATE_DIR": str(tmp_path / "state")}
    run, url = spawn_embedded_replay(env=env, log=tmp_path / "run.log")
    try:
        wait_until(lambda: ping(url), "the embedded ClickHouse")
    finally:
        run.kill()
        run.wait()
    wait_until(lambda: not ping(url), "the orphaned ClickHouse server to stop", timeout=60)
    again, url = spawn_embedded_replay(env=env, log=tmp_path / "run-2.log")
    try:
        wait_until(lambda: ping(url), "ClickHouse of the next run on the same data directory")
    finally:
        terminate(again)


def _last_migration() -> str:
    from hubwatch.migrate import load_migrations

    last = load_migrations()[-1]
    return f"{last.version:04d}_{last.name}"
