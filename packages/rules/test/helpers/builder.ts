// A tiny builder for transaction scenarios: readable defaults, per-terminal sequence numbers, times as
// offsets from T0, events kept in the order they are added (= arrival order).
import type { Transaction, TxnKind, TxnStatus } from '@tillwatch/schemas';

export const T0 = Date.UTC(2025, 0, 6, 9, 0, 0); // Monday 09:00 UTC
export const SEC = 1000;
export const MIN = 60 * SEC;
export const HOUR = 60 * MIN;

export interface TxnInput {
  /** Event time, ms after T0. */
  at: number;
  /** received_time - event_time (default 1.5 s); ignored when recvAt is given. */
  lag?: number;
  /** Received time, ms after T0. */
  recvAt?: number;
  kind?: TxnKind;
  status?: TxnStatus;
  terminal?: string;
  merchant?: string;
  card?: string;
  amount?: number;
  currency?: string;
  /** Default: the terminal's next sequence number. */
  seq?: number;
  txn?: string;
  orig?: string | null;
  id?: string;
}

export class Scenario {
  readonly events: Transaction[] = [];
  private readonly seqs = new Map<string, number>();
  private n = 0;

  constructor(readonly prefix = 'ev') {}

  add(i: TxnInput): Transaction {
    const n = ++this.n;
    const terminal = i.terminal ?? 'T1';
    const merchant = i.merchant ?? 'M1';
    const key = `${merchant}/${terminal}`;
    const seq = i.seq ?? (this.seqs.get(key) ?? 0) + 1;
    this.seqs.set(key, Math.max(seq, this.seqs.get(key) ?? 0));
    const et = T0 + i.at;
    const t: Transaction = {
      event_id: i.id ?? `${this.prefix}-${String(n).padStart(4, '0')}`,
      txn_id: i.txn ?? `tx-${String(n).padStart(4, '0')}`,
      kind: i.kind ?? 'SALE',
      status: i.status ?? 'APPROVED',
      terminal_id: terminal,
      merchant_id: merchant,
      card_token: i.card ?? 'tok_card_a',
      amount_minor: i.amount ?? 1250,
      currency: i.currency ?? 'EUR',
      terminal_seq: seq,
      original_txn_id: i.orig ?? null,
      event_time: et,
      received_time: i.recvAt !== undefined ? T0 + i.recvAt : et + (i.lag ?? 1500),
    };
    this.events.push(t);
    return t;
  }

  sale(i: TxnInput): Transaction {
    return this.add({ ...i, kind: 'SALE' });
  }

  refund(i: TxnInput & { of: string | null }): Transaction {
    return this.add({ ...i, kind: 'REFUND', orig: i.of });
  }

  void(i: TxnInput & { of: string }): Transaction {
    return this.add({ ...i, kind: i.kind ?? 'VOID', orig: i.of });
  }

  /** The same event delivered again (at-least-once delivery upstream). */
  again(t: Transaction): Transaction {
    this.events.push({ ...t });
    return t;
  }

  lines(): string[] {
    return this.events.map((e) => JSON.stringify(e));
  }
}
