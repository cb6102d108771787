// Kafka client comparison on the same broker, the same input topic and in one run: raw consume,
// produce of changelog-sized records, and a consume-transform-produce loop with one Kafka
// transaction per partition batch (outputs + sendOffsets + commit), for kafkajs (as the project
// runs it), @platformatic/kafka and @confluentinc/kafka-javascript (librdkafka; built from its npm
// package on the first run, see confluent-client.ts). The loop is what the detector does minus the
// rules: it decides which client can carry the detector faster. Each row also gives the process's
// CPU time per record (all threads: librdkafka does its network and protocol work on threads of its
// own, which events/s alone would hide on a machine whose cores are shared with the broker).
//   npm run load:clients -- [records=200000] [partitions=6] [bytes=180] [batch=5000]
// CLIENTS=kafkajs,platformatic,confluent (default: all three) picks the clients.
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { Consumer as PConsumer, Producer as PProducer, FetchIsolationLevels, type Message as PMessage } from '@platformatic/kafka';
import type { Kafka } from 'kafkajs';
import { kafkaConfig } from '@tillwatch/config';
import { randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { sleep, writeResult } from './common.js';
import { CONFLUENT_VERSION, ConfluentUnavailableError, loadConfluent, type ConfluentKafka } from './confluent-client.js';

const [recordsArg, partitionsArg, bytesArg, batchArg] = process.argv.slice(2);
const N = Number(recordsArg ?? 200_000);
const PARTITIONS = Number(partitionsArg ?? 6);
const BYTES = Number(bytesArg ?? 180);
const BATCH = Number(batchArg ?? 5_000);
/** Kept under the broker's message.max.bytes per partition batch, as the processor does. */
const MAX_REQUEST_BYTES = 512 * 1024;

const { kafka } = testKafka('load-clients');
const brokers = kafkaConfig(process.env).brokers;
const run = randomId('clients');
const input = `${run}.in`;
const outputs: string[] = [];
const admin = kafka.admin();
await admin.connect();

async function topic(name: string): Promise<string> {
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: name, numPartitions: PARTITIONS, replicationFactor: 1 }] });
  outputs.push(name);
  return name;
}

const values = Array.from({ length: 64 }, () => randomBytes(BYTES));
const keyOf = (i: number) => `merchant-${i % 5_000}`;
const rate = (ms: number) => Math.round(N / (ms / 1000));
/** Record j as kafkajs and the Confluent client take it. */
const kafkaRecord = (j: number) => ({ key: keyOf(j), value: values[j % values.length]! });
/** Per step: send calls (produce), batches handed to the handler (raw consume) or transactions committed (loop). */
let batches = 0;
/** A step that has not seen all N records within this time fails instead of waiting forever. */
const STEP_DEADLINE_MS = 5 * 60_000;
async function waitFor(done: () => boolean, step: string): Promise<void> {
  const deadline = performance.now() + STEP_DEADLINE_MS;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`${step}: not all ${N} records within ${STEP_DEADLINE_MS / 1000} s`);
    await sleep(10);
  }
}

/** Records split in requests of at most MAX_REQUEST_BYTES. */
function chunks<T extends { value: Buffer }>(messages: T[]): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const m of messages) {
    cur.push(m);
    bytes += m.value.length + 40;
    if (bytes >= MAX_REQUEST_BYTES) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
  }
  if (cur.length) out.push(cur);
  return out;
}

/**
 * The produce step of every client: N records (`build(j)`: record j in the client's form) built in
 * batches of BATCH, sent in requests of at most MAX_REQUEST_BYTES with at most `inFlight` sends
 * outstanding; the time from the first send to the last acknowledgement.
 */
async function sendAll<M extends { value: Buffer }>(inFlight: number, build: (j: number) => M, send: (messages: M[]) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < N; i += BATCH) {
    const messages: M[] = [];
    for (let j = i; j < Math.min(N, i + BATCH); j++) messages.push(build(j));
    for (const c of chunks(messages)) {
      batches++;
      pending.push(send(c));
      if (pending.length >= inFlight) await pending.shift();
    }
  }
  await Promise.all(pending);
  return performance.now() - t0;
}

// ---- kafkajs -------------------------------------------------------------------------------

async function kjsProduce(k: Kafka, to: string): Promise<number> {
  const producer = k.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const ms = await sendAll(4, kafkaRecord, (messages) => producer.send({ topic: to, acks: -1, messages }));
  await producer.disconnect();
  return ms;
}

async function kjsConsume(k: Kafka): Promise<number> {
  const consumer = k.consumer({ groupId: randomId('kjs-raw'), maxBytesPerPartition: 4 * 1024 * 1024, maxWaitTimeInMs: 100 });
  let count = 0;
  let first = 0;
  let last = 0;
  consumer.on(consumer.events.GROUP_JOIN, () => (first = performance.now()));
  await consumer.connect();
  await consumer.subscribe({ topic: input, fromBeginning: true });
  await consumer.run({ autoCommit: false, eachBatch: async ({ batch }) => {
    batches++;
    count += batch.messages.length;
    last = performance.now();
  } });
  await waitFor(() => count >= N, 'kafkajs raw consume');
  await consumer.disconnect();
  return last - first;
}

async function kjsLoop(k: Kafka, to: string): Promise<number> {
  const groupId = randomId('kjs-txn');
  const producers = new Map<number, ReturnType<Kafka['producer']>>();
  for (let p = 0; p < PARTITIONS; p++) {
    const producer = k.producer({ transactionalId: `${groupId}.${p}`, idempotent: true, maxInFlightRequests: 1, retry: { initialRetryTime: 10, maxRetryTime: 2_000, retries: 12 } });
    await producer.connect();
    producers.set(p, producer);
  }
  const consumer = k.consumer({ groupId, readUncommitted: false, maxBytesPerPartition: 4 * 1024 * 1024, maxWaitTimeInMs: 100 });
  let count = 0;
  let first = 0;
  let last = 0;
  consumer.on(consumer.events.GROUP_JOIN, () => (first = performance.now()));
  await consumer.connect();
  await consumer.subscribe({ topic: input, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: PARTITIONS,
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      // The transform: one output record per input record (the changelog write of a state change).
      for (let i = 0; i < batch.messages.length; i += BATCH) {
        const slice = batch.messages.slice(i, i + BATCH);
        const txn = await producers.get(batch.partition)!.transaction();
        try {
          for (const c of chunks(slice.map((m) => ({ key: m.key, value: m.value ?? Buffer.alloc(0), partition: batch.partition })))) {
            await txn.send({ topic: to, messages: c });
          }
          const next = (BigInt(slice[slice.length - 1]!.offset) + 1n).toString();
          await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }] });
          await txn.commit();
        } catch (e) {
          await txn.abort().catch(() => undefined);
          throw e;
        }
        resolveOffset(slice[slice.length - 1]!.offset);
        batches++;
        count += slice.length;
        last = performance.now();
      }
      await heartbeat();
    },
  });
  await waitFor(() => count >= N, 'kafkajs transactional loop');
  await consumer.disconnect();
  await Promise.all([...producers.values()].map((p) => p.disconnect()));
  return last - first;
}

// ---- @platformatic/kafka -------------------------------------------------------------------

const base = { clientId: 'tillwatch-load-clients', bootstrapBrokers: brokers };

async function platProduce(to: string): Promise<number> {
  const producer = new PProducer({ ...base, idempotent: true, acks: -1 });
  // One request at a time: concurrent idempotent sends get OUT_OF_ORDER_SEQUENCE_NUMBER from
  // this client (seen here), and kafkajs runs with maxInFlightRequests: 1 too.
  const ms = await sendAll(1, (j) => ({ topic: to, key: Buffer.from(keyOf(j)), value: values[j % values.length]! }), (messages) => producer.send({ messages }));
  await producer.close();
  return ms;
}

async function platConsume(): Promise<number> {
  const consumer = new PConsumer({ ...base, groupId: randomId('plat-raw'), maxBytesPerPartition: 4 * 1024 * 1024, maxWaitTime: 100 });
  let first = 0;
  consumer.on('consumer:group:join', () => (first = performance.now()));
  const stream = await consumer.consume({ topics: [input], mode: 'earliest', autocommit: false });
  let count = 0;
  let last = 0;
  await new Promise<void>((resolve, reject) => {
    stream.on('data', () => {
      batches++; // one message per event: this client's consumer is a stream of single messages
      count++;
      if (count === N) {
        last = performance.now();
        resolve();
      }
    });
    stream.on('error', reject);
  });
  await stream.close();
  await consumer.close(true);
  return last - first;
}

async function platLoop(to: string): Promise<number> {
  const groupId = randomId('plat-txn');
  const consumer = new PConsumer({ ...base, groupId, maxBytesPerPartition: 4 * 1024 * 1024, maxWaitTime: 100, isolationLevel: FetchIsolationLevels.READ_COMMITTED });
  const producers = new Map<number, PProducer>();
  for (let p = 0; p < PARTITIONS; p++) producers.set(p, new PProducer({ ...base, transactionalId: `${groupId}.${p}`, idempotent: true, acks: -1 }));
  let first = 0;
  consumer.on('consumer:group:join', () => (first = performance.now()));
  const stream = await consumer.consume({ topics: [input], mode: 'committed', fallbackMode: 'earliest', autocommit: false });
  // The stream delivers single messages: gather them per partition, one transaction per gathered batch.
  const pending = new Map<number, PMessage[]>();
  const busy = new Set<number>();
  let count = 0;
  let last = 0;
  let failed: Error | undefined;
  const flush = async (p: number): Promise<void> => {
    const batch = pending.get(p);
    if (busy.has(p) || !batch || batch.length === 0) return;
    pending.set(p, []);
    busy.add(p);
    try {
      const txn = await producers.get(p)!.beginTransaction();
      try {
        for (const c of chunks(batch.map((m) => ({ topic: to, key: m.key, value: m.value, partition: p })))) await txn.send({ messages: c });
        await txn.addConsumer(consumer);
        await txn.addOffset(batch[batch.length - 1]!);
        await txn.commit();
      } catch (e) {
        await txn.abort().catch(() => undefined);
        throw e;
      }
      batches++;
      count += batch.length;
      last = performance.now();
    } finally {
      busy.delete(p);
    }
    if ((pending.get(p)?.length ?? 0) > 0) await flush(p);
  };
  const kick = (p: number) => void flush(p).catch((e: Error) => (failed = e));
  stream.on('data', (m: PMessage) => {
    let list = pending.get(m.partition);
    if (!list) pending.set(m.partition, (list = []));
    list.push(m);
    if (list.length >= BATCH) kick(m.partition);
    // Back-pressure: at most two batches waiting per partition.
    if (list.length >= 2 * BATCH) stream.pause();
  });
  const timer = setInterval(() => {
    for (const p of pending.keys()) kick(p);
    if ([...pending.values()].every((l) => l.length < 2 * BATCH) && stream.isPaused()) stream.resume();
  }, 5);
  await waitFor(() => count >= N || failed !== undefined, 'platformatic transactional loop');
  clearInterval(timer);
  await stream.close();
  await consumer.close(true);
  await Promise.all([...producers.values()].map((p) => p.close()));
  if (failed) throw failed;
  return last - first;
}

// ---- @confluentinc/kafka-javascript (librdkafka), its KafkaJS-compatible API -----------------

const KNOWN_CLIENTS = ['kafkajs', 'platformatic', 'confluent'];
const CLIENTS = new Set((process.env.CLIENTS ?? KNOWN_CLIENTS.join(',')).split(',').map((c) => c.trim()));
for (const c of CLIENTS) if (!KNOWN_CLIENTS.includes(c)) throw new Error(`CLIENTS: unknown client ${c} (known: ${KNOWN_CLIENTS.join(', ')})`);

interface Confluent {
  kafka: ConfluentKafka;
  version: string;
  /** librdkafka's "partitions assigned" rebalance code, to time consumers from their group join. */
  assigned: number;
}

/** The client, built on first use; when it cannot be built, why (the run goes on without it). */
function confluentKafka(): Confluent | string {
  try {
    const mod = loadConfluent((line) => console.error(line));
    const kafka = new mod.KafkaJS.Kafka({ kafkaJS: { clientId: 'tillwatch-load-clients', brokers, logLevel: mod.KafkaJS.logLevel.ERROR } });
    return { kafka, version: `${CONFLUENT_VERSION} (librdkafka ${mod.librdkafkaVersion})`, assigned: mod.CODES.ERRORS.ERR__ASSIGN_PARTITIONS };
  } catch (e) {
    if (!(e instanceof ConfluentUnavailableError)) throw e;
    console.error(`@confluentinc/kafka-javascript not measured: ${e.message}`);
    return `not measured: ${e.message}`;
  }
}

async function confProduce({ kafka: k }: Confluent, to: string): Promise<number> {
  const producer = k.producer({ kafkaJS: { idempotent: true, acks: -1 } });
  await producer.connect();
  const ms = await sendAll(4, kafkaRecord, (messages) => producer.send({ topic: to, messages }));
  await producer.disconnect();
  return ms;
}

/**
 * The kafkajs consumers' fetch settings (4 MiB per partition, 100 ms wait, read_committed), eachBatch
 * batches of up to BATCH records (this client builds batches from its own message cache, which
 * starts at one message and grows with the consumption rate: the batch counts are recorded), and a
 * rebalance callback that stamps the group join (it returns nothing: the default assignment goes on).
 */
const confConsumerConfig = (c: Confluent, groupId: string, onJoin: () => void) => ({
  kafkaJS: { groupId, fromBeginning: true, autoCommit: false, readUncommitted: false, maxBytesPerPartition: 4 * 1024 * 1024, maxWaitTimeInMs: 100 },
  'js.consumer.max.batch.size': BATCH,
  rebalance_cb: (err: { code: number }) => {
    if (err.code === c.assigned) onJoin();
  },
});

async function confConsume(c: Confluent): Promise<number> {
  let first = 0;
  const consumer = c.kafka.consumer(confConsumerConfig(c, randomId('conf-raw'), () => (first ||= performance.now())));
  await consumer.connect();
  await consumer.subscribe({ topics: [input] });
  let count = 0;
  let last = 0;
  await consumer.run({
    eachBatch: async ({ batch }: { batch: { messages: unknown[] } }) => {
      batches++;
      count += batch.messages.length;
      last = performance.now();
    },
  });
  await waitFor(() => count >= N, 'confluent raw consume');
  await consumer.disconnect();
  return last - first;
}

interface ConfBatch {
  topic: string;
  partition: number;
  messages: Array<{ key: Buffer | null; value: Buffer | null; offset: string }>;
}

async function confLoop(c: Confluent, to: string): Promise<number> {
  const groupId = randomId('conf-txn');
  const producers = new Map<number, ReturnType<ConfluentKafka['producer']>>();
  for (let p = 0; p < PARTITIONS; p++) {
    const producer = c.kafka.producer({ kafkaJS: { transactionalId: `${groupId}.${p}`, idempotent: true, maxInFlightRequests: 1 } });
    await producer.connect();
    producers.set(p, producer);
  }
  let first = 0;
  const consumer = c.kafka.consumer(confConsumerConfig(c, groupId, () => (first ||= performance.now())));
  await consumer.connect();
  await consumer.subscribe({ topics: [input] });
  let count = 0;
  let last = 0;
  await consumer.run({
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: PARTITIONS,
    eachBatch: async ({ batch, resolveOffset }: { batch: ConfBatch; resolveOffset: (offset: string) => void }) => {
      batches++;
      const txn = await producers.get(batch.partition)!.transaction();
      try {
        for (const c of chunks(batch.messages.map((m) => ({ key: m.key, value: m.value ?? Buffer.alloc(0), partition: batch.partition })))) {
          await txn.send({ topic: to, messages: c });
        }
        const next = (BigInt(batch.messages[batch.messages.length - 1]!.offset) + 1n).toString();
        await txn.sendOffsets({ consumer, topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }] });
        await txn.commit();
      } catch (e) {
        await txn.abort().catch(() => undefined);
        throw e;
      }
      resolveOffset(batch.messages[batch.messages.length - 1]!.offset);
      count += batch.messages.length;
      last = performance.now();
    },
  });
  await waitFor(() => count >= N, 'confluent transactional loop');
  await consumer.disconnect();
  await Promise.all([...producers.values()].map((p) => p.disconnect()));
  return last - first;
}

// ---- run -----------------------------------------------------------------------------------

const load = () => `load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`;
const rows: Array<{ client: string; step: string; recordsPerSec: number; cpuMicrosPerRecord: number; batches: number; meanBatch: number; load: string }> = [];
/**
 * Runs one step: records/s from the step's own timing (group join or first send to the last
 * record); CPU-µs per record from this process's CPU time over the whole step, all threads, which
 * also holds its connects, group join and disconnects (the same kinds of work for every client).
 */
const record = async (client: string, step: string, run: () => Promise<number>) => {
  batches = 0;
  const cpu0 = process.cpuUsage();
  const ms = await run();
  const cpu = process.cpuUsage(cpu0);
  const cpuMicrosPerRecord = Math.round(((cpu.user + cpu.system) / N) * 100) / 100;
  rows.push({ client, step, recordsPerSec: rate(ms), cpuMicrosPerRecord, batches, meanBatch: Math.round(N / Math.max(1, batches)), load: load() });
  console.error(`${client.padEnd(31)} ${step.padEnd(31)} ${String(rate(ms)).padStart(9)} records/s ${cpuMicrosPerRecord.toFixed(2).padStart(7)} CPU-µs/record ${String(batches).padStart(7)} batches   (${load()})`);
};

try {
  const conf = CLIENTS.has('confluent') ? confluentKafka() : 'not run (CLIENTS)';
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: input, numPartitions: PARTITIONS, replicationFactor: 1 }] });
  outputs.push(input);
  console.error(`filling ${input}: ${N} records of ${BYTES} bytes on ${PARTITIONS} partitions...`);
  await kjsProduce(kafka, input);
  const KJS = 'kafkajs';
  const PLAT = '@platformatic/kafka';
  const CONF = '@confluentinc/kafka-javascript';
  const kjs = CLIENTS.has('kafkajs');
  const plat = CLIENTS.has('platformatic');
  const c = typeof conf === 'string' ? undefined : conf;
  // Output topics are created before the steps (not inside their CPU time).
  const out = async (name: string, on: boolean) => (on ? topic(`${run}.${name}`) : '');
  const [kjsProduceTo, platProduceTo, confProduceTo] = [await out('kjs.produce', kjs), await out('plat.produce', plat), await out('conf.produce', c !== undefined)];
  const [kjsLoopTo, platLoopTo, confLoopTo] = [await out('kjs.loop', kjs), await out('plat.loop', plat), await out('conf.loop', c !== undefined)];

  const produce = 'produce (acks=all, idempotent)';
  if (kjs) await record(KJS, produce, () => kjsProduce(kafka, kjsProduceTo));
  if (plat) await record(PLAT, produce, () => platProduce(platProduceTo));
  if (c) await record(CONF, produce, () => confProduce(c, confProduceTo));
  if (kjs) await record(KJS, 'raw consume', () => kjsConsume(kafka));
  if (plat) await record(PLAT, 'raw consume', () => platConsume());
  if (c) await record(CONF, 'raw consume', () => confConsume(c));
  const loop = 'transactional loop (EOS, 1:1)';
  if (kjs) await record(KJS, loop, () => kjsLoop(kafka, kjsLoopTo));
  if (plat) await record(PLAT, loop, () => platLoop(platLoopTo));
  if (c) await record(CONF, loop, () => confLoop(c, confLoopTo));

  const by = (client: string, s: string) => rows.find((r) => r.client === client && r.step.startsWith(s))?.recordsPerSec ?? NaN;
  const ratio = (client: string) => Math.round((by(client, 'transactional') / by(KJS, 'transactional')) * 100) / 100;
  // null where a client was not run.
  const loopRatios = { platformaticToKafkajs: ratio(PLAT), confluentToKafkajs: ratio(CONF) };
  const result = {
    records: N,
    partitions: PARTITIONS,
    recordBytes: BYTES,
    batch: BATCH,
    versions: { kafkajs: '2.2.4 (with the project patch)', platformatic: '1.35.0', confluent: c?.version ?? conf },
    rows,
    transactionalLoopRatios: loopRatios,
  };
  console.table(rows);
  console.log(JSON.stringify({ transactionalLoopRatios: loopRatios }));
  console.error(`written ${writeResult('client-compare', result)}`);
} finally {
  await admin.deleteTopics({ topics: outputs }).catch(() => undefined);
  await admin.disconnect();
}
