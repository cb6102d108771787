// `tillwatch backtest --updates FILE --refunds FILE`: the runner writes both files, counts them in
// the summary, and the CLI prints refunds by reason with amounts as money.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBacktest } from '@tillwatch/rules/backtest';
import { formatTrailSummary } from '../src/lib/money-trail.js';

const dir = mkdtempSync(join(tmpdir(), 'tillwatch-trail-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T = Date.UTC(2026, 0, 5, 9);
const sale = (i: number, over: object = {}) => ({
  event_id: `e-${i}`, txn_id: `tx-${i}`, kind: 'SALE', status: 'APPROVED', terminal_id: 'T1', merchant_id: 'M1', card_token: 'tok_a', amount_minor: 4200, currency: 'EUR',
  terminal_seq: i, original_txn_id: null, event_time: T + i * 1000, received_time: T + i * 1000 + 500, ...over,
});

describe('backtest --updates / --refunds', () => {
  it('writes the update and refund-reason files and counts them; alerts lines carry every contract field', async () => {
    const events = join(dir, 'events.jsonl');
    writeFileSync(events, [sale(1), sale(2, { terminal_id: 'T2', txn_id: 'tx-2b' }), sale(3, { kind: 'REFUND', original_txn_id: 'tx-1', terminal_seq: 3 })].map((e) => JSON.stringify(e)).join('\n') + '\n');
    const s = await runBacktest({ eventsPath: events, outPath: join(dir, 'alerts.jsonl'), updatesPath: join(dir, 'updates.jsonl'), refundsPath: join(dir, 'refunds.jsonl'), log: () => undefined });
    expect(s.updatesPath).toBe(join(dir, 'updates.jsonl'));
    expect(s.refundsPath).toBe(join(dir, 'refunds.jsonl'));
    const updates = readFileSync(join(dir, 'updates.jsonl'), 'utf8');
    const refunds = readFileSync(join(dir, 'refunds.jsonl'), 'utf8');
    // The files hold exactly what the summary counts: the duplicate charge (tx-1, tx-2b) is closed by
    // the full refund of its first leg, and that refund's reason is duplicate_charge.
    const updateLines = updates.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const refundLines = refunds.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(updateLines).toHaveLength(s.updates);
    expect(refundLines).toHaveLength(s.refundReasons.reduce((n, r) => n + r.count, 0));
    expect(updateLines.map((u) => [u.rule, u.resolution, u.resolved_by_event_ids])).toEqual([['duplicate_charge', 'refunded', ['e-3']]]);
    expect(refundLines.map((r) => [r.event_id, r.reason])).toEqual([['e-3', 'duplicate_charge']]);
    expect(s.refundReasons).toEqual([{ reason: 'duplicate_charge', currency: 'EUR', count: 1, amountMinor: 4200 }]);
    const alerts = readFileSync(join(dir, 'alerts.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(alerts.map((a) => [a.rule, a.currency, a.amount_minor])).toEqual([['duplicate_charge', 'EUR', 4200]]);
    expect(alerts[0]!.summary).toContain('was charged 42.00 EUR twice');
    expect(updateLines[0]!.alert_id).toBe(alerts[0]!.alert_id);
  });

  it('prints refunds by reason with money per currency', () => {
    const text = formatTrailSummary({
      updates: 3, updatesPath: 'u.jsonl', refundsPath: null,
      refundReasons: [
        { reason: 'duplicate_charge', currency: 'EUR', count: 2, amountMinor: 5000 },
        { reason: 'sync_failure', currency: 'JPY', count: 1, amountMinor: 1500 },
        { reason: 'sync_failure', currency: 'KWD', count: 1, amountMinor: 1250 },
      ],
    });
    expect(text).toContain('alert updates           3  -> u.jsonl');
    expect(text).toContain('refund reasons          4');
    expect(text).toMatch(/duplicate_charge\s+2 {2}50\.00 EUR/);
    expect(text).toMatch(/sync_failure\s+1 {2}1500 JPY/);
    expect(text).toMatch(/sync_failure\s+1 {2}1\.250 KWD/);
  });
});
