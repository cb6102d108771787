// Auth over the whole route table (401/403), validation (400 naming the field), rate limit (429),
// health/readiness, metrics, OpenAPI and docs - through app.inject() on embedded ClickHouse.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { createClickHouse } from '@tillwatch/clickhouse';
import { createRegistry } from '@tillwatch/telemetry';
import { auth, buildApp, insertAlerts, KEYS, makeAlerts } from './fixtures.js';
import type { ApiApp } from '../src/app.js';
import { roleAllows, type Role } from '../src/auth.js';

let t: TestClickHouse;
let app: ApiApp;
let alertId: string;
/** Not touched by the route-table probes (which triage alertId). */
let untouchedId: string;

beforeAll(async () => {
  t = await createTestClickHouse({ migrate: true });
  const { alerts } = makeAlerts(6);
  await insertAlerts(t.ch, alerts);
  alertId = alerts[0]!.alert_id;
  untouchedId = alerts[1]!.alert_id;
  app = buildApp(t.ch).app;
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await t?.dispose();
});

const sample = (url: string) => url.replace(':id', alertId).replace('*', 'index.html');

describe('authentication and roles over the route table', () => {
  it('has every expected route, each with an access level', () => {
    const table = app.routeTable.map((r) => `${r.method} ${r.url} ${r.access}`);
    for (const expected of [
      'GET /alerts viewer',
      'GET /alerts/:id viewer',
      'GET /alerts/:id/history viewer',
      'POST /alerts/:id/ack analyst',
      'POST /alerts/:id/resolve analyst',
      'POST /alerts/:id/false-positive analyst',
      'GET /terminals/:id viewer',
      'GET /stream/alerts viewer',
      'GET /whoami viewer',
      'GET /admin/keys admin',
      'GET /healthz public',
      'GET /readyz public',
      'GET /openapi.json public',
      'GET /docs public',
    ]) {
      expect(table).toContain(expected);
    }
    // Nothing is public by accident: only ops and documentation routes.
    for (const r of app.routeTable.filter((x) => x.access === 'public')) expect(r.url).toMatch(/^\/(healthz|readyz|openapi\.json|docs|console)/);
  });

  it('answers 401 without a key, with a wrong key and with malformed credentials, on every protected route', async () => {
    const protectedRoutes = app.routeTable.filter((r) => r.access !== 'public');
    expect(protectedRoutes.length).toBeGreaterThanOrEqual(10);
    for (const r of protectedRoutes) {
      const url = sample(r.url);
      const method = r.method as 'GET' | 'POST';
      for (const headers of [{}, { 'x-api-key': 'not-a-key-0123456789abcdef' }, { authorization: 'Bearer wrong-0123456789abcdef' }, { authorization: `Basic ${KEYS.admin}` }, { 'x-api-key': KEYS.viewer, authorization: `Bearer ${KEYS.admin}` }]) {
        const res = await app.inject({ method, url, headers });
        expect(res.statusCode, `${method} ${url} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.headers['www-authenticate']).toBe('Bearer realm="tillwatch"');
        expect(res.json()).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
      }
    }
  });

  it('answers 403 for every route a role may not call, and lets every allowed role through', async () => {
    const roles: Role[] = ['viewer', 'analyst', 'admin'];
    let forbidden = 0;
    for (const r of app.routeTable.filter((x) => x.access !== 'public')) {
      if (r.url === '/stream/alerts') continue; // a long-lived stream: covered in sse.int.test.ts
      for (const role of roles) {
        const method = r.method as 'GET' | 'POST';
        const res = await app.inject({ method, url: sample(r.url), headers: auth(role), ...(method === 'POST' ? { payload: { note: 'route table probe' } } : {}) });
        if (roleAllows(role, r.access)) {
          expect([401, 403], `${role} ${method} ${r.url}`).not.toContain(res.statusCode);
        } else {
          forbidden += 1;
          expect(res.statusCode, `${role} ${method} ${r.url}`).toBe(403);
          expect(res.json().message).toBe(`role ${role} may not ${method} ${r.url}: requires ${r.access}`);
        }
      }
    }
    // viewer on 3 triage routes + admin/keys, analyst on admin/keys; viewer and analyst on PUT /rules
    expect(forbidden).toBe(7);
  });

  it('accepts the key as Authorization: Bearer too, and reports the caller', async () => {
    const res = await app.inject({ method: 'GET', url: '/whoami', headers: { authorization: `Bearer ${KEYS.analyst}` } });
    expect(res.json()).toEqual({ name: 'ana', role: 'analyst' });
    const keys = await app.inject({ method: 'GET', url: '/admin/keys', headers: auth('admin') });
    expect(keys.json()).toEqual({ keys: [{ name: 'vera', role: 'viewer' }, { name: 'ana', role: 'analyst' }, { name: 'root', role: 'admin' }] });
    expect(keys.body).not.toContain(KEYS.admin);
  });

  it('automatic HEAD routes are protected like their GET', async () => {
    expect((await app.inject({ method: 'HEAD', url: '/alerts' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'HEAD', url: '/admin/keys', headers: auth('viewer') })).statusCode).toBe(403);
    expect((await app.inject({ method: 'HEAD', url: '/alerts', headers: auth('viewer') })).statusCode).toBe(200);
    expect((await app.inject({ method: 'HEAD', url: '/healthz' })).statusCode).toBe(200);
  });

  it('unknown URLs need a key too (401), then answer 404', async () => {
    expect((await app.inject({ method: 'GET', url: '/nope' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/nope', headers: auth('viewer') })).statusCode).toBe(404);
  });
});

describe('validation: 400 naming the field and what was expected', () => {
  const cases: [string, string, string][] = [
    ['GET', '/alerts?limit=0', 'querystring.limit must be >= 1'],
    ['GET', '/alerts?limit=501', 'querystring.limit must be <= 500'],
    ['GET', '/alerts?limit=ten', 'querystring.limit must be integer'],
    ['GET', '/alerts?severity=urgent', 'querystring.severity[0] must be one of: low, medium, high, critical'],
    ['GET', '/alerts?severity=low&severity=bad', 'querystring.severity[1] must be one of: low, medium, high, critical'],
    ['GET', '/alerts?status=closed', 'querystring.status[0] must be one of: open, acknowledged, resolved, false_positive, auto_resolved'],
    ['GET', '/alerts?severty=high', "querystring has unknown parameter 'severty'"],
    ['GET', '/alerts?from=yesterday', 'querystring.from must be a date-time (RFC 3339, e.g. 2024-05-01T12:00:00Z)'],
    ['GET', '/alerts?cursor=bm90LWEtY3Vyc29y', 'querystring.cursor is not a valid cursor: pass next_cursor from a previous page unchanged'],
    ['GET', '/alerts?cursor=a%20b', 'querystring.cursor is not a valid cursor: pass next_cursor from a previous page unchanged'],
    ['GET', '/alerts?rule=Sync%20Lag', 'querystring.rule[0] has characters that are not allowed (expected pattern ^[a-z0-9_]+$)'],
    ['GET', '/alerts/bad%20id', 'params.id has characters that are not allowed (expected pattern ^[A-Za-z0-9._:@-]+$)'],
    ['GET', '/terminals/T1?recent=1000', 'querystring.recent must be <= 500'],
    ['GET', '/stream/alerts?severity=nope', 'querystring.severity[0] must be one of: low, medium, high, critical'],
    // Routes without query parameters refuse one too: a typo must not go unnoticed.
    ['GET', '/rules?severty=high', "querystring has unknown parameter 'severty'"],
    ['GET', '/rules/history?x=1', "querystring has unknown parameter 'x'"],
    ['GET', '/rules/ids?x=1', "querystring has unknown parameter 'x'"],
    ['GET', '/alerts/a-1/related?x=1', "querystring has unknown parameter 'x'"],
  ];
  for (const [method, url, message] of cases) {
    it(`${method} ${url}`, async () => {
      const res = await app.inject({ method: method as 'GET', url, headers: auth('admin') });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json()).toMatchObject({ statusCode: 400, error: 'Bad Request', message });
    });
  }

  const bodies: [unknown, string][] = [
    [undefined, 'body must be object'],
    [{}, 'body.note is required'],
    [{ note: '' }, 'body.note must NOT have fewer than 1 characters'],
    [{ note: 'x'.repeat(2001) }, 'body.note must NOT have more than 2000 characters'],
    [{ note: 42 }, 'body.note must be string'],
    [{ note: 'ok', status: 'resolved' }, "body has unknown property 'status'"],
    [{ note: 'customer card 4111 1111 1111 1111 charged twice' }, 'body.note looks like it contains a card number (PAN); refer to the card by its token'],
  ];
  for (const [payload, message] of bodies) {
    it(`POST /alerts/:id/resolve with ${JSON.stringify(payload)?.slice(0, 60)}`, async () => {
      const res = await app.inject({ method: 'POST', url: `/alerts/${untouchedId}/resolve`, headers: { ...auth('analyst'), ...(payload === undefined ? {} : { 'content-type': 'application/json' }) }, ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }) });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json()).toMatchObject({ statusCode: 400, message });
    });
  }

  it('nothing was triaged by the rejected requests', async () => {
    const res = await app.inject({ method: 'GET', url: `/alerts/${untouchedId}/history`, headers: auth('viewer') });
    expect(res.json().entries).toEqual([]);
  });
});

describe('rate limiting (per API key)', () => {
  it('answers 429 past the budget, per key, and never limits probes', async () => {
    const { app: limited } = buildApp(t.ch, { rateLimit: { max: 3, timeWindowMs: 60_000 } });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) codes.push((await limited.inject({ method: 'GET', url: '/whoami', headers: auth('viewer') })).statusCode);
      expect(codes).toEqual([200, 200, 200, 429, 429]);
      const res = await limited.inject({ method: 'GET', url: '/whoami', headers: auth('viewer') });
      expect(res.json()).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests' });
      expect(res.json().message).toMatch(/^rate limit exceeded: 3 requests per 1 minute per API key; retry in \d+ s$/);
      expect(res.headers['retry-after']).toBeDefined();
      // Another key has its own budget (same client IP).
      expect((await limited.inject({ method: 'GET', url: '/whoami', headers: auth('analyst') })).statusCode).toBe(200);
      for (let i = 0; i < 5; i++) expect((await limited.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('GET /alerts page cache', () => {
  it('serves repeated pages from the cache and drops it on a triage write', async () => {
    const registry = createRegistry({ service: 'api-test', defaultMetrics: false });
    const { app: cached } = buildApp(t.ch, { alertsCacheMs: 60_000, metricsRegistry: registry });
    try {
      const get = () => cached.inject({ method: 'GET', url: '/alerts?status=open&limit=100', headers: auth('viewer') });
      const first = await get();
      expect(first.headers['x-cache']).toBe('miss');
      const second = await get();
      expect(second.headers['x-cache']).toBe('hit');
      expect(second.body).toBe(first.body);
      const target = first.json().items[0].alert_id as string;
      const ack = await cached.inject({ method: 'POST', url: `/alerts/${target}/ack`, headers: auth('analyst'), payload: { note: 'cache test' } });
      expect(ack.statusCode).toBe(200);
      const third = await get();
      expect(third.headers['x-cache']).toBe('miss');
      expect(third.json().items.map((a: { alert_id: string }) => a.alert_id)).not.toContain(target);
      expect(await registry.metrics()).toMatch(/tillwatch_api_alerts_cache_total\{[^}]*result="hit"[^}]*\} 1/);
    } finally {
      await cached.close();
    }
  });
});

describe('ops routes', () => {
  it('/healthz and /readyz answer without a key; /readyz is 503 when ClickHouse does not answer', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready' });
    const down = createClickHouse({ url: 'http://127.0.0.1:9', database: 'nope' });
    const { app: downApp } = buildApp(down);
    try {
      const res = await downApp.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ status: 'not ready' });
      // A data route on a store that is down: 503 with a clear message, not 500.
      const list = await downApp.inject({ method: 'GET', url: '/alerts', headers: auth('viewer') });
      expect(list.statusCode).toBe(503);
      expect(list.json()).toMatchObject({ code: 'CLICKHOUSE_UNAVAILABLE' });
    } finally {
      await downApp.close();
      await down.close();
    }
  });

  it('the API metrics are recorded in its registry; the API port serves no /metrics (see contract.int.test.ts: ops port)', async () => {
    const registry = createRegistry({ service: 'api-test', defaultMetrics: false });
    const { app: measured } = buildApp(t.ch, { metricsRegistry: registry });
    try {
      await measured.inject({ method: 'GET', url: '/alerts', headers: auth('viewer') });
      await measured.inject({ method: 'GET', url: '/alerts' });
      const body = await registry.metrics();
      expect(body).toContain('tillwatch_api_request_duration_seconds_bucket');
      expect(body).toMatch(/tillwatch_api_clickhouse_query_seconds_bucket\{[^}]*query="list_alerts(_time)?"/);
      expect(body).toContain('tillwatch_api_auth_failures_total{reason="missing"');
      expect((await measured.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
      expect((await measured.inject({ method: 'GET', url: '/metrics', headers: auth('admin') })).statusCode).toBe(404);
    } finally {
      await measured.close();
    }
  });

  it('/openapi.json documents every API route with parameters and security; /docs serves the UI', async () => {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json<{ openapi: string; paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; security?: unknown[]; requestBody?: unknown; responses: Record<string, unknown> }>>; components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> } }>();
    expect(doc.openapi).toBe('3.0.3');
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['apiKey', 'bearer']);
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Alert', 'Transaction', 'Action', 'TriageEntry', 'Error']));
    for (const p of ['/alerts', '/alerts/{id}', '/alerts/{id}/history', '/alerts/{id}/ack', '/alerts/{id}/resolve', '/alerts/{id}/false-positive', '/terminals/{id}', '/stream/alerts', '/healthz', '/readyz']) {
      expect(doc.paths, p).toHaveProperty([p]);
    }
    const list = doc.paths['/alerts']!['get']!;
    expect(list.parameters!.map((x) => x.name).sort()).toEqual(['cursor', 'from', 'limit', 'merchant', 'rule', 'severity', 'status', 'terminal', 'to']);
    expect(list.security).toEqual([{ apiKey: [] }, { bearer: [] }]);
    expect(Object.keys(list.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403', '429']));
    expect(doc.paths['/alerts/{id}/ack']!['post']!.requestBody).toBeDefined();
    expect(doc.paths['/healthz']!['get']!.security).toEqual([]);
    const ui = await app.inject({ method: 'GET', url: '/docs' });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toContain('swagger');
    const init = await app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
    expect(init.statusCode).toBe(200);
  });
});
