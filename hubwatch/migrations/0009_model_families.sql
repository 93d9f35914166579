-- Family trees, maintained by the processor as models arrive (processors/families.py): one
-- row per member and family root. Each model hangs under its primary base (the first its
-- metadata names), so every family is a tree; lineage_edges keeps every base. Rows of a
-- model that moved to another family are deleted (is_deleted); read with FINAL.
CREATE TABLE IF NOT EXISTS model_families
(
    root_id      String COMMENT 'the family''s root: the ancestor that has no base model',
    model_id     String COMMENT 'Hub repo id of the member',
    parent_id    String COMMENT 'the primary base model; empty for the root',
    relation     LowCardinality(String) COMMENT 'relation to parent_id: finetune, quantized, adapter or merge; empty for the root',
    depth        UInt16 COMMENT 'steps from the root (0 for the root)',
    created_at   Nullable(DateTime64(3, 'UTC')) COMMENT 'when the model was created on the Hub; NULL until hubwatch has seen the model itself',
    descendants  UInt32 COMMENT 'every model below this one in its tree',
    finetunes    UInt32 COMMENT 'descendants that are finetunes of their parent',
    quantized    UInt32 COMMENT 'descendants that are quantizations of their parent',
    adapters     UInt32 COMMENT 'descendants that are adapters of their parent',
    merges       UInt32 COMMENT 'descendants that are merges (placed under their first base)',
    children     UInt32 COMMENT 'direct derivatives',
    cycle        Bool COMMENT 'a base its metadata names was refused: it would close a cycle',
    architecture LowCardinality(String) COMMENT 'config.architectures[1], else config.model_type; empty until seen',
    parameters   Nullable(UInt64) COMMENT 'the model''s parameter count (as models.parameters)',
    size_bytes   Nullable(UInt64) COMMENT 'the model''s weight in bytes (as models.size_bytes)',
    base_parameters Nullable(UInt64) COMMENT 'parent_id''s parameter count',
    base_size_bytes Nullable(UInt64) COMMENT 'parent_id''s weight in bytes',
    as_of        Nullable(DateTime64(3, 'UTC')) COMMENT 'lastModified of the metadata this placement comes from',
    version      UInt64 COMMENT 'write time in ns: the newest row of a (root, model) wins',
    is_deleted   UInt8 COMMENT '1: the model left this family',
    INDEX model_idx model_id TYPE bloom_filter GRANULARITY 1
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (root_id, model_id);
