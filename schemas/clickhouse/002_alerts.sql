-- Rule hits (contract: schemas/avro/alert.avsc). Triage status is NOT here: it changes, alerts do
-- not; it lives in the append-only alert_triage below.
--
-- ReplacingMergeTree by alert_id: alert_id is deterministic from rule, version and evidence, so a
-- replay (or a detector restart that re-fires) writes the same id again and FINAL shows it once.
-- Every sort/partition column must be the same for two copies of an alert, so only evidence-derived
-- columns are in the key: merchant, terminal, rule and window_start (earliest evidence). detected_at
-- is not: in live mode the clock includes wall time, so a re-fired alert may carry another one.
-- ORDER BY serves the API: alerts of a merchant / of a terminal, filtered by rule and time.
-- details: Map(LowCardinality(String), Float64) — the numbers behind the alert (median, ratio,
-- lag_ms, missing_from, ...), read as details['ratio'].
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id     String,
    rule         LowCardinality(String) COMMENT 'rule id, e.g. duplicate_charge',
    rule_version UInt16,
    severity     Enum8('low' = 1, 'medium' = 2, 'high' = 3, 'critical' = 4),
    terminal_id  LowCardinality(String),
    merchant_id  LowCardinality(String),
    card_token   Nullable(String),
    event_ids    Array(String) COMMENT 'evidence',
    window_start DateTime64(3, 'UTC'),
    window_end   DateTime64(3, 'UTC'),
    detected_at  DateTime64(3, 'UTC') COMMENT 'stream (received) time at which the rule fired',
    summary      String,
    details      Map(LowCardinality(String), Float64),
    ingested_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (merchant_id, terminal_id, rule, window_start, alert_id)
TTL toDateTime(detected_at) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Triage audit trail: every status change is a new row, nothing is updated in place.
-- Current status of an alert = argMax(status, at); see the alert_status view.
CREATE TABLE IF NOT EXISTS {db}.alert_triage
(
    alert_id String,
    status   Enum8('open' = 1, 'acknowledged' = 2, 'resolved' = 3, 'false_positive' = 4),
    actor    LowCardinality(String),
    note     String,
    at       DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (alert_id, at)
TTL toDateTime(at) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Latest triage state per alert. Alerts without a triage row are 'open'.
CREATE VIEW IF NOT EXISTS {db}.alert_status AS
SELECT
    alert_id,
    argMax(status, at) AS status,
    argMax(actor, at)  AS actor,
    argMax(note, at)   AS note,
    max(at)            AS updated_at
FROM {db}.alert_triage
GROUP BY alert_id;
