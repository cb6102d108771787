// Fixtures for the detector task's unit tests (no broker): topic names, JSON encoders for every output,
// and a simulated fleet's transactions.
import type { Transaction } from '@tillwatch/schemas';
import { createFleet } from '@tillwatch/simulator';

export const TOPICS = { transactions: 'tx', heartbeats: 'hb', alerts: 'alerts', freezeActions: 'freeze', notifyActions: 'notify', alertUpdates: 'updates', refundReasons: 'reasons', shadowAlerts: 'shadow' };

const json = (x: unknown): Buffer => Buffer.from(JSON.stringify(x));
/** Every output as JSON (the tests read them back with JSON.parse). */
export const JSON_ENCODERS = { encodeAlert: json, encodeAction: json, encodeUpdate: json, encodeRefundReason: json };

/** 40 terminals, 60 cards, 8 % anomalies, a step of 1.5 s of received time from 2026-01-05 09:00 UTC. */
export function fleetStream(seed: number, n: number): Transaction[] {
  const fleet = createFleet({ terminals: 40, cards: 60, seed, anomalyRate: 0.08 });
  const out: Transaction[] = [];
  let now = Date.UTC(2026, 0, 5, 9);
  while (out.length < n) {
    now += 1_500;
    for (const e of fleet.next(now)) out.push(e);
  }
  return out.slice(0, n);
}
