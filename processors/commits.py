"""Commit only what an agent finished: the faust consumer hubwatch runs on.

faust (faust-streaming 0.15.3) commits an offset once every record up to it is
acknowledged, and it can lose a fetched record on the way to the agent: its fetch stops
handing a batch on (a partition not active yet, flow stopped, a new generation) with
Kafka's position already past the rest; its commit check lets exactly one unacknowledged
record at the head (``min(acked) == committed + 1``) through; its pure-Python stream
iterator acknowledges, unseen, what it skips while stopping or rebalancing. Together they
lost a model across a restart in ~1 e2e run of 40 under load: read by nobody, committed.

:class:`FinishedOnlyConsumer` counts an acknowledgement only for a record an agent marked
finished (:func:`finish`, called once its rows are in ClickHouse); any other is released:
no longer awaited at shutdown, never committed. It never commits past a head it has not
seen finished, and reads again at once what faust fetched and did not hand on, or dropped
at the head (``hubwatch_records_refetched_total``); a head that holds no record (compacted
away, a transaction marker) becomes one of faust's gaps instead of being awaited.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from time import monotonic
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from hubwatch.metrics import RECORDS_REFETCHED

__all__ = ["FinishedOnlyConsumer", "FinishedOnlyTransport", "finish", "use_finished_only"]

log = logging.getLogger(__name__)

REFETCH_AGAIN_AFTER = 30.0
"""Seconds before a partition is read again from the same dropped record."""

PROBE_TIMEOUT_MS = 5000
"""How long a probe waits for the first record at or after a partition's head."""


class FinishedOnlyConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer, committing only records an agent finished."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._finished: set[tuple[TP, int]] = set()
        # Where the group resumed each partition, 0 included (faust keeps 0 as "unknown").
        self._resumed_at: dict[TP, int] = {}
        self._refetching: dict[TP, tuple[int, float]] = {}
        self._fetched: Any = None

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:  # noqa: ASYNC109
        records, active = await super()._wait_next_records(timeout)
        self._fetched = records
        return records, active

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109
        """faust's fetch, reading again what it fetched and then dropped.

        faust breaks off handing a fetched batch on (a partition no longer active, flow
        stopped, a new generation) with Kafka's position already past the rest: after a
        restart a partition's whole first batch went that way and stayed unread.
        """
        self._fetched = None
        generation = self.app.consumer_generation_id
        handed: dict[TP, int] = {}
        async for tp, message in super().getmany(timeout):
            handed[tp] = message.offset
            yield tp, message
        fetched, self._fetched = self._fetched, None
        if not fetched or not self.flow_active or self.app.consumer_generation_id != generation:
            return  # stopping or rebalancing: faust seeks back to the commits itself
        assignment = self.assignment()
        for tp, records in fetched.items():
            last = handed.get(tp)
            dropped = [r.offset for r in records if last is None or r.offset > last]
            if dropped and tp in assignment:
                # Usual at a start (records fetched before recovery ends): info, not warning.
                log.info(
                    "%s offsets %d-%d were fetched and not handed on: reading them again",
                    tp,
                    dropped[0],
                    dropped[-1],
                )
                RECORDS_REFETCHED.labels(tp.topic).inc(len(dropped))
                await self._read_again(tp, dropped[0])

    def mark_finished(self, message: Message) -> None:
        self._finished.add((message.tp, message.offset))

    def ack(self, message: Message) -> bool:
        with ack_lock:
            key = (message.tp, message.offset)
            if key in self._finished:
                self._finished.discard(key)
                return bool(super().ack(message))
            if not message.acked:
                # Skipped by faust, not finished by an agent: stop waiting for it (a
                # shutdown would hang on it) but leave its offset uncommitted.
                message.acked = True
                self._unacked_messages.discard(message)
                notify(self._waiting_for_ack)
            return False

    async def seek_to_committed(self) -> Mapping[TP, int]:
        offsets = await super().seek_to_committed()
        for kafka_tp, committed in offsets.items():
            tp = TP(kafka_tp.topic, kafka_tp.partition)
            # Nothing committed yet: the group starts where the reset policy put it.
            start = committed if committed is not None and committed >= 0 else None
            if start is None:
                start = await self.position(tp)
            if start is not None:
                self._resumed_at[tp] = start
        return offsets

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if acked:
            head = self._committed_offset[tp]
            if head is None:
                head = self._resumed_at.get(tp)
            # Offsets Kafka never delivers (transaction markers, compacted records) after a
            # record read are faust's gaps and count as acknowledged; at the head itself
            # faust records none (its gaps start after the commit): _refetch asks Kafka.
            first = min([*acked, *(gap.begin for gap in self._gap[tp])])
            if head is not None and first > head:
                self._refetch_if_dropped(tp, head)
                return None
        return super()._new_offset(tp)  # type: ignore[no-any-return]

    def _refetch_if_dropped(self, tp: TP, head: int) -> None:
        """Read ``tp`` again from ``head`` if faust dropped that record.

        A partition reaches its agent in order, so with later records finished the head is
        either still with an agent (tracked, unacknowledged) or was dropped on the way
        (skipped, released, or cut off in the fetcher) and will not come again until a seek.
        While stopping or rebalancing faust seeks back to the commits itself.
        """
        if not self.flow_active or tp not in self.assignment():
            return
        last = self._refetching.get(tp)
        if last is not None and last[0] == head and monotonic() - last[1] < REFETCH_AGAIN_AFTER:
            return
        if any(m.tp == tp and m.offset == head for m in list(self._unacked_messages)):
            return
        self._refetching[tp] = (head, monotonic())
        self.add_future(self._refetch(tp, head))

    async def _refetch(self, tp: TP, head: int) -> None:
        # The head may hold no record at all: compacted away (model.created is compacted),
        # a transaction marker, or below the log start. faust leaves the offset it sought to
        # out of its gaps, so it would be awaited for ever; ask Kafka what comes first.
        try:
            first = await self._first_offset_from(tp, head)
        except KafkaError as exc:  # Kafka away: the next commit after the pause asks again
            log.warning("%s offset %d not read again yet: %s", tp, head, exc)
            return
        if first is not None and first > head:
            log.info("%s holds no record from offset %d to %d: not awaited", tp, head, first)
            self._gap[tp].addi(head, first)
            self._gap[tp].merge_overlaps()
            return
        log.warning("%s offset %d was dropped on the way to its agent: reading again", tp, head)
        RECORDS_REFETCHED.labels(tp.topic).inc()
        await self._read_again(tp, head)

    async def _read_again(self, tp: TP, offset: int) -> None:
        # On the consumer's own thread (aiokafka is not thread-safe), and waited for; faust's
        # read offset goes back too, or its fetcher drops the records as already read.
        await self.seek_wait({tp: offset})
        self._read_offset[tp] = offset if offset else None

    async def _first_offset_from(self, tp: TP, offset: int) -> int | None:
        """The offset of the first record Kafka holds at or after ``offset`` in ``tp``, read
        by a consumer of its own (none while the partition ends before it)."""
        transport = self.transport
        probe = AIOKafkaConsumer(
            bootstrap_servers=faust_aiokafka.server_list(transport.url, transport.default_port),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await probe.start()
        try:
            partition = TopicPartition(tp.topic, tp.partition)
            probe.assign([partition])
            probe.seek(partition, offset)
            records = await probe.getmany(partition, timeout_ms=PROBE_TIMEOUT_MS, max_records=1)
            found = records.get(partition)
            return found[0].offset if found else None
        finally:
            await probe.stop()


class FinishedOnlyTransport(faust_aiokafka.Transport):
    Consumer = FinishedOnlyConsumer


def use_finished_only(app: faust.App) -> None:
    """Make ``app`` consume through :class:`FinishedOnlyConsumer` (before it starts)."""
    app.transport = FinishedOnlyTransport(app.conf.broker_consumer, app)


async def finish(stream: Any, event: Any) -> None:
    """Acknowledge ``event`` as finished by its agent: only these offsets are committed."""
    consumer = stream.app.consumer
    if not isinstance(consumer, FinishedOnlyConsumer):
        raise TypeError("the app was not set up with use_finished_only()")
    consumer.mark_finished(event.message)
    await stream.ack(event)
