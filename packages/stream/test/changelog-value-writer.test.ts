// ChangelogValueWriter: a value written field by field gives the bytes of the plain object those
// writes describe, encoded by the generic writer (encodeChangelogValue / V1), whatever the writes:
// nested maps and lists, maps of 16 fields and more, names in and out of the dictionary, non-ASCII
// and long strings, a field written again (same value, another value, undefined), values bigger
// than the slab.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ChangelogValueWriter, decodeChangelogValue, encodeChangelogValue, encodeChangelogValueV1, KEY_DICTIONARY_V1 } from '../src/processor/changelog-codec.js';

// Field names by key: dictionary names and others (appended later too, as the rules register them).
const NAMES: string[] = [...KEY_DICTIONARY_V1.slice(0, 12), 'since', 'since_id', 'ünïcode', 'x'.repeat(40), 'abnormal_amount'];

type Scalar = number | string | boolean | null | undefined;
type Op = { k: number; v: Scalar } | { k: number; map: Op[] } | { k: number; list: Array<Scalar | Op[]> };

const scalar: fc.Arbitrary<Scalar> = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 32 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 127, 128, 255, 256, 65535, 65536, -32, -33, -129, 1_767_603_600_123),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('a3f1c2d4-1234-4abc-9def-0123456789ab', 'é'.repeat(20), 'T0000001'),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
);
const key = fc.nat({ max: NAMES.length + 1 }); // the last ones: names registered while writing
const ops: fc.Arbitrary<Op[]> = fc.letrec<{ ops: Op[] }>((tie) => ({
  ops: fc.array(
    fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.record({ k: key, v: scalar }),
      fc.record({ k: key, map: tie('ops') }),
      fc.record({ k: key, list: fc.array(fc.oneof(scalar, tie('ops')), { maxLength: 20 }) }),
    ),
    { maxLength: 24 },
  ),
})).ops;

/** Keys of a map written once as a map or list (the writer refuses a second one; a plain object would replace it). */
function dedupeContainers(list: Op[]): Op[] {
  const containers = new Set<number>();
  const scalars = new Set<number>();
  const out: Op[] = [];
  for (const op of list) {
    if ('v' in op) {
      if (containers.has(op.k)) continue;
      scalars.add(op.k);
      out.push(op);
    } else {
      if (containers.has(op.k) || scalars.has(op.k)) continue;
      containers.add(op.k);
      out.push('map' in op ? { k: op.k, map: dedupeContainers(op.map) } : { k: op.k, list: op.list.map((x) => (Array.isArray(x) ? dedupeContainers(x) : x)) });
    }
  }
  return out;
}

function toObject(names: string[], list: Op[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const op of list) {
    if ('v' in op) o[names[op.k]!] = op.v;
    else if ('map' in op) o[names[op.k]!] = toObject(names, op.map);
    else o[names[op.k]!] = op.list.map((x) => (Array.isArray(x) ? toObject(names, x) : x));
  }
  return o;
}

function write(w: ChangelogValueWriter, list: Op[]): void {
  for (const op of list) {
    if ('v' in op) {
      const v = op.v;
      if (typeof v === 'number') w.num(op.k, v);
      else if (v === null && op.k % 2 === 0) w.nil(op.k);
      else if (typeof v === 'string' || v === null) w.str(op.k, v);
      else if (typeof v === 'boolean') w.bool(op.k, v);
      else w.value(op.k, v);
    } else if ('map' in op) {
      w.map(op.k);
      write(w, op.map);
      w.end();
    } else {
      w.list(op.k, op.list.length);
      for (const x of op.list) {
        if (Array.isArray(x)) {
          w.addMap();
          write(w, x);
          w.end();
        } else if (typeof x === 'number') w.addNum(x);
        else if (typeof x === 'string' || x === null) w.addStr(x);
        else if (typeof x === 'boolean') w.addBool(x);
        else w.addStr(x as unknown as string); // undefined in a list: nil, as in JSON
      }
      w.end();
    }
  }
}

describe('changelog value writer', () => {
  it('gives the bytes of the plain object its writes describe (formats 2 and 1)', () => {
    fc.assert(
      fc.property(ops, fc.constantFrom(1 as const, 2 as const), (raw, format) => {
        const names = [...NAMES];
        const w = new ChangelogValueWriter(names, format);
        names.push('late_name', 'ref_expiry'); // registered after the writer was made
        const list = dedupeContainers(raw);
        w.beginValue();
        write(w, list);
        const bytes = Buffer.from(w.endValue());
        const o = toObject(names, list);
        expect(bytes.toString('hex')).toBe((format === 2 ? encodeChangelogValue(o) : encodeChangelogValueV1(o)).toString('hex'));
      }),
      { numRuns: 400 },
    );
  }, 60_000);

  it('handles maps of 16 fields and more, numbers in bulk, and values bigger than the slab', () => {
    const names = Array.from({ length: 300 }, (_, i) => `f${i}`);
    const w = new ChangelogValueWriter(names);
    const big = Array.from({ length: 70_000 }, (_, i) => i * 3.5);
    w.beginValue();
    for (let k = 0; k < 300; k++) w.num(k, k);
    expect(Buffer.from(w.endValue()).equals(encodeChangelogValue(Object.fromEntries(names.map((n, k) => [n, k]))))).toBe(true); // map16
    expect(() => {
      w.beginValue();
      w.num(1, 1);
      w.list(1, 0);
    }).toThrow(/written twice/);
    w.beginValue();
    for (let k = 0; k < 20; k++) w.str(k, `v${k}`);
    w.list(20, big.length);
    w.addNumbers(big, 0, 50_000);
    w.addNumbers(big, 50_000, big.length);
    w.end();
    w.str(3, 'again'); // replaced in place, after the big list moved the slab
    const out = Buffer.from(w.endValue());
    const expected: Record<string, unknown> = {};
    for (let k = 0; k < 20; k++) expected[`f${k}`] = k === 3 ? 'again' : `v${k}`;
    expected.f20 = big;
    expect(decodeChangelogValue(out)).toStrictEqual(expected);
    expect(out.equals(encodeChangelogValue(expected))).toBe(true);
  });

  it('writes a value that starts at any distance from the slab\'s end: names as keys, non-ASCII strings, nested plain data (both formats)', () => {
    // The codec's shared slab is 256 KiB: a big value first, then a filler of 256 KiB - R bytes that
    // starts a fresh slab, leaves R bytes for the value under test.
    const SLAB = 256 * 1024;
    const atSlabEnd = (r: number) => {
      encodeChangelogValue('a'.repeat(SLAB - 200));
      encodeChangelogValue('a'.repeat(SLAB - r - 6)); // format byte + str32 header + the chars
    };
    const names = ['terminal_id', 'since', 'due', 'nested'];
    const tid = '店舗端末番号';
    const nested = { due: 5, since: 'é', list: [1, 'ü', { id: 'x' }] };
    for (const format of [1, 2] as const) {
      const w = new ChangelogValueWriter(names, format);
      const encode = format === 2 ? encodeChangelogValue : encodeChangelogValueV1;
      for (let r = 1; r < 120; r++) {
        atSlabEnd(r);
        w.beginValue();
        w.str(0, tid);
        w.str(1, '€'.repeat(10));
        w.num(2, 1);
        w.value(3, nested);
        expect(Buffer.from(w.endValue()).equals(encode({ terminal_id: tid, since: '€'.repeat(10), due: 1, nested }))).toBe(true);
      }
    }
  });

  it('replaces a field written again with a string of the same length that is not the same text (non-ASCII)', () => {
    const w = new ChangelogValueWriter(['id']);
    w.beginValue();
    w.str(0, 'é'); // two UTF-8 bytes, C3 A9
    w.str(0, '\u00c3\u00a9'); // two chars whose codes are those bytes
    expect(decodeChangelogValue(Buffer.from(w.endValue()))).toStrictEqual({ id: '\u00c3\u00a9' });
  });
});
