// Rebalance stall after a kill -9: two detector processes (the real CLI) in one group on one
// topic, a steady feed, one process killed hard. Measures how long the killed member's partitions
// commit nothing (the survivor only takes them over once the dead member's session expires, then
// restores them from the changelog) and the longest time no partition of the group committed.
//   npx tsx load-tests/src/stall.ts [partitions=6] [rate=1000]
// Environment: DETECTOR_SESSION_TIMEOUT_MS (passed to the detectors; their default otherwise);
// STALL_SOAK_S=N keeps both members working N seconds before the kill and counts their group joins
// meanwhile (any join after each member's first is a rebalance nobody asked for: a false
// eviction when the member id changed); STALL_BURN=K runs K busy-looping processes during the soak,
// to load the CPU.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { DEFAULT_SESSION_TIMEOUT_MS } from '@tillwatch/detector';
import { createFleet } from '@tillwatch/simulator';
import { deleteScopedTopics, provisionScopedTopics, randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { AvroSchemas, valueSubject, type Transaction } from '@tillwatch/schemas';
import { createAvroSerde } from '@tillwatch/stream';
import { sleep, writeResult } from './common.js';

const PARTITIONS = Number(process.argv[2] ?? 6);
const RATE = Number(process.argv[3] ?? 1000);
const SOAK_S = Number(process.env.STALL_SOAK_S ?? 0);
const BURN = Number(process.env.STALL_BURN ?? 0);
const cli = fileURLToPath(new URL('../../services/cli/bin/tillwatch.js', import.meta.url));
const { kafka, registry } = testKafka('load-stall');
const prefix = randomId('stall');
const topics = await provisionScopedTopics(kafka, registry, PARTITIONS, prefix);
const groupId = randomId('g-stall');
const admin = kafka.admin();
await admin.connect();

/** Group joins seen in each detector's log ('joined consumer group'), by member id, in order. */
const joins: string[][] = [];
/** kafkajs warnings and errors about the group (heartbeat or commit refused, member unknown), per detector. */
const groupErrors: number[] = [];

function detector(): ChildProcess {
  const index = joins.length;
  joins.push([]);
  groupErrors.push(0);
  const child = spawn(process.execPath, [cli, 'detector'], {
    env: { ...process.env, TOPIC_PREFIX: prefix, DETECTOR_GROUP_ID: groupId, HTTP_PORT: '0', LOG_LEVEL: 'info', DETECTOR_WALL_CLOCK_TIMERS: 'false' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.includes('"joined consumer group"')) joins[index]!.push((JSON.parse(line) as { memberId: string }).memberId);
    else if (/UNKNOWN_MEMBER_ID|REBALANCE_IN_PROGRESS|ILLEGAL_GENERATION|member removed|rejoined under a new member id/i.test(line)) groupErrors[index]!++;
  });
  return child;
}

const joinCounts = () => joins.map((ids) => ({ joins: ids.length, memberIds: new Set(ids).size }));

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
  // Soak: both members under the feed (and the burners) for SOAK_S seconds; the joins they log meanwhile.
  const joinsAtSoakStart = joinCounts();
  const burners = Array.from({ length: BURN }, () => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
  const soakStart = performance.now();
  const soakLoad: number[] = [];
  while (performance.now() - soakStart < SOAK_S * 1000) {
    await sleep(5000);
    soakLoad.push(loadavg()[0]!);
  }
  for (const b of burners) b.kill('SIGKILL');
  const joinsAtSoakEnd = joinCounts();
  const errorsAtSoakEnd = [...groupErrors];
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
    sessionTimeoutMs: process.env.DETECTOR_SESSION_TIMEOUT_MS ? Number(process.env.DETECTOR_SESSION_TIMEOUT_MS) : DEFAULT_SESSION_TIMEOUT_MS,
    soak: SOAK_S > 0 ? { seconds: SOAK_S, burners: BURN, joinsAtStart: joinsAtSoakStart, joinsAtEnd: joinsAtSoakEnd, groupErrorLinesAtEnd: errorsAtSoakEnd, loadAverage1m: { min: Math.min(...soakLoad), max: Math.max(...soakLoad) } } : undefined,
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
