"""Prometheus metrics every hubwatch process exposes (``--metrics-port``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, start_http_server

__all__ = [
    "DEAD_LETTERS",
    "EVENTS_PUBLISHED",
    "HTTP_REQUESTS",
    "LINEAGE_CYCLES",
    "ROWS_WRITTEN",
    "TOMBSTONES",
    "serve",
]

EVENTS_PUBLISHED = Counter("hubwatch_events_published_total", "Events published", ["kind"])
EVENTS_PROCESSED = Counter("hubwatch_events_processed_total", "Events processed", ["kind"])
DEAD_LETTERS = Counter(
    "hubwatch_dead_letters_total", "Inputs sent to dead letters", ["stage", "reason"]
)
TOMBSTONES = Counter(
    "hubwatch_tombstones_total",
    "Null-value records (deleted keys of compacted topics) the processors skipped",
    ["topic"],
)
ROWS_WRITTEN = Counter("hubwatch_clickhouse_rows_written_total", "Rows inserted", ["table"])
HTTP_REQUESTS = Counter(
    "hubwatch_source_requests_total", "Requests to upstream APIs", ["api", "outcome"]
)
LINEAGE_CYCLES = Counter(
    "hubwatch_lineage_cycles_total", "Base models refused because they would close a cycle"
)
WATERMARK = Gauge(
    "hubwatch_poll_watermark_seconds",
    "createdAt watermark of the new-uploads poller (unix seconds)",
    ["source"],
)


def serve(port: int | None) -> None:
    if port is not None:
        start_http_server(port, addr="127.0.0.1")
