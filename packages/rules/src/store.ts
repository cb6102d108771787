// Compact storage for the engine's large state: sales kept for duplicate and refund matching.
//
// Why not objects in Maps: at fleet scale the state is ~1M sales, and a JS Map lookup on a fresh
// string key walks bucket -> entry -> stored key string -> value, each a cache miss on a big heap
// (measured ~0.5-0.8 us per random get on a 1M-entry working set). Here a sale is a row index into
// typed columns, and the two indexes are open-addressing tables holding the 32-bit hash inline next
// to the row, so a miss (the common case: a new txn, a card with no recent same-amount sale) costs
// one cache line and a hit one more. The garbage collector sees a few large typed arrays and the
// strings that must be kept (txn ids; event ids and cards only while a sale is a duplicate leg).

/**
 * FNV-1a over UTF-16 code units, then a murmur3 finaliser, cut to 30 bits. Fixed seed: table layout
 * never affects results. 30 bits keep the value a small integer (Smi) in V8, so passing it between
 * functions never allocates a boxed number.
 */
export function hashString(s: string, seed: number): number {
  let h = (seed ^ 0x811c9dc5) | 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix(h);
}

export function mixInt(h: number, v: number): number {
  // v may exceed 32 bits (amounts are longs): fold the high part in.
  const lo = v | 0;
  const hi = (v / 4294967296) | 0;
  h = Math.imul(h ^ lo, 0x9e3779b1);
  h = Math.imul(h ^ hi, 0x85ebca77);
  return fmix(h);
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h & 0x3fffffff;
}

/**
 * Open-addressing hash index (linear probing, backward-shift deletion) from a 32-bit hash to a row.
 * Slot i is slots[2i] = row + 1 (0 = empty) and slots[2i+1] = hash: one cache line answers a probe.
 * Keys are verified by the caller against the row (the table only stores hash and row).
 */
export class RowIndex {
  slots: Int32Array;
  mask: number;
  count = 0;

  constructor(capacity = 1024) {
    const cap = 1 << Math.ceil(Math.log2(Math.max(16, capacity)));
    this.slots = new Int32Array(cap * 2);
    commitPages(this.slots.buffer);
    this.mask = cap - 1;
  }

  /** Inserts (hash -> row); the caller has checked the key is absent. */
  insert(hash: number, row: number): void {
    if ((this.count + 1) * 2 > this.mask + 1) this.grow();
    const sl = this.slots;
    const mask = this.mask;
    let i = hash & mask;
    while (sl[i << 1] !== 0) i = (i + 1) & mask;
    sl[i << 1] = row + 1;
    sl[(i << 1) + 1] = hash;
    this.count++;
  }

  /** The first slot of a hash's probe run. */
  first(hash: number): number {
    return hash & this.mask;
  }
  /** The slot after i in a probe run. */
  nextSlot(i: number): number {
    return (i + 1) & this.mask;
  }
  /** Row at slot i, -1 = empty (ends a probe run). */
  rowAt(i: number): number {
    return this.slots[i << 1]! - 1;
  }
  /** Hash stored at slot i. */
  hashAt(i: number): number {
    return this.slots[(i << 1) + 1]!;
  }
  /** Loads the first probe line of a hash (issued early so its cache miss overlaps other work). */
  probe(hash: number): number {
    return this.slots[(hash & this.mask) << 1]!;
  }

  /** Row stored at slot i. */
  row(i: number): number {
    return this.slots[i << 1]! - 1;
  }

  /** Slot holding exactly this row (found through its hash), or -1. */
  slotOf(hash: number, row: number): number {
    const sl = this.slots;
    const mask = this.mask;
    let i = hash & mask;
    for (;;) {
      const r = sl[i << 1]!;
      if (r === 0) return -1;
      if (r === row + 1) return i;
      i = (i + 1) & mask;
    }
  }

  /** Replaces the row stored at a slot (same key). */
  set(slot: number, row: number): void {
    this.slots[slot << 1] = row + 1;
  }

  remove(hash: number, row: number): void {
    const slot = this.slotOf(hash, row);
    if (slot >= 0) this.removeAt(slot);
  }

  removeAt(slot: number): void {
    const sl = this.slots;
    const mask = this.mask;
    let i = slot;
    sl[i << 1] = 0;
    this.count--;
    // Backward shift: pull later entries of the probe run into the hole so lookups stay correct.
    let j = (i + 1) & mask;
    while (sl[j << 1] !== 0) {
      const home = sl[(j << 1) + 1]! & mask;
      // Move j into i unless its home lies cyclically in (i, j].
      const inRange = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!inRange) {
        sl[i << 1] = sl[j << 1]!;
        sl[(i << 1) + 1] = sl[(j << 1) + 1]!;
        sl[j << 1] = 0;
        i = j;
      }
      j = (j + 1) & mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    const cap = (this.mask + 1) * 2;
    const sl = (this.slots = new Int32Array(cap * 2));
    commitPages(sl.buffer);
    const mask = (this.mask = cap - 1);
    for (let k = 0; k < old.length; k += 2) {
      const r = old[k]!;
      if (r === 0) continue;
      const h = old[k + 1]!;
      let i = h & mask;
      while (sl[i << 1] !== 0) i = (i + 1) & mask;
      sl[i << 1] = r;
      sl[(i << 1) + 1] = h;
    }
  }
}

/**
 * Expiry wheel: rows filed by expiry bucket (callers pass `bucketOf(expiry)`, a small integer, so no
 * boxed double crosses the call). Sweeping pops whole buckets whose time has passed, so physical
 * expiry costs O(expired) and never blocks on an out-of-order entry. Entries carry the row's
 * generation, so a row freed and reused meanwhile is not touched by a stale entry. A bucket is a list
 * of fixed-size chunks recycled through a pool: filing an entry never copies or allocates in the
 * steady state (growing JS arrays here was the engine's main source of garbage).
 */
export class ExpiryWheel {
  private readonly buckets = new Map<number, WheelBucket>();
  /** Lowest bucket that may still hold entries. */
  private low = Infinity;
  // Most additions go to the same bucket as the previous one.
  private lastB = -1;
  private last: WheelBucket | null = null;
  private readonly pool: Int32Array[] = [];
  size = 0;

  constructor(private readonly bucketMs: number) {}

  bucketOf(expiry: number): number {
    return Math.floor(expiry / this.bucketMs);
  }

  add(b: number, row: number, gen: number): void {
    let bucket = this.last;
    if (b !== this.lastB || bucket === null) {
      bucket = this.buckets.get(b) ?? null;
      if (bucket === null) {
        bucket = { chunks: [], fill: CHUNK };
        this.buckets.set(b, bucket);
      }
      this.lastB = b;
      this.last = bucket;
    }
    if (bucket.fill === CHUNK) {
      bucket.chunks.push(this.pool.pop() ?? new Int32Array(CHUNK));
      bucket.fill = 0;
    }
    const chunk = bucket.chunks[bucket.chunks.length - 1]!;
    chunk[bucket.fill] = row;
    chunk[bucket.fill + 1] = gen;
    bucket.fill += 2;
    if (b < this.low) this.low = b;
    this.size++;
  }

  /**
   * Calls visit(row, gen) for every entry in a bucket that ends at or before `now`. `touch(row)`, if
   * given, is first called for all entries of a bucket: it should load what visit will need, so that
   * the cache misses of many entries overlap instead of happening one after another.
   */
  sweep(now: number, visit: (row: number, gen: number) => void, touch?: (row: number) => void): void {
    const last = Math.floor(now / this.bucketMs) - 1; // buckets entirely <= now
    if (this.low > last) return;
    if (last - this.low > this.buckets.size) {
      // A big clock jump: visit the buckets that exist rather than every step.
      const due = [...this.buckets.keys()].filter((b) => b <= last).sort((a, b) => a - b);
      for (const b of due) this.popBucket(b, visit, touch);
    } else {
      for (let b = this.low; b <= last; b++) this.popBucket(b, visit, touch);
    }
    let low = Infinity;
    if (this.buckets.size > 0) for (const b of this.buckets.keys()) if (b < low) low = b;
    this.low = low;
  }

  private popBucket(b: number, visit: (row: number, gen: number) => void, touch?: (row: number) => void): void {
    const bucket = this.buckets.get(b);
    if (bucket === undefined) return;
    if (touch !== undefined) {
      for (let c = 0; c < bucket.chunks.length; c++) {
        const chunk = bucket.chunks[c]!;
        const end = c === bucket.chunks.length - 1 ? bucket.fill : CHUNK;
        for (let i = 0; i < end; i += 2) touch(chunk[i]!);
      }
    }
    this.buckets.delete(b);
    if (b === this.lastB) {
      this.lastB = -1;
      this.last = null;
    }
    const chunks = bucket.chunks;
    for (let c = 0; c < chunks.length; c++) {
      const chunk = chunks[c]!;
      const end = c === chunks.length - 1 ? bucket.fill : CHUNK;
      this.size -= end >> 1;
      for (let i = 0; i < end; i += 2) visit(chunk[i]!, chunk[i + 1]!);
      this.pool.push(chunk);
    }
  }

  clear(): void {
    for (const b of this.buckets.values()) for (const c of b.chunks) this.pool.push(c);
    this.buckets.clear();
    this.lastB = -1;
    this.last = null;
    this.low = Infinity;
    this.size = 0;
  }
}

/** Entries per wheel chunk x 2 (row, generation). */
const CHUNK = 2048;

interface WheelBucket {
  chunks: Int32Array[];
  /** Ints used in the last chunk. */
  fill: number;
}

// Row layout: one 64-byte cache line per sale, read through two views of one buffer.
// Float64 slots (index row * 8 + k):
const F_ET = 0; // sale event_time
const F_DUP_EXP = 1; // duplicate-leg expiry (clock)
const F_REF_EXP = 2; // refund-matching expiry (clock)
const F_AMOUNT = 3; // sale amount_minor
// Int32 slots (index row * 16 + k), in the second half of the line:
const I_MERCHANT = 8; // merchant tag
const I_FLAGS = 9;
const I_LEG_NEXT = 10; // next row in the duplicate chain, -1 = end
const I_GEN = 11; // bumped when the row is freed (stale expiry entries ignore it)
const I_TXN_HASH = 12;
const I_DUP_HASH = 13;
const I_PREV = 14; // merchant list
const I_NEXT = 15;

const WASM_PAGE = 65536;
/** The OS page size assumed by commitPages (4 KiB on x64 Linux; a larger page only means fewer writes are needed). */
const OS_PAGE = 4096;

/**
 * Writes a zero into every OS page of a freshly allocated, zeroed buffer (from byte `from`), so the kernel
 * maps all its pages now instead of one page fault at a time while events are processed (measured:
 * 3-7% of the engine's CPU time on the bench stream went to the kernel, mostly first touches of the
 * rows and indexes). Contents unchanged (they are zero already).
 */
export function commitPages(buf: ArrayBufferLike, from = 0): void {
  const u8 = new Uint8Array(buf);
  for (let i = from - (from % OS_PAGE); i < u8.length; i += OS_PAGE) u8[i] = 0;
}

/** The part of WebAssembly.Memory used here (the package's lib settings do not declare WebAssembly). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type WasmMemoryCtor = new (d: { initial: number }) => WasmMemory;
/** Undefined where WebAssembly is not available (e.g. `node --jitless`): plain ArrayBuffers then. */
const WasmMemory = (globalThis as unknown as { WebAssembly?: { Memory?: WasmMemoryCtor } }).WebAssembly?.Memory;

/**
 * A zeroed buffer of at least `bytes` whose first byte is 64-byte aligned (a cache line), growable in
 * place. Why not `new ArrayBuffer`: Node allocates large ArrayBuffers with calloc, whose chunks start
 * 16 bytes into a page, so 64-byte rows laid out from the start of one straddle two cache lines each
 * (every row access loads two lines). A WebAssembly.Memory is page aligned. No code runs in it: it is
 * only memory. Where WebAssembly is missing, or the memory cannot grow (its limit is 4 GiB), it falls
 * back to a plain ArrayBuffer (same contents, only the alignment is lost).
 */
export class AlignedBuffer {
  private mem: WasmMemory | null = null;
  private plain: ArrayBuffer | null = null;
  /**
   * commit: map every page now and on each growth (commitPages), for buffers filled densely from the
   * start (rows, indexes); false for one whose pages are handed out sparsely (sample slabs: a large
   * `sample_size` would otherwise take its whole first slab in RSS for one terminal).
   */
  constructor(
    bytes: number,
    private readonly commit = true,
  ) {
    const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE));
    try {
      if (WasmMemory !== undefined) this.mem = new WasmMemory({ initial: pages });
    } catch {
      this.mem = null;
    }
    if (this.mem === null) this.plain = new ArrayBuffer(pages * WASM_PAGE);
    if (this.commit) commitPages(this.buffer);
  }
  get buffer(): ArrayBuffer {
    return this.mem !== null ? this.mem.buffer : this.plain!;
  }
  /** Grows to at least `bytes`, keeping the contents; views of the old buffer are detached or stale (take new ones). */
  grow(bytes: number): ArrayBuffer {
    const have = this.buffer.byteLength;
    if (bytes <= have) return this.buffer;
    const pages = Math.ceil((bytes - have) / WASM_PAGE);
    if (this.mem !== null) {
      try {
        this.mem.grow(pages);
        if (this.commit) commitPages(this.mem.buffer, have);
        return this.mem.buffer;
      } catch {
        // Past the WebAssembly limit: continue in a plain buffer.
      }
    }
    const old = this.buffer;
    const next = new ArrayBuffer(have + pages * WASM_PAGE);
    new Uint8Array(next).set(new Uint8Array(old));
    if (this.commit) commitPages(next, have);
    this.mem = null;
    this.plain = next;
    return next;
  }
}

/** Growable row store; rows are recycled through a free list and stamped with a generation. */
export class SaleRows {
  cap: number;
  private readonly mem: AlignedBuffer;
  f: Float64Array;
  i: Int32Array;
  /** Rarely touched (refunds only): kept out of the hot line. */
  refunded: Float64Array;
  // String columns, preallocated with the rows (no per-row push).
  txn: string[];
  eventId: (string | null)[];
  card: (string | null)[];
  terminalId: (string | null)[];
  currency: string[];
  /** Columns the rules add (see column), by name and in creation order. */
  private readonly extra = new Map<string, (string | null)[]>();
  private readonly extraList: (string | null)[][] = [];
  private readonly free: number[] = [];
  private top = 0;
  live = 0;

  constructor(capacity = 1024) {
    this.cap = capacity;
    this.mem = new AlignedBuffer(capacity * 64);
    const buf = this.mem.buffer;
    this.f = new Float64Array(buf);
    this.i = new Int32Array(buf);
    this.refunded = new Float64Array(capacity);
    commitPages(this.refunded.buffer);
    this.txn = new Array<string>(capacity).fill('');
    this.eventId = new Array<string | null>(capacity).fill(null);
    this.card = new Array<string | null>(capacity).fill(null);
    this.terminalId = new Array<string | null>(capacity).fill(null);
    this.currency = new Array<string>(capacity).fill('');
  }

  // Named accessors: the only code that knows the row layout. Small and monomorphic, meant to be
  // inlined by V8 (not verified in isolation: see the README's before/after figures).
  eventTime(r: number): number {
    return this.f[r * 8 + F_ET]!;
  }
  setEventTime(r: number, v: number): void {
    this.f[r * 8 + F_ET] = v;
  }
  dupExpiry(r: number): number {
    return this.f[r * 8 + F_DUP_EXP]!;
  }
  setDupExpiry(r: number, v: number): void {
    this.f[r * 8 + F_DUP_EXP] = v;
  }
  refExpiry(r: number): number {
    return this.f[r * 8 + F_REF_EXP]!;
  }
  setRefExpiry(r: number, v: number): void {
    this.f[r * 8 + F_REF_EXP] = v;
  }
  amount(r: number): number {
    return this.f[r * 8 + F_AMOUNT]!;
  }
  setAmount(r: number, v: number): void {
    this.f[r * 8 + F_AMOUNT] = v;
  }
  merchant(r: number): number {
    return this.i[r * 16 + I_MERCHANT]!;
  }
  setMerchant(r: number, v: number): void {
    this.i[r * 16 + I_MERCHANT] = v;
  }
  flags(r: number): number {
    return this.i[r * 16 + I_FLAGS]!;
  }
  setFlags(r: number, v: number): void {
    this.i[r * 16 + I_FLAGS] = v;
  }
  addFlags(r: number, bits: number): void {
    this.i[r * 16 + I_FLAGS] = this.i[r * 16 + I_FLAGS]! | bits;
  }
  clearFlags(r: number, bits: number): void {
    this.i[r * 16 + I_FLAGS] = this.i[r * 16 + I_FLAGS]! & ~bits;
  }
  /** Next row in a duplicate-leg chain, -1 = end. */
  legNext(r: number): number {
    return this.i[r * 16 + I_LEG_NEXT]!;
  }
  setLegNext(r: number, v: number): void {
    this.i[r * 16 + I_LEG_NEXT] = v;
  }
  /** Generation: bumped when the row is freed, so stale references (expiry entries) can tell. */
  gen(r: number): number {
    return this.i[r * 16 + I_GEN]!;
  }
  txnHash(r: number): number {
    return this.i[r * 16 + I_TXN_HASH]!;
  }
  setTxnHash(r: number, v: number): void {
    this.i[r * 16 + I_TXN_HASH] = v;
  }
  dupHash(r: number): number {
    return this.i[r * 16 + I_DUP_HASH]!;
  }
  setDupHash(r: number, v: number): void {
    this.i[r * 16 + I_DUP_HASH] = v;
  }
  /** Previous / next row of the same merchant (insertion order), -1 = none. */
  prev(r: number): number {
    return this.i[r * 16 + I_PREV]!;
  }
  setPrev(r: number, v: number): void {
    this.i[r * 16 + I_PREV] = v;
  }
  next(r: number): number {
    return this.i[r * 16 + I_NEXT]!;
  }
  setNext(r: number, v: number): void {
    this.i[r * 16 + I_NEXT] = v;
  }

  /**
   * A column of rule state kept per sale row (a string or null), created at the first request and
   * shared by name (rules asking for the same name read and write one column). It is preallocated and
   * grows with the rows (in place: the array returned stays valid); a released row's entry is cleared.
   */
  column(name: string): (string | null)[] {
    let col = this.extra.get(name);
    if (col === undefined) {
      col = new Array<string | null>(this.cap).fill(null);
      this.extra.set(name, col);
      this.extraList.push(col);
    }
    return col;
  }

  /**
   * Loads the lines of the next n rows alloc() will hand out (an early miss: a new row's line is not
   * in cache, and alloc reads it back at once); the value is only a sink.
   */
  touchNext(n: number): number {
    const free = this.free;
    const nf = free.length;
    let sink = 0;
    for (let k = 0; k < n; k++) {
      const row = k < nf ? free[nf - 1 - k]! : this.top + (k - nf);
      if (row >= this.cap) break;
      sink ^= this.gen(row);
    }
    return sink;
  }

  alloc(): number {
    this.live++;
    const f = this.free.pop();
    if (f !== undefined) return f;
    if (this.top === this.cap) this.grow();
    return this.top++;
  }

  release(row: number): void {
    this.live--;
    this.i[row * 16 + I_GEN] = (this.i[row * 16 + I_GEN]! + 1) | 0;
    this.i[row * 16 + I_FLAGS] = 0;
    this.txn[row] = '';
    this.eventId[row] = null;
    this.card[row] = null;
    this.terminalId[row] = null;
    this.currency[row] = '';
    const extra = this.extraList;
    for (let k = 0; k < extra.length; k++) extra[k]![row] = null;
    this.free.push(row);
  }

  private grow(): void {
    const cap = this.cap * 2;
    const buf = this.mem.grow(cap * 64);
    this.f = new Float64Array(buf);
    this.i = new Int32Array(buf);
    const r = new Float64Array(cap);
    r.set(this.refunded);
    commitPages(r.buffer, this.refunded.byteLength);
    this.refunded = r;
    // Growing in place reallocates the backing store once (a memcpy), unlike copying element by element.
    const extend = <T>(a: T[], fill: T): T[] => {
      const n = a.length;
      a.length = cap;
      return a.fill(fill, n, cap);
    };
    this.txn = extend(this.txn, '');
    this.eventId = extend(this.eventId, null);
    this.card = extend(this.card, null);
    this.terminalId = extend(this.terminalId, null);
    this.currency = extend(this.currency, '');
    for (const col of this.extraList) extend(col, null);
    this.cap = cap;
  }
}
