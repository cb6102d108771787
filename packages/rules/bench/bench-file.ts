// The bench file (written by bench.ts: .cache/bench/events-v2-s42-1200000.jsonl) read whole into
// memory: the first `limit` transactions, validated. For harnesses that time the engine alone
// (ab.ts, prof-harness.ts); bench.ts parses it in batches instead.
import { readFileSync } from 'node:fs';
import { validateTransaction, type Transaction } from '@tillwatch/schemas';

export const BENCH_FILE_NAME = 'events-v2-s42-1200000.jsonl';

export function readBenchEvents(file: string, limit: number): Transaction[] {
  const buf = readFileSync(file);
  const events: Transaction[] = [];
  for (let p = 0; p < buf.length && events.length < limit; ) {
    let q = buf.indexOf(10, p);
    if (q < 0) q = buf.length;
    if (q > p) events.push(validateTransaction(JSON.parse(buf.toString('utf8', p, q))));
    p = q + 1;
  }
  return events;
}
