// The API's named metrics. Several apps may share one registry (tests, or the lead's single-process
// `npm start`), so an existing metric of the same name is reused instead of registered twice.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const LATENCY = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function createApiMetrics(registry: Registry) {
  const reuse = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    requests: reuse('tillwatch_api_request_duration_seconds', () => new Histogram({ name: 'tillwatch_api_request_duration_seconds', help: 'HTTP request duration by route and status', labelNames: ['method', 'route', 'status_code'] as const, buckets: LATENCY, registers: [registry] })),
    authFailures: reuse('tillwatch_api_auth_failures_total', () => new Counter({ name: 'tillwatch_api_auth_failures_total', help: 'Requests refused by authentication (401) or authorisation (403)', labelNames: ['reason'] as const, registers: [registry] })),
    triage: reuse('tillwatch_api_triage_total', () => new Counter({ name: 'tillwatch_api_triage_total', help: 'Triage actions recorded', labelNames: ['status'] as const, registers: [registry] })),
    queries: reuse('tillwatch_api_clickhouse_query_seconds', () => new Histogram({ name: 'tillwatch_api_clickhouse_query_seconds', help: 'ClickHouse query latency by query', labelNames: ['query'] as const, buckets: LATENCY, registers: [registry] })),
    queryErrors: reuse('tillwatch_api_clickhouse_errors_total', () => new Counter({ name: 'tillwatch_api_clickhouse_errors_total', help: 'Failed ClickHouse queries by query and error kind', labelNames: ['query', 'kind'] as const, registers: [registry] })),
    cache: reuse('tillwatch_api_alerts_cache_total', () => new Counter({ name: 'tillwatch_api_alerts_cache_total', help: 'GET /alerts page cache lookups (hit, coalesced into an in-flight query, stale while refreshing, miss)', labelNames: ['result'] as const, registers: [registry] })),
    sseClients: reuse('tillwatch_api_sse_clients', () => new Gauge({ name: 'tillwatch_api_sse_clients', help: 'Open /stream/alerts connections', registers: [registry] })),
    sseEvents: reuse('tillwatch_api_sse_events_total', () => new Counter({ name: 'tillwatch_api_sse_events_total', help: 'Alert events written to SSE clients', registers: [registry] })),
    sseDisconnects: reuse('tillwatch_api_sse_disconnects_total', () => new Counter({ name: 'tillwatch_api_sse_disconnects_total', help: 'SSE connections ended, by reason', labelNames: ['reason'] as const, registers: [registry] })),
    alertReads: reuse('tillwatch_api_alert_reads_total', () => new Counter({ name: 'tillwatch_api_alert_reads_total', help: 'Alert list and lookup reads by where they were answered (memory = read model, clickhouse) and why', labelNames: ['source', 'reason'] as const, registers: [registry] })),
    readModelReady: reuse('tillwatch_api_read_model_ready', () => new Gauge({ name: 'tillwatch_api_read_model_ready', help: '1 when the in-memory alert read model is loaded and serving', registers: [registry] })),
    readModelAlerts: reuse('tillwatch_api_read_model_alerts', () => new Gauge({ name: 'tillwatch_api_read_model_alerts', help: 'Alerts held by the read model index', registers: [registry] })),
    readModelBytes: reuse('tillwatch_api_read_model_bytes', () => new Gauge({ name: 'tillwatch_api_read_model_bytes', help: 'Memory of the read model: index (estimate) and rows (arena bytes in use)', labelNames: ['part'] as const, registers: [registry] })),
    readModelHorizon: reuse('tillwatch_api_read_model_horizon_timestamp_seconds', () => new Gauge({ name: 'tillwatch_api_read_model_horizon_timestamp_seconds', help: 'The read model holds every alert detected since this time (0: all alerts); older reads go to ClickHouse', registers: [registry] })),
    readModelLastPoll: reuse('tillwatch_api_read_model_last_poll_timestamp_seconds', () => new Gauge({ name: 'tillwatch_api_read_model_last_poll_timestamp_seconds', help: 'Wall time of the last successful poll of new alerts and triage rows', registers: [registry] })),
    readModelLoad: reuse('tillwatch_api_read_model_load_seconds', () => new Gauge({ name: 'tillwatch_api_read_model_load_seconds', help: 'Duration of the last initial load of the read model', registers: [registry] })),
    readModelRowFetches: reuse('tillwatch_api_read_model_row_fetches_total', () => new Counter({ name: 'tillwatch_api_read_model_row_fetches_total', help: 'Alert rows a page needed that were no longer in the row arena (read from ClickHouse)', registers: [registry] })),
  };
}
export type ApiMetrics = ReturnType<typeof createApiMetrics>;
