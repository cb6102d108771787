-- What downstream services were told to do (contract: schemas/avro/action.avsc).
-- ReplacingMergeTree by action_id (deterministic from alert_id and kind), so replays collapse.
-- Sort columns are fixed per action: merchant, terminal, alert, action id. The partition uses
-- issued_at (stream clock at detection; a replay reproduces it). A live re-fire after a restart may
-- carry a later issued_at; only if that crosses a month boundary would two copies survive FINAL, so
-- readers that must be exact use `LIMIT 1 BY action_id`.
CREATE TABLE IF NOT EXISTS {db}.actions
(
    action_id   String,
    kind        Enum8('FREEZE_TERMINAL' = 1, 'FREEZE_CARD' = 2, 'HOLD_SETTLEMENT' = 3, 'REVIEW_REFUND' = 4, 'NOTIFY_MERCHANT' = 5, 'NOTIFY_ACQUIRER' = 6),
    target_type Enum8('TERMINAL' = 1, 'CARD' = 2, 'MERCHANT' = 3, 'TRANSACTION' = 4, 'ACQUIRER' = 5),
    target_id   String,
    merchant_id LowCardinality(String),
    terminal_id LowCardinality(String),
    alert_id    String,
    rule        LowCardinality(String),
    reason      String,
    issued_at   DateTime64(3, 'UTC'),
    expires_at  Nullable(DateTime64(3, 'UTC')),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(issued_at)
ORDER BY (merchant_id, terminal_id, alert_id, action_id)
TTL toDateTime(issued_at) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;
