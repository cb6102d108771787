// GET /alerts, /alerts/:id, triage and history against embedded ClickHouse with data, on every read
// path: the standard schema (FINAL over `alerts`), the time-ordered `alerts_by_detected_v2` (006, 015), and
// the in-memory read model (loaded from ClickHouse, then following it by polls).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { formatMoney, incidentMembershipId, type Alert } from '@tillwatch/schemas';
import { toIncidentMemberRow } from '@tillwatch/clickhouse';
import { auth, buildApp, byListOrder, insertAlerts, insertTransactions, makeAlerts, BASE } from './fixtures.js';
import type { ApiApp } from '../src/app.js';
import { createAlertStore, INCIDENT_MEMBERS_SHOWN, type AlertView } from '../src/store.js';
import { createApiMetrics } from '../src/metrics.js';
import { createAlertReadModel, type AlertReadModel } from '../src/read-model/read-model.js';
import { createRegistry } from '@tillwatch/telemetry';
import { heartbeatEventId } from '@tillwatch/rules';

type Page = { items: AlertView[]; next_cursor: string | null };
const HB_EVIDENCE = heartbeatEventId({ merchant_id: 'M-1', terminal_id: 'T-1', event_time: BASE, last_seq: 7, queue_depth: 3 });

for (const variant of ['base alerts table', 'with 006 read paths', 'in-memory read model'] as const) {
  describe(`alerts API (${variant})`, () => {
    let t: TestClickHouse;
    let app: ApiApp;
    let alerts: Alert[];
    let readModel: AlertReadModel | undefined;
    const registry = createRegistry({ service: 'api-test', defaultMetrics: false });
    /** Let the read model see what another writer stored (a no-op for the ClickHouse paths). */
    const sync = async () => readModel?.refresh();

    beforeAll(async () => {
      t = await createTestClickHouse({ migrate: true });
      const readPath = variant === 'base alerts table' ? ('alerts' as const) : ('auto' as const);
      const data = makeAlerts(90);
      alerts = data.alerts;
      // One alert with a heartbeat among its evidence (as terminal_offline and upload_backlog have).
      alerts[1] = { ...alerts[1]!, event_ids: [...alerts[1]!.event_ids, HB_EVIDENCE] };
      // Two inserts (two parts), and replayed copies of 10 alerts in a third: reads must dedupe.
      await insertAlerts(t.ch, alerts.slice(0, 50));
      await insertAlerts(t.ch, alerts.slice(50));
      await insertAlerts(t.ch, alerts.slice(20, 30));
      await insertTransactions(t.ch, data.transactions.filter((tx) => tx.event_id !== alerts[0]!.event_ids[1]));
      if (variant === 'in-memory read model') {
        readModel = createAlertReadModel({ ch: t.ch, metrics: createApiMetrics(registry), maxAlerts: 1000, rowBytes: 1 << 20, pollMs: 60_000 });
        await readModel.start();
        expect(readModel.stats()).toMatchObject({ state: 'ready', alerts: 90, horizon: null });
      }
      app = buildApp(t.ch, { alertReadPath: readPath, metricsRegistry: registry, ...(readModel ? { readModel } : {}) }).app;
      await app.ready();
      // The variant really exercises the read path it names.
      const store = createAlertStore({ ch: t.ch, readPath, metrics: createApiMetrics(createRegistry({ service: 'x', defaultMetrics: false })) });
      expect((await store.readPaths()).timeTable).toBe(variant !== 'base alerts table');
    });

    afterAll(async () => {
      await app?.close();
      if (readModel) {
        // The variant really answered from memory.
        const reads = (await registry.getSingleMetric('tillwatch_api_alert_reads_total')!.get()).values;
        expect(reads.find((v) => v.labels['source'] === 'memory' && v.labels['reason'] === 'list')?.value ?? 0).toBeGreaterThan(20);
        expect(reads.find((v) => v.labels['source'] === 'clickhouse')).toBeUndefined();
        await readModel.close();
      }
      await t?.dispose();
    });

    const get = async (url: string, role: 'viewer' | 'analyst' | 'admin' = 'viewer') => app.inject({ method: 'GET', url, headers: auth(role) });

    async function pageThrough(query: string, limit: number): Promise<{ ids: string[]; pages: number }> {
      const ids: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const sep = query ? '&' : '';
        const res = await get(`/alerts?${query}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json<Page>();
        expect(body.items.length).toBeLessThanOrEqual(limit);
        ids.push(...body.items.map((a) => a.alert_id));
        cursor = body.next_cursor;
        pages += 1;
        expect(pages).toBeLessThan(200);
      } while (cursor);
      return { ids, pages };
    }

    it('lists newest first, deduplicated, with the contract fields and status open', async () => {
      const res = await get('/alerts?limit=5');
      expect(res.statusCode).toBe(200);
      const body = res.json<Page>();
      const expected = [...alerts].sort(byListOrder).slice(0, 5);
      expect(body.items.map((a) => a.alert_id)).toEqual(expected.map((a) => a.alert_id));
      // Every field of the contract, rules_version and the money included (the fixtures vary both).
      const money = (a: Alert) => (a.currency != null ? { currency: a.currency, amount_minor: a.amount_minor ?? null, amount: formatMoney(a.amount_minor!, a.currency) } : { currency: null, amount_minor: null, amount: null });
      expect(new Set(expected.map((a) => a.rules_version)).size).toBeGreaterThan(1);
      expect(expected.some((a) => a.currency == null) && expected.some((a) => a.currency != null)).toBe(true);
      expect(body.items).toEqual(expected.map((a) => ({ ...a, ...money(a), status: 'open', status_by: null, status_at: null })));
      expect(body.next_cursor).toEqual(expect.any(String));
    });

    it('pages through everything without duplicates or gaps (ties on detected_at included)', async () => {
      for (const limit of [1, 7, 50, 500]) {
        const { ids, pages } = await pageThrough('', limit);
        expect(ids).toEqual([...alerts].sort(byListOrder).map((a) => a.alert_id));
        expect(new Set(ids).size).toBe(alerts.length);
        // At most one trailing empty page (when duplicates filled the over-fetch).
        expect(pages).toBeGreaterThanOrEqual(Math.ceil(alerts.length / limit));
        expect(pages).toBeLessThanOrEqual(Math.ceil(alerts.length / limit) + 1);
      }
    });

    const filters: [string, (a: Alert) => boolean][] = [
      ['rule=sync_lag', (a) => a.rule === 'sync_lag'],
      ['rule=sync_lag&rule=duplicate_charge', (a) => a.rule === 'sync_lag' || a.rule === 'duplicate_charge'],
      ['severity=critical', (a) => a.severity === 'critical'],
      ['severity=critical&rule=sequence_gap', (a) => a.severity === 'critical' && a.rule === 'sequence_gap'],
      ['terminal=T4', (a) => a.terminal_id === 'T4'],
      ['merchant=M1', (a) => a.merchant_id === 'M1'],
      ['merchant=M1&terminal=T4', (a) => a.merchant_id === 'M1' && a.terminal_id === 'T4'],
      [`from=${new Date(BASE + 20 * 30_000).toISOString()}&to=${new Date(BASE + 60 * 30_000).toISOString()}`, (a) => a.detected_at >= BASE + 20 * 30_000 && a.detected_at < BASE + 60 * 30_000],
      ['terminal=T2&severity=low&severity=medium', (a) => a.terminal_id === 'T2' && (a.severity === 'low' || a.severity === 'medium')],
    ];
    for (const [query, pred] of filters) {
      it(`filters ${query} and pages through all matches`, async () => {
        const { ids } = await pageThrough(query, 4);
        const expected = alerts.filter(pred).sort(byListOrder).map((a) => a.alert_id);
        expect(expected.length).toBeGreaterThan(0);
        expect(ids).toEqual(expected);
      });
    }

    it('is stable under inserts while paging: newer alerts do not shift pages, late old ones land in place', async () => {
      const first = (await get('/alerts?rule=refund_exceeds_sale&limit=3')).json<Page>();
      const seen = first.items.map((a) => a.alert_id);
      const cursorAlert = first.items[2]!;
      // One alert newer than everything, one older than the cursor (late data), same rule.
      const extra = makeAlerts(2, 1000).alerts.map((a, i) => ({ ...a, rule: 'refund_exceeds_sale', detected_at: i === 0 ? BASE + 10_000_000 : cursorAlert.detected_at - 1 }));
      await insertAlerts(t.ch, extra);
      await sync();
      let cursor = first.next_cursor;
      while (cursor) {
        const page = (await get(`/alerts?rule=refund_exceeds_sale&limit=3&cursor=${cursor}`)).json<Page>();
        seen.push(...page.items.map((a) => a.alert_id));
        cursor = page.next_cursor;
      }
      const expected = [...alerts.filter((a) => a.rule === 'refund_exceeds_sale'), extra[1]!].sort(byListOrder).map((a) => a.alert_id);
      expect(seen).toEqual(expected);
      expect(seen).not.toContain(extra[0]!.alert_id);
      // A fresh listing shows the new one first.
      expect((await get('/alerts?rule=refund_exceeds_sale&limit=1')).json<Page>().items[0]!.alert_id).toBe(extra[0]!.alert_id);
    });

    it('GET /alerts/:id returns the alert with its evidence, and names evidence not stored', async () => {
      const a = alerts[0]!;
      const res = await get(`/alerts/${a.alert_id}`);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json<{ alert: AlertView; evidence: { event_id: string; card_token: string; merchant_id: string }[]; missing_evidence: string[]; heartbeat_evidence: string[]; actions: unknown[] }>();
      expect(body.alert.alert_id).toBe(a.alert_id);
      expect(body.evidence.map((e) => e.event_id)).toEqual([a.event_ids[0]]);
      expect(body.evidence[0]!.merchant_id).toBe(a.merchant_id);
      expect(body.missing_evidence).toEqual([a.event_ids[1]]);
      expect(body.heartbeat_evidence).toEqual([]);
      // Heartbeat evidence is named apart: heartbeats are not stored transactions, not "missing".
      const hb = (await get(`/alerts/${alerts[1]!.alert_id}`)).json<{ evidence: { event_id: string }[]; missing_evidence: string[]; heartbeat_evidence: string[] }>();
      expect(hb.evidence.map((e) => e.event_id).sort()).toEqual(alerts[1]!.event_ids.filter((e) => e !== HB_EVIDENCE).sort());
      expect(hb.missing_evidence).toEqual([]);
      expect(hb.heartbeat_evidence).toEqual([HB_EVIDENCE]);
      expect(body.actions).toEqual([]);
      const other = alerts[5]!;
      const full = (await get(`/alerts/${other.alert_id}`)).json<{ evidence: { event_id: string }[]; missing_evidence: string[] }>();
      expect(full.evidence.map((e) => e.event_id).sort()).toEqual([...other.event_ids].sort());
      expect(full.missing_evidence).toEqual([]);
    });

    it("GET /alerts/:id shows its actions and their fate (the governor's decisions, action_decisions)", async () => {
      const a = alerts[1]!;
      const at = a.detected_at;
      const row = (action_id: string, kind: string, decision: string, reason: string, final: string | null, incident: string | null) => ({
        decision_id: action_id, action_id, kind, final_action_id: final, final_kind: final === null ? null : decision === 'downgraded' ? 'REVIEW_REFUND' : kind, alert_id: a.alert_id, rule: a.rule,
        terminal_id: a.terminal_id, merchant_id: a.merchant_id, target_type: 'TERMINAL', target_id: a.terminal_id, decision, reason, incident_id: incident, decided_at: new Date(at).toISOString().replace('T', ' ').replace('Z', ''),
      });
      const rows = [row('act-1', 'FREEZE_TERMINAL', 'downgraded', 'freeze_cap_fleet', 'act-1r', null), row('act-2', 'NOTIFY_MERCHANT', 'suppressed', 'fleet_incident', null, 'inc-1')];
      // Twice (a redelivery): FINAL shows each decision once.
      for (let i = 0; i < 2; i++) await t.ch.client.insert({ table: t.ch.table('action_decisions'), values: rows, format: 'JSONEachRow' });
      const body = (await get(`/alerts/${a.alert_id}`)).json<{ action_decisions: unknown[] }>();
      expect(body.action_decisions).toEqual([
        { action_id: 'act-1', kind: 'FREEZE_TERMINAL', decision: 'downgraded', reason: 'freeze_cap_fleet', final_action_id: 'act-1r', final_kind: 'REVIEW_REFUND', incident_id: null, decided_at: at },
        { action_id: 'act-2', kind: 'NOTIFY_MERCHANT', decision: 'suppressed', reason: 'fleet_incident', final_action_id: null, final_kind: null, incident_id: 'inc-1', decided_at: at },
      ]);
      expect((await get(`/alerts/${alerts[0]!.alert_id}`)).json<{ action_decisions: unknown[] }>().action_decisions).toEqual([]);
    });

    it('GET /alerts/:id links a per-terminal alert to its fleet incident and lists an incident\'s member alerts (incident_members)', async () => {
      const incident = alerts[2]!;
      const members = [alerts[3]!, alerts[4]!];
      const rows = members.map((m, i) =>
        toIncidentMemberRow({
          membership_id: incidentMembershipId(incident.alert_id, m.alert_id),
          incident_id: incident.alert_id,
          alert_id: m.alert_id,
          rule: m.rule,
          terminal_id: m.terminal_id,
          merchant_id: m.merchant_id,
          role: i === 0 ? 'opening' : 'joined',
          alert_detected_at: m.detected_at,
          joined_at: incident.detected_at + i,
        }),
      );
      // Twice (a redelivery or a replayed stage): FINAL shows each link once.
      for (let i = 0; i < 2; i++) await t.ch.client.insert({ table: t.ch.table('incident_members'), values: rows, format: 'JSONEachRow' });
      type Body = { incident_id: string | null; incident_members: { alert_id: string; role: string; alert_detected_at: number; joined_at: number }[]; incident_members_total: number };
      const inc = (await get(`/alerts/${incident.alert_id}`)).json<Body>();
      expect(inc.incident_id).toBeNull();
      expect(inc.incident_members_total).toBe(2);
      expect(inc.incident_members.map((m) => [m.alert_id, m.role, m.alert_detected_at, m.joined_at])).toEqual([
        [members[0]!.alert_id, 'opening', members[0]!.detected_at, incident.detected_at],
        [members[1]!.alert_id, 'joined', members[1]!.detected_at, incident.detected_at + 1],
      ]);
      for (const m of members) {
        const body = (await get(`/alerts/${m.alert_id}`)).json<Body>();
        expect(body.incident_id).toBe(incident.alert_id);
        expect(body.incident_members).toEqual([]);
      }
      expect((await get(`/alerts/${alerts[0]!.alert_id}`)).json<Body>()).toMatchObject({ incident_id: null, incident_members: [], incident_members_total: 0 });

      // A large outage: the first INCIDENT_MEMBERS_SHOWN members are listed, and how many there are in all.
      const big = alerts[6]!;
      const many = Array.from({ length: INCIDENT_MEMBERS_SHOWN + 5 }, (_, i) =>
        toIncidentMemberRow({
          membership_id: incidentMembershipId(big.alert_id, `al-m-${i}`),
          incident_id: big.alert_id,
          alert_id: `al-m-${String(i).padStart(4, '0')}`,
          rule: 'terminal_offline',
          terminal_id: `T-m-${i}`,
          merchant_id: `M-m-${i}`,
          role: 'joined',
          alert_detected_at: big.detected_at + i,
          joined_at: big.detected_at + i,
        }),
      );
      await t.ch.client.insert({ table: t.ch.table('incident_members'), values: many, format: 'JSONEachRow' });
      const bigBody = (await get(`/alerts/${big.alert_id}`)).json<Body>();
      expect(bigBody.incident_members_total).toBe(INCIDENT_MEMBERS_SHOWN + 5);
      expect(bigBody.incident_members.map((m) => m.alert_id)).toEqual(many.slice(0, INCIDENT_MEMBERS_SHOWN).map((m) => m.alert_id));
    });

    it('GET /alerts/:id answers 404 for an unknown alert', async () => {
      const res = await get('/alerts/al-does-not-exist');
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ statusCode: 404, code: 'NOT_FOUND', message: 'alert al-does-not-exist not found' });
    });

    it('triage: ack, resolve, false-positive with notes; the trail keeps who, when, what; current = latest', async () => {
      let clock = BASE + 50_000_000;
      const { app: triageApp } = buildApp(t.ch, { now: () => clock });
      try {
        const a = alerts[10]!;
        const post = (action: string, note: string, role: 'analyst' | 'admin' = 'analyst') =>
          triageApp.inject({ method: 'POST', url: `/alerts/${a.alert_id}/${action}`, headers: auth(role), payload: { note } });
        const ack = await post('ack', 'looking into it');
        expect(ack.statusCode, ack.body).toBe(200);
        expect(ack.json()).toEqual({ alert_id: a.alert_id, previous_status: 'open', entry: { status: 'acknowledged', actor: 'ana', note: 'looking into it', at: clock } });
        clock += 60_000;
        expect((await post('false-positive', 'test card of the merchant', 'admin')).json()).toMatchObject({ previous_status: 'acknowledged', entry: { status: 'false_positive', actor: 'root' } });
        clock += 60_000;
        expect((await post('resolve', 'refund issued')).json()).toMatchObject({ previous_status: 'false_positive', entry: { status: 'resolved', actor: 'ana', at: clock } });

        // Triaged through another API instance: this one's read model learns it from ClickHouse.
        await sync();
        const hist = await triageApp.inject({ method: 'GET', url: `/alerts/${a.alert_id}/history`, headers: auth('viewer') });
        expect(hist.statusCode).toBe(200);
        expect(hist.json()).toEqual({
          alert_id: a.alert_id,
          status: 'resolved',
          entries: [
            { status: 'acknowledged', actor: 'ana', note: 'looking into it', at: clock - 120_000 },
            { status: 'false_positive', actor: 'root', note: 'test card of the merchant', at: clock - 60_000 },
            { status: 'resolved', actor: 'ana', note: 'refund issued', at: clock },
          ],
        });
        const one = (await get(`/alerts/${a.alert_id}`)).json<{ alert: AlertView }>();
        expect(one.alert).toMatchObject({ status: 'resolved', status_by: 'ana', status_at: clock });

        // Status filters see it: resolved lists it, open does not.
        const resolved = await pageThrough('status=resolved', 10);
        expect(resolved.ids).toEqual([a.alert_id]);
        const open = await pageThrough('status=open', 25);
        expect(open.ids).not.toContain(a.alert_id);
        expect(new Set(open.ids).size).toBe(open.ids.length);
        for (const x of alerts) if (x.alert_id !== a.alert_id) expect(open.ids).toContain(x.alert_id);
        const openOrResolved = await pageThrough('status=open&status=resolved&rule=' + a.rule, 3);
        expect(openOrResolved.ids).toContain(a.alert_id);
        const history404 = await triageApp.inject({ method: 'GET', url: '/alerts/al-nope/history', headers: auth('viewer') });
        expect(history404.statusCode).toBe(404);
        const triage404 = await triageApp.inject({ method: 'POST', url: '/alerts/al-nope/ack', headers: auth('analyst'), payload: { note: 'x' } });
        expect(triage404.statusCode).toBe(404);
      } finally {
        await triageApp.close();
      }
    });

    it('an alert never triaged has an empty trail and status open', async () => {
      const a = alerts[11]!;
      const res = await get(`/alerts/${a.alert_id}/history`);
      expect(res.json()).toEqual({ alert_id: a.alert_id, status: 'open', entries: [] });
    });

    it('GET /alerts/:id of a fleet alert (sync_incident, merchant_id = terminal_id = *) finds its evidence at every merchant', async () => {
      // As the stage raises it: the first event of each of its first terminals, here at three
      // merchants, plus a heartbeat id and one transaction that is not stored.
      const stored = [alerts[3]!, alerts[4]!, alerts[5]!].map((x) => x.event_ids[0]!);
      const notStored = alerts[0]!.event_ids[1]!;
      const incident: Alert = {
        ...alerts[0]!,
        alert_id: 'al-sync-incident-fleet-0001',
        rule: 'sync_incident',
        severity: 'critical',
        terminal_id: '*',
        merchant_id: '*',
        card_token: null,
        event_ids: [stored[2]!, HB_EVIDENCE, stored[0]!, notStored, stored[1]!],
        detected_at: BASE + 200 * 30_000,
        summary: 'Fleet sync incident',
        details: {},
      };
      await insertAlerts(t.ch, [incident, incident]); // and a replayed copy
      await sync();
      const res = await get(`/alerts/${incident.alert_id}`);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json<{ alert: AlertView; evidence: { event_id: string; merchant_id: string }[]; missing_evidence: string[]; heartbeat_evidence: string[] }>();
      expect(body.alert.merchant_id).toBe('*');
      expect(body.evidence.map((e) => e.event_id)).toEqual(stored); // once each, by event_time
      expect(new Set(body.evidence.map((e) => e.merchant_id)).size).toBe(3);
      expect(body.missing_evidence).toEqual([notStored]);
      expect(body.heartbeat_evidence).toEqual([HB_EVIDENCE]);
    });
  });
}
