-- Rollups for Grafana, maintained by materialized views on insert.
--
-- Idempotency: a materialized view sees inserted blocks, not merged rows, so it would count a
-- replayed duplicate that ReplacingMergeTree later collapses. Two defences:
-- 1. Insert deduplication: the writer sends insert_deduplication_token with every batch; a
--    repeated token is dropped by the source table AND by each view's target (each target keeps its
--    own non_replicated_deduplication_window), so an exact replay adds nothing anywhere.
-- 2. Counts are uniqExact(id) states, not count(): a duplicate that got past (1) — a replay batched
--    differently — still counts once. max() is idempotent too. Quantiles are not: a duplicate
--    slightly over-weights its lag in that minute (accepted; they are a fleet-health signal).
-- Minutes are DateTime('UTC'); query with the -Merge combinators:
--   SELECT minute, rule, severity, uniqExactMerge(alerts) FROM alerts_per_minute GROUP BY ALL

CREATE TABLE IF NOT EXISTS {db}.alerts_per_minute
(
    minute   DateTime('UTC'),
    rule     LowCardinality(String),
    severity Enum8('low' = 1, 'medium' = 2, 'high' = 3, 'critical' = 4),
    alerts   AggregateFunction(uniqExact, String) COMMENT 'distinct alert_id; uniqExactMerge()'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (rule, severity, minute)
TTL minute + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.alerts_per_minute_mv TO {db}.alerts_per_minute AS
SELECT
    toDateTime(toStartOfMinute(detected_at), 'UTC') AS minute,
    rule,
    severity,
    uniqExactState(alert_id) AS alerts
FROM {db}.alerts
GROUP BY minute, rule, severity;

-- Sync lag (received_time - event_time) per terminal and minute of arrival (received_time): "what
-- lag were terminals uploading with at 10:05".
CREATE TABLE IF NOT EXISTS {db}.terminal_sync_lag_minute
(
    minute      DateTime('UTC') COMMENT 'minute of received_time',
    merchant_id LowCardinality(String),
    terminal_id LowCardinality(String),
    lag_ms      AggregateFunction(quantiles(0.5, 0.9, 0.99), Int64) COMMENT 'quantilesMerge(0.5, 0.9, 0.99)(lag_ms)',
    events      AggregateFunction(uniqExact, String) COMMENT 'distinct event_id; uniqExactMerge()',
    max_lag_ms  SimpleAggregateFunction(max, Int64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (merchant_id, terminal_id, minute)
TTL minute + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.terminal_sync_lag_minute_mv TO {db}.terminal_sync_lag_minute AS
SELECT
    toDateTime(toStartOfMinute(received_time), 'UTC') AS minute,
    merchant_id,
    terminal_id,
    quantilesState(0.5, 0.9, 0.99)(toUnixTimestamp64Milli(received_time) - toUnixTimestamp64Milli(event_time)) AS lag_ms,
    uniqExactState(event_id) AS events,
    max(toUnixTimestamp64Milli(received_time) - toUnixTimestamp64Milli(event_time)) AS max_lag_ms
FROM {db}.transactions
GROUP BY minute, merchant_id, terminal_id;
