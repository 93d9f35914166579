"""The outbox: every alert reaches each of its targets once, whatever fails in between.

An alert is written to ``alerts`` (state ``queued``, one row per target) with the batch
that fired it, before its input is acknowledged, and then handed to the outbox: on Kafka the
``<prefix>alerts.outbox`` topic (one record per alert and target, acknowledged only once the
target took it or refused it for good), in the embedded mode straight to the
:class:`Deliverer`. At start the deliverer takes up every row still ``queued`` in
``alerts``, so an alert written but not yet handed over is not lost either.

At-least-once to the outbox, then dedupe on delivery: each delivery has an idempotency key
(:func:`~hubwatch.alerts.alert.delivery_key`, also sent as the ``Idempotency-Key``
header); the deliverer skips a key it has delivered, as ``alerts`` remembers across
restarts. The one window left is between a target's 2xx and the row that records it (a
kill -9 exactly then sends that one alert again on restart), which only the target's own
use of the idempotency key closes.

Failed deliveries are retried with exponential backoff (``HUBWATCH_ALERT_RETRY_SECONDS``,
doubling up to ``HUBWATCH_ALERT_RETRY_MAX_SECONDS``); each failure is a row (attempts,
last error, next attempt) and a count in ``hubwatch_alerts_delivery_failures_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO

import httpx

from hubwatch import metrics
from hubwatch.alerts.alert import Alert, AlertRow, delivery_key
from hubwatch.alerts.rules import Target
from hubwatch.alerts.targets import DeliveryError, send, terminal_line
from hubwatch.errors import HubwatchError
from hubwatch.events import TopicSpec

__all__ = ["OUTBOX", "Deliverer", "OutboxRecord", "outbox_topic"]

log = logging.getLogger(__name__)

OUTBOX = "alerts.outbox"
"Suffix of the outbox topic (``hubwatch.alerts.outbox`` by default)."
TERMINAL = "terminal"


def outbox_topic(prefix: str) -> TopicSpec:
    return TopicSpec(
        prefix + OUTBOX,
        "alert_id:target (the delivery's idempotency key)",
        3,
        "delete",
        7 * 24 * 3600 * 1000,
    )


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    alert: Alert
    target: str

    @property
    def key(self) -> str:
        return delivery_key(self.alert.alert_id, self.target)

    def to_json(self) -> bytes:
        return json.dumps({"target": self.target, "alert": self.alert.to_json()}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> OutboxRecord:
        raw = json.loads(data)
        return cls(Alert.from_json(raw["alert"]), raw["target"])


Record = Callable[[list[AlertRow]], Awaitable[None]]


class Deliverer:
    """Delivers alerts to targets, each delivery once, retrying with backoff."""

    def __init__(
        self,
        targets: dict[str, Target],
        record: Record,
        *,
        done: Iterable[str] = (),
        retry_seconds: float = 5.0,
        retry_max_seconds: float = 300.0,
        terminal: TextIO | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.targets = targets
        self._record = record
        self.done: set[str] = set(done)
        self._retry = retry_seconds
        self._retry_max = retry_max_seconds
        self._terminal = terminal
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._queued: Counter[str] = Counter()
        self._waiters: set[asyncio.Task[None]] = set()

    @staticmethod
    async def _after(
        running: asyncio.Task[None] | None, on_done: Callable[[], Awaitable[object]]
    ) -> None:
        """A copy of a delivery already done or under way: done when the original is."""
        if running is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(running)
        await on_done()

    def submit(
        self,
        alert: Alert,
        target: str,
        *,
        attempts: int = 0,
        on_done: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """Deliver ``alert`` to ``target`` in the background; ``on_done`` once it is
        delivered, refused for good, or already was."""
        key = delivery_key(alert.alert_id, target)
        running = self._tasks.get(key)
        if key in self.done or running is not None:
            if on_done is not None:
                waiter = asyncio.create_task(self._after(running, on_done))
                self._waiters.add(waiter)
                waiter.add_done_callback(self._waiters.discard)
            return
        self._queued[target] += 1
        metrics.ALERTS_QUEUED.labels(target).set(self._queued[target])
        task = asyncio.create_task(self._deliver(alert, target, attempts, on_done), name=key)
        self._tasks[key] = task

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def _deliver(
        self,
        alert: Alert,
        target: str,
        attempts: int,
        on_done: Callable[[], Awaitable[object]] | None,
    ) -> None:
        key = delivery_key(alert.alert_id, target)
        try:
            while True:
                try:
                    await self._send_once(alert, target)
                except DeliveryError as exc:
                    attempts += 1
                    metrics.ALERTS_DELIVERY_FAILURES.labels(target).inc()
                    now = datetime.now(UTC)
                    if not exc.retriable:
                        log.warning("alert %s to %s refused for good: %s", alert.rule, target, exc)
                        await self._record_until_written(
                            [alert.row(target, "failed", at=now, attempts=attempts, error=str(exc))]
                        )
                        break
                    delay = min(self._retry_max, self._retry * 2 ** min(attempts - 1, 30))
                    log.info(
                        "alert %s to %s failed (%s); again in %.1fs", alert.rule, target, exc, delay
                    )
                    try:
                        await self._record(
                            [
                                alert.row(
                                    target,
                                    "queued",
                                    at=now,
                                    attempts=attempts,
                                    error=str(exc),
                                    next_attempt_at=now + timedelta(seconds=delay),
                                )
                            ]
                        )
                    except HubwatchError as write_error:
                        # Only bookkeeping: the alert's queued row is already there, and the
                        # next attempt must not wait for ClickHouse.
                        log.warning(
                            "alert %s: attempt not recorded: %s", alert.alert_id, write_error
                        )
                    await asyncio.sleep(delay)
                    continue
                now = datetime.now(UTC)
                # Marked done before the row is written: a slow write must not let a second
                # copy of the same delivery through.
                self.done.add(key)
                metrics.ALERTS_DELIVERED.labels(target).inc()
                await self._record_until_written(
                    [alert.row(target, "delivered", at=now, attempts=attempts + 1)]
                )
                break
            self.done.add(key)
        finally:
            self._tasks.pop(key, None)
            self._queued[target] -= 1
            metrics.ALERTS_QUEUED.labels(target).set(self._queued[target])
        if on_done is not None:
            await on_done()

    async def _record_until_written(self, rows: list[AlertRow]) -> None:
        """A delivery's outcome, written however long ClickHouse is away: without it a
        restart would take the delivery up again (and the outbox record stays unacknowledged
        until it is written)."""
        delay = self._retry
        while True:
            try:
                await self._record(rows)
                return
            except HubwatchError as exc:
                if not exc.retriable:
                    log.error("alert %s: outcome not recorded: %s", rows[0].alert_id, exc)
                    return
                log.warning(
                    "alert %s: outcome not recorded (%s); again in %.1fs",
                    rows[0].alert_id,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(self._retry_max, delay * 2)

    async def _send_once(self, alert: Alert, target: str) -> None:
        if target == TERMINAL:
            terminal_line(alert, self._terminal)
            return
        spec = self.targets.get(target)
        if spec is None:
            raise DeliveryError(f"no target named {target!r} in the rules file", retriable=False)
        await send(self._client, spec, alert)

    async def drain(self, seconds: float) -> None:
        """Wait up to ``seconds`` for what is in flight."""
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=seconds)

    async def close(self) -> None:
        for task in [*self._tasks.values(), *self._waiters]:
            task.cancel()
        for task in [*self._tasks.values(), *self._waiters]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._client.aclose()
