// sequence_gap: a terminal_seq still missing `timeout` (received time) after a higher one arrived.
// State per terminal: the highest seq seen (with its event, for evidence) and the open gaps, each a
// timer in the engine's heap. See README.md.
import { alertUpdateId, type Heartbeat, type Transaction } from '@tillwatch/schemas';
import { duration, MIN } from '../../fields.js';
import { fmtDuration } from '../../format.js';
import { alertId } from '../../ids.js';
import type { GapSnapshot } from '../../types.js';
import type { TerminalFields } from '../../storage/terminal-rows.js';
import { fieldKeys, type StateWriter } from '../../state-writer.js';

/** Changelog fields (TerminalSnapshot, GapSnapshot, FiredGapSnapshot). */
const K = fieldKeys('max_seq', 'max_seq_event_id', 'max_seq_event_time', 'gaps', 'from', 'to', 'missing', 'due', 'low_event_id', 'low_event_time', 'high_event_id', 'high_event_time', 'first_due', 'pending', 'lost', 'fired_gaps', 'alert_id', 'count', 'by', 'detected_at');
import type { EngineCore, RuleCommon, RuleDefinition, RuleInstance, RuleStats, TerminalState, Timer, Variant } from '../types.js';

export interface SequenceGapConfig extends RuleCommon {
  /** A missing terminal_seq fires this long (received time) after a higher one arrived, ms. */
  timeout: number;
}

interface Gap extends Timer {
  from: number;
  to: number;
  /** Still-missing ranges as [a0, b0, a1, b1, ...], inclusive. */
  missing: number[];
  lowEventId: string;
  lowEt: number;
  highEventId: string;
  highEt: number;
  /**
   * Heartbeats (see README): the original due time; a heartbeat proved the gap held in the terminal's
   * queue (ever / now: pending upload, no timer in the heap while so); a heartbeat with an empty queue
   * and last_seq >= every missing seq proved it lost (final).
   */
  firstDue: number;
  held: boolean;
  pending: boolean;
  lost: boolean;
}

/**
 * A gap that fired into pos.alerts and still waits for its missing numbers: when the last of them
 * arrives, an alert update closes the alert (`gap_filled`). Forgotten `terminal_idle_ttl` after the
 * alert (logically: ignored from then on) or with the terminal.
 */
interface FiredGap {
  alertId: string;
  /** Still-missing ranges as [a0, b0, ...], inclusive (what the alert reported, minus what arrived since). */
  missing: number[];
  /** Count reported by the alert. */
  count: number;
  /** Events that arrived after the alert with a missing number. */
  by: string[];
  detectedAt: number;
}

/** The changelog form (TerminalSnapshot field `fired_gaps`). */
export interface FiredGapSnapshot {
  alert_id: string;
  missing: number[];
  count: number;
  by: string[];
  detected_at: number;
}

/**
 * Removes seq from a list of inclusive ranges [a0, b0, a1, b1, ...] (splitting the range holding it);
 * false when no range holds it.
 */
function removeFromRanges(ms: number[], seq: number): boolean {
  for (let i = 0; i < ms.length; i += 2) {
    const a = ms[i]!;
    const b = ms[i + 1]!;
    if (seq < a || seq > b) continue;
    if (a === b) ms.splice(i, 2);
    else if (seq === a) ms[i] = a + 1;
    else if (seq === b) ms[i + 1] = b - 1;
    else ms.splice(i, 2, a, seq - 1, seq + 1, b);
    return true;
  }
  return false;
}

// Fields of the rule's range in the engine's terminal row (storage/terminal-rows.ts: this.fields.get/set on this.fields.row(slot)).
/** The highest terminal_seq seen (NaN: no baseline yet). */
const MAX_SEQ = 0;
/** Its event time. */
const MAX_SEQ_ET = 1;

/** The active instance of each engine (created with the engine, never disposed: it tracks the highest seq even when disabled). */
const activeOf = new WeakMap<EngineCore, SequenceGap>();

/**
 * The highest terminal_seq received from a terminal since the engine registered it (NaN: none), as
 * the active sequence_gap instance tracks it: upload_backlog's "highest synced terminal_seq" reads it
 * here at heartbeats instead of tracking it again on every transaction. Restored with sequence_gap's
 * changelog field `max_seq`.
 */
export function highestSeqReceived(core: EngineCore, term: TerminalState): number {
  const g = activeOf.get(core);
  return g === undefined || term.slot < 0 ? NaN : g.fields.get(g.fields.row(term.slot), MAX_SEQ);
}

/**
 * Per-terminal state lives in the instance, indexed by the terminal's slot (TerminalState.slot, stable
 * while the terminal is registered): the highest seq and its event time in one typed array (two
 * numbers per terminal, NaN = no baseline yet), its event id and the open gaps in dense arrays. A
 * state object per terminal cost a cache miss on every event.
 */
class SequenceGap implements RuleInstance {
  readonly def = sequenceGap;
  private nGaps = 0;
  /** [maxSeq, maxSeqEt] in the rule's range of the engine's terminal row; maxSeq NaN = the terminal has no baseline. */
  readonly fields: TerminalFields;
  private evIds: (string | null)[] = new Array<string | null>(256).fill(null);
  private gapsOf: (Gap[] | null)[] = new Array<Gap[] | null>(256).fill(null);
  /** Fired gaps waiting to be filled, per terminal slot (rare). */
  private firedOf: (FiredGap[] | null)[] = new Array<FiredGap[] | null>(256).fill(null);
  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {
    this.fields = core.terminalFields(2, NaN);
    if (variant === 0) activeOf.set(core, this);
  }

  private grow(k: number): void {
    const n = Math.max(2 * this.evIds.length, k + 1);
    for (let i = this.evIds.length; i < n; i++) {
      this.evIds.push(null);
      this.gapsOf.push(null);
      this.firedOf.push(null);
    }
  }

  onEvent(term: TerminalState, t: Transaction): void {
    const k = term.slot;
    if (k >= this.evIds.length) this.grow(k);
    const fields = this.fields;
    const r = fields.row(k);
    const max = fields.get(r, MAX_SEQ);
    const seq = t.terminal_seq;
    if (max !== max) {
      // NaN: the first seq seen of a terminal is its baseline.
      fields.set(r, MAX_SEQ, seq);
      fields.set(r, MAX_SEQ_ET, t.event_time);
      this.evIds[k] = t.event_id;
      return;
    }
    if (seq === max + 1) {
      fields.set(r, MAX_SEQ, seq);
      fields.set(r, MAX_SEQ_ET, t.event_time);
      this.evIds[k] = t.event_id;
    } else if (seq > max) {
      const p = term.rules[this.variant]!.sequence_gap;
      if (p.enabled) {
        const g: Gap = {
          heapIndex: -1,
          due: t.received_time + p.timeout,
          terminal: term,
          owner: this,
          order: max + 1,
          from: max + 1,
          to: seq - 1,
          missing: [max + 1, seq - 1],
          lowEventId: this.evIds[k]!,
          lowEt: fields.get(r, MAX_SEQ_ET),
          highEventId: t.event_id,
          highEt: t.event_time,
          firstDue: t.received_time + p.timeout,
          held: false,
          pending: false,
          lost: false,
        };
        const gaps = this.gapsOf[k];
        if (gaps === null || gaps === undefined) this.gapsOf[k] = [g];
        else gaps.push(g);
        this.core.timers.push(g);
        this.nGaps++;
      }
      fields.set(r, MAX_SEQ, seq);
      fields.set(r, MAX_SEQ_ET, t.event_time);
      this.evIds[k] = t.event_id;
    } else {
      const gaps = this.gapsOf[k];
      if ((gaps === null || gaps === undefined || !this.fill(k, gaps, seq)) && this.firedOf[k]) this.fillFired(term, t);
    }
    // else: a seq at or below the highest with no open gap: a redelivery, or a counter reset; ignored.
  }

  /** Removes seq from the open gap holding it; false when none does. */
  private fill(k: number, gaps: Gap[], seq: number): boolean {
    for (let gi = 0; gi < gaps.length; gi++) {
      const ms = gaps[gi]!.missing;
      if (!removeFromRanges(ms, seq)) continue;
      if (ms.length === 0) this.close(k, gaps, gi);
      return true;
    }
    return false;
  }

  /** A missing number of a gap that already fired arrived: the last one closes its alert (gap_filled). */
  private fillFired(term: TerminalState, t: Transaction): void {
    const k = term.slot;
    const fired = this.firedOf[k]!;
    const clk = this.core.clk;
    const horizon = this.core.config.engine.terminal_idle_ttl;
    const seq = t.terminal_seq;
    for (let fi = 0; fi < fired.length; fi++) {
      const f = fired[fi]!;
      if (clk - f.detectedAt > horizon) continue; // forgotten (logically; dropped below when touched)
      const ms = f.missing;
      if (!removeFromRanges(ms, seq)) continue;
      f.by.push(t.event_id);
      this.core.markTerminal(term);
      if (ms.length === 0) {
        fired.splice(fi, 1);
        this.filled(term, f);
      }
      this.pruneFired(k);
      return;
    }
    // else: a redelivery of a number that already arrived, or one outside every gap.
  }

  private pruneFired(k: number): void {
    const fired = this.firedOf[k];
    if (fired === null || fired === undefined) return;
    const clk = this.core.clk;
    const horizon = this.core.config.engine.terminal_idle_ttl;
    const live = fired.filter((f) => !(clk - f.detectedAt > horizon));
    this.firedOf[k] = live.length > 0 ? live : null;
  }

  private filled(term: TerminalState, f: FiredGap): void {
    const ids = [...f.by].sort();
    const after = this.core.clk - f.detectedAt;
    const what = f.count === 1 ? 'The missing sequence number' : `All ${f.count} missing sequence numbers`;
    this.core.emitUpdate({
      update_id: alertUpdateId(f.alertId, 'auto_resolved', 'gap_filled', ids),
      alert_id: f.alertId,
      rule: sequenceGap.id,
      rule_version: sequenceGap.version,
      terminal_id: term.id,
      merchant_id: term.merchant.id,
      status: 'auto_resolved',
      resolution: 'gap_filled',
      resolved_by_event_ids: ids,
      resolved_at: this.core.clk,
      summary: `${what} of terminal ${term.id}'s gap arrived, the last ${fmtDuration(after)} after the alert: the gap is filled.`,
      details: { missing_count: f.count, filled_after_ms: after, late_events: ids.length },
    });
  }

  private close(k: number, gaps: Gap[], index: number): void {
    this.core.timers.remove(gaps[index]!);
    gaps.splice(index, 1);
    if (gaps.length === 0) this.gapsOf[k] = null;
    this.nGaps--;
  }

  /**
   * A heartbeat: a missing seq the terminal still holds (queue_depth > 0, last_seq >= it) is pending
   * upload, not lost: its gap leaves the timer heap and waits, however long, until a heartbeat reports
   * the queue empty (then what is still missing is lost: a gap past its due time fires at once), the
   * numbers arrive, or the terminal is forgotten (idle past engine.terminal_idle_ttl: dropped, no
   * alert; a pending gap does not hold its terminal). An empty queue with last_seq >= every missing seq
   * proves the gap lost, for good.
   */
  onHeartbeat(term: TerminalState, h: Heartbeat): void {
    const k = term.slot;
    const gaps = k < this.gapsOf.length ? this.gapsOf[k] : null;
    if (gaps === null || gaps === undefined) return;
    const clk = this.core.clk;
    for (const g of gaps) {
      const ms = g.missing;
      if (h.queue_depth > 0) {
        if (g.lost || h.last_seq < ms[0]!) continue;
        g.held = true;
        if (!g.pending) {
          g.pending = true;
          this.core.timers.remove(g);
        }
      } else {
        if (h.last_seq >= ms[ms.length - 1]!) g.lost = true;
        if (g.pending) {
          g.pending = false;
          g.due = g.firstDue <= clk ? clk : g.firstDue;
          this.core.timers.push(g);
        }
      }
    }
    // (the engine marks the terminal changed after every heartbeat)
  }

  onTimer(timer: Timer): void {
    const g = timer as Gap;
    const term = g.terminal;
    const k = term.slot;
    const gaps = k >= 0 ? this.gapsOf[k] : null;
    const idx = gaps === null || gaps === undefined ? -1 : gaps.indexOf(g);
    if (idx < 0) {
      this.core.timers.remove(g); // not expected: every gap in the heap belongs to a live terminal
      return;
    }
    this.close(k, gaps!, idx);
    this.core.markTerminal(term);
    const ms = g.missing;
    const from = ms[0]!;
    const to = ms[ms.length - 1]!;
    let count = 0;
    for (let i = 0; i < ms.length; i += 2) count += ms[i + 1]! - ms[i]! + 1;
    const p = term.rules[this.variant]!.sequence_gap;
    const what = count === 1 ? `sequence number ${from}` : from === to - count + 1 ? `sequence numbers ${from}-${to} (${count})` : `${count} sequence numbers between ${from} and ${to}`;
    this.core.emit(
      this,
      p,
      term.id,
      term.merchant.id,
      null,
      [g.lowEventId, g.highEventId],
      Math.min(g.lowEt, g.highEt),
      Math.max(g.lowEt, g.highEt),
      g.due,
      `Terminal ${term.id} is still missing ${what} ${fmtDuration(p.timeout)} after seq ${g.to + 1} arrived${g.lost ? ': its heartbeat reports an empty upload queue, so lost, not pending upload' : ''}.`,
      // A terminal that heartbeats: which (pending_upload is always 0 here: a gap proven pending does
      // not fire); one that never did: unknown, the base details only.
      { missing_from: from, missing_to: to, missing_count: count, low_seq: g.from - 1, high_seq: g.to + 1, timeout_ms: p.timeout, ...(term.beats ? { pending_upload: 0, held_by_terminal: g.held ? 1 : 0, lost_by_heartbeat: g.lost ? 1 : 0 } : {}) },
      null,
    );
    // Only alerts that reach pos.alerts wait to be closed (a shadow alert has nobody to close it for).
    if (this.variant === 0 && p.mode === 'active') {
      const f: FiredGap = { alertId: alertId(sequenceGap.id, sequenceGap.version, [g.lowEventId, g.highEventId]), missing: [...ms], count, by: [], detectedAt: g.due };
      const fired = this.firedOf[k];
      if (fired === null || fired === undefined) this.firedOf[k] = [f];
      else fired.push(f);
      this.pruneFired(k);
    }
  }

  /** Gaps with a timer hold the terminal; pending ones do not (they go with it when it is forgotten for idleness). */
  holdsTerminal(term: TerminalState): boolean {
    const k = term.slot;
    const gaps = k >= 0 && k < this.gapsOf.length ? this.gapsOf[k] : null;
    if (gaps === null || gaps === undefined) return false;
    for (let i = 0; i < gaps.length; i++) if (!gaps[i]!.pending) return true;
    return false;
  }

  dropTerminal(term: TerminalState): void {
    const k = term.slot;
    if (k < 0 || k >= this.evIds.length) return;
    const gaps = this.gapsOf[k];
    if (gaps !== null && gaps !== undefined) {
      for (const g of gaps) this.core.timers.remove(g);
      this.nGaps -= gaps.length;
    }
    this.gapsOf[k] = null;
    this.firedOf[k] = null;
    this.evIds[k] = null;
    const r = this.fields.row(k);
    this.fields.set(r, MAX_SEQ, NaN);
    this.fields.set(r, MAX_SEQ_ET, NaN);
  }

  dispose(terminals: Iterable<TerminalState>): void {
    for (const term of terminals) this.dropTerminal(term);
    this.fields.release();
  }

  writeTerminal(term: TerminalState, w: StateWriter): void {
    const k = term.slot;
    if (k < 0 || k >= this.evIds.length) return;
    const r = this.fields.row(k);
    const max = this.fields.get(r, MAX_SEQ);
    if (max !== max) return;
    w.num(K.max_seq, max);
    w.str(K.max_seq_event_id, this.evIds[k]!);
    w.num(K.max_seq_event_time, this.fields.get(r, MAX_SEQ_ET));
    // GapSnapshot and FiredGapSnapshot fields, in this order.
    const gaps = this.gapsOf[k];
    const n = gaps === null || gaps === undefined ? 0 : gaps.length;
    w.list(K.gaps, n);
    for (let i = 0; i < n; i++) {
      const g = gaps![i]!;
      w.addMap();
      w.num(K.from, g.from);
      w.num(K.to, g.to);
      w.numbers(K.missing, g.missing);
      w.num(K.due, g.due);
      w.str(K.low_event_id, g.lowEventId);
      w.num(K.low_event_time, g.lowEt);
      w.str(K.high_event_id, g.highEventId);
      w.num(K.high_event_time, g.highEt);
      if (g.held) {
        w.num(K.first_due, g.firstDue);
        w.bool(K.pending, g.pending);
      }
      if (g.lost) w.bool(K.lost, true);
      w.end();
    }
    w.end();
    const fired = this.firedOf[k];
    if (fired !== null && fired !== undefined) {
      w.list(K.fired_gaps, fired.length);
      for (const f of fired) {
        w.addMap();
        w.str(K.alert_id, f.alertId);
        w.numbers(K.missing, f.missing);
        w.num(K.count, f.count);
        w.strings(K.by, f.by);
        w.num(K.detected_at, f.detectedAt);
        w.end();
      }
      w.end();
    }
  }

  /** Called after the engine registered the terminal (its slot is set). */
  readTerminal(term: TerminalState, snap: Record<string, unknown>): void {
    if (typeof snap.max_seq !== 'number') return;
    const k = term.slot;
    if (k >= this.evIds.length) this.grow(k);
    const r = this.fields.row(k);
    this.fields.set(r, MAX_SEQ, snap.max_seq);
    this.fields.set(r, MAX_SEQ_ET, snap.max_seq_event_time as number);
    this.evIds[k] = snap.max_seq_event_id as string;
    const fired = snap.fired_gaps as FiredGapSnapshot[] | undefined;
    this.firedOf[k] =
      Array.isArray(fired) && fired.length > 0
        ? fired.map((f): FiredGap => ({ alertId: f.alert_id, missing: [...f.missing], count: f.count, by: [...f.by], detectedAt: f.detected_at }))
        : null;
    const snaps = (snap.gaps as GapSnapshot[] | undefined) ?? [];
    if (snaps.length > 0) {
      const gaps = snaps.map(
        (g): Gap => ({
          heapIndex: -1,
          due: g.due,
          terminal: term,
          owner: this,
          order: g.from,
          from: g.from,
          to: g.to,
          missing: [...g.missing],
          lowEventId: g.low_event_id,
          lowEt: g.low_event_time,
          highEventId: g.high_event_id,
          highEt: g.high_event_time,
          firstDue: g.first_due ?? g.due,
          held: g.first_due !== undefined,
          pending: g.pending ?? false,
          lost: g.lost === true,
        }),
      );
      this.gapsOf[k] = gaps;
      for (const g of gaps) if (!g.pending) this.core.timers.push(g); // a pending gap waits without a timer
      this.nGaps += gaps.length;
    }
  }

  stats(into: RuleStats): void {
    into.pendingGaps += this.nGaps;
  }
}

export const sequenceGap: RuleDefinition<'sequence_gap', SequenceGapConfig> = {
  id: 'sequence_gap',
  version: 1,
  defaults: { enabled: true, severity: 'medium', mode: 'active', timeout: 30 * MIN },
  fields: { timeout: duration(1) },
  policy: [{ kind: 'NOTIFY_MERCHANT', expires_after: null }],
  alertHas: { card: false, transaction: false },
  create: (core, slot, variant) => new SequenceGap(core, slot, variant),
};
