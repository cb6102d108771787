import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateTransaction, type Action, type Alert, type DeadLetter, type RefundReason, type Transaction } from '@tillwatch/schemas';
import { createBatchWriter } from '../src/writer.js';
import {
  ContractColumns,
  fromActionRow,
  fromAlertRow,
  fromDeadLetterRow,
  fromTransactionRow,
  toActionRow,
  toAlertRow,
  toAlertTriageRow,
  toDeadLetterRow,
  toRefundReasonRow,
  toTransactionRow,
} from '../src/rows.js';
import { ClickHouseQueryError } from '../src/errors.js';
import { createTestClickHouse, type TestClickHouse } from '../src/testing.js';
import { T0, action, alert, deadLetter, transaction } from './fixtures.js';

let t: TestClickHouse;
beforeAll(async () => {
  t = await createTestClickHouse({ migrate: true });
});
afterAll(async () => {
  await t?.dispose();
});

async function rows<R>(query: string, params: Record<string, unknown> = {}): Promise<R[]> {
  const rs = await t.ch.client.query({ query, query_params: params, format: 'JSONEachRow' });
  return rs.json<R>();
}
async function count(query: string, params: Record<string, unknown> = {}): Promise<number> {
  const [r] = await rows<{ n: number }>(query, params);
  return Number(r?.n);
}
function writer<Row extends object>(table: string) {
  return createBatchWriter<Row>({ ch: t.ch, table, maxRows: 1000, maxDelayMs: 60_000 });
}

describe('batch writer on embedded chDB', () => {
  it('writes a transaction and reads it back field for field', async () => {
    const tx: Transaction = transaction({ event_id: 'rt-tx-1' });
    const sale: Transaction = transaction({ event_id: 'rt-tx-2', kind: 'SALE', original_txn_id: null, amount_minor: 0, event_time: 0 });
    const w = writer('transactions');
    await w.add(toTransactionRow(tx));
    await w.add(toTransactionRow(sale));
    await w.close();
    const back = await rows<Parameters<typeof fromTransactionRow>[0]>(
      `SELECT ${ContractColumns.transactions} FROM ${t.ch.table('transactions')} FINAL WHERE event_id IN {ids:Array(String)} ORDER BY event_id`,
      { ids: ['rt-tx-1', 'rt-tx-2'] },
    );
    expect(back.map(fromTransactionRow)).toEqual([tx, sale]);
    const [lag] = await rows<{ sync_lag_ms: number }>(`SELECT sync_lag_ms FROM ${t.ch.table('transactions')} WHERE event_id = 'rt-tx-1'`);
    expect(lag?.sync_lag_ms).toBe(3_600_000);
  });

  it('writes an alert (Map details, Array evidence, nullable card) and reads it back', async () => {
    const a: Alert = alert({ alert_id: 'rt-al-1', card_token: 'tok_x', details: { median: 1250.5, ratio: 12.25, missing_from: 41, missing_to: 45, neg: -3.5e-9 } });
    const b: Alert = alert({ alert_id: 'rt-al-2', event_ids: [], details: {} });
    const w = writer('alerts');
    await w.add(toAlertRow(a));
    await w.add(toAlertRow(b));
    await w.close();
    const back = await rows<Parameters<typeof fromAlertRow>[0]>(
      `SELECT ${ContractColumns.alerts} FROM ${t.ch.table('alerts')} FINAL WHERE alert_id LIKE 'rt-al-%' ORDER BY alert_id`,
    );
    expect(back.map(fromAlertRow)).toEqual([a, b]);
    const [ratio] = await rows<{ r: number }>(`SELECT details['ratio'] AS r FROM ${t.ch.table('alerts')} WHERE alert_id = 'rt-al-1'`);
    expect(ratio?.r).toBe(12.25);
  });

  it('writes an action and reads it back', async () => {
    const a: Action = action({ action_id: 'rt-ac-1' });
    const b: Action = action({ action_id: 'rt-ac-2', kind: 'FREEZE_TERMINAL', target_type: 'TERMINAL', target_id: 'term-001', expires_at: null });
    const w = writer('actions');
    await w.add(toActionRow(a));
    await w.add(toActionRow(b));
    await w.close();
    const back = await rows<Parameters<typeof fromActionRow>[0]>(`SELECT ${ContractColumns.actions} FROM ${t.ch.table('actions')} FINAL WHERE action_id LIKE 'rt-ac-%' ORDER BY action_id`);
    expect(back.map(fromActionRow)).toEqual([a, b]);
  });

  it('writes a dead letter with its raw bytes and reads it back', async () => {
    const d: DeadLetter = deadLetter({ source_offset: 1 });
    const e: DeadLetter = deadLetter({ source_offset: 2, key: null, value: null, stage: 'sink.write' });
    const w = writer('dead_letters');
    await w.add(toDeadLetterRow(d));
    await w.add(toDeadLetterRow(e));
    await w.close();
    const back = await rows<Parameters<typeof fromDeadLetterRow>[0]>(
      `SELECT ${ContractColumns.dead_letters} FROM ${t.ch.table('dead_letters')} FINAL WHERE source_offset IN (1, 2) ORDER BY source_offset`,
    );
    expect(back.map(fromDeadLetterRow)).toEqual([d, e]);
    // The ALIAS column gives the raw bytes back in SQL.
    const [raw] = await rows<{ h: string }>(`SELECT hex(value) AS h FROM ${t.ch.table('dead_letters')} WHERE source_offset = 1`);
    expect(raw?.h).toBe(Buffer.from(d.value as Buffer).toString('hex').toUpperCase());
  });

  it('the same batch written twice counts once — with a batch id, and without one', async () => {
    const batch = [alert({ alert_id: 'dup-1' }), alert({ alert_id: 'dup-2', rule: 'sync_lag' })].map(toAlertRow);
    const raw = `SELECT count() AS n FROM ${t.ch.table('alerts')} WHERE alert_id LIKE 'dup-%'`;
    const final = `SELECT count() AS n FROM ${t.ch.table('alerts')} FINAL WHERE alert_id LIKE 'dup-%'`;
    const writeTwice = async (batchId: string | undefined) => {
      for (let i = 0; i < 2; i++) {
        const w = writer('alerts');
        for (const r of batch) await w.add(r);
        await w.flush(batchId === undefined ? {} : { batchId });
        await w.close();
      }
    };
    await writeTwice('pos.alerts.v1:0:100-101');
    // Insert deduplication dropped the repeat before it became rows at all.
    expect(await count(raw)).toBe(2);
    expect(await count(final)).toBe(2);
    await writeTwice(undefined); // content token: a different token than the batch id, so once more
    expect(await count(raw)).toBe(4);
    expect(await count(final)).toBe(2);
  });

  it('a replay batched differently gets past insert dedup but FINAL still counts once', async () => {
    const all = ['re-1', 're-2', 're-3'].map((id) => toAlertRow(alert({ alert_id: id })));
    const w = writer('alerts');
    for (const r of all) await w.add(r);
    await w.flush();
    for (const r of all.slice(1)) await w.add(r);
    await w.flush();
    await w.close();
    expect(await count(`SELECT count() AS n FROM ${t.ch.table('alerts')} FINAL WHERE alert_id LIKE 're-%'`)).toBe(3);
  });

  it('a batch id token does not leak into the next insert on the embedded session', async () => {
    // Regression for the chDB quirk handled in embedded.ts: settings of one call stuck to the next.
    const w = writer('alert_triage');
    await w.add(toAlertTriageRow({ alert_id: 'leak-1', status: 'acknowledged', actor: 'ana', note: '', at: T0 }));
    await w.flush({ batchId: 'triage-batch-1' });
    await t.ch.client.insert({
      table: t.ch.table('alert_triage'),
      values: [toAlertTriageRow({ alert_id: 'leak-2', status: 'resolved', actor: 'ana', note: '', at: T0 })],
      format: 'JSONEachRow',
    });
    await w.close();
    expect(await count(`SELECT count() AS n FROM ${t.ch.table('alert_triage')} WHERE alert_id LIKE 'leak-%'`)).toBe(2);
    const [s] = await rows<{ v: string }>("SELECT getSetting('insert_deduplication_token') AS v");
    expect(s?.v).toBe('');
  });

  it('triage: current status is the latest row of the audit trail', async () => {
    const w = writer('alert_triage');
    await w.add(toAlertTriageRow({ alert_id: 'tri-1', status: 'acknowledged', actor: 'ana', note: 'looking', at: T0 + 1000 }));
    await w.add(toAlertTriageRow({ alert_id: 'tri-1', status: 'false_positive', actor: 'bo', note: 'test card', at: T0 + 5000 }));
    await w.add(toAlertTriageRow({ alert_id: 'tri-1', status: 'resolved', actor: 'cy', note: 'late duplicate', at: T0 + 3000 }));
    await w.close();
    const [s] = await rows<{ status: string; actor: string }>(`SELECT status, actor FROM ${t.ch.table('alert_status')} WHERE alert_id = 'tri-1'`);
    expect(s).toEqual({ status: 'false_positive', actor: 'bo' });
  });

  it('a rejected batch stays buffered and surfaces as ClickHouseQueryError', async () => {
    const w = createBatchWriter<Record<string, unknown>>({ ch: t.ch, table: 'alerts', maxRows: 10, maxDelayMs: 60_000 });
    await w.add({ ...toAlertRow(alert({ alert_id: 'bad-1' })), severity: 'apocalyptic' });
    const err = await w.flush().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClickHouseQueryError);
    expect(w.pending).toBe(1);
  });

  it('with onRejected, the real engine refuses only the bad rows: the rest is written once, the bad ones handed over', async () => {
    const rejected: { id: unknown; meta: number | undefined; type: string | undefined }[] = [];
    const w = createBatchWriter<Record<string, unknown>, number>({
      ch: t.ch, table: 'alerts', maxRows: 1000, maxDelayMs: 60_000,
      onRejected: async (r) => void rejected.push(...r.map((x) => ({ id: x.row['alert_id'], meta: x.meta, type: x.error.type }))),
    });
    for (let i = 0; i < 20; i++) {
      const row = toAlertRow(alert({ alert_id: `bis-${i}` }));
      await w.add(i === 7 || i === 13 ? { ...row, severity: 'apocalyptic' } : row, i);
    }
    await w.flush();
    expect(rejected).toEqual([{ id: 'bis-7', meta: 7, type: 'UNKNOWN_ELEMENT_OF_ENUM' }, { id: 'bis-13', meta: 13, type: 'UNKNOWN_ELEMENT_OF_ENUM' }]);
    // Plain count(), not FINAL: a rejected block left nothing behind and no row was written twice.
    expect(await count(`SELECT count() AS n FROM ${t.ch.table('alerts')} WHERE startsWith(alert_id, 'bis-')`)).toBe(18);
    expect(w.pending).toBe(0);
  });

  it('a batch spanning more than 100 months goes through (a terminal with a broken clock; ClickHouse would refuse it with 252 TOO_MANY_PARTS)', async () => {
    // The tables partition by month of terminal time; valid event_times reach from 2000 to
    // received_time + skew, so one batch can touch any number of partitions. Configured as the sink
    // configures its writers: flushes driven by the caller, rejected rows handed over.
    const months = 101;
    const rejected: unknown[] = [];
    const sinkLike = (table: string) =>
      createBatchWriter<object>({ ch: t.ch, table, maxRows: Number.MAX_SAFE_INTEGER, maxDelayMs: 2 ** 31 - 1, onRejected: async (r) => void rejected.push(...r) });
    const txs = sinkLike('transactions');
    const reasons = sinkLike('refund_reasons');
    for (let i = 0; i < months; i++) {
      const event_time = Date.UTC(2001, i, 15);
      // Valid to the contract: received now (T0), event_time long before it.
      const tx = validateTransaction(transaction({ event_id: `clock-${i}`, txn_id: `clock-txn-${i}`, terminal_seq: i, event_time, received_time: T0 }));
      await txs.add(toTransactionRow(tx));
      const reason: RefundReason = {
        event_id: `clock-${i}`, txn_id: `clock-txn-${i}`, original_txn_id: null, kind: 'REFUND', reason: 'no_sale',
        merchant_id: 'merch-01', terminal_id: 'term-001', amount_minor: 100, currency: 'EUR', event_time, received_time: T0, alert_id: null,
      };
      await reasons.add(toRefundReasonRow(reason));
    }
    await txs.flush({ batchId: 'clock-transactions' });
    await reasons.flush({ batchId: 'clock-refund-reasons' });
    expect(rejected).toEqual([]);
    expect(txs.pending + reasons.pending).toBe(0);
    const spread = `SELECT count() AS n, uniqExact(toYYYYMM(event_time)) AS m FROM {table:Identifier} WHERE startsWith(event_id, 'clock-')`;
    for (const table of ['transactions', 'refund_reasons']) {
      const [r] = await rows<{ n: number; m: number }>(spread.replace('{table:Identifier}', t.ch.table(table)));
      expect({ table, n: Number(r?.n), m: Number(r?.m) }).toEqual({ table, n: months, m: months });
    }
  });
});
