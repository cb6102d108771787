// Load test (i): sustained events/s of one detector process through the real broker with all rules
// on, measured in the same run as the raw consume rate of the same Kafka client on the same topic.
//   npm run load:throughput -- [events=300000] [terminals=20000] [partitions=6] [--heartbeats | --bench]
// --heartbeats (or THROUGHPUT_HEARTBEATS=1): the fleet also sends one heartbeat per terminal per
// minute of event time (staggered across the minute), on the heartbeats topic co-partitioned by
// merchant_id (issue 10's load check); events/s still counts transactions, the heartbeats are
// counted apart and in the CPU per transaction.
// --bench: the input is the rule benchmark's stream instead of the simulator's fleet (packages/rules
// bench generator: seed 42, 1,000 merchants, 3,000 terminals, 300,000 cards; its first 1.2M events by
// default), the reference input issue 12 quotes Kafka Streams' figures on; results/throughput-bench.json.
// The detector follows the run's own rules topic (empty: the defaults stay in force), as production
// detectors follow pos.rules.v1: each record's input checks take the bound of its batch's version.
// THROUGHPUT_ALIGN=0: the detector without alignInputs (fetch-batch order across the two topics).
// After the detector, the floor (floor.ts): the same processor and decoding with no rules and one
// changelog record per event; its events/s bounds what any rule set can reach here.
// PROFILE=1 also takes a CPU profile of the detector phase (results/throughput.cpuprofile) and
// prints its top five entries by self time.
import { createDetector, DEFAULT_SESSION_TIMEOUT_MS } from '@tillwatch/detector';
import { defaultRulesConfig } from '@tillwatch/rules';
import { BENCH_STREAM, generateEvents } from '@tillwatch/rules/bench/generate';
import { AvroSchemas, valueSubject, type DeadLetter, type Heartbeat, type Transaction } from '@tillwatch/schemas';
import { createAvroSerde, deleteScopedTopics, provisionScopedTopics, randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createDetectorMetrics, createRegistry, type DetectorMetrics } from '@tillwatch/telemetry';
import { cpus, loadavg } from 'node:os';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { committedEnd, publish, sleep, writeResult } from './common.js';
import { fleetInput } from './fleet-input.js';
import { findBrokerPid, startCpuBudget, type CpuBudget } from './cpu-budget.js';
import { createFloor } from './floor.js';
import { startHeapProfile, startProfile, type TopEntry } from './profile.js';

const args = process.argv.slice(2);
const HEARTBEATS = args.includes('--heartbeats') || process.env.THROUGHPUT_HEARTBEATS === '1';
// THROUGHPUT_CHANGELOG_FORMAT=1: the previous changelog value format (A/B of the dictionary keys).
const CHANGELOG_FORMAT = process.env.THROUGHPUT_CHANGELOG_FORMAT === '1' ? 1 : 2;
const BENCH = args.includes('--bench');
const ALIGN = process.env.THROUGHPUT_ALIGN !== '0';
/** A phase that has not counted every record by then failed (a dead-lettered record, a stuck group): the run ends with an error. */
const PHASE_DEADLINE_MS = 10 * 60_000;
if (BENCH && HEARTBEATS) throw new Error('--bench with heartbeats (--heartbeats or THROUGHPUT_HEARTBEATS=1): the benchmark stream has no heartbeats');
const [eventsArg, terminalsArg, partitionsArg] = args.filter((a) => !a.startsWith('--'));
const N = Number(eventsArg ?? (BENCH ? BENCH_STREAM.events : 300_000));
if (BENCH && terminalsArg !== undefined && Number(terminalsArg) !== BENCH_STREAM.terminals) throw new Error(`--bench: the benchmark stream has ${BENCH_STREAM.terminals} terminals`);
const TERMINALS = BENCH ? BENCH_STREAM.terminals : Number(terminalsArg ?? 20_000);
const PARTITIONS = Number(partitionsArg ?? 6);

/**
 * Waits until a processor's metrics count `records` decoded records (it counts a batch's records
 * after the batch's transaction committed), logging progress every 5 s; a phase past
 * PHASE_DEADLINE_MS since `since` fails.
 */
async function untilDecoded(phase: string, metrics: Pick<DetectorMetrics, 'decoded'>, records: number, since: number): Promise<void> {
  const decoded = async () => (await metrics.decoded.get()).values.reduce((n, v) => n + v.value, 0);
  let lastLog = since;
  while ((await decoded()) < records) {
    if (performance.now() - since > PHASE_DEADLINE_MS) throw new Error(`${phase}: ${await decoded()} of ${records} records decoded after ${PHASE_DEADLINE_MS / 60_000} min`);
    await sleep(10);
    if (performance.now() - lastLog > 5000) {
      lastLog = performance.now();
      console.error(`${phase}: ${await decoded()} committed after ${((lastLog - since) / 1000).toFixed(0)} s`);
    }
  }
}

/** The first N events of the benchmark stream. */
function benchInput(n: number): { events: Transaction[]; heartbeats: Heartbeat[] } {
  return { events: [...generateEvents({ ...BENCH_STREAM, events: n })], heartbeats: [] };
}

const { kafka, registry, logger } = testKafka('load-throughput');
const topics = await provisionScopedTopics(kafka, registry, PARTITIONS, randomId('load'));
try {
  const { events, heartbeats } = BENCH ? benchInput(N) : fleetInput(N, TERMINALS, HEARTBEATS);
  console.error(`publishing ${events.length} events${HEARTBEATS ? ` and ${heartbeats.length} heartbeats` : ''} (${TERMINALS} terminals) to ${PARTITIONS} partitions...`);
  const pub = await publish(kafka, registry, topics.transactions, events);
  if (HEARTBEATS) await publish(kafka, registry, topics.heartbeats, heartbeats, 'heartbeat');
  console.error(`published in ${(pub.ms / 1000).toFixed(1)} s`);
  // Only the counts are needed from here: the input is released, so the detector phase's heap (its
  // GC time and CPU per event) holds the detector's own state, not 0.3-1.2M input objects (since round 8).
  const nEvents = events.length;
  const nHeartbeats = heartbeats.length;
  events.length = 0;
  heartbeats.length = 0;

  // Each phase's CPU, this process's, the local broker's and the whole machine's (cpu-budget.ts, since round 10).
  const brokerPid = findBrokerPid();
  // Raw consume: the same kafkajs client and fetch settings, no decoding, no processing.
  const raw = kafka.consumer({ groupId: randomId('raw'), maxBytesPerPartition: 4 * 1024 * 1024, maxWaitTimeInMs: 100 });
  let rawCount = 0;
  let rawFirst = 0;
  let rawLast = 0;
  let endRawBudget: ((events: number) => CpuBudget) | undefined;
  raw.on(raw.events.GROUP_JOIN, () => {
    rawFirst = performance.now();
    endRawBudget = startCpuBudget(brokerPid);
  });
  await raw.connect();
  await raw.subscribe({ topic: topics.transactions, fromBeginning: true });
  await raw.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      rawCount += batch.messages.length;
      rawLast = performance.now();
    },
  });
  while (rawCount < nEvents) await sleep(20);
  const rawBudget = endRawBudget!(nEvents);
  await raw.disconnect();
  const rawRate = nEvents / ((rawLast - rawFirst) / 1000);
  console.error(`raw consume: ${Math.round(rawRate)} events/s`);

  // The detector, all rules on, exactly-once transactions, changelog writes.
  const metricsRegistry = createRegistry({ service: 'load-detector', defaultMetrics: false });
  const metrics = createDetectorMetrics(metricsRegistry);
  const groupId = randomId('det');
  const detector = createDetector({ kafka, registry, rules: defaultRulesConfig(), metrics, logger, groupId, topics: { ...topics, changelog: topics.detectorChangelog }, wallClockTimers: false, tickIntervalMs: 0, ...(ALIGN ? {} : { alignInputs: false }), liveRules: { topic: topics.rules }, ...(CHANGELOG_FORMAT === 1 ? { changelogFormat: 1 as const } : {}) });
  const stopProfile = process.env.PROFILE ? await startProfile('throughput') : undefined;
  const stopHeapProfile = process.env.HEAP_PROFILE ? await startHeapProfile('throughput') : undefined;
  await detector.start();
  // Timed from the moment the group is joined and every task restored, as the raw consumer is timed from its join.
  while (!detector.ready()) await sleep(5);
  const first = performance.now();
  // CPU time of this process over the detector phase (the detector runs in it; the harness only
  // reads the detector's own counters): far less sensitive than events/s to other load on a shared machine.
  // The end: every event counted as decoded, which the processor does after its batch's
  // transaction committed (then checked against the group's committed offsets, untimed). An
  // earlier version polled the committed offsets every 50 ms with a new admin client each time,
  // whose CPU (connect, metadata) counted as the detector's.
  const cpu0 = process.cpuUsage();
  const endDetectorBudget = startCpuBudget(brokerPid);
  // Garbage collection time of the detector phase by kind (V8 GC entries): the collector's share
  // is where kept records (alignInputs) would show, less noisy than the total CPU.
  const gcMs = { minor: 0, major: 0, incremental: 0, weakcb: 0 };
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) gcMs.minor += e.duration;
      else if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) gcMs.major += e.duration;
      else if (kind === perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL) gcMs.incremental += e.duration;
      else gcMs.weakcb += e.duration;
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const records = nEvents + nHeartbeats;
  await untilDecoded('detector', metrics, records, first);
  const detMs = performance.now() - first;
  const cpu = process.cpuUsage(cpu0);
  const detectorBudget = endDetectorBudget(nEvents);
  gcObserver.disconnect();
  while (!(await committedEnd(kafka, groupId, topics.transactions))) await sleep(50);
  if (HEARTBEATS) while (!(await committedEnd(kafka, groupId, topics.heartbeats))) await sleep(50);
  // Rebalances during the run (one member, steady): any join but the first was not asked for.
  const groupJoins = Object.fromEntries((await metrics.groupJoins.get()).values.map((v) => [String(v.labels.kind), v.value]));
  const alerts = (await metrics.ruleHits.get()).values.reduce((n, v) => n + v.value, 0);
  // Kafka transactions committed (one per aligned step or batch) and fetched batches handled, per 1,000 transactions.
  const stageCounts = Object.fromEntries((await metrics.batchLatency.get()).values.filter((v) => v.metricName?.endsWith('_count')).map((v) => [String(v.labels.stage), v.value]));
  await detector.stop();
  const cpuProfileTop: TopEntry[] | undefined = await stopProfile?.();
  const heapProfileTop: TopEntry[] | undefined = await stopHeapProfile?.();
  const detRate = nEvents / (detMs / 1000);
  // Records written to the changelog per input event (end offsets: includes one transaction marker per partition per transaction).
  const admin = kafka.admin();
  await admin.connect();
  const changelogOffsets = (await admin.fetchTopicOffsets(topics.detectorChangelog)).reduce((n, p) => n + Number(p.high), 0);
  await admin.disconnect();

  // The floor (floor.ts): the same processor and decoding, one changelog record per event, no
  // rules; on its own changelog topic, so neither run restores the other's records.
  const floorTopics = await provisionScopedTopics(kafka, registry, PARTITIONS, randomId('floor'));
  let floor: { rate: number; cpuMicrosPerEvent: number; budget: CpuBudget };
  try {
    const dlqSerde = createAvroSerde<DeadLetter>(registry, valueSubject(floorTopics.dlq), AvroSchemas.deadLetter);
    await dlqSerde.init();
    const f = createFloor({ kafka, registry, logger, groupId: randomId('floor'), topics: { transactions: topics.transactions, heartbeats: topics.heartbeats, changelog: floorTopics.detectorChangelog, dlq: floorTopics.dlq }, maxClockSkewMs: defaultRulesConfig().engine.max_clock_skew, alignInputs: ALIGN, encodeDeadLetter: (d) => dlqSerde.encode(d) });
    await f.start();
    while (!f.ready()) await sleep(5);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const endFloorBudget = startCpuBudget(brokerPid);
    await untilDecoded('floor', f.metrics, records, t0);
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const budget = endFloorBudget(nEvents);
    await f.stop();
    floor = { rate: nEvents / (ms / 1000), cpuMicrosPerEvent: (c.user + c.system) / nEvents, budget };
  } finally {
    await deleteScopedTopics(kafka, floorTopics);
  }
  console.error(`floor (no rules, one changelog record per event): ${Math.round(floor.rate)} events/s`);
  // The highest ratio to raw consume each phase's work could reach if it took every core at its measured
  // machine-wide CPU per event (cpu-budget.ts), and the machine-wide CPU per event a ratio of 0.3 allows.
  const ceiling = (b: CpuBudget) => (b.cpuBoundEventsPerSec === null ? null : Math.round((b.cpuBoundEventsPerSec / rawRate) * 1000) / 1000);
  const cpuBudget = {
    cores: cpus().length,
    brokerFound: brokerPid !== null,
    rawConsume: rawBudget,
    detector: detectorBudget,
    floor: floor.budget,
    detectorRatioCeiling: ceiling(detectorBudget),
    floorRatioCeiling: ceiling(floor.budget),
    machineMicrosPerEventAllowedAtRatio03: Math.round(((cpus().length * 1e6) / (0.3 * rawRate)) * 100) / 100,
  };
  const pct = (x: number | null) => (x === null ? '?' : `${Math.round(x * 100)} %`);
  console.error(
    `CPU per event, machine-wide (broker): detector ${detectorBudget.machineMicrosPerEvent ?? '?'} µs (${detectorBudget.brokerMicrosPerEvent ?? '?'}), cores ${pct(detectorBudget.machineBusy)} busy; ` +
      `floor ${floor.budget.machineMicrosPerEvent ?? '?'} µs (${floor.budget.brokerMicrosPerEvent ?? '?'}), ${pct(floor.budget.machineBusy)} busy; ` +
      `a ratio of 0.3 allows ${cpuBudget.machineMicrosPerEventAllowedAtRatio03} µs; ceilings: detector ${cpuBudget.detectorRatioCeiling ?? '?'}, floor ${cpuBudget.floorRatioCeiling ?? '?'}`,
  );

  const result = {
    input: BENCH ? `rule benchmark stream (seed ${BENCH_STREAM.seed}, ${BENCH_STREAM.merchants} merchants, ${BENCH_STREAM.cards} cards)` : 'simulator fleet (seed 1)',
    events: nEvents,
    heartbeats: nHeartbeats,
    terminals: TERMINALS,
    partitions: PARTITIONS,
    rawConsumeEventsPerSec: Math.round(rawRate),
    detectorEventsPerSec: Math.round(detRate),
    ratio: Math.round((detRate / rawRate) * 1000) / 1000,
    /** floor.ts: the processor and the detector's decoding with no rules, one changelog record per event (exactly-once), measured after the detector in the same run. */
    floorEventsPerSec: Math.round(floor.rate),
    floorRatio: Math.round((floor.rate / rawRate) * 1000) / 1000,
    floorCpuMicrosPerEvent: Math.round(floor.cpuMicrosPerEvent * 10) / 10,
    detectorToFloor: Math.round((detRate / floor.rate) * 1000) / 1000,
    /** Each phase's CPU per event: this process, the local broker, the whole machine; and the ratios that CPU allows (cpu-budget.ts). */
    cpuBudget,
    alerts,
    detectorCpuMicrosPerEvent: Math.round(((cpu.user + cpu.system) / nEvents) * 10) / 10,
    /** Wall time in V8 garbage collection during the detector phase, per transaction (µs), by kind. */
    detectorGcMicrosPerEvent: Object.fromEntries(Object.entries(gcMs).map(([k, ms]) => [k, Math.round(((ms * 1000) / nEvents) * 100) / 100])),
    groupJoins,
    sessionTimeoutMs: DEFAULT_SESSION_TIMEOUT_MS,
    changelogFormat: CHANGELOG_FORMAT,
    kafkaTransactionsPer1000Events: Math.round(((stageCounts.txn_send ?? 0) / nEvents) * 1000 * 100) / 100,
    fetchedBatchesPer1000Events: Math.round(((stageCounts.queued ?? 0) / nEvents) * 1000 * 100) / 100,
    changelogOffsetsPerEvent: Math.round((changelogOffsets / nEvents) * 1000) / 1000,
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    ...(cpuProfileTop ? { cpuProfileTop } : {}),
    ...(heapProfileTop ? { heapProfileTop } : {}),
    targets: { detectorEventsPerSec: 100_000, ratio: 0.3 },
  };
  console.log(JSON.stringify(result, null, 2));
  console.error(`written ${writeResult(BENCH ? 'throughput-bench' : 'throughput', result)}`);
} finally {
  await deleteScopedTopics(kafka, topics);
}
