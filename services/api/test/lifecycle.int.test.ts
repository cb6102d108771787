// Alert lifecycle in the API: an alert resolved by an alert update (ClickHouse alert_updates) is
// `auto_resolved` whatever its triage says, `?status=open` leaves it out, `?status=auto_resolved`
// finds it, and its history merges triage entries and updates in time order. On both read paths:
// the ClickHouse queries, and the in-memory read model (which learns updates by polling).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { toAlertTriageRow, toAlertUpdateRow } from '@tillwatch/clickhouse';
import { alertUpdateId, type Alert, type AlertUpdate } from '@tillwatch/schemas';
import { createRegistry } from '@tillwatch/telemetry';
import { auth, buildApp, insertAlerts, insertTransactions, makeAlerts } from './fixtures.js';
import type { ApiApp } from '../src/app.js';
import type { AlertView } from '../src/store.js';
import { createApiMetrics } from '../src/metrics.js';
import { createAlertReadModel, type AlertReadModel } from '../src/read-model/read-model.js';
import type { HistoryEntry } from '../src/lifecycle.js';

const update = (a: Alert, at: number, resolution: AlertUpdate['resolution'] = 'refunded'): AlertUpdate => ({
  update_id: alertUpdateId(a.alert_id, 'auto_resolved', resolution, [`ev-resolve-${a.alert_id}`]), alert_id: a.alert_id, rule: a.rule, rule_version: a.rule_version,
  terminal_id: a.terminal_id, merchant_id: a.merchant_id, status: 'auto_resolved', resolution, resolved_by_event_ids: [`ev-resolve-${a.alert_id}`], resolved_at: at, summary: `resolved: ${resolution}`, details: {},
});

for (const variant of ['ClickHouse queries', 'in-memory read model'] as const) {
  describe(`alert lifecycle (${variant})`, () => {
    let t: TestClickHouse;
    let app: ApiApp;
    let alerts: Alert[];
    let model: AlertReadModel | undefined;
    const registry = createRegistry({ service: 'api-lifecycle', defaultMetrics: false });
    const insertUpdates = async (us: AlertUpdate[]) => t.ch.client.insert({ table: t.ch.table('alert_updates'), values: us.map(toAlertUpdateRow), format: 'JSONEachRow' });
    const get = async <T>(url: string): Promise<T> => {
      const r = await app.inject({ method: 'GET', url, headers: auth('viewer') });
      expect(r.statusCode, r.body).toBe(200);
      return r.json<T>();
    };
    const ids = (xs: { alert_id: string }[]) => xs.map((x) => x.alert_id).sort();
    const list = async (q: string) => ids((await get<{ items: AlertView[] }>(`/alerts?limit=500&${q}`)).items);

    beforeAll(async () => {
      t = await createTestClickHouse({ migrate: true });
      const data = makeAlerts(30);
      alerts = data.alerts;
      await insertAlerts(t.ch, alerts);
      // Evidence of alert 0 in three currencies (exponents 2, 0, 3).
      const [e0, e1] = data.transactions.filter((tx) => alerts[0]!.event_ids.includes(tx.event_id));
      await insertTransactions(t.ch, [{ ...e0!, amount_minor: 2500, currency: 'EUR' }, { ...e1!, amount_minor: 1250, currency: 'KWD' }]);
      // Alerts 0-4 resolved by updates (2 of them replayed: copies must not matter); alert 1 was
      // acknowledged before its resolution, alert 2 marked false_positive after it; alert 10 only triaged.
      const us = alerts.slice(0, 5).map((a) => update(a, a.detected_at + 60_000));
      await insertUpdates(us);
      await insertUpdates(us.slice(0, 2));
      const triage = [
        { alert_id: alerts[1]!.alert_id, status: 'acknowledged' as const, actor: 'ana', note: 'looking', at: alerts[1]!.detected_at + 1000 },
        { alert_id: alerts[2]!.alert_id, status: 'false_positive' as const, actor: 'ana', note: 'nah', at: alerts[2]!.detected_at + 120_000 },
        { alert_id: alerts[10]!.alert_id, status: 'resolved' as const, actor: 'ana', note: 'done', at: alerts[10]!.detected_at + 1000 },
      ];
      await t.ch.client.insert({ table: t.ch.table('alert_triage'), values: triage.map(toAlertTriageRow), format: 'JSONEachRow' });
      if (variant === 'in-memory read model') {
        model = createAlertReadModel({ ch: t.ch, metrics: createApiMetrics(registry), maxAlerts: 1000, rowBytes: 1 << 20, pollMs: 60_000 });
        await model.start();
      }
      app = buildApp(t.ch, { metricsRegistry: registry, ...(model ? { readModel: model } : {}) }).app;
      await app.ready();
    });

    afterAll(async () => {
      await app?.close();
      if (model) {
        // The variant really answered lists from memory.
        const reads = (await registry.getSingleMetric('tillwatch_api_alert_reads_total')!.get()).values;
        expect(reads.find((v) => v.labels['source'] === 'memory' && v.labels['reason'] === 'list')?.value ?? 0).toBeGreaterThan(3);
        await model.close();
      }
      await t?.dispose();
    });

    it('status reflects updates: auto_resolved wins over triage before or after it', async () => {
      for (const i of [0, 1, 2, 3, 4]) {
        const { alert: a } = await get<{ alert: AlertView }>(`/alerts/${alerts[i]!.alert_id}`);
        expect(a.status).toBe('auto_resolved');
        expect(a.status_by).toBe('detector');
        expect(a.status_at).toBe(alerts[i]!.detected_at + 60_000);
      }
      const a10 = await get<{ alert: AlertView }>(`/alerts/${alerts[10]!.alert_id}`);
      expect(a10.alert.status).toBe('resolved');
      const a11 = await get<{ alert: AlertView }>(`/alerts/${alerts[11]!.alert_id}`);
      expect(a11.alert.status).toBe('open');
    });

    it('?status=open excludes auto-resolved alerts; ?status=auto_resolved lists them; filters combine', async () => {
      const resolved = ids(alerts.slice(0, 5));
      expect(await list('status=auto_resolved')).toEqual(resolved);
      expect(await list('status=open')).toEqual(ids(alerts.filter((_, i) => i > 4 && i !== 10)));
      expect(await list('status=open&status=auto_resolved')).toEqual(ids(alerts.filter((_, i) => i !== 10)));
      expect(await list('status=resolved')).toEqual([alerts[10]!.alert_id]);
      // alert 2 is false_positive by triage but auto_resolved by events: it is not listed as false_positive.
      expect(await list('status=false_positive')).toEqual([]);
      expect(await list('status=acknowledged&status=auto_resolved')).toEqual(resolved);
      const rule = alerts[0]!.rule;
      expect(await list(`status=auto_resolved&rule=${rule}`)).toEqual(ids(alerts.slice(0, 5).filter((a) => a.rule === rule)));
    });

    it('evidence shows amounts as money next to the raw minor units', async () => {
      const body = await get<{ evidence: { event_id: string; amount_minor: number; currency: string; amount: string }[] }>(`/alerts/${alerts[0]!.alert_id}`);
      expect(body.evidence.map((e) => [e.amount_minor, e.amount]).sort()).toEqual([[1250, '1.250 KWD'], [2500, '25.00 EUR']]);
    });

    it('history merges triage entries and updates in time order', async () => {
      const h1 = await get<{ status: string; entries: HistoryEntry[] }>(`/alerts/${alerts[1]!.alert_id}/history`);
      expect(h1.status).toBe('auto_resolved');
      expect(h1.entries.map((e) => [e.source ?? 'triage', e.status, e.actor])).toEqual([['triage', 'acknowledged', 'ana'], ['update', 'auto_resolved', 'detector']]);
      expect(h1.entries[1]).toMatchObject({ resolution: 'refunded', resolved_by_event_ids: [`ev-resolve-${alerts[1]!.alert_id}`], at: alerts[1]!.detected_at + 60_000 });
      const h2 = await get<{ entries: HistoryEntry[] }>(`/alerts/${alerts[2]!.alert_id}/history`);
      expect(h2.entries.map((e) => e.source ?? 'triage')).toEqual(['update', 'triage']);
      const h0 = await get<{ entries: HistoryEntry[] }>(`/alerts/${alerts[0]!.alert_id}/history`);
      expect(h0.entries).toHaveLength(1); // the replayed copy is one entry
    });

    it('an update stored later is picked up (the read model by its next poll)', async () => {
      const a = alerts[20]!;
      expect(await list('status=open')).toContain(a.alert_id);
      await insertUpdates([update(a, a.detected_at + 5000, 'episode_ended')]);
      await model?.refresh();
      expect(await list('status=open')).not.toContain(a.alert_id);
      expect(await list('status=auto_resolved')).toContain(a.alert_id);
      expect((await get<{ alert: AlertView }>(`/alerts/${a.alert_id}`)).alert.status).toBe('auto_resolved');
    });
  });
}
