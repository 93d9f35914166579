-- Rolling engagement as of {at:DateTime}: per model, likes and (all-time) downloads gained
-- over the last 1 hour, 24 hours and 7 days, download velocity per hour, and acceleration
-- (that velocity minus the one of the 24 hours before), for the models snapshotted in the
-- 24 hours before {at:DateTime}; the {limit:UInt32} that gained most downloads in 24 hours.
-- "Now" ({at:DateTime} at or after the newest snapshot) is served from engagement_live:
-- each model's windows as of its latest snapshot, as the processor keeps them, as of the
-- last refresh of its engagement_top summary (every 60 s; migration 0047). An earlier
-- {at:DateTime} is computed at hourly resolution over the 15 days before it (the live
-- windows' horizon), whole days from engagement_daily and the edges from engagement_hourly: a gain is the value at {at:DateTime} minus
-- the last value seen before the window opened (or the first value inside it, for a model
-- younger than the window). Velocity divides the 24-hour gain by the span it covers, from
-- the snapshot it is measured from to the newest, and at least 1 hour (a model first seen
-- 2 hours ago gained over 2 hours, not 24).
-- summary: engagement_top_refresh
-- defaults: at=now limit=1000
-- param at: as of this UTC time, YYYY-MM-DD HH:MM:SS (now: the live windows)
-- param limit: how many models to list, those that gained most downloads in 24 hours first
WITH
    toDateTime({at:DateTime}, 'UTC') AS t,
    -- A constant per query: one of the two branches below reads nothing.
    toDateTime64(t, 3, 'UTC') >= (SELECT max(at) FROM engagement_live) AS now_,
    -- "Now" reads the engagement_top summary (the 10,000 most downloaded live windows);
    -- only a larger limit reads engagement_live FINAL over every live model.
    live AS (
        SELECT repo_id, likes_1h, likes_24h, likes_7d, downloads_1h, downloads_24h,
               downloads_7d, velocity_per_hour, acceleration
        FROM engagement_top
        WHERE now_ AND {limit:UInt32} <= 10000
        UNION ALL
        SELECT repo_id, likes_1h, likes_24h, likes_7d, downloads_1h, downloads_24h,
               downloads_7d, velocity_per_hour, acceleration
        FROM engagement_live FINAL
        WHERE now_ AND {limit:UInt32} > 10000
            AND at >= (SELECT max(at) FROM engagement_live) - INTERVAL 1 DAY
    ),
    -- The past path reads whole days from engagement_daily (a rollup of engagement_hourly)
    -- and hours only where a day would blur a window's edge: before the first whole day
    -- of the 15, on the day the 7-day window opens, and the last 48 hours or so. A day
    -- stands for its hours exactly when every window edge E falls outside it (an hour
    -- counts as before E when it starts before E, so E acts as the first hour start at or
    -- after it: `edge`).
    (x -> if(toStartOfHour(x) = x, x, toStartOfHour(x) + INTERVAL 1 HOUR)) AS edge,
    edge(t - INTERVAL 15 DAY) AS from_hour,
    -- Whole days from the first that starts at or after from_hour to the last that ends
    -- by the 48-hour edge, less the day the 7-day edge falls inside (none when it falls
    -- on midnight).
    if(toStartOfDay(from_hour) = from_hour, from_hour,
       toStartOfDay(from_hour) + INTERVAL 1 DAY) AS days_from,
    toStartOfDay(edge(t - INTERVAL 48 HOUR)) AS days_to,
    toStartOfDay(edge(t - INTERVAL 7 DAY)) AS split_day,
    if(split_day = edge(t - INTERVAL 7 DAY), split_day, split_day + INTERVAL 1 DAY)
        AS split_day_end,
    snapshotted AS (
        SELECT repo_id FROM engagement_hourly
        WHERE NOT now_ AND hour < t AND hour >= t - INTERVAL 24 HOUR
    ),
    hourly AS (
        SELECT repo_id, hour,
               argMinMerge(likes_first) AS likes_first, argMaxMerge(likes_last) AS likes_last,
               argMinMerge(downloads_first) AS downloads_first,
               argMaxMerge(downloads_last) AS downloads_last,
               min(first_at) AS first_at, max(last_at) AS last_at
        FROM engagement_hourly
        WHERE NOT now_ AND hour < t AND hour >= from_hour
            AND (hour < days_from OR hour >= days_to
                 OR hour >= split_day AND hour < split_day_end)
            AND repo_id IN snapshotted
        GROUP BY repo_id, hour
        UNION ALL
        SELECT repo_id, day AS hour,
               argMinMerge(likes_first), argMaxMerge(likes_last),
               argMinMerge(downloads_first), argMaxMerge(downloads_last),
               min(first_at), max(last_at)
        FROM engagement_daily
        WHERE NOT now_ AND day >= days_from AND day < days_to
            AND NOT (day >= split_day AND day < split_day_end)
            AND repo_id IN snapshotted
        GROUP BY repo_id, day
    ),
    valued AS (
        SELECT repo_id,
               argMax(likes_last, hour) AS likes_now,
               argMax(downloads_last, hour) AS downloads_now,
               argMax(last_at, hour) AS at_now,
               argMin(likes_first, hour) AS likes_first_seen,
               argMin(downloads_first, hour) AS downloads_first_seen,
               argMin(first_at, hour) AS first_seen_at,
               countIf(hour < t - INTERVAL 1 HOUR) > 0 AS seen_1h,
               countIf(hour < t - INTERVAL 24 HOUR) > 0 AS seen_24h,
               countIf(hour < t - INTERVAL 48 HOUR) > 0 AS seen_48h,
               countIf(hour < t - INTERVAL 7 DAY) > 0 AS seen_7d,
               argMaxIf(likes_last, hour, hour < t - INTERVAL 1 HOUR) AS likes_at_1h,
               argMaxIf(likes_last, hour, hour < t - INTERVAL 24 HOUR) AS likes_at_24h,
               argMaxIf(likes_last, hour, hour < t - INTERVAL 7 DAY) AS likes_at_7d,
               argMaxIf(downloads_last, hour, hour < t - INTERVAL 1 HOUR) AS downloads_at_1h,
               argMaxIf(downloads_last, hour, hour < t - INTERVAL 24 HOUR) AS downloads_at_24h,
               argMaxIf(downloads_last, hour, hour < t - INTERVAL 48 HOUR) AS downloads_at_48h,
               argMaxIf(downloads_last, hour, hour < t - INTERVAL 7 DAY) AS downloads_at_7d,
               argMaxIf(last_at, hour, hour < t - INTERVAL 24 HOUR) AS time_at_24h,
               argMaxIf(last_at, hour, hour < t - INTERVAL 48 HOUR) AS time_at_48h
        FROM hourly
        GROUP BY repo_id
    ),
    past AS (
        SELECT
            repo_id,
            likes_now - if(seen_1h, likes_at_1h, likes_first_seen) AS likes_1h,
            likes_now - if(seen_24h, likes_at_24h, likes_first_seen) AS likes_24h,
            likes_now - if(seen_7d, likes_at_7d, likes_first_seen) AS likes_7d,
            downloads_now - if(seen_1h, downloads_at_1h, downloads_first_seen) AS downloads_1h,
            downloads_now - if(seen_24h, downloads_at_24h, downloads_first_seen) AS downloads_24h,
            downloads_now - if(seen_7d, downloads_at_7d, downloads_first_seen) AS downloads_7d,
            round(downloads_24h / greatest(1, dateDiff('millisecond',
                if(seen_24h, time_at_24h, first_seen_at), at_now) / 3600000), 3)
                AS velocity_per_hour,
            round(velocity_per_hour - if(seen_24h,
                (downloads_at_24h - if(seen_48h, downloads_at_48h, downloads_first_seen))
                    / greatest(1, dateDiff('millisecond',
                        if(seen_48h, time_at_48h, first_seen_at), time_at_24h) / 3600000),
                0), 3) AS acceleration
        FROM valued
        ORDER BY downloads_24h DESC, repo_id
        LIMIT {limit:UInt32}
    )
SELECT repo_id, likes_1h, likes_24h, likes_7d, downloads_1h, downloads_24h, downloads_7d,
       velocity_per_hour, acceleration
FROM (SELECT * FROM live UNION ALL SELECT * FROM past)
ORDER BY downloads_24h DESC, repo_id
LIMIT {limit:UInt32}
