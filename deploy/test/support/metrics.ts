// The metric names the dashboards and alerting rules may use, and a PromQL name extractor.
//
// KNOWN_METRICS is the documented list (telemetry contract, see packages/telemetry/src/metrics.ts);
// the tests also check it against what @tillwatch/telemetry actually registers, so a renamed metric
// fails here instead of leaving an empty panel or a rule that never fires.

export type MetricType = 'counter' | 'gauge' | 'histogram';

export const KNOWN_METRICS: Readonly<Record<string, MetricType>> = {
  tillwatch_records_consumed_total: 'counter',
  tillwatch_records_decoded_total: 'counter',
  tillwatch_dlq_records_total: 'counter',
  tillwatch_batch_duration_seconds: 'histogram',
  tillwatch_consumer_lag_records: 'gauge',
  tillwatch_consumer_committed_offset: 'gauge',
  tillwatch_retriable_errors_total: 'counter',
  tillwatch_rule_hits_total: 'counter',
  tillwatch_actions_total: 'counter',
  tillwatch_kafka_transaction_duration_seconds: 'histogram',
  tillwatch_kafka_transactions_aborted_total: 'counter',
  tillwatch_kafka_producer_replacements_total: 'counter',
  tillwatch_consumer_group_joins_total: 'counter',
  tillwatch_event_to_decision_seconds: 'histogram',
  tillwatch_event_time_lag_seconds: 'gauge',
  tillwatch_changelog_restore_seconds: 'histogram',
  tillwatch_changelog_restore_records_total: 'counter',
  tillwatch_state_merchants: 'gauge',
  tillwatch_clickhouse_rows_written_total: 'counter',
  tillwatch_clickhouse_insert_seconds: 'histogram',
  tillwatch_clickhouse_insert_errors_total: 'counter',
  tillwatch_sink_rows_dead_lettered_total: 'counter',
};

/** Labels each metric carries besides the default `service` (and Prometheus' job/instance). */
export const METRIC_LABELS: Readonly<Record<string, readonly string[]>> = {
  tillwatch_records_consumed_total: ['topic'],
  tillwatch_records_decoded_total: ['topic'],
  tillwatch_dlq_records_total: ['topic', 'error_class'],
  tillwatch_batch_duration_seconds: ['stage'],
  tillwatch_consumer_lag_records: ['topic', 'partition'],
  tillwatch_consumer_committed_offset: ['topic', 'partition'],
  tillwatch_consumer_group_joins_total: ['kind'],
  tillwatch_retriable_errors_total: ['stage', 'error_class'],
  tillwatch_rule_hits_total: ['rule', 'severity'],
  tillwatch_actions_total: ['kind'],
  tillwatch_kafka_transactions_aborted_total: ['reason_class'],
  tillwatch_event_time_lag_seconds: ['partition'],
  tillwatch_state_merchants: ['partition'],
  tillwatch_clickhouse_rows_written_total: ['table'],
  tillwatch_clickhouse_insert_seconds: ['table'],
  tillwatch_clickhouse_insert_errors_total: ['table'],
  tillwatch_sink_rows_dead_lettered_total: ['table', 'reason_class'],
};

/**
 * The api's metrics (services/api/src/metrics.ts, registered by createApiMetrics; the tests compare
 * this list with it). Kept apart from KNOWN_METRICS: the pipeline dashboard must show every stage
 * metric, while the api's are shown where they matter (triage dashboard, alerting rules).
 */
export const API_METRICS: Readonly<Record<string, MetricType>> = {
  tillwatch_api_request_duration_seconds: 'histogram',
  tillwatch_api_auth_failures_total: 'counter',
  tillwatch_api_triage_total: 'counter',
  tillwatch_api_clickhouse_query_seconds: 'histogram',
  tillwatch_api_clickhouse_errors_total: 'counter',
  tillwatch_api_alerts_cache_total: 'counter',
  tillwatch_api_sse_clients: 'gauge',
  tillwatch_api_sse_events_total: 'counter',
  tillwatch_api_sse_disconnects_total: 'counter',
  tillwatch_api_alert_reads_total: 'counter',
  tillwatch_api_read_model_ready: 'gauge',
  tillwatch_api_read_model_alerts: 'gauge',
  tillwatch_api_read_model_bytes: 'gauge',
  tillwatch_api_read_model_horizon_timestamp_seconds: 'gauge',
  tillwatch_api_read_model_last_poll_timestamp_seconds: 'gauge',
  tillwatch_api_read_model_load_seconds: 'gauge',
  tillwatch_api_read_model_row_fetches_total: 'counter',
};

export const API_METRIC_LABELS: Readonly<Record<string, readonly string[]>> = {
  tillwatch_api_request_duration_seconds: ['method', 'route', 'status_code'],
  tillwatch_api_auth_failures_total: ['reason'],
  tillwatch_api_triage_total: ['status'],
  tillwatch_api_clickhouse_query_seconds: ['query'],
  tillwatch_api_clickhouse_errors_total: ['query', 'kind'],
  tillwatch_api_alerts_cache_total: ['result'],
  tillwatch_api_sse_disconnects_total: ['reason'],
  tillwatch_api_alert_reads_total: ['source', 'reason'],
  tillwatch_api_read_model_bytes: ['part'],
};

/**
 * The second stage's own metrics (services/stage/src/metrics.ts, createStageMetrics, besides the
 * stream metrics of KNOWN_METRICS; the tests compare this list with it). It exports them with
 * service="stage".
 */
export const STAGE_METRICS: Readonly<Record<string, MetricType>> = {
  tillwatch_stage_decisions_total: 'counter',
  tillwatch_stage_alerts_total: 'counter',
  tillwatch_stage_buffered_records: 'gauge',
  tillwatch_stage_late_records: 'gauge',
  tillwatch_stage_incident_open: 'gauge',
  tillwatch_event_to_action_seconds: 'histogram',
  tillwatch_stage_kafka_transaction_duration_seconds: 'histogram',
  tillwatch_stage_changelog_restore_seconds: 'histogram',
  tillwatch_stage_changelog_restore_records_total: 'counter',
};

export const STAGE_METRIC_LABELS: Readonly<Record<string, readonly string[]>> = {
  tillwatch_stage_decisions_total: ['decision', 'kind'],
  tillwatch_stage_alerts_total: ['rule'],
};

/** Labels of any metric: pipeline stages, the second stage, the api. */
export const ALL_METRIC_LABELS: Readonly<Record<string, readonly string[]>> = { ...METRIC_LABELS, ...STAGE_METRIC_LABELS, ...API_METRIC_LABELS };

const HISTOGRAM_SERIES = ['_bucket', '_sum', '_count'] as const;

/** Every `tillwatch_*` series name in a PromQL expression (string literals removed first). */
export function metricNamesIn(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  return [...new Set(withoutStrings.match(/\btillwatch_[a-zA-Z0-9_]+/g) ?? [])];
}

/**
 * Why `name` is not a series of a known metric, or undefined if it is. `known` maps metric names to
 * types (KNOWN_METRICS plus the process metrics from prom-client's collectDefaultMetrics).
 */
export function unknownSeries(name: string, known: Readonly<Record<string, MetricType>>): string | undefined {
  if (known[name] === 'histogram') return `${name} is a histogram: query ${name}_bucket, _sum or _count`;
  if (known[name]) return undefined;
  for (const suffix of HISTOGRAM_SERIES) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      if (known[base] === 'histogram') return undefined;
      if (known[base]) return `${base} is a ${known[base]}, it has no ${suffix} series`;
    }
  }
  return `${name} is not a metric any Tillwatch service exports`;
}
