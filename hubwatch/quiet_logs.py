"""One log line per Kafka outage, not thousands.

While a broker is down, aiokafka logs every failed connect, metadata refresh, fetch and
heartbeat (a 20 s outage wrote ~2,100 lines to a processor's log). :class:`OutageLogFilter`
lets the first such line through, reworded to say what is happening, holds back the
repeats, and says once when Kafka answers again, with how long it took and how many lines
it held back.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

__all__ = ["OutageLogFilter"]

_SOURCES = ("aiokafka", "faust", "mode")
_SYMPTOMS = re.compile(
    "|".join(
        (
            r"Unable connect to node",
            r"Unable to update metadata",
            r"Connect call failed",
            r"NodeNotReadyError",
            r"KafkaConnectionError",
            r"RequestTimedOutError",
            r"Connection (?:reset|refused|lost|closed)",
            r"[Cc]oordinator (?:dead|unknown|not available)",
            r"Marking the coordinator dead",
            r"Group Coordinator Request failed",
            r"CoordinatorNotAvailable",
            r"NotCoordinator",
            # Not "Heartbeat failed" as such: a member not recognized or a rebalance is a
            # membership problem, not an outage, and must be seen.
            r"Heartbeat (?:send request )?failed[^\n]*"
            r"(?:Connection|NodeNotReady|Timed ?Out|[Cc]oordinator|not started|loading)",
            r"Failed fetch messages",
        )
    )
)
_RECOVERY = re.compile(r"Discovered coordinator|Joined group|Successfully synced group")


def _collapsible(record: logging.LogRecord) -> bool:
    """A warning or error about the connection; never a critical one, nor an error with a
    traceback (a crash that mentions a connection error is still a crash)."""
    if record.levelno < logging.WARNING or record.levelno >= logging.CRITICAL:
        return False
    return not (record.levelno >= logging.ERROR and record.exc_info)


class OutageLogFilter(logging.Filter):
    """For a handler: connection errors from aiokafka/faust/mode collapse into one line per
    outage, and one line when it is over.

    An outage ends when the client finds its group coordinator again (errors in the next
    ``settle`` seconds, while the broker loads its groups, are part of it); or, if nothing
    says so, ``quiet`` seconds after its last error, so a later outage is reported afresh. A
    long one is reported again every ``remind`` seconds.
    """

    def __init__(
        self,
        quiet: float = 30.0,
        remind: float = 300.0,
        settle: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._clock = clock
        self._quiet = quiet
        self._remind = remind
        self._settle = settle
        self._lock = threading.Lock()
        self._since: float | None = None
        self._last = 0.0
        self._said = 0.0
        self._held = 0
        self._back = -settle

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(_SOURCES):
            return True
        message = record.getMessage()
        with self._lock:
            now = self._clock()
            if self._since is not None and now - self._last > self._quiet:
                self._since = None  # over, silently: the next error starts a new outage
            if _collapsible(record) and _SYMPTOMS.search(message):
                return self._symptom(record, message, now)
            if self._since is not None and _RECOVERY.search(message):
                self._reword(
                    record,
                    f"Kafka answers again after {now - self._since:.0f}s "
                    f"({self._held} connection errors held back): {message}",
                )
                self._since, self._back = None, now
        return True

    def _symptom(self, record: logging.LogRecord, message: str, now: float) -> bool:
        self._last = now
        if self._since is None and now - self._back < self._settle:
            return False  # a broker just back is still loading its groups: part of the same
        if self._since is None:
            self._since, self._said, self._held = now, now, 0
            self._reword(
                record,
                f"Kafka unreachable: {message.strip()} (repeats held back until it answers again)",
            )
            return True
        if now - self._said >= self._remind:
            self._said = now
            self._reword(
                record,
                f"Kafka still unreachable after {now - self._since:.0f}s "
                f"({self._held} connection errors held back): {message.strip()}",
            )
            return True
        self._held += 1
        return False

    @staticmethod
    def _reword(record: logging.LogRecord, message: str) -> None:
        record.msg, record.args = message, ()  # () not None: mode's formatter wraps None
