-- Card transactions as the terminals recorded them (contract: schemas/avro/transaction.avsc).
--
-- ReplacingMergeTree: the sink is at-least-once (Kafka redelivery, replays of a topic), so the same
-- event can be inserted twice. Rows with equal ORDER BY collapse on merge, and `FINAL` collapses
-- them at read time. The sort key ends with event_id and its other columns (merchant, terminal,
-- event_time) are fixed by the event itself, so a duplicate always has the same key and lands in
-- the same partition (a duplicate in another partition would never be merged).
-- ORDER BY serves the two access paths: merchant -> time, and terminal -> time (terminal_id is the
-- second key column; a terminal belongs to one merchant, and with merchant_id of low cardinality
-- the primary index still skips granules for a terminal-only filter).
-- Version column ingested_at: if a corrected copy is ever re-sent, the newest ingestion wins.
-- non_replicated_deduplication_window: a non-replicated MergeTree keeps no insert-block hashes by
-- default; with a window it drops a repeated block / insert_deduplication_token, and so does every
-- materialized view fed by it (their targets keep their own window).
-- TTL on received_time (platform clock), not event_time: a terminal with a wrong clock must not get
-- its rows deleted on insert.
CREATE TABLE IF NOT EXISTS {db}.transactions
(
    event_id        String,
    txn_id          String,
    kind            Enum8('SALE' = 1, 'REFUND' = 2, 'REVERSAL' = 3, 'VOID' = 4),
    status          Enum8('APPROVED' = 1, 'DECLINED' = 2, 'TIMEOUT' = 3, 'PENDING' = 4),
    terminal_id     LowCardinality(String),
    merchant_id     LowCardinality(String),
    card_token      String COMMENT 'tokenised card; never a PAN',
    amount_minor    Int64 COMMENT 'minor units (cents, fen)',
    currency        LowCardinality(String) COMMENT 'ISO 4217',
    terminal_seq    Int64,
    original_txn_id Nullable(String) COMMENT 'for REFUND / REVERSAL / VOID',
    event_time      DateTime64(3, 'UTC') COMMENT 'made at the till',
    received_time   DateTime64(3, 'UTC') COMMENT 'reached the platform',
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'written to ClickHouse',
    sync_lag_ms     Int64 ALIAS toUnixTimestamp64Milli(received_time) - toUnixTimestamp64Milli(event_time)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (merchant_id, terminal_id, event_time, event_id)
TTL toDateTime(received_time) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;
