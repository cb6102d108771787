// The in-memory index behind GET /alerts: every alert detected since `horizon`, as columns (typed
// arrays and dictionary codes), kept sorted by the API's list order (detected_at, alert_id), with
// per-terminal and per-merchant lists, and each alert's current triage status. Pure: no ClickHouse,
// no clock, no I/O (the read model feeds it).
//
// Completeness is what makes it exact: the index holds EVERY alert with detected_at >= horizon
// (older ones may be partly present). A list scan that fills its page before reaching the horizon
// is the exact answer; one that reaches the horizon first answers `undefined`, and the caller asks
// ClickHouse instead. So a bounded index (oldest alerts trimmed) or one still loading never gives a
// wrong page, only a slower one.
//
// Positions (slots) are stable until the next trim; callers must not keep them across an await.
//
// Nearly everything lives outside the JS heap (typed arrays, one Buffer of id bytes, an open-
// addressing hash table): a million alerts are a few dozen objects for the garbage collector, not
// millions of strings and map entries whose marking pauses request handling.
import type { Severity } from '@tillwatch/schemas';
import { AUTO_RESOLVED, type AlertStatus } from '../lifecycle.js';
import type { Cursor } from '../cursor.js';
import type { AlertFilter } from '../store.js';

/** The columns of an alert the index filters and sorts on. */
export interface IndexedAlert {
  alert_id: string;
  rule: string;
  severity: Severity;
  terminal_id: string;
  merchant_id: string;
  detected_at: number;
}

/** Latest triage of an alert (alerts without one are 'open'), or its auto-resolution (lifecycle.ts). */
export interface TriageState {
  status: AlertStatus;
  actor: string;
  /** epoch ms */
  at: number;
}

export interface IndexPage {
  positions: number[];
  /** More rows match after the last position. */
  more: boolean;
}

export interface AlertIndex {
  /** Insert an alert; returns its position, or undefined if already present (a replayed copy) or older than the horizon. */
  add(alert: IndexedAlert): number | undefined;
  position(alertId: string): number | undefined;
  get(position: number): IndexedAlert;
  /** Logical row-arena offset of the alert's stored row, -1 if none. */
  rowOffset(position: number): number;
  setRowOffset(position: number, offset: number): void;
  /** Record a triage entry; applied when newer than the known one (ties: the later status in enum order wins, as ORDER BY at, status). Alerts not indexed yet get it when they arrive. */
  triage(alertId: string, entry: TriageState): void;
  triageOf(alertId: string): TriageState | undefined;
  /** The exact page, or undefined when the answer needs alerts older than the horizon. */
  list(filter: AlertFilter, cursor: Cursor | undefined, limit: number): IndexPage | undefined;
  /** Every alert with detected_at >= horizon is present. -Infinity: everything is. */
  horizon: number;
  readonly size: number;
  /** Approximate bytes held (typed arrays, ids, lists, maps), for the metrics. */
  approxBytes(): number;
  /** What the index holds, for the memory budget (README: "Memory budget"). */
  counts(): { alerts: number; triaged: number; pending: number; refires: number; terminals: number; merchants: number; rules: number };
}

/**
 * Memory budget of the index, enforced by construction: at most maxAlerts + 10% alerts (then a
 * trim drops the oldest), the triage states, re-fire marks and terminal/merchant/rule dictionaries
 * of those alerts only (a trim drops the rest), plus at most `maxPendingTriage` triage states of
 * alerts not indexed yet (oldest forgotten first). Per alert: 52 B of columns and hash table,
 * 12 B of lists, its id bytes, ~120 B if triaged, ~100 B per distinct terminal or merchant.
 */
export function indexBudgetBytes(maxAlerts: number, maxPendingTriage = defaultPendingTriage(maxAlerts), idBytes = 40): number {
  const slots = Math.ceil(maxAlerts * 1.1) + 1;
  // Typed arrays double when they grow: budget the next power of two of slots.
  const capacity = 2 ** Math.ceil(Math.log2(Math.max(1024, slots)));
  // Id bytes: one buffer, 32 KiB at least, doubling when full.
  return capacity * (44 + 8) + Math.max(32 * 1024, 2 * slots * idBytes) + slots * 12 + slots * 120 + maxPendingTriage * 120 + 2 * slots * 100;
}

/** Triage states kept for alerts not indexed yet (a triage that arrives before its alert). */
export const defaultPendingTriage = (maxAlerts: number) => Math.min(maxAlerts, 10_000);

export const STATUS_ORDER: readonly AlertStatus[] = ['open', 'acknowledged', 'resolved', 'false_positive', 'auto_resolved'];
const SEVERITIES: readonly Severity[] = ['low', 'medium', 'high', 'critical'];

/** String-keyed dictionary: value -> small integer code (few distinct values: rules, terminals, merchants). */
class Dict {
  readonly codes = new Map<string, number>();
  readonly names: string[] = [];
  code(name: string): number {
    let c = this.codes.get(name);
    if (c === undefined) {
      c = this.names.length;
      this.codes.set(name, c);
      this.names.push(name);
    }
    return c;
  }
}

/** A growable list of positions in a typed array. */
class PosList {
  a = new Int32Array(4);
  n = 0;
  insert(at: number, v: number) {
    if (this.n === this.a.length) {
      const b = new Int32Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    if (at < this.n) this.a.copyWithin(at + 1, at, this.n);
    this.a[at] = v;
    this.n += 1;
  }
}

export interface AlertIndexOptions {
  /** Keep at most this many alerts; past it (+10%) the oldest are trimmed and the horizon moves up. */
  maxAlerts: number;
  /** Triage states of alerts not indexed (yet) kept at most; the oldest are forgotten. Default min(maxAlerts, 10,000). */
  maxPendingTriage?: number;
}

const EMPTY = Buffer.alloc(0);

/** FNV-1a over bytes [s, e). */
function hashBytes(b: Buffer, s: number, e: number): number {
  let h = 0x811c9dc5;
  for (let i = s; i < e; i++) {
    h ^= b[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The columns of one generation of the index (a trim builds a new one). */
class Store {
  capacity: number;
  size = 0;
  t: Float64Array;
  rule: Uint16Array;
  sev: Uint8Array;
  term: Uint32Array;
  merch: Uint32Array;
  status: Uint8Array;
  rowOff: Float64Array;
  /** Positions sorted ascending by (t, id). */
  order: Int32Array;
  /** id of position p = idBytes[idStart[p], idStart[p + 1]) (UTF-8); positions are appended in order. */
  idBytes: Buffer;
  idStart: Float64Array;
  idHash: Uint32Array;
  /** Open addressing: position + 1, 0 = empty. */
  table: Int32Array;
  byTerm: PosList[] = [];
  byMerch: PosList[] = [];

  constructor(capacity: number, idBytes: number) {
    this.capacity = capacity;
    this.t = new Float64Array(capacity);
    this.rule = new Uint16Array(capacity);
    this.sev = new Uint8Array(capacity);
    this.term = new Uint32Array(capacity);
    this.merch = new Uint32Array(capacity);
    this.status = new Uint8Array(capacity);
    this.rowOff = new Float64Array(capacity);
    this.order = new Int32Array(capacity);
    this.idStart = new Float64Array(capacity + 1);
    this.idHash = new Uint32Array(capacity);
    this.idBytes = Buffer.allocUnsafeSlow(Math.max(1024, idBytes));
    this.table = new Int32Array(capacity * 2);
  }

  grow(min: number) {
    if (min <= this.capacity) return;
    let next = this.capacity;
    while (next < min) next *= 2;
    const n = this.size;
    const re = <A extends Float64Array | Uint16Array | Uint8Array | Uint32Array | Int32Array>(a: A, make: new (k: number) => A, k = next): A => {
      const b = new make(k);
      b.set(a.subarray(0, Math.min(a.length, k)));
      return b;
    };
    this.t = re(this.t, Float64Array);
    this.rule = re(this.rule, Uint16Array);
    this.sev = re(this.sev, Uint8Array);
    this.term = re(this.term, Uint32Array);
    this.merch = re(this.merch, Uint32Array);
    this.status = re(this.status, Uint8Array);
    this.rowOff = re(this.rowOff, Float64Array);
    this.order = re(this.order, Int32Array);
    this.idStart = re(this.idStart, Float64Array, next + 1);
    this.idHash = re(this.idHash, Uint32Array);
    this.capacity = next;
    // Rehash into a table twice the capacity (load factor <= 0.5).
    this.table = new Int32Array(next * 2);
    for (let p = 0; p < n; p++) this.place(p);
  }

  /** Append id bytes for the next position (this.size). */
  putId(id: string) {
    const len = Buffer.byteLength(id, 'utf8');
    const start = this.idStart[this.size]!;
    if (start + len > this.idBytes.length) {
      const b = Buffer.allocUnsafeSlow(Math.max(this.idBytes.length * 2, start + len));
      this.idBytes.copy(b, 0, 0, start);
      this.idBytes = b;
    }
    this.idBytes.write(id, start, len, 'utf8');
    this.idStart[this.size + 1] = start + len;
    this.idHash[this.size] = hashBytes(this.idBytes, start, start + len);
  }

  place(p: number) {
    const mask = this.table.length - 1;
    let slot = this.idHash[p]! & mask;
    while (this.table[slot] !== 0) slot = (slot + 1) & mask;
    this.table[slot] = p + 1;
  }

  /** Position of the id whose UTF-8 bytes are key[0, len), or -1. */
  find(key: Buffer, len: number): number {
    const h = hashBytes(key, 0, len);
    const mask = this.table.length - 1;
    for (let slot = h & mask; ; slot = (slot + 1) & mask) {
      const v = this.table[slot]!;
      if (v === 0) return -1;
      const p = v - 1;
      if (this.idHash[p] === h && this.idBytes.compare(key, 0, len, this.idStart[p], this.idStart[p + 1]) === 0) return p;
    }
  }

  id(p: number): string {
    return this.idBytes.toString('utf8', this.idStart[p], this.idStart[p + 1]);
  }
}

export function createAlertIndex(options: AlertIndexOptions): AlertIndex {
  const { maxAlerts, maxPendingTriage = defaultPendingTriage(maxAlerts) } = options;
  if (!Number.isSafeInteger(maxAlerts) || maxAlerts < 1) throw new RangeError(`maxAlerts must be a positive integer, got ${maxAlerts}`);
  let rules = new Dict();
  let terminals = new Dict();
  let merchants = new Dict();
  /** Latest triage of indexed alerts (dropped with them at a trim). */
  const triaged = new Map<string, TriageState>();
  /** Latest triage of alerts not indexed: bounded, oldest first out; moved to `triaged` when the alert arrives. */
  const pending = new Map<string, TriageState>();
  /** alert_id -> the latest detected_at of a later copy than the one indexed (live re-fires; rare). */
  const refires = new Map<string, number>();
  let st = new Store(1024, 32 * 1024);
  let horizon = Number.NEGATIVE_INFINITY;
  let scratch = Buffer.allocUnsafe(256);

  /** UTF-8 of `s` in a scratch buffer (valid until the next call); returns the length. */
  const encode = (s: string): number => {
    const len = Buffer.byteLength(s, 'utf8');
    if (len > scratch.length) scratch = Buffer.allocUnsafe(len * 2);
    return scratch.write(s, 0, len, 'utf8');
  };
  const find = (id: string): number => st.find(scratch, encode(id));

  /** key(p) compared to (kt, kid): negative, 0, positive. Ids compare as bytes, as ClickHouse compares Strings. */
  const cmp = (p: number, kt: number, kid: Buffer): number => {
    const pt = st.t[p]!;
    if (pt !== kt) return pt < kt ? -1 : 1;
    return st.idBytes.compare(kid, 0, kid.length, st.idStart[p], st.idStart[p + 1]);
  };
  const cmpPos = (p: number, q: number): number => {
    const pt = st.t[p]!;
    const qt = st.t[q]!;
    if (pt !== qt) return pt < qt ? -1 : 1;
    return st.idBytes.compare(st.idBytes, st.idStart[q], st.idStart[q + 1], st.idStart[p], st.idStart[p + 1]);
  };
  /** First index i in list[0..len) with key(list[i]) >= (kt, kid). */
  const lowerBound = (list: Int32Array, len: number, kt: number, kid: Buffer): number => {
    let lo = 0;
    let hi = len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cmp(list[mid]!, kt, kid) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  /** Index at which position p belongs in list[0..len) (after every smaller key). */
  const insertionPoint = (list: Int32Array, len: number, p: number): number => {
    if (len === 0 || cmpPos(list[len - 1]!, p) < 0) return len;
    let lo = 0;
    let hi = len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cmpPos(list[mid]!, p) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };

  const statusCode = (s: AlertStatus) => STATUS_ORDER.indexOf(s);
  // An auto-resolution wins over any triage, before or after it (lifecycle.ts); between two
  // auto-resolutions the earliest stands (the ClickHouse path reports min(resolved_at)).
  const newer = (a: TriageState, b: TriageState | undefined) => {
    if (b === undefined) return true;
    if ((a.status === AUTO_RESOLVED) !== (b.status === AUTO_RESOLVED)) return a.status === AUTO_RESOLVED;
    if (a.status === AUTO_RESOLVED) return a.at < b.at;
    return a.at > b.at || (a.at === b.at && statusCode(a.status) > statusCode(b.status));
  };

  /** Append position data to `into` (ordered inserts go to the end of every list). */
  function append(into: Store, a: { id: string; t: number; rule: number; sev: number; term: number; merch: number; status: number; rowOff: number }): number {
    into.grow(into.size + 1);
    const p = into.size;
    into.putId(a.id);
    into.t[p] = a.t;
    into.rule[p] = a.rule;
    into.sev[p] = a.sev;
    into.term[p] = a.term;
    into.merch[p] = a.merch;
    into.status[p] = a.status;
    into.rowOff[p] = a.rowOff;
    into.size += 1;
    into.place(p);
    return p;
  }

  type Entry = Parameters<typeof append>[1];

  /** Insert into the current store at its place in every sorted structure. */
  function insertEntry(e: Entry): number {
    const p = append(st, e);
    // Global order: an append in the common case (alerts arrive roughly in detected order).
    const at = insertionPoint(st.order, p, p);
    if (at < p) st.order.copyWithin(at + 1, at, p);
    st.order[at] = p;
    for (const [lists, code] of [
      [st.byTerm, st.term[p]!],
      [st.byMerch, st.merch[p]!],
    ] as const) {
      const l = (lists[code] ??= new PosList());
      l.insert(insertionPoint(l.a, l.n, p), p);
    }
    return p;
  }

  function trim() {
    // Keep the newest maxAlerts; everything from the cut's detected_at + 1 ms on is still complete.
    const drop = st.size - maxAlerts;
    if (drop <= 0) return;
    const old = st;
    const cutT = old.t[old.order[drop - 1]!]!;
    const next = new Store(old.capacity, old.idBytes.length);
    // New dictionaries with the values still indexed: a fleet's churn of terminals and merchants
    // must not grow them forever.
    const [oldRules, oldTerminals, oldMerchants] = [rules, terminals, merchants];
    rules = new Dict();
    terminals = new Dict();
    merchants = new Dict();
    const recode = (p: number) => ({ rule: rules.code(oldRules.names[old.rule[p]!]!), term: terminals.code(oldTerminals.names[old.term[p]!]!), merch: merchants.code(oldMerchants.names[old.merch[p]!]!) });
    for (let i = drop; i < old.size; i++) {
      const p = old.order[i]!;
      const q = append(next, { id: old.id(p), t: old.t[p]!, ...recode(p), sev: old.sev[p]!, status: old.status[p]!, rowOff: old.rowOff[p]! });
      // Taken in key order: every list is appended to in order.
      next.order[q] = q;
      const tl = (next.byTerm[next.term[q]!] ??= new PosList());
      tl.insert(tl.n, q);
      const ml = (next.byMerch[next.merch[q]!] ??= new PosList());
      ml.insert(ml.n, q);
    }
    st = next;
    horizon = Math.max(horizon, cutT + 1);
    // A dropped alert whose later copy (a live re-fire with a later detected_at) is above the new
    // horizon must stay listed: it comes back at that copy's place.
    for (let i = 0; i < drop; i++) {
      const p = old.order[i]!;
      const id = old.id(p);
      const later = refires.get(id);
      refires.delete(id);
      if (later !== undefined && later >= horizon) insertEntry({ id, t: later, ...recode(p), sev: old.sev[p]!, status: old.status[p]!, rowOff: old.rowOff[p]! });
      // Gone from the index: its triage state goes too (reads of it go to ClickHouse).
      else triaged.delete(id);
    }
  }

  function list(filter: AlertFilter, cursor: Cursor | undefined, limit: number): IndexPage | undefined {
    const { t, rule, sev, status, merch } = st;
    // Candidate lists: the smallest structure that holds every match.
    const lists: Int32Array[] = [];
    const lens: number[] = [];
    const take = (l: PosList | undefined) => {
      if (l && !lists.includes(l.a)) {
        lists.push(l.a);
        lens.push(l.n);
      }
    };
    let merchantMask: Set<number> | undefined;
    if (filter.terminals?.length) {
      for (const x of filter.terminals) {
        const c = terminals.codes.get(x);
        take(c === undefined ? undefined : st.byTerm[c]);
      }
      if (filter.merchants?.length) merchantMask = new Set(filter.merchants.map((m) => merchants.codes.get(m) ?? -1));
    } else if (filter.merchants?.length) {
      for (const x of filter.merchants) {
        const c = merchants.codes.get(x);
        take(c === undefined ? undefined : st.byMerch[c]);
      }
    } else {
      lists.push(st.order);
      lens.push(st.size);
    }
    let ruleMask: Uint8Array | undefined;
    if (filter.rules?.length) {
      ruleMask = new Uint8Array(rules.names.length);
      for (const r of filter.rules) {
        const c = rules.codes.get(r);
        if (c !== undefined) ruleMask[c] = 1;
      }
    }
    let sevMask = 0;
    for (const s of filter.severities ?? []) sevMask |= 1 << SEVERITIES.indexOf(s);
    let statusMask = 0;
    for (const s of filter.statuses ?? []) statusMask |= 1 << statusCode(s);
    const fromMs = filter.fromMs ?? Number.NEGATIVE_INFINITY;

    // Start of the descending scan in each list: below the cursor and below `to`.
    const cursorId = cursor ? Buffer.from(cursor.id, 'utf8') : EMPTY;
    const pos = lists.map((l, i) => {
      let end = lens[i]!;
      if (cursor) end = Math.min(end, lowerBound(l, end, cursor.t, cursorId));
      if (filter.toMs !== undefined) end = Math.min(end, lowerBound(l, end, filter.toMs, EMPTY));
      return end - 1;
    });

    const out: number[] = [];
    for (;;) {
      // Next candidate: the largest key among the lists' heads.
      let best = -1;
      let bestP = -1;
      for (let i = 0; i < lists.length; i++) {
        const j = pos[i]!;
        if (j < 0) continue;
        const p = lists[i]![j]!;
        if (best < 0 || cmpPos(p, bestP) > 0) {
          best = i;
          bestP = p;
        }
      }
      // Exhausted: exact if nothing older than the horizon could match (everything, or `from` above it).
      if (best < 0) return fromMs >= horizon ? { positions: out, more: false } : undefined;
      pos[best]! -= 1;
      const p = bestP;
      const pt = t[p]!;
      if (pt < fromMs) return { positions: out, more: false };
      if (pt < horizon) return undefined;
      if (ruleMask && ruleMask[rule[p]!] !== 1) continue;
      if (sevMask && (sevMask & (1 << (sev[p]! - 1))) === 0) continue;
      if (statusMask && (statusMask & (1 << status[p]!)) === 0) continue;
      if (merchantMask && !merchantMask.has(merch[p]!)) continue;
      if (out.length === limit) return { positions: out, more: true };
      out.push(p);
    }
  }

  return {
    add(a) {
      if (a.detected_at < horizon) return undefined;
      const existing = find(a.alert_id);
      if (existing >= 0) {
        // Another copy: a replay (same detected_at) changes nothing; a re-fire keeps the earliest
        // listed and remembers the latest, in case a trim drops the earliest.
        if (a.detected_at > st.t[existing]!) refires.set(a.alert_id, Math.max(a.detected_at, refires.get(a.alert_id) ?? a.detected_at));
        return undefined;
      }
      const tri = pending.get(a.alert_id);
      if (tri) {
        pending.delete(a.alert_id);
        triaged.set(a.alert_id, tri);
      }
      const p = insertEntry({
        id: a.alert_id,
        t: a.detected_at,
        rule: rules.code(a.rule),
        sev: SEVERITIES.indexOf(a.severity) + 1,
        term: terminals.code(a.terminal_id),
        merch: merchants.code(a.merchant_id),
        status: tri ? statusCode(tri.status) : 0,
        rowOff: -1,
      });
      if (st.size > maxAlerts + Math.max(1, Math.floor(maxAlerts / 10))) {
        trim();
        const q = find(a.alert_id);
        return q >= 0 ? q : undefined;
      }
      return p;
    },
    position(id) {
      const p = find(id);
      return p >= 0 ? p : undefined;
    },
    get(p) {
      if (p < 0 || p >= st.size) throw new RangeError(`no alert at position ${p}`);
      return {
        alert_id: st.id(p),
        rule: rules.names[st.rule[p]!]!,
        severity: SEVERITIES[st.sev[p]! - 1]!,
        terminal_id: terminals.names[st.term[p]!]!,
        merchant_id: merchants.names[st.merch[p]!]!,
        detected_at: st.t[p]!,
      };
    },
    rowOffset: (p) => st.rowOff[p]!,
    setRowOffset(p, off) {
      st.rowOff[p] = off;
    },
    triage(id, entry) {
      const p = find(id);
      if (p >= 0) {
        if (!newer(entry, triaged.get(id))) return;
        triaged.set(id, entry);
        st.status[p] = statusCode(entry.status);
        return;
      }
      if (!newer(entry, pending.get(id))) return;
      pending.delete(id);
      pending.set(id, entry);
      // Bounded: the oldest entries (insertion order) go first.
      for (const k of pending.keys()) {
        if (pending.size <= maxPendingTriage) break;
        pending.delete(k);
      }
    },
    triageOf: (id) => triaged.get(id) ?? pending.get(id),
    counts: () => ({ alerts: st.size, triaged: triaged.size, pending: pending.size, refires: refires.size, terminals: terminals.names.length, merchants: merchants.names.length, rules: rules.names.length }),
    list,
    get horizon() {
      return horizon;
    },
    set horizon(h: number) {
      horizon = h;
    },
    get size() {
      return st.size;
    },
    approxBytes() {
      // Columns 8+2+1+4+4+1+8+4 (+8 id start, +4 hash) per slot, 2 x 4 per hash slot, id bytes, 2 x 4 in lists (x ~1.5 slack).
      return st.capacity * (44 + 8) + st.idBytes.length + st.size * 12 + (triaged.size + pending.size) * 120 + (terminals.names.length + merchants.names.length) * 100;
    },
  };
}
