"""Create hubwatch's Kafka topics as hubwatch.events.topics() lays them out."""

from __future__ import annotations

import contextlib

from hubwatch.events import TopicSpec
from producers.publish import start_kafka_client

__all__ = ["ensure_topics"]


async def ensure_topics(
    bootstrap_servers: str, specs: list[TopicSpec], replication_factor: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="hubwatch-admin")
    await start_kafka_client(admin.start, admin.close, bootstrap_servers)
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
