"""Producer benchmark: the Hub producers against a Hub-sized replay, publishing to real Kafka.

One run measures, in steady state (after a warm-up):
- API requests per newly detected model (uploads stream alone, and every Hub stream);
- detection latency, from a model's release in the replay to its event read back from Kafka
  (p50, p95, max; goal: p95 <= poll interval + 1 s);
- the share of the Hub rate budget used (requests / quota for the time measured);
- 429s received (goal: 0 at the default 80 % share).

    .venv/bin/python bench/bench_producers.py --kafka 127.0.0.1:9092

Needs Kafka (``make stack-up`` or the test stack); prints its figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from hubwatch.replay import GeneratedSource, HubWorld, ReplayServer
from hubwatch.settings import Settings
from producers.publish import KafkaPublisher
from producers.runner import Producers


def _index(repo_id: str) -> int:
    return int(repo_id.split("/model-")[1][:7])


async def bench(args: argparse.Namespace) -> None:
    spacing = 1.0 / args.rate
    released0 = args.catalog - int(args.rate * args.seconds * 1.5) - 10
    # The catalog's newest listed model is created "now", and new ones arrive at `rate`,
    # each created as it is released: the live Hub's shape, at Hub size.
    built = time.perf_counter()
    source = GeneratedSource(
        args.catalog, spacing=spacing, start=_utc(time.time() - released0 * spacing)
    )
    source.ranked()
    print(
        f"catalog: {args.catalog:,} models generated and ranked in "
        f"{time.perf_counter() - built:.1f}s; {released0:,} listed at start, "
        f"+{args.rate:g}/s"
    )
    world = HubWorld(source, start=released0, rate=args.rate)
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    received: dict[int, float] = {}

    async with ReplayServer(world, api_quota=args.quota) as server:
        with tempfile.TemporaryDirectory() as state:
            settings = Settings(
                hub_url=server.url,
                kafka_bootstrap=args.kafka,
                topic_prefix=prefix,
                state_dir=Path(state),
                poll_interval=args.poll_interval,
                initial_lookback_seconds=60.0,
                hub_requests_per_window=args.quota,
                edits_interval=args.poll_interval,
                engagement_interval=30.0,
                community_interval=30.0,
                github_repos="",
                hub_streams=args.streams,
            )
            consumer = AIOKafkaConsumer(
                f"{prefix}model.created",
                bootstrap_servers=args.kafka,
                auto_offset_reset="earliest",
                group_id=None,
            )
            async with (
                KafkaPublisher(args.kafka, topic_prefix=prefix) as publisher,
                Producers(settings, publisher, github=False) as producers,
            ):
                from hubwatch.events import topics
                from producers.topics import ensure_topics

                await ensure_topics(args.kafka, topics(prefix))
                await consumer.start()

                async def consume() -> None:
                    async for record in consumer:
                        received.setdefault(_index(record.key.decode()), time.time())

                reader = asyncio.create_task(consume())
                stop = asyncio.Event()
                running = asyncio.create_task(producers.run(stop))
                await asyncio.sleep(args.warmup)
                start_wall = time.time()
                requests0 = server.requests
                uploads0 = server.by_endpoint["list:createdAt"]
                throttled0 = server.throttled
                await asyncio.sleep(args.seconds)
                end_wall = time.time()
                requests = server.requests - requests0
                uploads = server.by_endpoint["list:createdAt"] - uploads0
                endpoints = dict(server.by_endpoint)
                # Models released at the very end are detected by the next polls.
                await asyncio.sleep(args.poll_interval + 2)
                stop.set()
                await running
                reader.cancel()
                await consumer.stop()
                budget_throttled = producers.hub_budget.throttled

    steady = {i: t for i, t in world.released_at.items() if start_wall <= t <= end_wall}
    detected = [i for i in steady if i in received]
    latencies = sorted(received[i] - steady[i] for i in detected)
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    window = end_wall - start_wall
    allowed = args.quota * window / 300
    print(
        f"steady state: {window:.0f}s, {len(steady)} models released, {len(detected)} "
        f"detected ({len(steady) - len(detected)} missed)"
    )
    print(
        f"requests per new model: uploads stream {uploads / max(1, len(detected)):.3f}, "
        f"all Hub streams {requests / max(1, len(detected)):.3f} (goal <= 1.05)"
    )
    print(
        f"detection latency: p50 {statistics.median(latencies):.2f}s, p95 {p95:.2f}s, "
        f"max {latencies[-1]:.2f}s (goal p95 <= poll interval + 1 = "
        f"{args.poll_interval + 1:.1f}s)"
    )
    print(
        f"rate budget used: {requests} of {allowed:.0f} allowed ({requests / allowed:.1%}; "
        f"hubwatch keeps under {settings.rate_share:.0%})"
    )
    print(f"429s received: {server.throttled - throttled0} (budget saw {budget_throttled})")
    print(f"requests by endpoint over the run: {endpoints}")


def _utc(ts: float):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    parser.add_argument("--catalog", type=int, default=2_200_000)
    parser.add_argument("--rate", type=float, default=2.0, help="new models per second")
    parser.add_argument("--poll-interval", type=float, default=5.0)
    parser.add_argument("--quota", type=int, default=1000, help="Hub requests per 5 min")
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--streams", default="uploads,edits,engagement,community")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
