// Contract-level validation shared by the backtest reader and the live detector, so a record that
// the backtest rejects is exactly the record the detector sends to the DLQ.
import { TxnKindValues, TxnStatusValues, type Heartbeat, type Transaction } from './generated.js';
import { redactPans } from './pan.js';

/** One problem with one field. ClockSkew: the event claims to be from the future of its arrival. */
export interface ValidationIssue {
  field: string;
  problem: string;
  errorClass: 'InvalidValue' | 'ClockSkew';
}

/**
 * A value that breaks the contract. Names EVERY failing field (`issues`), not only the first.
 * `errorClass` is the DLQ's error_class: ClockSkew when clock skew is the only problem, otherwise
 * InvalidValue.
 */
export class InvalidValueError extends Error {
  override readonly name = 'InvalidValueError';
  readonly issues: ValidationIssue[];
  constructor(fieldOrIssues: string | ValidationIssue[], message?: string) {
    const issues = typeof fieldOrIssues === 'string' ? [{ field: fieldOrIssues, problem: message ?? 'invalid', errorClass: 'InvalidValue' as const }] : fieldOrIssues;
    super(issues.map((i) => `${i.field}: ${i.problem}`).join('; '));
    this.issues = issues;
  }
  /** The first failing field. */
  get field(): string {
    return this.issues[0]?.field ?? '(record)';
  }
  get errorClass(): 'InvalidValue' | 'ClockSkew' {
    return this.issues.every((i) => i.errorClass === 'ClockSkew') ? 'ClockSkew' : 'InvalidValue';
  }
}

export interface ValidateOptions {
  /** An event_time more than this after its received_time is clock skew (ms). Default DEFAULT_MAX_CLOCK_SKEW_MS. */
  maxClockSkewMs?: number;
  /**
   * Live input only: the checking process's wall clock (ms). A received_time more than maxClockSkewMs
   * after it is clock skew too: received_time is the platform's own stamp, and one from the future
   * would move the stream clock (max received_time) of every merchant of its partition, for good.
   * Absent in the backtest, which reads history.
   */
  nowMs?: number;
}

/** 1 hour: a till's clock may run a little ahead of the platform's, not a day. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 60 * 60 * 1000;
/** Times before 2000-01-01 are no POS transaction of this platform (a zero, a seconds-not-millis value, a dead RTC battery). */
export const MIN_EPOCH_MS = Date.UTC(2000, 0, 1);
/** Times from 2200 on are absurd (and near the end of ClickHouse's DateTime64 range, 2299). */
export const MAX_EPOCH_MS = Date.UTC(2200, 0, 1);

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const CURRENCY = /^[A-Z]{3}$/;
// A card token must not look like a PAN (13-19 digits): a raw card number is never accepted.
const PAN_LIKE = /^\d{13,19}$/;
// A bad value is echoed in the reason, which goes to rejects files, dead letters and logs: never a PAN.
const show = (v: unknown): string => redactPans(JSON.stringify(v) ?? 'undefined');
const iso = (ms: number): string => new Date(ms).toISOString();
const STRING_FIELDS = ['event_id', 'txn_id', 'terminal_id', 'merchant_id', 'card_token', 'currency'] as const;

function add(issues: ValidationIssue[] | undefined, field: string, problem: string, errorClass: ValidationIssue['errorClass'] = 'InvalidValue'): ValidationIssue[] {
  const list = issues ?? [];
  list.push({ field, problem, errorClass });
  return list;
}

function timeProblem(t: unknown): string {
  if (!isInt(t) || t <= 0) return `expected epoch milliseconds (integer), got ${show(t)}`;
  return `${t} (${iso(t)}) is outside ${iso(MIN_EPOCH_MS).slice(0, 10)} .. ${iso(MAX_EPOCH_MS).slice(0, 10)}`;
}

function formatDuration(ms: number): string {
  const unit = ms >= 3_600_000 ? [3_600_000, 'h'] as const : ms >= 60_000 ? [60_000, 'min'] as const : [1000, 's'] as const;
  return `${Number((ms / unit[0]).toFixed(2))} ${unit[1]}`;
}

/**
 * Checks a decoded value (from Avro or JSON lines) against the transaction contract and returns
 * it typed. Unknown fields are ignored (forward-compatible readers); missing or wrong ones throw
 * one InvalidValueError naming every failing field. Times are bounded: 2000 <= t < 2200, and
 * event_time at most `maxClockSkewMs` after received_time (ClockSkew).
 */
export function validateTransaction(v: unknown, o?: ValidateOptions): Transaction {
  const r = transactionRecord(v, o);
  // A REFUND without original_txn_id is valid input: refund_without_sale judges it, not the decoder.
  return {
    event_id: r.event_id as string,
    txn_id: r.txn_id as string,
    kind: r.kind as Transaction['kind'],
    status: r.status as Transaction['status'],
    terminal_id: r.terminal_id as string,
    merchant_id: r.merchant_id as string,
    card_token: r.card_token as string,
    amount_minor: r.amount_minor as number,
    currency: r.currency as string,
    terminal_seq: r.terminal_seq as number,
    original_txn_id: (r.original_txn_id ?? null) as string | null,
    event_time: r.event_time as number,
    received_time: r.received_time as number,
  };
}

/**
 * validateTransaction's checks for a value that has the contract's shape already, because an Avro
 * reader of the transaction schema decoded it (its record holds exactly the contract's fields):
 * returns the value itself instead of a copy (the detector's hot path: one object less per event).
 */
export function checkTransaction(v: Transaction, o?: ValidateOptions): Transaction {
  transactionRecord(v, o);
  return v;
}

/** The contract's checks; throws one InvalidValueError naming every failing field. No allocation unless something is wrong. */
function transactionRecord(v: unknown, o: ValidateOptions | undefined): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidValueError('(record)', 'expected an object');
  const r = v as Record<string, unknown>;
  let issues: ValidationIssue[] | undefined;
  for (let i = 0; i < STRING_FIELDS.length; i++) {
    const f = STRING_FIELDS[i]!;
    if (!nonEmpty(r[f])) issues = add(issues, f, `expected a non-empty string, got ${show(r[f])}`);
  }
  if (!(TxnKindValues as readonly unknown[]).includes(r.kind)) issues = add(issues, 'kind', `expected one of ${TxnKindValues.join(', ')}, got ${show(r.kind)}`);
  if (!(TxnStatusValues as readonly unknown[]).includes(r.status)) issues = add(issues, 'status', `expected one of ${TxnStatusValues.join(', ')}, got ${show(r.status)}`);
  if (!isInt(r.amount_minor) || r.amount_minor < 0) issues = add(issues, 'amount_minor', `expected a non-negative integer, got ${show(r.amount_minor)}`);
  if (nonEmpty(r.currency) && !CURRENCY.test(r.currency)) issues = add(issues, 'currency', `expected an ISO 4217 code like EUR, got ${show(r.currency)}`);
  if (nonEmpty(r.card_token) && PAN_LIKE.test(r.card_token)) issues = add(issues, 'card_token', 'looks like a raw card number (PAN); only tokens are accepted');
  if (!isInt(r.terminal_seq) || r.terminal_seq < 0) issues = add(issues, 'terminal_seq', `expected a non-negative integer, got ${show(r.terminal_seq)}`);
  issues = checkTimes(r, o, issues);
  const orig = r.original_txn_id ?? null;
  if (orig !== null && !nonEmpty(orig)) issues = add(issues, 'original_txn_id', 'expected null or a non-empty string');
  if (issues !== undefined) throw new InvalidValueError(issues);
  return r;
}

/**
 * event_time and received_time: integers within [2000, 2200), and event_time at most
 * `maxClockSkewMs` after received_time (ClockSkew); with `nowMs` (live input), received_time at most
 * `maxClockSkewMs` after it (ClockSkew). Shared by transactions and heartbeats.
 */
function checkTimes(r: Record<string, unknown>, o: ValidateOptions | undefined, issues: ValidationIssue[] | undefined): ValidationIssue[] | undefined {
  const et = r.event_time;
  const rt = r.received_time;
  const etOk = isInt(et) && et >= MIN_EPOCH_MS && et < MAX_EPOCH_MS;
  const rtOk = isInt(rt) && rt >= MIN_EPOCH_MS && rt < MAX_EPOCH_MS;
  if (!etOk) issues = add(issues, 'event_time', timeProblem(et));
  if (!rtOk) issues = add(issues, 'received_time', timeProblem(rt));
  const maxSkew = o?.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if (etOk && rtOk) {
    const ahead = et - rt;
    if (ahead > maxSkew) issues = add(issues, 'event_time', `${iso(et)} is ${formatDuration(ahead)} after received_time ${iso(rt)} (max clock skew ${formatDuration(maxSkew)})`, 'ClockSkew');
  }
  if (rtOk && o?.nowMs !== undefined) {
    const ahead = rt - o.nowMs;
    if (ahead > maxSkew) issues = add(issues, 'received_time', `${iso(rt)} is ${formatDuration(ahead)} ahead of this process's clock ${iso(o.nowMs)} (max clock skew ${formatDuration(maxSkew)}): a received_time from the future would move the stream clock of its whole partition`, 'ClockSkew');
  }
  return issues;
}

/** Avro `int` (queue_depth). */
const INT32_MAX = 2 ** 31 - 1;

/**
 * Checks a decoded heartbeat (Avro, or a JSON line with `"type": "heartbeat"`) against the heartbeat
 * contract and returns it typed (only the contract's fields: a JSON line's `type` is dropped). Same
 * rules as validateTransaction: every failing field named, times bounded, event_time at most
 * `maxClockSkewMs` after received_time (ClockSkew). last_seq and queue_depth are non-negative integers.
 */
export function validateHeartbeat(v: unknown, o?: ValidateOptions): Heartbeat {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidValueError('(record)', 'expected an object');
  const r = v as Record<string, unknown>;
  let issues: ValidationIssue[] | undefined;
  if (!nonEmpty(r.terminal_id)) issues = add(issues, 'terminal_id', `expected a non-empty string, got ${show(r.terminal_id)}`);
  if (!nonEmpty(r.merchant_id)) issues = add(issues, 'merchant_id', `expected a non-empty string, got ${show(r.merchant_id)}`);
  if (!isInt(r.last_seq) || r.last_seq < 0) issues = add(issues, 'last_seq', `expected a non-negative integer, got ${show(r.last_seq)}`);
  if (!isInt(r.queue_depth) || r.queue_depth < 0 || r.queue_depth > INT32_MAX) issues = add(issues, 'queue_depth', `expected a non-negative 32-bit integer, got ${show(r.queue_depth)}`);
  issues = checkTimes(r, o, issues);
  if (issues !== undefined) throw new InvalidValueError(issues);
  return {
    terminal_id: r.terminal_id as string,
    merchant_id: r.merchant_id as string,
    last_seq: r.last_seq as number,
    queue_depth: r.queue_depth as number,
    event_time: r.event_time as number,
    received_time: r.received_time as number,
  };
}
