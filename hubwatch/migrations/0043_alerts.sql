-- Alerts on the data (hubwatch/alerts/): one row per alert and delivery target, written when
-- the alert fires (state queued) and again at each delivery attempt with a higher version.
-- alert_id is derived from the rule, the model (or the group) and the occurrence, so an
-- alert fired again after a restart replaces its own row instead of adding one.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id        String COMMENT 'rule, model or group, and occurrence, hashed: the same alert fired again has the same id',
    rule            LowCardinality(String) COMMENT 'the rule''s name in the rules file',
    model_id        String COMMENT 'the model that fired it (a grouped alert: the first of the group)',
    base_model      String COMMENT 'the watched base it matched under, at its canonical id, or the model''s primary base',
    relation        LowCardinality(String) COMMENT 'the model''s relation to its primary base: finetune, quantized, adapter, merge, or empty',
    link            String COMMENT 'the model''s page on the Hub',
    models          Array(String) COMMENT 'every model of a grouped alert; the one model otherwise',
    count           UInt32 COMMENT 'how many models the alert stands for',
    fired_at        DateTime64(3, 'UTC') COMMENT 'when the rule matched (a group: when it closed)',
    target          LowCardinality(String) COMMENT 'the delivery target''s name in the rules file (terminal: hubwatch run''s output)',
    state           LowCardinality(String) COMMENT 'queued (waiting or retrying), delivered, or failed (the target refused it for good)',
    delivered_at    Nullable(DateTime64(3, 'UTC')) COMMENT 'when the target accepted it',
    attempts        UInt32 COMMENT 'delivery attempts so far',
    last_error      String COMMENT 'why the last attempt failed',
    next_attempt_at DateTime64(3, 'UTC') COMMENT 'when a queued alert is tried next',
    payload         String COMMENT 'the alert as JSON, what each target''s message is made from',
    version         UInt64 COMMENT 'row version in milliseconds: the highest replaces the others (read with FINAL)'
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (alert_id, target);
