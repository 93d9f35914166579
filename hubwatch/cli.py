"""``hubwatch`` command line: run, poll, process, replay, migrate, sql, topics, clickhouse."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hubwatch.errors import ConfigError, HubwatchError, NotMigrated, SchemaError, SinkError
from hubwatch.settings import Settings, parse_bool

__all__ = ["main"]

log = logging.getLogger("hubwatch")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubwatch", description="Live monitor of how open models derive from each other."
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--debug",
        action="store_true",
        default=None,
        help="show the traceback of a failure (env HUBWATCH_DEBUG=1)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="checkpoints and embedded data (default .hubwatch; env HUBWATCH_STATE_DIR)",
    )
    parser.add_argument("--clickhouse-url", help="default http://127.0.0.1:8123")
    parser.add_argument("--database", dest="clickhouse_database", help="default hubwatch")
    parser.add_argument("--kafka", dest="kafka_bootstrap", help="default 127.0.0.1:9092")
    parser.add_argument("--hub-url", help="default https://huggingface.co")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics here")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="everything in one process (embedded, no Kafka)")
    run.add_argument(
        "--replay",
        action="store_true",
        help="poll a local replay of the fixture instead of the live Hub",
    )
    run.add_argument("--fixture", help="replay fixture CSV (default: the shared Mistral tree)")
    run.add_argument("--replay-rate", type=float, default=20.0, help="models released per s")
    run.add_argument("--replay-extra", help="JSONL of extra raw API items to replay")
    run.add_argument(
        "--replay-activity",
        type=float,
        default=0.0,
        help="likes, downloads, commits, discussions per s in the replay",
    )
    run.add_argument("--poll-interval", type=float)
    run.add_argument("--http-port", type=int, default=8123, help="ClickHouse HTTP port")
    run.add_argument("--tcp-port", type=int, default=9000, help="ClickHouse native port")

    poll = commands.add_parser("poll", help="poll a source and publish to Kafka")
    poll.add_argument("source", choices=["hub", "github", "all"])
    poll.add_argument("--once", action="store_true", help="one poll, then exit")
    poll.add_argument("--poll-interval", type=float)
    poll.add_argument(
        "--since",
        choices=["lookback", "all"],
        default=None,
        help="without a checkpoint: the last hour (lookback) or all listed",
    )

    commands.add_parser("process", help="run the faust processors (Kafka -> ClickHouse)")

    serve_view = commands.add_parser(
        "serve", help="serve the dashboards' web view from ClickHouse (distributed mode)"
    )
    serve_view.add_argument("--port", type=int, help="default 8787 (env HUBWATCH_VIEW_PORT)")
    serve_view.add_argument(
        "--prometheus-url", help="for the operations panels (env HUBWATCH_PROMETHEUS_URL)"
    )
    serve_view.add_argument(
        "--range", dest="view_range", help="one time range for every dashboard, e.g. now-7d, all"
    )

    replay = commands.add_parser("replay", help="serve the Hub API replay on 127.0.0.1")
    replay.add_argument("--port", type=int, default=8090)
    replay.add_argument("--fixture")
    replay.add_argument("--rate", type=float, default=0.0, help="models released per s")
    replay.add_argument("--start", type=int, default=0, help="models released at start")
    replay.add_argument("--release-all", action="store_true")
    replay.add_argument("--extra", help="JSONL of extra raw API items")
    replay.add_argument(
        "--generate",
        type=int,
        default=0,
        help="replay a generated Hub-shaped catalog of N models instead",
    )
    replay.add_argument("--seed", type=int, default=0)
    replay.add_argument(
        "--activity", type=float, default=0.0, help="likes, downloads, commits, discussions per s"
    )
    replay.add_argument("--github-repos", default="", help="comma list of GitHub repos to serve")
    replay.add_argument("--api-quota", type=int, default=1000, help="Hub requests per 5 min")
    replay.add_argument("--webhook-url", help="POST Hub webhooks for changes here")
    replay.add_argument("--webhook-secret")

    commands.add_parser("migrate", help="apply ClickHouse migrations")
    commands.add_parser("schema", help="print the ClickHouse schema (tables, keys, columns)")

    backfill = commands.add_parser("backfill", help="walk the whole model listing into ClickHouse")
    backfill.add_argument("--expect", type=int, help="models expected (for the progress bar)")
    backfill.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)

    importer = commands.add_parser("import", help="import data into ClickHouse")
    importer.add_argument("what", choices=["leaderboard"])
    importer.add_argument("file", type=Path, help="an Open LLM Leaderboard CSV (v1 or v2)")
    importer.add_argument(
        "--force",
        action="store_true",
        help="replace the board even with far fewer scores than it has (or none)",
    )

    sql = commands.add_parser("sql", help="run a query and print the result table")
    sql.add_argument("query")
    sql.add_argument("--format", default="PrettyCompactMonoBlock")

    query = commands.add_parser(
        "query",
        help="run a canned query (--list shows them)",
        description="Run one of hubwatch's canned queries, the study's questions, on ClickHouse.",
        epilog="hubwatch query --list shows each query, what it answers and its parameters, "
        "e.g. hubwatch query tree --param model=mistralai/Mistral-7B-v0.1",
    )
    query.add_argument(
        "name", nargs="?", help="the query to run, e.g. score_delta (--list shows them)"
    )
    query.add_argument(
        "--list", action="store_true", help="list the queries, what each answers, its parameters"
    )
    query.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a value for one of the query's parameters (repeat for each; --list says which)",
    )
    query.add_argument(
        "--format",
        default="PrettyCompactMonoBlock",
        help="a ClickHouse output format: CSV, TSV, JSONEachRow, Markdown, ... "
        "(default PrettyCompactMonoBlock, a table)",
    )
    query.add_argument(
        "--fresh",
        action="store_true",
        help="recompute the query's summary now instead of reading its last refresh",
    )

    report = commands.add_parser(
        "report", help="write the study's answers as an HTML page and JSON (offline)"
    )
    report.add_argument("--out", type=Path, default=Path("report"), help="directory (./report)")
    report.add_argument("--board", help="one leaderboard only, e.g. open_llm_v2 (default: each)")

    alerts = commands.add_parser("alerts", help="alert rules: check them, try them on the data")
    alert_commands = alerts.add_subparsers(dest="alerts_command", required=True)
    check = alert_commands.add_parser("check", help="check a rules file and say what it holds")
    check.add_argument("rules", type=Path)
    trial = alert_commands.add_parser(
        "test", help="what the rules would have fired on what ClickHouse holds"
    )
    trial.add_argument("rules", type=Path)
    trial.add_argument("--since", default="7d", help="how far back: 90m, 24h, 7d (default 7d)")

    dashboards = commands.add_parser("dashboards", help="the dashboards (hubwatch/panels)")
    dash_commands = dashboards.add_subparsers(dest="dashboards_command", required=True)
    generate = dash_commands.add_parser(
        "generate", help="write the Grafana dashboards' JSON (dashboards/*.json)"
    )
    generate.add_argument("--out", type=Path, default=Path("dashboards"), help="(./dashboards)")
    generate.add_argument(
        "--check", action="store_true", help="only say whether the files are up to date"
    )

    render = dash_commands.add_parser(
        "render", help="a PNG of each panel from the live data (offline, no browser)"
    )
    render.add_argument("--out", type=Path, required=True, help="directory for the PNGs")
    render.add_argument(
        "--range", dest="view_range", help="e.g. now-7d or all (default: each dashboard's own)"
    )
    render.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE", help="e.g. base_model=ID"
    )
    render.add_argument("--prometheus-url", help="for the operations panels")

    grafana = commands.add_parser("grafana", help="an existing Grafana")
    grafana_commands = grafana.add_subparsers(dest="grafana_command", required=True)
    push = grafana_commands.add_parser(
        "push", help="provision the folder, data sources and dashboards (idempotent)"
    )
    push.add_argument("--url", required=True, help="Grafana's URL, e.g. http://127.0.0.1:3000")
    push.add_argument("--token", help="a service account token (default: $GRAFANA_TOKEN)")
    push.add_argument(
        "--datasource-clickhouse-url",
        help="ClickHouse as Grafana reaches it (default: --clickhouse-url)",
    )
    push.add_argument(
        "--prometheus-url",
        default="http://127.0.0.1:9090",
        help="Prometheus as Grafana reaches it (http://127.0.0.1:9090)",
    )

    topics = commands.add_parser("topics", help="list (and create) the Kafka topics")
    topics.add_argument("--create", action="store_true")

    clickhouse = commands.add_parser("clickhouse", help="the ClickHouse server (chdb-core)")
    ch_commands = clickhouse.add_subparsers(dest="ch_command", required=True)
    serve = ch_commands.add_parser("serve", help="serve a data directory until stopped")
    serve.add_argument("--data-dir", type=Path, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--http-port", type=int, default=8123)
    serve.add_argument("--tcp-port", type=int, default=9000)
    serve.add_argument("--parent-pid", type=int, help="stop when this process is gone")
    return parser


def _settings(args: argparse.Namespace, **overrides: object) -> Settings:
    keys = (
        "state_dir",
        "clickhouse_url",
        "clickhouse_database",
        "kafka_bootstrap",
        "hub_url",
        "metrics_port",
    )
    values = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    values.update(overrides)
    return Settings.from_env(**values)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command. A failure is one line on stderr and a non-zero exit (1; argparse's
    usage errors 2; Ctrl-C 130; stdout's reader gone, quietly, 141); ``--debug`` adds the
    traceback."""
    args = _parser().parse_args(argv)
    if args.debug is None:
        try:
            args.debug = parse_bool("HUBWATCH_DEBUG", os.environ.get("HUBWATCH_DEBUG", ""))
        except ConfigError as exc:
            print(f"hubwatch: {exc}", file=sys.stderr)
            return 1
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # clickhouse-connect logs a traceback for every refused connection; we report our own.
    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)
    # urllib3's retry warnings, likewise (clickhouse-connect resets "urllib3" on import).
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a reader gone (`| head`) is found here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError as exc:
        if _stdout_closed():
            return STDOUT_CLOSED
        _report_failure(args, exc)
        return 1
    except Exception as exc:
        _report_failure(args, exc)
        return 1


STDOUT_CLOSED = 141
"""The exit when whoever reads stdout went away (`hubwatch query --list | head`): quietly,
with the status of a Unix tool that SIGPIPE ends (128 + 13)."""


def _report_failure(args: argparse.Namespace, exc: Exception) -> None:
    if args.debug:
        traceback.print_exc()
    print(f"hubwatch: {_one_line(_reported(args, exc))}", file=sys.stderr)


def _stdout_closed() -> bool:
    """Whether stdout's reader is gone (then a broken pipe is no failure of ours, unlike one
    on a socket to a server). If so, stdout is pointed at /dev/null so that the interpreter's
    last flush of what is still buffered does not complain."""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        gone = any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no stdout, or not a real file
        return False
    if gone:
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return gone


def _one_line(exc: BaseException) -> str:
    """What went wrong, in the user's terms, on one line."""
    from aiokafka.errors import KafkaError
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from hubwatch.clickhouse import server_message

    if isinstance(exc, HubwatchError):
        text = str(exc)
    elif isinstance(exc, ClickHouseError):
        text = f"ClickHouse: {server_message(exc)}"
    elif isinstance(exc, KafkaError):
        text = f"Kafka: {type(exc).__name__}: {exc}"
    elif isinstance(exc, UnicodeError):
        text = f"not UTF-8 text: {exc}"
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        text = f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"
    text = " ".join(text.split())
    return text if len(text) <= 600 else text[:597] + "..."


def _reported(args: argparse.Namespace, exc: Exception) -> Exception:
    """A ClickHouse error no command turned into its own words: a table or database that
    is not there yet says so (hubwatch.clickhouse.server_error), not the server's raw
    "unknown table"."""
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from hubwatch.clickhouse import names_missing_schema, server_error

    if not isinstance(exc, ClickHouseError) or not names_missing_schema(exc):
        return exc
    try:
        settings = _settings(args)
    except Exception:  # settings that do not parse: the server's words will do
        return exc
    return server_error(exc, settings.clickhouse_url, settings.clickhouse_database)


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence libraries that log a failure we report ourselves in one line."""
    saved = [(logging.getLogger(name), logging.getLogger(name).level) for name in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


_FILE_EXPECTED = {
    "fixture": "expected a replay fixture CSV file",
    "replay_extra": "expected a JSONL file of raw API items",
    "extra": "expected a JSONL file of raw API items",
    "file": "expected an Open LLM Leaderboard CSV file",
    "rules": "expected an alert rules YAML file",
}
"What each file argument must be, said when it names a directory instead."


def _check_files(args: argparse.Namespace) -> None:
    """Every file a command names exists and is readable, before anything starts."""
    for name in _FILE_EXPECTED:
        value = getattr(args, name, None)
        if value is None:
            continue
        path = Path(value)
        if path.is_dir():
            raise ConfigError(f"{path} is a directory; {_FILE_EXPECTED[name]}")
        if not path.is_file():
            raise ConfigError(f"no such file: {path}")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"cannot read {path}")


def _dispatch(args: argparse.Namespace) -> int:
    from hubwatch import metrics

    command = args.command
    _check_files(args)
    if command == "clickhouse":
        from hubwatch.clickhouse import serve

        serve(
            args.data_dir,
            host=args.host,
            http_port=args.http_port,
            tcp_port=args.tcp_port,
            parent_pid=args.parent_pid,
        )
        return 0
    if command == "run":
        return _run(args)
    if command == "alerts" and args.alerts_command == "check":
        return _alerts_check(args)
    if command == "dashboards" and args.dashboards_command == "generate":
        return _dashboards(args)
    settings = _settings(args)
    if command == "grafana":
        return _grafana(args, settings)
    metrics.serve(settings.metrics_port, settings.metrics_host)
    if command == "poll":
        return asyncio.run(_poll(args, settings))
    if command == "process":
        return _process(settings)
    if command == "serve":
        return asyncio.run(_serve(args, settings))
    if command == "replay":
        return asyncio.run(_replay(args))
    if command == "migrate":
        return _migrate(settings)
    if command == "schema":
        return _schema(settings)
    if command == "sql":
        return _sql(args, settings)
    if command == "import":
        return _import(args, settings)
    if command == "backfill":
        from hubwatch.backfill import backfill

        _migrate(settings, quiet=True)
        done = asyncio.run(backfill(settings, total=args.expect, progress=args.progress))
        print(
            f"backfilled {done.models:,} models and {done.edges:,} edges in "
            f"{done.seconds:.1f}s ({done.models / max(done.seconds, 1e-9):,.0f}/s); "
            f"{done.rejected} rejected"
        )
        return 0
    if command == "query":
        return _query(args, settings)
    if command == "topics":
        return asyncio.run(_topics(args, settings))
    if command == "report":
        return _report(args, settings)
    if command == "alerts":
        return _alerts_test(args, settings)
    if command == "dashboards":  # render: from the live data
        return asyncio.run(_render(args, settings))
    raise AssertionError(command)  # argparse allows only the commands above


def _dashboards(args: argparse.Namespace) -> int:
    from hubwatch.panels.grafana import generate, out_of_date

    if args.check:
        stale = out_of_date(args.out)
        if stale:
            raise ConfigError(
                f"{', '.join(stale)} in {args.out} differ from the code:"
                " run hubwatch dashboards generate"
            )
        print(f"{args.out}: up to date")
        return 0
    written = generate(args.out)
    print(f"wrote {len(written)} dashboards to {args.out}")
    return 0


def _grafana(args: argparse.Namespace, settings: Settings) -> int:
    from hubwatch.panels.push import push

    token = args.token or os.environ.get("GRAFANA_TOKEN")
    if not token:
        raise ConfigError("grafana push needs --token or GRAFANA_TOKEN")
    result = push(
        args.url,
        token,
        clickhouse_url=args.datasource_clickhouse_url or settings.clickhouse_url,
        database=settings.clickhouse_database,
        prometheus_url=args.prometheus_url,
    )
    print(f"grafana {args.url}: {result.summary()}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from hubwatch import metrics
    from hubwatch.embedded import run_embedded
    from hubwatch.replay import ReplayOptions, default_fixture
    from hubwatch.settings import split_list
    from hubwatch.view.server import check_view_port

    _check_run_numbers(args)
    replay = None
    overrides: dict[str, object] = {}
    if args.poll_interval:
        overrides["poll_interval"] = args.poll_interval
    if args.replay:
        # A replay starts before its first upload and moves fast: read it all, poll often.
        overrides["initial_lookback_seconds"] = None
        overrides["poll_interval"] = args.poll_interval or 1.0
    settings = _settings(args, **overrides)
    if args.replay:
        replay = ReplayOptions(
            fixture=args.fixture or str(default_fixture()),
            rate=args.replay_rate,
            extra=args.replay_extra,
            activity_rate=args.replay_activity,
            github_repos=split_list(settings.github_repos),
        )
    _check_rules(settings)
    if "HUBWATCH_VIEW_PORT" in os.environ:  # a port asked for is kept: taken fails now
        check_view_port(settings.view_port)
    metrics.serve(settings.metrics_port, settings.metrics_host)
    return asyncio.run(
        run_embedded(settings, replay=replay, http_port=args.http_port, tcp_port=args.tcp_port)
    )


def _check_run_numbers(args: argparse.Namespace) -> None:
    """Refuse, before ClickHouse starts, what would start it on a bad port or leave the
    replay releasing nothing (a rate of 0 or less never releases a model)."""
    if args.replay_rate <= 0:
        raise ConfigError(
            f"--replay-rate must be positive (models a second), got {args.replay_rate:g}"
        )
    if args.replay_activity < 0:
        raise ConfigError(f"--replay-activity must not be negative, got {args.replay_activity:g}")
    if args.poll_interval is not None and args.poll_interval <= 0:
        raise ConfigError(f"--poll-interval must be positive, got {args.poll_interval:g}")
    for flag, port in (("--http-port", args.http_port), ("--tcp-port", args.tcp_port)):
        if not 0 < port < 65536:
            raise ConfigError(f"{flag} must be a port number (1-65535), got {port}")
    if args.http_port == args.tcp_port:
        raise ConfigError(f"--http-port and --tcp-port must differ (both {args.http_port})")


async def _poll(args: argparse.Namespace, settings: Settings) -> int:
    from hubwatch.events import topics
    from producers.publish import KafkaPublisher
    from producers.runner import Producers
    from producers.topics import ensure_topics

    if args.poll_interval:
        settings = settings.replace(poll_interval=args.poll_interval)
    if args.since == "all":
        settings = settings.replace(initial_lookback_seconds=None)
    with _quiet("aiokafka"):
        await ensure_topics(settings.kafka_bootstrap, topics(settings.topic_prefix))
    async with (
        KafkaPublisher.from_settings(settings) as publisher,
        Producers(
            settings,
            publisher,
            hub=args.source in ("hub", "all"),
            github=args.source in ("github", "all"),
        ) as producers,
    ):
        if args.once:
            for stream, count in (await producers.poll_once()).items():
                print(f"{stream}: published {count}")
            return 0
        stop = asyncio.Event()
        _on_signals(stop)
        await producers.run(stop)
    return 0


def _on_signals(stop: asyncio.Event) -> None:
    import signal

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)


def _check_rules(settings: Settings) -> None:
    """HUBWATCH_ALERT_RULES is read and checked before anything starts."""
    from hubwatch.alerts.runtime import load_configured_rules

    rules = settings.alert_rules
    if rules is not None and rules.is_dir():
        raise ConfigError(
            f"HUBWATCH_ALERT_RULES: {rules} is a directory; {_FILE_EXPECTED['rules']}"
        )
    if rules is not None and not rules.is_file():
        raise ConfigError(f"HUBWATCH_ALERT_RULES: no such file: {rules}")
    load_configured_rules(settings)


def _alerts_check(args: argparse.Namespace) -> int:
    from hubwatch.alerts.rules import load_rules, parse_targets

    rules = load_rules(args.rules, targets=parse_targets(Settings.from_env().alert_targets))
    targets = ", ".join(f"{t.name} ({t.type})" for t in rules.targets.values()) or "none"
    print(
        f"{args.rules}: {len(rules.rules)} rules, {len(rules.silences)} silences; "
        f"targets: {targets}"
    )
    for rule in rules.rules:
        grouped = f", grouped over {rule.group_seconds:g}s" if rule.group_seconds else ""
        print(f"  {rule.name} (line {rule.line}){grouped}")
    return 0


def _alerts_test(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import timedelta

    from hubwatch.alerts.history import replay_rules
    from hubwatch.alerts.rules import load_rules, parse_duration, parse_targets

    rules = load_rules(args.rules, targets=parse_targets(settings.alert_targets))
    try:
        since = timedelta(seconds=parse_duration(args.since))
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}") from None
    done = replay_rules(settings.clickhouse_url, settings.clickhouse_database, rules, since)
    for alert in done.alerts:
        count = f" ({alert.count} models: {', '.join(alert.models)})" if alert.count > 1 else ""
        print(
            f"{alert.fired_at:%Y-%m-%d %H:%M:%S}  {alert.rule}  {alert.model_id}"
            f"  base={alert.base_model or '-'}  relation={alert.relation or '-'}{count}"
            + (f"  [{alert.reason}]" if alert.reason else "")
        )
    fired: dict[str, int] = {}
    for alert in done.alerts:
        fired[alert.rule] = fired.get(alert.rule, 0) + 1
    summary = ", ".join(f"{r.name}: {fired.get(r.name, 0)}" for r in rules.rules)
    print(
        f"{len(done.alerts)} alerts from {done.models} models and {done.snapshots} live"
        f" windows in the last {args.since} ({summary})"
    )
    return 0


def _process(settings: Settings) -> int:
    from faust.worker import Worker

    from hubwatch.alerts.outbox import outbox_topic
    from hubwatch.events import topics
    from processors.app import create_app
    from producers.topics import ensure_topics

    _check_rules(settings)
    _migrate(settings, quiet=True)
    specs = topics(settings.topic_prefix)
    if settings.alert_rules is not None:
        specs.append(outbox_topic(settings.topic_prefix))
    with _quiet("aiokafka"):
        asyncio.run(ensure_topics(settings.kafka_bootstrap, specs))
    app = create_app(settings)
    worker = Worker(app, loglevel="INFO", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()  # runs until SIGINT/SIGTERM
    return 0


async def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from hubwatch.clickhouse import ping
    from hubwatch.view import PanelSource, start_view
    from hubwatch.view.server import check_view_port

    port = args.port if args.port is not None else settings.view_port
    if port == 0:
        raise ConfigError("serve needs a port: --port N or HUBWATCH_VIEW_PORT (0 is off)")
    if args.view_range:
        _check_range(args.view_range)  # a bad range fails here, not in every panel
    # Only the default port may move: one the user named (flag or environment) is kept.
    asked = args.port is not None or "HUBWATCH_VIEW_PORT" in os.environ
    if asked:
        check_view_port(port)  # before waiting on ClickHouse
    if not await asyncio.to_thread(ping, settings.clickhouse_url, 5.0):
        raise SinkError(
            f"no ClickHouse answers at {settings.clickhouse_url}; start it (make stack-up) or "
            "point --clickhouse-url at it"
        )
    prometheus = args.prometheus_url or settings.prometheus_url
    source = PanelSource(
        settings.clickhouse_url,
        settings.clickhouse_database,
        prometheus_url=prometheus,
        default_range=args.view_range,
    )
    view = await start_view(source, port, fallback=not asked)
    assert view is not None  # port != 0
    stop = asyncio.Event()
    _on_signals(stop)
    try:
        print(
            f"hubwatch: web view at {view.url}/ (ClickHouse {settings.clickhouse_url}, database "
            f"{settings.clickhouse_database}; Prometheus {prometheus or 'not configured'})",
            flush=True,
        )
        await stop.wait()
    finally:
        await view.stop()
    return 0


async def _replay(args: argparse.Namespace) -> int:
    from hubwatch.replay import ReplayOptions, build_replay
    from hubwatch.settings import split_list

    options = ReplayOptions(
        fixture=args.fixture,
        extra=args.extra,
        generate=args.generate,
        seed=args.seed,
        start=args.start,
        rate=args.rate,
        activity_rate=args.activity,
        github_repos=split_list(args.github_repos),
        api_quota=args.api_quota,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
    )
    server = build_replay(
        options, port=args.port, progress=lambda n: print(f"generated {n:,} models", flush=True)
    )
    if args.release_all:
        server.hub.release(len(server.hub))
    stop = asyncio.Event()
    _on_signals(stop)
    async with server:
        print(f"hubwatch: replaying {len(server.hub)} models at {server.url}", flush=True)
        await stop.wait()
    return 0


def _migrate(settings: Settings, quiet: bool = False) -> int:
    from hubwatch.clickhouse import connect
    from hubwatch.migrate import applied_summary, apply_migrations

    client = connect(settings.clickhouse_url)
    try:
        ran = apply_migrations(
            client,
            settings.clickhouse_database,
            snapshot_retention_days=settings.snapshot_retention_days,
        )
    finally:
        client.close()
    if not quiet:
        print(applied_summary(ran))
    return 0


def _schema(settings: Settings) -> int:
    from hubwatch.clickhouse import connect
    from hubwatch.schema import describe_schema

    _migrate(settings, quiet=True)
    client = connect(settings.clickhouse_url)
    try:
        print(describe_schema(client, settings.clickhouse_database), end="")
    finally:
        client.close()
    return 0


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from hubwatch.clickhouse import connect
    from processors.leaderboard import import_leaderboard, read_leaderboard
    from processors.partitions import replace_partition
    from processors.sinks import ClickHouseWriter, InsertPlan
    from producers.board_names import resolve_board_names

    for _ in read_leaderboard(args.file):  # a damaged file fails here, before any server
        pass
    _migrate(settings, quiet=True)
    writer = ClickHouseWriter(
        lambda: connect(settings.clickhouse_url), settings.clickhouse_database
    )

    def replace(board: str, plans: list[InsertPlan]) -> None:
        if not args.force:
            _refuse_shrinking(settings, board, len(plans[0].rows))
        replace_partition(
            lambda: connect(settings.clickhouse_url), settings.clickhouse_database, board, plans
        )

    try:
        summary = import_leaderboard(args.file, replace, writer.write)
        # The board's old names and other casings, mapped as the aliases stream maps them.
        learned = asyncio.run(
            resolve_board_names(
                settings,
                summary.model_ids,
                summary.base_ids,
                writer.write,
                say=lambda line: print(line, flush=True),
            )
        )
    finally:
        writer.close()
    print(
        f"{summary.board}: {summary.scores} scores for {summary.models} models, "
        f"{summary.edges} base-model edges; {len(summary.rejected)} lines rejected"
        + (f"; {summary.repeated} repeated scores (the last one kept)" if summary.repeated else "")
    )
    for line, reason in summary.rejected[:20]:
        print(f"  line {line}: {reason}")
    print(f"{len(learned.aliases)} names mapped to canonical ids (model_aliases)")
    if learned.unresolved is not None:
        print(
            f"aliases not resolved (the import holds the board's names as given): "
            f"{learned.unresolved}"
        )
    return 0


SHRINK_LIMIT = 0.5
"An import keeping less than this share of a board's scores needs --force."


def _refuse_shrinking(settings: Settings, board: str, scores: int) -> None:
    """A file cut exactly at a line break reads as a sound, shorter dump: refuse to replace
    a board with none, or with under half of what it has, unless told to."""
    from hubwatch.clickhouse import connect

    if scores == 0:
        raise SchemaError("empty_board", f"no scores in the file; --force empties {board}")
    client = connect(settings.clickhouse_url, database=settings.clickhouse_database)
    try:
        held = int(
            client.command(
                "SELECT count() FROM leaderboard_scores WHERE board = {b:String}",
                parameters={"b": board},
            )
        )
    finally:
        client.close()
    if scores < SHRINK_LIMIT * held:
        raise SchemaError(
            "shrinking_board",
            f"{board} has {held} scores and this file {scores}; a cut file? "
            "--force replaces the board anyway",
        )


def _query(args: argparse.Namespace, settings: Settings) -> int:
    from hubwatch.queries import canned_queries, load

    if args.list or not args.name:
        for query in canned_queries().values():
            defaults, helps = query.defaults, query.param_help
            params = "".join(
                f"\n    --param {k}=<{t}>  {helps.get(k, '')}"
                + (f" (default {defaults[k]})" if k in defaults else " (required)")
                for k, t in query.params.items()
            )
            print(f"{query.name}\n    {query.description}{params}\n")
        return 0
    try:
        query = load(args.name)
    except KeyError as exc:
        raise ConfigError(exc.args[0]) from None
    given: dict[str, str] = {}
    for param in args.param:
        name, eq, value = param.partition("=")
        if not eq or not name:
            raise ConfigError(f"bad --param {param!r}: expected NAME=VALUE")
        if name not in query.params:
            takes = " ".join(f"--param {k}=<{t}>" for k, t in query.params.items()) or "none"
            raise ConfigError(f"{query.name} has no parameter {name!r}; it takes: {takes}")
        given[name] = value
    # A summary answers for now: a time the user names is computed from the raw tables.
    summary = query.summary if "at" not in given else None
    if args.fresh and summary is None:
        why = "it names a time (--param at=…)" if query.summary else "it reads no summary"
        raise ConfigError(f"--fresh has nothing to recompute for {query.name}: {why}")
    given = query.bind(given)
    missing = set(query.params) - set(given)
    if missing:
        raise ConfigError(f"{query.name} needs --param {' --param '.join(sorted(missing))}")
    as_of, fresh = None, args.fresh
    if summary is not None:
        as_of, fresh = _summary_as_of(settings, summary, fresh=args.fresh)
    answer = _server_query(settings, query.sql, args.format, parameters=given)
    if not answer.strip() and summary is not None and not fresh:
        # An empty summary may only be behind what was just written: recompute it once
        # before saying why there is nothing.
        as_of, fresh = _summary_as_of(settings, summary, fresh=True)
        answer = _server_query(settings, query.sql, args.format, parameters=given)
    if answer.strip():
        if as_of:
            print(as_of, file=sys.stderr)
        sys.stdout.write(answer)
    else:  # an empty table says nothing; say why there is nothing (and as of when)
        if "model" in given:  # a model hubwatch never saw is the user's to fix
            _check_model(settings, given["model"], "--param model")
        why = _why_empty(settings, query.name, given)
        print(f"{why} ({as_of})" if as_of else why, file=sys.stderr)
    return 0


def _summary_as_of(settings: Settings, view: str, *, fresh: bool) -> tuple[str, bool]:
    """Refresh ``view`` when asked to (or when it never has: an empty table would otherwise
    read as "nothing to compare"); say as of when its answer is, and whether it was just
    recomputed."""
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from hubwatch.clickhouse import connect, migrated, server_error
    from hubwatch.summaries import refresh, summary_state

    client = connect(settings.clickhouse_url, database=settings.clickhouse_database)
    try:
        state = summary_state(client, view)
        if state is None and not migrated(settings.clickhouse_url, settings.clickhouse_database):
            # Its view is a migration's: refreshing it would say "doesn't exist".
            raise NotMigrated(settings.clickhouse_database)
        if not fresh and state is not None and state.last_success is not None:
            following = (
                f"next at {state.next_refresh:%H:%M:%S}" if state.next_refresh else "on schedule"
            )
            # A refresh that fails keeps the old answer: say so, or it reads as current.
            failed = f"; its last refresh failed: {state.error}" if state.error else ""
            return (
                f"{view}: as of its last refresh, {state.last_success:%Y-%m-%d %H:%M:%S} UTC"
                f" ({following}){failed}; --fresh recomputes now"
            ), False
        refresh(client, [view])
        state = summary_state(client, view)
    except ClickHouseError as exc:
        raise server_error(exc, settings.clickhouse_url, settings.clickhouse_database) from exc
    finally:
        client.close()
    at = state.last_success if state is not None else None
    stamp = f"{at:%Y-%m-%d %H:%M:%S} UTC" if at else "now"
    return f"{view}: as of {stamp}, recomputed now", True


def _why_empty(settings: Settings, name: str, parameters: dict[str, str]) -> str:
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from hubwatch.clickhouse import connect, server_error
    from hubwatch.queries.explain import why_empty

    client = connect(settings.clickhouse_url, database=settings.clickhouse_database)
    try:
        return why_empty(client, name, parameters)
    except ClickHouseError as exc:
        raise server_error(exc, settings.clickhouse_url, settings.clickhouse_database) from exc
    finally:
        client.close()


def _server_query(
    settings: Settings, sql: str, fmt: str, parameters: dict[str, str] | None = None
) -> str:
    """``sql`` as the user wrote it, the format as a setting: a server error then points
    into the user's SQL, not at a FORMAT clause appended to it."""
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from hubwatch.clickhouse import connect, server_error

    client = connect(settings.clickhouse_url, database=settings.clickhouse_database)
    try:
        kwargs: dict[str, Any] = {"settings": {"default_format": fmt}}
        if parameters:
            kwargs["parameters"] = parameters
        # A String column may hold any bytes: shown as \xNN escapes, never a failure.
        return bytes(client.raw_query(sql, **kwargs)).decode(errors="backslashreplace")
    except ClickHouseError as exc:
        raise server_error(exc, settings.clickhouse_url, settings.clickhouse_database) from exc
    finally:
        client.close()


def _sql_output(settings: Settings, sql: str, fmt: str) -> str:
    """``sql``'s answer, with aggregate function states (binary) shown finalized, said on
    stderr; any other query as it is."""
    from hubwatch.clickhouse import connect, finalizing_states

    client = connect(settings.clickhouse_url, database=settings.clickhouse_database)
    try:
        finalizing, states = finalizing_states(client, sql)
    finally:
        client.close()
    if states:
        with contextlib.suppress(HubwatchError):  # then as the user wrote it
            output = _server_query(settings, finalizing, fmt)
            print(
                f"{', '.join(states)}: aggregate function states, shown finalized "
                "(finalizeAggregation of each row's own state)",
                file=sys.stderr,
            )
            return output
    return _server_query(settings, sql, fmt)


def _sql(args: argparse.Namespace, settings: Settings) -> int:
    from hubwatch.clickhouse import ping, query_local

    if ping(settings.clickhouse_url):
        output = _sql_output(settings, args.query, args.format)
    elif (settings.clickhouse_data_dir / "data").exists():
        # Nothing serves the embedded data directory right now: read it directly.
        output = query_local(
            settings.clickhouse_data_dir,
            f"USE `{settings.clickhouse_database}`; {args.query}",
            args.format,
        )
    else:
        print(
            f"hubwatch: no ClickHouse answers at {settings.clickhouse_url} and there is no "
            f"embedded data in {settings.clickhouse_data_dir}; start `hubwatch run`",
            file=sys.stderr,
        )
        return 1
    sys.stdout.write(output)
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from hubwatch.clickhouse import connect, migrated, ping
    from hubwatch.queries import canned_queries
    from hubwatch.report import write_report
    from hubwatch.summaries import refresh

    if not ping(settings.clickhouse_url, timeout=5.0):
        raise SinkError(
            f"no ClickHouse answers at {settings.clickhouse_url}; start it (hubwatch run, "
            "make stack-up, or hubwatch clickhouse serve --data-dir D)"
        )
    if not migrated(settings.clickhouse_url, settings.clickhouse_database):
        # Its summaries are migrations' views: refreshing them would say "doesn't exist".
        raise NotMigrated(settings.clickhouse_database)
    client = connect(settings.clickhouse_url, database=settings.clickhouse_database)
    try:
        # One-shot: the study's summaries are recomputed first, so `hubwatch query` answers
        # what the report, which reads their pair views directly, shows.
        refresh(client, [q.summary for q in canned_queries().values() if q.summary])
        files = write_report(client, settings.clickhouse_database, args.out, args.board)
    finally:
        client.close()
    print(f"report: {files.html} ({len(files.figures)} figures), numbers in {files.json}")
    return 0


async def _render(args: argparse.Namespace, settings: Settings) -> int:
    from hubwatch.clickhouse import ping
    from hubwatch.panels import DASHBOARDS
    from hubwatch.view import PanelSource
    from hubwatch.view.data import check_prometheus
    from hubwatch.view.render import render_panels

    variables: dict[str, str] = {}
    for given in args.var:
        name, eq, value = given.partition("=")
        if not eq or not name:
            raise ConfigError(f"bad --var {given!r}: expected NAME=VALUE")
        variables[name] = value
    known = sorted({v.name for d in DASHBOARDS for v in d.variables})
    unknown = sorted(set(variables) - set(known))
    if unknown:
        raise ConfigError(
            f"no dashboard variable {unknown[0]!r}: the dashboards' variables are "
            f"{', '.join(known)}"
        )
    if args.view_range:
        _check_range(args.view_range)
    if not await asyncio.to_thread(ping, settings.clickhouse_url, 5.0):
        raise SinkError(
            f"no ClickHouse answers at {settings.clickhouse_url}; start it (hubwatch run, "
            "make stack-up) or point --clickhouse-url at it"
        )
    if "base_model" in variables:  # the family explorer's: a model id
        await asyncio.to_thread(_check_model, settings, variables["base_model"], "base_model")
    prometheus = args.prometheus_url or settings.prometheus_url
    if prometheus:
        await check_prometheus(prometheus)
    source = PanelSource(
        settings.clickhouse_url, settings.clickhouse_database, prometheus_url=prometheus
    )
    try:
        rendered = await render_panels(
            source, args.out, time_range=args.view_range, variables=variables
        )
    finally:
        await source.close()
    drawn = sum(1 for r in rendered if r.state == "data")
    print(
        f"rendered {len(rendered)} panels to {args.out} ({drawn} with data; the others say "
        "why not in their picture)"
    )
    for r in rendered:
        if r.state == "error":
            print(f"  {r.path.name}: failed, see the picture", file=sys.stderr)
    empty = [r for r in rendered if r.state == "empty" and r.panel.datasource == "clickhouse"]
    if empty and not args.view_range:
        # Each dashboard's own range (a day, a week) ends now: a replay's models are older.
        print(
            f"  {len(empty)} panels had no data over their dashboard's range ending now;"
            " for older data (a replay's) try --range all",
            file=sys.stderr,
        )
    return 0


def _check_range(text: str) -> None:
    """A --range that does not parse fails before anything starts, naming the flag."""
    from hubwatch.panels import PanelError
    from hubwatch.view import parse_range

    try:
        parse_range(text)
    except PanelError as exc:
        raise ConfigError(f"--range: {exc}") from None


def _check_model(settings: Settings, model: str, what: str) -> None:
    """A model hubwatch does not know is said so (with the id meant, if one differs only in
    case or is its alias), not drawn or answered as an empty result."""
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    from hubwatch.clickhouse import connect, server_error
    from hubwatch.known_models import unknown_model

    client = connect(settings.clickhouse_url, database=settings.clickhouse_database)
    try:
        reason = unknown_model(client, model)
    except ClickHouseError as exc:
        raise server_error(exc, settings.clickhouse_url, settings.clickhouse_database) from exc
    finally:
        client.close()
    if reason is not None:
        raise ConfigError(f"{what}: {reason}")


async def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from hubwatch.events import topics
    from producers.topics import ensure_topics

    specs = topics(settings.topic_prefix)
    for spec in specs:
        print(
            f"{spec.name:32} key={spec.key:34} partitions={spec.partitions} "
            f"cleanup={spec.cleanup_policy} retention_ms={spec.retention_ms}"
        )
    if args.create:
        with _quiet("aiokafka"):
            created = await ensure_topics(settings.kafka_bootstrap, specs)
        print("created: " + (", ".join(created) or "nothing (all exist)"))
    return 0
