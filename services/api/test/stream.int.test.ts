// GET /stream/alerts (server-sent events) with a fake feed - the feed is a port - and the
// ClickHouse-polling feed against embedded ClickHouse.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { formatMoney, type Alert } from '@tillwatch/schemas';
import { createRegistry } from '@tillwatch/telemetry';
import { auth, buildApp, insertAlerts, makeAlerts } from './fixtures.js';
import { createPollingAlertFeed } from '../src/feed.js';

let t: TestClickHouse;

beforeAll(async () => {
  t = await createTestClickHouse({ migrate: true });
});

afterAll(async () => {
  await t?.dispose();
});

/** Read SSE frames from an inject stream until `count` alert events arrived. */
async function readEvents(stream: NodeJS.ReadableStream, count: number, timeoutMs = 5000): Promise<{ raw: string; events: { id: string; event: string; data: unknown }[] }> {
  let raw = '';
  const events: { id: string; event: string; data: unknown }[] = [];
  const deadline = Date.now() + timeoutMs;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    raw += chunk.toString('utf8');
    events.length = 0;
    for (const frame of raw.split('\n\n')) {
      const lines = Object.fromEntries(frame.split('\n').filter((l) => /^(id|event|data): /.test(l)).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
      if (lines['event'] === 'alert') events.push({ id: lines['id']!, event: lines['event'], data: JSON.parse(lines['data']!) });
    }
    if (events.length >= count || Date.now() > deadline) break;
  }
  return { raw, events };
}

describe('GET /stream/alerts', () => {
  it('streams matching alerts from the feed as SSE events, masked, and unsubscribes on disconnect', async () => {
    const registry = createRegistry({ service: 'sse-test', defaultMetrics: false });
    const { app, feed } = buildApp(t.ch, { metricsRegistry: registry, sseHeartbeatMs: 1000 });
    await app.ready();
    const abort = new AbortController();
    const res = await app.inject({ method: 'GET', url: '/stream/alerts?rule=duplicate_charge&severity=critical&severity=high', headers: auth('viewer'), payloadAsStream: true, signal: abort.signal });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-cache, no-transform');
    expect(feed.subscribers).toBe(1);

    const base = makeAlerts(1).alerts[0]!;
    const a1: Alert = { ...base, alert_id: 'al-sse-1', rule: 'duplicate_charge', severity: 'critical', summary: 'card 4111111111111111 charged twice' };
    const skipped: Alert = { ...base, alert_id: 'al-sse-2', rule: 'sync_lag', severity: 'critical' };
    const a3: Alert = { ...base, alert_id: 'al-sse-3', rule: 'duplicate_charge', severity: 'high', details: { ratio: Number.NaN } };
    setTimeout(() => {
      feed.publish(a1);
      feed.publish(skipped);
      feed.publish(a3);
    }, 20);
    const { raw, events } = await readEvents(res.stream(), 2);
    expect(raw.startsWith('retry: 5000\n: connected as vera\n\n')).toBe(true);
    expect(events.map((e) => e.id)).toEqual(['al-sse-1', 'al-sse-3']);
    // With its rules version and money (makeAlerts gives the first alert an amount in EUR).
    expect(a1.currency).toBe('EUR');
    expect(events[0]!.data).toEqual({ ...a1, amount: formatMoney(a1.amount_minor!, 'EUR'), summary: 'card [PAN ****1111] charged twice', status: 'open', status_by: null, status_at: null });
    expect((events[1]!.data as { details: unknown }).details).toEqual({ ratio: null });
    expect(raw).not.toContain('4111111111111111');
    expect(await registry.getSingleMetricAsString('tillwatch_api_sse_clients')).toContain('tillwatch_api_sse_clients{service="sse-test"} 1');

    abort.abort();
    await new Promise((r) => setTimeout(r, 50));
    expect(feed.subscribers).toBe(0);
    expect(await registry.getSingleMetricAsString('tillwatch_api_sse_clients')).toContain('tillwatch_api_sse_clients{service="sse-test"} 0');
    await app.close();
  });

  it('sends heartbeat comments, and close() ends open streams', async () => {
    const { app, feed } = buildApp(t.ch, { sseHeartbeatMs: 1000 });
    await app.ready();
    const res = await app.inject({ method: 'GET', url: '/stream/alerts', headers: { authorization: 'Bearer analyst-key-0123456789abcdef' }, payloadAsStream: true });
    const stream = res.stream();
    let raw = '';
    const ended = new Promise<void>((resolve) => {
      stream.on('data', (c: Buffer) => (raw += c.toString('utf8')));
      stream.on('end', () => resolve());
      stream.on('close', () => resolve());
    });
    await new Promise((r) => setTimeout(r, 1300));
    expect(raw).toMatch(/: ping \d+\n\n/);
    await app.close();
    await ended;
    expect(feed.subscribers).toBe(0);
  });

  it('401 without a key (before any stream starts)', async () => {
    const { app, feed } = buildApp(t.ch);
    const res = await app.inject({ method: 'GET', url: '/stream/alerts' });
    expect(res.statusCode).toBe(401);
    expect(feed.subscribers).toBe(0);
    await app.close();
  });
});

describe('createPollingAlertFeed', () => {
  it('emits alerts inserted after it started, once each (replayed copies are not re-emitted)', async () => {
    const { alerts } = makeAlerts(8, 500);
    await insertAlerts(t.ch, alerts.slice(0, 2)); // history: before the feed started
    const feed = createPollingAlertFeed({ ch: t.ch, intervalMs: 50 });
    const got: string[] = [];
    const unsubscribe = feed.subscribe((a) => got.push(a.alert_id));
    try {
      await feed.pollOnce(); // the first poll pins the start
      await new Promise((r) => setTimeout(r, 20));
      await insertAlerts(t.ch, alerts.slice(2, 5));
      await insertAlerts(t.ch, alerts.slice(2, 3)); // a replayed copy
      await insertAlerts(t.ch, alerts.slice(5));
      const deadline = Date.now() + 5000;
      while (got.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 200));
      expect([...got].sort()).toEqual(alerts.slice(2).map((a) => a.alert_id).sort());
      // And it is the contract shape.
    } finally {
      unsubscribe();
      await feed.close();
    }
  });

  it('feeds /stream/alerts end to end', async () => {
    const feed = createPollingAlertFeed({ ch: t.ch, intervalMs: 50 });
    const { app } = buildApp(t.ch, { alertFeed: feed });
    await app.ready();
    const abort = new AbortController();
    try {
      const res = await app.inject({ method: 'GET', url: '/stream/alerts?terminal=T3', headers: auth('viewer'), payloadAsStream: true, signal: abort.signal });
      await new Promise((r) => setTimeout(r, 150)); // the first poll pins the start
      const { alerts } = makeAlerts(12, 900);
      await insertAlerts(t.ch, alerts);
      const want = alerts.filter((a) => a.terminal_id === 'T3');
      const { events } = await readEvents(res.stream(), want.length);
      expect(events.map((e) => e.id).sort()).toEqual(want.map((a) => a.alert_id).sort());
      expect(events[0]!.data).toMatchObject({ terminal_id: 'T3', status: 'open' });
    } finally {
      abort.abort();
      await app.close();
      await feed.close();
    }
  });
});
