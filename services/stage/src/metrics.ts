// The stage service's metrics: the stream metrics every Kafka stage has, plus the stage's own.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createStreamMetrics } from '@tillwatch/telemetry';

const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createStageMetrics(registry: Registry) {
  return {
    ...createStreamMetrics(registry),
    decisions: new Counter({ name: 'tillwatch_stage_decisions_total', help: 'Governor decisions by decision and proposed kind', labelNames: ['decision', 'kind'] as const, registers: [registry] }),
    stageAlerts: new Counter({ name: 'tillwatch_stage_alerts_total', help: 'Alerts raised by the second stage (sync_incident, freeze_circuit_open)', labelNames: ['rule'] as const, registers: [registry] }),
    buffered: new Gauge({ name: 'tillwatch_stage_buffered_records', help: 'Input records waiting for every partition watermark to pass them', registers: [registry] }),
    late: new Gauge({ name: 'tillwatch_stage_late_records', help: 'Records that arrived below the stage frontier (applied at once; breaks live = backtest ordering)', registers: [registry] }),
    incidentOpen: new Gauge({ name: 'tillwatch_stage_incident_open', help: '1 while a fleet sync incident is open', registers: [registry] }),
    // Wall time from the proposing alert's received time (action issued_at) to the committed decision.
    eventToAction: new Histogram({ name: 'tillwatch_event_to_action_seconds', help: 'Wall time from received_time to the committed governor decision', buckets: LATENCY_BUCKETS, registers: [registry] }),
    txnLatency: new Histogram({ name: 'tillwatch_stage_kafka_transaction_duration_seconds', help: 'Kafka transaction begin to commit (stage)', buckets: LATENCY_BUCKETS, registers: [registry] }),
    restoreSeconds: new Histogram({ name: 'tillwatch_stage_changelog_restore_seconds', help: 'Time to restore the stage from its changelog', buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60], registers: [registry] }),
    restoreRecords: new Counter({ name: 'tillwatch_stage_changelog_restore_records_total', help: 'Stage changelog records read during restores', registers: [registry] }),
  };
}
export type StageMetrics = ReturnType<typeof createStageMetrics>;
