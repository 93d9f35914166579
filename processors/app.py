"""The faust app: topics and agents only; the logic is processors.pipeline's.

No record stops the agent: the pipeline turns whatever one record holds (a tombstone, bad
JSON, a kind on the wrong topic, a value the table would refuse, a bug met on it) into a
skip or a dead letter, and the writer isolates a row ClickHouse still refuses and hands
back its dead letter; the agent publishes every dead letter to the dead-letter topic
(counted once Kafka has it) and only then acknowledges the batch.

``CrashingSupervisor`` is kept for what is left: a real outage (ClickHouse unreachable for
longer than the writer's retry window, Kafka refusing the dead letters). Crashing then,
rather than sitting idle holding unacknowledged events, lets whatever supervises the
process restart it, and Kafka redelivers from the last committed offset.

Live rolling engagement is kept in a faust table of 1-hour tumbling windows
(``engagement-hours``), recovered from its changelog on restart; :class:`WindowedBuckets`
lets processors.engagement read and write it as the mapping it expects.

Each agent takes a bounded batch (size and time), writes it to ClickHouse, and acks the
batch only after ClickHouse acknowledged (``noack_take`` + ``finish``): at-least-once, made
exactly-once in effect by the tables replacing on their natural keys. Only what an agent
finished is committed (processors.commits): faust can drop a fetched record on its way
here and still commit past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, MutableMapping
from datetime import timedelta
from typing import Any

import faust
from mode import CrashingSupervisor

from hubwatch.alerts.alert import Alert
from hubwatch.alerts.evaluate import AlertEvaluator
from hubwatch.alerts.outbox import OutboxRecord, outbox_topic
from hubwatch.alerts.runtime import load_configured_rules, start_deliverer, start_evaluator
from hubwatch.clickhouse import connect
from hubwatch.errors import SchemaError
from hubwatch.events import DEAD_LETTER, DeadLetter, ModelSnapshot, topic_for, topics
from hubwatch.quiet_logs import OutageLogFilter
from hubwatch.settings import Settings
from processors.commits import finish, use_finished_only
from processors.engagement import HORIZON_HOURS, HOUR, RollingEngagement
from processors.lag import ConsumerLag
from processors.pipeline import RawRecord, count_delivered, plan_batch
from processors.restore import ForestKeeper, load_aliases
from processors.sinks import ClickHouseWriter, plan_dead_letters
from processors.summary_watch import SummaryWatch
from processors.validate import RowValidator

__all__ = ["WindowedBuckets", "create_app"]

log = logging.getLogger(__name__)


class WindowedBuckets(MutableMapping[tuple[str, int], Any]):
    """``(repo_id, hour)`` -> bucket, over a faust table of 1-hour tumbling windows.

    Keys are written through the table (``use_partitioner``: the changelog partition comes
    from the key, not from the event being processed, which a batch does not have), and
    faust expires windows past the horizon.
    """

    def __init__(self, table: Any) -> None:
        self._table = table

    def _key(self, key: tuple[str, int]) -> tuple[str, Any]:
        repo_id, hour = key
        return repo_id, self._table.window.current(hour * HOUR)

    def __getitem__(self, key: tuple[str, int]) -> Any:
        return self._table[self._key(key)]

    def __setitem__(self, key: tuple[str, int], value: Any) -> None:
        self._table[self._key(key)] = value

    def __delitem__(self, key: tuple[str, int]) -> None:
        del self._table[self._key(key)]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and self._key(key) in self._table  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[str, int]]:
        for repo_id, (start, _) in self._table:
            yield repo_id, int(start // HOUR)

    def __len__(self) -> int:
        return len(self._table)

    def get(self, key: tuple[str, int], default: Any = None) -> Any:
        full = self._key(key)
        return self._table.get(full, default)


_LOGGING = {
    # Merged into the worker's own logging setup: its console handler, as mode defines it,
    # with the filter that turns a Kafka outage's reconnect errors into one line.
    "merge": True,
    "filters": {"kafka_outages": {"()": OutageLogFilter}},
    "handlers": {
        "default": {
            "class": "colorlog.StreamHandler",
            "formatter": "colored",
            "filters": ["kafka_outages"],
        }
    },
}


def create_app(settings: Settings) -> faust.App:
    settings.state_dir.mkdir(parents=True, exist_ok=True)  # faust makes only the last level
    app = faust.App(
        settings.processor_app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        # faust keeps its own files under "<app id>-data" in the working directory unless told.
        datadir=str(settings.state_dir / "faust"),
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        topic_replication_factor=1,
        # Room for several batches: a take() of batch_size must not wait on a prefetch
        # buffer smaller than one batch (faust's default is 4096).
        stream_buffer_maxsize=max(4096, 8 * settings.batch_size),
        # A killed worker's replacement with the same instance id takes its partitions back
        # at once; any other waits the session timeout (faust's default of 60 s kept them
        # idle for a minute), with heartbeats well inside it.
        broker_session_timeout=settings.processor_session_timeout,
        broker_heartbeat_interval=settings.processor_session_timeout / 5,
        consumer_group_instance_id=settings.processor_instance_id,
        logging_config=_LOGGING,
    )
    use_finished_only(app)
    specs = {spec.name: spec for spec in topics(settings.topic_prefix)}

    dead_letter_name = topic_for(DEAD_LETTER, settings.topic_prefix)
    # Every event topic feeds one agent: the pipeline routes each kind to its table. The
    # topics exist already (ensure_topics, with their own layouts) before the app starts.
    event_topics = app.topic(
        *(n for n in specs if n != dead_letter_name), key_type=bytes, value_type=bytes
    )
    dead_letter_topic = app.topic(
        dead_letter_name,
        key_type=bytes,
        value_type=bytes,
        partitions=specs[dead_letter_name].partitions,
    )

    hours = app.Table(
        "engagement-hours",
        default=None,
        partitions=ModelSnapshot.topic(settings.topic_prefix).partitions,
        use_partitioner=True,  # keys and values go to the changelog as JSON
    ).tumbling(HOUR, expires=timedelta(hours=HORIZON_HOURS))

    lag = ConsumerLag(
        settings.kafka_bootstrap,
        settings.processor_app_id,  # faust's consumer group is the app id
        list(specs),
        interval=settings.lag_interval,
    )

    @app.task
    async def consumer_lag() -> None:
        await lag.run()

    summaries = SummaryWatch(
        settings.clickhouse_url,
        settings.clickhouse_database,
        interval=settings.summary_watch_interval,
    )

    @app.task
    async def summary_health() -> None:
        await summaries.run()

    def writer(*, letters_to_table: bool = True) -> ClickHouseWriter:
        return ClickHouseWriter(
            lambda: connect(settings.clickhouse_url),
            settings.clickhouse_database,
            letters_to_table=letters_to_table,
        )

    # Alerts: evaluated by the events agent, handed to the outbox topic once their rows are
    # written, delivered by their own agent (hubwatch/alerts/outbox.py).
    rules = load_configured_rules(settings)
    alerting: dict[str, AlertEvaluator] = {}
    outbox_spec = outbox_topic(settings.topic_prefix)
    outbox = app.topic(
        outbox_spec.name, key_type=bytes, value_type=bytes, partitions=outbox_spec.partitions
    )

    async def hand_over(fired: list[Alert]) -> None:
        records = [OutboxRecord(alert, target) for alert in fired for target in alert.targets]
        sent = [await outbox.send(key=r.key.encode(), value=r.to_json()) for r in records]
        await asyncio.gather(*sent)

    @app.agent(event_topics, supervisor_strategy=CrashingSupervisor)
    async def events(stream: Any) -> None:
        # Refused rows come back as dead letters: this agent publishes them with the rest.
        rows = writer(letters_to_table=False)
        # Lineage crosses partitions: the family trees need every event in this one agent.
        # Reloaded when a backfill has rebuilt the families since (one owner at a time).
        forests = ForestKeeper(settings.clickhouse_url, settings.clickhouse_database)
        await forests.current()
        aliases = await asyncio.to_thread(
            load_aliases, settings.clickhouse_url, settings.clickhouse_database
        )
        validator = RowValidator(await asyncio.to_thread(rows.column_types))
        engagement = RollingEngagement(WindowedBuckets(hours.table))
        evaluator = None
        if rules is not None:
            evaluator = await start_evaluator(settings, rules, canonical=aliases.canonical)
            alerting["evaluator"] = evaluator
        async for events in stream.noack_take(settings.batch_size, settings.batch_seconds):
            batch = plan_batch(
                (RawRecord(e.message.topic, e.message.key, e.message.value) for e in events),
                forest=await forests.current(),
                aliases=aliases,
                engagement=engagement,
                validator=validator,
                topic_prefix=settings.topic_prefix,
                alerts=evaluator,
            )
            refused = await asyncio.to_thread(rows.write, batch.plans(with_dead_letters=False))
            letters = [*batch.dead_letters, *refused]
            sent = [
                await dead_letter_topic.send(key=(d.key or "").encode() or None, value=d.to_json())
                for d in letters
            ]
            await asyncio.gather(*sent)
            count_delivered(letters)
            await hand_over(batch.fired)  # written first: at least once to the outbox
            for event in events:
                await finish(stream, event)

    if rules is not None:
        group_writer = writer()

        @app.timer(1.0)
        async def close_alert_groups() -> None:
            evaluator = alerting.get("evaluator")
            if evaluator is None or not evaluator.groups:
                return
            batch = plan_batch((), alerts=evaluator)
            if batch.fired:
                await asyncio.to_thread(group_writer.write, batch.plans())
                await hand_over(batch.fired)

        @app.agent(outbox, supervisor_strategy=CrashingSupervisor)
        async def alert_deliveries(stream: Any) -> None:
            deliverer = await start_deliverer(settings, rules, writer())
            try:
                async for events in stream.noack_take(100, 0.05):
                    for event in events:
                        try:
                            record = OutboxRecord.from_json(event.message.value)
                        except (ValueError, KeyError, TypeError) as exc:
                            log.error("unreadable outbox record at %s: %s", event.message.tp, exc)
                            await finish(stream, event)
                            continue
                        deliverer.submit(
                            record.alert,
                            record.target,
                            on_done=lambda e=event: finish(stream, e),  # type: ignore[misc]
                        )
            finally:
                # Stopping: a delivery under way finishes and is recorded (cut off after the
                # target took it, the next start would send it again); the rest stay queued.
                # faust cancels an agent more than once as it stops: the drain outlasts
                # that, bounded by its own timeout.
                drained = asyncio.ensure_future(deliverer.drain(10.0))
                while not drained.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.shield(drained)
                await deliverer.close()

    @app.agent(dead_letter_topic, supervisor_strategy=CrashingSupervisor)
    async def dead_letters(stream: Any) -> None:
        letters_writer = writer()
        async for events in stream.noack_take(settings.batch_size, settings.batch_seconds):
            letters = []
            for event in events:
                try:
                    letters.append(DeadLetter.from_json(event.message.value))
                except SchemaError as exc:
                    log.error(
                        "unreadable dead letter at %s offset %s: %s",
                        event.message.tp,
                        event.message.offset,
                        exc,
                    )
            if letters:
                await asyncio.to_thread(letters_writer.write, [plan_dead_letters(letters)])
            for event in events:
                await finish(stream, event)

    return app
