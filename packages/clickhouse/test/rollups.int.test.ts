import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBatchWriter } from '../src/writer.js';
import { toAlertRow, toTransactionRow, type AlertRow, type TransactionRow } from '../src/rows.js';
import { createTestClickHouse, type TestClickHouse } from '../src/testing.js';
import { alert, transaction } from './fixtures.js';

// A whole minute, so toStartOfMinute is easy to predict.
const M = Date.UTC(2026, 10, 20, 10, 0, 0, 0);
const minute = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');

let t: TestClickHouse;
beforeAll(async () => {
  t = await createTestClickHouse({ migrate: true });
});
afterAll(async () => {
  await t?.dispose();
});

async function rows<R>(query: string): Promise<R[]> {
  const rs = await t.ch.client.query({ query, format: 'JSONEachRow' });
  return rs.json<R>();
}

async function write<Row extends object>(table: string, batches: Row[][]) {
  const w = createBatchWriter<Row>({ ch: t.ch, table, maxRows: 10_000, maxDelayMs: 60_000 });
  for (const batch of batches) {
    for (const r of batch) await w.add(r);
    await w.flush();
  }
  await w.close();
}

describe('materialized views', () => {
  it('alerts_per_minute counts distinct alerts per rule, severity and minute — replays included', async () => {
    const alerts = [
      alert({ alert_id: 'apm-1', rule: 'duplicate_charge', severity: 'high', detected_at: M + 5_000 }),
      alert({ alert_id: 'apm-2', rule: 'duplicate_charge', severity: 'high', detected_at: M + 59_999 }),
      alert({ alert_id: 'apm-3', rule: 'sync_lag', severity: 'medium', detected_at: M + 60_000 }),
    ].map(toAlertRow);
    await write<AlertRow>('alerts', [alerts]);
    await write<AlertRow>('alerts', [alerts]); // exact replay: dropped by insert deduplication
    await write<AlertRow>('alerts', [alerts.slice(0, 1), alerts.slice(1)]); // batched differently: gets through

    const got = await rows<{ minute: string; rule: string; severity: string; alerts: number }>(`
      SELECT minute, rule, severity, uniqExactMerge(alerts) AS alerts
      FROM ${t.ch.table('alerts_per_minute')}
      GROUP BY minute, rule, severity
      ORDER BY minute, rule`);
    expect(got).toEqual([
      { minute: minute(M), rule: 'duplicate_charge', severity: 'high', alerts: 2 },
      { minute: minute(M + 60_000), rule: 'sync_lag', severity: 'medium', alerts: 1 },
    ]);
  });

  it('terminal_sync_lag_minute keeps lag quantiles, distinct events and max lag per terminal and minute', async () => {
    const tx = (id: string, terminal: string, lagMs: number, receivedAt: number): TransactionRow =>
      toTransactionRow(transaction({ event_id: id, terminal_id: terminal, event_time: receivedAt - lagMs, received_time: receivedAt }));
    const batch = [
      tx('lag-a1', 'term-A', 1_000, M + 1_000),
      tx('lag-a2', 'term-A', 2_000, M + 2_000),
      tx('lag-a3', 'term-A', 3_000, M + 3_000),
      tx('lag-b1', 'term-B', 7_200_000, M + 30_000),
      tx('lag-a4', 'term-A', 500, M + 61_000),
    ];
    await write<TransactionRow>('transactions', [batch]);
    await write<TransactionRow>('transactions', [batch]); // exact replay
    await write<TransactionRow>('transactions', [batch.slice(0, 2)]); // partial replay: counted once, max unchanged

    const got = await rows<{ minute: string; terminal_id: string; events: number; max_lag_ms: number; q: number[] }>(`
      SELECT minute, terminal_id, uniqExactMerge(events) AS events, max(max_lag_ms) AS max_lag_ms,
             quantilesMerge(0.5, 0.9, 0.99)(lag_ms) AS q
      FROM ${t.ch.table('terminal_sync_lag_minute')}
      GROUP BY minute, terminal_id
      ORDER BY minute, terminal_id`);
    expect(got.map(({ q: _q, ...r }) => r)).toEqual([
      { minute: minute(M), terminal_id: 'term-A', events: 3, max_lag_ms: 3_000 },
      { minute: minute(M), terminal_id: 'term-B', events: 1, max_lag_ms: 7_200_000 },
      { minute: minute(M + 60_000), terminal_id: 'term-A', events: 1, max_lag_ms: 500 },
    ]);
    expect(got[1]?.q).toEqual([7_200_000, 7_200_000, 7_200_000]);
    const medianA = got[0]?.q[0] ?? 0;
    expect(medianA).toBeGreaterThanOrEqual(1_000);
    expect(medianA).toBeLessThanOrEqual(2_000);
  });
});
