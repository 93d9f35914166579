-- Breakouts: derivatives whose downloads grow faster than their base's and faster than
-- the typical derivative of that base. From the live windows (engagement_live) of models
-- snapshotted in the day before the newest snapshot: per derivative its 24-hour download
-- velocity (per hour), its base's, the median of its base's derivatives, and the breakout
-- score, velocity / max(base velocity, siblings' median, 1). A score above 1 breaks out;
-- the {limit:UInt32} highest scores.
-- defaults: limit=1000
WITH
    live AS (
        SELECT repo_id, velocity_per_hour AS velocity
        FROM engagement_live FINAL
        WHERE at >= (SELECT max(at) FROM engagement_live) - INTERVAL 1 DAY
    ),
    placed AS (
        -- A derivative's place from model_lineage (one narrow row per model, sorted by it;
        -- FINAL keeps its newest), joined to the live rows; its siblings' median in the
        -- same pass (a window), not by reading the lookup again. No `IN live` filter: live
        -- models are spread over every granule, so it pruned nothing and cost a third
        -- reading of engagement_live.
        SELECT f.model_id AS model_id, f.parent_id AS parent_id, f.root_id AS root_id,
               f.relation AS relation, l.velocity AS velocity,
               median(l.velocity) OVER (PARTITION BY f.parent_id) AS median_velocity,
               count() OVER (PARTITION BY f.parent_id) AS derivatives
        FROM model_lineage AS f FINAL
        INNER JOIN live AS l ON l.repo_id = f.model_id
        WHERE f.is_deleted = 0 AND f.parent_id != ''
    )
SELECT
    p.model_id AS model,
    p.parent_id AS base,
    p.relation AS relation,
    p.root_id AS root,
    p.velocity AS velocity_per_hour,
    b.velocity AS base_velocity_per_hour,
    round(p.median_velocity, 3) AS siblings_median_velocity,
    p.derivatives AS derivatives_of_base,
    round(p.velocity / greatest(b.velocity, p.median_velocity, 1), 3) AS breakout_score
FROM placed AS p
LEFT JOIN live AS b ON b.repo_id = p.parent_id
WHERE breakout_score > 1
ORDER BY breakout_score DESC, model
LIMIT {limit:UInt32}
