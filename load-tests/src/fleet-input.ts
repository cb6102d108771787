// The throughput load test's input, shared by throughput.ts (through Kafka) and heartbeat-cpu.ts
// (in process): the simulator's fleet (seed 1, 10 cards per terminal, 0.5 % anomalies) from
// 2026-01-05 09:00 UTC, and with heartbeats one per terminal per minute, spread over the minute
// (each new second of event time, the terminals whose slot it is: index mod 60).
import { createFleet } from '@tillwatch/simulator';
import type { Heartbeat, Transaction } from '@tillwatch/schemas';

export function fleetInput(n: number, terminals: number, withHeartbeats: boolean): { events: Transaction[]; heartbeats: Heartbeat[] } {
  const fleet = createFleet({ terminals, cards: terminals * 10, seed: 1, anomalyRate: 0.005 });
  const events: Transaction[] = [];
  const heartbeats: Heartbeat[] = [];
  let now = Date.UTC(2026, 0, 5, 9);
  let second = Math.floor(now / 1000);
  while (events.length < n) {
    now += 2;
    for (const e of fleet.next(now)) events.push(e);
    if (withHeartbeats && Math.floor(now / 1000) !== second) {
      second = Math.floor(now / 1000);
      const all = fleet.heartbeats(now);
      for (let i = second % 60; i < all.length; i += 60) heartbeats.push(all[i]!);
    }
  }
  return { events, heartbeats };
}

/**
 * The fleet's transactions (fleetInput, no heartbeats) encoded and split by merchant into `partitions`
 * lists, as detector-cpu.ts and detector-ab.ts feed their tasks without a broker (a fixed hash of
 * merchant_id, not Kafka's partitioner: only that a merchant stays on one partition matters there).
 */
export function encodedByPartition(n: number, terminals: number, partitions: number, encode: (t: Transaction) => Buffer): Buffer[][] {
  const out: Buffer[][] = Array.from({ length: partitions }, () => []);
  for (const e of fleetInput(n, terminals, false).events) {
    let h = 0;
    for (let i = 0; i < e.merchant_id.length; i++) h = (Math.imul(h, 31) + e.merchant_id.charCodeAt(i)) | 0;
    out[(h >>> 0) % partitions]!.push(encode(e));
  }
  return out;
}

/**
 * The batches detector-cpu.ts and detector-ab.ts feed their tasks: BATCH-sized slices of every
 * partition's list, partition by partition for each offset `from`, until all lists are used up.
 */
export function* partitionBatches<T>(byPartition: T[][], batch: number): Generator<{ p: number; from: number; values: T[] }> {
  for (let from = 0; byPartition.some((list) => list.length > from); from += batch) {
    for (let p = 0; p < byPartition.length; p++) {
      const values = byPartition[p]!.slice(from, from + batch);
      if (values.length > 0) yield { p, from, values };
    }
  }
}
