// sequence_gap: a terminal_seq still missing `timeout` (received time) after a higher one arrived.
// State per terminal: the highest seq seen (with its event, for evidence) and the open gaps, each a
// timer in the engine's heap. See README.md.
import type { Transaction } from '@tillwatch/schemas';
import { duration, MIN } from '../../fields.js';
import { fmtDuration } from '../../format.js';
import type { GapSnapshot } from '../../types.js';
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
  state: SeqState;
}

interface SeqState {
  maxSeq: number;
  maxSeqEventId: string;
  maxSeqEt: number;
  gaps: Gap[] | null;
}

class SequenceGap implements RuleInstance {
  readonly def = sequenceGap;
  private nGaps = 0;
  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {}

  onEvent(term: TerminalState, t: Transaction): void {
    const s = term.st[this.slot] as SeqState | undefined;
    if (s === undefined) {
      // The first seq seen of a terminal is its baseline.
      term.st[this.slot] = { maxSeq: t.terminal_seq, maxSeqEventId: t.event_id, maxSeqEt: t.event_time, gaps: null } satisfies SeqState;
      return;
    }
    const seq = t.terminal_seq;
    const max = s.maxSeq;
    if (seq === max + 1) {
      s.maxSeq = seq;
      s.maxSeqEventId = t.event_id;
      s.maxSeqEt = t.event_time;
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
          lowEventId: s.maxSeqEventId,
          lowEt: s.maxSeqEt,
          highEventId: t.event_id,
          highEt: t.event_time,
          state: s,
        };
        (s.gaps ??= []).push(g);
        this.core.timers.push(g);
        this.nGaps++;
      }
      s.maxSeq = seq;
      s.maxSeqEventId = t.event_id;
      s.maxSeqEt = t.event_time;
    } else if (s.gaps !== null) {
      this.fill(s, seq);
    }
    // else: a seq at or below the highest with no open gap: a redelivery, or a counter reset; ignored.
  }

  private fill(s: SeqState, seq: number): void {
    const gaps = s.gaps!;
    for (let gi = 0; gi < gaps.length; gi++) {
      const ms = gaps[gi]!.missing;
      for (let i = 0; i < ms.length; i += 2) {
        const a = ms[i]!;
        const b = ms[i + 1]!;
        if (seq < a || seq > b) continue;
        if (a === b) ms.splice(i, 2);
        else if (seq === a) ms[i] = a + 1;
        else if (seq === b) ms[i + 1] = b - 1;
        else ms.splice(i, 2, a, seq - 1, seq + 1, b);
        if (ms.length === 0) this.close(s, gi);
        return;
      }
    }
  }

  private close(s: SeqState, index: number): void {
    const gaps = s.gaps!;
    this.core.timers.remove(gaps[index]!);
    gaps.splice(index, 1);
    if (gaps.length === 0) s.gaps = null;
    this.nGaps--;
  }

  onTimer(timer: Timer): void {
    const g = timer as Gap;
    const term = g.terminal;
    const s = g.state;
    const idx = s.gaps === null ? -1 : s.gaps.indexOf(g);
    if (idx < 0) {
      this.core.timers.remove(g); // not expected: every gap in the heap belongs to a live terminal
      return;
    }
    this.close(s, idx);
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
      `Terminal ${term.id} is still missing ${what} ${fmtDuration(p.timeout)} after seq ${g.to + 1} arrived.`,
      { missing_from: from, missing_to: to, missing_count: count, low_seq: g.from - 1, high_seq: g.to + 1, timeout_ms: p.timeout },
      null,
    );
  }

  holdsTerminal(term: TerminalState): boolean {
    const s = term.st[this.slot] as SeqState | undefined;
    return s !== undefined && s.gaps !== null;
  }

  dropTerminal(term: TerminalState): void {
    const s = term.st[this.slot] as SeqState | undefined;
    if (s === undefined) return;
    if (s.gaps !== null) {
      for (const g of s.gaps) this.core.timers.remove(g);
      this.nGaps -= s.gaps.length;
      s.gaps = null;
    }
    term.st[this.slot] = undefined;
  }

  dispose(terminals: Iterable<TerminalState>): void {
    for (const term of terminals) this.dropTerminal(term);
  }

  writeTerminal(term: TerminalState, out: Record<string, unknown>): void {
    const s = term.st[this.slot] as SeqState | undefined;
    if (s === undefined) return;
    out.max_seq = s.maxSeq;
    out.max_seq_event_id = s.maxSeqEventId;
    out.max_seq_event_time = s.maxSeqEt;
    out.gaps = (s.gaps ?? []).map(
      (g): GapSnapshot => ({
        from: g.from,
        to: g.to,
        missing: [...g.missing],
        due: g.due,
        low_event_id: g.lowEventId,
        low_event_time: g.lowEt,
        high_event_id: g.highEventId,
        high_event_time: g.highEt,
      }),
    );
  }

  readTerminal(term: TerminalState, snap: Record<string, unknown>): void {
    if (typeof snap.max_seq !== 'number') return;
    const s: SeqState = { maxSeq: snap.max_seq, maxSeqEventId: snap.max_seq_event_id as string, maxSeqEt: snap.max_seq_event_time as number, gaps: null };
    const gaps = (snap.gaps as GapSnapshot[] | undefined) ?? [];
    if (gaps.length > 0) {
      s.gaps = gaps.map((g) => ({
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
        state: s,
      }));
      for (const g of s.gaps) this.core.timers.push(g);
      this.nGaps += s.gaps.length;
    }
    term.st[this.slot] = s;
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
