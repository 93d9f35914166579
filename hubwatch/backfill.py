"""Backfill: walk the whole model listing once, straight into ClickHouse.

The same parsing and processor functions as the live streams, without Kafka: pages are
fetched while the previous batch is written (one write in flight), batches are bounded, so
memory stays flat however large the Hub is. Bad items are dead-lettered, not fatal.

The backfill builds the family trees outside the processor, from what ``model_families``
held when it started. When its rows are written it records an epoch (``family_epochs``) and
a running processor reloads its forest from ClickHouse before its next batch, so the
processor's older forest never writes over the families the backfill built.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from hubwatch.clickhouse import connect
from hubwatch.errors import SchemaError
from hubwatch.events import DeadLetter, Event
from hubwatch.settings import Settings
from processors.pipeline import plan_batch
from processors.restore import load_aliases, load_forest, record_epoch
from processors.sinks import ClickHouseWriter
from producers._http import make_client
from producers._pagination import iter_pages
from producers.hub import EXPAND_FIELDS, model_created_from_api, now_utc

__all__ = ["BackfillSummary", "Progress", "backfill"]


def _merge(settings: Settings, table: str) -> None:
    client = connect(settings.clickhouse_url, database=settings.clickhouse_database)
    try:
        client.command(f"OPTIMIZE TABLE `{table}` FINAL")
    finally:
        client.close()


@dataclass(frozen=True, slots=True)
class BackfillSummary:
    models: int
    edges: int
    rejected: int
    seconds: float


class Progress:
    """A one-line progress bar on stderr (only when it is a terminal, unless forced)."""

    def __init__(self, total: int | None, *, enabled: bool | None = None) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, done: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.5 and not final):
            return
        self._last = now
        rate = done / max(1e-9, now - self.start)
        if self.total:
            share = min(1.0, done / self.total)
            bar = "#" * int(share * 30)
            eta = (self.total - done) / rate if rate else 0
            line = f"[{bar:<30}] {share:6.1%} {done:,}/{self.total:,} {rate:,.0f}/s eta {eta:.0f}s"
        else:
            line = f"{done:,} models, {rate:,.0f}/s"
        sys.stderr.write("\r" + line + ("\n" if final else ""))
        sys.stderr.flush()


async def _prefetched(pages: AsyncIterator[list[Any]], ahead: int = 2) -> AsyncIterator[list[Any]]:
    """The next pages are requested while this one is parsed: the server's work and the
    network overlap ours. At most ``ahead`` pages wait, so memory stays bounded."""
    queue: asyncio.Queue[list[Any] | None] = asyncio.Queue(maxsize=ahead)

    async def fetch() -> None:
        try:
            async for page in pages:
                await queue.put(page)
        finally:
            await queue.put(None)  # the end, or a failure that awaiting fetch raises

    fetching = asyncio.create_task(fetch())
    try:
        while (page := await queue.get()) is not None:
            yield page
        await fetching  # surfaces a fetch error instead of a silent early end
    finally:
        fetching.cancel()


async def backfill(
    settings: Settings,
    *,
    total: int | None = None,
    page_limit: int = 1000,
    batch_size: int = 50_000,
    progress: bool | None = None,
) -> BackfillSummary:
    writer = ClickHouseWriter(
        lambda: connect(settings.clickhouse_url), settings.clickhouse_database
    )
    bar = Progress(total, enabled=progress)
    params = [("sort", "createdAt"), ("limit", str(page_limit))] + [
        ("expand", f) for f in EXPAND_FIELDS
    ]
    models = edges = rejected = 0
    pending: list[Event | DeadLetter] = []
    writing: asyncio.Task[None] | None = None
    started = time.monotonic()

    forest = await asyncio.to_thread(
        load_forest, settings.clickhouse_url, settings.clickhouse_database
    )
    aliases = await asyncio.to_thread(
        load_aliases, settings.clickhouse_url, settings.clickhouse_database
    )

    async def flush(items: list[Event | DeadLetter]) -> None:
        nonlocal writing, edges
        batch = plan_batch(items, forest=forest, aliases=aliases)
        # The forest grows by a million objects that live to the end: take what exists out
        # of the cyclic collector's sweeps, which otherwise rescan it ever more slowly.
        gc.freeze()
        edges += len(batch.edges)
        if writing is not None:
            await writing  # one write in flight: bounded memory, fetch and write overlap
        writing = asyncio.create_task(asyncio.to_thread(writer.write, batch.plans()))

    async with make_client(base_url=settings.hub_url, token=settings.hf_token) as client:
        async for page in _prefetched(iter_pages(client, "/api/models", params)):
            observed = now_utc()
            for item in page:
                try:
                    pending.append(model_created_from_api(item, observed))
                    models += 1
                except SchemaError as error:
                    rejected += 1
                    key = item.get("id") if isinstance(item, dict) else None
                    pending.append(
                        DeadLetter.of(
                            stage="backfill.hub",
                            error=error,
                            source="/api/models",
                            key=key if isinstance(key, str) else None,
                            payload=str(item),
                        )
                    )
            if len(pending) >= batch_size:
                await flush(pending)
                pending = []
            bar.update(models)
    if pending:
        await flush(pending)
    if writing is not None:
        await writing
    writer.close()
    # Every batch rewrote the rows of the roots it touched: merge those versions now, so
    # reads with FINAL start from one part instead of one per batch.
    await asyncio.to_thread(_merge, settings, "model_families")
    # Hand the forest back: processors reload what this backfill wrote.
    await asyncio.to_thread(
        record_epoch,
        settings.clickhouse_url,
        settings.clickhouse_database,
        forest.version,
        "backfill",
    )
    bar.update(models, final=True)
    return BackfillSummary(models, edges, rejected, time.monotonic() - started)
