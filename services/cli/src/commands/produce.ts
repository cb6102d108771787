// tillwatch produce --events FILE [--topic T]: publishes a JSON-lines file of transactions as
// Avro through the registry, keyed by merchant_id, in file order. Invalid lines are reported
// with their line number and not sent (they could not be encoded in the contract). The clock-skew
// bound is not applied here: it belongs to the rules in force (engine.max_clock_skew), and the
// detector dead-letters what its version refuses, as the backtest rejects what its config refuses.
import { AvroSchemas, validateHeartbeat, validateTransaction, valueSubject, type Heartbeat, type Transaction } from '@tillwatch/schemas';
import { createAvroSerde } from '@tillwatch/stream';
import { parseCommand, type CommandSpec } from '../lib/args.js';
import { checkReachable, checkTopicsExist, createContext } from '../lib/context.js';
import { KAFKA_ENV, envNotes } from '../lib/env-help.js';
import { assertReadableFile, readJsonLines } from '../lib/jsonl.js';

/** The contract's shape and ranges; no clock-skew bound (the detector applies its rules' one). */
const SHAPE_ONLY = { maxClockSkewMs: Infinity };

/**
 * Publishes a JSON-lines file: transactions to `topic`; with `heartbeatTopic`, lines with `"type":
 * "heartbeat"` (the backtest's heartbeat lines) to it, validated against the heartbeat contract.
 */
export async function publishFile(ctx: ReturnType<typeof createContext>, path: string, topic: string, heartbeatTopic?: string): Promise<{ sent: number; heartbeats: number; invalid: { line: number; reason: string }[]; maxReceivedTime: number }> {
  const serde = createAvroSerde<Transaction>(ctx.registry, valueSubject(topic), AvroSchemas.transaction);
  await serde.init();
  const hbSerde = heartbeatTopic === undefined ? null : createAvroSerde<Heartbeat>(ctx.registry, valueSubject(heartbeatTopic), AvroSchemas.heartbeat);
  await hbSerde?.init();
  let beats: { key: string; value: Buffer }[] = [];
  const producer = ctx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const invalid: { line: number; reason: string }[] = [];
  let sent = 0;
  let heartbeats = 0;
  let maxReceivedTime = 0;
  let batch: { key: string; value: Buffer }[] = [];
  const flush = async () => {
    if (batch.length > 0) await producer.send({ topic, messages: batch, acks: -1 });
    if (beats.length > 0) await producer.send({ topic: heartbeatTopic!, messages: beats, acks: -1 });
    sent += batch.length;
    heartbeats += beats.length;
    batch = [];
    beats = [];
  };
  try {
    for await (const l of readJsonLines(path)) {
      if ('error' in l) {
        invalid.push({ line: l.line, reason: l.error });
        continue;
      }
      try {
        if (hbSerde !== null && (l.value as { type?: unknown } | null)?.type === 'heartbeat') {
          const h = validateHeartbeat(l.value, SHAPE_ONLY);
          beats.push({ key: h.merchant_id, value: hbSerde.encode(h) });
          if (h.received_time > maxReceivedTime) maxReceivedTime = h.received_time;
          if (beats.length >= 1000) await flush();
          continue;
        }
        const t = validateTransaction(l.value, SHAPE_ONLY);
        batch.push({ key: t.merchant_id, value: serde.encode(t) });
        if (t.received_time > maxReceivedTime) maxReceivedTime = t.received_time;
      } catch (e) {
        invalid.push({ line: l.line, reason: (e as Error).message });
      }
      if (batch.length >= 1000) await flush();
    }
    await flush();
  } finally {
    await producer.disconnect();
  }
  return { sent, heartbeats, invalid, maxReceivedTime };
}

export const spec = {
  name: 'produce',
  summary: 'Publishes a JSON-lines file of transactions (the transaction contract) as Avro through the registry, keyed by merchant_id, in file order; lines with "type": "heartbeat" go to pos.heartbeats.v1 (default topics only). Invalid lines are reported with their line number and not sent.',
  options: {
    events: { type: 'string', value: 'FILE', required: true, description: 'JSON-lines file of transactions' },
    topic: { type: 'string', value: 'TOPIC', description: 'topic to publish to (default pos.transactions.v1 under TOPIC_PREFIX); must exist: `tillwatch provision` creates it' },
  },
  notes: [...envNotes(KAFKA_ENV), 'Exit: 0 all lines sent; 1 some lines invalid (not sent) or a failure; 2 wrong command line.'],
} satisfies CommandSpec;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommand(spec, argv);
  const events = values.events!;
  // The file first: nothing is contacted for a file that is not there.
  await assertReadableFile(events);
  const ctx = createContext();
  const topic = values.topic ?? ctx.topics.transactions;
  await checkReachable(ctx);
  // kafkajs would retry "This server does not host this topic-partition" for half a minute.
  await checkTopicsExist(ctx, [topic]);
  // Heartbeat lines ("type": "heartbeat") go to the heartbeat topic (with the default topics only).
  const heartbeatTopic = values.topic === undefined ? ctx.topics.heartbeats : undefined;
  if (heartbeatTopic !== undefined) await checkTopicsExist(ctx, [heartbeatTopic]);
  const { sent, heartbeats, invalid } = await publishFile(ctx, events, topic, heartbeatTopic);
  for (const i of invalid.slice(0, 20)) console.error(`line ${i.line}: ${i.reason}`);
  console.log(`published ${sent} transactions to ${topic}${heartbeats > 0 ? `, ${heartbeats} heartbeats to ${heartbeatTopic}` : ''}${invalid.length ? `; ${invalid.length} invalid lines not sent` : ''}`);
  return invalid.length > 0 ? 1 : 0;
}
