"""Consumer lag of the processors' group: per topic and partition, the records Kafka holds
past the group's committed offset (``hubwatch_consumer_lag_records``).

Read from outside the consumer, as an operator's tool would (the group's committed offsets
from the coordinator, the partitions' end offsets from their leaders), so it is right
whichever worker holds a partition, and while none does. A partition the group never
committed counts from its first offset (the processors start at the earliest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Self

from hubwatch import metrics
from hubwatch.errors import SinkError
from producers.publish import start_kafka_client

__all__ = ["ConsumerLag"]

log = logging.getLogger(__name__)


class ConsumerLag:
    """Measures ``group``'s lag on ``topics`` and sets the gauge, every ``interval``
    seconds while :meth:`run` runs."""

    def __init__(
        self, bootstrap: str, group: str, topics: Sequence[str], *, interval: float = 15.0
    ) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.topics = list(topics)
        self.interval = interval
        self._admin: Any = None
        self._consumer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        # aiokafka's logs stay as they are: in the processor, its outage filter turns them
        # (these clients' too) into one line per Kafka outage.
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await start_kafka_client(admin.start, admin.close, self.bootstrap)
        # No group: it only reads offsets, it never joins the processors' group.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        try:
            await start_kafka_client(consumer.start, consumer.stop, self.bootstrap)
        except SinkError:
            await admin.close()
            raise
        self._admin, self._consumer = admin, consumer

    async def stop(self) -> None:
        admin, self._admin = self._admin, None
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def measure(self) -> dict[tuple[str, int], int]:
        """``{(topic, partition): lag}``, and the gauge set to it."""
        from aiokafka import TopicPartition
        from aiokafka.errors import KafkaError

        if self._admin is None or self._consumer is None:
            raise SinkError("ConsumerLag is not started")
        for attempt in range(5):
            try:
                # Asked each time: partitions added since count too; a topic not (yet)
                # there has none.
                partitions = [
                    TopicPartition(described["topic"], p["partition"])
                    for described in await self._admin.describe_topics(self.topics)
                    for p in sorted(described["partitions"], key=lambda p: p["partition"])
                ]
                committed = await self._admin.list_consumer_group_offsets(
                    self.group, partitions=partitions
                )
                ends = await self._consumer.end_offsets(partitions)
                firsts = await self._consumer.beginning_offsets(partitions)
                break
            except KafkaError as exc:
                # A coordinator being elected (a new cluster's offsets topic) passes soon.
                if not getattr(exc, "retriable", False) or attempt == 4:
                    raise SinkError(f"cannot read consumer lag: {exc!r}", retriable=True) from exc
                await asyncio.sleep(1.0)
        lags: dict[tuple[str, int], int] = {}
        for tp in partitions:
            mark = committed.get(tp)
            done = mark.offset if mark is not None and mark.offset >= 0 else firsts[tp]
            lags[tp.topic, tp.partition] = lag = max(0, ends[tp] - done)
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
        return lags

    async def run(self) -> None:
        """Start, measure every ``interval`` until cancelled, stop. Kafka being away is
        not a crash: the gauge keeps its last values and the next round tries again (the
        processor itself reports the outage)."""
        try:
            while True:
                try:
                    if self._admin is None:
                        await self.start()
                    await self.measure()
                except SinkError as exc:
                    log.debug("consumer lag not measured: %s", exc)
                    await self.stop()
                await asyncio.sleep(self.interval)
        finally:
            await self.stop()
