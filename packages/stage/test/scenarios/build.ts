// The stage's golden scenarios, built by code (so the story is readable) and written as JSON lines.
import type { Transaction } from '@tillwatch/schemas';

const MIN = 60_000;
/** 2025-01-06 09:00 UTC, on an hour boundary (the freeze window is epoch-aligned). */
const T0 = Date.UTC(2025, 0, 6, 9);

interface Builder {
  out: Transaction[];
  seq: Map<string, number>;
  n: number;
}

function txn(b: Builder, terminal: string, merchant: string, eventTime: number, receivedTime: number, extra: Partial<Transaction> = {}): Transaction {
  const seq = (b.seq.get(terminal) ?? 0) + 1;
  b.seq.set(terminal, seq);
  const id = ++b.n;
  const pad = String(id).padStart(5, '0');
  return {
    event_id: `ev-${pad}`,
    txn_id: `tx-${pad}`,
    kind: 'SALE',
    status: 'APPROVED',
    terminal_id: terminal,
    merchant_id: merchant,
    card_token: `tok_${(id * 7919) % 1000}`,
    amount_minor: 1000 + ((id * 37) % 2000),
    currency: 'EUR',
    terminal_seq: seq,
    original_txn_id: null,
    event_time: eventTime,
    received_time: receivedTime,
    ...extra,
  };
}

const byArrival = (a: Transaction, b: Transaction): number => a.received_time - b.received_time || (a.event_id < b.event_id ? -1 : 1);

/**
 * 40 terminals at 20 merchants (two each), a sale every 5 min from 09:00 to 12:30. At 10:00, 12 of
 * them (30 %: one per merchant at M00..M11) lose the host; they keep selling offline and each also
 * refunds two of its offline sales (T00 at M00: four). They reconnect between 10:40 and 10:44 and
 * upload the backlog refunds first, so every refund arrives before its sale (refund_without_sale:
 * FREEZE_TERMINAL): 26 proposed freezes in one hour, over the fleet cap (20) and over M00's cap (3).
 * T02's 09:52 sale never reaches us: the 09:57 one reveals the gap, which fires (sequence_gap, 30 min
 * timeout) at 10:27:02, before T02's late upload (10:40:21) opens the incident with the others: the
 * gap alert belongs to the incident too (role `before`).
 */
export function fleetOutage(): Transaction[] {
  const b: Builder = { out: [], seq: new Map(), n: 0 };
  const end = T0 + 210 * MIN;
  const outageStart = T0 + 60 * MIN;
  for (let i = 0; i < 40; i++) {
    const terminal = `T${String(i).padStart(2, '0')}`;
    const merchant = `M${String(Math.floor(i / 2)).padStart(2, '0')}`;
    const offline = i % 2 === 0 && i < 24;
    const reconnect = outageStart + 40 * MIN + (i / 2) * 20_000;
    const backlog: Transaction[] = [];
    for (let t = T0 + (i % 5) * MIN; t < end; t += 5 * MIN) {
      if (offline && t >= outageStart && t < reconnect) {
        backlog.push(txn(b, terminal, merchant, t, 0));
        continue;
      }
      b.out.push(txn(b, terminal, merchant, t, t + 2_000));
    }
    if (!offline) continue;
    const refunds = backlog.slice(0, i === 0 ? 4 : 2).map((s) => txn(b, terminal, merchant, s.event_time + 60_000, 0, { kind: 'REFUND', original_txn_id: s.txn_id, amount_minor: Math.floor(s.amount_minor / 2), card_token: s.card_token, terminal_seq: 0 }));
    // Refunds first, then the sales, 1 s apart: the upload burst.
    const upload = [...refunds, ...backlog];
    upload.forEach((t, k) => b.out.push({ ...t, received_time: reconnect + (k + 1) * 1_000 }));
  }
  // Sequence numbers in event order per terminal (refunds took a number after their sale's run).
  const bySeq = new Map<string, Transaction[]>();
  for (const t of b.out) bySeq.set(t.terminal_id, [...(bySeq.get(t.terminal_id) ?? []), t]);
  for (const list of bySeq.values()) {
    list.sort((x, y) => x.event_time - y.event_time || (x.event_id < y.event_id ? -1 : 1));
    list.forEach((t, k) => (t.terminal_seq = k + 1));
  }
  const lost = b.out.findIndex((t) => t.terminal_id === 'T02' && t.event_time === T0 + 52 * MIN);
  b.out.splice(lost, 1);
  return b.out.sort(byArrival);
}

/**
 * A normal day: 50 terminals at 25 merchants, a sale every 10 min from 08:00 to 20:00; every 40 min
 * a different terminal is offline for 30 min and uploads its backlog on reconnect: 15 unrelated
 * single-terminal episodes over 10 hours. No incident: never 10 terminals within 15 min.
 */
export function scatteredEpisodes(): Transaction[] {
  const b: Builder = { out: [], seq: new Map(), n: 0 };
  const start = T0 - 60 * MIN;
  const end = start + 12 * 60 * MIN;
  for (let i = 0; i < 50; i++) {
    const terminal = `T${String(i).padStart(2, '0')}`;
    const merchant = `M${String(Math.floor(i / 2)).padStart(2, '0')}`;
    const k = i % 3 === 0 && i < 45 ? i / 3 : -1; // terminals 0, 3, ..., 42: 15 of them
    const offFrom = k >= 0 ? start + 60 * MIN + k * 40 * MIN : Infinity;
    const offTo = offFrom + 30 * MIN;
    const backlog: Transaction[] = [];
    for (let t = start + (i % 10) * MIN; t < end; t += 10 * MIN) {
      if (t >= offFrom && t < offTo) {
        backlog.push(txn(b, terminal, merchant, t, 0));
        continue;
      }
      b.out.push(txn(b, terminal, merchant, t, t + 1_500));
    }
    backlog.forEach((t, j) => b.out.push({ ...t, received_time: offTo + (j + 1) * 1_000 }));
  }
  return b.out.sort(byArrival);
}

export const SCENARIOS = { fleet_outage: fleetOutage, scattered_episodes: scatteredEpisodes } as const;
