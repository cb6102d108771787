// A tiny builder for transaction scenarios: readable defaults, per-terminal sequence numbers, times as
// offsets from T0, events kept in the order they are added (= arrival order).
import type { Heartbeat, Transaction, TxnKind, TxnStatus } from '@tillwatch/schemas';
import { heartbeatEventId } from '../../src/index.js';

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

export interface HeartbeatInput {
  /** Event time, ms after T0. */
  at: number;
  /** received_time - event_time (default 500 ms). */
  lag?: number;
  terminal?: string;
  merchant?: string;
  /** Default: the highest seq the builder has made for the terminal. */
  lastSeq?: number;
  queue?: number;
}

/** A heartbeat as a backtest line carries it, plus its evidence id (not written to the line). */
export interface HeartbeatLine extends Heartbeat {
  type: 'heartbeat';
  /** heartbeatEventId of it: what alerts name as evidence. */
  event_id: string;
}

export class Scenario {
  readonly events: (Transaction | HeartbeatLine)[] = [];
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

  /** A heartbeat (a `"type": "heartbeat"` line). */
  heartbeat(i: HeartbeatInput): HeartbeatLine {
    const terminal = i.terminal ?? 'T1';
    const merchant = i.merchant ?? 'M1';
    const et = T0 + i.at;
    const h: Heartbeat = {
      terminal_id: terminal,
      merchant_id: merchant,
      last_seq: i.lastSeq ?? this.seqs.get(`${merchant}/${terminal}`) ?? 0,
      queue_depth: i.queue ?? 0,
      event_time: et,
      received_time: et + (i.lag ?? 500),
    };
    const line: HeartbeatLine = { type: 'heartbeat', ...h, event_id: heartbeatEventId(h) };
    this.events.push(line);
    return line;
  }

  /** The same event delivered again (at-least-once delivery upstream). */
  again(t: Transaction): Transaction {
    this.events.push({ ...t });
    return t;
  }

  lines(): string[] {
    return this.events.map((e) => {
      if ((e as HeartbeatLine).type !== 'heartbeat') return JSON.stringify(e);
      const { event_id: _, ...line } = e as HeartbeatLine;
      return JSON.stringify(line);
    });
  }
}
