// tillwatch produce --events FILE [--topic T]: publishes a JSON-lines file of transactions as
// Avro through the registry, keyed by merchant_id, in file order. Invalid lines are reported
// with their line number and not sent (they could not be encoded in the contract).
import { AvroSchemas, validateTransaction, valueSubject, type Transaction } from '@tillwatch/schemas';
import { createAvroSerde } from '@tillwatch/stream';
import { parseCommand, type CommandSpec } from '../lib/args.js';
import { checkReachable, checkTopicsExist, createContext } from '../lib/context.js';
import { KAFKA_ENV, envNotes } from '../lib/env-help.js';
import { assertReadableFile, readJsonLines } from '../lib/jsonl.js';

export async function publishFile(ctx: ReturnType<typeof createContext>, path: string, topic: string): Promise<{ sent: number; invalid: { line: number; reason: string }[]; maxReceivedTime: number }> {
  const serde = createAvroSerde<Transaction>(ctx.registry, valueSubject(topic), AvroSchemas.transaction);
  await serde.init();
  const producer = ctx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const invalid: { line: number; reason: string }[] = [];
  let sent = 0;
  let maxReceivedTime = 0;
  let batch: { key: string; value: Buffer }[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await producer.send({ topic, messages: batch, acks: -1 });
    sent += batch.length;
    batch = [];
  };
  try {
    for await (const l of readJsonLines(path)) {
      if ('error' in l) {
        invalid.push({ line: l.line, reason: l.error });
        continue;
      }
      try {
        const t = validateTransaction(l.value);
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
  return { sent, invalid, maxReceivedTime };
}

export const spec = {
  name: 'produce',
  summary: 'Publishes a JSON-lines file of transactions (the transaction contract) as Avro through the registry, keyed by merchant_id, in file order. Invalid lines are reported with their line number and not sent.',
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
  const { sent, invalid } = await publishFile(ctx, events, topic);
  for (const i of invalid.slice(0, 20)) console.error(`line ${i.line}: ${i.reason}`);
  console.log(`published ${sent} events to ${topic}${invalid.length ? `; ${invalid.length} invalid lines not sent` : ''}`);
  return invalid.length > 0 ? 1 : 0;
}
