// Rebalance stall after a kill -9: two detector processes (the real CLI) in one group on one
// topic, a steady feed, one process killed hard. Measures how long the killed member's partitions
// commit nothing (the survivor only takes them over once the dead member's session expires, then
// restores them from the changelog) and the longest time no partition of the group committed.
//   npx tsx load-tests/src/stall.ts [partitions=6] [rate=1000]
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { createFleet } from '@tillwatch/simulator';
import { deleteScopedTopics, provisionScopedTopics, randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { AvroSchemas, valueSubject, type Transaction } from '@tillwatch/schemas';
import { createAvroSerde } from '@tillwatch/stream';
import { sleep, writeResult } from './common.js';

const PARTITIONS = Number(process.argv[2] ?? 6);
const RATE = Number(process.argv[3] ?? 1000);
const cli = fileURLToPath(new URL('../../services/cli/bin/tillwatch.js', import.meta.url));
const { kafka, registry } = testKafka('load-stall');
const prefix = randomId('stall');
const topics = await provisionScopedTopics(kafka, registry, PARTITIONS, prefix);
const groupId = randomId('g-stall');
const admin = kafka.admin();
await admin.connect();

function detector(): ChildProcess {
  return spawn(process.execPath, [cli, 'detector'], {
    env: { ...process.env, TOPIC_PREFIX: prefix, DETECTOR_GROUP_ID: groupId, HTTP_PORT: '0', LOG_LEVEL: 'warn', DETECTOR_WALL_CLOCK_TIMERS: 'false' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function committed(): Promise<number[]> {
  const [c] = await admin.fetchOffsets({ groupId, topics: [topics.transactions] });
  const out = new Array<number>(PARTITIONS).fill(-1);
  for (const p of c?.partitions ?? []) out[p.partition] = Number(p.offset);
  return out;
}

const children: ChildProcess[] = [];
let feeding = true;
try {
  const fleet = createFleet({ terminals: 2_000, seed: 3, anomalyRate: 0.005 });
  let now = Date.UTC(2026, 0, 5, 9);
  const serde = createAvroSerde<Transaction>(registry, valueSubject(topics.transactions), AvroSchemas.transaction);
  await serde.init();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // A steady feed of RATE events/s, in ten slices a second.
  const feed = (async () => {
    while (feeding) {
      const t = performance.now();
      const events: Transaction[] = [];
      while (events.length < RATE / 10) {
        now += 5;
        for (const e of fleet.next(now)) events.push(e);
      }
      await producer.send({ topic: topics.transactions, acks: -1, messages: events.map((e) => ({ key: e.merchant_id, value: serde.encode(e) })) });
      await sleep(Math.max(0, 100 - (performance.now() - t)));
    }
  })();
  children.push(detector(), detector());
  // Both members working: every partition has committed progress twice.
  const start = await committed();
  for (let seen = 0; ; ) {
    await sleep(500);
    const c = await committed();
    if (c.every((o, p) => o > start[p]! && o > 0)) if (++seen >= 4) break;
  }
  const before = await committed();
  await sleep(2000);
  const after = await committed();
  const killedAt = performance.now();
  children[1]!.kill('SIGKILL');
  const atKill = await committed();
  // Partitions that were progressing (all of them) must progress again; time each one's gap.
  const lastMove = atKill.map(() => killedAt);
  const resumed = new Array<number | undefined>(PARTITIONS).fill(undefined);
  let prev = atKill;
  let longestGroupGap = 0;
  let lastAnyMove = killedAt;
  while (resumed.some((r) => r === undefined) && performance.now() - killedAt < 180_000) {
    await sleep(100);
    const c = await committed();
    const t = performance.now();
    let any = false;
    c.forEach((o, p) => {
      if (o > prev[p]!) {
        any = true;
        if (resumed[p] === undefined && t - lastMove[p]! > 0) resumed[p] = t - killedAt;
        lastMove[p] = t;
      }
    });
    if (any) {
      longestGroupGap = Math.max(longestGroupGap, t - lastAnyMove);
      lastAnyMove = t;
    }
    prev = c;
  }
  // A partition that kept committing right after the kill belonged to the survivor.
  const stallMs = Math.max(...resumed.map((r) => r ?? Infinity));
  const result = {
    partitions: PARTITIONS,
    rateEventsPerSec: RATE,
    progressingBeforeKill: after.filter((o, p) => o > before[p]!).length,
    resumedMsPerPartition: resumed.map((r) => (r === undefined ? null : Math.round(r))),
    stallMs: Number.isFinite(stallMs) ? Math.round(stallMs) : null,
    longestGroupWideGapMs: Math.round(longestGroupGap),
    sessionTimeoutMs: 30_000,
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  };
  console.log(JSON.stringify(result, null, 2));
  console.error(`written ${writeResult('stall', result)}`);
  feeding = false;
  await feed;
  await producer.disconnect();
} finally {
  feeding = false;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  await sleep(3000);
  await admin.disconnect();
  await deleteScopedTopics(kafka, topics);
}
