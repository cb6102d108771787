// Memory per sale held for refunds, past the duplicate horizon (what the refund lookback keeps):
//   node --expose-gc --import tsx packages/rules/bench/held-sale-memory.ts [src dir, default ../src]
// Feeds N approved sales on distinct cards (JSON-decoded, as the detector and backtest get them),
// advances the clock past the duplicate horizon (legs dropped, refund rows kept) and reports the heap
// + array buffers retained per held sale. Run it against another checkout's src to compare.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Transaction } from '@tillwatch/schemas';
import type * as Rules from '../src/index.js';

declare const gc: () => void;
const heapNow = (): number => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

async function main(): Promise<void> {
  const src = resolve(process.argv[2] ?? new URL('../src', import.meta.url).pathname);
  const { createRuleEngine, defaultRulesConfig } = (await import(pathToFileURL(resolve(src, 'index.ts')).href)) as typeof Rules;
  const N = Number(process.env.N ?? 300_000);
  const T0 = Date.UTC(2025, 0, 6);
  const line = (i: number): string =>
    JSON.stringify({
      event_id: `0b8f${i.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`,
      txn_id: `tx${i.toString(36)}`,
      kind: 'SALE',
      status: 'APPROVED',
      terminal_id: `T${String(i % 3000).padStart(6, '0')}`,
      merchant_id: `M${String(i % 1000).padStart(4, '0')}`,
      card_token: `tok_${(Math.imul(i, 2654435761) >>> 0).toString(36)}${i.toString(36)}`,
      amount_minor: 1000 + (i % 97),
      currency: 'EUR',
      terminal_seq: Math.floor(i / 3000) + 1,
      original_txn_id: null,
      event_time: T0 + i * 100,
      received_time: T0 + i * 100 + 500,
    });
  const config = defaultRulesConfig();
  const before = heapNow();
  const e = createRuleEngine(config);
  for (let i = 0; i < N; i++) e.onTransaction(JSON.parse(line(i)) as Transaction);
  e.advanceClock(T0 + N * 100 + 25 * 3600_000); // past allowed_lateness + window: legs dropped
  const after = heapNow();
  const s = e.stats();
  console.log(`src ${src}`);
  console.log(`refund_lookback ${config.engine.refund_lookback / 86_400_000} d; ${s.sales} sales held, ${s.duplicateLegs} duplicate legs`);
  console.log(`per held sale past the duplicate horizon: ${Math.round((after - before) / N)} B (heap + array buffers, ${N} sales)`);
}

void main();
