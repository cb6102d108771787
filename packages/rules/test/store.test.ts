// The engine's data structures against naive models.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MedianSample } from '../src/index.js';
import { select } from '../src/median.js';
import { TerminalRowTable } from '../src/storage/terminal-rows.js';
import { AlignedBuffer, ExpiryWheel, RowIndex, SaleRows, hashString } from '../src/store.js';

const naiveMedian = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n & 1 ? s[n >> 1]! : (s[(n >> 1) - 1]! + s[n >> 1]!) / 2;
};

describe('MedianSample', () => {
  it('is the exact median of the last `capacity` values, and its lower bound never exceeds it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 130 }), fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 400 }), (cap, values) => {
        const m = new MedianSample(cap);
        values.forEach((v, i) => {
          m.add(v);
          const window = values.slice(Math.max(0, i + 1 - cap), i + 1);
          const lb = m.lowerBound();
          const exact = naiveMedian(window);
          expect(lb).toBeLessThanOrEqual(exact);
          expect(m.median()).toBe(exact);
          expect(m.values()).toEqual(window);
          expect(m.size).toBe(window.length);
        });
      }),
      { numRuns: 400 },
    );
  });

  it('keeps the bound without exact reads in between (the engine path)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 1e9 }), { minLength: 1, maxLength: 600 }), (values) => {
        const m = new MedianSample(101);
        values.forEach((v, i) => {
          m.add(v);
          expect(m.lowerBound()).toBeLessThanOrEqual(naiveMedian(values.slice(Math.max(0, i - 100), i + 1)));
        });
      }),
    );
  });

  it('reports NaN when empty', () => {
    expect(new MedianSample(5).median()).toBeNaN();
  });

  it('select: the k-th smallest with values partitioned around it, also when it gives up partitioning and sorts', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 300 }), fc.nat(), fc.integer({ min: 0, max: 4 }), (values, kk, partitions) => {
        const k = kk % values.length;
        const sorted = [...values].sort((x, y) => x - y);
        for (const limit of [partitions, undefined]) {
          const a = Float64Array.from(values);
          const v = select(a, a.length, k, limit);
          expect(v).toBe(sorted[k]);
          for (let i = 0; i < k; i++) expect(a[i]).toBeLessThanOrEqual(v);
          for (let i = k + 1; i < a.length; i++) expect(a[i]).toBeGreaterThanOrEqual(v);
          expect([...a].sort((x, y) => x - y)).toEqual(sorted);
        }
      }),
    );
  });
});

describe('RowIndex', () => {
  it('behaves like a multimap from hash to rows under inserts and removals', () => {
    const op = fc.oneof(
      fc.record({ t: fc.constant('ins' as const), key: fc.integer({ min: 0, max: 60 }) }),
      fc.record({ t: fc.constant('del' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const idx = new RowIndex(16);
        const live: { row: number; hash: number }[] = [];
        let next = 0;
        for (const o of ops) {
          if (o.t === 'ins') {
            // Few distinct hashes (long probe runs, wrap-around, negative values) or real string hashes.
            const hash = o.key < 30 ? (((o.key % 9) - 4) * 0x01000003) | 0 : hashString(`k${o.key}`, 1);
            idx.insert(hash, next);
            live.push({ row: next++, hash });
          } else if (live.length > 0) {
            const [x] = live.splice(o.pick % live.length, 1);
            idx.remove(x!.hash, x!.row);
          }
          expect(idx.count).toBe(live.length);
          for (const x of live) expect(idx.slotOf(x.hash, x.row)).toBeGreaterThanOrEqual(0);
        }
      }),
    );
  });
});

describe('ExpiryWheel', () => {
  it('visits every entry once, only when its bucket has fully passed', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 10_000 }), { maxLength: 200 }), fc.array(fc.integer({ min: 0, max: 12_000 }), { maxLength: 20 }), (expiries, sweeps) => {
        const w = new ExpiryWheel(100);
        expiries.forEach((e, i) => w.add(w.bucketOf(e), i, 0));
        const seen = new Set<number>();
        for (const now of [...sweeps].sort((a, b) => a - b)) {
          w.sweep(now, (row) => {
            expect(seen.has(row)).toBe(false);
            seen.add(row);
            expect(expiries[row]!).toBeLessThanOrEqual(now);
          });
          for (let i = 0; i < expiries.length; i++) if (expiries[i]! < Math.floor(now / 100) * 100) expect(seen.has(i)).toBe(true);
        }
        expect(w.size).toBe(expiries.length - seen.size);
      }),
    );
  });
});

describe('AlignedBuffer and SaleRows', () => {
  it('keeps every row through growth (the buffer grows in place or is copied)', () => {
    const b = new AlignedBuffer(100);
    new Float64Array(b.buffer).fill(7);
    const grown = b.grow(5 * 65536 + 8);
    expect(grown.byteLength).toBeGreaterThanOrEqual(5 * 65536 + 8);
    const f = new Float64Array(grown);
    expect(f[0]).toBe(7);
    expect(f[65536 / 8 - 1]).toBe(7);
    expect(f[65536 / 8]).toBe(0);
    const rows = new SaleRows(4);
    const made: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const r = rows.alloc();
      rows.setAmount(r, i * 3);
      rows.setEventTime(r, 1e12 + i);
      made.push(r);
    }
    made.forEach((r, i) => {
      expect(rows.amount(r)).toBe(i * 3);
      expect(rows.eventTime(r)).toBe(1e12 + i);
    });
  });
});

describe('TerminalRowTable', () => {
  it('gives each range its own fields, resets them when a slot is taken, and reuses released ranges', () => {
    const t = new TerminalRowTable(2);
    const a = t.reserve(8, 0)!;
    const b = t.reserve(2, NaN)!;
    expect(b.base).toBeGreaterThanOrEqual(a.base + 8);
    for (let k = 0; k < 40; k++) t.reset(k); // grows past its initial 2 slots
    a.set(a.row(39), 7, 5);
    b.set(b.row(39), 0, 9);
    expect(a.get(a.row(39), 7)).toBe(5);
    expect(b.get(b.row(39), 0)).toBe(9);
    expect(Number.isNaN(b.get(b.row(38), 1))).toBe(true);
    t.reset(39);
    expect(a.get(a.row(39), 7)).toBe(0);
    expect(Number.isNaN(b.get(b.row(39), 0))).toBe(true);
    // A full row refuses; a released range is handed out again, initialised for every slot.
    expect(t.reserve(7, 0)).toBeNull();
    b.release();
    const c = t.reserve(2, 1)!;
    expect(c.base).toBe(b.base);
    expect(c.get(c.row(12), 1)).toBe(1);
  });
});
