// Event-to-action latency of the live pipeline with the second stage, on the real broker:
//   KAFKA_BROKERS=... SCHEMA_REGISTRY_URL=... npx tsx services/stage/bench/live-latency.ts [events/s] [seconds] [--wait-ready] [--warmup=S] [--grace=MS] [--probes=K]
// Run-scoped topics (6 partitions); detector (in-process, stage mode, wall-clock timers on) and stage
// (in-process). Transactions are produced at the given rate with received_time = now (one
// long-lived idempotent producer, a batch every 100 ms); 1 % are refunds of unknown sales
// (refund_without_sale: FREEZE_TERMINAL + NOTIFY_ACQUIRER proposed) and 0.5 % arrive 20 min late
// (sync_lag: NOTIFY_MERCHANT proposed). For every governor decision the stage commits, wall time
// minus the proposing action's time (its issued_at = the detector's clock at the event, which is
// the event's received_time or a few ms after it) is recorded; prints p50/p90/p99/max, counts and
// the stage's input records per second.
//
// Breakdown (observed from outside the services: the bench hands both a Kafka client whose
// producers and consumers it watches, nothing in the services changes for it). Per decision:
//   detectorCommit  the detector transaction holding the proposed action committed (stage input visible)
//   stageFetch      the stage fetched the batch holding the action record
//   released        the stage fetched the watermark batch that made min(watermarks) > the action's time
//                   (its core applies the action in that batch); `holder` = the detector partition whose
//                   watermark was the last to pass, `holderFromTick` = that watermark came from a tick
//                   transaction (no consumed offsets) rather than a batch
//   committed       the stage's transaction with the decision committed (= the latency above)
// --grace=MS: the detector's stage watermark grace (default 5000, services/detector/src/stage-output.ts).
// --probes=K (default 3): after the run, K lone refunds 10 s apart with no other input (quietProbes).
// --wait-ready: produce only once the detector and the stage joined their groups and restored
// (otherwise the first events wait for the groups to form: a cold start). --warmup=S (default 10):
// figures are also given for events received S seconds or more after production began.
// Topics are deleted at the end.
import type { Kafka, Consumer, ConsumerRunConfig, Producer, ProducerConfig, ConsumerConfig, EachBatchPayload, Transaction as KafkaTxn } from 'kafkajs';
import { AvroSchemas, valueSubject, type Transaction } from '@tillwatch/schemas';
import { defaultRulesConfig } from '@tillwatch/rules';
import { createDetector } from '@tillwatch/detector';
import { createAvroSerde, deleteScopedTopics, provisionScopedTopics, randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import { createStage } from '../src/stage.js';
import { createStageMetrics } from '../src/metrics.js';

const args = process.argv.slice(2);
const positional = args.filter((a) => !a.startsWith('--'));
const rate = Number(positional[0] ?? 1000);
const seconds = Number(positional[1] ?? 20);
const waitReady = args.includes('--wait-ready');
const warmup = Number(args.find((a) => a.startsWith('--warmup='))?.slice('--warmup='.length) ?? 10);
const graceArg = args.find((a) => a.startsWith('--grace='))?.slice('--grace='.length);
const probes = Number(args.find((a) => a.startsWith('--probes='))?.slice('--probes='.length) ?? 3);
const PARTITIONS = 6;

const { kafka: baseKafka, registry, logger } = testKafka('stage-bench');
const prefix = randomId('stagebench');
const topics = await provisionScopedTopics(baseKafka, registry, PARTITIONS, prefix);
const stageGroup = randomId('g-stage');

interface Trace {
  time: number; // the action's time (issued_at)
  detectorCommit?: number;
  stageFetch?: number;
  released?: number;
  holder?: number;
  holderFromTick?: boolean;
  committed?: number;
}
const traces = new Map<string, Trace>();
/** Commit wall time and origin of each watermark, by `partition:time`. */
const watermarkCommits = new Map<string, { at: number; fromTick: boolean }>();
let tickWatermarks = 0;
let batchWatermarks = 0;
let idleMarks = 0;

interface StageRecordLike { type: string; partition: number; time: number; idle?: boolean; action?: { action_id: string } }
const parse = (v: Buffer | null): StageRecordLike | null => {
  if (!v) return null;
  try {
    return JSON.parse(v.toString('utf8')) as StageRecordLike;
  } catch {
    return null;
  }
};

// The detector's transactions: which stage records they carried, when they committed, tick or batch.
function watchProducer(p: Producer): Producer {
  const transaction = p.transaction.bind(p);
  p.transaction = async (): Promise<KafkaTxn> => {
    const txn = await transaction();
    const records: StageRecordLike[] = [];
    let offsets = false;
    const sendBatch = txn.sendBatch.bind(txn);
    const sendOffsets = txn.sendOffsets.bind(txn);
    const commit = txn.commit.bind(txn);
    txn.sendBatch = (batch) => {
      for (const tm of batch.topicMessages ?? []) {
        if (tm.topic !== topics.stageInput) continue;
        for (const m of tm.messages) {
          const r = parse(m.value as Buffer | null);
          if (r) records.push(r);
        }
      }
      return sendBatch(batch);
    };
    txn.sendOffsets = (o) => {
      offsets = true;
      return sendOffsets(o);
    };
    txn.commit = async () => {
      await commit();
      const at = Date.now();
      for (const r of records) {
        if (r.type === 'action' && r.action) {
          const t = traces.get(r.action.action_id) ?? { time: r.time };
          t.detectorCommit = at;
          traces.set(r.action.action_id, t);
        } else if (r.type === 'watermark') {
          if (r.idle) idleMarks++;
          else if (offsets) batchWatermarks++;
          else tickWatermarks++;
          watermarkCommits.set(`${r.partition}:${r.time}`, { at, fromTick: !offsets });
        }
      }
    };
    return txn;
  };
  return p;
}

// The stage's fetches: a mirror of its watermark frontier (packages/stage core: min over partitions
// that are not idle, a record is applied once the minimum is above its time).
const wm: Array<number | null> = new Array<number | null>(PARTITIONS).fill(null);
const idle: boolean[] = new Array<boolean>(PARTITIONS).fill(false);
const waiting: string[] = [];
function frontier(): number {
  let min = Infinity;
  for (let p = 0; p < PARTITIONS; p++) {
    if (idle[p]) continue;
    const w = wm[p];
    if (w === null || w === undefined) return -Infinity;
    if (w < min) min = w;
  }
  return min;
}
function release(at: number, by: { partition: number; fromTick: boolean } | undefined): void {
  const min = frontier();
  for (let i = waiting.length - 1; i >= 0; i--) {
    const t = traces.get(waiting[i]!)!;
    if (t.time >= min) continue;
    t.released = at;
    if (by) {
      t.holder = by.partition;
      t.holderFromTick = by.fromTick;
    }
    waiting.splice(i, 1);
  }
}
function observeStageBatch(payload: EachBatchPayload): void {
  const at = Date.now();
  for (const m of payload.batch.messages) {
    const r = parse(m.value);
    if (!r) continue;
    if (r.type === 'watermark') {
      if (r.idle) {
        if (wm[r.partition] === null) idle[r.partition] = true;
        continue;
      }
      idle[r.partition] = false;
      const prev = wm[r.partition];
      if (prev === null || prev === undefined || r.time > prev) {
        wm[r.partition] = r.time;
        // Attributed to the watermark that moved the frontier past the action (the core applies
        // the whole fetched batch, then releases: the wall time is the batch's either way).
        release(at, { partition: r.partition, fromTick: watermarkCommits.get(`${r.partition}:${r.time}`)?.fromTick ?? false });
      }
    } else if (r.type === 'action' && r.action) {
      const t = traces.get(r.action.action_id) ?? { time: r.time };
      t.stageFetch = at;
      traces.set(r.action.action_id, t);
      waiting.push(r.action.action_id);
    }
  }
  release(at, undefined);
}

function watchConsumer(c: Consumer, groupId: string): Consumer {
  if (groupId !== stageGroup) return c;
  const run = c.run.bind(c);
  c.run = (cfg?: ConsumerRunConfig) => {
    const each = cfg?.eachBatch;
    if (!each) return run(cfg);
    return run({
      ...cfg,
      eachBatch: (payload) => {
        observeStageBatch(payload);
        return each(payload);
      },
    });
  };
  return c;
}

const kafka = new Proxy(baseKafka, {
  get(target, prop, receiver) {
    if (prop === 'producer') return (cfg?: ProducerConfig) => watchProducer(target.producer(cfg));
    if (prop === 'consumer') return (cfg: ConsumerConfig) => watchConsumer(target.consumer(cfg), cfg.groupId);
    const v: unknown = Reflect.get(target, prop, receiver);
    return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
  },
}) as Kafka;

const stageMetrics = createStageMetrics(createRegistry({ service: 'stage-bench', defaultMetrics: false }));
const detector = createDetector({
  kafka,
  registry,
  rules: defaultRulesConfig(),
  metrics: createDetectorMetrics(createRegistry({ service: 'detector-bench', defaultMetrics: false })),
  logger,
  groupId: randomId('g-det'),
  topics: { ...topics, changelog: topics.detectorChangelog },
  stage: { topic: topics.stageInput, ...(graceArg !== undefined ? { graceMs: Number(graceArg) } : {}) },
});
const stage = createStage({
  kafka,
  registry,
  rules: defaultRulesConfig(),
  metrics: stageMetrics,
  logger,
  groupId: stageGroup,
  topics: { ...topics, input: topics.stageInput, changelog: topics.stageChangelog },
  onCommitted: (out) => {
    const wall = Date.now();
    for (const d of out.decisions) {
      const t = traces.get(d.action_id) ?? { time: d.decided_at };
      t.committed = wall;
      traces.set(d.action_id, t);
    }
  },
});

const quantiles = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { n: s.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: s.at(-1) ?? NaN };
};

const serde = createAvroSerde<Transaction>(registry, valueSubject(topics.transactions), AvroSchemas.transaction);
await serde.init();
const producer = baseKafka.producer({ idempotent: true, maxInFlightRequests: 1 });
try {
  await producer.connect();
  const t0 = Date.now();
  await Promise.all([detector.start(), stage.start()]);
  if (waitReady) while (!detector.ready() || !stage.ready()) await new Promise((r) => setTimeout(r, 50));
  const readyAfterMs = Date.now() - t0;
  let seq = 0;
  const seqs = new Map<string, number>();
  const started = Date.now();
  let sent = 0;
  while (Date.now() - started < seconds * 1000) {
    const tick = Date.now();
    const batch: Transaction[] = [];
    for (let i = 0; i < rate / 10; i++) {
      const n = ++seq;
      const term = `T${n % 600}`;
      const s = (seqs.get(term) ?? 0) + 1;
      seqs.set(term, s);
      const now = Date.now();
      const r = (n * 7919) % 1000;
      const refund = r < 10;
      const late = r >= 10 && r < 15;
      batch.push({
        event_id: `ev-${prefix}-${n}`, txn_id: `tx-${n}`, kind: refund ? 'REFUND' : 'SALE', status: 'APPROVED', terminal_id: term, merchant_id: `M${n % 300}`,
        card_token: `tok_${n % 5000}`, amount_minor: 1000 + (n % 900), currency: 'EUR', terminal_seq: s, original_txn_id: refund ? `unknown-${n}` : null,
        event_time: late ? now - 20 * 60_000 : now - 500, received_time: now,
      });
    }
    for (let i = 0; i < batch.length; i += 500) {
      await producer.send({ topic: topics.transactions, acks: -1, messages: batch.slice(i, i + 500).map((e) => ({ key: e.merchant_id, value: serde.encode(e) })) });
    }
    sent += batch.length;
    await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - tick))));
  }
  const producedFor = (Date.now() - started) / 1000;
  // Let the last decisions through.
  await new Promise((r) => setTimeout(r, 8000));
  const elapsed = (Date.now() - started) / 1000;
  // Quiet-input probes: the input stops; then one refund of an unknown sale at a time, alone, every
  // 10 s. Nothing else arrives, so the other partitions' watermarks only move by their ticks
  // (max(latest received time, clock - grace)): what a proposal waits for when the fleet is quiet.
  const probeFrom = Date.now();
  for (let k = 0; k < probes; k++) {
    const n = ++seq;
    const now = Date.now();
    const e: Transaction = {
      event_id: `ev-${prefix}-${n}`, txn_id: `tx-${n}`, kind: 'REFUND', status: 'APPROVED', terminal_id: `T${n % 600}`, merchant_id: `M${n % 300}`, card_token: `tok_${n % 5000}`,
      amount_minor: 1000, currency: 'EUR', terminal_seq: (seqs.get(`T${n % 600}`) ?? 0) + 1, original_txn_id: `unknown-${n}`, event_time: now - 500, received_time: now,
    };
    seqs.set(e.terminal_id, e.terminal_seq);
    await producer.send({ topic: topics.transactions, acks: -1, messages: [{ key: e.merchant_id, value: serde.encode(e) }] });
    await new Promise((r) => setTimeout(r, 10_000));
  }
  const stageRecords = (await stageMetrics.consumed.get()).values.reduce((n, v) => n + v.value, 0);
  // Records that reached the stage below its frontier (delayed past the grace): applied out of order.
  const lateRecords = (await stageMetrics.late.get()).values[0]?.value ?? 0;
  const all = [...traces.values()].filter((t) => t.committed !== undefined);
  const done = all.filter((t) => t.time < probeFrom);
  const probed = all.filter((t) => t.time >= probeFrom);
  const after = done.filter((t) => t.time - started >= warmup * 1000);
  // Released by a batch's watermark (every partition busy) vs by a tick's (a partition went quiet:
  // here, the end of the input; its watermark then trails the clock by the grace).
  const byBatch = after.filter((t) => t.holderFromTick !== true);
  const byTick = done.filter((t) => t.holderFromTick === true);
  const seg = (ts: Trace[], from: keyof Trace, to: keyof Trace) =>
    quantiles(ts.filter((t) => typeof t[from] === 'number' && typeof t[to] === 'number').map((t) => (t[to] as number) - (t[from] as number)));
  const breakdown = (ts: Trace[]) => ({
    eventToAction: seg(ts, 'time', 'committed'),
    eventToDetectorCommit: seg(ts, 'time', 'detectorCommit'),
    detectorCommitToStageFetch: seg(ts, 'detectorCommit', 'stageFetch'),
    stageFetchToRelease: seg(ts, 'stageFetch', 'released'),
    releaseToStageCommit: seg(ts, 'released', 'committed'),
  });
  const slowest = [...done].sort((a, b) => (b.committed! - b.time) - (a.committed! - a.time)).slice(0, 8);
  console.log(JSON.stringify({
    eventsSent: sent, targetRate: rate, grace: graceArg === undefined ? 'default' : Number(graceArg), producedRate: Math.round(sent / producedFor), seconds: +elapsed.toFixed(1), waitReady, readyAfterMs,
    decisions: done.length,
    all: breakdown(done),
    [`afterWarmup${warmup}s`]: breakdown(after),
    afterWarmupReleasedByBatchWatermark: breakdown(byBatch),
    releasedByTickWatermark: breakdown(byTick),
    quietProbes: { probes, decisions: probed.length, ...breakdown(probed) },
    slowest: slowest.map((t) => ({ atS: +((t.time - started) / 1000).toFixed(1), total: t.committed! - t.time, toDetectorCommit: (t.detectorCommit ?? NaN) - t.time, toStageFetch: (t.stageFetch ?? NaN) - t.time, toRelease: (t.released ?? NaN) - t.time, holder: t.holder, holderFromTick: t.holderFromTick })),
    watermarks: { batch: batchWatermarks, tick: tickWatermarks, idle: idleMarks },
    stageInputRecords: stageRecords, stageInputRecordsPerSecond: Math.round(stageRecords / elapsed), stageLateRecords: lateRecords,
  }, null, 1));
} finally {
  await producer.disconnect();
  await detector.stop();
  await stage.stop();
  await deleteScopedTopics(baseKafka, topics);
}
