// The console's side of the API (src/console.ts, src/console-reads.ts) through app.inject() on
// embedded ClickHouse: static files public with the CSP, page routes answered with index.html,
// nothing outside the file set served, every module the page imports present; the refund chain,
// the sync-lag series and the merchant view on known data.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert, Transaction } from '@tillwatch/schemas';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { auth, BASE, buildApp, insertAlerts, insertTransactions, makeTransaction } from './fixtures.js';
import type { ApiApp } from '../src/app.js';
import { CONSOLE_CSP, CONSOLE_DIR, loadConsoleFiles } from '../src/console.js';

let t: TestClickHouse;
let app: ApiApp;

// Merchant M0 (terminals T0, T3): a sale, two refunds of it (the second crosses it), an unrelated sale.
const sale = makeTransaction(10, 'T0', { txn_id: 'sale-1', amount_minor: 5000 });
const refund1 = makeTransaction(11, 'T0', { txn_id: 'ref-1', kind: 'REFUND', original_txn_id: 'sale-1', amount_minor: 3000 });
const refund2 = makeTransaction(12, 'T3', { txn_id: 'ref-2', kind: 'REFUND', original_txn_id: 'sale-1', amount_minor: 3000, terminal_seq: 1 });
const other = makeTransaction(13, 'T0', { txn_id: 'sale-2' });
// Merchant M1 (terminal T1): a sale and its refund, evidence of a fleet alert with M0's sale.
const saleB = makeTransaction(14, 'T1', { txn_id: 'sale-b' });
const refundB = makeTransaction(15, 'T1', { txn_id: 'ref-b', kind: 'REFUND', original_txn_id: 'sale-b' });
// T0's arrivals over several minutes, with known lags.
const lagged: Transaction[] = [0, 1, 2, 3].map((i) => makeTransaction(20 + i, 'T0', { received_time: BASE + (20 + i) * 60_000 + (i + 1) * 60_000 }));
const alert: Alert = {
  alert_id: 'al-console-refund',
  rule: 'refund_exceeds_sale',
  rule_version: 1,
  rules_version: 1,
  severity: 'high',
  terminal_id: 'T3',
  merchant_id: 'M0',
  card_token: refund2.card_token,
  event_ids: [refund2.event_id],
  window_start: sale.event_time,
  window_end: refund2.event_time,
  detected_at: refund2.received_time,
  summary: 'refunds of sale-1 exceed it',
  details: { excess_minor: 1000 },
};

// The second stage's fleet alert: merchant and terminal '*', evidence at two merchants.
const fleetAlert: Alert = { ...alert, alert_id: 'al-console-fleet', rule: 'sync_incident', severity: 'critical', terminal_id: '*', merchant_id: '*', card_token: null, event_ids: [sale.event_id, saleB.event_id] };

beforeAll(async () => {
  t = await createTestClickHouse({ migrate: true });
  await insertTransactions(t.ch, [sale, refund1, refund2, other, saleB, refundB, ...lagged]);
  await insertAlerts(t.ch, [alert, fleetAlert]);
  app = buildApp(t.ch).app;
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await t?.dispose();
});

describe('console static files', () => {
  it('serves the page without a key, with the CSP and no inline script allowed', async () => {
    const redirect = await app.inject({ method: 'GET', url: '/console' });
    expect(redirect.statusCode).toBe(302);
    expect(redirect.headers.location).toBe('/console/');
    const res = await app.inject({ method: 'GET', url: '/console/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toContain("script-src 'self';");
    expect(CONSOLE_CSP).not.toMatch(/unsafe-(inline|eval)/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    // The page itself has no inline script or style, and nothing from another origin.
    expect(res.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(res.body).not.toMatch(/\sstyle=|<style/);
    expect(res.body).not.toMatch(/(src|href)="(https?:)?\/\//);
    const js = await app.inject({ method: 'GET', url: '/console/assets/main.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    const again = await app.inject({ method: 'GET', url: '/console/assets/main.js', headers: { 'if-none-match': String(js.headers.etag) } });
    expect(again.statusCode).toBe(304);
  });

  it('answers the page routes with index.html and nothing outside its own files', async () => {
    const index = (await app.inject({ method: 'GET', url: '/console/' })).body;
    for (const url of ['/console/alerts/al-1', '/console/terminals/T0', '/console/merchants/%3Cimg%20src%3Dx%3E']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.body).toBe(index);
    }
    for (const url of ['/console/assets/nope.js', '/console/assets/../../package.json', '/console/assets/%2e%2e/%2e%2e/package.json', '/console/tsconfig.json', '/console/alerts/a/b', '/console/static/index.html']) {
      // (A client that normalises ../ asks for /package.json: an unknown URL, which needs a key.)
      expect([401, 404], url).toContain((await app.inject({ method: 'GET', url })).statusCode);
    }
  });

  it('has every module the page imports (no build step: a missing file would only show in a browser)', () => {
    const files = loadConsoleFiles();
    const html = readFileSync(join(CONSOLE_DIR, 'index.html'), 'utf8');
    const wanted = [...html.matchAll(/(?:src|href)="\/console\/(assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(wanted).toEqual(expect.arrayContaining(['assets/main.js', 'assets/console.css']));
    for (const w of wanted) expect(files.has(w), w).toBe(true);
    for (const [path, file] of files) {
      if (!path.endsWith('.js')) continue;
      for (const m of file.body.toString('utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = new URL(m[1]!, `http://x/${path}`).pathname.slice(1);
        expect(files.has(target), `${path} imports ${m[1]}`).toBe(true);
      }
    }
  });
});

describe('console reads', () => {
  it('GET /alerts/:id/related: the sale and every refund of it, oldest first', async () => {
    const res = await app.inject({ method: 'GET', url: `/alerts/${alert.alert_id}/related`, headers: auth('viewer') });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { alert_id: string; transactions: Transaction[]; truncated: boolean };
    expect(body.alert_id).toBe(alert.alert_id);
    expect(body.truncated).toBe(false);
    expect(body.transactions.map((x) => x.txn_id)).toEqual(['sale-1', 'ref-1', 'ref-2']);
    expect(body.transactions[0]).toEqual(sale);
    expect((await app.inject({ method: 'GET', url: '/alerts/al-none/related', headers: auth('viewer') })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: `/alerts/${alert.alert_id}/related` })).statusCode).toBe(401);
  });

  it("GET /alerts/:id/related of a fleet alert (merchant '*'): the chains at each evidence's merchant", async () => {
    const res = await app.inject({ method: 'GET', url: `/alerts/${fleetAlert.alert_id}/related`, headers: auth('viewer') });
    expect(res.statusCode).toBe(200);
    expect((res.json() as { transactions: Transaction[] }).transactions.map((x) => [x.merchant_id, x.txn_id])).toEqual([
      ['M0', 'sale-1'],
      ['M0', 'ref-1'],
      ['M0', 'ref-2'],
      ['M1', 'sale-b'],
      ['M1', 'ref-b'],
    ]);
  });

  it('GET /terminals/:id/sync-lag: one point per minute of arrivals, ending at the latest', async () => {
    const res = await app.inject({ method: 'GET', url: '/terminals/T0/sync-lag?minutes=10', headers: auth('viewer') });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { terminal_id: string; merchant_id: string; sync_lag: { until: number; window_minutes: number; points: { minute: number; events: number; p50_ms: number; max_ms: number }[] } };
    expect(body.terminal_id).toBe('T0');
    expect(body.merchant_id).toBe('M0');
    const last = lagged[lagged.length - 1]!;
    expect(body.sync_lag.until).toBe(last.received_time);
    expect(body.sync_lag.window_minutes).toBe(10);
    // Minutes within the 10 before the latest arrival: the four lagged transactions, one per minute.
    const minute = (ms: number) => Math.floor(ms / 60_000) * 60_000;
    const expected = lagged.map((x) => ({ minute: minute(x.received_time), events: 1, p50_ms: x.received_time - x.event_time, max_ms: x.received_time - x.event_time }));
    expect(body.sync_lag.points.map(({ minute: m, events, p50_ms, max_ms }) => ({ minute: m, events, p50_ms, max_ms }))).toEqual(expected);
    expect((await app.inject({ method: 'GET', url: '/terminals/T-none/sync-lag', headers: auth('viewer') })).statusCode).toBe(404);
    const bad = await app.inject({ method: 'GET', url: '/terminals/T0/sync-lag?minutes=0', headers: auth('viewer') });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toBe('querystring.minutes must be >= 1');
  });

  it('GET /merchants/:id: its terminals and sync lag; 404 for an unknown merchant', async () => {
    const res = await app.inject({ method: 'GET', url: '/merchants/M0?minutes=1440', headers: auth('viewer') });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { merchant_id: string; transactions: number; last_seen: number; terminals: { terminal_id: string; transactions: number; last_seq: number }[]; sync_lag: { points: { events: number }[] } };
    expect(body.merchant_id).toBe('M0');
    expect(body.terminals.map((x) => [x.terminal_id, x.transactions])).toEqual([['T0', 7], ['T3', 1]]);
    expect(body.transactions).toBe(8);
    expect(body.last_seen).toBe(Math.max(...[sale, refund1, refund2, other, ...lagged].map((x) => x.received_time)));
    expect(body.sync_lag.points.reduce((s, p) => s + p.events, 0)).toBe(8);
    expect((await app.inject({ method: 'GET', url: '/merchants/M-none', headers: auth('viewer') })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/merchants/%3Cimg%3E', headers: auth('viewer') })).statusCode).toBe(400);
  });
});
