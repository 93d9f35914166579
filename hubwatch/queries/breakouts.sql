-- Breakouts: derivatives whose downloads grow faster than their base's and faster than
-- the typical derivative of that base. From the live windows (engagement_live) of models
-- snapshotted in the day before the newest snapshot: per derivative its 24-hour download
-- velocity (per hour), its base's, the median of its base's derivatives, and the breakout
-- score, velocity / max(base velocity, siblings' median, 1). A score above 1 breaks out;
-- the {limit:UInt32} highest scores. As of the last refresh of the breakouts_now summary
-- (every 60 s; migration 0047 computes it over engagement_live and model_lineage).
-- summary: breakouts_now_refresh
-- defaults: limit=1000
-- param limit: how many derivatives to list, highest breakout score first
SELECT model, base, relation, root, velocity_per_hour, base_velocity_per_hour,
       siblings_median_velocity, derivatives_of_base, breakout_score
FROM breakouts_now
ORDER BY breakout_score DESC, model
LIMIT {limit:UInt32}
