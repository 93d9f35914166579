"""A faust worker whose stream drops the head of each partition once, the way faust does.

faust's pure-Python stream iterator acknowledges, unseen, what it skips while stopping or
rebalancing; this agent does the same to the first record of every partition the first
time it comes (``stream.ack`` without :func:`processors.commits.finish`), and finishes
every other record it is handed, writing ``partition offset`` lines to the file it is given.

Run: ``python -m tests.dropping_agent BOOTSTRAP TOPIC GROUP OUT_FILE STATE_DIR [keep]``
(``keep``: drop nothing, finish every record).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import faust
from faust.worker import Worker

from processors.commits import finish, use_finished_only


def main(
    bootstrap: str, topic_name: str, group: str, out: Path, state_dir: Path, *, keep: bool
) -> None:
    app = faust.App(
        group,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(state_dir),
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=1,
    )
    use_finished_only(app)
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes)
    dropped: set[int] = set()

    @app.agent(topic)
    async def agent(stream: Any) -> None:
        async for events in stream.noack_take(50, 0.2):
            for event in events:
                message = event.message
                if not keep and message.partition not in dropped:
                    dropped.add(message.partition)
                    await stream.ack(event)
                    continue
                with out.open("a") as lines:
                    lines.write(f"{message.partition} {message.offset}\n")
                await finish(stream, event)

    Worker(app, loglevel="INFO", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    keep = sys.argv[6:] == ["keep"]
    main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5]), keep=keep)
