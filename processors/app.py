"""The faust app: topics and agents only; the logic is processors.pipeline's.

An agent that cannot write (a non-retriable ClickHouse error) crashes the whole worker
(``CrashingSupervisor``) rather than sit idle holding unacknowledged events: whatever
supervises the process restarts it and Kafka redelivers from the last committed offset.

Each agent takes a bounded batch (size and time), writes it to ClickHouse, and acks the
batch only after ClickHouse acknowledged (``noack_take`` + ``stream.ack``): at-least-once,
made exactly-once in effect by the tables replacing on their natural keys.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from mode import CrashingSupervisor

from hubwatch.clickhouse import connect
from hubwatch.errors import SchemaError
from hubwatch.events import DEAD_LETTER, DeadLetter, topic_for, topics
from hubwatch.settings import Settings
from processors.pipeline import RawRecord, plan_batch
from processors.sinks import ClickHouseWriter, plan_dead_letters

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.processor_app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        topic_replication_factor=1,
    )
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

    def writer() -> ClickHouseWriter:
        return ClickHouseWriter(
            lambda: connect(settings.clickhouse_url), settings.clickhouse_database
        )

    @app.agent(event_topics, supervisor_strategy=CrashingSupervisor)
    async def events(stream: Any) -> None:
        rows = writer()
        async for events in stream.noack_take(settings.batch_size, settings.batch_seconds):
            batch = plan_batch(
                RawRecord(e.message.topic, e.message.key, e.message.value) for e in events
            )
            await asyncio.to_thread(rows.write, batch.plans(with_dead_letters=False))
            sent = [
                await dead_letter_topic.send(key=(d.key or "").encode() or None, value=d.to_json())
                for d in batch.dead_letters
            ]
            await asyncio.gather(*sent)
            for event in events:
                await stream.ack(event)

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
                await stream.ack(event)

    return app
