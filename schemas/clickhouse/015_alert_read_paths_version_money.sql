-- The API's time-ordered alert table again (006's alerts_by_detected), now with what 008 and 009
-- gave `alerts`: the rules document version in force when the alert fired (issue 9) and the money it
-- is about (issue 11), so that GET /alerts, the read model and the live feed show them (006's table
-- left them out). Same types and defaults as in `alerts`: rules_version 0 and null money for alerts
-- written before those migrations.
--
-- A new table rather than ALTER ... ADD COLUMN on 006's: 006 backfills with a positional
-- INSERT ... SELECT, so once its table had more columns, 006 could not run again, and running it
-- again is the documented fix for a table dropped by hand (services/sink/README.md). Rerun that way,
-- 006 builds its table and this file replaces it again. Run with the services stopped, as every
-- migration (`tillwatch provision` first): an API started before this file reads the table it drops
-- and must be restarted.
CREATE TABLE IF NOT EXISTS {db}.alerts_by_detected_v2
(
    alert_id      String,
    rule          LowCardinality(String),
    rule_version  UInt16,
    severity      Enum8('low' = 1, 'medium' = 2, 'high' = 3, 'critical' = 4),
    terminal_id   LowCardinality(String),
    merchant_id   LowCardinality(String),
    card_token    Nullable(String),
    event_ids     Array(String),
    window_start  DateTime64(3, 'UTC'),
    window_end    DateTime64(3, 'UTC'),
    detected_at   DateTime64(3, 'UTC'),
    summary       String,
    details       Map(LowCardinality(String), Float64),
    ingested_at   DateTime64(3, 'UTC'),
    rules_version UInt32 DEFAULT 0 COMMENT 'rules document version in force when it fired',
    currency      LowCardinality(Nullable(String)) COMMENT 'ISO 4217; null: no single amount',
    amount_minor  Nullable(Int64) COMMENT 'minor units of currency'
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(detected_at)
ORDER BY (detected_at, alert_id)
TTL toDateTime(detected_at) + INTERVAL 365 DAY
SETTINGS index_granularity = 1024, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.alerts_by_detected_v2_mv TO {db}.alerts_by_detected_v2 AS
SELECT alert_id, rule, rule_version, severity, terminal_id, merchant_id, card_token, event_ids,
       window_start, window_end, detected_at, summary, details, ingested_at, rules_version, currency, amount_minor
FROM {db}.alerts;

-- What was stored before the view existed. A row the view also wrote meanwhile, or a rerun of this
-- file, has the same sort key and collapses.
INSERT INTO {db}.alerts_by_detected_v2 (alert_id, rule, rule_version, severity, terminal_id, merchant_id, card_token, event_ids,
       window_start, window_end, detected_at, summary, details, ingested_at, rules_version, currency, amount_minor)
SELECT alert_id, rule, rule_version, severity, terminal_id, merchant_id, card_token, event_ids,
       window_start, window_end, detected_at, summary, details, ingested_at, rules_version, currency, amount_minor
FROM {db}.alerts;

-- 006's table and view: replaced by the two above.
DROP VIEW IF EXISTS {db}.alerts_by_detected_mv;
DROP TABLE IF EXISTS {db}.alerts_by_detected;
