// The simulator's heartbeats (what `simulate` and `npm start` send) through the rule engine: its
// sync outages are seen while they happen. A heartbeating outage raises upload_backlog (the queue
// grows and does not shrink), a full outage terminal_offline, and both are closed once the terminal
// has uploaded its backlog / is back; terminals without outages raise neither.
import { describe, expect, it } from 'vitest';
import type { Alert, AlertUpdate } from '@tillwatch/schemas';
import { createRuleEngine, defaultRulesConfig, type EngineOutput } from '@tillwatch/rules';
import { createFleet } from '@tillwatch/simulator';

const T0 = Date.UTC(2026, 0, 5, 9);
const MIN = 60_000;

function simulate(offlineShare: number) {
  const fleet = createFleet({ terminals: 20, seed: 9, anomalyRate: 0, outages: { rate: 0.01, minMs: 20 * MIN, maxMs: 30 * MIN, maxShare: 0.2, offlineShare } });
  const engine = createRuleEngine(defaultRulesConfig());
  const alerts: Alert[] = [];
  const updates: AlertUpdate[] = [];
  const take = (o: EngineOutput) => {
    alerts.push(...o.alerts);
    updates.push(...(o.updates ?? []));
  };
  // 5 events/s over 20 terminals for 2 h of simulated time, heartbeats every 60 s (as the simulator sends them).
  let now = T0;
  for (let s = 0; s < 120 * 60; s++) {
    for (let k = 0; k < 5; k++) for (const e of fleet.next(now + k * 200)) take(engine.onTransaction(e));
    now += 1000;
    if (s % 60 === 59) for (const h of fleet.heartbeats(now)) take(engine.onHeartbeat(h));
  }
  return { alerts, updates };
}

const byRule = <T extends { rule: string }>(xs: T[], rule: string): T[] => xs.filter((x) => x.rule === rule);

describe('simulated heartbeats through the engine', () => {
  it('outages with heartbeats: upload_backlog fires while the queue grows, closed after the upload; no terminal_offline', () => {
    const { alerts, updates } = simulate(0);
    const backlog = byRule(alerts, 'upload_backlog');
    expect(backlog.length).toBeGreaterThan(0);
    expect(byRule(alerts, 'terminal_offline')).toEqual([]);
    // Seen before the late transactions arrive: each backlog alert precedes its terminal's first sync_lag alert.
    for (const a of backlog) {
      const lag = byRule(alerts, 'sync_lag').find((x) => x.terminal_id === a.terminal_id && x.detected_at >= a.detected_at);
      if (lag) expect(a.detected_at).toBeLessThan(lag.detected_at);
    }
    const closed = new Set(byRule(updates, 'upload_backlog').map((u) => u.alert_id));
    expect(backlog.filter((a) => closed.has(a.alert_id)).length).toBeGreaterThan(0);
  });

  it('full outages (no heartbeats): terminal_offline fires 10 min into the silence and is closed when the terminal is back', () => {
    const { alerts, updates } = simulate(1);
    const offline = byRule(alerts, 'terminal_offline');
    expect(offline.length).toBeGreaterThan(0);
    for (const a of offline) expect(a.details.silence_ms).toBe(10 * MIN);
    const closedBy = new Map(byRule(updates, 'terminal_offline').map((u) => [u.alert_id, u]));
    const closed = offline.filter((a) => closedBy.has(a.alert_id));
    expect(closed.length).toBeGreaterThan(0);
    // Outages last 20-30 min: silent at least that long minus one heartbeat interval.
    for (const a of closed) expect(closedBy.get(a.alert_id)!.details.duration_ms).toBeGreaterThanOrEqual(19 * MIN);
  });
});
