-- Each model's place in its family as one narrow row per model, sorted by the model:
-- root, primary base, relation. model_families is sorted by root and carries 20 columns;
-- breakouts and community_activity look models up by id and read only these.
-- rank orders a model's rows as model_families' FINAL does: the newest version wins, and
-- of the same version a placement wins over the deletion of the family it left.
CREATE TABLE IF NOT EXISTS model_lineage
(
    model_id   String COMMENT 'Hub repo id',
    root_id    String COMMENT 'its family''s root (itself for a root)',
    parent_id  String COMMENT 'its primary base; empty for a root',
    relation   LowCardinality(String) COMMENT 'relation to parent_id; empty for a root',
    is_deleted UInt8 COMMENT '1: the newest row is a deletion (the model is in no family)',
    rank       UInt64 CODEC(Delta, ZSTD(1)) COMMENT 'model_families version x 2, + 1 for a placement: the highest wins'
)
ENGINE = ReplacingMergeTree(rank)
ORDER BY model_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS model_lineage_mv TO model_lineage AS
SELECT model_id, root_id, parent_id, relation, is_deleted,
       version * 2 + (1 - is_deleted) AS rank
FROM model_families;

INSERT INTO model_lineage
SELECT model_id, root_id, parent_id, relation, is_deleted,
       version * 2 + (1 - is_deleted) AS rank
FROM model_families;
