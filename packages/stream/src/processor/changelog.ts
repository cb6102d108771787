// Changelog restore. The state of task N lives in partition N of a compacted changelog topic,
// written in the same Kafka transaction as the outputs and consumed offsets of task N, so the
// committed changelog is exactly the state after the committed offsets.
//
// End of restore: instead of comparing against the high watermark (which counts transaction
// control records and may sit above the last visible record), the new owner first commits a
// marker record with a fresh nonce through the task's own transactional producer (which also
// fences any zombie owner and aborts its open transaction, KIP-98), then reads the partition with
// read_committed until it meets that marker. Everything before the marker is committed state.
//
// A restore may take minutes for a large state. It is bounded by progress, not by total time:
// it fails (retriably) only when no record arrives for `timeoutMs`, and it logs its progress. The
// restore consumer's own throwaway group membership is kept alive from inside the read loop; the
// membership that matters, the processor's group, is kept alive by the processor (its restoring
// partitions are paused, see transactional-processor.ts).
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
  /** Fails the restore (retriably) when no changelog record arrived for this long (default 120 s). */
  timeoutMs?: number;
  /** Stops the restore (it rejects with RestoreAbortedError): its partitions went to another member. */
  signal?: AbortSignal;
  /** Progress log interval for long restores (default 5 s). */
  progressIntervalMs?: number;
  /** Called with the number of changelog records read by each fetched batch (restore metrics). */
  onRecords?: (records: number) => void;
  /** Test seam: awaited for every changelog record applied, with the partition's count so far. */
  onRecord?: (partition: number, records: number) => void | Promise<void>;
}

/** The restore was stopped on purpose (its partitions were revoked or the processor is stopping). */
export class RestoreAbortedError extends Error {
  override name = 'RestoreAbortedError';
}

/** How often the read loop asks kafkajs for a heartbeat of the restore consumer (kafkajs throttles it to its heartbeatInterval). */
const HEARTBEAT_CHECK_MS = 1_000;

export async function restoreChangelog(o: RestoreOptions): Promise<Map<number, RestoreResult>> {
  const started = performance.now();
  const results = new Map<number, RestoreResult>();
  /** Next offset to apply per partition: a batch delivered again (the throwaway group rejoined) is skipped. */
  const next = new Map<number, number>();
  for (const p of o.markers.keys()) {
    results.set(p, { entries: new Map(), records: 0, bytes: 0, ms: 0 });
    next.set(p, 0);
  }
  const pending = new Set(o.markers.keys());
  if (pending.size === 0) return results;
  if (o.signal?.aborted) throw new RestoreAbortedError(`changelog restore of ${o.topic} aborted before it started`);

  const groupId = `${o.groupPrefix}.restore.${randomUUID()}`;
  const consumer = o.kafka.consumer({ groupId, readUncommitted: false, sessionTimeout: 30_000, maxBytes: 50 * 1024 * 1024 });
  let done!: () => void;
  let fail!: (e: Error) => void;
  const finished = new Promise<void>((res, rej) => {
    done = res;
    fail = rej;
  });
  // It may fail (watchdog, abort) before it is awaited below: never an unhandled rejection.
  finished.catch(() => undefined);
  const timeoutMs = o.timeoutMs ?? 120_000;
  let lastProgress = performance.now();
  let lastLog = performance.now();
  const total = () => [...results.values()].reduce((a, r) => ({ records: a.records + r.records, bytes: a.bytes + r.bytes }), { records: 0, bytes: 0 });
  const watchdog = setInterval(() => {
    const now = performance.now();
    if (now - lastProgress > timeoutMs) {
      fail(new RetriableError(`changelog restore of ${o.topic} partitions [${[...pending].join(',')}] made no progress for ${timeoutMs} ms before reaching its marker`));
    } else if (now - lastLog >= (o.progressIntervalMs ?? 5_000)) {
      lastLog = now;
      o.logger.info({ topic: o.topic, pending: [...pending], ...total(), ms: Math.round(now - started) }, 'changelog restore in progress');
    }
  }, Math.min(1_000, o.progressIntervalMs ?? 5_000));
  const onAbort = () => fail(new RestoreAbortedError(`changelog restore of ${o.topic} partitions [${[...pending].join(',')}] aborted`));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch, heartbeat }) => {
        const r = results.get(batch.partition);
        if (!r || !pending.has(batch.partition)) {
          consumer.pause([{ topic: o.topic, partitions: [batch.partition] }]);
          return;
        }
        lastProgress = performance.now();
        const nonce = o.markers.get(batch.partition);
        let from = next.get(batch.partition)!;
        let read = 0;
        let beat = performance.now();
        try {
          for (const m of batch.messages) {
            if (o.signal?.aborted) return;
            const offset = Number(m.offset);
            if (offset < from) continue;
            from = offset + 1;
            const key = m.key?.toString('utf8');
            if (key === undefined) continue;
            r.records++;
            read++;
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
            if (o.onRecord) await o.onRecord(batch.partition, r.records);
            // One fetched batch can hold up to 50 MB: keep the restore consumer's own membership
            // alive while applying it (its session would otherwise expire mid-batch, and the
            // rejoin would deliver the partition again from the start).
            const now = performance.now();
            if (now - beat >= HEARTBEAT_CHECK_MS) {
              beat = now;
              lastProgress = now;
              await heartbeat();
            }
          }
        } finally {
          next.set(batch.partition, from);
          if (read > 0) o.onRecords?.(read);
        }
      },
    });
    await finished;
    return results;
  } finally {
    clearInterval(watchdog);
    o.signal?.removeEventListener('abort', onAbort);
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
