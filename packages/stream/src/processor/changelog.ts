// Changelog restore. The state of task N lives in partition N of a compacted changelog topic,
// written in the same Kafka transaction as the outputs and consumed offsets of task N, so the
// committed changelog is exactly the state after the committed offsets.
//
// End of restore: instead of comparing against the high watermark (which counts transaction
// control records and may sit above the last visible record), the new owner first commits a
// marker record with a fresh nonce through the task's own transactional producer (which also
// fences any zombie owner and aborts its open transaction, KIP-98), then reads the partition with
// read_committed until it meets that marker. Everything before the marker is committed state.
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Logger } from '@tillwatch/telemetry';
import { RetriableError } from '../errors.js';

export const MARKER_KEY = '__restore_marker__';

export interface RestoreResult {
  entries: Map<string, Buffer>;
  records: number;
  bytes: number;
  ms: number;
}

export interface RestoreOptions {
  kafka: Kafka;
  topic: string;
  /** partition -> nonce of the marker committed just before this restore */
  markers: Map<number, string>;
  groupPrefix: string;
  logger: Logger;
  timeoutMs?: number;
}

export async function restoreChangelog(o: RestoreOptions): Promise<Map<number, RestoreResult>> {
  const started = performance.now();
  const results = new Map<number, RestoreResult>();
  for (const p of o.markers.keys()) results.set(p, { entries: new Map(), records: 0, bytes: 0, ms: 0 });
  const pending = new Set(o.markers.keys());
  if (pending.size === 0) return results;

  const groupId = `${o.groupPrefix}.restore.${randomUUID()}`;
  const consumer = o.kafka.consumer({ groupId, readUncommitted: false, sessionTimeout: 30_000, maxBytes: 50 * 1024 * 1024 });
  let done!: () => void;
  let fail!: (e: Error) => void;
  const finished = new Promise<void>((res, rej) => {
    done = res;
    fail = rej;
  });
  const timer = setTimeout(
    () => fail(new RetriableError(`changelog restore of ${o.topic} partitions [${[...pending].join(',')}] did not reach its marker within ${o.timeoutMs ?? 120_000} ms`)),
    o.timeoutMs ?? 120_000,
  );
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        const r = results.get(batch.partition);
        if (!r || !pending.has(batch.partition)) {
          consumer.pause([{ topic: o.topic, partitions: [batch.partition] }]);
          return;
        }
        const nonce = o.markers.get(batch.partition);
        for (const m of batch.messages) {
          const key = m.key?.toString('utf8');
          if (key === undefined) continue;
          r.records++;
          r.bytes += (m.value?.length ?? 0) + m.key!.length;
          if (key === MARKER_KEY) {
            if (m.value?.toString('utf8') === nonce) {
              pending.delete(batch.partition);
              r.ms = performance.now() - started;
              consumer.pause([{ topic: o.topic, partitions: [batch.partition] }]);
              if (pending.size === 0) done();
              return;
            }
            continue;
          }
          if (m.value === null) r.entries.delete(key);
          else r.entries.set(key, m.value);
        }
      },
    });
    await finished;
    return results;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch((e: unknown) => o.logger.warn({ err: e }, 'restore consumer disconnect failed'));
    // The throwaway group has no committed offsets; remove it so groups do not pile up.
    const admin = o.kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([groupId]))
      .catch(() => undefined)
      .finally(() => admin.disconnect());
  }
}
