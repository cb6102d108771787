// A terminal's last `capacity` approved sale amounts (arrival order), with an exact median that costs
// O(1) amortised per sale.
//
// Keeping a sorted array up to date costs a binary search and a ~n/3-element shift per sale; worse, at
// fleet scale every touch of a terminal's sample is a cache miss. So the sample lives in one buffer
// (ring, then a sorted copy) and is sorted only every REBUILD_EVERY additions; between rebuilds the
// terminal carries a small integer `sLB` that the exact median cannot be below. Removing values never
// lowers an order statistic and adding k values lowers it by at most k ranks, so with S the sorted
// copy of n0 values, the median stays >= C[(n-1)>>1] >= S[((n0-1)>>1) - (REBUILD_EVERY-1)] until the
// next rebuild. abnormal_amount asks for the exact median only when amount >= ratio x sLB, which an
// ordinary sale never reaches; the decision is always the exact one.
//
// The fields live on the terminal object itself (no extra object to chase), hence the functional API;
// the values of all terminals sharing a sample size live in one SampleSlab.

const REBUILD_EVERY = 32;
/** sLB is kept a small integer so the field stays unboxed; a lower value is still a valid bound. */
const SMI_MAX = 0x3fffffff;

/**
 * One buffer holding many samples of the same capacity (2 x capacity doubles each): reaching a
 * terminal's sample costs one cache miss instead of two (typed-array object, then its data).
 */
export class SampleSlab {
  buf: Float64Array;
  private top = 0;
  private readonly free: number[] = [];

  constructor(readonly capacity: number, initialSamples = 16) {
    this.buf = new Float64Array((capacity * 2 + 2 * REBUILD_EVERY) * initialSamples);
  }

  /** Doubles per sample: ring, sorted copy, values evicted since the rebuild, values added since. */
  get stride(): number {
    return this.capacity * 2 + 2 * REBUILD_EVERY;
  }

  alloc(): number {
    const f = this.free.pop();
    if (f !== undefined) return f;
    const stride = this.stride;
    if ((this.top + 1) * stride > this.buf.length) {
      const bigger = new Float64Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    return this.top++ * stride;
  }

  release(offset: number): void {
    this.free.push(offset);
  }
}

export interface SampleState {
  /**
   * At sOff: [0, cap) ring of the values as of the last rebuild (sN0 of them, oldest at sHead);
   * [cap, 2cap) the same values sorted; [2cap, 2cap + K) scratch for evicted values during a rebuild;
   * [2cap + K, 2cap + 2K) values added since the last rebuild (sAdded of them), in arrival order.
   */
  sSlab: SampleSlab | null;
  sOff: number;
  sHead: number;
  sN: number;
  sAdded: number;
  /** Values in the sorted copy (0 before the first rebuild). */
  sN0: number;
  sLB: number;
}

export function newSample(s: SampleState, slab: SampleSlab): void {
  s.sSlab = slab;
  s.sOff = slab.alloc();
  s.sHead = 0;
  s.sN = 0;
  s.sAdded = 0;
  s.sN0 = 0;
  s.sLB = 0;
}

export function releaseSample(s: SampleState): void {
  if (s.sSlab !== null) s.sSlab.release(s.sOff);
  s.sSlab = null;
}

export function sampleAdd(s: SampleState, value: number): void {
  const slab = s.sSlab!;
  // Only the pending region is written per sale (one cache line); the ring is updated at rebuild.
  slab.buf[s.sOff + 2 * slab.capacity + REBUILD_EVERY + s.sAdded] = value;
  if (s.sN < slab.capacity) s.sN++;
  if (++s.sAdded >= REBUILD_EVERY) rebuild(s);
}

/**
 * A value the exact median is never below (0 when none is known): the static bound carried since the
 * last rebuild, else (small samples) the tighter S[((n-1)>>1) - added] read from the sorted copy.
 */
export function sampleLowerBound(s: SampleState): number {
  if (s.sLB > 0) return s.sLB;
  const j = ((s.sN - 1) >> 1) - s.sAdded;
  return j >= 0 && j < s.sN0 ? s.sSlab!.buf[s.sOff + s.sSlab!.capacity + j]! : 0;
}

/** Exact median of the values held; NaN when empty. Even count: mean of the two middle values. */
export function sampleMedian(s: SampleState): number {
  const n = s.sN;
  if (n === 0 || s.sSlab === null) return NaN;
  if (s.sAdded > 0) rebuild(s);
  const buf = s.sSlab.buf;
  const base = s.sOff + s.sSlab.capacity;
  const mid = n >> 1;
  return n & 1 ? buf[base + mid]! : (buf[base + mid - 1]! + buf[base + mid]!) / 2;
}

/** Values oldest first (for snapshots). */
export function sampleValues(s: SampleState): number[] {
  const slab = s.sSlab;
  if (slab === null) return [];
  const cap = slab.capacity;
  const buf = slab.buf;
  const all: number[] = [];
  for (let k = 0; k < s.sN0; k++) {
    let i = s.sHead + k;
    if (i >= cap) i -= cap;
    all.push(buf[s.sOff + i]!);
  }
  for (let k = 0; k < s.sAdded; k++) all.push(buf[s.sOff + 2 * cap + REBUILD_EVERY + k]!);
  return all.slice(Math.max(0, all.length - cap));
}

function rebuild(s: SampleState): void {
  const slab = s.sSlab!;
  const buf = slab.buf;
  const cap = slab.capacity;
  const off = s.sOff;
  const so = off + cap; // sorted copy
  const eo = off + 2 * cap; // evicted values
  const po = eo + REBUILD_EVERY; // pending values
  const n0 = s.sN0;
  const added = s.sAdded;
  // Apply the pending values to the ring, remembering what they evict.
  let count = n0;
  let head = s.sHead;
  let ev = 0;
  for (let k = 0; k < added; k++) {
    const v = buf[po + k]!;
    if (count < cap) buf[off + count++] = v; // head stays 0 until the ring is full
    else {
      buf[eo + ev++] = buf[off + head]!;
      buf[off + head] = v;
      head = head + 1 === cap ? 0 : head + 1;
    }
  }
  s.sHead = head;
  if (n0 > 0 && cap >= 2 * REBUILD_EVERY) {
    // Incremental: drop the evicted values from the sorted copy, merge in the pending ones. Every
    // evicted value is in the copy: fewer than cap values were applied, so only older ones left.
    insertionSort(buf, eo, ev);
    insertionSort(buf, po, added);
    let w = so;
    let e = 0;
    for (let i = so; i < so + n0; i++) {
      const v = buf[i]!;
      if (e < ev && v === buf[eo + e]) e++;
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
  s.sAdded = 0;
  s.sN0 = count;
  const j = ((count - 1) >> 1) - (REBUILD_EVERY - 1);
  const lb = j >= 0 ? buf[so + j]! : 0;
  s.sLB = lb > SMI_MAX ? SMI_MAX : lb;
}

function insertionSort(buf: Float64Array, from: number, count: number): void {
  for (let i = from + 1; i < from + count; i++) {
    const v = buf[i]!;
    let j = i - 1;
    while (j >= from && buf[j]! > v) {
      buf[j + 1] = buf[j]!;
      j--;
    }
    buf[j + 1] = v;
  }
}

/** Standalone sample (tests, tools): the same code the engine runs on its terminals. */
export class MedianSample implements SampleState {
  sSlab: SampleSlab | null = null;
  sOff = 0;
  sHead = 0;
  sN = 0;
  sAdded = 0;
  sN0 = 0;
  sLB = 0;
  constructor(capacity: number) {
    newSample(this, new SampleSlab(capacity, 1));
  }
  get size(): number {
    return this.sN;
  }
  add(v: number): void {
    sampleAdd(this, v);
  }
  median(): number {
    return sampleMedian(this);
  }
  /** A value the exact median is never below (0 when none is known). */
  lowerBound(): number {
    return sampleLowerBound(this);
  }
  values(): number[] {
    return sampleValues(this);
  }
}
