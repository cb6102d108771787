// Same-process A/B of the detector's per-event CPU from several checkouts, without a broker:
//   npx tsx load-tests/src/detector-ab.ts [--events N] [--terminals N] [--partitions N] [--batch N] [--rounds R] label=ROOT ...
// ROOT is a checkout of this repository with its own node_modules (`git worktree add --detach /tmp/old
// <commit> && (cd /tmp/old && npm ci)`; `.` is this one). Every checkout runs the work detector-cpu.ts
// times, each with its own modules (its detector task, rule engine, Avro serde, contract check and its
// own patched kafkajs's Produce request encoder): decode + validate, the detector task, the changelog
// values, the Produce request. They take the same input (the load test's fleet, Avro-encoded once) in
// alternating batches (order rotated per batch), each timed apart in process CPU time, so the load of
// other processes on a shared machine and the caches' state hit every checkout alike; separate runs
// on this VM vary by up to 1.5x within minutes, which no single-run figure survives.
// Garbage is charged to the checkout that made it: each batch starts after a young-generation
// collection that is not timed, and ends with one that is (otherwise one side's garbage is collected
// while the other runs, and a change that allocates less shows up on both sides).
// Prints per round each checkout's CPU µs per event and its ratio against the first (>1: less CPU than
// the first), then the medians over the rounds after the first (warm-up).
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { AvroSchemas, valueSubject, type Transaction } from '@tillwatch/schemas';
import { createAvroSerde, type RegistryClient } from '@tillwatch/stream';
import { produceTopicData } from './common.js';
import { encodedByPartition, partitionBatches } from './fleet-input.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('--events', 300_000);
const TERMINALS = arg('--terminals', 20_000);
const PARTITIONS = arg('--partitions', 6);
const BATCH = arg('--batch', 10_000);
const ROUNDS = arg('--rounds', 4);
const specs = process.argv
  .slice(2)
  .filter((a) => a.includes('=') && !a.startsWith('--'))
  .map((a) => {
    const [label, root] = a.split('=') as [string, string];
    return { label, root: resolve(root) };
  });
if (specs.length < 2) throw new Error('give at least two checkouts: label=ROOT label=ROOT');

// Loosely typed on purpose: each checkout's modules are their own (older ones lack newer exports).
/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;
interface Side {
  label: string;
  decode(buf: Buffer): unknown;
  newTasks(): Array<{ process(topic: string, records: unknown[], wall: number): { messages: Array<{ topic: string; key: string | Buffer | null; value: Buffer | null; partition?: number }> }; takeChanges(): Array<[string, Buffer | null]>; restore(m: Map<string, Buffer>): void }>;
  produce(o: object): Promise<unknown>;
  transactionsTopic: string;
  cpuMs: number;
}

const load = async (label: string, root: string): Promise<Side> => {
  const imp = (rel: string) => import(pathToFileURL(join(root, rel)).href) as Promise<Any>;
  const [detector, rules, schemas, stream, telemetry] = await Promise.all([
    imp('services/detector/src/index.ts'),
    imp('packages/rules/src/index.ts'),
    imp('schemas/src/index.ts'),
    imp('packages/stream/src/index.ts'),
    imp('packages/telemetry/src/index.ts'),
  ]);
  const registry = { register: async () => 1, getSchemaById: async () => schemas.AvroSchemas.transaction };
  const serde = async (schema: object) => {
    const s = stream.createAvroSerde(registry, schemas.valueSubject('bench'), schema);
    await s.init();
    return s;
  };
  const [txn, alert, action, update, reason] = await Promise.all([serde(schemas.AvroSchemas.transaction), serde(schemas.AvroSchemas.alert), serde(schemas.AvroSchemas.action), serde(schemas.AvroSchemas.alertUpdate), serde(schemas.AvroSchemas.refundReason)]);
  const validateOptions = { maxClockSkewMs: rules.defaultRulesConfig().engine.max_clock_skew };
  // As each checkout's detector validates a decoded transaction (in place where it can).
  const check = schemas.checkTransaction ?? schemas.validateTransaction;
  const require = createRequire(join(root, 'package.json'));
  const produceV3 = require('kafkajs/src/protocol/requests/produce/v3/request') as (o: unknown) => { encode(): Promise<unknown> };
  const metrics = telemetry.createDetectorMetrics(telemetry.createRegistry({ service: `ab-${label}`, defaultMetrics: false }));
  const T = schemas.Topics;
  return {
    label,
    transactionsTopic: T.transactions,
    decode: (buf) => check(txn.decode(buf), validateOptions),
    newTasks: () =>
      Array.from({ length: PARTITIONS }, (_, partition) => {
        const task = detector.createDetectorTask({
          partition,
          engine: rules.createRuleEngine(rules.defaultRulesConfig()),
          topics: { transactions: T.transactions, heartbeats: T.heartbeats, alerts: T.alerts, freezeActions: T.freezeActions, notifyActions: T.notifyActions, alertUpdates: T.alertUpdates, refundReasons: T.refundReasons, shadowAlerts: T.shadowAlerts },
          encodeAlert: (a: unknown) => alert.encode(a),
          encodeAction: (a: unknown) => action.encode(a),
          encodeUpdate: (u: unknown) => update.encode(u),
          encodeRefundReason: (r: unknown) => reason.encode(r),
          metrics,
          wallClockTimers: false,
        });
        task.restore(new Map());
        return task;
      }),
    produce: (o) => produceV3(o).encode(),
    cpuMs: 0,
  };
};
/* eslint-enable @typescript-eslint/no-explicit-any */

const sides: Side[] = [];
for (const s of specs) sides.push(await load(s.label, s.root));

// The input, once: the load test's fleet, Avro-encoded by this checkout's serde (the contract is the same for all).
const encoder = createAvroSerde<Transaction>({ register: async () => 1, getSchemaById: async () => AvroSchemas.transaction } as unknown as RegistryClient, valueSubject('bench'), AvroSchemas.transaction);
await encoder.init();
const byPartition = encodedByPartition(N, TERMINALS, PARTITIONS, (e) => encoder.encode(e));

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as (o?: { type: 'minor' | 'major' }) => void;
const cpuNow = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const sequences = new Map<Side, number>();

/** One partition's batch through one checkout, as detector-cpu.ts does it; returns the records it produced. */
async function step(side: Side, tasks: ReturnType<Side['newTasks']>, p: number, values: Buffer[], from: number): Promise<number> {
  gc({ type: 'minor' });
  const t0 = cpuNow();
  const records = values.map((v, i) => ({ topic: side.transactionsTopic, partition: p, offset: String(from + i), key: null, value: side.decode(v) }));
  const out = tasks[p]!.process(side.transactionsTopic, records, 0).messages;
  const changes = tasks[p]!.takeChanges();
  const messages = [...out, ...changes.map(([key, value]) => ({ topic: 'changelog', key, value, partition: p }))];
  const sequence = sequences.get(side) ?? 0;
  sequences.set(side, sequence + messages.length);
  await side.produce({ acks: -1, timeout: 30_000, transactionalId: `ab.${p}`, producerId: 1, producerEpoch: 0, topicData: produceTopicData(messages, p, sequence) });
  gc({ type: 'minor' });
  side.cpuMs += cpuNow() - t0;
  return out.length + changes.length;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const perRound = new Map<string, number[]>(sides.map((s) => [s.label, []]));
const outputs = new Map<string, number>();
console.log(`detector A/B: ${N.toLocaleString('en-US')} events, ${TERMINALS.toLocaleString('en-US')} terminals, ${PARTITIONS} partitions, batches of ${BATCH}; ${sides.map((s) => `${s.label}=${specs.find((x) => x.label === s.label)!.root}`).join(' ')}; load ${loadavg().map((x) => x.toFixed(2)).join(', ')}`);
for (let round = 0; round < ROUNDS; round++) {
  const tasks = new Map(sides.map((s) => [s, s.newTasks()]));
  for (const s of sides) s.cpuMs = 0;
  let turn = 0;
  for (const { p, from, values } of partitionBatches(byPartition, BATCH)) {
    for (let k = 0; k < sides.length; k++) {
      const side = sides[(turn + k) % sides.length]!;
      const n = await step(side, tasks.get(side)!, p, values, from);
      if (round === 0) outputs.set(side.label, (outputs.get(side.label) ?? 0) + n);
    }
    turn++;
  }
  const base = sides[0]!.cpuMs;
  console.log(`round ${round}: ` + sides.map((s) => `${s.label} ${((s.cpuMs * 1000) / N).toFixed(2)} µs/event (ratio ${(base / s.cpuMs).toFixed(3)})`).join(', ') + `  load ${loadavg()[0]!.toFixed(2)}`);
  for (const s of sides) perRound.get(s.label)!.push(s.cpuMs);
}
const warm = (xs: number[]) => (xs.length > 1 ? xs.slice(1) : xs);
const baseMed = warm(perRound.get(sides[0]!.label)!);
console.log(
  'median of rounds 1..: ' +
    sides
      .map((s) => {
        const xs = warm(perRound.get(s.label)!);
        const ratios = xs.map((x, i) => baseMed[i]! / x);
        return `${s.label} ${((median(xs) * 1000) / N).toFixed(2)} µs/event, ratio ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}), ${((outputs.get(s.label) ?? 0) / N).toFixed(3)} records out per event`;
      })
      .join('; '),
);
