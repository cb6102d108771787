// The byte-level line parser must agree with JSON.parse whenever it answers, and answer for the
// ordinary machine-written lines it exists for.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createLineParser } from '../src/index.js';
import { Scenario } from './helpers/builder.js';
import { denseStream } from './helpers/streams.js';

const FIELDS = ['event_id', 'txn_id', 'kind', 'status', 'terminal_id', 'merchant_id', 'card_token', 'amount_minor', 'currency', 'terminal_seq', 'original_txn_id', 'event_time', 'received_time'];
const parse = createLineParser((b, s, e) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1', s, e));
const run = (line: string): Record<string, unknown> | null => {
  const buf = Buffer.from(line, 'utf8');
  return parse(buf, 0, buf.length) as Record<string, unknown> | null;
};

const value = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom('a', '"', '\\', '\n', '\u0001', 'é', '\u007f', '0') }),
  fc.integer(),
  fc.nat(),
  fc.maxSafeNat(),
  fc.double(),
  fc.constantFrom(null, true, false, 0, -0, 1e21, 0.5, 'SALE', 'APPROVED', 'EUR', 'REFUND', [], {}),
);
const key = fc.oneof(fc.constantFrom(...FIELDS), fc.constantFrom('extra', 'Kind', 'event_id ', ''), fc.string());
const mutate = fc.constantFrom('none', 'space', 'cr', 'trailing', 'leadingZero', 'minus', 'exp');

function apply(line: string, m: string): string {
  switch (m) {
    case 'space':
      return line.replace(':', ': ');
    case 'cr':
      return `${line}\r`;
    case 'trailing':
      return `${line} `;
    case 'leadingZero':
      return line.replace(/:(\d)/, ':0$1');
    case 'minus':
      return line.replace(/:(\d)/, ':-$1');
    case 'exp':
      return line.replace(/:(\d+)/, ':$1e0');
    default:
      return line;
  }
}

describe('createLineParser', () => {
  it('agrees with JSON.parse whenever it answers (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(key, value), { maxLength: 16 }), mutate, (pairs, m) => {
        const line = apply(`{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`, m);
        const fast = run(line);
        if (fast === null) return;
        const ref = JSON.parse(line) as Record<string, unknown>;
        for (const k of Object.keys(ref)) expect(FIELDS).toContain(k);
        for (const k of FIELDS) expect(Object.is(fast[k], ref[k]) || (fast[k] === undefined && !(k in ref))).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees on real transaction lines, with fields in any order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.boolean(), (seed, shuffle) => {
        for (const t of denseStream(seed, 50)) {
          let entries = Object.entries(t);
          if (shuffle) entries = entries.reverse();
          const line = JSON.stringify(Object.fromEntries(entries));
          const fast = run(line);
          expect(fast).not.toBeNull();
          expect({ ...fast }).toEqual(JSON.parse(line));
        }
      }),
      { numRuns: 50 },
    );
  });

  it('leaves whitespace, escapes, non-ASCII, duplicates, unknown keys and odd numbers to JSON.parse', () => {
    const base = new Scenario().lines()[0] ?? JSON.stringify(new Scenario().sale({ at: 0 }));
    const t = JSON.parse(base) as Record<string, unknown>;
    const line = (o: Record<string, unknown>): string => JSON.stringify(o);
    expect(run(line(t))).not.toBeNull();
    expect(run(`${line(t)}\r`)).toBeNull();
    expect(run(line(t).replace('{', '{ '))).toBeNull();
    expect(run(line({ ...t, merchant_id: 'Café' }))).toBeNull();
    expect(run(line({ ...t, merchant_id: 'a"b' }))).toBeNull();
    expect(run(line({ ...t, extra: 1 }))).toBeNull();
    expect(run(line(t).replace('{', '{"kind":"VOID",'))).toBeNull();
    expect(run(line({ ...t, amount_minor: -5 }))).toBeNull();
    expect(run(line({ ...t, amount_minor: 1.5 }))).toBeNull();
    expect(run(line({ ...t, amount_minor: 1234567890123456 }))).toBeNull();
    expect(run(line({ ...t, amount_minor: true }))).toBeNull();
    expect(run('')).toBeNull();
    expect(run('{}')).toBeNull();
  });
});
