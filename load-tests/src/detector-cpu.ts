// The detector's CPU per event, stage by stage, in one process and without a broker: the work
// `npm run load:throughput` does per event minus the network (fetch decoding, transaction round
// trips, the broker's own CPU). Deterministic input (the load test's fleet), so a change's effect
// shows here even when the shared machine is too busy for events/s to mean anything.
//   npx tsx load-tests/src/detector-cpu.ts [events=300000] [terminals=20000] [partitions=6] [batch=2000] [chunk=batch]
// Stages, each timed in process CPU time over the whole run (µs per input event):
//   decode   Avro decode (Confluent wire format, through the serde) + contract validation
//   rules    the detector task: rule engine, outputs encoded as Avro
//   changes  changelog entities taken and encoded (takeChanges)
//   produce  kafkajs's Produce request encoding of the batch's outputs (record batches, CRC-32C)
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { createDetectorTask } from '@tillwatch/detector';
import { createRuleEngine, defaultRulesConfig } from '@tillwatch/rules';
import { AvroSchemas, Topics, validateTransaction, valueSubject, type Transaction } from '@tillwatch/schemas';
import { createAvroSerde, type DecodedRecord, type OutputMessage, type RegistryClient } from '@tillwatch/stream';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import { produceTopicData, type ProducePartitionData } from './common.js';
import { encodedByPartition, partitionBatches } from './fleet-input.js';

const [eventsArg, terminalsArg, partitionsArg, batchArg] = process.argv.slice(2);
const N = Number(eventsArg ?? 300_000);
const TERMINALS = Number(terminalsArg ?? 20_000);
const PARTITIONS = Number(partitionsArg ?? 6);
const BATCH = Number(batchArg ?? 2_000);
const CHUNK = Number(process.argv[6] ?? BATCH);

// An in-memory registry: every subject's schema gets id 1 (each serde only sees its own).
const registry = { register: async () => 1, getSchemaById: async () => AvroSchemas.transaction } as unknown as RegistryClient;
const serde = <T>(schema: object) => createAvroSerde<T>(registry, valueSubject('bench'), schema);
const txn = serde<Transaction>(AvroSchemas.transaction);
const alert = serde(AvroSchemas.alert);
const action = serde(AvroSchemas.action);
const update = serde(AvroSchemas.alertUpdate);
const reason = serde(AvroSchemas.refundReason);
await Promise.all([txn.init(), alert.init(), action.init(), update.init(), reason.init()]);

const require = createRequire(import.meta.url);
// kafkajs's own Produce v3 request (the version the producer uses against Kafka ≥ 0.11 for v3–v7).
const produceV3 = require('kafkajs/src/protocol/requests/produce/v3/request') as (o: unknown) => { encode(): Promise<{ buffer: Buffer }> };

const byPartition = encodedByPartition(N, TERMINALS, PARTITIONS, (e) => txn.encode(e));

const metrics = createDetectorMetrics(createRegistry({ service: 'cpu-bench', defaultMetrics: false }));
const tasks = byPartition.map((_, partition) =>
  createDetectorTask({
    partition,
    engine: createRuleEngine(defaultRulesConfig()),
    topics: { transactions: Topics.transactions, heartbeats: Topics.heartbeats, alerts: Topics.alerts, freezeActions: Topics.freezeActions, notifyActions: Topics.notifyActions, alertUpdates: Topics.alertUpdates, refundReasons: Topics.refundReasons, shadowAlerts: Topics.shadowAlerts },
    encodeAlert: (a) => alert.encode(a),
    encodeAction: (a) => action.encode(a),
    encodeUpdate: (u) => update.encode(u),
    encodeRefundReason: (r) => reason.encode(r),
    metrics,
    wallClockTimers: false,
  }),
);
for (const t of tasks) t.restore(new Map());

// Process CPU time in ms (user + system): steadier than wall time on a shared machine.
const cpuNow = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const validateOptions = { maxClockSkewMs: defaultRulesConfig().engine.max_clock_skew };
const ms = { decode: 0, rules: 0, changes: 0, produce: 0 };
let outputs = 0;
let changelogRecords = 0;
let changelogBytes = 0;
let sequence = 0;
// A few partitions' worth of outputs, kept for the A/B of the two record batch encoders below.
const kept: ProducePartitionData[] = [];
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (const { p, from, values } of partitionBatches(byPartition, BATCH)) {
  let t = 0;
  const result: { messages: OutputMessage[] } = { messages: [] };
  // Decoded and processed CHUNK records at a time, changes taken once per batch (as the processor does).
  for (let c = 0; c < values.length; c += CHUNK) {
    t = cpuNow();
    const records: DecodedRecord[] = values.slice(c, c + CHUNK).map((v, i) => ({ topic: Topics.transactions, partition: p, offset: String(from + c + i), key: null, value: validateTransaction(txn.decode(v), validateOptions) }));
    ms.decode += cpuNow() - t;
    t = cpuNow();
    for (const m of tasks[p]!.process(Topics.transactions, records, 0).messages) result.messages.push(m);
    ms.rules += cpuNow() - t;
  }
  t = cpuNow();
  const changes = tasks[p]!.takeChanges().map(([key, value]): OutputMessage => ({ topic: 'changelog', key, value, partition: p }));
  ms.changes += cpuNow() - t;
  changelogRecords += changes.length;
  for (const c of changes) changelogBytes += c.value?.length ?? 0;
  t = cpuNow();
  const messages = [...result.messages, ...changes];
  outputs += messages.length;
  const topicData = produceTopicData(messages, p, sequence);
  sequence += messages.length;
  if (kept.length < 6) kept.push(...topicData.map((t) => t.partitions[0]));
  await produceV3({ acks: -1, timeout: 30_000, transactionalId: `bench.${p}`, producerId: 1, producerEpoch: 0, topicData }).encode();
  ms.produce += cpuNow() - t;
}
const wall = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const us = (x: number) => Math.round(((x * 1000) / N) * 100) / 100;
const result = {
  events: N,
  terminals: TERMINALS,
  partitions: PARTITIONS,
  batch: BATCH,
  chunk: CHUNK,
  cpuMicrosPerEvent: Math.round(((cpu.user + cpu.system) / N) * 100) / 100,
  wallMicrosPerEvent: us(wall),
  stageMicrosPerEvent: { decode: us(ms.decode), rules: us(ms.rules), changes: us(ms.changes), produce: us(ms.produce) },
  outputsPerEvent: Math.round((outputs / N) * 1000) / 1000,
  changelogRecordsPerEvent: Math.round((changelogRecords / N) * 1000) / 1000,
  changelogBytesPerRecord: Math.round(changelogBytes / Math.max(1, changelogRecords)),
  loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
};
console.log(JSON.stringify(result));

// The patched kafkajs's two record batch encoders (produce/v3/request.js) on the same outputs,
// alternated in this process: the fast path the detector's records take, and kafkajs's own.
const paths = (produceV3 as unknown as Record<symbol, Record<'fast' | 'reference', (...a: unknown[]) => unknown> | undefined>)[Symbol.for('tillwatch.kafkajs.produceV3.paths')];
if (paths) {
  const records = kept.reduce((a, k) => a + k.messages.length, 0);
  const run = async (name: 'fast' | 'reference') => {
    const t = cpuNow();
    for (const k of kept) await (name === 'fast' ? paths.fast({ ...k, transactionalId: 'bench', producerId: 1, producerEpoch: 0 }) : paths.reference(0, { ...k, transactionalId: 'bench', producerId: 1, producerEpoch: 0 }));
    return ((cpuNow() - t) * 1000) / records;
  };
  for (let round = 0; round < 3; round++) {
    const ref = await run('reference');
    const fast = await run('fast');
    console.log(`record batch encoding, round ${round}: ${records} records; CPU µs/record reference ${ref.toFixed(2)}, fast ${fast.toFixed(2)} (${(ref / fast).toFixed(1)}x)`);
  }
}
