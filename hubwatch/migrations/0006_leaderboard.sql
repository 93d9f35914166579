-- Open LLM Leaderboard scores, benchmark by benchmark ("average" is a benchmark too), from
-- `hubwatch import leaderboard FILE` (v1 and v2 dumps).
CREATE TABLE IF NOT EXISTS leaderboard_scores
(
    board         LowCardinality(String) COMMENT 'open_llm_v1 or open_llm_v2',
    model_id      String COMMENT 'Hub repo id',
    precision     LowCardinality(String) COMMENT 'float16, bfloat16, 4bit, 8bit, ...',
    benchmark     LowCardinality(String) COMMENT 'arc, hellaswag, mmlu, ... or average',
    score         Float64 COMMENT 'v1: raw percent; v2: normalised percent',
    model_type    LowCardinality(String) COMMENT 'the board''s type: pretrained, fine-tuned, chat, merge, ...',
    architecture  LowCardinality(String),
    params_b      Nullable(Float64) COMMENT 'billions of parameters, as the board reports',
    merged        Nullable(Bool),
    imported_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(imported_at)
ORDER BY (board, model_id, precision, benchmark);

-- Derivation the v2 board declares (metadata_base_model), kept apart from the Hub's own.
CREATE TABLE IF NOT EXISTS leaderboard_edges
(
    derivative_id  String,
    base_model_id  String,
    relation       LowCardinality(String) COMMENT 'merge when the board says so, else finetune',
    generation     UInt16 COMMENT 'metadata_generation: 0 is its own base',
    board          LowCardinality(String),
    imported_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(imported_at)
ORDER BY (derivative_id, base_model_id);
