// A simulated fleet of POS terminals: ordinary traffic plus injected anomalies of every rule.
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
}

interface TerminalState {
  id: string;
  merchant: string;
  currency: string;
  seq: number;
  median: number;
  recentSales: { txn: string; amount: number; card: string }[];
}

export interface Fleet {
  /** Next batch of events at wall/stream time `now` (one scenario: 1 event, or a few for anomalies). */
  next(now: number): Transaction[];
  heartbeats(now: number): Heartbeat[];
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
      terminals.push({ id: `T${String(terminals.length).padStart(7, '0')}`, merchant, currency, seq: 0, median, recentSales: [] });
    }
  }
  const anomalies = o.anomalies ?? ANOMALIES;
  const stats = { normal: 0, duplicate_charge: 0, abnormal_amount: 0, sync_lag: 0, sequence_gap: 0, refund_without_sale: 0, refund_exceeds_sale: 0 } as Record<Anomaly | 'normal', number>;
  let txnCounter = 0;

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
    if (r < 0.06 && t.recentSales.length > 0) {
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
    next(now) {
      const t = rnd.pick(terminals);
      if (anomalies.length > 0 && rnd.chance(o.anomalyRate ?? 0.002)) {
        const kind = rnd.pick(anomalies);
        stats[kind]++;
        return scenario(kind, t, now);
      }
      stats.normal++;
      return ordinary(t, now);
    },
    heartbeats(now) {
      return terminals.map((t) => ({ terminal_id: t.id, merchant_id: t.merchant, last_seq: t.seq, queue_depth: 0, event_time: now - 100, received_time: now }));
    },
  };
}
