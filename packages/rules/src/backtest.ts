// The pure part of `tillwatch backtest`: JSON lines in arrival order -> engine -> alerts, actions and
// rejects. File reading, writing, timing and the progress bar live in scripts/backtest.ts.
import { InvalidValueError, redactPans, validateHeartbeat, validateTransaction, type Action, type ActionKind, type Alert, type AlertUpdate, type Heartbeat, type RefundReason, type Transaction } from '@tillwatch/schemas';
import { RULE_IDS, type RuleId, type RulesConfig } from './config.js';
import { createRuleEngine } from './engine.js';
import type { EngineOptions, EngineOutput, EngineStats, RuleEngine } from './types.js';

/** A line that is not a valid transaction: never fatal, never silently dropped. */
export interface RejectedLine {
  /** 1-based line number in the input. */
  line: number;
  reason: string;
  /** The line as read, with anything that looks like a card number (PAN) masked. */
  raw: string;
}

export interface BacktestSummary {
  /** Non-blank input lines. */
  linesRead: number;
  /** Empty or whitespace-only lines, skipped (counted, not rejected). */
  blankLines: number;
  eventsProcessed: number;
  /** Of eventsProcessed: heartbeats (lines with "type": "heartbeat"). */
  heartbeats: number;
  rejected: number;
  alerts: number;
  alertsByRule: Record<RuleId, number>;
  actions: number;
  actionsByKind: Partial<Record<ActionKind, number>>;
  /** Engine clock at the end (latest received time). */
  clock: number;
  durationMs: number;
  /** Non-blank lines per second of durationMs. */
  eventsPerSecond: number;
  state: EngineStats;
}

/** One input of the engine: a transaction, or a heartbeat (a line with `"type": "heartbeat"`). */
export type BacktestInput = Transaction | Heartbeat;

/** A heartbeat among backtest inputs (only heartbeats have a queue_depth). */
export const isHeartbeat = (x: BacktestInput): x is Heartbeat => (x as Heartbeat).queue_depth !== undefined;

export interface Backtest {
  readonly engine: RuleEngine;
  /**
   * Parses and validates one line (without its newline): the transaction or heartbeat, a reject, or
   * null for a blank line. Counted in the summary.
   */
  parse(text: string, lineNo: number): BacktestInput | RejectedLine | null;
  /**
   * Validates a value already decoded from a line (the byte-level fast path): the transaction, the
   * heartbeat (`"type": "heartbeat"`, checked against the heartbeat contract) or a reject. `raw`
   * gives the line text, only needed for a reject.
   */
  validate(value: unknown, lineNo: number, raw: () => string): BacktestInput | RejectedLine;
  /** Runs a parsed transaction or heartbeat through the engine (in input order) and counts what fired. */
  apply(t: BacktestInput): EngineOutput;
  /** parse + apply for one line. */
  line(text: string, lineNo: number): EngineOutput | RejectedLine;
  summary(durationMs: number): BacktestSummary;
}

export const isRejected = (r: EngineOutput | BacktestInput | RejectedLine): r is RejectedLine => (r as RejectedLine).reason !== undefined;

/** Masks card-number-like values in a raw line before it is written anywhere (a PAN is never stored); from @tillwatch/schemas. */
export { redactPans };

const MAX_RAW = 4096;

export function createBacktest(config: RulesConfig, options: EngineOptions = {}): Backtest {
  const engine = createRuleEngine(config, options);
  // The detector validates with the same bound (schemas/src/validate.ts, shared).
  const validateOptions = { maxClockSkewMs: config.engine.max_clock_skew };
  let linesRead = 0;
  let blankLines = 0;
  let processed = 0;
  let heartbeats = 0;
  let rejected = 0;
  let alerts = 0;
  let actions = 0;
  const alertsByRule = Object.fromEntries(RULE_IDS.map((r) => [r, 0])) as Record<RuleId, number>;
  const actionsByKind: Partial<Record<ActionKind, number>> = {};

  const reject = (lineNo: number, reason: string, text: string): RejectedLine => {
    rejected++;
    text = text.trimEnd();
    const raw = redactPans(text.length > MAX_RAW ? `${text.slice(0, MAX_RAW)}...[truncated, ${text.length} chars]` : text);
    return { line: lineNo, reason: redactPans(reason), raw };
  };

  const validate = (v: unknown, lineNo: number, raw: () => string): BacktestInput | RejectedLine => {
    // Any line whose "type" is "heartbeat" is a heartbeat (validated as one); any other a transaction.
    if (typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'heartbeat') {
      try {
        const h = validateHeartbeat(v, validateOptions);
        processed++;
        heartbeats++;
        return h;
      } catch (e) {
        if (e instanceof InvalidValueError) return reject(lineNo, `${e.errorClass === 'ClockSkew' ? 'ClockSkew' : 'invalid heartbeat'}: ${e.message}`, raw());
        throw e;
      }
    }
    try {
      const t = validateTransaction(v, validateOptions);
      processed++;
      return t;
    } catch (e) {
      // The detector dead-letters the same records with error_class e.errorClass.
      if (e instanceof InvalidValueError) return reject(lineNo, `${e.errorClass === 'ClockSkew' ? 'ClockSkew' : 'invalid transaction'}: ${e.message}`, raw());
      throw e;
    }
  };

  const parse = (text: string, lineNo: number): BacktestInput | RejectedLine | null => {
    // JSON.parse accepts surrounding whitespace (and a CR from CRLF files); only all-blank lines are skipped.
    const c0 = text.charCodeAt(0);
    if (text.length === 0 || ((c0 === 32 || c0 === 9 || c0 === 13) && text.trim().length === 0)) {
      blankLines++;
      return null;
    }
    linesRead++;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      return reject(lineNo, `invalid JSON: ${(e as Error).message}`, text);
    }
    return validate(v, lineNo, () => text);
  };

  const apply = (t: BacktestInput): EngineOutput => {
    const out = isHeartbeat(t) ? engine.onHeartbeat(t) : engine.onTransaction(t);
    if (out.alerts.length > 0) {
      alerts += out.alerts.length;
      for (const a of out.alerts) alertsByRule[a.rule as RuleId]++;
      actions += out.actions.length;
      for (const a of out.actions) actionsByKind[a.kind] = (actionsByKind[a.kind] ?? 0) + 1;
    }
    return out;
  };

  return {
    engine,
    parse,
    validate(v, lineNo, raw) {
      linesRead++;
      return validate(v, lineNo, raw);
    },
    apply,
    line(text, lineNo) {
      const r = parse(text, lineNo);
      if (r === null) return EMPTY;
      if (isRejected(r)) return r;
      return apply(r);
    },
    summary(durationMs) {
      return {
        linesRead,
        blankLines,
        eventsProcessed: processed,
        heartbeats,
        rejected,
        alerts,
        alertsByRule: { ...alertsByRule },
        actions,
        actionsByKind: { ...actionsByKind },
        clock: engine.clock(),
        durationMs,
        eventsPerSecond: durationMs > 0 ? Math.round((linesRead * 1000) / durationMs) : 0,
        state: engine.stats(),
      };
    },
  };
}

const EMPTY: EngineOutput = Object.freeze({ alerts: Object.freeze([]) as unknown as Alert[], actions: Object.freeze([]) as unknown as Action[], shadowAlerts: Object.freeze([]) as unknown as Alert[] });

/** Runs a whole input held in memory (tests, small files): every alert, action, update, refund reason and reject in order. */
export function backtestLines(
  lines: Iterable<string>,
  config: RulesConfig,
): { alerts: Alert[]; actions: Action[]; updates: AlertUpdate[]; refundReasons: RefundReason[]; rejects: RejectedLine[]; summary: BacktestSummary } {
  const bt = createBacktest(config);
  const alerts: Alert[] = [];
  const actions: Action[] = [];
  const updates: AlertUpdate[] = [];
  const refundReasons: RefundReason[] = [];
  const rejects: RejectedLine[] = [];
  let n = 0;
  for (const l of lines) {
    const r = bt.line(l, ++n);
    if (isRejected(r)) rejects.push(r);
    else {
      if (r.alerts.length > 0) {
        alerts.push(...r.alerts);
        actions.push(...r.actions);
      }
      if (r.updates !== undefined) updates.push(...r.updates);
      if (r.refundReasons !== undefined) refundReasons.push(...r.refundReasons);
    }
  }
  return { alerts, actions, updates, refundReasons, rejects, summary: bt.summary(0) };
}
