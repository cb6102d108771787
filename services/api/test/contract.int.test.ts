// The API contract: the generated OpenAPI document passes `redocly lint` (operationId, 4xx answers,
// servers, licence, ...), carries the links Schemathesis's stateful phase follows, and the API keeps
// it where fuzzing found it did not (long ids, empty ranges, undeclared methods). /metrics is served
// on the ops port, not on the API port. Schemathesis itself runs in .ci/run (fuzz/run.sh).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { createLogger } from '@tillwatch/telemetry';
import type { ApiApp } from '../src/app.js';
import { createMemoryAlertFeed } from '../src/feed.js';
import { startApi } from '../src/main.js';
import { auth, buildApp, insertAlerts, KEY_ENTRIES, makeAlerts } from './fixtures.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const apiDir = path.resolve(here, '..');
const redocly = path.resolve(apiDir, '../../node_modules/.bin/redocly');

type Operation = { operationId?: string; responses: Record<string, { description?: string; links?: Record<string, { operationId: string; parameters: Record<string, string> }> }> };
type Doc = { info: { license?: { name: string } }; servers?: { url: string }[]; paths: Record<string, Record<string, Operation>> };

let t: TestClickHouse;
let app: ApiApp;
let doc: Doc;
let alertId: string;
let dir: string;

beforeAll(async () => {
  t = await createTestClickHouse({ migrate: true });
  const { alerts } = makeAlerts(6);
  await insertAlerts(t.ch, alerts);
  alertId = alerts[0]!.alert_id;
  app = buildApp(t.ch).app;
  await app.ready();
  doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<Doc>();
  dir = mkdtempSync(path.join(tmpdir(), 'tillwatch-openapi-'));
});

afterAll(async () => {
  await app?.close();
  await t?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `redocly lint` with the API's config; telemetry and update checks off (CI has no internet). */
function lint(spec: unknown): { status: number | null; totals: { errors: number; warnings: number }; problems: { ruleId: string; message: string }[] } {
  const file = path.join(dir, `spec-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(spec));
  const r = spawnSync(redocly, ['lint', '--config', path.join(apiDir, 'redocly.yaml'), '--format=json', file], {
    encoding: 'utf8',
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    timeout: 60_000,
  });
  const out = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; message: string }[] };
  return { status: r.status, ...out };
}

const operations = () => Object.entries(doc.paths).flatMap(([p, item]) => Object.entries(item).map(([m, op]) => ({ key: `${m.toUpperCase()} ${p}`, op })));

describe('the OpenAPI document', () => {
  it('passes `redocly lint` (recommended + the contract rules as errors) with no error and no warning', () => {
    const r = lint(doc);
    expect(r.problems.map((p) => `${p.ruleId}: ${p.message}`)).toEqual([]);
    expect(r.totals).toMatchObject({ errors: 0, warnings: 0 });
    expect(r.status).toBe(0);
  }, 60_000);

  it('the lint fails a document that breaks the contract (no operationId, no 4xx, no licence)', () => {
    const broken = structuredClone(doc);
    delete broken.info.license;
    const list = broken.paths['/alerts']!['get']!;
    delete list.operationId;
    for (const code of Object.keys(list.responses)) if (code.startsWith('4')) delete list.responses[code];
    const r = lint(broken);
    expect(r.status).not.toBe(0);
    expect(new Set(r.problems.map((p) => p.ruleId))).toEqual(new Set(['info-license', 'operation-operationId', 'operation-4xx-response']));
  }, 60_000);

  it('every operation has an operationId, a described 4xx answer; servers and a licence are set', () => {
    expect(doc.servers?.length).toBeGreaterThan(0);
    expect(doc.info.license?.name).toBeTruthy();
    const ops = operations();
    expect(ops.length).toBeGreaterThanOrEqual(12);
    for (const { key, op } of ops) {
      expect(op.operationId, key).toMatch(/^[a-z][A-Za-z]+$/);
      const fourxx = Object.keys(op.responses).filter((c) => c.startsWith('4'));
      expect(fourxx.length, key).toBeGreaterThan(0);
      for (const [code, r] of Object.entries(op.responses)) expect(r.description, `${key} ${code}`).not.toBe('Default Response');
    }
    expect(new Set(ops.map((o) => o.op.operationId)).size).toBe(ops.length);
    expect(doc.paths).not.toHaveProperty(['/metrics']);
  });

  it('links GET /alerts items to the alert, its history, the triage operations and the terminal; triage links on to history and resolve', () => {
    const links = doc.paths['/alerts']!['get']!.responses['200']!.links!;
    expect(Object.keys(links).sort()).toEqual(['acknowledgeAlert', 'getAlert', 'getAlertHistory', 'getTerminal', 'markAlertFalsePositive', 'resolveAlert']);
    expect(links['acknowledgeAlert']).toMatchObject({ operationId: 'acknowledgeAlert', parameters: { id: '$response.body#/items/0/alert_id' } });
    expect(links['getTerminal']).toMatchObject({ parameters: { id: '$response.body#/items/0/terminal_id' } });
    const ack = doc.paths['/alerts/{id}/ack']!['post']!.responses['200']!.links!;
    expect(ack['getAlertHistory']).toMatchObject({ operationId: 'getAlertHistory', parameters: { id: '$response.body#/alert_id' } });
    expect(ack['resolveAlert']).toMatchObject({ operationId: 'resolveAlert', parameters: { id: '$response.body#/alert_id' } });
    // Every link names an operation that exists.
    const ids = new Set(operations().map((o) => o.op.operationId));
    for (const { op } of operations()) for (const l of Object.values(op.responses['200']?.links ?? {})) expect(ids).toContain(l.operationId);
  });
});

describe('what fuzzing found, kept fixed', () => {
  it('a path id longer than its maxLength is a 400 from validation (not the router 414), on every id route', async () => {
    for (const len of [129, 300, 5000]) {
      const id = 'a'.repeat(len);
      for (const [method, url] of [['GET', `/alerts/${id}`], ['GET', `/alerts/${id}/history`], ['GET', `/terminals/${id}`], ['POST', `/alerts/${id}/ack`], ['POST', `/alerts/${id}/resolve`], ['POST', `/alerts/${id}/false-positive`]] as const) {
        const res = await app.inject({ method, url, headers: auth('admin'), ...(method === 'POST' ? { payload: { note: 'n' } } : {}) });
        expect(res.statusCode, `${method} ${len}`).toBe(400);
        expect(res.json().message).toBe('params.id must NOT have more than 128 characters');
      }
    }
  });

  it('from == to (and from > to) is an empty range: 200, no items', async () => {
    for (const q of ['from=2000-01-01T00:00:00Z&to=2000-01-01T00:00:00Z', 'from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z']) {
      const res = await app.inject({ method: 'GET', url: `/alerts?${q}`, headers: auth('viewer') });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ items: [], next_cursor: null });
    }
    // The range still holds alerts when it is not empty.
    const all = await app.inject({ method: 'GET', url: '/alerts?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z', headers: auth('viewer') });
    expect(all.json().items.length).toBe(6);
  });

  it('a leap second in from/to (23:59:60, which RFC 3339 and the schema allow) is the last millisecond of its minute, not a 500', async () => {
    // Three alerts around the end of a recent UTC day (recent: inside the alerts TTL), at their own merchant.
    const dayEnd = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 1; // 23:59:59.999 yesterday
    const day = new Date(dayEnd).toISOString().slice(0, 10);
    const around = makeAlerts(3, 500).alerts.map((a, i) => ({ ...a, merchant_id: 'M-leap', terminal_id: 'T-leap', detected_at: dayEnd - 1 + i }));
    await insertAlerts(t.ch, around);
    const ids = async (q: string) => {
      const res = await app.inject({ method: 'GET', url: `/alerts?merchant=M-leap&${q}`, headers: auth('viewer') });
      expect(res.statusCode, `${q}: ${res.body}`).toBe(200);
      return res.json<{ items: { detected_at: number }[] }>().items.map((a) => a.detected_at).sort((a, b) => a - b);
    };
    const [before, last, next] = around.map((a) => a.detected_at) as [number, number, number];
    expect(await ids(`from=${day}T23:59:60Z`)).toEqual([last, next]);
    expect(await ids(`to=${day}T23:59:60Z`)).toEqual([before]);
    expect(await ids(`from=${day}T23:59:60.5Z`)).toEqual([last, next]);
    // The same instant with an offset (ajv checks that it is 23:59 in UTC), and an offset without minutes.
    expect(await ids(`from=${encodeURIComponent(`${day}T22:59:60-01:00`)}`)).toEqual([last, next]);
    expect(await ids(`to=${encodeURIComponent(`${day}T23:59:59.999+00`)}`)).toEqual([before]);
    // A second 60 that is not 23:59 in UTC is still refused by the schema.
    const bad = await app.inject({ method: 'GET', url: `/alerts?from=${day}T12:00:60Z`, headers: auth('viewer') });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toBe('querystring.from must be a date-time (RFC 3339, e.g. 2024-05-01T12:00:00Z)');
  });

  it('an undeclared method on a known path is 405 with Allow (public paths without a key; others after authentication)', async () => {
    for (const [method, url] of [['TRACE', '/healthz'], ['TRACE', '/readyz'], ['QUERY', '/healthz'], ['DELETE', '/readyz'], ['OPTIONS', '/healthz']] as const) {
      const res = await app.inject({ method, url });
      expect(res.statusCode, `${method} ${url}`).toBe(405);
      expect(res.headers['allow']).toBe('GET, HEAD');
    }
    expect((await app.inject({ method: 'DELETE', url: `/alerts/${alertId}` })).statusCode).toBe(401);
    const del = await app.inject({ method: 'DELETE', url: `/alerts/${alertId}`, headers: auth('viewer') });
    expect(del.statusCode).toBe(405);
    expect(del.headers['allow']).toBe('GET, HEAD');
    const getAck = await app.inject({ method: 'GET', url: `/alerts/${alertId}/ack`, headers: auth('viewer') });
    expect(getAck.statusCode).toBe(405);
    expect(getAck.headers['allow']).toBe('POST');
    expect((await app.inject({ method: 'TRACE', url: '/nowhere', headers: auth('viewer') })).statusCode).toBe(404);
  });
});

describe('/metrics on the ops port', () => {
  it('startApi serves /metrics on API_OPS_PORT and not on the API port', async () => {
    const api = await startApi({
      env: { API_KEYS: KEY_ENTRIES.map((k) => `${k.key}:${k.role}:${k.name}`).join(','), API_READ_MODEL: 'off' },
      ch: t.ch,
      alertFeed: createMemoryAlertFeed(),
      logger: createLogger({ service: 'api-test', level: 'silent' }),
      host: '127.0.0.1',
      port: 0,
      opsPort: 0,
    });
    try {
      expect(api.opsUrl).not.toBe(api.url);
      const ops = await fetch(`${api.opsUrl}/metrics`);
      expect(ops.status).toBe(200);
      expect(await ops.text()).toContain('tillwatch_api_');
      expect((await fetch(`${api.url}/metrics`)).status).toBe(401);
      expect((await fetch(`${api.url}/metrics`, { headers: auth('admin') })).status).toBe(404);
      expect((await fetch(`${api.opsUrl}/readyz`)).status).toBe(200);
    } finally {
      await api.close();
    }
  });
});
