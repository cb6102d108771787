// A terminal's last `capacity` approved sale amounts (arrival order), with an exact median that costs
// O(1) amortised per sale.
//
// Keeping a sorted array up to date costs a binary search and a ~n/3-element shift per sale; worse, at
// fleet scale every touch of a terminal's sample is a cache miss. So the sample lives in one buffer
// (ring, then a sorted copy) and is sorted only every REBUILD_EVERY additions; between rebuilds the
// terminal carries a bound `lb` that the exact median cannot be below. Removing values never
// lowers an order statistic and adding k values lowers it by at most k ranks, so with S the sorted
// copy of n0 values, the median stays >= C[(n-1)>>1] >= S[((n0-1)>>1) - (REBUILD_EVERY-1)] until the
// next rebuild. abnormal_amount asks for the exact median only when amount >= ratio x lb, which an
// ordinary sale never reaches; the decision is always the exact one.
//
// A sample's header (a few numbers) lives in a typed-array row the caller owns (abnormal_amount: one
// row per terminal slot), hence the functional API: no object per sample to chase. The values of all
// samples sharing a capacity live in one SampleSlab.

import { AlignedBuffer } from './store.js';

const REBUILD_EVERY = 32;

/**
 * One buffer holding many samples of the same capacity (a stride of doubles each, rounded up to whole
 * cache lines, in a line-aligned buffer): reaching a terminal's sample costs one cache miss instead of
 * two (typed-array object, then its data), and its regions start on line boundaries.
 */
export class SampleSlab {
  buf: Float64Array;
  /** Doubles per sample: values added since the last rebuild, ring, sorted copy; a multiple of 8 (64 bytes). */
  readonly stride: number;
  /** Null for a small slab (a standalone sample): a plain array, no 64 KiB page of its own. */
  private readonly mem: AlignedBuffer | null;
  private top = 0;
  private readonly free: number[] = [];

  constructor(
    readonly capacity: number,
    initialSamples = 16,
  ) {
    this.stride = Math.ceil((capacity * 2 + REBUILD_EVERY) / 8) * 8;
    const bytes = this.stride * 8 * initialSamples;
    this.mem = bytes >= 65536 ? new AlignedBuffer(bytes) : null;
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

// A sample's header: six numbers at offset `o` of a Float64Array the caller owns (a rule keeps one row
// per terminal slot, so reaching a terminal's sample costs no object and no pointer chase). The slab
// holding the values is passed alongside.
/** Offset of the sample's values in its slab. */
const H_OFF = 0;
/** Oldest value of the ring (as of the last rebuild). */
const H_HEAD = 1;
/** Values held. */
const H_N = 2;
/** Values added since the last rebuild (pending). */
const H_ADDED = 3;
/** Values in the sorted copy (0 before the first rebuild). */
const H_N0 = 4;
/** The static lower bound carried since the last rebuild (0: none). */
const H_LB = 5;
/** Numbers a sample header takes; a caller's row may hold its own fields after them. */
export const SAMPLE_HEADER = 6;

/*
 * At the sample's offset in the slab (line-aligned): [0, K) values added since the last rebuild (added
 * of them), in arrival order, whole cache lines; [K, K + cap) ring of the values as of the last
 * rebuild (n0 of them, oldest at head); [K + cap, K + 2cap) the same values sorted. The values a rebuild evicts go to one scratch array
 * shared by all samples (EVICTED): it stays in cache, a per-sample region would not.
 */
const EVICTED = new Float64Array(REBUILD_EVERY);

/** Starts an empty sample in `slab`; its header at h[o..o+SAMPLE_HEADER). */
export function sampleInit(h: Float64Array, o: number, slab: SampleSlab): void {
  h[o + H_OFF] = slab.alloc();
  h[o + H_HEAD] = 0;
  h[o + H_N] = 0;
  h[o + H_ADDED] = 0;
  h[o + H_N0] = 0;
  h[o + H_LB] = 0;
}

/** Gives the sample's values back to its slab. */
export function sampleRelease(h: Float64Array, o: number, slab: SampleSlab): void {
  slab.release(h[o + H_OFF]!);
}

/** Values held. */
export function sampleSize(h: Float64Array, o: number): number {
  return h[o + H_N]!;
}

export function sampleAdd(h: Float64Array, o: number, slab: SampleSlab, value: number): void {
  // Only the pending region is written per sale (one cache line); the ring is updated at rebuild.
  const added = h[o + H_ADDED]!;
  slab.buf[h[o + H_OFF]! + added] = value;
  const n = h[o + H_N]!;
  if (n < slab.capacity) h[o + H_N] = n + 1;
  h[o + H_ADDED] = added + 1;
  if (added + 1 >= REBUILD_EVERY) rebuild(h, o, slab);
}

/**
 * A value the exact median is never below (0 when none is known): the static bound carried since the
 * last rebuild, else (small samples) the tighter S[((n-1)>>1) - added] read from the sorted copy.
 */
export function sampleLowerBound(h: Float64Array, o: number, slab: SampleSlab): number {
  const lb = h[o + H_LB]!;
  if (lb > 0) return lb;
  const j = ((h[o + H_N]! - 1) >> 1) - h[o + H_ADDED]!;
  return j >= 0 && j < h[o + H_N0]! ? slab.buf[h[o + H_OFF]! + REBUILD_EVERY + slab.capacity + j]! : 0;
}

/** Exact median of the values held; NaN when empty. Even count: mean of the two middle values. */
export function sampleMedian(h: Float64Array, o: number, slab: SampleSlab): number {
  const n = h[o + H_N]!;
  if (n === 0) return NaN;
  if (h[o + H_ADDED]! > 0) rebuild(h, o, slab);
  const buf = slab.buf;
  const base = h[o + H_OFF]! + REBUILD_EVERY + slab.capacity;
  const mid = n >> 1;
  return n & 1 ? buf[base + mid]! : (buf[base + mid - 1]! + buf[base + mid]!) / 2;
}

/** Values oldest first (for snapshots). */
export function sampleValues(h: Float64Array, o: number, slab: SampleSlab): number[] {
  const cap = slab.capacity;
  const buf = slab.buf;
  const po = h[o + H_OFF]!;
  const off = po + REBUILD_EVERY;
  const head = h[o + H_HEAD]!;
  const all: number[] = [];
  for (let k = 0; k < h[o + H_N0]!; k++) {
    let i = head + k;
    if (i >= cap) i -= cap;
    all.push(buf[off + i]!);
  }
  const added = h[o + H_ADDED]!;
  for (let k = 0; k < added; k++) all.push(buf[po + k]!);
  return all.slice(Math.max(0, all.length - cap));
}

function rebuild(h: Float64Array, o: number, slab: SampleSlab): void {
  const buf = slab.buf;
  const cap = slab.capacity;
  const po = h[o + H_OFF]!; // pending values
  const off = po + REBUILD_EVERY; // ring
  const so = off + cap; // sorted copy
  const evicted = EVICTED;
  const n0 = h[o + H_N0]!;
  const added = h[o + H_ADDED]!;
  // Apply the pending values to the ring, remembering what they evict.
  let count = n0;
  let head = h[o + H_HEAD]!;
  let ev = 0;
  for (let k = 0; k < added; k++) {
    const v = buf[po + k]!;
    if (count < cap) buf[off + count++] = v; // head stays 0 until the ring is full
    else {
      evicted[ev++] = buf[off + head]!;
      buf[off + head] = v;
      head = head + 1 === cap ? 0 : head + 1;
    }
  }
  h[o + H_HEAD] = head;
  if (n0 > 0 && cap >= 2 * REBUILD_EVERY) {
    // Incremental: drop the evicted values from the sorted copy, merge in the pending ones. Every
    // evicted value is in the copy: fewer than cap values were applied, so only older ones left.
    // The typed-array sort (native) of the two small runs; -0 and +0 may swap places, which no
    // median decision can see (a median of zeros never fires, and the bound compares by value).
    if (ev > 1) evicted.subarray(0, ev).sort();
    buf.subarray(po, po + added).sort();
    let w = so;
    let e = 0;
    for (let i = so; i < so + n0; i++) {
      const v = buf[i]!;
      if (e < ev && v === evicted[e]) e++;
      else buf[w++] = v;
    }
    // Merge from the back so the copy can grow in place.
    let i = w - 1;
    let j = added - 1;
    let d = so + count - 1;
    while (j >= 0) {
      const a = buf[po + j]!;
      if (i >= so && buf[i]! > a) buf[d--] = buf[i--]!;
      else {
        buf[d--] = a;
        j--;
      }
    }
  } else {
    buf.copyWithin(so, off, off + count);
    buf.subarray(so, so + count).sort();
  }
  h[o + H_ADDED] = 0;
  h[o + H_N0] = count;
  const j = ((count - 1) >> 1) - (REBUILD_EVERY - 1);
  h[o + H_LB] = j >= 0 ? buf[so + j]! : 0;
}

/** Standalone sample (tests, tools): the same code the engine runs on its terminals. */
export class MedianSample {
  private readonly h = new Float64Array(SAMPLE_HEADER);
  private readonly slab: SampleSlab;
  constructor(capacity: number) {
    this.slab = new SampleSlab(capacity, 1);
    sampleInit(this.h, 0, this.slab);
  }
  get size(): number {
    return sampleSize(this.h, 0);
  }
  add(v: number): void {
    sampleAdd(this.h, 0, this.slab, v);
  }
  median(): number {
    return sampleMedian(this.h, 0, this.slab);
  }
  /** A value the exact median is never below (0 when none is known). */
  lowerBound(): number {
    return sampleLowerBound(this.h, 0, this.slab);
  }
  values(): number[] {
    return sampleValues(this.h, 0, this.slab);
  }
}
