-- Derivation edges: derivative -> base model, typed by relation.
CREATE TABLE IF NOT EXISTS lineage_edges
(
    derivative_id    String COMMENT 'the model that derives (child)',
    base_model_id    String COMMENT 'the model it derives from (parent)',
    relation         LowCardinality(String) COMMENT 'finetune, quantized, adapter or merge',
    source           LowCardinality(String) COMMENT 'where the relation came from: baseModels, tags, card or inferred',
    inferred         Bool COMMENT 'true when no source named the relation and hubwatch inferred it',
    observed_at      DateTime64(3, 'UTC'),
    event_id         String,
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(observed_at)
ORDER BY (derivative_id, base_model_id);
