// Named metrics per pipeline stage. Each service builds its own Registry (no prom-client default
// registry singleton), so tests and several services in one process never collide.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsOptions {
  service: string;
  /** Process metrics (CPU, heap, event loop lag). Off in tests that build many registries. */
  defaultMetrics?: boolean;
}

export function createRegistry({ service, defaultMetrics = true }: MetricsOptions): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'tillwatch_' });
  return registry;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Metrics shared by every Kafka-consuming stage (detector, sink). */
export function createStreamMetrics(registry: Registry) {
  return {
    consumed: new Counter({ name: 'tillwatch_records_consumed_total', help: 'Records consumed from Kafka', labelNames: ['topic'] as const, registers: [registry] }),
    decoded: new Counter({ name: 'tillwatch_records_decoded_total', help: 'Records decoded and validated', labelNames: ['topic'] as const, registers: [registry] }),
    dlq: new Counter({ name: 'tillwatch_dlq_records_total', help: 'Records sent to the dead-letter topic', labelNames: ['topic', 'error_class'] as const, registers: [registry] }),
    batchLatency: new Histogram({ name: 'tillwatch_batch_duration_seconds', help: 'Time to process one consumed batch end to end', labelNames: ['stage'] as const, buckets: LATENCY_BUCKETS, registers: [registry] }),
    // Measured every 10 s from the group's committed offsets against the partitions' end offsets
    // (packages/stream lag-monitor.ts), for the partitions this instance owns.
    consumerLag: new Gauge({ name: 'tillwatch_consumer_lag_records', help: "End offset minus the group's committed offset, per owned partition (polled every 10 s)", labelNames: ['topic', 'partition'] as const, registers: [registry] }),
    committedOffset: new Gauge({ name: 'tillwatch_consumer_committed_offset', help: "The group's committed offset per owned partition (polled with the lag): flat while records wait = stalled", labelNames: ['topic', 'partition'] as const, registers: [registry] }),
    retries: new Counter({ name: 'tillwatch_retriable_errors_total', help: 'Retriable errors (backed off, offsets kept)', labelNames: ['stage', 'error_class'] as const, registers: [registry] }),
  };
}
export type StreamMetrics = ReturnType<typeof createStreamMetrics>;

export function createDetectorMetrics(registry: Registry) {
  return {
    ...createStreamMetrics(registry),
    ruleHits: new Counter({ name: 'tillwatch_rule_hits_total', help: 'Alerts fired by rule', labelNames: ['rule', 'severity'] as const, registers: [registry] }),
    actions: new Counter({ name: 'tillwatch_actions_total', help: 'Actions issued by kind', labelNames: ['kind'] as const, registers: [registry] }),
    txnLatency: new Histogram({ name: 'tillwatch_kafka_transaction_duration_seconds', help: 'Kafka transaction begin to commit', buckets: LATENCY_BUCKETS, registers: [registry] }),
    // reason_class: fenced (a newer owner took the task), retriable (broker or network trouble,
    // retried with the offsets kept) or fatal (the process stops); a fixed set.
    txnAborts: new Counter({ name: 'tillwatch_kafka_transactions_aborted_total', help: 'Kafka transactions aborted, by reason class', labelNames: ['reason_class'] as const, registers: [registry] }),
    // first: the first join; rejoin: a rebalance with the same member id; new_member: joined under a
    // new member id (evicted: session expired, or the consumer restarted). With a steady membership
    // anything but one `first` is a rebalance nobody asked for (load-tests README, session timeout).
    groupJoins: new Counter({ name: 'tillwatch_consumer_group_joins_total', help: 'Consumer group joins of this process, by kind (first, rejoin, new_member)', labelNames: ['kind'] as const, registers: [registry] }),
    producerReplacements: new Counter({ name: 'tillwatch_kafka_producer_replacements_total', help: 'Transactional producers replaced after a failed transaction (same transactional.id: fences and aborts the old one)', registers: [registry] }),
    decisionLatency: new Histogram({ name: 'tillwatch_event_to_decision_seconds', help: 'Wall time from received_time to the committed alert', buckets: LATENCY_BUCKETS, registers: [registry] }),
    eventTimeLag: new Gauge({ name: 'tillwatch_event_time_lag_seconds', help: 'Stream clock minus the latest event_time processed', labelNames: ['partition'] as const, registers: [registry] }),
    restoreSeconds: new Histogram({ name: 'tillwatch_changelog_restore_seconds', help: 'Time to restore a partition from the changelog', buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60], registers: [registry] }),
    restoreRecords: new Counter({ name: 'tillwatch_changelog_restore_records_total', help: 'Changelog records read during restores', registers: [registry] }),
    stateMerchants: new Gauge({ name: 'tillwatch_state_merchants', help: 'Merchants held in rule state', labelNames: ['partition'] as const, registers: [registry] }),
  };
}
export type DetectorMetrics = ReturnType<typeof createDetectorMetrics>;

export function createSinkMetrics(registry: Registry) {
  return {
    ...createStreamMetrics(registry),
    rowsWritten: new Counter({ name: 'tillwatch_clickhouse_rows_written_total', help: 'Rows inserted into ClickHouse', labelNames: ['table'] as const, registers: [registry] }),
    insertLatency: new Histogram({ name: 'tillwatch_clickhouse_insert_seconds', help: 'ClickHouse insert latency', labelNames: ['table'] as const, buckets: LATENCY_BUCKETS, registers: [registry] }),
    insertErrors: new Counter({ name: 'tillwatch_clickhouse_insert_errors_total', help: 'Failed ClickHouse inserts (retried)', labelNames: ['table'] as const, registers: [registry] }),
    // reason_class: the ClickHouse error name (UNKNOWN_ELEMENT_OF_ENUM, CANNOT_PARSE_DATETIME, ...)
    // or VALUE_OUT_OF_COLUMN_RANGE for a value the row mapper refused; a small, fixed set.
    rowsDeadLettered: new Counter({ name: 'tillwatch_sink_rows_dead_lettered_total', help: 'Rows the sink could not write because ClickHouse (or the row mapper) rejected their values; sent to the dead-letter topic', labelNames: ['table', 'reason_class'] as const, registers: [registry] }),
  };
}
export type SinkMetrics = ReturnType<typeof createSinkMetrics>;
