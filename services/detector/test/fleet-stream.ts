// A simulated fleet's transactions for the detector task's unit tests: 40 terminals, 60 cards, 8 %
// anomalies, a step of 1.5 s of received time from 2026-01-05 09:00 UTC.
import type { Transaction } from '@tillwatch/schemas';
import { createFleet } from '@tillwatch/simulator';

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
