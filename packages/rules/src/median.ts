// A terminal's last `capacity` approved sale amounts (arrival order), with an exact median decision
// that costs one ring write per sale plus, every up to 32 sales, one counting pass over the ring (and
// a selection when the bound has to be recomputed).
//
// Keeping a sorted array up to date costs a binary search and a ~n/3-element shift per sale; worse, at
// fleet scale every touch of a terminal's sample is a cache miss. So the sample is only a ring of its
// values (one cache line written per sale), and the terminal carries a bound `lb` that the exact median
// cannot be below, checked every few additions by one counting pass over the ring and recomputed by a
// selection over a copy of it only when it no longer holds or has become loose (no sorting).
// Removing values never lowers an order statistic and adding k values lowers it by at most k ranks, so
// with S the sorted values at a recomputation (n0 of them) and K additions until the next one, the
// median stays >= S[((n0-1)>>1) - (K-1)] until then. abnormal_amount asks for the exact median (a
// selection over the ring) only when amount >= ratio x lb, which an ordinary sale never reaches; the
// decision is always the exact one.
//
// A sample's header (a few numbers) lives in the first SAMPLE_HEADER fields of a terminal-row range
// the caller owns (storage/terminal-rows.ts; abnormal_amount: its range in the engine's terminal row),
// read and written through the range's accessors, hence the functional API taking (fields, row): no
// object per sample to chase. The values of all samples sharing a capacity live in one SampleSlab.
import type { FieldKey, StateWriter } from './state-writer.js';
import { TerminalRowTable, type TerminalFields, type TerminalRow } from './storage/terminal-rows.js';
import { AlignedBuffer } from './store.js';

/** Additions between two recomputations of the bound, at most (fewer while the sample is small). */
const REBUILD_EVERY = 32;
/** A bound in force is kept while it holds and its rank is at least r >> KEEP_SHIFT (r: the rank aimed at). */
const KEEP_SHIFT = 2;

/**
 * One buffer holding many samples of the same capacity (a stride of doubles each, rounded up to whole
 * cache lines, in a line-aligned buffer): reaching a terminal's sample costs one cache miss instead of
 * two (typed-array object, then its data), and its regions start on line boundaries.
 */
export class SampleSlab {
  buf: Float64Array;
  /** Doubles per sample: the ring of values; a multiple of 8 (64 bytes). */
  readonly stride: number;
  /** Null for a small slab (a standalone sample): a plain array, no 64 KiB page of its own. */
  private readonly mem: AlignedBuffer | null;
  private top = 0;
  private readonly free: number[] = [];

  constructor(
    readonly capacity: number,
    initialSamples = 16,
  ) {
    this.stride = Math.ceil(capacity / 8) * 8;
    const bytes = this.stride * 8 * initialSamples;
    // Not committed up front: a slab's strides are handed out one terminal at a time (AlignedBuffer).
    this.mem = bytes >= 65536 ? new AlignedBuffer(bytes, false) : null;
    this.buf = this.mem !== null ? new Float64Array(this.mem.buffer) : new Float64Array(bytes / 8);
  }

  alloc(): number {
    const f = this.free.pop();
    if (f !== undefined) return f;
    const stride = this.stride;
    if ((this.top + 1) * stride > this.buf.length) {
      if (this.mem !== null) this.buf = new Float64Array(this.mem.grow(this.buf.length * 8 * 2));
      else {
        const bigger = new Float64Array(this.buf.length * 2);
        bigger.set(this.buf);
        this.buf = bigger;
      }
    }
    return this.top++ * stride;
  }

  release(offset: number): void {
    this.free.push(offset);
  }
}

// A sample's header: six numbers, fields 0 .. SAMPLE_HEADER-1 of the caller's TerminalFields range in
// a terminal's row (`fields.row(slot)`; so reaching a terminal's sample costs no object and no pointer
// chase). The slab holding the values is passed alongside.
/** Offset of the sample's ring in its slab. */
const H_OFF = 0;
/** Oldest value of the ring (0 until the ring is full: values fill it in arrival order). */
const H_HEAD = 1;
/** Values held. */
const H_N = 2;
/** Values added since the bound was last computed. */
const H_ADDED = 3;
/** Additions after which the bound is computed again (the K the bound was computed for). */
const H_EVERY = 4;
/** The static lower bound of the median (0: none known). */
const H_LB = 5;
/** Numbers a sample header takes (the range's first fields); a caller's range may hold its own fields after them. */
export const SAMPLE_HEADER = 6;

/**
 * Scratch for selections (the ring's values copied, then partially ordered): one array shared by all
 * samples, so it stays in cache; grown to the largest capacity seen.
 */
let scratch = new Float64Array(256);

/** Starts an empty sample in `slab`; its header in fields 0 .. SAMPLE_HEADER-1 of `row`. */
export function sampleInit(fields: TerminalFields, row: TerminalRow, slab: SampleSlab): void {
  fields.set(row, H_OFF, slab.alloc());
  fields.set(row, H_HEAD, 0);
  fields.set(row, H_N, 0);
  fields.set(row, H_ADDED, 0);
  fields.set(row, H_EVERY, 1);
  fields.set(row, H_LB, 0);
}

/** Gives the sample's values back to its slab. */
export function sampleRelease(fields: TerminalFields, row: TerminalRow, slab: SampleSlab): void {
  slab.release(fields.get(row, H_OFF));
}

/** Values held. */
export function sampleSize(fields: TerminalFields, row: TerminalRow): number {
  return fields.get(row, H_N);
}

export function sampleAdd(fields: TerminalFields, row: TerminalRow, slab: SampleSlab, value: number): void {
  // One value of the ring is written per sale (one cache line).
  const cap = slab.capacity;
  const off = fields.get(row, H_OFF);
  const n = fields.get(row, H_N);
  if (n < cap) {
    slab.buf[off + n] = value;
    fields.set(row, H_N, n + 1);
  } else {
    const head = fields.get(row, H_HEAD);
    slab.buf[off + head] = value;
    fields.set(row, H_HEAD, head + 1 === cap ? 0 : head + 1);
  }
  const added = fields.get(row, H_ADDED) + 1;
  if (added >= fields.get(row, H_EVERY)) rebound(fields, row, slab);
  else fields.set(row, H_ADDED, added);
}

/** A value the exact median is never below (0 when none is known). */
export function sampleLowerBound(fields: TerminalFields, row: TerminalRow, _slab: SampleSlab): number {
  return fields.get(row, H_LB);
}

/** Exact median of the values held; NaN when empty. Even count: mean of the two middle values. */
export function sampleMedian(fields: TerminalFields, row: TerminalRow, slab: SampleSlab): number {
  const n = fields.get(row, H_N);
  if (n === 0) return NaN;
  const a = copyRing(fields, row, slab, n);
  const mid = n >> 1;
  const hi = select(a, n, mid);
  if (n & 1) return hi;
  // select left every value below index mid at or below a[mid]: the other middle value is their maximum.
  let lo = a[0]!;
  for (let i = 1; i < mid; i++) if (a[i]! > lo) lo = a[i]!;
  return (lo + hi) / 2;
}

/** Values oldest first (for snapshots). */
export function sampleValues(fields: TerminalFields, row: TerminalRow, slab: SampleSlab): number[] {
  const cap = slab.capacity;
  const buf = slab.buf;
  const off = fields.get(row, H_OFF);
  const n = fields.get(row, H_N);
  const head = fields.get(row, H_HEAD);
  const all: number[] = [];
  for (let k = 0; k < n; k++) {
    let i = head + k;
    if (i >= cap) i -= cap;
    all.push(buf[off + i]!);
  }
  return all;
}

/** Values oldest first, written as the list `k` of a changelog value (what sampleValues returns). */
export function sampleWrite(fields: TerminalFields, row: TerminalRow, slab: SampleSlab, w: StateWriter, k: FieldKey): void {
  const cap = slab.capacity;
  const buf = slab.buf;
  const off = fields.get(row, H_OFF);
  const n = fields.get(row, H_N);
  const head = fields.get(row, H_HEAD);
  w.list(k, n);
  // The ring in at most two runs: head .. end of the ring, then its start.
  const first = Math.min(n, cap - head);
  w.addNumbers(buf, off + head, off + head + first);
  w.addNumbers(buf, off, off + n - first);
  w.end();
}

/** The n values of the ring copied to the scratch array (in storage order: a selection needs no other). */
function copyRing(fields: TerminalFields, row: TerminalRow, slab: SampleSlab, n: number): Float64Array {
  if (scratch.length < n) scratch = new Float64Array(Math.max(n, scratch.length * 2));
  const a = scratch;
  const buf = slab.buf;
  const off = fields.get(row, H_OFF);
  for (let i = 0; i < n; i++) a[i] = buf[off + i]!;
  return a;
}

/**
 * Computes the bound again: with n values now and K additions until the next computation, the
 * order statistic ((n-1)>>1) - (K-1) of the values now (see the header comment). K is up to
 * REBUILD_EVERY, about two thirds of the median's rank while the sample is small (so the bound is a
 * low order statistic, never none once the sample holds a value).
 */
function rebound(fields: TerminalFields, row: TerminalRow, slab: SampleSlab): void {
  const n = fields.get(row, H_N);
  const mid = (n - 1) >> 1;
  const every = Math.max(1, Math.min(REBUILD_EVERY, ((mid * 2) / 3 + 1) | 0));
  const r = mid - (every - 1);
  fields.set(row, H_ADDED, 0);
  fields.set(row, H_EVERY, every);
  // The bound in force usually still holds and is tight enough: v is a valid bound iff fewer than
  // r + 1 values are below it (then S[r] >= v). Kept while its rank is at least r/4 (a full sample of
  // 101: r = 19, kept from rank 4); a looser bound only means the exact median is taken more often.
  const v = fields.get(row, H_LB);
  if (v > 0) {
    const buf = slab.buf;
    const off = fields.get(row, H_OFF);
    let below = 0;
    for (let i = 0; i < n; i++) if (buf[off + i]! < v) below++;
    if (below <= r && below >= r >> KEEP_SHIFT) return;
  }
  fields.set(row, H_LB, select(copyRing(fields, row, slab, n), n, r));
}

/**
 * The k-th smallest (0-based) of a[0..n) (quickselect, median-of-three pivot). Leaves a[0..k) at or
 * below it and a(k..n) at or above it. Amounts chosen against the pivot rule could make it
 * quadratic; past 2·log2(n) + 8 partitions the rest is sorted instead (n log n, same result).
 */
export function select(a: Float64Array, n: number, k: number, partitions = 2 * Math.ceil(Math.log2(n + 1)) + 8): number {
  let lo = 0;
  let hi = n - 1;
  let budget = partitions;
  while (hi > lo) {
    if (--budget < 0) {
      a.subarray(lo, hi + 1).sort();
      return a[k]!;
    }
    const m = (lo + hi) >> 1;
    let x = a[lo]!;
    let y = a[m]!;
    const z = a[hi]!;
    if (x > y) {
      const t = x;
      x = y;
      y = t;
    }
    if (y > z) {
      y = z;
      if (x > y) y = x;
    }
    const pivot = y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    // a[lo..j] <= pivot, a(j..i) == pivot, a[i..hi] >= pivot.
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

/** Standalone sample (tests, tools): the same code the engine runs on its terminals. */
export class MedianSample {
  /** A one-slot table of its own holding the header. */
  private readonly h = new TerminalRowTable(1).reserve(SAMPLE_HEADER, 0)!;
  private readonly row = this.h.row(0);
  private readonly slab: SampleSlab;
  constructor(capacity: number) {
    this.slab = new SampleSlab(capacity, 1);
    sampleInit(this.h, this.row, this.slab);
  }
  get size(): number {
    return sampleSize(this.h, this.row);
  }
  add(v: number): void {
    sampleAdd(this.h, this.row, this.slab, v);
  }
  median(): number {
    return sampleMedian(this.h, this.row, this.slab);
  }
  /** A value the exact median is never below (0 when none is known). */
  lowerBound(): number {
    return sampleLowerBound(this.h, this.row, this.slab);
  }
  values(): number[] {
    return sampleValues(this.h, this.row, this.slab);
  }
}
