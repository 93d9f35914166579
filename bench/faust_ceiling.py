"""faust-streaming on its own: take and ack a topic's events, nothing else. The ceiling any
faust agent has on this machine, measured beside hubwatch's own processor.

    .venv/bin/python bench/faust_ceiling.py BOOTSTRAP TOPIC COUNT OUT

Writes the events/s to the file OUT once COUNT events were taken (faust redirects
stdout to its log), then exits.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import faust


def main() -> None:
    bootstrap, topic_name, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    app = faust.App(
        f"ceiling-{uuid.uuid4().hex[:6]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes)
    seen = {"events": 0, "start": 0.0}

    @app.agent(topic)
    async def take_and_ack(stream: Any) -> None:
        async for events in stream.noack_take(5000, 1.0):
            if not seen["events"]:
                seen["start"] = time.perf_counter()
            seen["events"] += len(events)
            for event in events:
                await stream.ack(event)
            if seen["events"] >= count:
                rate = seen["events"] / (time.perf_counter() - seen["start"])
                await asyncio.to_thread(Path(out).write_text, f"{rate:.0f}\n")
                os._exit(0)  # a faust worker has no "stop after N events"

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn", "--without-web"]
    app.main()


if __name__ == "__main__":
    main()
