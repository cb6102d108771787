// Random but realistic streams for property tests: tiny cardinalities so every rule fires often,
// received times that go backwards, offline bursts, late and missing sequence numbers.
import type { Heartbeat, Transaction } from '@tillwatch/schemas';
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
      upload_backlog: { min_queue: 1, stuck_for: '3m' },
    },
    overrides: { merchants: { M0001: { duplicate_charge: { window: '20m' } } }, terminals: { T00003: { sync_lag: { threshold: '2m' } } } },
  }),
];

/**
 * The dense stream with every terminal's heartbeats merged in, in arrival order (realistic: each
 * terminal beats every `everyMs` from its first to its last arrival). A terminal is offline while it
 * holds a late transaction (made at event_time, received > 5 min later): its heartbeats then report
 * the queue (those held transactions) and the highest seq made. Even terminals keep beating during
 * their outages (a heartbeat-only outage: upload_backlog), odd ones go silent (terminal_offline).
 */
export function withHeartbeats(events: readonly Transaction[], everyMs = 60_000): (Transaction | Heartbeat)[] {
  const byTerminal = new Map<string, Transaction[]>();
  for (const t of events) {
    const k = `${t.merchant_id}\u0000${t.terminal_id}`;
    const list = byTerminal.get(k);
    if (list === undefined) byTerminal.set(k, [t]);
    else list.push(t);
  }
  const beats: Heartbeat[] = [];
  let n = 0;
  for (const list of byTerminal.values()) {
    const silentWhenOffline = n++ % 2 === 1;
    const first = Math.min(...list.map((t) => t.received_time));
    const last = Math.max(...list.map((t) => t.received_time));
    for (let at = first + 7_000; at < last; at += everyMs) {
      let queue = 0;
      let lastSeq = 0;
      for (const t of list) {
        if (t.event_time <= at) lastSeq = Math.max(lastSeq, t.terminal_seq);
        if (t.event_time <= at && t.received_time > at && t.received_time - t.event_time > 5 * 60_000) queue++;
      }
      if (queue > 0 && silentWhenOffline) continue;
      beats.push({ terminal_id: list[0]!.terminal_id, merchant_id: list[0]!.merchant_id, last_seq: lastSeq, queue_depth: queue, event_time: at - 300, received_time: at });
    }
  }
  beats.sort((a, b) => a.received_time - b.received_time);
  const out: (Transaction | Heartbeat)[] = [];
  let i = 0;
  for (const t of events) {
    while (i < beats.length && beats[i]!.received_time < t.received_time) out.push(beats[i++]!);
    out.push(t);
  }
  return out;
}

/** denseStream with heartbeats (what the split/restore properties run). */
export const inputStream = (seed: number, events: number, meanGapMs = 20_000): (Transaction | Heartbeat)[] => withHeartbeats(denseStream(seed, events, meanGapMs));
