// A simulated fleet of POS terminals: ordinary traffic plus injected anomalies (ANOMALIES below;
// outages give terminal_offline and upload_backlog; the refund policy rules refund_card_mismatch,
// refund_after_deadline and refund_velocity are not injected: their golden scenarios cover them).
// Pure and seeded: the caller supplies the clock (wall time in live mode, a synthetic clock in
// tests and load generation), so the same seed and clock give the same events.
import type { Heartbeat, Transaction } from '@tillwatch/schemas';
import { createRandom, type Random } from './random.js';

export type Anomaly = 'duplicate_charge' | 'abnormal_amount' | 'sync_lag' | 'sequence_gap' | 'refund_without_sale' | 'refund_exceeds_sale';
export const ANOMALIES: readonly Anomaly[] = ['duplicate_charge', 'abnormal_amount', 'sync_lag', 'sequence_gap', 'refund_without_sale', 'refund_exceeds_sale'];

export interface FleetOptions {
  terminals: number;
  /** Cards in circulation; default 10 per terminal. */
  cards?: number;
  seed?: number;
  /** Probability that a generated transaction starts an anomaly scenario. */
  anomalyRate?: number;
  /** Which anomalies to inject (default all). */
  anomalies?: readonly Anomaly[];
  /**
   * Sync outages as they happen (default off, so seeded streams of tests and load tests stay as
   * they are; `tillwatch simulate` and `npm start` turn them on): a terminal stops syncing for a
   * while, its transactions wait in its upload queue (heartbeats show queue_depth growing and
   * last_seq ahead of what was synced), then it reconnects and uploads the backlog at a pace,
   * interleaved with new on-time transactions, while heartbeats show the queue draining. Some
   * outages are full: no heartbeats either (the terminal is offline).
   */
  outages?: boolean | OutageOptions;
}

export interface OutageOptions {
  /** Probability per generated scenario that its terminal starts an outage. Default 0.002. */
  rate?: number;
  /** Outage length, uniformly in [minMs, maxMs] of the clock. Default 20-60 min. */
  minMs?: number;
  maxMs?: number;
  /** Backlog upload pace after reconnecting, transactions per minute. Default 120 (a 60-min backlog of a busy terminal uploads in minutes, well inside sequence_gap's 30-min timeout). */
  drainPerMinute?: number;
  /** At most this share of the fleet in outage or draining at once (at least 1 terminal). Default 0.05. */
  maxShare?: number;
  /** Share of outages where the terminal is fully offline (no heartbeats). Default 0.5. */
  offlineShare?: number;
}

const OUTAGE_DEFAULTS: Required<OutageOptions> = { rate: 0.002, minMs: 20 * 60_000, maxMs: 60 * 60_000, drainPerMinute: 120, maxShare: 0.05, offlineShare: 0.5 };

interface TerminalState {
  id: string;
  merchant: string;
  currency: string;
  seq: number;
  median: number;
  recentSales: { txn: string; amount: number; card: string }[];
  /** Set while the terminal cannot sync (offline: no heartbeats either). */
  outage: { until: number; offline: boolean } | null;
  /** Upload queue: recorded, not yet synced (received_time is set when uploaded). */
  queue: Transaction[];
  /** Set while the backlog uploads after an outage. */
  drain: { start: number; released: number } | null;
}

export interface Fleet {
  /** Next batch of events at wall/stream time `now` (one scenario: 1 event, or a few for anomalies). */
  next(now: number): Transaction[];
  /** One heartbeat per terminal that can reach the platform (not fully offline): last_seq, queue_depth. */
  heartbeats(now: number): Heartbeat[];
  /** Terminals in outage or uploading their backlog now. */
  readonly troubled: () => number;
  readonly stats: Record<Anomaly | 'normal', number>;
  readonly terminalCount: number;
}

const CURRENCIES = ['EUR', 'EUR', 'EUR', 'GBP', 'USD', 'CNY'];

export function createFleet(o: FleetOptions): Fleet {
  const rnd: Random = createRandom(o.seed ?? 42);
  const cards = Array.from({ length: o.cards ?? o.terminals * 10 }, (_, i) => `tok_${i.toString(36).padStart(6, '0')}`);
  const terminals: TerminalState[] = [];
  let merchantIdx = 0;
  while (terminals.length < o.terminals) {
    const merchant = `M${String(merchantIdx++).padStart(6, '0')}`;
    const currency = rnd.pick(CURRENCIES);
    const median = Math.round(rnd.logNormal(2500, 0.8));
    const count = Math.min(rnd.int(1, 5), o.terminals - terminals.length);
    for (let i = 0; i < count; i++) {
      terminals.push({ id: `T${String(terminals.length).padStart(7, '0')}`, merchant, currency, seq: 0, median, recentSales: [], outage: null, queue: [], drain: null });
    }
  }
  const anomalies = o.anomalies ?? ANOMALIES;
  const stats = { normal: 0, duplicate_charge: 0, abnormal_amount: 0, sync_lag: 0, sequence_gap: 0, refund_without_sale: 0, refund_exceeds_sale: 0 } as Record<Anomaly | 'normal', number>;
  let txnCounter = 0;
  const outages = o.outages === true ? OUTAGE_DEFAULTS : o.outages ? { ...OUTAGE_DEFAULTS, ...o.outages } : null;
  const maxTroubled = outages ? Math.max(1, Math.floor(terminals.length * outages.maxShare)) : 0;
  const troubled = new Set<TerminalState>();

  /** Ends outages that are over and uploads what each draining terminal's pace allows by `now`. */
  const settle = (now: number, out: Transaction[]): void => {
    if (!outages) return;
    for (const t of troubled) {
      if (t.outage && now >= t.outage.until) {
        t.outage = null;
        t.drain = { start: now, released: 0 };
      }
      if (!t.drain) continue;
      const due = Math.floor(((now - t.drain.start) * outages.drainPerMinute) / 60_000) + 1;
      while (t.drain.released < due && t.queue.length > 0) {
        out.push({ ...t.queue.shift()!, received_time: now });
        t.drain.released++;
      }
      if (t.queue.length === 0) {
        t.drain = null;
        troubled.delete(t);
      }
    }
  };
  const maybeStartOutage = (t: TerminalState, now: number): void => {
    if (!outages || troubled.size >= maxTroubled || troubled.has(t) || !rnd.chance(outages.rate)) return;
    t.outage = { until: now + rnd.int(outages.minMs, outages.maxMs), offline: rnd.chance(outages.offlineShare) };
    troubled.add(t);
  };

  const txnId = () => `tx_${(txnCounter++).toString(36)}_${rnd.int(0, 1e6).toString(36)}`;
  const event = (t: TerminalState, partial: Partial<Transaction> & Pick<Transaction, 'event_time' | 'received_time'>): Transaction => ({
    event_id: rnd.uuid(),
    txn_id: txnId(),
    kind: 'SALE',
    status: 'APPROVED',
    terminal_id: t.id,
    merchant_id: t.merchant,
    card_token: rnd.pick(cards),
    amount_minor: Math.max(50, Math.round(rnd.logNormal(t.median, 0.35))),
    currency: t.currency,
    terminal_seq: ++t.seq,
    original_txn_id: null,
    ...partial,
  });
  const remember = (t: TerminalState, e: Transaction): Transaction => {
    if (e.kind === 'SALE' && e.status === 'APPROVED') {
      t.recentSales.push({ txn: e.txn_id, amount: e.amount_minor, card: e.card_token });
      if (t.recentSales.length > 20) t.recentSales.shift();
    }
    return e;
  };
  const ordinary = (t: TerminalState, now: number): Transaction[] => {
    const r = rnd.next();
    if (r < 0.04) return [event(t, { status: 'DECLINED', event_time: now - rnd.int(50, 2000), received_time: now })];
    // Ordinary refunds: 0.1 % of transactions. The simulated terminals are busy (npm start: 200 tx/s over
    // 500 terminals, ~1,400 tx an hour each), and refund_velocity fires at 5 refunds in an hour at one
    // terminal: at the former 2 % every terminal crossed it every hour (~500 alerts an hour); at 0.1 %
    // (~1.4 an hour) a burst is rare, as it is at a real till.
    if (r < 0.041 && t.recentSales.length > 0) {
      // An ordinary partial refund of an earlier sale, sometimes at another till of the merchant.
      const sale = rnd.pick(t.recentSales);
      return [event(t, { kind: 'REFUND', card_token: sale.card, amount_minor: Math.max(1, Math.floor(sale.amount / 2)), original_txn_id: sale.txn, event_time: now - rnd.int(50, 2000), received_time: now })];
    }
    return [remember(t, event(t, { event_time: now - rnd.int(50, 2000), received_time: now }))];
  };

  const scenario = (kind: Anomaly, t: TerminalState, now: number): Transaction[] => {
    switch (kind) {
      case 'duplicate_charge': {
        // Host timed out on the terminal but the bank charged; the cashier retried: two APPROVED sales.
        const card = rnd.pick(cards);
        const amount = Math.max(100, Math.round(rnd.logNormal(t.median, 0.3)));
        const first = remember(t, event(t, { card_token: card, amount_minor: amount, event_time: now - 120_000, received_time: now - 1 }));
        const retry = remember(t, event(t, { card_token: card, amount_minor: amount, event_time: now - 60_000, received_time: now }));
        return [first, retry];
      }
      case 'abnormal_amount':
        return [remember(t, event(t, { amount_minor: t.median * rnd.int(15, 60), event_time: now - 500, received_time: now }))];
      case 'sync_lag': {
        // The terminal was offline: its queue arrives at once, 20-60 minutes old.
        const n = rnd.int(5, 30);
        const start = now - rnd.int(20, 60) * 60_000;
        return Array.from({ length: n }, (_, i) => remember(t, event(t, { event_time: start + i * 30_000, received_time: now })));
      }
      case 'sequence_gap': {
        t.seq += rnd.int(1, 3); // transactions that never reach the platform
        return [remember(t, event(t, { event_time: now - 300, received_time: now }))];
      }
      case 'refund_without_sale':
        return [event(t, { kind: 'REFUND', original_txn_id: `tx_unknown_${rnd.int(0, 1e9).toString(36)}`, amount_minor: Math.round(t.median * 2), event_time: now - 200, received_time: now })];
      case 'refund_exceeds_sale': {
        const sale = remember(t, event(t, { event_time: now - 5_000, received_time: now - 2 }));
        const r1 = event(t, { kind: 'REFUND', card_token: sale.card_token, original_txn_id: sale.txn_id, amount_minor: Math.ceil(sale.amount_minor * 0.7), event_time: now - 3_000, received_time: now - 1 });
        const r2 = event(t, { kind: 'REFUND', card_token: sale.card_token, original_txn_id: sale.txn_id, amount_minor: Math.ceil(sale.amount_minor * 0.7), event_time: now - 1_000, received_time: now });
        return [sale, r1, r2];
      }
    }
  };

  return {
    stats,
    terminalCount: terminals.length,
    troubled: () => troubled.size,
    next(now) {
      const out: Transaction[] = [];
      settle(now, out);
      const t = rnd.pick(terminals);
      maybeStartOutage(t, now);
      let events: Transaction[];
      if (anomalies.length > 0 && rnd.chance(o.anomalyRate ?? 0.002)) {
        const kind = rnd.pick(anomalies);
        stats[kind]++;
        events = scenario(kind, t, now);
      } else {
        stats.normal++;
        events = ordinary(t, now);
      }
      // In an outage the terminal records but cannot sync: into its queue, in recording order.
      if (t.outage) for (const e of events) t.queue.push(e);
      else for (const e of events) out.push(e);
      return out;
    },
    heartbeats(now) {
      const out: Heartbeat[] = [];
      for (const t of terminals) {
        if (t.outage?.offline) continue;
        out.push({ terminal_id: t.id, merchant_id: t.merchant, last_seq: t.seq, queue_depth: t.queue.length, event_time: now - 100, received_time: now });
      }
      return out;
    },
  };
}
