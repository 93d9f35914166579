-- Where a model's sources disagree about its bases or their relation (the card names a
-- base the Hub did not resolve, or another relation), both claims are kept: the Hub's in
-- lineage_edges, the other here, flagged for review.
CREATE TABLE IF NOT EXISTS lineage_disputes
(
    derivative_id      String,
    base_model_id      String,
    claimed_by         LowCardinality(String) COMMENT 'card: what the model card says',
    claimed_relation   LowCardinality(String) COMMENT 'the relation the claim implies (inferred if the card names none)',
    resolved_relation  LowCardinality(String) COMMENT 'the Hub''s relation for this base; empty when the Hub has no such edge',
    observed_at        DateTime64(3, 'UTC'),
    event_id           String
)
ENGINE = ReplacingMergeTree(observed_at)
ORDER BY (derivative_id, base_model_id, claimed_by);
