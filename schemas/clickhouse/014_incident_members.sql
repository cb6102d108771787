-- Which per-terminal alerts belong to which fleet sync incident (issue 10; contract
-- schemas/avro/incident-membership.avsc, topic pos.incidents.members.v1, written only by the second
-- stage). The per-terminal alert is raised by the detector before the incident exists, so the link is
-- a row of its own, joined at read time (GET /alerts/:id), never an update of the alerts row.
-- ReplacingMergeTree keyed by alert_id (an alert belongs to at most one incident; membership_id is
-- deterministic from incident and alert): a replay or redelivery writes the same row and FINAL shows
-- it once. ORDER BY serves "the incident of this alert"; the bloom filter "the members of this
-- incident". No time partition: few rows, stream-time columns (as action_decisions, 012).
CREATE TABLE IF NOT EXISTS {db}.incident_members
(
    membership_id     String,
    incident_id       String,
    alert_id          String,
    rule              LowCardinality(String),
    terminal_id       LowCardinality(String),
    merchant_id       LowCardinality(String),
    role              Enum8('opening' = 1, 'joined' = 2, 'during' = 3, 'before' = 4),
    alert_detected_at DateTime64(3, 'UTC'),
    joined_at         DateTime64(3, 'UTC') COMMENT 'stream (received) time at which the stage linked it',
    ingested_at       DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_incident incident_id TYPE bloom_filter GRANULARITY 1
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (alert_id)
TTL toDateTime(joined_at) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;
