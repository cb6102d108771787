// tillwatch produce --events FILE [--topic T]: publishes a JSON-lines file of transactions as
// Avro through the registry, keyed by merchant_id, in file order. Invalid lines are reported
// with their line number and not sent (they could not be encoded in the contract).
import { parseArgs } from 'node:util';
import { AvroSchemas, validateTransaction, valueSubject, type Transaction } from '@tillwatch/schemas';
import { createAvroSerde } from '@tillwatch/stream';
import { createContext } from '../lib/context.js';
import { readJsonLines } from '../lib/jsonl.js';

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

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { events: { type: 'string' }, topic: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } } });
  if (values.help || !values.events) {
    console.error('usage: tillwatch produce --events FILE [--topic pos.transactions.v1]');
    return values.help ? 0 : 2;
  }
  const ctx = createContext();
  const topic = values.topic ?? ctx.topics.transactions;
  const { sent, invalid } = await publishFile(ctx, values.events, topic);
  for (const i of invalid.slice(0, 20)) console.error(`line ${i.line}: ${i.reason}`);
  console.log(`published ${sent} events to ${topic}${invalid.length ? `; ${invalid.length} invalid lines not sent` : ''}`);
  return invalid.length > 0 ? 1 : 0;
}
