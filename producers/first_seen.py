"""First sight: every repo hubwatch has not seen, found by any stream, is reported once as
``model.created`` with its real createdAt and ``first_seen_at``.

The uploads stream finds nearly all of them, but a repo created privately and made public
days later is listed with an old createdAt, below the uploads stream's watermark; the edits
stream, the engagement stream's bulk calls, webhooks and the reconciliation sweep find those.
The state store is the arbiter: a repo is seen once a stream has tracked it (after its
events are durable), and in between, the first stream to claim it is the only one to report
it. A crash before tracking re-emits the same event id, which the processors deduplicate.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from hubwatch import metrics
from hubwatch.events import ModelCreated, format_datetime, parse_datetime
from producers.hub import now_utc
from producers.tracking import Tracker

__all__ = ["FirstSight", "late_by"]

log = logging.getLogger(__name__)

_HORIZON = "hub.first_sight.horizon"
"createdAt from which the uploads stream reports every model (or 'all'): set once."
_OLD_HORIZON = "hub.edits.uploads_horizon"
"The same mark as stores made before first sight kept it (the edits stream's)."
UPLOADS_STREAM = "hub.uploads"
_STARTED = "hub.first_sight.started"
"When this state store first ran: the earliest a repo can have been missed."


def late_by(event: ModelCreated, overlap: timedelta, horizon: datetime | None) -> float | None:
    """Seconds between a repo's createdAt and its first sighting when that is beyond the
    uploads stream's overlap (a late arrival), else None. A repo created before hubwatch's
    horizon (its start less the initial lookback) is older than the watch, not late."""
    if event.created_at is None or event.first_seen_at is None:
        return None
    if horizon is not None and event.created_at < horizon:
        return None
    delay = (event.first_seen_at - event.created_at).total_seconds()
    return delay if delay > overlap.total_seconds() else None


class FirstSight:
    """One stream's side of the arbiter: :meth:`begin` each round, :meth:`claim` what it
    finds, publish and flush, then :meth:`record` inside the round's state transaction."""

    def __init__(
        self,
        tracker: Tracker,
        stream: str,
        *,
        overlap: timedelta,
        initial_lookback: timedelta | None,
    ) -> None:
        self.tracker = tracker
        self.stream = stream
        self._store = tracker.store
        self._overlap = overlap
        mark = self._store.mark(_HORIZON) or self._store.mark(_OLD_HORIZON)
        if mark is None:
            mark = (
                "all" if initial_lookback is None else format_datetime(now_utc() - initial_lookback)
            )
            with self._store.transaction():
                self._store.set_mark(_HORIZON, mark)
        self.horizon: datetime | None = None if mark == "all" else parse_datetime(mark)
        started = self._store.mark(_STARTED)
        if started is None:
            started = format_datetime(now_utc())
            with self._store.transaction():
                self._store.set_mark(_STARTED, started)
        # The uploads stream's walk of the whole history ("all") meets every repo created
        # before hubwatch first started: old, not late. Another stream finding one is late
        # (the uploads stream walked past while it was hidden).
        self._late_floor = self.horizon
        if self._late_floor is None and stream == UPLOADS_STREAM:
            self._late_floor = parse_datetime(started)

    def begin(self) -> None:
        """A new round: claims of the last one are tracked by now, or it failed."""
        self._store.release_claims(self.stream)

    def seen(self, repo_id: str, created_at: datetime | None = None) -> bool:
        """Tracked, as the repo created at ``created_at`` if given (a repo deleted and
        re-created under its name is a new model)."""
        return self._store.seen(repo_id, _stamp(created_at))

    def claim(self, event: ModelCreated) -> ModelCreated | None:
        """The event to report if this stream is the first to see the repo, else None.
        One another stream has in flight is noted for the sweep too, which looks it up,
        whatever its window, should that stream's round fail."""
        created = _stamp(event.created_at)
        if not self._store.claim_first_sight(event.repo_id, self.stream, created):
            if not self._store.seen(event.repo_id, created):
                with self._store.transaction():
                    self._store.hear_of(event.repo_id, self.stream, event.observed_at.timestamp())
            return None
        return dataclasses.replace(event, first_seen_at=event.first_seen_at or event.observed_at)

    def record(
        self, events: Sequence[ModelCreated], *, found_by: Mapping[str, str] | None = None
    ) -> None:
        """Once the events are durable: track them (from now on they are seen) and count
        them, and the late ones, by the stream that found them (``found_by``: repo id ->
        stream, where another stream named the repo first, as a webhook does). Nests in the
        round's state transaction."""
        with self._store.transaction():
            self.tracker.track_all(events)
            for event in events:
                self._store.forget_heard(event.repo_id)
        late: dict[str, list[tuple[float, str]]] = {}
        for event in events:
            stream = (found_by or {}).get(event.repo_id, self.stream)
            metrics.FIRST_SEEN.labels(stream).inc()
            delay = late_by(event, self._overlap, self._late_floor)
            if delay is None:
                continue
            metrics.LATE_ARRIVALS.labels(stream).inc()
            metrics.LATE_ARRIVAL_DELAY.labels(stream).observe(delay)
            late.setdefault(stream, []).append((delay, event.repo_id))
        # One line per stream and round, not one per model: a round can find hundreds.
        for stream, found in late.items():
            found.sort(reverse=True)
            log.info(
                "%s: %d %s listed late (first seen up to %.0fs after createdAt): %s%s",
                stream,
                len(found),
                "model" if len(found) == 1 else "models",
                found[0][0],
                ", ".join(repo for _, repo in found[:3]),
                ", …" if len(found) > 3 else "",
            )


def _stamp(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()
