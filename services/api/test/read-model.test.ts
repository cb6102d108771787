// The read model's pure parts: the row arena, the row codec, and the alert index checked against a
// plain reference (sort, filter, slice) on random alerts, filters, cursors, triage and horizons.
import { describe, expect, it } from 'vitest';
import type { TriageStatus } from '@tillwatch/clickhouse';
import type { Alert, Severity } from '@tillwatch/schemas';
import { createRowArena } from '../src/read-model/row-arena.js';
import { createAlertCodec } from '../src/read-model/alert-codec.js';
import { createAlertIndex, indexBudgetBytes, type IndexedAlert, type TriageState } from '../src/read-model/alert-index.js';
import type { AlertFilter } from '../src/store.js';
import type { Cursor } from '../src/cursor.js';

describe('row arena', () => {
  it('returns what was written until the writer laps it, never a torn record', () => {
    const arena = createRowArena(100);
    const rec = (n: number) => Buffer.alloc(12, n); // 16 bytes with the header
    const offs = Array.from({ length: 6 }, (_, i) => arena.write(rec(i)));
    expect(offs).toEqual([0, 16, 32, 48, 64, 80]);
    for (let i = 0; i < 6; i++) expect(arena.read(offs[i]!)).toEqual(rec(i));
    // 96 + 16 > 100: the 4 bytes left are skipped, the record goes to the start and ages out #0.
    const seventh = arena.write(rec(7));
    expect(seventh).toBe(100);
    expect(arena.read(offs[0]!)).toBeUndefined();
    expect(arena.read(offs[1]!)).toEqual(rec(1));
    expect(arena.read(seventh)).toEqual(rec(7));
    const eighth = arena.write(rec(8));
    expect(arena.read(offs[1]!)).toBeUndefined();
    expect(arena.read(eighth)).toEqual(rec(8));
    expect(arena.read(-1)).toBeUndefined();
    expect(arena.read(10_000)).toBeUndefined();
  });

  it('refuses a record larger than the ring, and keeps working', () => {
    const arena = createRowArena(64);
    expect(arena.write(Buffer.alloc(61))).toBe(-1);
    const ok = arena.write(Buffer.from('fits'));
    expect(arena.read(ok)?.toString()).toBe('fits');
    expect(() => createRowArena(10)).toThrow(RangeError);
  });

  it('survives many laps with random sizes: readable records are exactly the recent ones', () => {
    const arena = createRowArena(1000);
    const written: { off: number; data: Buffer }[] = [];
    let seed = 7;
    for (let i = 0; i < 5000; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const data = Buffer.alloc(1 + (seed % 90), i % 251);
      written.push({ off: arena.write(data), data });
    }
    let readable = 0;
    for (const w of written) {
      const got = arena.read(w.off);
      if (got) {
        readable += 1;
        expect(got).toEqual(w.data);
        expect(arena.head - w.off).toBeLessThanOrEqual(1000);
      } else expect(arena.head - w.off).toBeGreaterThan(1000);
    }
    expect(readable).toBeGreaterThan(10);
  });
});

describe('alert codec', () => {
  const codec = createAlertCodec();
  const base: Alert = {
    alert_id: 'x',
    rule: 'sync_lag',
    rule_version: 3,
    rules_version: 0,
    severity: 'high',
    terminal_id: 'T1',
    merchant_id: 'M1',
    card_token: 'tok_ünïcødé_✓',
    event_ids: ['ev-1', 'ev-2', ''],
    window_start: 1_795_635_795_410,
    window_end: 1_795_635_799_999,
    detected_at: 1_795_635_800_000,
    summary: 'sync lag 12 min on T1 — “late”',
    details: { lag_ms: 720_000, ratio: 0.125, missing: Number.NaN, neg: -1.5 },
  };
  const tail = (a: Alert) => ({
    rule_version: a.rule_version,
    card_token: a.card_token,
    event_ids: a.event_ids,
    window_start: a.window_start,
    window_end: a.window_end,
    summary: a.summary,
    details: a.details,
    rules_version: a.rules_version,
    ...(a.currency != null ? { currency: a.currency } : {}),
    ...(a.amount_minor != null ? { amount_minor: a.amount_minor } : {}),
  });

  it('round-trips the tail of an alert (unicode, NaN, empty strings, null token, no details)', () => {
    for (const a of [base, { ...base, card_token: null, event_ids: [], details: {}, summary: '' }, { ...base, rules_version: 4_000_000_000, currency: 'JPY', amount_minor: 9_007_199_254_740_991 }]) {
      const bytes = codec.encode(a);
      expect(bytes).toBeDefined();
      expect(codec.decode(Buffer.from(bytes!))).toEqual(tail(a));
    }
  });

  it('a string over 64 KiB is not encodable (that row stays in ClickHouse only)', () => {
    expect(codec.encode({ ...base, summary: 'x'.repeat(70_000) })).toBeUndefined();
    expect(codec.encode({ ...base, rule_version: 70_000 })).toBeUndefined();
    expect(codec.encode({ ...base, currency: 'EUR', amount_minor: 2 ** 53 })).toBeUndefined();
    // The scratch buffer grows for large but encodable rows.
    const big = { ...base, event_ids: Array.from({ length: 500 }, (_, i) => `ev-${i}-${'y'.repeat(40)}`) };
    expect(codec.decode(Buffer.from(codec.encode(big)!))).toEqual(tail(big));
  });
});

// ------------------------------------------------------------------------------------------------

const SEV: Severity[] = ['low', 'medium', 'high', 'critical'];
const STATUSES: TriageStatus[] = ['open', 'acknowledged', 'resolved', 'false_positive'];

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const byKeyDesc = (a: IndexedAlert, b: IndexedAlert) => b.detected_at - a.detected_at || (a.alert_id < b.alert_id ? 1 : a.alert_id > b.alert_id ? -1 : 0);

/** The plain answer: everything sorted, filtered, cut at the cursor, sliced. */
function reference(alerts: IndexedAlert[], status: Map<string, TriageStatus>, f: AlertFilter, cursor: Cursor | undefined, limit: number) {
  const match = alerts
    .filter(
      (a) =>
        (!f.rules?.length || f.rules.includes(a.rule)) &&
        (!f.severities?.length || f.severities.includes(a.severity)) &&
        (!f.statuses?.length || f.statuses.includes(status.get(a.alert_id) ?? 'open')) &&
        (!f.terminals?.length || f.terminals.includes(a.terminal_id)) &&
        (!f.merchants?.length || f.merchants.includes(a.merchant_id)) &&
        (f.fromMs === undefined || a.detected_at >= f.fromMs) &&
        (f.toMs === undefined || a.detected_at < f.toMs) &&
        (!cursor || a.detected_at < cursor.t || (a.detected_at === cursor.t && a.alert_id < cursor.id)),
    )
    .sort(byKeyDesc);
  return { page: match.slice(0, limit), rest: match.slice(limit) };
}

function randomAlerts(r: () => number, n: number, t0: number): IndexedAlert[] {
  return Array.from({ length: n }, (_, i) => {
    const term = Math.floor(r() * 12);
    return {
      alert_id: `al-${Math.floor(r() * 1e9).toString(16).padStart(8, '0')}-${i}`,
      rule: ['duplicate_charge', 'sync_lag', 'sequence_gap', 'abnormal_amount'][Math.floor(r() * 4)]!,
      severity: SEV[Math.floor(r() * 4)]!,
      terminal_id: `T${term}`,
      merchant_id: `M${term % 4}`,
      // Few distinct times: many ties on detected_at, broken by alert_id.
      detected_at: t0 + Math.floor(r() * 60) * 1000,
    };
  });
}

function randomFilter(r: () => number, t0: number): AlertFilter {
  const f: AlertFilter = {};
  const some = <T>(xs: readonly T[]) => xs.filter(() => r() < 0.4);
  if (r() < 0.3) f.rules = some(['duplicate_charge', 'sync_lag', 'sequence_gap', 'abnormal_amount', 'no_such_rule']);
  if (r() < 0.3) f.severities = some(SEV);
  if (r() < 0.3) f.statuses = some(STATUSES);
  if (r() < 0.25) f.terminals = some(['T0', 'T1', 'T2', 'T3', 'T4', 'T7', 'T11', 'T99', 'T1']);
  if (r() < 0.25) f.merchants = some(['M0', 'M1', 'M2', 'M3', 'M9']);
  if (r() < 0.25) f.fromMs = t0 + Math.floor(r() * 60) * 1000;
  if (r() < 0.25) f.toMs = t0 + Math.floor(r() * 70) * 1000;
  return f;
}

describe('alert index', () => {
  it('answers exactly like sort + filter + slice: random alerts, filters, cursors, triage, out-of-order inserts', () => {
    const r = rng(1);
    const t0 = 1_795_000_000_000;
    for (let round = 0; round < 40; round++) {
      const alerts = randomAlerts(r, 200 + Math.floor(r() * 400), t0);
      const index = createAlertIndex({ maxAlerts: 10_000 });
      const status = new Map<string, TriageStatus>();
      // Triage known before some alerts arrive (the state loads first), and after.
      const triage = (a: IndexedAlert, k: number) => {
        const s = STATUSES[1 + (k % 3)]!;
        index.triage(a.alert_id, { status: s, actor: 'ana', at: t0 + k });
        status.set(a.alert_id, s);
      };
      alerts.slice(0, 20).forEach(triage);
      // Insert in random order (late alerts), with replayed copies that must be ignored.
      const shuffled = [...alerts].sort(() => r() - 0.5);
      for (const a of shuffled) expect(index.add(a)).toBeDefined();
      for (const a of alerts.slice(0, 30)) expect(index.add({ ...a, severity: 'low' })).toBeUndefined();
      alerts.slice(100, 130).forEach((a, k) => triage(a, k + 100));
      expect(index.size).toBe(alerts.length);
      for (let q = 0; q < 25; q++) {
        const f = randomFilter(r, t0);
        const limit = 1 + Math.floor(r() * 40);
        // Page through the whole result; every page must equal the reference's page at that cursor.
        let cursor: Cursor | undefined;
        const all: string[] = [];
        for (let pages = 0; pages < 1000; pages++) {
          const got = index.list(f, cursor, limit);
          const want = reference(alerts, status, f, cursor, limit);
          expect(got).toBeDefined();
          expect(got!.positions.map((p) => index.get(p))).toEqual(want.page);
          expect(got!.more).toBe(want.rest.length > 0);
          all.push(...want.page.map((a) => a.alert_id));
          if (!got!.more) break;
          const last = want.page[want.page.length - 1]!;
          cursor = { t: last.detected_at, id: last.alert_id };
        }
        expect(all).toEqual(reference(alerts, status, f, undefined, 1e9).page.map((a) => a.alert_id));
      }
    }
  }, 60_000);

  it('a later triage wins; ties on time go to the later status in enum order; stale entries are ignored', () => {
    const index = createAlertIndex({ maxAlerts: 10 });
    const a: IndexedAlert = { alert_id: 'a', rule: 'r', severity: 'low', terminal_id: 'T', merchant_id: 'M', detected_at: 1000 };
    index.add(a);
    const set = (status: TriageStatus, at: number) => index.triage('a', { status, actor: 'x', at });
    const statusOf = () => index.list({ statuses: ['acknowledged'] }, undefined, 5)!.positions.length > 0;
    set('acknowledged', 10);
    expect(statusOf()).toBe(true);
    set('resolved', 5); // older: ignored
    expect(index.triageOf('a')?.status).toBe('acknowledged');
    set('false_positive', 10); // same time, later in enum order
    expect(index.triageOf('a')?.status).toBe('false_positive');
    set('acknowledged', 10);
    expect(index.triageOf('a')?.status).toBe('false_positive');
    expect(statusOf()).toBe(false);
  });

  it('bounded: trims the oldest, moves the horizon, and answers only pages it holds completely', () => {
    const r = rng(2);
    const t0 = 1_795_000_000_000;
    const alerts = randomAlerts(r, 3000, t0).map((a, i) => ({ ...a, detected_at: t0 + i * 10 + (i % 3) }));
    const index = createAlertIndex({ maxAlerts: 1000 });
    for (const a of alerts) index.add(a);
    expect(index.size).toBeLessThanOrEqual(1100);
    expect(index.size).toBeGreaterThanOrEqual(1000);
    expect(Number.isFinite(index.horizon)).toBe(true);
    // Everything at or after the horizon is present.
    for (const a of alerts) if (a.detected_at >= index.horizon) expect(index.position(a.alert_id)).toBeDefined();
    // Below the horizon nothing new gets in.
    expect(index.add({ ...alerts[0]!, alert_id: 'late-old', detected_at: index.horizon - 1 })).toBeUndefined();
    const status = new Map<string, TriageStatus>();
    let answered = 0;
    let deferred = 0;
    for (let q = 0; q < 400; q++) {
      const f = randomFilter(r, t0);
      f.fromMs = f.fromMs === undefined ? undefined : t0 + Math.floor(r() * 30_000);
      f.toMs = f.toMs === undefined ? undefined : t0 + Math.floor(r() * 32_000);
      const limit = 1 + Math.floor(r() * 50);
      const got = index.list(f, undefined, limit);
      const want = reference(alerts, status, f, undefined, limit);
      // What the index must be able to answer: the page and the next match are all above the horizon.
      const needed = [...want.page, ...want.rest.slice(0, 1)];
      const reachesBelow = needed.some((a) => a.detected_at < index.horizon) || (want.rest.length === 0 && (f.fromMs ?? -Infinity) < index.horizon);
      if (!got) {
        deferred += 1;
        expect(reachesBelow).toBe(true);
        continue;
      }
      answered += 1;
      expect(got.positions.map((p) => index.get(p))).toEqual(want.page);
      expect(got.more).toBe(want.rest.length > 0);
    }
    expect(answered).toBeGreaterThan(50);
    expect(deferred).toBeGreaterThan(10);
  });

  it('an unknown terminal, merchant or rule is an empty page when the index holds everything', () => {
    const index = createAlertIndex({ maxAlerts: 100 });
    index.add({ alert_id: 'a', rule: 'r', severity: 'low', terminal_id: 'T', merchant_id: 'M', detected_at: 1 });
    for (const f of [{ terminals: ['nope'] }, { merchants: ['nope'] }, { rules: ['nope'] }] as AlertFilter[]) {
      expect(index.list(f, undefined, 10)).toEqual({ positions: [], more: false });
    }
    index.horizon = 0.5;
    expect(index.list({ terminals: ['nope'] }, undefined, 10)).toBeUndefined();
    // One alert held and a limit of 1: the page is right but whether more exist below is unknown.
    expect(index.list({}, undefined, 1)).toBeUndefined();
  });

  it('a re-fired alert (a later copy) stays listed when a trim drops its first copy', () => {
    const index = createAlertIndex({ maxAlerts: 2 });
    const at = (id: string, t: number): IndexedAlert => ({ alert_id: id, rule: 'r', severity: 'low', terminal_id: 'T', merchant_id: 'M', detected_at: t });
    index.add(at('x', 100));
    index.add(at('y', 150));
    expect(index.add(at('x', 300))).toBeUndefined(); // the later copy is not listed while the first is
    expect(index.add(at('x', 100))).toBeUndefined(); // a replay changes nothing
    index.add(at('z', 200));
    index.add(at('w', 250)); // 4 > 2 + 10%: trims x@100 and y@150
    expect(index.horizon).toBe(151);
    const page = index.list({ fromMs: 151 }, undefined, 10)!;
    expect(page.positions.map((p) => [index.get(p).alert_id, index.get(p).detected_at])).toEqual([
      ['x', 300],
      ['w', 250],
      ['z', 200],
    ]);
    expect(index.position('x')).toBeDefined();
  });

  it('keeps the triage of alerts it has not seen yet, for when they arrive', () => {
    const index = createAlertIndex({ maxAlerts: 5 });
    const entry: TriageState = { status: 'resolved', actor: 'ana', at: 5 };
    index.triage('later', entry);
    index.add({ alert_id: 'later', rule: 'r', severity: 'low', terminal_id: 'T', merchant_id: 'M', detected_at: 1 });
    expect(index.list({ statuses: ['resolved'] }, undefined, 10)?.positions.map((p) => index.get(p).alert_id)).toEqual(['later']);
  });

  it('memory stays within its budget: trims drop the triage, re-fire marks and dictionary entries of the alerts they drop; pending triage is bounded', () => {
    const r = rng(7);
    const maxAlerts = 200;
    const index = createAlertIndex({ maxAlerts, maxPendingTriage: 50 });
    let t = 1_000_000;
    for (let i = 0; i < 20_000; i++) {
      t += 1000;
      // A churning fleet: every alert at a new terminal and merchant.
      const a = { alert_id: `al-${i}`, rule: `rule_${i % 7}`, severity: SEV[i % 4]!, terminal_id: `T${i}`, merchant_id: `M${i}`, detected_at: t };
      index.add(a);
      // Analysts triage what they see, re-fires happen, and triage rows for alerts never indexed here arrive.
      index.triage(a.alert_id, { status: STATUSES[1 + (i % 3)]!, actor: 'ana', at: t + 1 });
      if (i % 5 === 0) index.add({ ...a, detected_at: t + 500 });
      index.triage(`elsewhere-${i}`, { status: 'resolved', actor: 'bob', at: t });
      if (r() < 0.01) index.triage(`al-${Math.floor(r() * i)}`, { status: 'false_positive', actor: 'cy', at: t + 2 });
    }
    const c = index.counts();
    expect(c.alerts).toBeLessThanOrEqual(Math.floor(maxAlerts * 1.1) + 1);
    expect(c.alerts).toBeGreaterThanOrEqual(maxAlerts);
    expect(c.triaged).toBeLessThanOrEqual(c.alerts);
    expect(c.refires).toBeLessThanOrEqual(c.alerts);
    expect(c.pending).toBeLessThanOrEqual(50);
    expect(c.terminals).toBeLessThanOrEqual(c.alerts);
    expect(c.merchants).toBeLessThanOrEqual(c.alerts);
    expect(c.rules).toBe(7);
    expect(index.approxBytes()).toBeLessThanOrEqual(indexBudgetBytes(maxAlerts, 50));
    // Still exact after all the trims and recoding: the newest alert, its terminal, its triage.
    const newest = index.list({}, undefined, 1)!;
    const head = index.get(newest.positions[0]!);
    expect(head.alert_id).toBe('al-19999');
    // (From the horizon on: the index holds everything since, so a short list is exact.)
    const since = { fromMs: index.horizon };
    expect(index.list({ terminals: ['T19999'], ...since }, undefined, 5)?.positions.map((p) => index.get(p).alert_id)).toEqual(['al-19999']);
    expect(index.list({ merchants: ['M19990'], ...since }, undefined, 5)?.positions.map((p) => index.get(p).alert_id)).toEqual(['al-19990']);
    expect(index.triageOf('al-19999')?.status).toBe(STATUSES[1 + (19999 % 3)]);
    // A terminal trimmed away is unknown: beyond the horizon, ClickHouse answers (undefined).
    expect(index.list({ terminals: ['T5'] }, undefined, 5)).toBeUndefined();
  });
});
