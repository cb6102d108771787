import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  fromActionRow,
  fromAlertRow,
  fromDateTime64,
  fromDeadLetterRow,
  fromTransactionRow,
  toActionRow,
  toAlertRow,
  toDateTime64,
  toDeadLetterRow,
  toTransactionRow,
} from '../src/rows.js';
import { action, alert, deadLetter, transaction } from './fixtures.js';

describe('DateTime64 literals', () => {
  it('formats epoch ms as UTC with milliseconds', () => {
    expect(toDateTime64(Date.UTC(2023, 10, 14, 22, 13, 20, 123))).toBe('2023-11-14 22:13:20.123');
    expect(toDateTime64(0)).toBe('1970-01-01 00:00:00.000');
    expect(toDateTime64(-1)).toBe('1969-12-31 23:59:59.999');
  });

  it('rejects non-finite and out-of-range times', () => {
    expect(() => toDateTime64(Number.NaN)).toThrow(RangeError);
    expect(() => toDateTime64(Date.UTC(1899, 11, 31))).toThrow(RangeError);
    expect(() => toDateTime64(Date.UTC(2300, 0, 1))).toThrow(RangeError);
  });

  it('round-trips every ms in range', () => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1900, 0, 1), max: Date.UTC(2299, 11, 31, 23, 59, 59, 999) }), (ms) => fromDateTime64(toDateTime64(ms)) === ms),
    );
  });
});

describe('row mappers', () => {
  it('transaction round-trips', () => {
    const t = transaction();
    expect(fromTransactionRow(toTransactionRow(t))).toEqual(t);
    const sale = transaction({ kind: 'SALE', original_txn_id: null });
    expect(fromTransactionRow(toTransactionRow(sale))).toEqual(sale);
  });

  it('alert round-trips, details included', () => {
    const a = alert();
    const row = toAlertRow(a);
    expect(row.details).toEqual(a.details);
    expect(fromAlertRow(row as Parameters<typeof fromAlertRow>[0])).toEqual(a);
  });

  it('non-finite alert details become ClickHouse float literals', () => {
    const row = toAlertRow(alert({ details: { a: Number.NaN, b: Number.POSITIVE_INFINITY, c: Number.NEGATIVE_INFINITY, d: 1 } }));
    expect(row.details).toEqual({ a: 'nan', b: 'inf', c: '-inf', d: 1 });
  });

  it('action round-trips with and without expiry', () => {
    const a = action();
    expect(fromActionRow(toActionRow(a))).toEqual(a);
    const b = action({ expires_at: null });
    expect(fromActionRow(toActionRow(b))).toEqual(b);
  });

  it('dead letter carries raw bytes as base64', () => {
    const d = deadLetter();
    const row = toDeadLetterRow(d);
    expect(row.value_base64).toBe(Buffer.from([0x00, 0xff, 0xfe, 0x7b, 0x0a, 0x22, 0x00]).toString('base64'));
    expect(fromDeadLetterRow(row)).toEqual(d);
    const empty = deadLetter({ key: null, value: null });
    expect(fromDeadLetterRow(toDeadLetterRow(empty))).toEqual(empty);
  });

  it('accepts 64-bit integers read as strings', () => {
    const row = { ...toTransactionRow(transaction()), amount_minor: '123456789012', terminal_seq: '4242' };
    expect(fromTransactionRow(row).amount_minor).toBe(123456789012);
  });
});
