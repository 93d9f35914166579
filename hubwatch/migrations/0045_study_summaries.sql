-- The seed study's whole-ecosystem answers as summaries (hubwatch/summaries.py): each
-- canned query's full answer, recomputed every 60 s by a refreshable view in one pass over
-- its pair view (size_pairs, scored_pairs: migration 0041) or model_families, instead of
-- once per ask. The canned queries read these small tables (hundreds to thousands of rows),
-- so what they say is as of the last refresh; `hubwatch query --fresh` recomputes now. A
-- grouped answer is kept for every grouping at once (`by`), each group's numbers computed
-- over exactly the rows the query computed them over before, so the answers are the same.
-- Every summary's schedule is spread over a few seconds (RANDOMIZE FOR), so the views of a
-- database do not all start on the same second and compete with the panels' reads.

-- size_change: every grouping of size_pairs, the 1,000 largest groups of each; every 5
-- minutes, as its pass over 2.2 M pairs costs seconds and the answer moves slowly.
CREATE TABLE IF NOT EXISTS size_change_summary
(
    by                     LowCardinality(String) COMMENT 'the grouping: relation, architecture, base or root',
    `group`                String COMMENT 'the group''s value (the empty string: unknown)',
    edges                   UInt64 COMMENT 'pairs in the group',
    median_parameter_ratio  Nullable(Float64) COMMENT 'median parameters derivative / base',
    median_byte_ratio       Nullable(Float64) COMMENT 'median size_bytes derivative / base (Hub sizes only)',
    share_smaller           Float64 COMMENT 'share of pairs whose derivative is smaller',
    board_parameters        UInt64 COMMENT 'pairs whose parameter ratio used a board''s count'
)
ENGINE = MergeTree
ORDER BY (by, `group`)
COMMENT 'size_change''s answer per grouping, as of the last refresh of size_change_refresh';

CREATE MATERIALIZED VIEW IF NOT EXISTS size_change_refresh
REFRESH EVERY 300 SECOND RANDOMIZE FOR 60 SECOND TO size_change_summary
AS SELECT
    by,
    multiIf(by = 'relation', relation, by = 'architecture', architecture,
            by = 'base', base_model_id, root_id) AS `group`,
    count() AS edges,
    round(median(parameter_ratio), 3) AS median_parameter_ratio,
    round(median(byte_ratio), 3) AS median_byte_ratio,
    round(avg(smaller), 3) AS share_smaller,
    countIf(parameters_source NOT IN ('', 'hub')) AS board_parameters
FROM size_pairs
ARRAY JOIN ['relation', 'architecture', 'base', 'root'] AS by
GROUP BY by, `group`
ORDER BY by, edges DESC, `group`
LIMIT 1000 BY by;

-- score_delta: every grouping of scored_pairs, per board.
CREATE TABLE IF NOT EXISTS score_delta_summary
(
    by             LowCardinality(String) COMMENT 'the grouping: relation, architecture, type, base or root',
    board           String COMMENT 'the board both ends are scored on',
    `group`        String COMMENT 'the group''s value (the empty string: unknown)',
    edges           UInt64 COMMENT 'pairs in the group',
    median_delta    Float64 COMMENT 'median score derivative minus base',
    mean_delta      Float64 COMMENT 'mean score derivative minus base',
    share_improved  Float64 COMMENT 'share of pairs whose derivative scores higher',
    hub_relations   UInt64 COMMENT 'pairs whose relation the Hub gave',
    disputed        UInt64 COMMENT 'pairs a board names with another relation than the Hub''s'
)
ENGINE = MergeTree
ORDER BY (by, board, `group`)
COMMENT 'score_delta''s answer per grouping, as of the last refresh of score_delta_refresh';

CREATE MATERIALIZED VIEW IF NOT EXISTS score_delta_refresh
REFRESH EVERY 60 SECOND RANDOMIZE FOR 20 SECOND TO score_delta_summary
AS SELECT
    by,
    board,
    multiIf(by = 'relation', relation, by = 'architecture', architecture,
            by = 'base', base_model_id, by = 'root', root_id, model_type) AS `group`,
    count() AS edges,
    round(median(delta), 3) AS median_delta,
    round(avg(delta), 3) AS mean_delta,
    round(avg(delta > 0), 3) AS share_improved,
    countIf(source != 'board') AS hub_relations,
    countIf(disputed) AS disputed
FROM scored_pairs
ARRAY JOIN ['relation', 'architecture', 'type', 'base', 'root'] AS by
GROUP BY by, board, `group`;

-- quantized_tradeoff: its whole answer (it takes no parameters).
CREATE TABLE IF NOT EXISTS quantized_tradeoff_summary
(
    board                 String COMMENT 'the board both ends are scored on',
    precision             String COMMENT 'the quantized precision scored',
    pairing               String COMMENT 'same_model or quantized_repo',
    size_source           String COMMENT 'hub (both weights known) or assumed_bits/16',
    models                UInt64 COMMENT 'pairs compared',
    size_ratio            Nullable(Float64) COMMENT 'median size derivative / full precision',
    median_delta          Float64 COMMENT 'median score derivative minus base',
    worst_delta           Float64 COMMENT 'the largest loss',
    share_within_1_point  Float64 COMMENT 'share with |delta| <= 1'
)
ENGINE = MergeTree
ORDER BY (board, precision, pairing, size_source)
COMMENT 'quantized_tradeoff''s answer, as of the last refresh of quantized_tradeoff_refresh';

CREATE MATERIALIZED VIEW IF NOT EXISTS quantized_tradeoff_refresh
REFRESH EVERY 60 SECOND RANDOMIZE FOR 20 SECOND TO quantized_tradeoff_summary
AS WITH
    scores AS (
        SELECT board, model_id, toString(precision) AS precision, score
        FROM leaderboard_scores FINAL
        WHERE benchmark = 'average'
    ),
    full AS (
        SELECT board, model_id, max(score) AS score
        FROM scores WHERE precision IN ('float16', 'bfloat16', 'float32')
        GROUP BY board, model_id
    ),
    quantized AS (
        SELECT derivative_id, base_model_id FROM derivation_pairs WHERE relation = 'quantized'
    ),
    hub AS (
        SELECT repo_id, size_bytes, quant_bits FROM models FINAL
        WHERE repo_id IN (SELECT derivative_id FROM quantized)
            OR repo_id IN (SELECT base_model_id FROM quantized)
    ),
    derivatives AS (
        -- A quantized repo's own score: its best row at whatever precision it was run.
        SELECT board, model_id, argMax(precision, score) AS precision, max(score) AS best
        FROM scores WHERE model_id IN (SELECT derivative_id FROM quantized)
        GROUP BY board, model_id
    ),
    pairs AS (
        SELECT q.board AS board, q.precision AS precision, 'same_model' AS pairing,
               q.score - f.score AS delta, CAST(NULL, 'Nullable(Float64)') AS measured,
               CAST(multiIf(q.precision = '8bit', 0.5, 0.25), 'Nullable(Float64)') AS assumed
        FROM scores AS q
        INNER JOIN full AS f ON f.model_id = q.model_id AND f.board = q.board
        WHERE q.precision IN ('4bit', '8bit', 'GPTQ')
        UNION ALL
        SELECT c.board, c.precision, 'quantized_repo', c.best - f.score,
               if(d.size_bytes > 0 AND b.size_bytes > 0, d.size_bytes / b.size_bytes, NULL),
               multiIf(d.quant_bits > 0, d.quant_bits / 16, c.precision = '8bit', 0.5,
                       c.precision IN ('4bit', 'GPTQ'), 0.25, NULL)
        FROM quantized AS e
        INNER JOIN derivatives AS c ON c.model_id = e.derivative_id
        INNER JOIN full AS f ON f.model_id = e.base_model_id AND f.board = c.board
        LEFT JOIN hub AS d ON d.repo_id = e.derivative_id
        LEFT JOIN hub AS b ON b.repo_id = e.base_model_id
        SETTINGS join_use_nulls = 1
    )
SELECT
    board,
    precision,
    pairing,
    if(measured IS NULL, 'assumed_bits/16', 'hub') AS size_source,
    count() AS models,
    round(median(coalesce(measured, assumed)), 3) AS size_ratio,
    round(median(delta), 3) AS median_delta,
    round(min(delta), 3) AS worst_delta,
    round(avg(abs(delta) <= 1), 3) AS share_within_1_point
FROM pairs
GROUP BY board, precision, pairing, size_source
ORDER BY board, precision, pairing, size_source;

-- benchmark_delta: its whole answer (it takes no parameters).
CREATE TABLE IF NOT EXISTS benchmark_delta_summary
(
    board           String COMMENT 'the board both ends are scored on',
    benchmark       String COMMENT 'the board''s benchmark',
    edges           UInt64 COMMENT 'pairs in the group',
    median_delta    Float64 COMMENT 'median score derivative minus base',
    share_improved  Float64 COMMENT 'share of pairs whose derivative scores higher'
)
ENGINE = MergeTree
ORDER BY (board, benchmark)
COMMENT 'benchmark_delta''s answer, as of the last refresh of benchmark_delta_refresh';

CREATE MATERIALIZED VIEW IF NOT EXISTS benchmark_delta_refresh
REFRESH EVERY 60 SECOND RANDOMIZE FOR 20 SECOND TO benchmark_delta_summary
AS WITH
    -- Every id at its canonical name (model_aliases, one hop deep): a board row or a pair
    -- naming a renamed repo's old name, or another casing, counts for the repo.
    (SELECT (groupArray(alias_id), groupArray(canonical_id)) FROM model_aliases FINAL) AS aliases,
    named AS (
        SELECT *, transform(model_id, aliases.1, aliases.2, model_id) AS canonical
        FROM leaderboard_scores FINAL
    ),
    chosen AS (
        -- One row per model and board: the name and precision of its best full-precision
        -- average (card scores have no average and one precision), so every benchmark of a
        -- model comes from the same evaluation.
        SELECT board, canonical,
               argMax((model_id, precision), (precision IN ('float16', 'bfloat16', 'float32'),
                                  if(benchmark = 'average', score, -inf))) AS picked
        FROM named
        GROUP BY board, canonical
    ),
    best AS (
        SELECT s.board AS board, s.canonical AS model_id, s.benchmark AS benchmark,
               s.score AS score
        FROM named AS s
        INNER JOIN chosen AS p
            ON p.board = s.board AND p.canonical = s.canonical
            AND p.picked.1 = s.model_id AND p.picked.2 = s.precision
    ),
    pairs AS (
        -- derivation_pairs at canonical ids: a pair named under two names of one repo
        -- counts once, with the Hub's relation where the Hub names it (as the view does).
        SELECT d AS derivative_id, b AS base_model_id,
               if(hub != '', hub, board) AS relation,
               multiIf(hub != '' AND board != '', 'hub+board', hub != '', 'hub', 'board')
                   AS source,
               hub != '' AND board != '' AND hub != board AS disputed
        FROM (
            SELECT transform(derivative_id, aliases.1, aliases.2, derivative_id) AS d,
                   transform(base_model_id, aliases.1, aliases.2, base_model_id) AS b,
                   anyIf(hub_relation, hub_relation != '') AS hub,
                   anyIf(board_relation, board_relation != '') AS board
            FROM derivation_pairs
            GROUP BY d, b
        )
        WHERE d != b
    )
SELECT
    c.board AS board,
    c.benchmark AS benchmark,
    count() AS edges,
    round(median(c.score - b.score), 3) AS median_delta,
    round(avg(c.score > b.score), 3) AS share_improved
FROM pairs AS e
INNER JOIN best AS c ON c.model_id = e.derivative_id
INNER JOIN best AS b ON b.model_id = e.base_model_id AND b.board = c.board
    AND b.benchmark = c.benchmark
GROUP BY board, benchmark
ORDER BY board, benchmark;

-- family_growth: its whole answer, the 1,000 largest families (it takes no parameters).
CREATE TABLE IF NOT EXISTS family_growth_summary
(
    root            String COMMENT 'the family root',
    within_7_days   UInt64 COMMENT 'descendants created within 7 days of the root',
    within_30_days  UInt64 COMMENT 'descendants created within 30 days of the root',
    within_90_days  UInt64 COMMENT 'descendants created within 90 days of the root',
    descendants     UInt32 COMMENT 'every model below the root',
    finetunes       UInt32 COMMENT 'descendants that are finetunes',
    quantized       UInt32 COMMENT 'descendants that are quantizations',
    adapters        UInt32 COMMENT 'descendants that are adapters',
    merges          UInt32 COMMENT 'descendants that are merges',
    depth           UInt16 COMMENT 'the tree''s depth'
)
ENGINE = MergeTree
ORDER BY root
COMMENT 'family_growth''s answer, as of the last refresh of family_growth_refresh';

CREATE MATERIALIZED VIEW IF NOT EXISTS family_growth_refresh
REFRESH EVERY 60 SECOND RANDOMIZE FOR 20 SECOND TO family_growth_summary
AS SELECT root, within_7_days, within_30_days, within_90_days, descendants, finetunes,
       quantized, adapters, merges, tree_depth AS depth
FROM (
    SELECT
        root_id AS root,
        anyIf(created_at, depth = 0) AS root_created,
        groupArrayIf(created_at, depth > 0) AS born,
        arrayCount(c -> c <= root_created + INTERVAL 7 DAY, born) AS within_7_days,
        arrayCount(c -> c <= root_created + INTERVAL 30 DAY, born) AS within_30_days,
        arrayCount(c -> c <= root_created + INTERVAL 90 DAY, born) AS within_90_days,
        anyIf(descendants, depth = 0) AS descendants,
        anyIf(finetunes, depth = 0) AS finetunes,
        anyIf(quantized, depth = 0) AS quantized,
        anyIf(adapters, depth = 0) AS adapters,
        anyIf(merges, depth = 0) AS merges,
        max(depth) AS tree_depth
    FROM model_families FINAL
    -- Only the trees of the 1,000 largest families are read whole (the sort key starts
    -- with root_id); which they are, their roots' rows say.
    WHERE root_id IN (
        SELECT root_id FROM model_families FINAL
        WHERE depth = 0 AND descendants > 0
        ORDER BY descendants DESC, root_id
        LIMIT 1000
    )
    GROUP BY root
    HAVING descendants > 0
    ORDER BY descendants DESC, root
    LIMIT 1000
)
ORDER BY descendants DESC, root;
