"""Kafka outages reported once: one line when it goes, one when it is back, however many
pollers and webhook requests notice it and however often they retry in between."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from hubwatch import metrics
from hubwatch.errors import SinkError

__all__ = ["Outage"]

log = logging.getLogger("producers.runner")


class Outage:
    """One line when Kafka goes and one when it is back, however many pollers notice and
    however often they retry in between."""

    def __init__(self, sink: str = "Kafka", clock: Callable[[], float] = time.monotonic) -> None:
        self.sink = sink
        self._clock = clock
        self._since: float | None = None
        self._waiting: set[str] = set()

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, poller: str, error: SinkError) -> None:
        """``poller``'s round failed: it waits, and says so in ``recovered`` when it is back."""
        self._waiting.add(poller)
        self.noticed(error)

    def noticed(self, error: SinkError) -> None:
        """Something that does not retry by itself (a webhook, answered 503) met the outage;
        the pollers' recovery ends it."""
        if self._since is None:
            self._since = self._clock()
            metrics.SINK_OUTAGES.labels(self.sink.lower()).inc()
            log.warning(
                "%s unavailable (%s); pollers keep their state and retry until it is back",
                self.sink,
                error,
            )

    def recovered(self, poller: str) -> None:
        self._waiting.discard(poller)
        if self._since is not None and not self._waiting:
            log.warning(
                "%s is back after %.0fs; publishing resumed", self.sink, self._clock() - self._since
            )
            self._since = None
