import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CURRENCY_EXPONENTS, alertUpdateId, clickhouseMigrationsDir, type Alert, type AlertUpdate, type RefundReason } from '@tillwatch/schemas';
import { fromAlertRow, fromAlertUpdateRow, fromRefundReasonRow, toAlertRow, toAlertUpdateRow, toRefundReasonRow } from '../src/rows.js';
import { alert } from './fixtures.js';

export const update = (over: Partial<AlertUpdate> = {}): AlertUpdate => ({
  update_id: alertUpdateId('a-1', 'auto_resolved', 'refunded', ['e-9']), alert_id: 'a-1', rule: 'duplicate_charge', rule_version: 1, terminal_id: 'T1', merchant_id: 'M1',
  status: 'auto_resolved', resolution: 'refunded', resolved_by_event_ids: ['e-9'], resolved_at: Date.UTC(2026, 0, 5, 10), summary: 'refunded', details: { refunded_minor: 2500 }, ...over,
});

export const reason = (over: Partial<RefundReason> = {}): RefundReason => ({
  event_id: 'e-9', txn_id: 'tx-9', original_txn_id: 'tx-1', kind: 'REFUND', reason: 'duplicate_charge', merchant_id: 'M1', terminal_id: 'T1', amount_minor: 2500, currency: 'EUR',
  event_time: Date.UTC(2026, 0, 5, 9, 58), received_time: Date.UTC(2026, 0, 5, 10), alert_id: 'a-1', ...over,
});

// Rows as written carry details as number | 'nan'; read back, ClickHouse gives numbers (NaN as null).
const readUpdate = (u: AlertUpdate) => fromAlertUpdateRow(toAlertUpdateRow(u) as Parameters<typeof fromAlertUpdateRow>[0]);
const readAlert = (a: Alert) => fromAlertRow(toAlertRow(a) as Parameters<typeof fromAlertRow>[0]);

describe('money-trail rows', () => {
  it('alert updates and refund reasons round-trip', () => {
    expect(readUpdate(update())).toEqual(update());
    expect(fromRefundReasonRow(toRefundReasonRow(reason()))).toEqual(reason());
    expect(fromRefundReasonRow(toRefundReasonRow(reason({ original_txn_id: null, alert_id: null, kind: 'VOID', reason: 'ordinary' })))).toEqual(reason({ original_txn_id: null, alert_id: null, kind: 'VOID', reason: 'ordinary' }));
    expect(toAlertUpdateRow(update({ details: { x: Number.NaN } })).details).toEqual({ x: 'nan' });
  });

  it('alerts carry currency and amount_minor when set, null columns otherwise', () => {
    const a = alert();
    expect(toAlertRow(a)).toMatchObject({ currency: null, amount_minor: null });
    const money = { ...a, currency: 'EUR', amount_minor: 2500 };
    expect(toAlertRow(money)).toMatchObject({ currency: 'EUR', amount_minor: 2500 });
    expect(readAlert(money)).toEqual(money);
    expect(readAlert(a)).toEqual(a);
  });

  it('the currency_minor_units rows of migration 009 are formatMoney\'s table', () => {
    const sql = readFileSync(join(clickhouseMigrationsDir, '009_money_trail.sql'), 'utf8');
    const values = sql.slice(sql.indexOf('currency_minor_units (currency, minor_units) VALUES'));
    const rows = Object.fromEntries([...values.matchAll(/\('([A-Z]{3})', (\d)\)/g)].map((m) => [m[1]!, Number(m[2])]));
    expect(rows).toEqual({ ...CURRENCY_EXPONENTS });
  });
});
