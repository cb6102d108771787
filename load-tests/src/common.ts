// Shared pieces of the load tests: run-scoped topics on the configured Kafka (the local stack by
// default), fast event generation, percentile maths and result files.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { cpus, totalmem } from 'node:os';
import type { Kafka } from 'kafkajs';
import { AvroSchemas, valueSubject, type Heartbeat, type Transaction } from '@tillwatch/schemas';
import { createAvroSerde, groupCaughtUp, type RegistryClient } from '@tillwatch/stream';

export const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));

export function writeResult(name: string, result: Record<string, unknown>): string {
  mkdirSync(resultsDir, { recursive: true });
  const path = join(resultsDir, `${name}.json`);
  const machine = { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30) };
  writeFileSync(path, `${JSON.stringify({ name, at: new Date().toISOString(), machine, ...result }, null, 2)}\n`);
  return path;
}

/** Publishes pre-encoded events as fast as the producer allows (acks=all, batches of 2,000); keyed by merchant_id. */
export async function publish(kafka: Kafka, registry: RegistryClient, topic: string, events: Transaction[]): Promise<{ ms: number }>;
export async function publish(kafka: Kafka, registry: RegistryClient, topic: string, events: Heartbeat[], schema: 'heartbeat'): Promise<{ ms: number }>;
export async function publish(kafka: Kafka, registry: RegistryClient, topic: string, events: Array<{ merchant_id: string }>, schema: 'transaction' | 'heartbeat' = 'transaction'): Promise<{ ms: number }> {
  const serde = createAvroSerde<{ merchant_id: string }>(registry, valueSubject(topic), AvroSchemas[schema]);
  await serde.init();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const t0 = performance.now();
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < events.length; i += 2000) {
    const messages = events.slice(i, i + 2000).map((e) => ({ key: e.merchant_id, value: serde.encode(e) }));
    inFlight.push(producer.send({ topic, acks: -1, messages }));
    if (inFlight.length >= 4) await inFlight.shift();
  }
  await Promise.all(inFlight);
  const ms = performance.now() - t0;
  await producer.disconnect();
  return { ms };
}

export function percentiles(values: number[], ps: number[]): Record<string, number> {
  const sorted = Float64Array.from(values).sort();
  const out: Record<string, number> = {};
  for (const p of ps) {
    const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    out[`p${p}`] = sorted.length ? Math.round(sorted[idx]! * 10) / 10 : NaN;
  }
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function committedEnd(kafka: Kafka, groupId: string, topic: string): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await groupCaughtUp(admin, groupId, topic);
  } finally {
    await admin.disconnect();
  }
}

export const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

/** One partition's records in a Produce request, numbered from firstSequence (idempotent producer). */
export interface ProducePartitionData {
  partition: number;
  firstSequence: number;
  messages: Array<{ key: string | Buffer | null; value: Buffer | null }>;
}

/**
 * A task's outputs as a Produce request's topic data, as detector-cpu.ts and detector-ab.ts encode
 * them without a broker: per topic one partition (the first record's, else `partition`), records in
 * order, numbered from firstSequence.
 */
export function produceTopicData(
  messages: ReadonlyArray<{ topic: string; partition?: number | undefined; key: string | Buffer | null; value: Buffer | null }>,
  partition: number,
  firstSequence: number,
): Array<{ topic: string; partitions: [ProducePartitionData] }> {
  const byTopic = new Map<string, ProducePartitionData>();
  for (const m of messages) {
    let e = byTopic.get(m.topic);
    if (!e) byTopic.set(m.topic, (e = { partition: m.partition ?? partition, firstSequence, messages: [] }));
    e.messages.push({ key: m.key, value: m.value });
  }
  return [...byTopic].map(([topic, d]) => ({ topic, partitions: [d] }));
}
