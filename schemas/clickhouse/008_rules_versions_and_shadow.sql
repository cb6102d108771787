-- Rules as live data and shadow mode (issue 9).
--
-- 1. rules_version: the version of the rules document in force when the alert fired (contract:
--    schemas/avro/alert.avsc, default 0 = written before rules had versions). Not part of alert_id
--    nor of the sort key: a replay under another rules version is the same alert.
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS rules_version UInt32 DEFAULT 0 COMMENT 'rules document version in force when it fired';

-- 2. alerts_shadow: the alerts of rules (or per-merchant overrides) in `mode: shadow`, from
--    pos.alerts.shadow.v1. Same columns, engine and keys as `alerts` (so the same queries work on
--    both and the Grafana panel can compare them); they issue no actions and have no triage.
CREATE TABLE IF NOT EXISTS {db}.alerts_shadow
(
    alert_id      String,
    rule          LowCardinality(String) COMMENT 'rule id, e.g. duplicate_charge',
    rule_version  UInt16,
    severity      Enum8('low' = 1, 'medium' = 2, 'high' = 3, 'critical' = 4),
    terminal_id   LowCardinality(String),
    merchant_id   LowCardinality(String),
    card_token    Nullable(String),
    event_ids     Array(String) COMMENT 'evidence',
    window_start  DateTime64(3, 'UTC'),
    window_end    DateTime64(3, 'UTC'),
    detected_at   DateTime64(3, 'UTC') COMMENT 'stream (received) time at which the rule fired',
    summary       String,
    details       Map(LowCardinality(String), Float64),
    ingested_at   DateTime64(3, 'UTC') DEFAULT now64(3),
    rules_version UInt32 DEFAULT 0 COMMENT 'rules document version in force when it fired'
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (merchant_id, terminal_id, rule, window_start, alert_id)
TTL toDateTime(detected_at) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;
