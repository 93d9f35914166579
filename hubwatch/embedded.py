"""Embedded mode: producers and processors in one process, no Kafka and no Java.

Events pass through a bounded in-process queue to the same processor functions the faust
agents use, into a ClickHouse server run from chdb-core under ``<state_dir>/clickhouse`` (so
``hubwatch sql`` and Grafana reach it while it runs). Ctrl-C stops the poller, drains the
queue into ClickHouse, saves the checkpoint and stops the server: nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import Any

from hubwatch.alerts.evaluate import AlertEvaluator
from hubwatch.alerts.outbox import TERMINAL, Deliverer
from hubwatch.alerts.runtime import load_configured_rules, start_deliverer, start_evaluator
from hubwatch.clickhouse import ClickHouseProcess, connect
from hubwatch.errors import SourceError
from hubwatch.events import DeadLetter, Event, format_datetime
from hubwatch.migrate import applied_summary, apply_migrations
from hubwatch.replay import ReplayOptions, ReplayServer, build_replay
from hubwatch.settings import Settings
from hubwatch.status import RunStatus, report_status
from hubwatch.view import ALL_TIME, PanelSource, ViewServer, start_view
from processors.aliases import Aliases
from processors.engagement import RollingEngagement
from processors.families import FamilyForest
from processors.pipeline import count_delivered, plan_batch
from processors.restore import ForestKeeper, load_aliases, load_engagement
from processors.sinks import ClickHouseWriter
from processors.summary_watch import SummaryWatch
from processors.validate import RowValidator
from producers._http import make_client, request
from producers.checkpoint import CheckpointStore
from producers.hub_uploads import UploadsCheckpoint
from producers.publish import QueuePublisher
from producers.runner import Producers

__all__ = ["consume_queue", "run_embedded", "run_processors"]

log = logging.getLogger(__name__)

_LINGER_SECONDS = 0.05
"How long a batch waits on an empty queue for the next event before it is written."


async def consume_queue(
    queue: asyncio.Queue[Event | DeadLetter],
    writer: ClickHouseWriter,
    batch_size: int,
    batch_seconds: float,
    *,
    forest: FamilyForest | ForestKeeper | None = None,
    engagement: RollingEngagement | None = None,
    validator: RowValidator | None = None,
    aliases: Aliases | None = None,
    alerts: AlertEvaluator | None = None,
    deliverer: Deliverer | None = None,
) -> None:
    """Take bounded batches off the queue and write them; ``task_done`` only after the write.
    Alerts fired are handed to ``deliverer`` once written (``alerts`` is their outbox)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            # With alerts, a quiet queue still closes alert groups once a second.
            first = await asyncio.wait_for(queue.get(), 1.0 if alerts is not None else None)
            items: list[Event | DeadLetter] = [first]
        except TimeoutError:
            items = []
        deadline = loop.time() + batch_seconds
        while len(items) < batch_size:
            remaining = deadline - loop.time()
            if queue.empty() and remaining <= 0:
                break
            try:
                # A queue quiet for a moment has had its page: the pollers wait for it to be
                # written (flush joins the queue), so waiting out batch_seconds only delays
                # every row and alert of the page.
                wait = max(0.0, min(remaining, _LINGER_SECONDS))
                items.append(await asyncio.wait_for(queue.get(), wait))
            except TimeoutError:
                break
        # A keeper reloads the forest when a backfill has rebuilt the families meanwhile.
        trees = await forest.current() if isinstance(forest, ForestKeeper) else forest
        batch = plan_batch(
            items,
            forest=trees,
            aliases=aliases,
            engagement=engagement,
            validator=validator,
            alerts=alerts,
        )
        # Rows ClickHouse refused go to dead_letters by the writer itself (and are counted
        # there); the batch's own, handed in or made here, are counted once written.
        await asyncio.to_thread(writer.write, batch.plans())
        count_delivered(batch.dead_letters)
        if deliverer is not None:
            for alert in batch.fired:
                for target in alert.targets:
                    deliverer.submit(alert, target)
        for _ in items:
            queue.task_done()


async def _hub_reachable(url: str) -> str | None:
    """None if the Hub answers; else a one-line reason."""
    async with make_client(base_url=url, timeout=10.0) as client:
        try:
            await request(client, "/api/models", params=[("limit", "1")], max_attempts=1)
        except SourceError as exc:
            return str(exc)
    return None


async def run_embedded(
    settings: Settings,
    *,
    replay: ReplayOptions | None = None,
    http_port: int = 8123,
    tcp_port: int = 9000,
    stop: asyncio.Event | None = None,
) -> int:
    if replay is None:
        problem = await _hub_reachable(settings.hub_url)
        if problem is not None:
            print(
                f"hubwatch: cannot reach the Hub at {settings.hub_url} ({problem}); "
                "no network? run `hubwatch run --replay` to replay the fixture instead.",
                file=sys.stderr,
            )
            return 1  # as every failing command does (README)

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    server = ClickHouseProcess(settings.clickhouse_data_dir, http_port=http_port, tcp_port=tcp_port)
    await asyncio.to_thread(server.start)
    settings = settings.replace(clickhouse_url=server.url)
    replay_server: ReplayServer | None = None
    view: ViewServer | None = None
    try:
        client = await asyncio.to_thread(connect, server.url)
        ran = await asyncio.to_thread(
            apply_migrations,
            client,
            settings.clickhouse_database,
            snapshot_retention_days=settings.snapshot_retention_days,
        )
        resumed = _resume_line(settings, client)
        client.close()
        if ran:
            log.info("%s", applied_summary(ran))
        print(
            f"hubwatch: ClickHouse at {server.url} (database {settings.clickhouse_database});"
            ' try `hubwatch sql "SELECT count() FROM models"`',
            flush=True,
        )
        if resumed is not None:
            print(resumed, flush=True)

        if replay is not None:
            replay_server = build_replay(replay)
            await replay_server.start()
            settings = settings.replace(hub_url=replay_server.url, github_url=replay_server.url)
            print(
                f"hubwatch: replaying {len(replay_server.hub)} models at {replay_server.url}, "
                f"{replay.rate:g}/s",
                flush=True,
            )

        status = RunStatus()
        # A replay's models were created long ago: its view shows all time.
        source = PanelSource(
            server.url,
            settings.clickhouse_database,
            prometheus_url=settings.prometheus_url,
            default_range=ALL_TIME if replay is not None else None,
        )
        # Only the default port may move: one named in HUBWATCH_VIEW_PORT is kept.
        view = await start_view(
            source, settings.view_port, fallback="HUBWATCH_VIEW_PORT" not in os.environ
        )
        if view is not None:
            status.view_url = f"{view.url}/"
            print(f"hubwatch: web view at {status.view_url}", flush=True)
        done = asyncio.Event()
        reporter = asyncio.create_task(
            report_status(
                status,
                done,
                clickhouse_url=server.url,
                database=settings.clickhouse_database,
                interval=settings.status_interval,
            ),
            name="status",
        )
        watch = SummaryWatch(
            server.url, settings.clickhouse_database, interval=settings.summary_watch_interval
        )
        watcher = asyncio.create_task(watch.run(), name="summary-watch")
        try:
            await _pipeline(settings, stop, status)
        finally:
            done.set()
            await reporter
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    finally:
        if view is not None:
            await view.stop()
        if replay_server is not None:
            await replay_server.stop()
        await asyncio.to_thread(server.stop)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    print("hubwatch: stopped cleanly", flush=True)
    return 0


async def run_processors(
    settings: Settings, queue: asyncio.Queue[Event | DeadLetter], *, terminal: bool = True
) -> None:
    """The embedded processors: their state restored from ClickHouse (what a previous run
    wrote), then the queue consumed until cancelled. With alert rules, alerts also go to
    the terminal (``terminal``)."""
    writer = ClickHouseWriter(
        lambda: connect(settings.clickhouse_url), settings.clickhouse_database
    )
    url, database = settings.clickhouse_url, settings.clickhouse_database
    rules = load_configured_rules(settings)
    deliverer: Deliverer | None = None
    try:
        forest = ForestKeeper(url, database)
        await forest.current()
        aliases = await asyncio.to_thread(load_aliases, url, database)
        engagement = await asyncio.to_thread(load_engagement, url, database)
        validator = RowValidator(await asyncio.to_thread(writer.column_types))
        evaluator = None
        if rules is not None:
            extra = (TERMINAL,) if terminal else ()
            evaluator = await start_evaluator(
                settings, rules, extra_targets=extra, canonical=aliases.canonical
            )
            deliverer = await start_deliverer(settings, rules, writer)
        await consume_queue(
            queue,
            writer,
            settings.batch_size,
            settings.batch_seconds,
            forest=forest,
            aliases=aliases,
            engagement=engagement,
            validator=validator,
            alerts=evaluator,
            deliverer=deliverer,
        )
    finally:
        if deliverer is not None:
            # What is in flight gets a moment; what is left stays queued in `alerts`.
            await deliverer.drain(5.0)
            await deliverer.close()
        writer.close()


def _resume_line(settings: Settings, client: Any) -> str | None:
    """One line saying where a run resumes, when a previous one left a checkpoint."""
    path = settings.checkpoint_dir / "hub_uploads.json"
    checkpoint = UploadsCheckpoint.from_json(CheckpointStore(path).load())
    if checkpoint.watermark is None:
        return None
    models = client.command(f"SELECT count() FROM `{settings.clickhouse_database}`.models FINAL")
    return (
        f"hubwatch: resuming from the checkpoint in {settings.checkpoint_dir}: uploads seen up "
        f"to {format_datetime(checkpoint.watermark)}, {int(models):,} models in ClickHouse"
    )


async def _pipeline(settings: Settings, stop: asyncio.Event, status: RunStatus) -> None:
    queue: asyncio.Queue[Event | DeadLetter] = asyncio.Queue(maxsize=10_000)
    consumer = asyncio.create_task(run_processors(settings, queue), name="processors")
    async with Producers(settings, QueuePublisher(queue)) as producers:
        producers.pollers = status.track(producers.pollers)
        polling = asyncio.create_task(producers.run(stop), name="producers")
        done, _ = await asyncio.wait({polling, consumer}, return_when=asyncio.FIRST_COMPLETED)
        if consumer in done:  # the processors died: stop polling, surface the error
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            consumer.result()
        await polling
    # The poller flushed (queue.join) before its last checkpoint; drain anything left.
    await queue.join()
    consumer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await consumer
