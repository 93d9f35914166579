-- Other names of model repos: an old name (renamed or transferred; the Hub's model endpoint
-- redirects it) or another casing (the Hub resolves ids without regard to case). Lineage
-- and families are kept at the canonical id; queries that join scores and edges map every
-- id through this table, so rows written before an alias was learned join too.
CREATE TABLE IF NOT EXISTS model_aliases
(
    alias_id      String COMMENT 'a repo id as some metadata names it',
    canonical_id  String COMMENT 'the id the Hub lists the repo under now',
    resolved_by   LowCardinality(String) COMMENT 'redirect (the Hub''s model endpoint answered with another id) or case (ids differ only in case)',
    resolved_at   DateTime64(3, 'UTC') COMMENT 'when the producer resolved it',
    event_id      String COMMENT 'the event this row came from',
    ingested_at   DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'when the row was written'
)
ENGINE = ReplacingMergeTree(resolved_at)
ORDER BY alias_id;
