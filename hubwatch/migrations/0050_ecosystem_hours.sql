-- The Ecosystem dashboard's three lineage panels (new models by relation, most derived
-- bases, fastest-growing families) as a summary (hubwatch/summaries.py): the models
-- created per hour, by their place in their family (relation, primary base, root), as of
-- the last refresh. Each panel otherwise joins the range's models to model_lineage FINAL,
-- which reads every lineage row (the range's repo ids are spread over its sort key).
--
-- Hours, not days or minutes: the table panels must be right for a range of a few hours
-- (Grafana's "last 6 hours"), and the new-models time series asks for at least an hour
-- per point (its panel's min interval), whose buckets ($__timeInterval: Grafana's
-- intervals from an hour up are whole hours, aligned to the epoch) are unions of whole
-- hours. Minutes would make the table about one row per model.
--
-- The panels stay live and exact: they read the hours the range holds whole from here,
-- and the rest from models and model_lineage as before — the partial first hour of a
-- range that does not start on the hour, the partial last hour of one that ends before
-- as_of, and the tail from as_of on (models created since the refresh, or not yet
-- counted). A model is in exactly one of the two: here iff it was created before as_of
-- in an hour the range holds whole (created_at < as_of is the summary's own cut). as_of
-- is 10 minutes before the refresh, so a model the producer sees minutes after its
-- creation is still in the live tail when it arrives; when models are stamped ahead of
-- the server's clock (a skewed clock, a generated year), just after the newest one.
-- A model's family or relation that changes after a refresh shows from the next one.
CREATE TABLE IF NOT EXISTS ecosystem_hours
(
    hour      DateTime('UTC') COMMENT 'the hour the models were created in (UTC)',
    relation  LowCardinality(String) COMMENT 'relation to parent_id; empty for a root or a model in no family',
    parent_id String COMMENT 'the primary base; empty for a root or a model in no family',
    root_id   String COMMENT 'the family''s root; empty for a model in no family',
    member    UInt8 COMMENT '1: in a family and not its root (a new member of root_id''s family)',
    models    UInt64 COMMENT 'models created in the hour before as_of (distinct repo ids)',
    as_of     DateTime64(3, 'UTC') COMMENT 'the counts are of models created before this (the same on every row)'
)
ENGINE = MergeTree
ORDER BY (hour, relation, parent_id, root_id)
COMMENT 'the Ecosystem lineage panels per hour, as of the last refresh of ecosystem_hours_refresh';

CREATE MATERIALIZED VIEW IF NOT EXISTS ecosystem_hours_refresh
REFRESH EVERY 120 SECOND RANDOMIZE FOR 30 SECOND TO ecosystem_hours AS
WITH
    (SELECT max(created_at) FROM models) AS newest,
    if(newest > now64(3, 'UTC'), newest + INTERVAL 1 MILLISECOND,
       now64(3, 'UTC') - INTERVAL 10 MINUTE) AS t
SELECT toStartOfHour(m.created_at) AS hour,
       l.relation AS relation,
       l.parent_id AS parent_id,
       l.root_id AS root_id,
       l.member AS member,
       uniqExact(m.repo_id) AS models,
       any(t) AS as_of
FROM (SELECT repo_id, created_at FROM models WHERE created_at < t) AS m
-- A model in no family keeps the defaults: no relation (a base, on the time series), in
-- no family's counts.
LEFT JOIN (
    SELECT model_id, relation, parent_id, root_id, toUInt8(model_id != root_id) AS member
    FROM model_lineage FINAL
    WHERE is_deleted = 0
) AS l ON l.model_id = m.repo_id
GROUP BY hour, relation, parent_id, root_id, member;
