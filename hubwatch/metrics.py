"""Prometheus metrics every hubwatch process exposes (``--metrics-port``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

__all__ = [
    "ALERTS_DELIVERED",
    "ALERTS_DELIVERY_FAILURES",
    "ALERTS_FIRED",
    "ALERTS_QUEUED",
    "CLICKHOUSE_BATCH_ROWS",
    "CLICKHOUSE_WRITE_FAILURES",
    "CLICKHOUSE_WRITE_RETRIES",
    "CLICKHOUSE_WRITE_SECONDS",
    "CONSUMER_LAG",
    "DEAD_LETTERS",
    "EVENTS_PUBLISHED",
    "FIELDS_DROPPED",
    "FIRST_SEEN",
    "GITHUB_REPOS",
    "GITHUB_REPOS_DROPPED",
    "HTTP_REQUESTS",
    "LAST_POLL",
    "LATE_ARRIVALS",
    "LATE_ARRIVAL_DELAY",
    "LINEAGE_CYCLES",
    "POLL_INTERVAL",
    "POLL_ROUNDS",
    "PUBLISH_ERRORS",
    "RATE_LIMIT_LIMIT",
    "RATE_LIMIT_PAUSED",
    "RATE_LIMIT_REMAINING",
    "RECORDS_TRIMMED",
    "ROWS_WRITTEN",
    "SINK_OUTAGES",
    "SNAPSHOT_LAG",
    "SNAPSHOT_OVERDUE",
    "SNAPSHOT_OVERDUE_SECONDS",
    "SNAPSHOT_PROMISE",
    "SOURCE_GONE",
    "SUMMARY_LAST_SUCCESS",
    "SUMMARY_REFRESH_FAILING",
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
FIELDS_DROPPED = Counter(
    "hubwatch_fields_dropped_total",
    "Optional upstream fields of an odd shape left out of an event that was kept",
    ["kind", "field"],
)
RECORDS_TRIMMED = Counter(
    "hubwatch_records_trimmed_total",
    "Events cut down to fit a Kafka record, by the field that was cut",
    ["kind", "field"],
)
RECORDS_REFETCHED = Counter(
    "hubwatch_records_refetched_total",
    "Records faust dropped on the way to their agent, read again from Kafka",
    ["topic"],
)
SOURCE_GONE = Counter(
    "hubwatch_source_gone_total",
    "Repos answering as gone (404, or 401 for a deleted, private or gated repo)",
    ["stream", "status"],
)
SINK_OUTAGES = Counter(
    "hubwatch_sink_outages_total", "Times the producers lost Kafka and waited for it", ["sink"]
)
FIRST_SEEN = Counter(
    "hubwatch_models_first_seen_total",
    "Models reported as first seen (model.created), by the stream that found them",
    ["stream"],
)
LATE_ARRIVALS = Counter(
    "hubwatch_late_arrivals_total",
    "Models first seen more than the uploads overlap after their createdAt (listed late:"
    " created private, made public later), by the stream that found them",
    ["stream"],
)
_HOUR = 3600.0
LATE_ARRIVAL_DELAY = Histogram(
    "hubwatch_late_arrival_delay_seconds",
    "first_seen_at - createdAt of late arrivals",
    ["stream"],
    buckets=(300, 900, _HOUR, 6 * _HOUR, 24 * _HOUR, 72 * _HOUR, 168 * _HOUR, 720 * _HOUR),
)
GITHUB_REPOS = Gauge(
    "hubwatch_github_repos",
    "GitHub repos followed, polled in the last round, due but left for a later round"
    " (overdue), and linked from cards but beyond the cap (capped)",
    ["state"],
)
GITHUB_REPOS_DROPPED = Counter(
    "hubwatch_github_repos_dropped_total",
    "GitHub repos no longer followed: gone (404 for the repo itself)",
    ["reason"],
)
WATERMARK = Gauge(
    "hubwatch_poll_watermark_seconds",
    "createdAt watermark of the new-uploads poller (unix seconds)",
    ["source"],
)

SNAPSHOT_LAG = Histogram(
    "hubwatch_snapshot_lag_seconds",
    "How late a per-model engagement snapshot was taken after it fell due, by tier",
    ["tier"],
    buckets=(60, 300, 900, 1800, 3600, 2 * 3600, 6 * 3600, 12 * 3600, 86400, 3 * 86400),
)
SNAPSHOT_PROMISE = Gauge(
    "hubwatch_snapshot_promise_seconds",
    "The snapshot interval the engagement budget keeps for a tier",
    ["tier"],
)
SNAPSHOT_OVERDUE = Gauge(
    "hubwatch_snapshot_overdue_models",
    "Followed models not snapshotted within their tier's promise",
    ["tier"],
)
SNAPSHOT_OVERDUE_SECONDS = Gauge(
    "hubwatch_snapshot_overdue_seconds",
    "Seconds past its tier's promise of the longest-waiting model (0: none overdue)",
    ["tier"],
)

# Alerts on the data (hubwatch/alerts/).
ALERTS_FIRED = Counter("hubwatch_alerts_fired_total", "Matches of alert rules", ["rule"])
ALERTS_DELIVERED = Counter(
    "hubwatch_alerts_delivered_total", "Alerts a delivery target accepted", ["target"]
)
ALERTS_DELIVERY_FAILURES = Counter(
    "hubwatch_alerts_delivery_failures_total",
    "Failed attempts to deliver an alert (each retry counts)",
    ["target"],
)
ALERTS_QUEUED = Gauge(
    "hubwatch_alerts_queued", "Alerts waiting for (or retrying) their delivery", ["target"]
)

# hubwatch's own health: what deploy/prometheus/hubwatch-rules.yml alerts on.
POLL_ROUNDS = Counter(
    "hubwatch_poll_rounds_total",
    "Poll rounds by stream and outcome (ok|failed)",
    ["stream", "outcome"],
)
LAST_POLL = Gauge(
    "hubwatch_last_poll_timestamp_seconds",
    "When the stream last completed a round (unix seconds; its start until the first)",
    ["stream"],
)
POLL_INTERVAL = Gauge(
    "hubwatch_poll_interval_seconds", "Seconds between the stream's rounds", ["stream"]
)
PUBLISH_ERRORS = Counter(
    "hubwatch_publish_errors_total",
    "Records Kafka did not take (the send or its delivery failed), by event kind",
    ["kind"],
)
RATE_LIMIT_REMAINING = Gauge(
    "hubwatch_rate_limit_remaining",
    "Requests left in the API's current window, as its last response said",
    ["api"],
)
RATE_LIMIT_LIMIT = Gauge("hubwatch_rate_limit_limit", "Requests the API allows per window", ["api"])
RATE_LIMIT_PAUSED = Counter(
    "hubwatch_rate_limit_paused_seconds_total",
    "Seconds the API's requests were held back waiting for its rate limit to reset",
    ["api"],
)
CONSUMER_LAG = Gauge(
    "hubwatch_consumer_lag_records",
    "Records on the partition the processors have not committed yet (end - committed offset)",
    ["topic", "partition"],
)
CLICKHOUSE_WRITE_SECONDS = Histogram(
    "hubwatch_clickhouse_write_seconds",
    "Seconds one insert into ClickHouse took (each attempt, failed ones too)",
    ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CLICKHOUSE_BATCH_ROWS = Histogram(
    "hubwatch_clickhouse_batch_rows",
    "Rows per insert ClickHouse took",
    ["table"],
    buckets=(1, 10, 50, 100, 500, 1000, 5000, 10_000, 50_000, 100_000),
)
CLICKHOUSE_WRITE_RETRIES = Counter(
    "hubwatch_clickhouse_write_retries_total",
    "Inserts tried again after ClickHouse was unreachable or refused them for its state",
    ["table"],
)
CLICKHOUSE_WRITE_FAILURES = Counter(
    "hubwatch_clickhouse_write_failures_total",
    "Inserts that failed (each attempt; a refused batch's halves count too)",
    ["table"],
)

# Summaries (hubwatch/summaries.py): a refresh that fails keeps the old answer silently.
SUMMARY_LAST_SUCCESS = Gauge(
    "hubwatch_summary_last_success_timestamp_seconds",
    "When the summary's refreshable view last refreshed successfully (unix seconds; absent"
    " before its first)",
    ["view"],
)
SUMMARY_REFRESH_FAILING = Gauge(
    "hubwatch_summary_refresh_failing",
    "1 while the summary's last refresh failed (its table keeps the previous answer), else 0",
    ["view"],
)


def serve(port: int | None, host: str = "127.0.0.1") -> None:
    if port is not None:
        start_http_server(port, addr=host)
