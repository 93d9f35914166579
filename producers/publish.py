"""Where producers put events: Kafka (aiokafka) or an in-process queue (embedded mode).

Each poller publishes through a session of its own (``publisher.session()``): the
session's ``flush`` waits for that poller's deliveries only and raises :class:`SinkError`
if any of them failed, so no poller saves its state past an event that never reached Kafka
because another poller's flush went well. Every aiokafka error on the send and flush path
becomes a :class:`SinkError` whose ``retriable`` says whether waiting can help.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, Self

from hubwatch import metrics
from hubwatch.errors import SchemaError, SinkError
from hubwatch.events import (
    DEAD_LETTER,
    DEFAULT_TOPIC_PREFIX,
    MAX_RECORD_BYTES,
    DeadLetter,
    Event,
    encode,
    topic_for,
)
from hubwatch.settings import Settings
from producers._records import fit

__all__ = [
    "EventPublisher",
    "KafkaPublisher",
    "KafkaSession",
    "Publisher",
    "QueuePublisher",
    "sink_error",
    "start_kafka_client",
]

log = logging.getLogger(__name__)


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
        """Return once everything published so far through this object is durable
        downstream; raise :class:`SinkError` if some of it will not be."""
        ...


class Publisher(EventPublisher, Protocol):
    def session(self) -> EventPublisher:
        """A delivery scope of its own, for one poller."""
        ...


def sink_error(exc: BaseException) -> SinkError:
    """An aiokafka error (raised by ``send`` or set on a delivery) as a :class:`SinkError`.

    Retriable: Kafka unreachable, slow or electing a leader, and the producer-state errors
    a fresh producer gets past. Not retriable: a record the broker will never take (too
    large, invalid, not authorised), which waiting does not change.
    """
    from aiokafka import errors

    transient = (
        errors.KafkaTimeoutError,
        errors.KafkaConnectionError,
        errors.NodeNotReadyError,
        errors.RequestTimedOutError,
        errors.ProducerClosed,
        *_producer_fatal(),
    )
    if isinstance(exc, asyncio.CancelledError):
        return SinkError("Kafka delivery cancelled (producer closed)", retriable=True)
    code = getattr(exc, "errno", None)
    retriable = isinstance(exc, transient) or bool(getattr(exc, "retriable", False))
    return SinkError(
        f"Kafka: {type(exc).__name__}: {exc}".rstrip(": "),
        code=code if isinstance(code, int) else None,
        retriable=retriable,
    )


def _producer_fatal() -> tuple[type[BaseException], ...]:
    """Errors after which an aiokafka producer is no use; a new one (new producer id)
    starts clean."""
    from aiokafka import errors

    return (errors.OutOfOrderSequenceNumber, errors.ProducerFenced, errors.IllegalStateError)


def _count_delivered(counter: Any, kind: str) -> Callable[[asyncio.Future[Any]], None]:
    """A done-callback that counts a record once Kafka acknowledged it (a send that fails
    and is retried next round is counted once, when it is delivered), or its failure."""

    def done(future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        if future.exception() is None:
            counter.inc()
        else:
            metrics.PUBLISH_ERRORS.labels(kind).inc()

    return done


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A delivery nobody waits for any more: read its outcome so asyncio does not log it.
    if not future.cancelled():
        future.exception()


class KafkaPublisher:
    """Publishes encoded events keyed by repo; idempotent producer, acks from all replicas.

    ``publish``/``dead_letter``/``flush`` on the publisher itself use a default session;
    pollers each take their own with :meth:`session`. A producer that aiokafka gave up on is
    replaced on the next send. ``request_timeout`` bounds each Kafka request and
    ``delivery_timeout`` how long ``flush`` waits for acknowledgements before it reports
    Kafka as unavailable (the records stay queued in the producer meanwhile).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topic_prefix: str = DEFAULT_TOPIC_PREFIX,
        client_id: str = "hubwatch-producer",
        request_timeout: float = 20.0,
        delivery_timeout: float = 30.0,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self.prefix = topic_prefix
        self._client_id = client_id
        self._request_timeout = request_timeout
        self.delivery_timeout = delivery_timeout
        self._producer: Any = None
        self._broken = False
        self._started = False
        self._lock: asyncio.Lock | None = None
        self._default = KafkaSession(self)
        self._closing: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaPublisher:
        return cls(
            settings.kafka_bootstrap,
            topic_prefix=settings.topic_prefix,
            request_timeout=settings.kafka_request_timeout,
            delivery_timeout=settings.kafka_delivery_timeout,
        )

    async def start(self) -> None:
        quiet_kafka_logs()
        self._lock = asyncio.Lock()
        self._producer = await self._new_producer()
        self._started = True

    async def _new_producer(self) -> Any:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
            max_request_size=MAX_RECORD_BYTES,
            request_timeout_ms=int(self._request_timeout * 1000),
        )
        await start_kafka_client(producer.start, producer.stop, self._bootstrap)
        return producer

    async def stop(self) -> None:
        self._started = False
        producer, self._producer = self._producer, None
        try:
            if producer is not None:
                try:
                    await self._default.flush()
                finally:
                    await self._close(producer)
        finally:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def _close(self, producer: Any) -> None:
        # An idempotent producer retries undelivered records for ever: bound the wait, so
        # stopping during an outage does not hang (those records' senders saved no state).
        try:
            await asyncio.wait_for(producer.stop(), timeout=self.delivery_timeout)
        except TimeoutError:
            log.warning("Kafka: stopped with records undelivered (their state was not saved)")
        except Exception as exc:  # closing a producer that already failed; nothing to save
            log.debug("closing a failed Kafka producer: %r", exc)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def session(self) -> KafkaSession:
        return KafkaSession(self)

    async def publish(self, event: Event) -> None:
        await self._default.publish(event)

    async def dead_letter(self, letter: DeadLetter) -> None:
        await self._default.dead_letter(letter)

    async def flush(self) -> None:
        await self._default.flush()

    async def _ready(self) -> Any:
        """The producer, replaced first if aiokafka gave up on it."""
        if not self._started or self._lock is None:
            raise SinkError("KafkaPublisher is not started")
        if self._producer is not None and not self._broken and not _sender_dead(self._producer):
            return self._producer
        async with self._lock:
            if self._producer is not None and (self._broken or _sender_dead(self._producer)):
                old, self._producer = self._producer, None
                # Closed in the background: its close may wait out delivery_timeout, and
                # every poller's sends wait on this lock.
                closing = asyncio.create_task(self._close(old))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
            if self._producer is None:
                self._producer = await self._new_producer()
                self._broken = False
                log.info("Kafka: started a new producer")
            return self._producer

    async def send(self, topic: str, key: str | None, value: bytes) -> asyncio.Future[Any]:
        from aiokafka.errors import KafkaError

        producer = await self._ready()
        try:
            future: asyncio.Future[Any] = await producer.send(
                topic, value=value, key=key.encode() if key is not None else None
            )
        except KafkaError as exc:
            raise self.failed(exc) from exc
        return future

    def failed(self, exc: BaseException) -> SinkError:
        if isinstance(exc, _producer_fatal()) and not self._broken:
            # aiokafka's own logs are quiet: say once why the producer is replaced.
            log.warning("Kafka: the producer failed (%r); a new one replaces it", exc)
            self._broken = True
        return sink_error(exc)


def _sender_dead(producer: Any) -> bool:
    # aiokafka stops its sender task for good on a fatal error; later sends would hang.
    task = getattr(getattr(producer, "_sender", None), "sender_task", None)
    return task is not None and task.done()


class KafkaSession:
    """One poller's deliveries: ``flush`` waits for these and no others."""

    def __init__(self, publisher: KafkaPublisher) -> None:
        self._publisher = publisher
        self._pending: list[asyncio.Future[Any]] = []

    async def publish(self, event: Event) -> None:
        topic = topic_for(event.KIND, self._publisher.prefix)
        try:
            event, value = fit(event)
        except SchemaError as error:
            # Too large even trimmed: a dead letter (its payload is capped), not a poison
            # pill that fails every round.
            await self.dead_letter(
                DeadLetter.of(
                    stage="producer.publish",
                    error=error,
                    source=topic,
                    key=event.key,
                    payload=encode(event),
                )
            )
            return
        future = await self._send(event.KIND, topic, event.key, value)
        future.add_done_callback(
            _count_delivered(metrics.EVENTS_PUBLISHED.labels(event.KIND), event.KIND)
        )
        self._pending.append(future)

    async def dead_letter(self, letter: DeadLetter) -> None:
        topic = topic_for(DEAD_LETTER, self._publisher.prefix)
        future = await self._send(DEAD_LETTER, topic, letter.key, letter.to_json())
        future.add_done_callback(
            _count_delivered(metrics.DEAD_LETTERS.labels(letter.stage, letter.reason), DEAD_LETTER)
        )
        self._pending.append(future)

    async def _send(self, kind: str, topic: str, key: str | None, value: bytes) -> Any:
        try:
            return await self._publisher.send(topic, key, value)
        except SinkError:
            metrics.PUBLISH_ERRORS.labels(kind).inc()
            raise

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        timeout = self._publisher.delivery_timeout
        done, waiting = await asyncio.wait(pending, timeout=timeout)
        for future in pending:
            future.add_done_callback(_retrieve)
        if waiting:
            raise SinkError(
                f"Kafka did not acknowledge {len(waiting)} of {len(pending)} records"
                f" within {timeout:g}s",
                retriable=True,
            )
        for future in done:
            error = asyncio.CancelledError() if future.cancelled() else future.exception()
            if error is not None:
                raise self._publisher.failed(error) from error


def quiet_kafka_logs() -> None:
    """aiokafka logs every failed connection attempt and retry (~1,900 lines for a 50 s
    outage); each failure that matters surfaces as a SinkError, which the runner reports
    once per outage, so only aiokafka's critical messages are kept."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


class QueuePublisher:
    """Embedded mode: hands events to in-process processors through a bounded queue.

    ``flush`` waits until the processors have written everything (``queue.join()``), so a
    poller's checkpoint never runs ahead of what ClickHouse holds. A session is the
    publisher itself: waiting for everything covers each poller's own events, and a failed
    write stops the processors, which stops the run.
    """

    def __init__(self, queue: asyncio.Queue[Event | DeadLetter]) -> None:
        self.queue = queue

    def session(self) -> QueuePublisher:
        return self

    async def publish(self, event: Event) -> None:
        await self.queue.put(event)
        metrics.EVENTS_PUBLISHED.labels(event.KIND).inc()

    async def dead_letter(self, letter: DeadLetter) -> None:
        # Counted by the processors once it is in ClickHouse (consume_queue), not here.
        await self.queue.put(letter)

    async def flush(self) -> None:
        await self.queue.join()
