"""Create hubwatch's Kafka topics as hubwatch.events.topics() lays them out."""

from __future__ import annotations

import contextlib

from hubwatch.errors import SinkError
from hubwatch.events import TopicSpec

__all__ = ["ensure_topics"]


async def ensure_topics(
    bootstrap_servers: str, specs: list[TopicSpec], replication_factor: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError, TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="hubwatch-admin")
    try:
        await admin.start()
    except KafkaError as exc:
        await admin.close()
        raise SinkError(
            f"cannot reach Kafka at {bootstrap_servers}: {exc}", retriable=True
        ) from exc
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            # Another process may win the race; the layout is the same either way.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(s.name, s.partitions, replication_factor, topic_configs=s.config())
                        for s in missing
                    ]
                )
        return [s.name for s in missing]
    finally:
        await admin.close()
