// The in-memory read model against embedded ClickHouse: every page it answers equals the page the
// ClickHouse query path answers (random data with ties, replayed copies and triage; random filters
// and cursors), also when it is bounded (horizon), when rows left its arena, and without the 006
// time-ordered table; and it follows new alerts and other replicas' triage by polling.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { toAlertTriageRow, type TriageStatus } from '@tillwatch/clickhouse';
import type { Alert, Severity } from '@tillwatch/schemas';
import { createRegistry } from '@tillwatch/telemetry';
import type { Registry } from 'prom-client';
import { insertAlerts } from './fixtures.js';
import { createApiMetrics } from '../src/metrics.js';
import { createAlertStore, type AlertFilter, type AlertStore, type AlertView } from '../src/store.js';
import { createAlertReadModel, type AlertReadModel } from '../src/read-model/read-model.js';
import { createAlertTail } from '../src/read-model/alert-tail.js';
import type { Cursor } from '../src/cursor.js';

const RULES = ['duplicate_charge', 'abnormal_amount', 'sync_lag', 'sequence_gap'];
const SEV: Severity[] = ['low', 'medium', 'high', 'critical'];
const T0 = Math.floor((Date.now() - 3 * 86_400_000) / 60_000) * 60_000;

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function makeRandomAlerts(n: number, seed: number, prefix = 'al'): Alert[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const term = Math.floor(r() * 20);
    const detected = T0 + Math.floor(r() * 400) * 60_000; // ties: ~5 alerts per minute
    return {
      alert_id: `${prefix}-${Math.floor(r() * 2 ** 32).toString(16).padStart(8, '0')}${i.toString(16).padStart(4, '0')}`,
      rule: RULES[Math.floor(r() * RULES.length)]!,
      rule_version: 1,
      rules_version: 0,
      severity: SEV[Math.floor(r() * 4)]!,
      terminal_id: `T${term}`,
      merchant_id: `M${term % 5}`,
      card_token: r() < 0.3 ? null : `tok_${i % 37}`,
      event_ids: [`ev-${i}-a`, `ev-${i}-b`],
      window_start: detected - 60_000,
      window_end: detected - 1000,
      detected_at: detected,
      summary: `alert ${i} “ünïcode”`,
      details: (i % 11 === 0 ? { ratio: Number.NaN } : { ratio: i / 7, lag_ms: i * 1000 }) as Record<string, number>,
    };
  });
}

function randomFilter(r: () => number): AlertFilter {
  const f: AlertFilter = {};
  const some = <T>(xs: readonly T[]) => xs.filter(() => r() < 0.35);
  if (r() < 0.3) f.rules = some([...RULES, 'nope']);
  if (r() < 0.3) f.severities = some(SEV);
  if (r() < 0.3) f.statuses = some(['open', 'acknowledged', 'resolved', 'false_positive'] as TriageStatus[]);
  if (r() < 0.25) f.terminals = some(['T0', 'T1', 'T5', 'T13', 'T19', 'T42']);
  if (r() < 0.2) f.merchants = some(['M0', 'M1', 'M3', 'M7']);
  if (r() < 0.25) f.fromMs = T0 + Math.floor(r() * 400) * 60_000;
  if (r() < 0.25) f.toMs = T0 + Math.floor(r() * 420) * 60_000;
  return f;
}

async function triage(t: TestClickHouse, rows: { alert_id: string; status: TriageStatus; at: number }[]) {
  await t.ch.client.insert({ table: t.ch.table('alert_triage'), values: rows.map((x) => toAlertTriageRow({ ...x, actor: 'other-replica', note: 'n' })), format: 'JSONEachRow' });
}

const reads = async (registry: Registry) => {
  const out: Record<string, number> = {};
  for (const v of (await registry.getSingleMetric('tillwatch_api_alert_reads_total')!.get()).values) out[`${String(v.labels['source'])}/${String(v.labels['reason'])}`] = v.value;
  return out;
};

/**
 * Page through `filter` on both stores: the same alerts (every field, status included) in the same
 * order. Pages are compared as a sequence, not one by one: the ClickHouse path drops replayed copies
 * after its LIMIT and may return a short page (then continues on the next), the model never does.
 */
async function comparePaging(viaModel: AlertStore, viaClickHouse: AlertStore, filter: AlertFilter, limit: number, modelPagesFull = true) {
  const all = async (store: AlertStore, full: boolean) => {
    const items: AlertView[] = [];
    let cursor: Cursor | undefined;
    for (let pages = 0; pages < 2000; pages++) {
      const page = await store.listAlerts(filter, { limit, cursor });
      if (full && page.next) expect(page.items).toHaveLength(limit);
      items.push(...page.items);
      if (!page.next) return items;
      cursor = page.next;
    }
    throw new Error('did not finish paging');
  };
  const [a, b] = [await all(viaModel, modelPagesFull), await all(viaClickHouse, false)];
  expect(a, JSON.stringify({ filter, limit })).toEqual(b);
  return a.length;
}

describe('alert read model', () => {
  let t: TestClickHouse;
  let alerts: Alert[];
  const models: AlertReadModel[] = [];

  beforeAll(async () => {
    t = await createTestClickHouse({ migrate: true });
    alerts = makeRandomAlerts(1500, 1);
    // Three parts, and replayed copies of 100 alerts: both paths must hide them.
    await insertAlerts(t.ch, alerts.slice(0, 700));
    await insertAlerts(t.ch, alerts.slice(700));
    await insertAlerts(t.ch, alerts.slice(300, 400));
    const r = rng(2);
    await triage(
      t,
      alerts.filter(() => r() < 0.05).flatMap((a, i) => [
        { alert_id: a.alert_id, status: 'acknowledged' as const, at: T0 + i },
        ...(i % 2 ? [{ alert_id: a.alert_id, status: (['resolved', 'false_positive'] as const)[i % 4 === 1 ? 0 : 1], at: T0 + i + 1000 }] : []),
      ]),
    );
  });

  afterAll(async () => {
    for (const m of models) await m.close();
    await t?.dispose();
  });

  const setup = async (opts: { maxAlerts?: number; rowBytes?: number } = {}) => {
    const registry = createRegistry({ service: 'rm-test', defaultMetrics: false });
    const metrics = createApiMetrics(registry);
    // No timed polls here, so no staleness limit either: on a loaded machine a comparison can take
    // longer than the default 30 s, and the model would step aside half-way (tested on its own below).
    const model = createAlertReadModel({ ch: t.ch, metrics, maxAlerts: opts.maxAlerts ?? 100_000, rowBytes: opts.rowBytes ?? 8 << 20, pollMs: 60_000, loadPageSize: 400, maxStalenessMs: 3_600_000 });
    models.push(model);
    await model.start();
    return { model, registry, viaModel: createAlertStore({ ch: t.ch, metrics, readModel: model }), viaClickHouse: createAlertStore({ ch: t.ch, metrics: createApiMetrics(createRegistry({ service: 'ch', defaultMetrics: false })) }) };
  };

  it('answers every page exactly as ClickHouse does: random filters, cursors and limits', async () => {
    const { model, registry, viaModel, viaClickHouse } = await setup();
    expect(model.stats()).toMatchObject({ state: 'ready', alerts: 1500, horizon: null });
    const r = rng(3);
    expect(await comparePaging(viaModel, viaClickHouse, {}, 100)).toBe(1500);
    for (let q = 0; q < 25; q++) await comparePaging(viaModel, viaClickHouse, randomFilter(r), 1 + Math.floor(r() * 60));
    for (const a of [alerts[0]!, alerts[333]!, alerts[1499]!]) expect(await viaModel.getAlert(a.alert_id)).toEqual(await viaClickHouse.getAlert(a.alert_id));
    const counts = await reads(registry);
    expect(counts['memory/list']).toBeGreaterThan(100);
    expect(Object.keys(counts).filter((k) => k.startsWith('clickhouse/'))).toEqual([]);
  });

  it('bounded to the newest alerts: pages past its horizon come from ClickHouse, and the answers stay identical', async () => {
    const { model, registry, viaModel, viaClickHouse } = await setup({ maxAlerts: 400 });
    const horizon = model.stats().horizon!;
    expect(horizon).toBeGreaterThan(T0);
    expect(model.stats().alerts).toBeLessThanOrEqual(440);
    const r = rng(4);
    // Pages past the horizon come from ClickHouse, which may return short pages.
    expect(await comparePaging(viaModel, viaClickHouse, {}, 50, false)).toBe(1500);
    for (let q = 0; q < 15; q++) await comparePaging(viaModel, viaClickHouse, randomFilter(r), 1 + Math.floor(r() * 40), false);
    const counts = await reads(registry);
    expect(counts['memory/list']).toBeGreaterThan(10);
    expect(counts['clickhouse/beyond_horizon']).toBeGreaterThan(10);
  });

  it('rows gone from a small arena are read back from ClickHouse by key', async () => {
    const { model, registry, viaModel, viaClickHouse } = await setup({ rowBytes: 16 * 1024 });
    expect(model.stats().rowBytesUsed).toBe(16 * 1024);
    expect(await comparePaging(viaModel, viaClickHouse, {}, 200)).toBe(1500);
    await comparePaging(viaModel, viaClickHouse, { merchants: ['M2'], severities: ['high', 'critical'] }, 7);
    expect((await registry.getSingleMetric('tillwatch_api_read_model_row_fetches_total')!.get()).values[0]!.value).toBeGreaterThan(1000);
    expect(Object.keys(await reads(registry)).filter((k) => k.startsWith('clickhouse/'))).toEqual([]);
  });

  it('follows ClickHouse: new alerts (late ones too), replayed copies and triage by another replica appear after a poll', async () => {
    const { model, viaModel, viaClickHouse } = await setup();
    const fresh = makeRandomAlerts(30, 9, 'new').map((a, i) => (i === 0 ? { ...a, detected_at: T0 - 5 * 60_000 } : a));
    await insertAlerts(t.ch, fresh);
    await insertAlerts(t.ch, alerts.slice(0, 10)); // replayed copies, new ingested_at
    const target = alerts[42]!;
    // The other replica's clock is hours behind: the model follows ingestion time, not `at`.
    await triage(t, [{ alert_id: target.alert_id, status: 'false_positive', at: T0 - 3_600_000 * 5 }]);
    await triage(t, [{ alert_id: target.alert_id, status: 'resolved', at: Date.now() }]);
    await model.refresh();
    expect(model.stats().alerts).toBe(1530);
    expect((await viaModel.getAlert(target.alert_id))?.status).toBe('resolved');
    expect(await comparePaging(viaModel, viaClickHouse, {}, 250)).toBe(1530);
    await comparePaging(viaModel, viaClickHouse, { statuses: ['resolved'] }, 5);
    // Its own API's triage shows at once, before any poll.
    model.noteTriage(alerts[7]!.alert_id, { status: 'acknowledged', actor: 'me', at: Date.now() + 1 });
    expect((await viaModel.getAlert(alerts[7]!.alert_id))?.status_by).toBe('me');
    const late = await viaModel.listAlerts({ toMs: T0 }, { limit: 5 });
    expect(late.items.map((a) => a.alert_id)).toEqual([fresh[0]!.alert_id]);
  });

  it('without the 006 time-ordered table it loads from `alerts` and answers the same', async () => {
    const { viaClickHouse } = await setup();
    const base = await createTestClickHouse({ migrate: true });
    try {
      await base.ch.client.command({ query: `DROP TABLE ${base.ch.table('alerts_by_detected_v2_mv')}` });
      await base.ch.client.command({ query: `DROP TABLE ${base.ch.table('alerts_by_detected_v2')}` });
      await insertAlerts(base.ch, alerts.slice(0, 500));
      const registry = createRegistry({ service: 'rm-base', defaultMetrics: false });
      const metrics = createApiMetrics(registry);
      const model = createAlertReadModel({ ch: base.ch, metrics, maxAlerts: 300, rowBytes: 1 << 20, pollMs: 60_000, loadPageSize: 128 });
      models.push(model);
      await model.start();
      // The cut counts rows, replayed copies included, and alerts at the cut's own millisecond are left out.
      expect(model.stats().alerts).toBeGreaterThan(250);
      expect(model.stats().horizon).not.toBeNull();
      const viaModel = createAlertStore({ ch: base.ch, metrics, readModel: model });
      const plain = createAlertStore({ ch: base.ch, metrics: createApiMetrics(createRegistry({ service: 'x', defaultMetrics: false })), readPath: 'alerts' });
      expect(await comparePaging(viaModel, plain, {}, 60)).toBe(500);
      expect(await comparePaging(viaModel, plain, { rules: ['sync_lag'] }, 9)).toBeGreaterThan(0);
      expect((await reads(registry))['memory/list']).toBeGreaterThan(3);
      expect(viaClickHouse).toBeDefined();
    } finally {
      await base.dispose();
    }
  });

  it('stops answering when its polls have not succeeded for too long, and answers again after one does', async () => {
    const registry = createRegistry({ service: 'rm-stale', defaultMetrics: false });
    const metrics = createApiMetrics(registry);
    let clock = Date.now();
    const model = createAlertReadModel({ ch: t.ch, metrics, maxAlerts: 100_000, rowBytes: 8 << 20, pollMs: 3_600_000, maxStalenessMs: 10_000, now: () => clock });
    models.push(model);
    await model.start();
    const viaModel = createAlertStore({ ch: t.ch, metrics, readModel: model });
    expect(await model.list({}, { limit: 3 })).toBeDefined();
    clock += 11_000; // no poll succeeded for 11 s
    expect(await model.list({}, { limit: 3 })).toBeUndefined();
    expect(await model.get(alerts[0]!.alert_id)).toBeUndefined();
    // The store still answers, from ClickHouse.
    expect((await viaModel.listAlerts({}, { limit: 3 })).items).toHaveLength(3);
    expect((await reads(registry))['clickhouse/read_model_stale']).toBe(2);
    await model.refresh();
    expect(await model.list({}, { limit: 3 })).toBeDefined();
  });

  it('the tail loses nothing when a query fails half-way through a poll', async () => {
    let queries = 0;
    let failAt = -1;
    const client = new Proxy(t.ch.client, {
      get(target, prop, receiver) {
        if (prop === 'query')
          return (...args: unknown[]) => {
            if (++queries === failAt) return Promise.reject(new Error('injected: connection reset'));
            return (target.query as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          };
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const tail = createAlertTail({ ch: { ...t.ch, client, table: (n: string) => t.ch.table(n) }, batchSize: 2, maxPages: 100 });
    await tail.start();
    const some = makeRandomAlerts(5, 21, 'half');
    await insertAlerts(t.ch, some);
    // The poll's first page is read, its second query fails: the poll fails as a whole.
    failAt = queries + 2;
    await expect(tail.poll()).rejects.toThrow(/injected/);
    const got = await tail.poll();
    expect(got.map((a) => a.alert_id).sort()).toEqual(some.map((a) => a.alert_id).sort());
  });

  it('the tail gets through a burst larger than maxPages x batchSize at one ingested_at, over several polls', async () => {
    const tail = createAlertTail({ ch: t.ch, batchSize: 2, maxPages: 2 });
    await tail.start();
    const burst = makeRandomAlerts(9, 23, 'wide');
    await insertAlerts(t.ch, burst); // one insert: one ingested_at
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) seen.push(...(await tail.poll()).map((a) => a.alert_id));
    expect(seen.sort()).toEqual(burst.map((a) => a.alert_id).sort());
  });

  it('the tail reads a burst larger than one query in keyset pages, each alert once', async () => {
    const tail = createAlertTail({ ch: t.ch, batchSize: 10, maxPages: 100 });
    await tail.start();
    const burst = makeRandomAlerts(57, 11, 'burst');
    await insertAlerts(t.ch, burst); // one insert: all share one ingested_at
    const got = await tail.poll();
    expect(got.map((a) => a.alert_id).sort()).toEqual(burst.map((a) => a.alert_id).sort());
    expect(await tail.poll()).toEqual([]);
  });
});
