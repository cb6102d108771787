// The whole pipeline as `npm start` wires it (lib/pipeline.ts), on the real local Kafka and
// registry and embedded ClickHouse, seen through the alert API over real HTTP: simulator events →
// detector → alert topic → sink → ClickHouse → read model → GET /alerts; the detector's alerts →
// /stream/alerts; triage through the API. A fleet outage through the same pipeline: the API shows the
// backtest's incident, its member alerts and each member's incident_id (live incidents equal backtest
// incidents). Own topic prefix, consumer groups and database per test.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { formatMoney, type Alert, type Transaction } from '@tillwatch/schemas';
import { closeStreamTime } from '@tillwatch/detector';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { createRuleEngine, defaultRulesConfig, loadRulesConfig } from '@tillwatch/rules';
import { pushRulesDocument } from '@tillwatch/rules-live';
import { createFleet } from '@tillwatch/simulator';
import { deleteScopedTopics, randomId, waitGroupCaughtUp } from '@tillwatch/stream';
import { createContext, type Context } from '../src/lib/context.js';
import { provisionAll } from '../src/lib/provision.js';
import { startPipeline, type RunningPipeline } from '../src/lib/pipeline.js';
import { startSimulator } from '../src/lib/simulator.js';
import { backtestFile } from '../src/lib/replay.js';
import { publishFile } from '../src/commands/produce.js';

const VIEWER = 'e2e-viewer-key-0123456789';
const ANALYST = 'e2e-analyst-key-0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let ctx: Context | undefined;
let db: TestClickHouse | undefined;
let pipeline: RunningPipeline | undefined;

afterAll(async () => {
  await pipeline?.stop();
  if (ctx) await deleteScopedTopics(ctx.kafka, ctx.topics);
  await db?.dispose();
});

/** A test's own topic prefix, consumer groups and API keys (`name-<random id>`), the API's read model polled fast. */
function e2eEnv(name: string, partitions: number, apiKeys: string) {
  const id = randomId();
  return {
    ...process.env,
    TOPIC_PREFIX: `${name}-${id}.`,
    TOPIC_PARTITIONS: String(partitions),
    DETECTOR_GROUP_ID: `${name}-detector-${id}`,
    SINK_GROUP_ID: `${name}-sink-${id}`,
    STAGE_GROUP_ID: `${name}-stage-${id}`,
    API_KEYS: apiKeys,
    API_FEED_POLL_MS: '200',
    API_ALERTS_CACHE_MS: '0',
    LOG_LEVEL: 'warn',
  };
}

type Page = { items: (Alert & { status: string; status_by: string | null; status_at: number | null })[]; next_cursor: string | null };

async function http(url: string, init: { method?: string; key?: string; body?: unknown } = {}): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { ...(init.key ? { 'x-api-key': init.key } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}) },
    ...(init.body ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
}

/** Every alert the API lists, following next_cursor. */
async function listAll(base: string, query = ''): Promise<Page['items']> {
  const out: Page['items'] = [];
  let cursor: string | null = null;
  do {
    const res = await http(`${base}/alerts?limit=200${query}${cursor ? `&cursor=${cursor}` : ''}`, { key: VIEWER });
    expect(res.status).toBe(200);
    const page = res.json as Page;
    out.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

/** SSE alert events on a real HTTP connection, collected until close(). */
function subscribe(url: string) {
  const ids: string[] = [];
  let buffer = '';
  const req = request(url, { headers: { 'x-api-key': VIEWER } }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const id = /^id: (.+)$/m.exec(frame)?.[1];
        if (id && /^event: alert$/m.test(frame)) ids.push(id);
      }
    });
  });
  req.on('error', () => undefined);
  req.end();
  return { ids, close: () => req.destroy() };
}

describe('npm start pipeline through the alert API', () => {
  it('alerts reach GET /alerts exactly once with evidence, stream live over SSE, and triage shows at once', async () => {
    const env = e2eEnv('e2e', 3, `${VIEWER}:viewer:vera,${ANALYST}:analyst:ana`);
    ctx = createContext(env, 'e2e');
    db = await createTestClickHouse();
    await provisionAll(ctx, db.ch);
    const detected: Alert[] = [];
    const fatal: Error[] = [];
    pipeline = await startPipeline({
      ctx,
      ch: db.ch,
      rules: defaultRulesConfig(),
      api: { host: '127.0.0.1', port: 0 },
      opsPorts: { detector: 0, sink: 0, api: 0 },
      onAlerts: (alerts) => detected.push(...alerts),
      onFatal: (_service, e) => fatal.push(e),
    });
    const base = pipeline.api.url;
    expect((await http(`${base}/readyz`)).status).toBe(200);
    const sse = subscribe(`${base}/stream/alerts`);
    await sleep(300);

    // A burst of fleet traffic with injected anomalies (duplicate charges, refunds, lag, ...).
    const sim = await startSimulator(ctx, { terminals: 40, cards: 300, seed: 11, anomalyRate: 0.06, rate: 3000, maxEvents: 4000 });
    await sim.sim.done();
    await sim.stop();
    const admin = ctx.kafka.admin();
    await admin.connect();
    try {
      await waitGroupCaughtUp(admin, env.DETECTOR_GROUP_ID, ctx.topics.transactions, 90_000);
      // The alert topic is written in transactions: its end offset counts commit markers a kafkajs
      // consumer never commits past, so the sink's progress there shows in the API below instead.
      await waitGroupCaughtUp(admin, env.SINK_GROUP_ID, ctx.topics.transactions, 90_000);
    } finally {
      await admin.disconnect();
    }
    expect(fatal).toEqual([]);
    expect(detected.length).toBeGreaterThan(10);

    // The API lists every committed alert once, field for field (after the read model's next poll).
    const want = new Map(detected.map((a) => [a.alert_id, a]));
    let listed: Page['items'] = [];
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(250)) {
      listed = await listAll(base);
      if (listed.length >= want.size) break;
    }
    expect(listed.map((a) => a.alert_id).sort()).toEqual([...want.keys()].sort());
    for (const a of listed) {
      const { status, status_by: _by, status_at: _at, ...alert } = a;
      expect(status).toBe('open');
      // Every field of the contract, rules_version and the alert's money included, plus `amount` (the money formatted).
      const expected = want.get(a.alert_id)!;
      const money = expected.currency != null ? { currency: expected.currency, amount_minor: expected.amount_minor ?? null, amount: formatMoney(expected.amount_minor!, expected.currency) } : { currency: null, amount_minor: null, amount: null };
      expect(alert).toEqual({ ...expected, ...money, details: Object.fromEntries(Object.entries(expected.details).map(([k, v]) => [k, Number.isFinite(v) ? v : null])) });
    }
    // /metrics is on the API's ops port, not on the public API port.
    expect((await fetch(`${base}/metrics`, { headers: { 'x-api-key': 'none' } })).status).not.toBe(200);
    const metrics = await (await fetch(`${pipeline.opsUrls.api}/metrics`)).text();
    expect(metrics).toMatch(/tillwatch_api_read_model_ready\{[^}]*\} 1/);
    expect(metrics).toMatch(/tillwatch_api_alert_reads_total\{source="memory",reason="list"/);

    // Live: every alert the detector committed reached the SSE client.
    for (const deadline = Date.now() + 10_000; sse.ids.length < detected.length && Date.now() < deadline; ) await sleep(100);
    sse.close();
    expect([...sse.ids].sort()).toEqual(detected.map((a) => a.alert_id).sort());

    // Evidence: a duplicate charge's two legs are stored transactions.
    const dup = detected.find((a) => a.rule === 'duplicate_charge') ?? detected[0]!;
    const one = await http(`${base}/alerts/${dup.alert_id}`, { key: VIEWER });
    expect(one.status).toBe(200);
    const body = one.json as { evidence: { event_id: string }[]; missing_evidence: string[] };
    expect(body.missing_evidence).toEqual([]);
    expect(body.evidence.map((e) => e.event_id).sort()).toEqual([...dup.event_ids].sort());

    // Triage by an analyst (a viewer may not), visible in the filtered list at once.
    expect((await http(`${base}/alerts/${dup.alert_id}/ack`, { method: 'POST', key: VIEWER, body: { note: 'x' } })).status).toBe(403);
    const ack = await http(`${base}/alerts/${dup.alert_id}/ack`, { method: 'POST', key: ANALYST, body: { note: 'calling the merchant' } });
    expect(ack.status).toBe(200);
    const acknowledged = await listAll(base, '&status=acknowledged');
    expect(acknowledged.map((a) => [a.alert_id, a.status_by])).toEqual([[dup.alert_id, 'ana']]);
    expect((await listAll(base, '&status=open')).length).toBe(want.size - 1);
  });
  it('a fleet outage: the API shows the backtest\'s incident, its member alerts, and the incident id of each member', async () => {
    const env = e2eEnv('e2e-inc', 3, `${VIEWER}:viewer:vera`);
    const c = createContext(env, 'e2e-inc');
    const chdb = await createTestClickHouse();
    const dir = await mkdtemp(join(tmpdir(), 'tw-e2e-inc-'));
    let p: RunningPipeline | undefined;
    try {
      // The stage's fleet-outage golden (12 of 40 terminals offline), moved by whole hours to end about
      // an hour ago: recent enough for the tables' TTLs, the same alert ids (hour-aligned windows).
      const golden = fileURLToPath(new URL('../../../packages/stage/test/scenarios/fleet_outage/events.jsonl', import.meta.url));
      const events = (await readFile(golden, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Transaction);
      const HOUR = 3_600_000;
      const shift = Math.floor((Date.now() - 5 * HOUR - events[0]!.received_time) / HOUR) * HOUR;
      const file = join(dir, 'fleet-outage.jsonl');
      await writeFile(file, events.map((e) => JSON.stringify({ ...e, event_time: e.event_time + shift, received_time: e.received_time + shift })).join('\n') + '\n');
      const expected = await backtestFile(file, defaultRulesConfig());
      const incident = expected.alerts.filter((a) => a.rule === 'sync_incident');
      expect(incident).toHaveLength(1);
      const incidentId = incident[0]!.alert_id;
      expect(expected.memberships).toHaveLength(13); // 12 sync_lag starts, T02's sequence_gap (role before)

      await provisionAll(c, chdb.ch);
      const fatal: Error[] = [];
      p = await startPipeline({ ctx: c, ch: chdb.ch, rules: defaultRulesConfig(), api: { host: '127.0.0.1', port: 0 }, opsPorts: { detector: 0, sink: 0, api: 0 }, onFatal: (_s, e) => fatal.push(e) });
      const base = p.api.url;
      await publishFile(c, file, c.topics.transactions, c.topics.heartbeats);
      // Every partition's clock to the file's end, as the backtest's (the live clock then moves on with wall time).
      const admin = c.kafka.admin();
      await admin.connect();
      try {
        await waitGroupCaughtUp(admin, env.DETECTOR_GROUP_ID, c.topics.transactions, 90_000);
        await closeStreamTime(c.kafka, c.registry, c.topics.heartbeats, events.at(-1)!.received_time + shift);
      } finally {
        await admin.disconnect();
      }

      // Every alert of both stages listed, and the incident's member alerts linked (through the sink's incident_members).
      type One = { incident_id: string | null; incident_members: { alert_id: string; role: string }[]; action_decisions: { decision: string; incident_id: string | null }[] };
      let listed: Page['items'] = [];
      let inc: One | undefined;
      for (const deadline = Date.now() + 90_000; Date.now() < deadline; await sleep(500)) {
        listed = await listAll(base);
        const res = await http(`${base}/alerts/${incidentId}`, { key: VIEWER });
        inc = res.status === 200 ? (res.json as One) : undefined;
        if (listed.length >= expected.alerts.length && (inc?.incident_members.length ?? 0) >= expected.memberships.length) break;
      }
      expect(fatal).toEqual([]);
      expect(listed.map((a) => a.alert_id).sort()).toEqual(expected.alerts.map((a) => a.alert_id).sort());
      // The incident alert itself, as the backtest raised it.
      const live = listed.find((a) => a.alert_id === incidentId)!;
      expect([live.detected_at, live.event_ids, live.details, live.summary]).toEqual([incident[0]!.detected_at, incident[0]!.event_ids, incident[0]!.details, incident[0]!.summary]);
      const byAlert = (xs: { alert_id: string; role: string }[]) => xs.map((m) => `${m.alert_id}:${m.role}`).sort();
      expect(byAlert(inc!.incident_members)).toEqual(byAlert(expected.memberships));
      expect(inc!.incident_id).toBeNull();
      // Each member alert names the incident; the suppressed notification of a member says why.
      for (const m of expected.memberships) {
        const one = (await http(`${base}/alerts/${m.alert_id}`, { key: VIEWER })).json as One;
        expect(one.incident_id).toBe(incidentId);
      }
      const suppressed = expected.decisions.filter((d) => d.decision === 'suppressed');
      expect(suppressed.length).toBeGreaterThan(0);
      const one = (await http(`${base}/alerts/${suppressed[0]!.alert_id}`, { key: VIEWER })).json as One;
      expect(one.action_decisions.filter((d) => d.decision === 'suppressed').map((d) => d.incident_id)).toEqual([incidentId]);
      // Alerts of no incident say so.
      const other = expected.alerts.find((a) => a.incident_id === null && a.rule === 'refund_without_sale')!;
      expect(((await http(`${base}/alerts/${other.alert_id}`, { key: VIEWER })).json as One).incident_id).toBeNull();
    } finally {
      await p?.stop();
      await deleteScopedTopics(c.kafka, c.topics);
      await chdb.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a pushed rules version end to end: a shadow rule\'s alerts reach alerts_shadow (none in alerts, no action), and its engine.max_clock_skew holds in the detector and the sink', async () => {
    const env = e2eEnv('e2e-shadow', 2, `${VIEWER}:viewer:vera`);
    const c = createContext(env, 'e2e-shadow');
    const chdb = await createTestClickHouse();
    const dir = await mkdtemp(join(tmpdir(), 'tw-e2e-shadow-'));
    let p: RunningPipeline | undefined;
    try {
      // Fleet traffic of the last hour (inside the tables' TTLs), with duplicate charges among its anomalies.
      const fleet = createFleet({ terminals: 30, seed: 17, anomalyRate: 0.06, cards: 200 });
      const events: Transaction[] = [];
      for (let now = Date.now() - 3_600_000; events.length < 3000; now += 500) events.push(...fleet.next(now));
      // One sale ten minutes in the future of its arrival: inside the default bound (1 h), outside the pushed 5 min.
      const sale = events.find((e) => e.kind === 'SALE')!;
      const skewed: Transaction = { ...sale, event_id: randomUUID(), txn_id: `${sale.txn_id}-skewed`, card_token: 'tok_skewed', event_time: events.at(-1)!.received_time + 600_000, received_time: events.at(-1)!.received_time };
      const file = join(dir, 'events.jsonl');
      await writeFile(file, [...events, skewed].map((e) => JSON.stringify(e)).join('\n') + '\n');
      const text = 'version: 2\nengine:\n  max_clock_skew: 5m\nrules:\n  duplicate_charge:\n    mode: shadow\n';
      const cfg = loadRulesConfig(text, 'yaml');
      const engine = createRuleEngine(cfg);
      const shadowExpected: Alert[] = [];
      for (const e of events) shadowExpected.push(...engine.onTransaction(e).shadowAlerts);
      expect(shadowExpected.length).toBeGreaterThan(0);
      expect(new Set(shadowExpected.map((a) => a.rule))).toEqual(new Set(['duplicate_charge']));

      await provisionAll(c, chdb.ch);
      await pushRulesDocument({ kafka: c.kafka, registry: c.registry, topic: c.topics.rules, logger: c.logger }, { text, format: 'yaml', pushedBy: 'e2e', via: 'cli' });
      const fatal: Error[] = [];
      p = await startPipeline({ ctx: c, ch: chdb.ch, rules: defaultRulesConfig(), api: { host: '127.0.0.1', port: 0 }, opsPorts: { detector: 0, sink: 0, api: 0 }, onFatal: (_s, e) => fatal.push(e) });
      await publishFile(c, file, c.topics.transactions, c.topics.heartbeats);
      const admin = c.kafka.admin();
      await admin.connect();
      try {
        await waitGroupCaughtUp(admin, env.DETECTOR_GROUP_ID, c.topics.transactions, 90_000);
        await waitGroupCaughtUp(admin, env.SINK_GROUP_ID, c.topics.transactions, 90_000);
      } finally {
        await admin.disconnect();
      }
      const rows = async <T>(sql: string): Promise<T[]> => (await (await chdb.ch.client.query({ query: sql, format: 'JSONEachRow' })).json()) as T[];
      const shadowIds = () => rows<{ alert_id: string; rules_version: number }>(`SELECT alert_id, rules_version FROM ${chdb.ch.table('alerts_shadow')} FINAL ORDER BY alert_id`);
      const stored = async () => (await rows<{ n: string | number }>(`SELECT count() AS n FROM ${chdb.ch.table('transactions')} FINAL`)).map((r) => Number(r.n));
      const skewDead = () => rows<{ error_class: string; stage: string }>(`SELECT error_class, stage FROM ${chdb.ch.table('dead_letters')} WHERE source_topic = '${c.topics.transactions}'`);
      // The sink caught up has read everything; its rows are in ClickHouse after its next flush.
      for (const deadline = Date.now() + 60_000; Date.now() < deadline && ((await shadowIds()).length < shadowExpected.length || (await stored())[0]! < events.length || (await skewDead()).length < 1); ) await sleep(250);
      expect(fatal).toEqual([]);
      expect(await shadowIds()).toEqual(shadowExpected.map((a) => ({ alert_id: a.alert_id, rules_version: 2 })).sort((x, y) => (x.alert_id < y.alert_id ? -1 : 1)));
      // Nothing of the shadow rule on the main table, and no action for its alerts.
      expect(await rows(`SELECT alert_id FROM ${chdb.ch.table('alerts')} FINAL WHERE rule = 'duplicate_charge'`)).toEqual([]);
      const shadowList = shadowExpected.map((a) => `'${a.alert_id}'`).join(',');
      expect(await rows(`SELECT action_id FROM ${chdb.ch.table('actions')} FINAL WHERE alert_id IN (${shadowList})`)).toEqual([]);
      // The pushed 5 min bound: the detector dead-lettered the skewed sale (pos.dlq.v1, stored by the sink), and the sink did not store the sale itself.
      expect(await skewDead()).toEqual([{ error_class: 'ClockSkew', stage: 'detector.validate' }]);
      expect(await stored()).toEqual([events.length]);
      expect(await rows(`SELECT txn_id FROM ${chdb.ch.table('transactions')} FINAL WHERE txn_id = '${skewed.txn_id}'`)).toEqual([]);
    } finally {
      await p?.stop();
      await deleteScopedTopics(c.kafka, c.topics);
      await chdb.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
