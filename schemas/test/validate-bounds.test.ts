// Bad input is caught where it enters: times are bounded (before 2000, from 2200, or more than
// max_clock_skew after received_time) and every failing field is named, not only the first.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_CLOCK_SKEW_MS, InvalidValueError, checkTransaction, validateTransaction, type Transaction } from '@tillwatch/schemas';

const received = Date.UTC(2026, 5, 1, 12);
const valid = {
  event_id: 'e1', txn_id: 'tx1', kind: 'SALE', status: 'APPROVED', terminal_id: 'T1', merchant_id: 'M1',
  card_token: 'tok_abc', amount_minor: 1250, currency: 'EUR', terminal_seq: 7, original_txn_id: null, event_time: received - 1000, received_time: received,
};

function errorOf(patch: object, o?: Parameters<typeof validateTransaction>[1]): InvalidValueError {
  try {
    validateTransaction({ ...valid, ...patch }, o);
  } catch (e) {
    if (e instanceof InvalidValueError) return e;
    throw e;
  }
  throw new Error('expected an InvalidValueError');
}

describe('validateTransaction bounds', () => {
  it('ClockSkew: event_time more than max_clock_skew (default 1 h) after received_time, up to the year 3000', () => {
    expect(DEFAULT_MAX_CLOCK_SKEW_MS).toBe(3_600_000);
    expect(validateTransaction({ ...valid, event_time: received + 3_600_000 }).event_time).toBe(received + 3_600_000);
    for (const eventTime of [received + 3_600_001, Date.UTC(2100, 0, 1)]) {
      const e = errorOf({ event_time: eventTime });
      expect(e.errorClass).toBe('ClockSkew');
      expect(e.issues.map((i) => i.field)).toEqual(['event_time']);
      expect(e.message).toMatch(/after received_time .*max clock skew 1 h/);
    }
    // Configurable: 2 h allows what 1 h refuses.
    expect(() => validateTransaction({ ...valid, event_time: received + 90 * 60_000 }, { maxClockSkewMs: 2 * 3_600_000 })).not.toThrow();
    expect(errorOf({ event_time: received + 90 * 60_000 }, { maxClockSkewMs: 30 * 60_000 }).errorClass).toBe('ClockSkew');
    // Late events (event_time far BEFORE received_time) are sync lag, a rule's business, not invalid.
    expect(() => validateTransaction({ ...valid, event_time: received - 30 * 86_400_000 })).not.toThrow();
  });

  it('InvalidValue: a time before 2000 or from 2200 on (either field)', () => {
    for (const patch of [{ event_time: Date.UTC(1999, 11, 31) }, { event_time: 1_700_000_000 /* seconds, not ms */ }, { received_time: Date.UTC(1970, 0, 2) }, { event_time: Date.UTC(3000, 0, 1), received_time: Date.UTC(3000, 0, 1) }]) {
      const e = errorOf(patch);
      expect(e.errorClass).toBe('InvalidValue');
      expect(e.message).toMatch(/outside 2000-01-01 \.\. 2200-01-01/);
    }
  });

  it('names every failing field, and the class is InvalidValue unless clock skew is the only problem', () => {
    const e = errorOf({ amount_minor: -5, currency: 'euro', card_token: '4111111111111111', event_time: received + 5 * 3_600_000 });
    expect(e.issues.map((i) => i.field)).toEqual(['amount_minor', 'currency', 'card_token', 'event_time']);
    expect(e.issues.map((i) => i.errorClass)).toEqual(['InvalidValue', 'InvalidValue', 'InvalidValue', 'ClockSkew']);
    expect(e.errorClass).toBe('InvalidValue');
    expect(e.message).toBe(e.issues.map((i) => `${i.field}: ${i.problem}`).join('; '));
    expect(e.field).toBe('amount_minor');
  });

  it('the DLQ stages the detector uses are the ones 004_dead_letters.sql documents', () => {
    const sql = readFileSync(fileURLToPath(new URL('../clickhouse/004_dead_letters.sql', import.meta.url)), 'utf8');
    const documented = /stage\s+LowCardinality\(String\) COMMENT '([^']*)'/.exec(sql)![1]!;
    for (const stage of ['detector.decode', 'detector.validate', 'sink.write']) expect(documented).toContain(stage);
  });
});

describe('checkTransaction (values an Avro reader of the contract decoded)', () => {
  it('returns the value itself when valid, and refuses exactly what validateTransaction refuses, with the same message', () => {
    const v = { ...valid } as Transaction;
    expect(checkTransaction(v)).toBe(v);
    const patches: object[] = [{ amount_minor: -1 }, { currency: 'euro' }, { card_token: '4111111111111111' }, { event_time: received + 3 * 3_600_000 }, { kind: 'GIFT', terminal_id: '' }, { original_txn_id: '' }, { received_time: Date.UTC(1999, 0, 1) }];
    for (const patch of patches) {
      const expected = errorOf(patch);
      expect(() => checkTransaction({ ...valid, ...patch } as Transaction)).toThrow(expected.message);
    }
  });
});

describe('a card number in a bad value is never echoed in the reason (rejects files, dead letters, logs)', () => {
  for (const [field, value] of [
    ['amount_minor', '4111111111111111'],
    ['amount_minor', -4111111111111111],
    ['currency', '4111 1111 1111 1111'],
    ['terminal_seq', '5500-0000-0000-0004'],
  ] as const) {
    it(`${field}: ${JSON.stringify(value)}`, () => {
      const e = errorOf({ [field]: value });
      expect(e.message).toContain(field);
      expect(e.message).toContain('[PAN REDACTED]');
      expect(e.message.replace(/\D/g, '')).not.toContain('4111111111111111');
      expect(e.message.replace(/\D/g, '')).not.toContain('5500000000000004');
    });
  }
});

describe('live input: a received_time from the future of the checking process (nowMs)', () => {
  it('is clock skew beyond the bound, accepted within it, and not checked without nowMs (the backtest reads history)', () => {
    const e = errorOf({ event_time: received + 3 * 3600_000 - 1000, received_time: received + 3 * 3600_000 }, { nowMs: received });
    expect(e.errorClass).toBe('ClockSkew');
    expect(e.message).toMatch(/^received_time: .* is 3 h ahead of this process's clock/);
    expect(() => validateTransaction({ ...valid, received_time: received + 3600_000, event_time: received + 3600_000 - 1 }, { nowMs: received })).not.toThrow();
    expect(() => validateTransaction({ ...valid, received_time: received + 3 * 3600_000, event_time: received }, { nowMs: received, maxClockSkewMs: 4 * 3600_000 })).not.toThrow();
    expect(() => validateTransaction({ ...valid, received_time: received + 3 * 3600_000, event_time: received })).not.toThrow();
  });
});
