-- Input that could not become an event (embedded mode; on Kafka it goes to
-- hubwatch.deadletter, which the processors also copy here).
CREATE TABLE IF NOT EXISTS dead_letters
(
    at               DateTime64(3, 'UTC'),
    stage            LowCardinality(String) COMMENT 'producer.hub, processor.model.created, ...',
    reason           LowCardinality(String) COMMENT 'missing_field, bad_type, bad_json, ...',
    detail           String,
    source           String COMMENT 'URL or topic',
    key              Nullable(String),
    payload          String COMMENT 'verbatim, first 256 KiB',
    payload_bytes    UInt64
)
ENGINE = MergeTree
ORDER BY (stage, reason, at)
TTL toDateTime(at) + INTERVAL 30 DAY;
