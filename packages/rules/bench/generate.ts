// Seeded generator of a realistic POS stream in arrival order: a fleet of merchants and terminals,
// a card population, ordinary amount variation, declines, refunds and voids, plus sprinkled anomalies
// (duplicate charges, abnormal amounts, offline bursts, dropped and late sequence numbers, bad refunds).
// Used at scale by the benchmark and, with tiny cardinalities, by the property tests.
import type { Transaction } from '@tillwatch/schemas';
import { MinHeap } from '../src/heap.js';

export interface GenerateOptions {
  seed: number;
  events: number;
  merchants: number;
  terminals: number;
  cards: number;
  /** Fleet-wide mean time between transactions (event time), ms. */
  meanGapMs: number;
  start?: number;
  /** Probabilities per generated sale / event. */
  pDuplicate?: number;
  pAbnormal?: number;
  pOffline?: number;
  pDropSeq?: number;
  pLateSeq?: number;
  pRefund?: number;
  pBadRefund?: number;
  /** Share of refunds of a known sale paid to another card (default 0: draws no random number then). */
  pRefundOtherCard?: number;
  pVoid?: number;
  pDecline?: number;
  /** Offline episode length range, ms. */
  offlineMs?: [number, number];
  /** Receive-time jitter that can make received_time go backwards between terminals, ms. */
  jitterMs?: number;
  /** received_time is reported up to this much earlier than the arrival order implies (several gateways), ms. */
  receivedSkewMs?: number;
  /** A few distinct amounts per terminal (dense duplicate collisions in tests). */
  coarseAmounts?: boolean;
}

/**
 * The benchmark's stream (`npm run bench:rules`, and issue 12's reference input for the detector
 * against Kafka Streams: its first 1.2M events, seed 42, 3,000 terminals).
 */
export const BENCH_STREAM: Readonly<GenerateOptions> = { seed: 42, events: 1_200_000, merchants: 1000, terminals: 3000, cards: 300_000, meanGapMs: 100 };

/** mulberry32: tiny, fast, deterministic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Term {
  id: string;
  merchant: number;
  seq: number;
  typical: number;
  offlineUntil: number;
  /** Upload queue position while offline (received times are staggered at reconnect). */
  queued: number;
}

interface Pending {
  recv: number;
  order: number;
  t: Transaction;
}

export function* generateEvents(o: GenerateOptions): Generator<Transaction> {
  const rnd = prng(o.seed);
  const start = o.start ?? Date.UTC(2025, 0, 6, 8, 0, 0);
  const pDup = o.pDuplicate ?? 0.002;
  const pAbn = o.pAbnormal ?? 0.0005;
  const pOff = o.pOffline ?? 0.00002;
  const pDrop = o.pDropSeq ?? 0.0002;
  const pLateSeq = o.pLateSeq ?? 0.0005;
  const pRefund = o.pRefund ?? 0.02;
  const pBadRefund = o.pBadRefund ?? 0.0005;
  const pOtherCard = o.pRefundOtherCard ?? 0;
  const pVoid = o.pVoid ?? 0.005;
  const pDecline = o.pDecline ?? 0.04;
  const [offMin, offMax] = o.offlineMs ?? [30 * 60_000, 5 * 3600_000];
  const jitter = o.jitterMs ?? 3000;
  const skew = o.receivedSkewMs ?? 0;

  const terms: Term[] = [];
  for (let i = 0; i < o.terminals; i++) {
    const typical = o.coarseAmounts ? 1000 : Math.round(300 * Math.exp(rnd() * 3)); // 3.00 .. 60.00 in minor units
    terms.push({ id: `T${String(i).padStart(5, '0')}`, merchant: i % o.merchants, seq: 1 + Math.floor(rnd() * 1000), typical, offlineUntil: 0, queued: 0 });
  }
  const merchantIds = Array.from({ length: o.merchants }, (_, i) => `M${String(i).padStart(4, '0')}`);
  const termsOf: Term[][] = merchantIds.map(() => []);
  for (const t of terms) termsOf[t.merchant]!.push(t);
  const cardIds = Array.from({ length: o.cards }, (_, i) => `tok_${(i * 2654435761 >>> 0).toString(36)}${i.toString(36)}`);
  // Recent approved sales per merchant, for refunds and voids.
  const recent: { txn: string; amount: number; card: string; term: Term; et: number }[][] = merchantIds.map(() => []);

  const heap = new MinHeap<Pending>((a, b) => a.recv < b.recv || (a.recv === b.recv && a.order < b.order));
  // Retries and duplicates happen later at the till: they get their terminal_seq when their time comes.
  type Later = { at: number; order: number; term: Term; t: Parameters<typeof schedule>[1] };
  const future = new MinHeap<Later>((a, b) => a.at < b.at || (a.at === b.at && a.order < b.order));
  const later = (term: Term, t: Later['t']): void => future.push({ at: t.event_time, order: order++, term, t });
  let order = 0;
  let txnN = 0;
  let now = start;
  let emitted = 0;
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const eventId = (): string => {
    const n = order.toString(16).padStart(12, '0');
    return `${(o.seed >>> 0).toString(16).padStart(8, '0')}-0000-4000-8000-${n}`;
  };

  const schedule = (term: Term, t: Omit<Transaction, 'event_id' | 'terminal_seq' | 'received_time' | 'terminal_id' | 'merchant_id'>, opts?: { dropSeq?: boolean; lateBy?: number }): void => {
    if (opts?.dropSeq) term.seq++; // a transaction the terminal never uploads
    const seq = term.seq++;
    let recv: number;
    if (t.event_time < term.offlineUntil) recv = term.offlineUntil + 50 * term.queued++;
    else recv = t.event_time + 200 + Math.floor(rnd() * jitter);
    if (opts?.lateBy) recv += opts.lateBy;
    const full: Transaction = {
      event_id: eventId(),
      txn_id: t.txn_id,
      kind: t.kind,
      status: t.status,
      terminal_id: term.id,
      merchant_id: merchantIds[term.merchant]!,
      card_token: t.card_token,
      amount_minor: t.amount_minor,
      currency: t.currency,
      terminal_seq: seq,
      original_txn_id: t.original_txn_id,
      event_time: t.event_time,
      received_time: skew > 0 ? recv - Math.floor(rnd() * skew) : recv,
    };
    heap.push({ recv, order: order++, t: full });
  };

  while (emitted < o.events) {
    now += Math.max(1, Math.round(-Math.log(1 - rnd()) * o.meanGapMs));
    while (future.size > 0 && future.peek()!.at <= now) {
      const f = future.pop()!;
      schedule(f.term, f.t);
    }
    const term = pick(terms);
    if (term.offlineUntil <= now && rnd() < pOff) {
      term.offlineUntil = now + offMin + Math.floor(rnd() * (offMax - offMin));
      term.queued = 0;
    }
    const mIdx = term.merchant;
    const r = rnd();
    const txn = `tx${(++txnN).toString(36)}`;
    const base = { currency: 'EUR', original_txn_id: null as string | null, event_time: now };
    const seqOpts = { dropSeq: rnd() < pDrop, lateBy: rnd() < pLateSeq ? 60_000 + Math.floor(rnd() * 10 * 60_000) : 0 };
    const rec = recent[mIdx]!;
    if (r < pRefund && rec.length > 0) {
      const s = pick(rec);
      const exceed = rnd() < pBadRefund * 50;
      const amount = exceed ? s.amount + 1 + Math.floor(rnd() * s.amount) : Math.max(1, Math.floor(s.amount * (rnd() < 0.5 ? 1 : rnd())));
      const at = pick(termsOf[mIdx]!); // refunds often happen at another till
      schedule(at, { ...base, txn_id: txn, kind: 'REFUND', status: 'APPROVED', card_token: pOtherCard > 0 && rnd() < pOtherCard ? pick(cardIds) : s.card, amount_minor: amount, original_txn_id: s.txn }, seqOpts);
    } else if (r < pRefund + pBadRefund) {
      schedule(term, { ...base, txn_id: txn, kind: 'REFUND', status: 'APPROVED', card_token: pick(cardIds), amount_minor: 500 + Math.floor(rnd() * 5000), original_txn_id: `tx_unknown_${txn}` }, seqOpts);
    } else if (r < pRefund + pBadRefund + pVoid && rec.length > 0) {
      const s = rec[rec.length - 1]!;
      schedule(s.term, { ...base, txn_id: txn, kind: rnd() < 0.5 ? 'VOID' : 'REVERSAL', status: 'APPROVED', card_token: s.card, amount_minor: s.amount, original_txn_id: s.txn }, seqOpts);
    } else {
      const card = pick(cardIds);
      let amount = o.coarseAmounts ? pick([500, 1000, 1500, 2000]) : Math.max(1, Math.round(term.typical * Math.exp((rnd() * 2 - 1) * 1.0)));
      if (rnd() < pAbn) amount = term.typical * (12 + Math.floor(rnd() * 30));
      const declined = rnd() < pDecline;
      const status = declined ? (rnd() < 0.8 ? 'DECLINED' : 'TIMEOUT') : 'APPROVED';
      schedule(term, { ...base, txn_id: txn, kind: 'SALE', status, card_token: card, amount_minor: amount }, seqOpts);
      if (declined && rnd() < 0.7) {
        // The cashier retries; a declined or timed-out first attempt is normal, not a duplicate.
        const at = now + 20_000 + Math.floor(rnd() * 60_000);
        later(term, { ...base, event_time: at, txn_id: `${txn}r`, kind: 'SALE', status: 'APPROVED', card_token: card, amount_minor: amount });
      } else if (!declined) {
        rec.push({ txn, amount, card, term, et: now });
        if (rec.length > 50) rec.shift();
        if (rnd() < pDup) {
          const other = rnd() < 0.5 ? term : pick(termsOf[mIdx]!);
          const at = now + 15_000 + Math.floor(rnd() * 5 * 60_000);
          later(other, { ...base, event_time: at, txn_id: `${txn}d`, kind: 'SALE', status: 'APPROVED', card_token: card, amount_minor: amount });
        }
      }
    }
    while (heap.size > 0 && heap.peek()!.recv <= now && emitted < o.events) {
      emitted++;
      yield heap.pop()!.t;
    }
  }
}
