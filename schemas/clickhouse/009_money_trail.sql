-- The money trail (issue 11; alert updates are also issue 10's episode closes).
--
-- 1. Alerts carry the money they are about (contract: alert.avsc `currency`, `amount_minor`, both
--    nullable: alerts about no single amount, and alerts written before this migration, have null).
--    Grafana sums money per currency from them. Not added to alerts_by_detected (006): the API's list
--    path does not need them; a later migration can add them there with the view.
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS currency LowCardinality(Nullable(String)) COMMENT 'ISO 4217; null: no single amount';
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS amount_minor Nullable(Int64) COMMENT 'minor units of currency';

-- 2. Alert lifecycle updates (contract: schemas/avro/alert-update.avsc, topic pos.alerts.updates.v1).
--    An update is a record of its own, never a rewrite of the alert (alerts do not change).
--    ReplacingMergeTree keyed by the deterministic update_id: a replay, a sink redelivery or a
--    detector that re-processes a batch writes the same update_id again and FINAL shows it once.
--    Every key column is fixed by the update id's inputs (merchant, alert, id). resolved_at is not in
--    the key and there is no partition by time: an update fired by a timer in live mode carries the
--    stream clock plus wall time, so a re-fired copy may have another resolved_at, and copies must
--    land in the same part to merge. Volume: at most a few updates per alert.
--    ORDER BY serves the API (updates of one alert) and Grafana (per merchant / rule).
CREATE TABLE IF NOT EXISTS {db}.alert_updates
(
    update_id             String,
    alert_id              String,
    rule                  LowCardinality(String),
    rule_version          UInt16,
    terminal_id           LowCardinality(String),
    merchant_id           LowCardinality(String),
    status                Enum8('auto_resolved' = 1),
    resolution            Enum8('reversed' = 1, 'voided' = 2, 'refunded' = 3, 'gap_filled' = 4, 'episode_ended' = 5),
    resolved_by_event_ids Array(String),
    resolved_at           DateTime64(3, 'UTC') COMMENT 'stream (received) time at which it happened',
    summary               String,
    details               Map(LowCardinality(String), Float64),
    ingested_at           DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (merchant_id, alert_id, update_id)
TTL toDateTime(resolved_at) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Lookup by alert_id alone (GET /alerts/:id/history): a bloom filter per granule, as for alerts (006).
ALTER TABLE {db}.alert_updates ADD INDEX IF NOT EXISTS alert_updates_alert_id_bf alert_id TYPE bloom_filter(0.01) GRANULARITY 1;

-- 3. Why each approved refund, reversal or void happened (contract: schemas/avro/refund-reason.avsc,
--    topic pos.refunds.reasons.v1). One row per event_id; the key holds only event-derived columns,
--    so a replayed copy always collapses with the original (as transactions, 001).
CREATE TABLE IF NOT EXISTS {db}.refund_reasons
(
    event_id        String,
    txn_id          String,
    original_txn_id Nullable(String),
    kind            Enum8('REFUND' = 2, 'REVERSAL' = 3, 'VOID' = 4),
    reason          Enum8('no_sale' = 1, 'duplicate_charge' = 2, 'sync_failure' = 3, 'policy' = 4, 'ordinary' = 5),
    merchant_id     LowCardinality(String),
    terminal_id     LowCardinality(String),
    amount_minor    Int64 COMMENT 'minor units of currency',
    currency        LowCardinality(String) COMMENT 'ISO 4217',
    event_time      DateTime64(3, 'UTC'),
    received_time   DateTime64(3, 'UTC'),
    alert_id        Nullable(String),
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY (merchant_id, terminal_id, event_time, event_id)
TTL toDateTime(received_time) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- 4. ISO 4217 minor units, for SQL that shows money (Grafana: amount_minor / pow(10, minor_units)).
--    The same table as formatMoney's (schemas/src/money.ts, a unit test keeps them equal). A code
--    not in it is 2, as in formatMoney: LEFT JOIN ... and `if(cu.currency = '', 2, cu.minor_units)`.
CREATE TABLE IF NOT EXISTS {db}.currency_minor_units
(
    currency    String,
    minor_units UInt8
)
ENGINE = ReplacingMergeTree
ORDER BY currency;

INSERT INTO {db}.currency_minor_units (currency, minor_units) VALUES
    ('AED', 2), ('AFN', 2), ('ALL', 2), ('AMD', 2), ('ANG', 2), ('AOA', 2), ('ARS', 2), ('AUD', 2), ('AWG', 2), ('AZN', 2),
    ('BAM', 2), ('BBD', 2), ('BDT', 2), ('BGN', 2), ('BHD', 3), ('BIF', 0), ('BMD', 2), ('BND', 2), ('BOB', 2), ('BOV', 2),
    ('BRL', 2), ('BSD', 2), ('BTN', 2), ('BWP', 2), ('BYN', 2), ('BZD', 2), ('CAD', 2), ('CDF', 2), ('CHE', 2), ('CHF', 2),
    ('CHW', 2), ('CLF', 4), ('CLP', 0), ('CNY', 2), ('COP', 2), ('COU', 2), ('CRC', 2), ('CUP', 2), ('CVE', 2), ('CZK', 2),
    ('DJF', 0), ('DKK', 2), ('DOP', 2), ('DZD', 2), ('EGP', 2), ('ERN', 2), ('ETB', 2), ('EUR', 2), ('FJD', 2), ('FKP', 2),
    ('GBP', 2), ('GEL', 2), ('GHS', 2), ('GIP', 2), ('GMD', 2), ('GNF', 0), ('GTQ', 2), ('GYD', 2), ('HKD', 2), ('HNL', 2),
    ('HTG', 2), ('HUF', 2), ('IDR', 2), ('ILS', 2), ('INR', 2), ('IQD', 3), ('IRR', 2), ('ISK', 0), ('JMD', 2), ('JOD', 3),
    ('JPY', 0), ('KES', 2), ('KGS', 2), ('KHR', 2), ('KMF', 0), ('KPW', 2), ('KRW', 0), ('KWD', 3), ('KYD', 2), ('KZT', 2),
    ('LAK', 2), ('LBP', 2), ('LKR', 2), ('LRD', 2), ('LSL', 2), ('LYD', 3), ('MAD', 2), ('MDL', 2), ('MGA', 2), ('MKD', 2),
    ('MMK', 2), ('MNT', 2), ('MOP', 2), ('MRU', 2), ('MUR', 2), ('MVR', 2), ('MWK', 2), ('MXN', 2), ('MXV', 2), ('MYR', 2),
    ('MZN', 2), ('NAD', 2), ('NGN', 2), ('NIO', 2), ('NOK', 2), ('NPR', 2), ('NZD', 2), ('OMR', 3), ('PAB', 2), ('PEN', 2),
    ('PGK', 2), ('PHP', 2), ('PKR', 2), ('PLN', 2), ('PYG', 0), ('QAR', 2), ('RON', 2), ('RSD', 2), ('RUB', 2), ('RWF', 0),
    ('SAR', 2), ('SBD', 2), ('SCR', 2), ('SDG', 2), ('SEK', 2), ('SGD', 2), ('SHP', 2), ('SLE', 2), ('SOS', 2), ('SRD', 2),
    ('SSP', 2), ('STN', 2), ('SVC', 2), ('SYP', 2), ('SZL', 2), ('THB', 2), ('TJS', 2), ('TMT', 2), ('TND', 3), ('TOP', 2),
    ('TRY', 2), ('TTD', 2), ('TWD', 2), ('TZS', 2), ('UAH', 2), ('UGX', 0), ('USD', 2), ('USN', 2), ('UYI', 0), ('UYU', 2),
    ('UYW', 4), ('UZS', 2), ('VED', 2), ('VES', 2), ('VND', 0), ('VUV', 0), ('WST', 2), ('XAF', 0), ('XAG', 0), ('XAU', 0),
    ('XBA', 0), ('XBB', 0), ('XBC', 0), ('XBD', 0), ('XCD', 2), ('XCG', 2), ('XDR', 0), ('XOF', 0), ('XPD', 0), ('XPF', 0),
    ('XPT', 0), ('XSU', 0), ('XTS', 0), ('XUA', 0), ('XXX', 0), ('YER', 2), ('ZAR', 2), ('ZMW', 2), ('ZWG', 2);
