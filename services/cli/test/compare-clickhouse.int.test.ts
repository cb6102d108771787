// backtest --compare --from-clickhouse: the transactions stored in ClickHouse (embedded chDB, a
// migrated test database), replayed page by page in received-time order, give exactly the alerts a
// backtest of the same events in that order gives; --merchant keeps one merchant's transactions.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toTransactionRow } from '@tillwatch/clickhouse';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { backtestLines, defaultRulesConfig, loadRulesConfig } from '@tillwatch/rules';
import type { Alert, Transaction } from '@tillwatch/schemas';
import { createFleet } from '@tillwatch/simulator';
import { runCompare } from '../src/lib/compare-command.js';
import { clickhouseSource } from '../src/lib/compare-sources.js';

const dir = mkdtempSync(join(tmpdir(), 'tw-compare-ch-'));
let t: TestClickHouse | undefined;
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await t?.dispose();
});

describe('backtest --compare --from-clickhouse', () => {
  it('streams the stored transactions in received-time order, page by page, into both rule sets', async () => {
    t = await createTestClickHouse({ migrate: true });
    const fleet = createFleet({ terminals: 30, seed: 9, anomalyRate: 0.05, cards: 200 });
    const events: Transaction[] = [];
    let now = Date.now() - 3 * 3_600_000;
    while (events.length < 3000) {
      now += 500;
      for (const e of fleet.next(now)) events.push(e);
    }
    // Stored in another order than received: the source must sort; a replayed copy must count once.
    const shuffled = [...events].reverse();
    await t.ch.client.insert({ table: t.ch.table('transactions'), values: shuffled.map(toTransactionRow), format: 'JSONEachRow' });
    await t.ch.client.insert({ table: t.ch.table('transactions'), values: events.slice(0, 200).map(toTransactionRow), format: 'JSONEachRow' });
    const ordered = [...events].sort((x, y) => x.received_time - y.received_time || (x.event_id < y.event_id ? -1 : x.event_id > y.event_id ? 1 : 0));

    const cfgA = defaultRulesConfig();
    const cfgB = loadRulesConfig('version: 2\nrules:\n  refund_without_sale:\n    enabled: false\n', 'yaml');
    const run = async (out: string, merchant?: string) =>
      runCompare({
        source: clickhouseSource(t!.ch, { sinceMs: Date.now() - 7 * 86_400_000, pageSize: 700, ...(merchant ? { merchant } : {}) }),
        inputLabel: 'clickhouse',
        a: { path: 'a.yaml', config: cfgA },
        b: { path: 'b.yaml', config: cfgB },
        outDir: join(dir, out),
        rejected: () => 0,
      });
    const read = (p: string): Alert[] => readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Alert);

    const all = await run('all');
    expect(all.events).toBe(events.length);
    const lines = ordered.map((e) => JSON.stringify(e));
    expect(read(all.files.a)).toEqual(backtestLines(lines, cfgA).alerts);
    expect(read(all.files.b)).toEqual(backtestLines(lines, cfgB).alerts);
    expect(all.result.rules.find((r) => r.rule === 'refund_without_sale')!.onlyA).toBeGreaterThan(0);

    const merchant = events[0]!.merchant_id;
    const one = await run('one', merchant);
    const mine = ordered.filter((e) => e.merchant_id === merchant);
    expect(one.events).toBe(mine.length);
    expect(read(one.files.a)).toEqual(backtestLines(mine.map((e) => JSON.stringify(e)), cfgA).alerts);
  });
});
