import { afterEach, describe, expect, it } from 'vitest';
import { createOpsServer, createRegistry, createDetectorMetrics, type OpsServer } from '@tillwatch/telemetry';

describe('ops server', () => {
  let srv: OpsServer | undefined;
  afterEach(async () => srv?.close());

  it('serves metrics, health and readiness', async () => {
    const registry = createRegistry({ service: 'test', defaultMetrics: false });
    const m = createDetectorMetrics(registry);
    m.ruleHits.inc({ rule: 'duplicate_charge', severity: 'high' });
    let ready = false;
    srv = createOpsServer({ registry, ready: () => ready, host: '127.0.0.1', port: 0 });
    const { url } = await srv.listen();
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('tillwatch_rule_hits_total{rule="duplicate_charge",severity="high",service="test"} 1');
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    ready = true;
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect((await fetch(`${url}/nope`)).status).toBe(404);
  });
});
