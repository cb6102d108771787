// Contract-level validation shared by the backtest reader and the live detector, so a record that
// the backtest rejects is exactly the record the detector sends to the DLQ.
import { TxnKindValues, TxnStatusValues, type Transaction } from './generated.js';

export class InvalidValueError extends Error {
  override readonly name = 'InvalidValueError';
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const CURRENCY = /^[A-Z]{3}$/;
// A card token must not look like a PAN (13-19 digits): a raw card number is never accepted.
const PAN_LIKE = /^\d{13,19}$/;

/**
 * Checks a decoded value (from Avro or JSON lines) against the transaction contract and returns
 * it typed. Unknown fields are ignored (forward-compatible readers); missing or wrong ones throw
 * InvalidValueError naming the field.
 */
export function validateTransaction(v: unknown): Transaction {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidValueError('(record)', 'expected an object');
  const r = v as Record<string, unknown>;
  for (const f of ['event_id', 'txn_id', 'terminal_id', 'merchant_id', 'card_token', 'currency'] as const) {
    if (!nonEmpty(r[f])) throw new InvalidValueError(f, `expected a non-empty string, got ${JSON.stringify(r[f]) ?? 'undefined'}`);
  }
  if (!(TxnKindValues as readonly unknown[]).includes(r.kind)) throw new InvalidValueError('kind', `expected one of ${TxnKindValues.join(', ')}, got ${JSON.stringify(r.kind) ?? 'undefined'}`);
  if (!(TxnStatusValues as readonly unknown[]).includes(r.status)) throw new InvalidValueError('status', `expected one of ${TxnStatusValues.join(', ')}, got ${JSON.stringify(r.status) ?? 'undefined'}`);
  if (!isInt(r.amount_minor) || r.amount_minor < 0) throw new InvalidValueError('amount_minor', `expected a non-negative integer, got ${JSON.stringify(r.amount_minor) ?? 'undefined'}`);
  if (!CURRENCY.test(r.currency as string)) throw new InvalidValueError('currency', `expected an ISO 4217 code like EUR, got ${JSON.stringify(r.currency)}`);
  if (PAN_LIKE.test(r.card_token as string)) throw new InvalidValueError('card_token', 'looks like a raw card number (PAN); only tokens are accepted');
  if (!isInt(r.terminal_seq) || r.terminal_seq < 0) throw new InvalidValueError('terminal_seq', `expected a non-negative integer, got ${JSON.stringify(r.terminal_seq) ?? 'undefined'}`);
  for (const f of ['event_time', 'received_time'] as const) {
    if (!isInt(r[f]) || (r[f] as number) <= 0) throw new InvalidValueError(f, `expected epoch milliseconds (integer), got ${JSON.stringify(r[f]) ?? 'undefined'}`);
  }
  const orig = r.original_txn_id ?? null;
  if (orig !== null && !nonEmpty(orig)) throw new InvalidValueError('original_txn_id', 'expected null or a non-empty string');
  // A REFUND without original_txn_id is valid input: refund_without_sale judges it, not the decoder.
  return {
    event_id: r.event_id as string,
    txn_id: r.txn_id as string,
    kind: r.kind as Transaction['kind'],
    status: r.status as Transaction['status'],
    terminal_id: r.terminal_id as string,
    merchant_id: r.merchant_id as string,
    card_token: r.card_token as string,
    amount_minor: r.amount_minor,
    currency: r.currency as string,
    terminal_seq: r.terminal_seq,
    original_txn_id: orig as string | null,
    event_time: r.event_time as number,
    received_time: r.received_time as number,
  };
}
