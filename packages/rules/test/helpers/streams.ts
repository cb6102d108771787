// Random but realistic streams for property tests: tiny cardinalities so every rule fires often,
// received times that go backwards, offline bursts, late and missing sequence numbers.
import type { Transaction } from '@tillwatch/schemas';
import { generateEvents } from '../../bench/generate.js';
import { parseRulesConfig, type RulesConfig } from '../../src/index.js';

export function denseStream(seed: number, events: number, meanGapMs = 20_000): Transaction[] {
  return [
    ...generateEvents({
      seed,
      events,
      merchants: 2,
      terminals: 5,
      cards: 8,
      meanGapMs,
      coarseAmounts: true,
      pDuplicate: 0.05,
      pAbnormal: 0.02,
      pOffline: 0.002,
      pDropSeq: 0.01,
      pLateSeq: 0.02,
      pRefund: 0.08,
      pBadRefund: 0.01,
      pRefundOtherCard: 0.05,
      pVoid: 0.03,
      receivedSkewMs: 60_000,
      offlineMs: [10 * 60_000, 3 * 3600_000],
    }),
  ];
}

/** Defaults, and short horizons so that expiry (legs, sales, terminals) happens inside a short stream. */
export const CONFIGS: RulesConfig[] = [
  parseRulesConfig({}),
  parseRulesConfig({
    engine: { allowed_lateness: '30m', refund_lookback: '2h', terminal_idle_ttl: '3h' },
    rules: {
      sequence_gap: { timeout: '5m' },
      abnormal_amount: { min_sales: 3, sample_size: 7, ratio: 3 },
      refund_after_deadline: { deadline: '20m' },
      refund_velocity: { count: 3, window: '30m' },
    },
    overrides: { merchants: { M0001: { duplicate_charge: { window: '20m' } } }, terminals: { T00003: { sync_lag: { threshold: '2m' } } } },
  }),
];
