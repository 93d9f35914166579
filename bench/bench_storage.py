"""Storage and canned queries after a year, on generated Hub-scale data.

Generates a year of data directly in ClickHouse (``INSERT … SELECT … FROM numbers()``) at
``--fraction`` of the Hub's scale, runs every canned query (median of 5, with its
defaults; as of the end of the year) and prints per query the median latency and the
ClickHouse server's CPU time (from ``system.events``: unlike the latency, it does not
depend on what else the machine runs), and the disk per table, extrapolated to a full
year at full scale. ``--compare-ref REF`` also times REF's query texts (git) on the same
database, interleaved with these. ``--before`` generates the layout before migration 0026
with ``--before-ref``'s queries too.

Full scale, a year (issue 8): 2.2 M models in families; ~105 M snapshots from the bulk
trending call (1,000 models every 5 minutes) plus ~16 M per-model ones (43 k a day);
~300 k models with live windows; 5 M community rows.

    STACK_DIR=.stack-8d CLICKHOUSE_HTTP_PORT=28123 deploy/stack.sh up clickhouse
    .venv/bin/python bench/bench_storage.py --url http://127.0.0.1:28123 --fraction 0.3 \
        --compare-ref main
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

from hubwatch.clickhouse import connect
from hubwatch.migrate import apply_migrations, load_migrations, split_statements
from hubwatch.queries import canned_queries
from hubwatch.summaries import refresh, summary_views

YEAR_END = "2026-12-31 00:00:00"
DAY_BEFORE_END = "2026-12-30 00:00:00"
MODELS = 2_200_000
TRENDING = 1_000
TRENDING_EVERY_S = 300
PER_MODEL_PER_DAY = 43_000
LIVE = 300_000
COMMUNITY = 5_000_000
TABLES = (
    "model_snapshots",
    "engagement_hourly",
    "engagement_daily",
    "community_events",
    "engagement_live",
    "model_families",
    "model_lineage",
    "github_links",
    "models",
)
RUNS = 5


def generate(client: Any, fraction: float, *, new_layout: bool) -> None:
    models = int(MODELS * fraction)
    trending = max(1, int(TRENDING * fraction))
    start = f"toDateTime64('{YEAR_END}', 3, 'UTC') - INTERVAL 365 DAY"
    model = "concat('org', toString(n % 5000), '/m', toString(n))"
    client.command(
        f"""INSERT INTO models (repo_id, author, created_at, architectures, model_type,
                                github_repos, event_id)
        SELECT {model}, concat('org', toString(n % 5000)),
               {start} + toIntervalSecond(n * 31536000 / {models}),
               [concat('Arch', toString(n % 40))], 'llama',
               if(n % 50 = 0, [concat('gh/r', toString(intDiv(n, 50) % 2000))], []),
               toString(n)
        FROM (SELECT number AS n FROM numbers({models}))"""
    )
    # Families: a root per 40 models; children hang under the root or a sibling.
    client.command(
        f"""INSERT INTO model_families (root_id, model_id, parent_id, relation, depth,
                                        created_at, descendants, parameters, size_bytes,
                                        base_parameters, base_size_bytes)
        SELECT concat('org', toString(r % 5000), '/m', toString(r)), {model},
               if(n = r, '', concat('org', toString(r % 5000), '/m', toString(r))),
               ['finetune', 'quantized', 'adapter', 'merge'][n % 4 + 1], if(n = r, 0, 1),
               {start} + toIntervalSecond(n * 31536000 / {models}), if(n = r, 39, 0),
               7000000000, if(n % 4 = 1, 4000000000, 14000000000), 7000000000, 14000000000
        FROM (SELECT number AS n, intDiv(number, 40) * 40 AS r FROM numbers({models}))"""
    )
    # Snapshots: the trending call, then per-model polls spread over the year. Older than
    # the TTL they pass through the hourly view and are not kept.
    steps = 365 * 86400 // TRENDING_EVERY_S
    per_model = int(PER_MODEL_PER_DAY * 365 * fraction)
    columns = "repo_id, observed_at, downloads, downloads_all_time, likes, trending_score"
    extra = "" if new_layout else ", event_id"
    for what, rows, repo, at in (
        (
            "trending",
            trending * steps,
            f"concat('org', toString(n % {trending} % 5000), '/m', toString(n % {trending}))",
            f"{start} + toIntervalSecond(intDiv(n, {trending}) * {TRENDING_EVERY_S})",
        ),
        (
            "per-model",
            per_model,
            f"concat('org', toString(n * 7919 % {models} % 5000), '/m',"
            f" toString(n * 7919 % {models}))",
            f"{start} + toIntervalSecond(n * 31536000 / {per_model})",
        ),
    ):
        began = time.perf_counter()
        client.command(
            f"""INSERT INTO model_snapshots ({columns}{extra})
            SELECT {repo}, {at}, n * 3 % 100000, n * 7 + 1000, n % 997, (n % 1000) / 10
                   {", lower(hex(SHA256(toString(n))))" if extra else ""}
            FROM (SELECT number AS n FROM numbers({rows}))""",
            settings={"max_partitions_per_insert_block": 1000},
        )
        print(f"  {what}: {rows:,} snapshots in {time.perf_counter() - began:.1f} s")
    client.command(
        f"""INSERT INTO engagement_live (repo_id, at, likes, downloads_all_time,
                    likes_1h, likes_24h, likes_7d, downloads_1h, downloads_24h, downloads_7d,
                    velocity_per_hour, acceleration)
        SELECT {model}, toDateTime64('{YEAR_END}', 3, 'UTC') - toIntervalSecond(n % 86400),
               n % 997, n * 7, 1, 5, 20, n % 50, n % 500, n % 5000, (n % 500) / 24, 0
        FROM (SELECT number AS n FROM numbers({int(LIVE * fraction)}))"""
    )
    events = int(COMMUNITY * fraction)
    kinds = (
        "['model.commit', 'model.discussion', 'github.commit', 'github.issue', 'github.release']"
    )
    kind = f"{kinds}[n % 5 + 1]"
    repo = (
        f"if(n % 5 IN (0, 1), concat('org', toString(n * 13 % {models} % 5000), '/m',"
        f" toString(n * 13 % {models})), concat('gh/r', toString(n % 2000)))"
    )
    at = f"{start} + toIntervalSecond(n * 31536000 / {events})"
    transition = "if(n % 5 IN (1, 3), ['opened', 'closed', 'merged', 'reopened'][n % 4 + 1], '')"
    if new_layout:
        select = (
            f"{kind}, if(n % 5 IN (0, 1), 'hub', 'github'), {repo}, toString(intDiv(n, 3)),"
            f" {transition}, {at}, 'open', n % 2 = 0, 'title', 'someone'"
        )
        names = "kind, source, repo, item, transition, at, state, is_pull_request, title, author"
    else:
        select = (
            f"{kind}, if(n % 5 IN (0, 1), 'hub', 'github'), {repo}, toString(intDiv(n, 3)),"
            f" {at}, 'open', n % 2 = 0, 'title', 'someone', lower(hex(SHA256(toString(n))))"
        )
        names = "kind, source, repo, item, at, state, is_pull_request, title, author, event_id"
    client.command(
        f"INSERT INTO community_events ({names}) SELECT {select}"
        f" FROM (SELECT number AS n FROM numbers({events}))",
        settings={"max_partitions_per_insert_block": 1000},
    )
    client.command("SYSTEM FLUSH LOGS")


def disk(client: Any) -> dict[str, tuple[int, int]]:
    rows = client.query(
        "SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts"
        " WHERE database = currentDatabase() AND active GROUP BY table"
    ).result_rows
    return {t: (int(r), int(b)) for t, r, b in rows}


def _server_cpu_ms(client: Any) -> float:
    events = "('UserTimeMicroseconds', 'SystemTimeMicroseconds')"
    used = client.query(f"SELECT sum(value) FROM system.events WHERE event IN {events}")
    return float(used.result_rows[0][0]) / 1000


def refresh_summaries(client: Any, cpu_ms: Callable[[], float]) -> dict[str, float]:
    """Refresh each summary once, one at a time, and return the server CPU ms each took (its
    background cost per refresh interval); then stop their schedules, so a background
    refresh does not count in the timings that follow (a stopped view does not refresh even
    when asked: stop only after, start again first)."""
    costs = {}
    for view in summary_views(client):
        client.command(f"SYSTEM START VIEW `{view}`")  # a database kept from an earlier run
        before = cpu_ms()
        refresh(client, [view])
        costs[view] = cpu_ms() - before
    for view in costs:
        client.command(f"SYSTEM STOP VIEW `{view}`")
    return costs


def print_refreshes(costs: dict[str, float], scale: float) -> None:
    for view, cpu in costs.items():
        print(f"  refresh {view:36} CPU {cpu:6.0f} ms {cpu * scale:6.0f} ms at full scale")


def time_queries(
    client: Any, sqls: dict[str, tuple[str, dict[str, str]]]
) -> dict[str, tuple[float, float]]:
    """Per query: the median latency and the server's mean CPU time, both in ms."""
    timings = {}
    for name, (sql, params) in sqls.items():
        runs = []
        cpu = _server_cpu_ms(client)
        for _ in range(RUNS):
            began = time.perf_counter()
            client.query(sql, parameters=params)
            runs.append((time.perf_counter() - began) * 1000)
        timings[name] = (statistics.median(runs), (_server_cpu_ms(client) - cpu) / RUNS)
    return timings


def _params(name: str, params: dict[str, str], defaults: dict[str, str]) -> dict[str, str]:
    given = {"at": YEAR_END, "by": "relation" if name != "community_activity" else "model"}
    given["model"] = "org0/m0"
    return {k: defaults.get(k, given.get(k, "")) if k not in given else given[k] for k in params}


def _sql_at(ref: str, name: str) -> str:
    return subprocess.run(
        ["git", "show", f"{ref}:hubwatch/queries/{name}.sql"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def run(
    url: str,
    fraction: float,
    *,
    before_ref: str | None,
    keep: bool = False,
    compare_ref: str | None = None,
) -> None:
    database = f"bench_storage_{'before' if before_ref else 'after'}"
    client = connect(url, database="default")
    client.command(f"DROP DATABASE IF EXISTS {database}")
    if before_ref:
        client.command(f"CREATE DATABASE {database}")
        for migration in load_migrations():
            if migration.version >= 26:
                continue
            for statement in split_statements(migration.sql):
                client.command(statement, settings={"database": database})
    else:
        apply_migrations(client, database)
    client = connect(url, database=database)
    print(f"{'before (' + before_ref + ')' if before_ref else 'after'}: generating …")
    generate(client, fraction, new_layout=before_ref is None)
    client.command("OPTIMIZE TABLE model_snapshots FINAL")  # the TTL, as a merge would
    # Time the queries on a settled table, not against the merges the inserts started.
    for _ in range(600):
        merging = client.query(
            "SELECT count() FROM system.merges WHERE database = currentDatabase()"
        ).result_rows[0][0]
        if not merging:
            break
        time.sleep(0.5)
    refreshes = {} if before_ref else refresh_summaries(client, lambda: _server_cpu_ms(client))
    sqls = {}
    for name, query in canned_queries().items():
        sql = _sql_at(before_ref, name) if before_ref else query.sql
        params = dict(query.params) if not before_ref else {}
        if before_ref:
            import re

            params = dict(re.findall(r"\{(\w+):(\w+)\}", sql))
        bound = _params(name, params, query.defaults)
        sqls[name] = (sql, bound)
        # The other paths: an hour in the past (engagement_hourly, not the live table), the
        # groupings that look models up.
        if name == "engagement":
            sqls["engagement (a day ago)"] = (sql, {**bound, "at": DAY_BEFORE_END})
        if name == "community_activity":
            for by in ("family", "architecture"):
                sqls[f"community_activity ({by})"] = (sql, {**bound, "by": by})
    compared = {}
    if compare_ref:
        compared = time_queries(
            client,
            {
                name: (_sql_at(compare_ref, name.split(" (")[0]), params)
                for name, (_, params) in sqls.items()
            },
        )
    timings = time_queries(client, sqls)
    sizes = disk(client)
    scale = 1 / fraction
    print(f"  {'query':36} {'median':>9} {'server CPU':>11} {'CPU x' + f'{scale:.3g}':>9}")
    for name, (ms, cpu) in timings.items():
        line = f"  {name:36} {ms:6.0f} ms {cpu:8.0f} ms {cpu * scale:6.0f} ms"
        if name in compared:
            ref_ms, ref_cpu = compared[name]
            line += f"   {compare_ref}: {ref_ms:6.0f} ms, CPU {ref_cpu:5.0f} ms"
        print(line)
    print_refreshes(refreshes, scale)
    for table in TABLES:
        rows, size = sizes.get(table, (0, 0))
        print(
            f"  {table:20} {rows:>12,} rows {size / 2**20:9.1f} MiB"
            f"   -> {size / fraction / 2**30:7.2f} GiB per year at full scale"
        )
    if not keep:
        connect(url, database="default").command(f"DROP DATABASE {database}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8123")
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--before", action="store_true", help="also the old layout, first")
    parser.add_argument("--before-ref", default="main")
    parser.add_argument("--keep", action="store_true", help="keep the generated databases")
    parser.add_argument("--compare-ref", help="also time this git ref's queries, same data")
    args = parser.parse_args()
    if args.before:
        run(args.url, args.fraction, before_ref=args.before_ref, keep=args.keep)
    run(args.url, args.fraction, before_ref=None, keep=args.keep, compare_ref=args.compare_ref)


if __name__ == "__main__":
    main()
