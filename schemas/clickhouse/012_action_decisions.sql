-- The action governor's decisions (issue 10; contract schemas/avro/action-decision.avsc, topic
-- pos.actions.decisions.v1, written only by the second stage): one row per proposed action, issued,
-- suppressed (fleet incident) or downgraded (freeze cap), with the reason and the incident.
-- ReplacingMergeTree keyed by decision_id (= the proposed action's deterministic action_id): a replay
-- or a redelivery writes the same row again and FINAL shows it once. No time partition, for the same
-- reason as alert_updates (009): key columns are fixed by the id's inputs; decided_at is stream time.
-- ORDER BY serves GET /alerts/:id (the decisions of one alert) and Grafana (per decision / rule).
CREATE TABLE IF NOT EXISTS {db}.action_decisions
(
    decision_id     String,
    action_id       String,
    kind            LowCardinality(String) COMMENT 'proposed ActionKind',
    final_action_id Nullable(String) COMMENT 'the action issued for it; null when suppressed',
    final_kind      LowCardinality(Nullable(String)),
    alert_id        String,
    rule            LowCardinality(String),
    terminal_id     LowCardinality(String),
    merchant_id     LowCardinality(String),
    target_type     LowCardinality(String),
    target_id       String,
    decision        Enum8('issued' = 1, 'suppressed' = 2, 'downgraded' = 3),
    reason          LowCardinality(String),
    incident_id     Nullable(String),
    decided_at      DateTime64(3, 'UTC') COMMENT 'stream (received) time of the decision',
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (alert_id, decision_id)
TTL toDateTime(decided_at) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;
