-- Edges and disputes that are no longer true can be retracted: newer metadata of a
-- derivative that no longer names a base writes the pair again with is_deleted = 1, and
-- the newest metadata wins by version (its time in ns, not the write time), so FINAL sees
-- only current edges whatever order the events were processed in.
-- The engine cannot be altered in place: copy into a twin, swap with EXCHANGE TABLES
-- (atomic), drop the old (as 0015). Rows already stored take their observed_at as version.
DROP TABLE IF EXISTS lineage_edges_retractable;
CREATE TABLE lineage_edges_retractable
(
    derivative_id    String COMMENT 'the model that derives (child)',
    base_model_id    String COMMENT 'the model it derives from (parent)',
    relation         LowCardinality(String) COMMENT 'finetune, quantized, adapter or merge',
    source           LowCardinality(String) COMMENT 'where the relation came from: baseModels, tags, card or inferred',
    inferred         Bool COMMENT 'true when no source named the relation and hubwatch inferred it',
    observed_at      DateTime64(3, 'UTC') COMMENT 'when the producer saw the metadata the edge comes from',
    event_id         String COMMENT 'the event this row came from',
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'when the row was written',
    version          UInt64 COMMENT 'the time of the metadata the row comes from (lastModified, else observed_at) in ns: the newest wins',
    is_deleted       UInt8 COMMENT '1: newer metadata of the derivative no longer names this base (retracted)'
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (derivative_id, base_model_id);
INSERT INTO lineage_edges_retractable
SELECT *, toUnixTimestamp64Nano(observed_at), 0 FROM lineage_edges;
EXCHANGE TABLES lineage_edges AND lineage_edges_retractable;
-- Rows written live between the copy and the exchange went to the old table: copy those.
INSERT INTO lineage_edges
SELECT *, toUnixTimestamp64Nano(observed_at), 0 FROM lineage_edges_retractable
WHERE (derivative_id, base_model_id) NOT IN
    (SELECT derivative_id, base_model_id FROM lineage_edges);
DROP TABLE lineage_edges_retractable;

DROP TABLE IF EXISTS lineage_disputes_retractable;
CREATE TABLE lineage_disputes_retractable
(
    derivative_id      String COMMENT 'the model whose card makes the claim',
    base_model_id      String COMMENT 'the base the card names',
    claimed_by         LowCardinality(String) COMMENT 'card: what the model card says',
    claimed_relation   LowCardinality(String) COMMENT 'the relation the claim implies (inferred if the card names none)',
    resolved_relation  LowCardinality(String) COMMENT 'the Hub''s relation for this base; empty when the Hub has no such edge',
    observed_at        DateTime64(3, 'UTC') COMMENT 'when the producer saw the card',
    event_id           String COMMENT 'the event this row came from',
    version            UInt64 COMMENT 'the time of the metadata the row comes from (lastModified, else observed_at) in ns: the newest wins',
    is_deleted         UInt8 COMMENT '1: newer metadata no longer makes this claim, or the Hub now shares it (retracted)'
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (derivative_id, base_model_id, claimed_by);
INSERT INTO lineage_disputes_retractable
SELECT *, toUnixTimestamp64Nano(observed_at), 0 FROM lineage_disputes;
EXCHANGE TABLES lineage_disputes AND lineage_disputes_retractable;
INSERT INTO lineage_disputes
SELECT *, toUnixTimestamp64Nano(observed_at), 0 FROM lineage_disputes_retractable
WHERE (derivative_id, base_model_id, claimed_by) NOT IN
    (SELECT derivative_id, base_model_id, claimed_by FROM lineage_disputes);
DROP TABLE lineage_disputes_retractable;
