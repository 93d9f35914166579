-- One row per Hub model repository, as first seen. Replaced (not duplicated) when the
-- same event is delivered again: the sorting key is the natural key.
CREATE TABLE IF NOT EXISTS models
(
    repo_id          String COMMENT 'Hub repo id, author/name',
    author           String,
    created_at       Nullable(DateTime64(3, 'UTC')) COMMENT 'NULL: the Hub has only its 2022-03-02 placeholder',
    last_modified    Nullable(DateTime64(3, 'UTC')),
    sha              String,
    private          Nullable(Bool),
    gated            LowCardinality(String) COMMENT 'false, auto or manual',
    pipeline_tag     LowCardinality(String),
    library_name     LowCardinality(String),
    architectures    Array(LowCardinality(String)) COMMENT 'config.architectures',
    model_type       LowCardinality(String) COMMENT 'config.model_type',
    parameters       Nullable(UInt64) COMMENT 'safetensors.total',
    downloads        Nullable(UInt64) COMMENT 'last 30 days, when first seen',
    likes            Nullable(UInt64) COMMENT 'when first seen',
    tags             Array(String),
    siblings_count   UInt32,
    observed_at      DateTime64(3, 'UTC') COMMENT 'when the producer saw it',
    event_id         String COMMENT 'the model.created event this row came from',
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(observed_at)
ORDER BY repo_id;
