// Load test (ii): event-to-alert latency at a fixed rate (default 5,000 events/s). Events carry
// received_time = the wall time they are produced; an alert's detected_at is its triggering
// event's received_time, so (wall time an alert is read, committed, by a read_committed consumer)
// minus detected_at is the full event-to-alert latency through Kafka, detector and transaction.
//   npm run load:latency -- [rate=5000] [seconds=60] [terminals=20000]
// The simulator and the alert reader run in a worker thread (their own event loop and heap), as a
// gateway and a downstream consumer run apart from the detector. LATENCY_LOAD_THREAD=0 puts them on
// the detector's event loop instead (how rounds 1-3 of load-tests/README.md measured).
import { createDetector } from '@tillwatch/detector';
import { defaultRulesConfig } from '@tillwatch/rules';
import { createFleet, createSimulator } from '@tillwatch/simulator';
import { AvroSchemas, valueSubject, type Alert, type Heartbeat, type Transaction } from '@tillwatch/schemas';
import { createAvroSerde, deleteScopedTopics, provisionScopedTopics, randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { percentiles, sleep, writeResult } from './common.js';

type Topics = Awaited<ReturnType<typeof provisionScopedTopics>>;
interface LoadOptions { topics: Topics; rate: number; seconds: number; terminals: number }
interface LoadResult { latencies: number[]; before: number[]; after: number[]; simQueued: number[]; simSend: number[]; achieved: number }

/**
 * The load side: a read_committed reader of the alert topic (the downstream view) and the
 * simulator at a fixed rate; 5 s of warm-up, then `onMeasuring(true)` until 2 s after the last send.
 */
async function runLoad(o: LoadOptions, onMeasuring: (on: boolean) => void): Promise<LoadResult> {
  const { kafka, registry, logger } = testKafka('load-latency-load');
  const { topics } = o;
  let measuring = false;
  const alertSerde = createAvroSerde<Alert>(registry, valueSubject(topics.alerts), AvroSchemas.alert);
  const latencies: number[] = [];
  // Each alert's latency split at the alert record's CreateTime (stamped when the detector's
  // transaction sends it): before = received -> fetched, decoded, rules run; after = transaction
  // (send, offsets, EndTxn), commit markers, and the read_committed reader's fetch.
  const before: number[] = [];
  const after: number[] = [];
  const reader = kafka.consumer({ groupId: randomId('reader'), readUncommitted: false, maxWaitTimeInMs: 20 });
  let joined = false;
  reader.on(reader.events.GROUP_JOIN, () => (joined = true));
  await reader.connect();
  await reader.subscribe({ topic: topics.alerts, fromBeginning: true });
  await reader.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      await alertSerde.prefetch(batch.messages.map((m) => m.value));
      for (const m of batch.messages) {
        const a = alertSerde.decode(m.value);
        // Timer-driven alerts (sequence gaps) fire by design 30 min after their evidence: not latency.
        if (measuring && a.rule !== 'sequence_gap') {
          latencies.push(now - a.detected_at);
          const created = Number(m.timestamp);
          before.push(created - a.detected_at);
          after.push(now - created);
        }
      }
    },
  });
  while (!joined) await sleep(20);

  const txnSerde = createAvroSerde<Transaction>(registry, valueSubject(topics.transactions), AvroSchemas.transaction);
  const hbSerde = createAvroSerde<Heartbeat>(registry, valueSubject(topics.heartbeats), AvroSchemas.heartbeat);
  await Promise.all([txnSerde.init(), hbSerde.init()]);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // The load side's own share of the latency, per simulator batch: from the received_time of the
  // batch's first event (the wall time the simulator generated it) to its send being invoked
  // (simQueued: generation and Avro encoding of the batch, and the wait behind the previous send,
  // which the simulator chains), and from there to the broker's ack (simSend). The send finds its
  // batch's time through the first encoded value, so it cannot drift out of step with the batches.
  const simQueued: number[] = [];
  const simSend: number[] = [];
  const receivedOf = new WeakMap<Buffer, number>();
  const encodeTransaction = (t: Transaction): Buffer => {
    const value = txnSerde.encode(t);
    receivedOf.set(value, t.received_time);
    return value;
  };
  const send = producer.send.bind(producer);
  producer.send = async (record) => {
    const first = record.messages[0]?.value;
    const generated = Buffer.isBuffer(first) ? receivedOf.get(first) : undefined;
    const invoked = Date.now();
    const r = await send(record);
    if (generated !== undefined && measuring) {
      simQueued.push(invoked - generated);
      simSend.push(Date.now() - invoked);
    }
    return r;
  };
  const fleet = createFleet({ terminals: o.terminals, seed: 3, anomalyRate: 0.01, anomalies: ['duplicate_charge', 'abnormal_amount', 'sync_lag', 'refund_without_sale', 'refund_exceeds_sale'] });
  // Warm-up 5 s (JIT, connections), then measure.
  const sim = createSimulator({ producer, fleet, rate: o.rate, encodeTransaction, encodeHeartbeat: (h) => hbSerde.encode(h), topics, logger, heartbeatIntervalMs: 3_600_000, maxEvents: o.rate * (o.seconds + 5) });
  sim.start();
  await sleep(5000);
  measuring = true;
  onMeasuring(true);
  const sentAtStart = sim.sent();
  const t0 = performance.now();
  await sim.done();
  const achieved = (sim.sent() - sentAtStart) / ((performance.now() - t0) / 1000);
  await sleep(2000);
  measuring = false;
  onMeasuring(false);
  await reader.disconnect();
  await producer.disconnect();
  return { latencies, before, after, simQueued, simSend, achieved };
}

type FromWorker = { type: 'measuring'; on: boolean } | { type: 'done'; result: LoadResult } | { type: 'error'; message: string };

if (!isMainThread) {
  const post = (m: FromWorker) => parentPort!.postMessage(m);
  runLoad(workerData as LoadOptions, (on) => post({ type: 'measuring', on }))
    .then((result) => post({ type: 'done', result }))
    .catch((e: unknown) => post({ type: 'error', message: String((e as Error)?.stack ?? e) }));
} else {
  await main();
}

async function main(): Promise<void> {
  const [rateArg, secondsArg, terminalsArg] = process.argv.slice(2);
  const RATE = Number(rateArg ?? 5000);
  const SECONDS = Number(secondsArg ?? 60);
  const TERMINALS = Number(terminalsArg ?? 20_000);
  const LOAD_THREAD = process.env.LATENCY_LOAD_THREAD !== '0';

  const { kafka, registry, logger } = testKafka('load-latency');
  const topics = await provisionScopedTopics(kafka, registry, 6, randomId('lat'));
  try {
    const metricsRegistry = createRegistry({ service: 'load-detector', defaultMetrics: false });
    const groupId = randomId('det');
    // LATENCY_TICK_MS: the detector's wall-clock tick (default 1000 as in production; 0 = off, an experiment).
    const tick = process.env.LATENCY_TICK_MS === undefined ? {} : { tickIntervalMs: Number(process.env.LATENCY_TICK_MS) };
    const metrics = createDetectorMetrics(metricsRegistry);
    // Per-stage breakdown: every value the processor observes (batch stages, transaction stages) is
    // also kept raw while measuring, for percentiles (the Prometheus histogram only has buckets).
    const stages = new Map<string, number[]>();
    let measuring = false;
    const keep = (stage: string, seconds: number) => {
      if (!measuring) return;
      let list = stages.get(stage);
      if (!list) stages.set(stage, (list = []));
      list.push(seconds * 1000);
    };
    const observeBatch = metrics.batchLatency.observe.bind(metrics.batchLatency);
    metrics.batchLatency.observe = ((labels: { stage: string }, v: number) => {
      keep(labels.stage, v);
      observeBatch(labels, v);
    }) as typeof metrics.batchLatency.observe;
    const observeTxn = metrics.txnLatency.observe.bind(metrics.txnLatency);
    metrics.txnLatency.observe = ((v: number) => {
      keep('txn_total', v);
      observeTxn(v);
    }) as typeof metrics.txnLatency.observe;
    const detector = createDetector({ kafka, registry, rules: defaultRulesConfig(), metrics, logger, groupId, topics: { ...topics, changelog: topics.detectorChangelog }, liveRules: { topic: topics.rules }, ...tick });
    await detector.start();
    while (!detector.ready()) await sleep(20);

    // The detector's thread: event-loop delay and GC pauses while measuring.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    const gcPauses: number[] = [];
    const gcObserver = new PerformanceObserver((list) => {
      if (measuring) for (const e of list.getEntries()) gcPauses.push(e.duration);
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    const onMeasuring = (on: boolean) => {
      measuring = on;
      if (on) loopDelay.enable();
      else loopDelay.disable();
    };
    const options: LoadOptions = { topics, rate: RATE, seconds: SECONDS, terminals: TERMINALS };
    const load = LOAD_THREAD
      ? await new Promise<LoadResult>((resolve, reject) => {
          // A worker does not inherit tsx's loader: it registers it, then imports this file.
          const bootstrap = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); })`;
          const worker = new Worker(bootstrap, { eval: true, workerData: options });
          worker.on('message', (m: FromWorker) => {
            if (m.type === 'measuring') onMeasuring(m.on);
            else if (m.type === 'done') resolve(m.result);
            else reject(new Error(m.message));
          });
          worker.on('error', reject);
        })
      : await runLoad(options, onMeasuring);
    gcObserver.disconnect();
    await detector.stop();
    const { latencies, before, after, simQueued, simSend, achieved } = load;
    const p = percentiles(latencies, [50, 99, 99.9]);
    const result = {
      targetRate: RATE,
      tickIntervalMs: process.env.LATENCY_TICK_MS === undefined ? 1000 : Number(process.env.LATENCY_TICK_MS),
      loadThread: LOAD_THREAD,
      achievedRate: Math.round(achieved),
      seconds: SECONDS,
      terminals: TERMINALS,
      alertsMeasured: latencies.length,
      latencyMs: { ...p, max: Math.max(...latencies) },
      // Where the time goes (ms): the two halves of each alert's latency, the processor's stages per
      // batch (queued: first record's CreateTime to eachBatch; compute: decode + rules + changes;
      // txn_send / txn_offsets / txn_end: the transaction's produce, sendOffsets and EndTxn), the
      // event loop's delay and GC pauses of the detector's thread (shared with the simulator and
      // the reader with LATENCY_LOAD_THREAD=0).
      breakdownMs: {
        alertBeforeSend: percentiles(before, [50, 99, 99.9]),
        alertAfterSend: percentiles(after, [50, 99, 99.9]),
        simulatorQueued: percentiles(simQueued, [50, 99, 99.9]),
        simulatorSend: percentiles(simSend, [50, 99, 99.9]),
        ...Object.fromEntries([...stages].map(([stage, v]) => [stage, { n: v.length, ...percentiles(v, [50, 99, 99.9]), max: Math.round(Math.max(...v)) }])),
        // The histogram's values include its 10 ms sampling interval: subtracted.
        eventLoopDelay: Object.fromEntries(([['p50', loopDelay.percentile(50)], ['p99', loopDelay.percentile(99)], ['max', loopDelay.max]] as const).map(([k, ns]) => [k, Math.round(Math.max(0, ns / 1e6 - 10) * 10) / 10])),
        gc: { pauses: gcPauses.length, totalMs: Math.round(gcPauses.reduce((a, b) => a + b, 0)), ...percentiles(gcPauses, [99]), max: Math.round(Math.max(0, ...gcPauses)) },
      },
      // Issue 12's targets (issue 8's were 100 and 250 ms).
      targets: { p99: 50, 'p99.9': 150 },
    };
    console.log(JSON.stringify(result, null, 2));
    console.error(`written ${writeResult('latency', result)}`);
  } finally {
    await deleteScopedTopics(kafka, topics);
  }
}
