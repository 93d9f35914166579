"""Summaries' health as metrics: per refreshable view, when it last refreshed successfully
(``hubwatch_summary_last_success_timestamp_seconds``) and whether its last refresh failed
(``hubwatch_summary_refresh_failing``).

A refresh that fails keeps the summary's previous answer, so readers see nothing wrong;
these gauges (and the operator rule ``HubwatchSummaryStale``) are where it shows. Read from
``system.view_refreshes`` as :func:`hubwatch.summaries.summary_states` reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Self

from hubwatch import metrics
from hubwatch.clickhouse import connect
from hubwatch.summaries import SummaryState, summary_states

__all__ = ["SummaryWatch"]

log = logging.getLogger(__name__)


class SummaryWatch:
    """Reads the refresh state of ``database``'s summaries and sets the gauges, every
    ``interval`` seconds while :meth:`run` runs."""

    def __init__(self, url: str, database: str, *, interval: float = 15.0) -> None:
        self.url = url
        self.database = database
        self.interval = interval
        self._client: Any = None
        self._views: set[str] = set()

    async def start(self) -> None:
        self._client = await asyncio.to_thread(connect, self.url, self.database)

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def measure(self) -> list[SummaryState]:
        """The summaries' states, and the gauges set to them."""
        if self._client is None:
            raise RuntimeError("SummaryWatch is not started")
        states = await asyncio.to_thread(summary_states, self._client)
        for state in states:
            if state.last_success is not None:  # before its first: absent, not 1970
                metrics.SUMMARY_LAST_SUCCESS.labels(state.view).set(state.last_success.timestamp())
            metrics.SUMMARY_REFRESH_FAILING.labels(state.view).set(1 if state.error else 0)
        # A view a migration replaced (or dropped) is no longer reported as stale.
        seen = {state.view for state in states}
        for gone in self._views - seen:
            for gauge in (metrics.SUMMARY_LAST_SUCCESS, metrics.SUMMARY_REFRESH_FAILING):
                with contextlib.suppress(KeyError):  # never had a last success
                    gauge.remove(gone)
        self._views = seen
        return states

    async def run(self) -> None:
        """Start, measure every ``interval`` until cancelled, stop. ClickHouse being away
        is not a crash: the gauges keep their last values (a stale last success still
        alerts), the failure is logged once, and the next round tries again."""
        failing = False
        try:
            while True:
                try:
                    if self._client is None:
                        await self.start()
                    await self.measure()
                    if failing:
                        log.info("summaries' refresh state read again")
                    failing = False
                except Exception as exc:  # a watcher never takes the process down
                    if not failing:
                        log.warning("summaries' refresh state not read: %s", exc)
                    failing = True
                    await self.stop()
                await asyncio.sleep(self.interval)
        finally:
            await self.stop()
