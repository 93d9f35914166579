-- The open groups of alert rules with a `group` window (hubwatch/alerts/evaluate.py): each
-- model that joined a group, written with the batch that matched it, so a group survives a
-- processor restart and closes as the one alert it would have been. A closed group is the
-- alert in `alerts` whose id the rule, base and opened_at give.
CREATE TABLE IF NOT EXISTS alert_group_members
(
    rule        LowCardinality(String) COMMENT 'the rule''s name in the rules file',
    base_model  String COMMENT 'the base the group gathers under (canonical id)',
    opened_at   DateTime64(3, 'UTC') COMMENT 'when the group''s first model matched',
    model_id    String COMMENT 'a model of the group',
    relation    LowCardinality(String) COMMENT 'the model''s relation to its primary base',
    matched_at  DateTime64(3, 'UTC') COMMENT 'when this model matched'
)
ENGINE = ReplacingMergeTree
ORDER BY (rule, base_model, opened_at, model_id)
TTL toDateTime(opened_at) + INTERVAL 30 DAY;
