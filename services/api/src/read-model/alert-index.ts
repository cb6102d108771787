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
import type { Severity } from '@tillwatch/schemas';
import type { TriageStatus } from '@tillwatch/clickhouse';
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

/** Latest triage of an alert (alerts without one are 'open'). */
export interface TriageState {
  status: TriageStatus;
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
}

export const STATUS_ORDER: readonly TriageStatus[] = ['open', 'acknowledged', 'resolved', 'false_positive'];
const SEVERITIES: readonly Severity[] = ['low', 'medium', 'high', 'critical'];

/** String-keyed dictionary: value -> small integer code. */
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

export interface AlertIndexOptions {
  /** Keep at most this many alerts; past it (+10%) the oldest are trimmed and the horizon moves up. */
  maxAlerts: number;
}

export function createAlertIndex(options: AlertIndexOptions): AlertIndex {
  const { maxAlerts } = options;
  if (!Number.isSafeInteger(maxAlerts) || maxAlerts < 1) throw new RangeError(`maxAlerts must be a positive integer, got ${maxAlerts}`);
  const rules = new Dict();
  const terminals = new Dict();
  const merchants = new Dict();
  const triaged = new Map<string, TriageState>();

  let capacity = 1024;
  let size = 0;
  let ids: string[] = [];
  let t = new Float64Array(capacity);
  let rule = new Uint16Array(capacity);
  let sev = new Uint8Array(capacity);
  let term = new Uint32Array(capacity);
  let merch = new Uint32Array(capacity);
  let status = new Uint8Array(capacity);
  let rowOff = new Float64Array(capacity);
  let byId = new Map<string, number>();
  /** Positions sorted ascending by (t, id). */
  let order = new Int32Array(capacity);
  let byTerm: number[][] = [];
  let byMerch: number[][] = [];
  let horizon = Number.NEGATIVE_INFINITY;

  const grow = (min: number) => {
    if (min <= capacity) return;
    let next = capacity;
    while (next < min) next *= 2;
    const re = <A extends Float64Array | Uint16Array | Uint8Array | Uint32Array | Int32Array>(a: A, make: new (n: number) => A): A => {
      const b = new make(next);
      b.set(a.subarray(0, size));
      return b;
    };
    t = re(t, Float64Array);
    rule = re(rule, Uint16Array);
    sev = re(sev, Uint8Array);
    term = re(term, Uint32Array);
    merch = re(merch, Uint32Array);
    status = re(status, Uint8Array);
    rowOff = re(rowOff, Float64Array);
    order = re(order, Int32Array);
    capacity = next;
  };

  /** key(p) compared to (kt, kid): negative, 0, positive. Ids compare as ClickHouse compares String bytes for ASCII ids. */
  const cmp = (p: number, kt: number, kid: string): number => {
    const pt = t[p]!;
    if (pt !== kt) return pt < kt ? -1 : 1;
    const pid = ids[p]!;
    return pid < kid ? -1 : pid > kid ? 1 : 0;
  };
  /** First index i in list[0..len) with key(list[i]) >= (kt, kid). */
  const lowerBound = (list: ArrayLike<number>, len: number, kt: number, kid: string): number => {
    let lo = 0;
    let hi = len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cmp(list[mid]!, kt, kid) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const insertSorted = (list: number[], p: number) => {
    const n = list.length;
    if (n === 0 || cmp(list[n - 1]!, t[p]!, ids[p]!) < 0) list.push(p);
    else list.splice(lowerBound(list, n, t[p]!, ids[p]!), 0, p);
  };

  const statusCode = (s: TriageStatus) => STATUS_ORDER.indexOf(s);
  const newer = (a: TriageState, b: TriageState | undefined) => b === undefined || a.at > b.at || (a.at === b.at && statusCode(a.status) > statusCode(b.status));

  function trim() {
    // Keep the newest maxAlerts; everything from the cut's detected_at + 1 ms on is still complete.
    const drop = size - maxAlerts;
    if (drop <= 0) return;
    const cutT = t[order[drop - 1]!]!;
    const keep = order.slice(drop, size);
    const old = { ids, t, rule, sev, term, merch, status, rowOff };
    ids = [];
    t = new Float64Array(capacity);
    rule = new Uint16Array(capacity);
    sev = new Uint8Array(capacity);
    term = new Uint32Array(capacity);
    merch = new Uint32Array(capacity);
    status = new Uint8Array(capacity);
    rowOff = new Float64Array(capacity);
    order = new Int32Array(capacity);
    byId = new Map();
    byTerm = [];
    byMerch = [];
    size = 0;
    for (const p of keep) {
      const q = size++;
      ids.push(old.ids[p]!);
      t[q] = old.t[p]!;
      rule[q] = old.rule[p]!;
      sev[q] = old.sev[p]!;
      term[q] = old.term[p]!;
      merch[q] = old.merch[p]!;
      status[q] = old.status[p]!;
      rowOff[q] = old.rowOff[p]!;
      order[q] = q;
      byId.set(ids[q]!, q);
      (byTerm[term[q]!] ??= []).push(q);
      (byMerch[merch[q]!] ??= []).push(q);
    }
    horizon = Math.max(horizon, cutT + 1);
  }

  function list(filter: AlertFilter, cursor: Cursor | undefined, limit: number): IndexPage | undefined {
    // Candidate lists: the smallest structure that holds every match.
    let lists: ArrayLike<number>[];
    let lens: number[];
    let merchantMask: Set<number> | undefined;
    if (filter.terminals?.length) {
      lists = filter.terminals.map((x) => {
        const c = terminals.codes.get(x);
        return c === undefined ? [] : (byTerm[c] ?? []);
      });
      if (filter.merchants?.length) merchantMask = new Set(filter.merchants.map((m) => merchants.codes.get(m) ?? -1));
    } else if (filter.merchants?.length) {
      lists = filter.merchants.map((x) => {
        const c = merchants.codes.get(x);
        return c === undefined ? [] : (byMerch[c] ?? []);
      });
    } else {
      lists = [order];
    }
    lens = lists.map((l) => (l === order ? size : l.length));
    // Dedupe repeated filter values (terminal=T1&terminal=T1): the same list twice would repeat rows.
    if (lists.length > 1) {
      const seen = new Set<ArrayLike<number>>();
      const keep = lists.map((l) => (seen.has(l) ? false : (seen.add(l), true)));
      lists = lists.filter((_, i) => keep[i]);
      lens = lens.filter((_, i) => keep[i]);
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
    const pos = lists.map((l, i) => {
      let end = lens[i]!;
      if (cursor) end = Math.min(end, lowerBound(l, end, cursor.t, cursor.id));
      if (filter.toMs !== undefined) end = Math.min(end, lowerBound(l, end, filter.toMs, ''));
      return end - 1;
    });

    const out: number[] = [];
    for (;;) {
      // Next candidate: the largest key among the lists' heads.
      let best = -1;
      for (let i = 0; i < lists.length; i++) {
        const j = pos[i]!;
        if (j < 0) continue;
        if (best < 0 || cmp(lists[i]![j]!, t[lists[best]![pos[best]!]!]!, ids[lists[best]![pos[best]!]!]!) > 0) best = i;
      }
      // Exhausted: exact if nothing older than the horizon could match (everything, or `from` above it).
      if (best < 0) return fromMs >= horizon ? { positions: out, more: false } : undefined;
      const p = lists[best]![pos[best]!]!;
      pos[best]! -= 1;
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
      if (a.detected_at < horizon || byId.has(a.alert_id)) return undefined;
      grow(size + 1);
      const p = size++;
      ids.push(a.alert_id);
      t[p] = a.detected_at;
      rule[p] = rules.code(a.rule);
      sev[p] = SEVERITIES.indexOf(a.severity) + 1;
      term[p] = terminals.code(a.terminal_id);
      merch[p] = merchants.code(a.merchant_id);
      const tri = triaged.get(a.alert_id);
      status[p] = tri ? statusCode(tri.status) : 0;
      rowOff[p] = -1;
      byId.set(a.alert_id, p);
      // Global order: append in the common case (alerts arrive roughly in detected order).
      const n = p;
      if (n === 0 || cmp(order[n - 1]!, a.detected_at, a.alert_id) < 0) order[n] = p;
      else {
        const at = lowerBound(order, n, a.detected_at, a.alert_id);
        order.copyWithin(at + 1, at, n);
        order[at] = p;
      }
      insertSorted((byTerm[term[p]!] ??= []), p);
      insertSorted((byMerch[merch[p]!] ??= []), p);
      if (size > maxAlerts + Math.max(1, Math.floor(maxAlerts / 10))) {
        trim();
        return byId.get(a.alert_id);
      }
      return p;
    },
    position: (id) => byId.get(id),
    get(p) {
      if (p < 0 || p >= size) throw new RangeError(`no alert at position ${p}`);
      return {
        alert_id: ids[p]!,
        rule: rules.names[rule[p]!]!,
        severity: SEVERITIES[sev[p]! - 1]!,
        terminal_id: terminals.names[term[p]!]!,
        merchant_id: merchants.names[merch[p]!]!,
        detected_at: t[p]!,
      };
    },
    rowOffset: (p) => rowOff[p]!,
    setRowOffset(p, off) {
      rowOff[p] = off;
    },
    triage(id, entry) {
      if (!newer(entry, triaged.get(id))) return;
      triaged.set(id, entry);
      const p = byId.get(id);
      if (p !== undefined) status[p] = statusCode(entry.status);
    },
    triageOf: (id) => triaged.get(id),
    list,
    get horizon() {
      return horizon;
    },
    set horizon(h: number) {
      horizon = h;
    },
    get size() {
      return size;
    },
    approxBytes() {
      // 8+2+1+4+4+1+8+4 bytes of columns per slot, ~56 per id string, ~40 per map entry, 2 x 8 in lists.
      return capacity * 32 + size * (56 + 40 + 16) + triaged.size * 120;
    },
  };
}
