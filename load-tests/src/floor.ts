// The floor under the detector's events/s (issue 12's ratio): the same transactional processor
// (@tillwatch/stream), the detector's own input decoding (Avro through the registry, the
// contract's checks, received-time alignment of the two inputs), one exactly-once Kafka transaction
// per step, and one changelog record of the detector's mean size per event, but no rules and no
// state. Whatever a detector does on top of decoding and writing its state, it cannot be faster
// than this on the same broker and client: a ratio to raw consume the floor itself does not reach
// is out of reach of any rule set. One record per event is fewer than the detector writes (its
// changelog holds about 1.1 per event on the fleet), so the floor is generous.
import type { Kafka } from 'kafkajs';
import { createDetectorInputs } from '@tillwatch/detector';
import type { Transaction } from '@tillwatch/schemas';
import { createTransactionalProcessor, type DecodedRecord, type RegistryClient, type Task, type TaskResult } from '@tillwatch/stream';
import { createDetectorMetrics, createRegistry, type Logger } from '@tillwatch/telemetry';

/** Bytes of one changelog value: the detector's mean on the fleet (detector-cpu.ts prints it: 152). */
export const FLOOR_VALUE_BYTES = 152;

export interface FloorOptions {
  kafka: Kafka;
  registry: RegistryClient;
  logger: Logger;
  groupId: string;
  /** The input topics (the detector's) and where the floor's changelog records and dead letters go (its own, not the detector's). */
  topics: { transactions: string; heartbeats: string; changelog: string; dlq: string };
  maxClockSkewMs: number;
  /** As the detector it is compared with (THROUGHPUT_ALIGN=0: fetch-batch order). */
  alignInputs: boolean;
  encodeDeadLetter: Parameters<typeof createTransactionalProcessor>[0]['encodeDeadLetter'];
}

/** A task with no rules: one changelog record per transaction (key: terminal and txn id, value: FLOOR_VALUE_BYTES bytes, shared); heartbeats write none. */
function floorTask(): Task {
  const value = Buffer.alloc(FLOOR_VALUE_BYTES, 1);
  let changes: Array<[string, Buffer | null]> = [];
  const none: TaskResult = { messages: [] };
  const take = (records: DecodedRecord[]): TaskResult => {
    for (let i = 0; i < records.length; i++) {
      const t = records[i]!.value as Transaction;
      // Heartbeats (no txn_id) change nothing here.
      if (t.txn_id !== undefined) changes.push([`f:${t.terminal_id}:${t.txn_id}`, value]);
    }
    return none;
  };
  return {
    restore() {},
    process: (_topic, records) => take(records),
    processMixed: (records) => take(records),
    tick: () => none,
    takeChanges() {
      const out = changes;
      changes = [];
      return out;
    },
  };
}

/** Builds (does not start) the floor's processor; its metrics count decoded records as the detector's do. */
export function createFloor(o: FloorOptions) {
  const metrics = createDetectorMetrics(createRegistry({ service: 'load-floor', defaultMetrics: false }));
  const decoding = createDetectorInputs(o.registry, o.topics, () => o.maxClockSkewMs);
  const processor = createTransactionalProcessor({
    kafka: o.kafka,
    groupId: o.groupId,
    transactionalIdPrefix: `${o.groupId}.${o.topics.transactions}`,
    inputs: decoding.inputs,
    alignInputs: o.alignInputs,
    changelogTopic: o.topics.changelog,
    dlqTopic: o.topics.dlq,
    encodeDeadLetter: o.encodeDeadLetter,
    metrics,
    logger: o.logger,
    tickIntervalMs: 0,
    createTask: floorTask,
  });
  return {
    metrics,
    async start() {
      await decoding.init();
      await processor.start();
    },
    stop: () => processor.stop(),
    ready: () => processor.ready(),
  };
}
