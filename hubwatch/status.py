"""``hubwatch run``'s status while it runs: per stream, events seen and the last poll; rows
written per table; dead letters; alerts; the web view's address.

On a terminal it is a compact live display (rich) with the logs scrolling above it; when
stdout is not a terminal (pipes, CI, tests) it is one plain line every ``status_interval``
seconds and a last one at the end, so a log file stays a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hubwatch import metrics

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from producers.runner import Poller

__all__ = ["RunStatus", "StreamStatus", "count_alerts", "report_status"]

log = logging.getLogger(__name__)

ALERTS_EVERY = 5.0
"Seconds between counts of the ``alerts`` table (one small query)."


@dataclass(slots=True)
class StreamStatus:
    events: int = 0
    "Events the stream published, all rounds together."
    rounds: int = 0
    failed: int = 0
    last_poll: float | None = None
    "Wall-clock time the last round ended."
    last_ok: bool = True


class _Counted:
    """A poller whose rounds are counted into a :class:`StreamStatus`."""

    def __init__(self, poller: Poller, status: StreamStatus, clock: Callable[[], float]) -> None:
        self.name = poller.name
        self._poller = poller
        self._status = status
        self._clock = clock

    async def poll_once(self) -> int:
        status = self._status
        try:
            count = await self._poller.poll_once()
        except Exception:
            status.rounds += 1
            status.failed += 1
            status.last_poll, status.last_ok = self._clock(), False
            raise
        status.rounds += 1
        status.events += count
        status.last_poll, status.last_ok = self._clock(), True
        return count


def _counter_totals(counter: Any, label: str) -> dict[str, int]:
    """A labelled prometheus counter's values in this process, by one label."""
    totals: dict[str, int] = {}
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = sample.labels[label]
                totals[key] = totals.get(key, 0) + int(sample.value)
    return totals


def count_alerts(client: Any, database: str) -> int | None:
    """Alerts fired so far; None while there is no ``alerts`` table (none configured)."""
    exists = client.command(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'alerts'",
        parameters={"db": database},
    )
    if not int(exists):
        return None
    # A row per alert and target: an alert sent to two targets is still one alert.
    return int(client.command(f"SELECT uniqExact(alert_id) FROM `{database}`.alerts"))


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


class RunStatus:
    """What the status shows, gathered from the pollers (wrapped by :meth:`track`), the
    process's own counters, and ClickHouse (alerts)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.streams: dict[str, StreamStatus] = {}
        self.view_url: str | None = None
        self.alerts: int | None = None
        self.clickhouse_url: str | None = None
        self._clock = clock
        # The counters are per process: a second run in one process (tests) starts from
        # what the first left, so the status shows this run's share.
        self._rows_base = _counter_totals(metrics.ROWS_WRITTEN, "table")
        self._dead_base = sum(_counter_totals(metrics.DEAD_LETTERS, "stage").values())

    def track(self, pollers: list[tuple[Poller, float]]) -> list[tuple[Poller, float]]:
        """The pollers, each counting its rounds here."""
        tracked: list[tuple[Poller, float]] = []
        for poller, interval in pollers:
            stream = self.streams.setdefault(poller.name, StreamStatus())
            tracked.append((_Counted(poller, stream, self._clock), interval))
        return tracked

    def rows_written(self) -> dict[str, int]:
        now = _counter_totals(metrics.ROWS_WRITTEN, "table")
        rows = {table: n - self._rows_base.get(table, 0) for table, n in now.items()}
        return {table: n for table, n in sorted(rows.items()) if n}

    def dead_letters(self) -> int:
        return sum(_counter_totals(metrics.DEAD_LETTERS, "stage").values()) - self._dead_base

    def _poll_text(self, stream: StreamStatus, now: float) -> str:
        if stream.last_poll is None:
            return "not yet"
        text = _ago(max(0.0, now - stream.last_poll))
        return text if stream.last_ok else f"{text}, failed"

    def _alerts_text(self) -> str:
        return "none configured" if self.alerts is None else str(self.alerts)

    def summary_line(self) -> str:
        """The plain one-line form (not a terminal)."""
        now = self._clock()
        streams = ", ".join(
            f"{name} {s.events} events (polled {self._poll_text(s, now)})"
            for name, s in self.streams.items()
        )
        rows = ", ".join(f"{table} {n}" for table, n in self.rows_written().items())
        return (
            f"hubwatch status: streams {streams or 'none'}; rows {rows or 'none yet'}; "
            f"dead letters {self.dead_letters()}; alerts {self._alerts_text()}; "
            f"view {self.view_url or 'off'}"
        )

    def renderable(self) -> RenderableType:
        """The live display (a terminal)."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        now = self._clock()
        streams = Table(box=None, pad_edge=False, header_style="bold", expand=False)
        streams.add_column("stream")
        streams.add_column("events", justify="right")
        streams.add_column("last poll")
        for name, s in self.streams.items():
            poll = self._poll_text(s, now)
            streams.add_row(name, f"{s.events:,}", Text(poll, "red" if not s.last_ok else ""))
        rows = self.rows_written()
        written = Text("rows written: ", style="bold")
        written.append(
            "  ".join(f"{table} {n:,}" for table, n in rows.items()) or "none yet", style=""
        )
        dead = self.dead_letters()
        footer = Text.assemble(
            ("dead letters ", "bold"),
            (f"{dead:,}", "yellow" if dead else ""),
            ("   alerts ", "bold"),
            self._alerts_text(),
            ("   view ", "bold"),
            (self.view_url or "off", "cyan underline" if self.view_url else ""),
        )
        return Group(streams, written, footer)


async def _refresh_alerts(status: RunStatus, url: str, database: str) -> None:
    from hubwatch.clickhouse import connect

    def count() -> int | None:
        client = connect(url)
        try:
            return count_alerts(client, database)
        finally:
            client.close()

    try:
        status.alerts = await asyncio.to_thread(count)
    except Exception as exc:  # the status is never a reason to stop the run
        log.debug("status: could not count alerts: %s", exc)


@contextlib.contextmanager
def _logs_above(console: Console) -> Iterator[None]:
    """Log lines go through ``console`` so they scroll above the live display instead of
    tearing it; the root logger's own handlers are put back afterwards."""
    from rich.logging import RichHandler

    root = logging.getLogger()
    saved = list(root.handlers)
    handler = RichHandler(console=console, show_path=False, rich_tracebacks=False, markup=False)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    for old in saved:
        for flt in old.filters:
            handler.addFilter(flt)
    root.handlers = [handler]
    try:
        yield
    finally:
        root.handlers = saved


async def report_status(
    status: RunStatus,
    stop: asyncio.Event,
    *,
    clickhouse_url: str,
    database: str,
    interval: float,
    tty: bool | None = None,
) -> None:
    """Show ``status`` until ``stop``: live on a terminal, else one line every ``interval``
    seconds and a last one when stopped."""
    tty = sys.stdout.isatty() if tty is None else tty
    if tty:
        await _live(status, stop, clickhouse_url, database)
        return
    loop = asyncio.get_running_loop()
    next_line = loop.time() + interval
    next_alerts = 0.0
    while not stop.is_set():
        if loop.time() >= next_alerts:
            await _refresh_alerts(status, clickhouse_url, database)
            next_alerts = loop.time() + ALERTS_EVERY
        if loop.time() >= next_line:
            print(status.summary_line(), flush=True)
            next_line = loop.time() + interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=min(interval, ALERTS_EVERY, 1.0))
    await _refresh_alerts(status, clickhouse_url, database)
    print(status.summary_line(), flush=True)


async def _live(status: RunStatus, stop: asyncio.Event, url: str, database: str) -> None:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    loop = asyncio.get_running_loop()
    next_alerts = 0.0
    with (
        _logs_above(console),
        Live(status.renderable(), console=console, auto_refresh=False, transient=False) as live,
    ):
        while not stop.is_set():
            if loop.time() >= next_alerts:
                await _refresh_alerts(status, url, database)
                next_alerts = loop.time() + ALERTS_EVERY
            live.update(status.renderable(), refresh=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        live.update(status.renderable(), refresh=True)
