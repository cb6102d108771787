// refund_velocity: the APPROVED REFUND that makes `count` approved refunds at one terminal within
// `window` of event time; then silent for that terminal until `window` after the refund that fired.
// State per terminal (in the instance, by terminal slot): the refunds within window + allowed lateness
// of the latest one, and the silence end, written with the terminal's changelog value. See README.md.
import { formatMoney, type Transaction } from '@tillwatch/schemas';
import { MIN, duration, num } from '../../fields.js';
import { fmtDuration } from '../../format.js';
import { BySlot } from '../../storage/by-slot.js';
import { hashString } from '../../store.js';
import { fieldKeys, type StateWriter } from '../../state-writer.js';
import type { EngineCore, RuleCommon, RuleDefinition, RuleInstance, TerminalState, Variant } from '../types.js';

/** Changelog fields (TerminalSnapshot `refund_velocity`). */
const K = fieldKeys('refund_velocity', 'ets', 'ids', 'silent_until');

export interface RefundVelocityConfig extends RuleCommon {
  /** This many approved refunds at one terminal within `window` fire (the one that makes the count). */
  count: number;
  /** Event-time window (ms), edges included. */
  window: number;
}

interface VelocityState {
  /** Refunds (event time, event id), ordered by event time then id, within `window` + allowed lateness of the latest. */
  ets: number[];
  ids: string[];
  /**
   * hashString of each id (same order), so that looking for a redelivered id compares numbers and
   * reads a stored id (an old event's string, rarely in cache) only when its hash matches. Built
   * lazily: absent or short after a restore (readTerminal restores ets and ids only).
   */
  hs?: number[];
  /** No alert for refunds with an event time before this (the last firing refund's + window). */
  silentUntil: number;
}

const ID_SEED = 0x5bd1e995;

/** The hashes of s.ids, (re)built when missing (a restored state). */
function idHashes(s: VelocityState): number[] {
  let hs = s.hs;
  if (hs === undefined || hs.length !== s.ids.length) {
    hs = s.hs = [];
    for (let k = 0; k < s.ids.length; k++) hs.push(hashString(s.ids[k]!, ID_SEED));
  }
  return hs;
}

/** Per-terminal state lives in the instance, in a dense array indexed by the terminal's slot (null = none). */
class RefundVelocity implements RuleInstance {
  readonly def = refundVelocity;
  private readonly states = new BySlot<VelocityState>();
  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {}

  onRefund(term: TerminalState, t: Transaction): void {
    const p = term.rules[this.variant]!.refund_velocity;
    let s = this.states.get(term.slot);
    if (s === null) this.states.set(term.slot, (s = { ets: [], ids: [], hs: [], silentUntil: -Infinity }));
    const et = t.event_time;
    const id = t.event_id;
    // A refund without original_txn_id delivered twice reaches onRefund twice (the ledger cannot tell): count it once.
    const hs = idHashes(s);
    const h = hashString(id, ID_SEED);
    for (let k = 0; k < hs.length; k++) if (hs[k] === h && s.ids[k] === id) return;
    // Insert in (event time, event id) order: arrival order never decides.
    let i = s.ets.length;
    while (i > 0 && (s.ets[i - 1]! > et || (s.ets[i - 1] === et && s.ids[i - 1]! > id))) i--;
    s.ets.splice(i, 0, et);
    s.ids.splice(i, 0, id);
    hs.splice(i, 0, h);
    // Forget what no refund still within the allowed lateness of the latest one can reach in its
    // window: a refund arriving up to allowed_lateness behind the latest sees its whole window, so the
    // result does not depend on arrival order (one arriving later than that may miss older ones).
    const keepFrom = s.ets[s.ets.length - 1]! - p.window - this.core.lateness;
    let drop = 0;
    while (drop < s.ets.length && s.ets[drop]! < keepFrom) drop++;
    if (drop > 0) {
      s.ets.splice(0, drop);
      s.ids.splice(0, drop);
      hs.splice(0, drop);
    }
    this.core.markTerminal(term);
    if (!p.enabled || et < s.silentUntil) return;
    const from = et - p.window;
    const evidence: string[] = [];
    let first = et;
    for (let k = 0; k < s.ets.length; k++) {
      const e = s.ets[k]!;
      if (e < from || e > et) continue;
      evidence.push(s.ids[k]!);
      if (e < first) first = e;
    }
    if (evidence.length < p.count) return;
    s.silentUntil = et + p.window;
    this.core.emit(
      this,
      p,
      term.id,
      term.merchant.id,
      null,
      evidence,
      first,
      et,
      t.received_time,
      `Terminal ${term.id} made ${evidence.length} approved refunds within ${fmtDuration(p.window)}; the last, ${t.txn_id}, was ${formatMoney(t.amount_minor, t.currency)}.`,
      { refunds_in_window: evidence.length, count: p.count, window_ms: p.window, refund_amount_minor: t.amount_minor },
      t.txn_id,
      t.currency,
      t.amount_minor,
    );
  }

  dropTerminal(term: TerminalState): void {
    if (this.states.get(term.slot) !== null) this.states.set(term.slot, null);
  }

  dispose(terminals: Iterable<TerminalState>): void {
    for (const term of terminals) this.dropTerminal(term);
  }

  writeTerminal(term: TerminalState, w: StateWriter): void {
    const s = this.states.get(term.slot);
    if (s === null) return;
    w.map(K.refund_velocity);
    w.numbers(K.ets, s.ets);
    w.strings(K.ids, s.ids);
    if (Number.isFinite(s.silentUntil)) w.num(K.silent_until, s.silentUntil);
    else w.nil(K.silent_until);
    w.end();
  }

  readTerminal(term: TerminalState, snap: Record<string, unknown>): void {
    const v = snap.refund_velocity as { ets?: unknown; ids?: unknown; silent_until?: unknown } | undefined;
    if (v === undefined || !Array.isArray(v.ets) || !Array.isArray(v.ids)) return;
    this.states.set(term.slot, { ets: (v.ets as number[]).slice(), ids: (v.ids as string[]).slice(), silentUntil: typeof v.silent_until === 'number' ? v.silent_until : -Infinity });
  }
}

export const refundVelocity: RuleDefinition<'refund_velocity', RefundVelocityConfig> = {
  id: 'refund_velocity',
  version: 1,
  defaults: { enabled: true, severity: 'medium', mode: 'active', count: 5, window: 60 * MIN },
  fields: { count: num(2, 10_000, true), window: duration(1) },
  policy: [{ kind: 'NOTIFY_MERCHANT', expires_after: null }],
  alertHas: { card: false, transaction: true },
  create: (core, slot, variant) => new RefundVelocity(core, slot, variant),
};
