-- Read paths for the alert API (services/api). The API also works without it (slower; it detects
-- the table at run time through system.tables). Measured on 1M alerts in embedded
-- chDB (services/api/README.md): newest-first pages 50-130 ms -> 5-10 ms, lookup by id ~120 ms -> ~7 ms.
--
-- 1. alerts_by_detected: the alerts again, sorted by (detected_at, alert_id) - the API's list order.
--    `alerts` is sorted by (merchant_id, terminal_id, rule, window_start, alert_id), which serves
--    merchant/terminal reads but makes "newest alerts, any merchant" a sort of the whole table.
--    Here ClickHouse reads the sort key in reverse and stops after one page. index_granularity 1024
--    (not 8192): a page is ~50 rows, so smaller granules mean less to decompress per page.
--    Dedup: copies of an alert (replays) have the same (detected_at, alert_id), so they collapse on
--    merge and arrive adjacent when read in order; the API drops adjacent copies instead of FINAL
--    (FINAL would merge the whole range before the LIMIT). A live re-fire with a different detected_at
--    is a second row here, in another position (the API keeps the first copy within a page).
CREATE TABLE IF NOT EXISTS {db}.alerts_by_detected
(
    alert_id     String,
    rule         LowCardinality(String),
    rule_version UInt16,
    severity     Enum8('low' = 1, 'medium' = 2, 'high' = 3, 'critical' = 4),
    terminal_id  LowCardinality(String),
    merchant_id  LowCardinality(String),
    card_token   Nullable(String),
    event_ids    Array(String),
    window_start DateTime64(3, 'UTC'),
    window_end   DateTime64(3, 'UTC'),
    detected_at  DateTime64(3, 'UTC'),
    summary      String,
    details      Map(LowCardinality(String), Float64),
    ingested_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(detected_at)
ORDER BY (detected_at, alert_id)
TTL toDateTime(detected_at) + INTERVAL 365 DAY
SETTINGS index_granularity = 1024, non_replicated_deduplication_window = 1000;

-- Fed by every insert into alerts (an insert_deduplication_token replay is dropped here too: the
-- target keeps its own deduplication window).
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.alerts_by_detected_mv TO {db}.alerts_by_detected AS
SELECT alert_id, rule, rule_version, severity, terminal_id, merchant_id, card_token, event_ids,
       window_start, window_end, detected_at, summary, details, ingested_at
FROM {db}.alerts;

-- Backfill what was stored before the view existed. A row the view also wrote meanwhile, or a rerun
-- of this file, has the same sort key and collapses.
INSERT INTO {db}.alerts_by_detected
SELECT alert_id, rule, rule_version, severity, terminal_id, merchant_id, card_token, event_ids,
       window_start, window_end, detected_at, summary, details, ingested_at
FROM {db}.alerts;

-- 2. Lookup by alert_id (GET /alerts/:id, triage): alert_id is the last sort column of `alerts`, so a
--    point lookup scans the column. A bloom filter per granule lets ClickHouse read ~1 granule.
ALTER TABLE {db}.alerts ADD INDEX IF NOT EXISTS alerts_alert_id_bf alert_id TYPE bloom_filter(0.01) GRANULARITY 1;
ALTER TABLE {db}.alerts MATERIALIZE INDEX alerts_alert_id_bf;
