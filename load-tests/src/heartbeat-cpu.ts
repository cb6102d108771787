// Issue 10's load check in process, without a broker: the detector's CPU per transaction with
// heartbeats on (one per terminal per minute, the load test's fleet and stagger) against off, on
// the path `npm run load:throughput -- 300000 20000 6 [--heartbeats]` takes per record minus the
// network: Avro decode + validation, the aligned step (aligned-step.ts: both inputs merged by
// received time), the detector task and its rule engine, changelog entities taken and encoded.
// Not here: kafkajs fetch decoding, copies of waiting records, produce encoding, the transaction.
// Off and on alternate in one process (fresh engines each run), so both see the same JIT and load.
//   node --expose-gc --import tsx load-tests/src/heartbeat-cpu.ts [events=300000] [terminals=20000] [partitions=6] [rounds=3] [stepMs=10000]
// stepMs: received time covered by one aligned step (a fetch of each input), per partition.
import { loadavg } from 'node:os';
import { createDetectorTask } from '@tillwatch/detector';
import { createRuleEngine, defaultRulesConfig } from '@tillwatch/rules';
import { fleetInput } from './fleet-input.js';
import { AvroSchemas, Topics, validateHeartbeat, validateTransaction, valueSubject, type Heartbeat, type Transaction } from '@tillwatch/schemas';
import { alignedStep, appendRecords, createAvroSerde, dropBefore, newInputBuffer, newPositions, type InputBuffer, type InputTopic, type RegistryClient, type Task } from '@tillwatch/stream';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';

const [eventsArg, terminalsArg, partitionsArg, roundsArg, stepArg] = process.argv.slice(2);
const N = Number(eventsArg ?? 300_000);
const TERMINALS = Number(terminalsArg ?? 20_000);
const PARTITIONS = Number(partitionsArg ?? 6);
const ROUNDS = Number(roundsArg ?? 3);
const STEP_MS = Number(stepArg ?? 10_000);

// An in-memory registry: every serde only reads the values it wrote (its own id).
let ids = 0;
const registry = { register: async () => ++ids } as unknown as RegistryClient;
const txn = createAvroSerde<Transaction>(registry, valueSubject('bench-tx'), AvroSchemas.transaction);
const hb = createAvroSerde<Heartbeat>(registry, valueSubject('bench-hb'), AvroSchemas.heartbeat);
const alert = createAvroSerde(registry, valueSubject('bench-alert'), AvroSchemas.alert);
const action = createAvroSerde(registry, valueSubject('bench-action'), AvroSchemas.action);
const update = createAvroSerde(registry, valueSubject('bench-update'), AvroSchemas.alertUpdate);
const reason = createAvroSerde(registry, valueSubject('bench-reason'), AvroSchemas.refundReason);
await Promise.all([txn.init(), hb.init(), alert.init(), action.init(), update.init(), reason.init()]);

// The load test's input (throughput.ts): the same fleet, heartbeats staggered over the minute.
const { events, heartbeats } = fleetInput(N, TERMINALS, true);
const hash = (s: string) => {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return (h >>> 0) % PARTITIONS;
};
interface Msg {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  time: number;
}
// Per partition and input: the log as kafkajs would hand it (encoded values, arrival order).
const logOf = <T extends { merchant_id: string; received_time: number }>(xs: T[], encode: (x: T) => Buffer): Msg[][] => {
  const logs: Msg[][] = Array.from({ length: PARTITIONS }, () => []);
  for (const x of xs) {
    const log = logs[hash(x.merchant_id)]!;
    log.push({ offset: String(log.length), key: Buffer.from(x.merchant_id), value: encode(x), time: x.received_time });
  }
  return logs;
};
const txLogs = logOf(events, (e) => txn.encode(e));
const hbLogs = logOf(heartbeats, (h) => hb.encode(h));

const topics = { transactions: Topics.transactions, heartbeats: Topics.heartbeats, alerts: Topics.alerts, freezeActions: Topics.freezeActions, notifyActions: Topics.notifyActions, alertUpdates: Topics.alertUpdates, refundReasons: Topics.refundReasons, shadowAlerts: Topics.shadowAlerts };
const validateOptions = { maxClockSkewMs: defaultRulesConfig().engine.max_clock_skew };
const receivedTime = (v: unknown) => (v as { received_time: number }).received_time;
const inputs = new Map<string, InputTopic>([
  [Topics.transactions, { topic: Topics.transactions, decode: (v) => validateTransaction(txn.decode(v), validateOptions), time: receivedTime }],
  [Topics.heartbeats, { topic: Topics.heartbeats, decode: (v) => validateHeartbeat(hb.decode(v), validateOptions), time: receivedTime }],
]);
const metrics = createDetectorMetrics(createRegistry({ service: 'hb-cpu-bench', defaultMetrics: false }));

/** One detector over the whole input; CPU µs per transaction, and what it wrote. */
async function run(withHeartbeats: boolean) {
  // Run with node --expose-gc: the previous run's engines are collected before this one starts.
  (globalThis as { gc?: () => void }).gc?.();
  let alerts = 0;
  let changelogRecords = 0;
  let outputs = 0;
  const cpu0 = process.cpuUsage();
  for (let p = 0; p < PARTITIONS; p++) {
    const built = createDetectorTask({ partition: p, engine: createRuleEngine(defaultRulesConfig()), topics, encodeAlert: (a) => alert.encode(a), encodeAction: (a) => action.encode(a), encodeUpdate: (u) => update.encode(u), encodeRefundReason: (r) => reason.encode(r), metrics, wallClockTimers: false, onAlerts: (a) => (alerts += a.length) });
    // HB_CPU_MIXED=0: the task without processMixed (one process() call per run of one topic).
    const task: Task = process.env.HB_CPU_MIXED === '0' ? { restore: (e) => built.restore(e), process: (t, r, w) => built.process(t, r, w), tick: (w) => built.tick(w), takeChanges: () => built.takeChanges() } : built;
    task.restore(new Map());
    const logs = new Map<string, Msg[]>([[Topics.transactions, txLogs[p]!], ...(withHeartbeats ? [[Topics.heartbeats, hbLogs[p]!] as const] : [])]);
    const inputTopics = [...logs.keys()];
    const positions = newPositions(inputTopics, () => false);
    const buffers = new Map(inputTopics.map((t) => [t, newInputBuffer<Msg>(false)]));
    const at = new Map(inputTopics.map((t) => [t, 0]));
    let until = Math.min(...[...logs.values()].map((l) => l[0]?.time ?? Infinity));
    for (;;) {
      until += STEP_MS;
      let left = false;
      for (const [t, log] of logs) {
        let i = at.get(t)!;
        const from = i;
        while (i < log.length && log[i]!.time < until) i++;
        const b = buffers.get(t)!;
        appendRecords(b, log.slice(from, i));
        at.set(t, i);
        b.fetchedToEnd = i >= log.length;
        if (i < log.length) left = true;
      }
      for (;;) {
        const step = await alignedStep({ task, partition: p, inputs, buffers: buffers as Map<string, InputBuffer<never>>, positions, wallMs: 0, chunk: 1_000, deadLetter: () => ({ topic: 'dlq', key: null, value: null }), gone: () => false });
        if (!step) break;
        const changes = task.takeChanges();
        changelogRecords += changes.length;
        outputs += step.messages.length;
        for (const [t, k] of step.taken) dropBefore(buffers.get(t)!, k);
        for (const f of step.done) f();
      }
      if (!left) break;
    }
    for (const [t, b] of buffers) if (b.records.length - b.start > 0) throw new Error(`${t}: ${b.records.length - b.start} records left in partition ${p}`);
  }
  const cpu = process.cpuUsage(cpu0);
  return { cpuMicrosPerTx: Math.round(((cpu.user + cpu.system) / events.length) * 100) / 100, alerts, outputs, changelogRecordsPerTx: Math.round((changelogRecords / events.length) * 1000) / 1000 };
}

console.error(`${events.length} transactions, ${heartbeats.length} heartbeats (${(heartbeats.length / events.length).toFixed(2)} per transaction), ${TERMINALS} terminals, ${PARTITIONS} partitions, steps of ${STEP_MS} ms`);
const ratios: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  // Order alternated per round (the second run of a pair has a warmer process).
  const order = r % 2 === 0 ? [false, true] : [true, false];
  const res: Record<string, Awaited<ReturnType<typeof run>>> = {};
  for (const on of order) res[on ? 'on' : 'off'] = await run(on);
  const ratio = Math.round((res.on!.cpuMicrosPerTx / res.off!.cpuMicrosPerTx) * 1000) / 1000;
  ratios.push(ratio);
  console.log(JSON.stringify({ round: r + 1, off: res.off, on: res.on, cpuRatioOnOff: ratio, loadAverage: loadavg().map((x) => Math.round(x * 100) / 100) }));
}
ratios.sort((a, b) => a - b);
console.log(JSON.stringify({ medianCpuRatioOnOff: ratios[Math.floor(ratios.length / 2)] }));
