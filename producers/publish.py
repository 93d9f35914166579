"""Where producers put events: Kafka (aiokafka) or an in-process queue (embedded mode)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, Self

from hubwatch import metrics
from hubwatch.errors import SinkError
from hubwatch.events import (
    DEAD_LETTER,
    DEFAULT_TOPIC_PREFIX,
    DeadLetter,
    Event,
    encode,
    topic_for,
)

__all__ = ["EventPublisher", "KafkaPublisher", "QueuePublisher", "start_kafka_client"]


async def start_kafka_client(
    start: Callable[[], Awaitable[object]], close: Callable[[], Awaitable[object]], bootstrap: str
) -> None:
    """Start an aiokafka client; if Kafka does not answer, close it and say so."""
    from aiokafka.errors import KafkaError

    try:
        await start()
    except KafkaError as exc:
        await close()
        raise SinkError(f"cannot reach Kafka at {bootstrap}: {exc}", retriable=True) from exc


class EventPublisher(Protocol):
    async def publish(self, event: Event) -> None: ...
    async def dead_letter(self, letter: DeadLetter) -> None: ...
    async def flush(self) -> None:
        """Return once everything published so far is durable downstream."""
        ...


class KafkaPublisher:
    """Publishes encoded events keyed by repo; idempotent producer, acks from all replicas."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topic_prefix: str = DEFAULT_TOPIC_PREFIX,
        client_id: str = "hubwatch-producer",
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._prefix = topic_prefix
        self._client_id = client_id
        self._producer: object | None = None
        self._pending: list[asyncio.Future[object]] = []

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
            max_request_size=2 * 1024 * 1024,
        )
        await start_kafka_client(producer.start, producer.stop, self._bootstrap)
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await self.flush_with(producer)
            finally:
                await producer.stop()  # type: ignore[attr-defined]

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _send(self, topic: str, key: str | None, value: bytes) -> None:
        if self._producer is None:
            raise SinkError("KafkaPublisher is not started")
        future = await self._producer.send(  # type: ignore[attr-defined]
            topic, value=value, key=key.encode() if key is not None else None
        )
        self._pending.append(future)

    async def publish(self, event: Event) -> None:
        await self._send(topic_for(event.KIND, self._prefix), event.key, encode(event))
        metrics.EVENTS_PUBLISHED.labels(event.KIND).inc()

    async def dead_letter(self, letter: DeadLetter) -> None:
        await self._send(topic_for(DEAD_LETTER, self._prefix), letter.key, letter.to_json())
        metrics.DEAD_LETTERS.labels(letter.stage, letter.reason).inc()

    async def flush(self) -> None:
        if self._producer is not None:
            await self.flush_with(self._producer)

    async def flush_with(self, producer: object) -> None:
        from aiokafka.errors import KafkaError

        pending, self._pending = self._pending, []
        try:
            await producer.flush()  # type: ignore[attr-defined]
            await asyncio.gather(*pending)
        except KafkaError as exc:
            raise SinkError(
                f"Kafka did not take the batch: {exc}",
                retriable=bool(getattr(exc, "retriable", False)),
            ) from exc


class QueuePublisher:
    """Embedded mode: hands events to in-process processors through a bounded queue.

    ``flush`` waits until the processors have written everything (``queue.join()``), so a
    poller's checkpoint never runs ahead of what ClickHouse holds.
    """

    def __init__(self, queue: asyncio.Queue[Event | DeadLetter]) -> None:
        self.queue = queue

    async def publish(self, event: Event) -> None:
        await self.queue.put(event)
        metrics.EVENTS_PUBLISHED.labels(event.KIND).inc()

    async def dead_letter(self, letter: DeadLetter) -> None:
        await self.queue.put(letter)
        metrics.DEAD_LETTERS.labels(letter.stage, letter.reason).inc()

    async def flush(self) -> None:
        await self.queue.join()
