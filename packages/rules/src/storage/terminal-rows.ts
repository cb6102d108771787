// Engine-owned numeric state per terminal: one row of ROW doubles per terminal slot
// (TerminalState.slot), in a cache-line aligned buffer. A rule asks for a range of fields when it is
// created (EngineCore.terminalFields) and reads and writes them through the range's accessors with
// named field constants of its own (`const r = fields.row(term.slot)`, then `fields.get(r, F_SEEN)`,
// `fields.set(r, F_SEEN, v)`), never through another rule's range: only this file knows the row
// layout (no rule computes an index into the table's doubles; a TerminalRow is an opaque handle).
// Why one row for all rules: a sale reads the per-terminal numbers of several rules
// (abnormal_amount's sample header, sequence_gap's highest seq, sync_lag's episode flag); one aligned
// 128-byte row brings them all in with one cache-line pair, where a table per rule cost a cache miss
// per rule.
import { AlignedBuffer } from '../store.js';

/** Doubles per terminal row: 16 x 8 bytes = two cache lines, 128-byte aligned. */
const ROW = 16;

/**
 * A terminal's row within one range (TerminalFields.row): an opaque handle for get/set, not an index a
 * rule may compute with (a number plus anything is no longer a TerminalRow, so it does not typecheck).
 * It stays valid while the terminal keeps its slot (also when the table grows).
 */
export type TerminalRow = number & { readonly __terminalRow: unique symbol };

/** A rule's range of fields in every terminal row. */
export class TerminalFields {
  constructor(
    private readonly table: TerminalRowTable,
    /** First double of the range within a row. */
    readonly base: number,
    readonly count: number,
    /** The value every field of the range holds for a new terminal. */
    readonly init: number,
  ) {}

  // Named accessors: with store.ts's sale rows, the only code that knows the row layout. Each is
  // under V8's small-function size (27 bytes of bytecode; row 14, get 19, set 24 on Node 20), so
  // TurboFan inlines them at every call site instead of ranking them against the hook's other calls
  // for its inlining budget (get/set taking (slot, field) were 33-38 bytes, and the median sample's
  // hot path calls them a dozen times per sale). A hook takes the row once
  // (`const r = fields.row(term.slot)`) and reads and writes its fields through it.
  /** The row of the terminal in slot k. */
  row(k: number): TerminalRow {
    return (k * ROW + this.base) as TerminalRow;
  }

  /** Field `field` (0 .. count-1) of a terminal's row. */
  get(r: TerminalRow, field: number): number {
    return this.table.f[r + field]!;
  }

  /** Sets field `field` (0 .. count-1) of a terminal's row. */
  set(r: TerminalRow, field: number, value: number): void {
    this.table.f[r + field] = value;
  }

  /** Gives the range back (the rule instance is removed); its fields may be handed to another instance. */
  release(): void {
    this.table.release(this);
  }
}

export class TerminalRowTable {
  /** The rows' doubles (replaced when the table grows); read through TerminalFields, not indexed by rules. */
  f: Float64Array;
  private readonly mem: AlignedBuffer;
  /** Terminal slots the buffer holds. */
  private slots: number;
  private used = 0;
  private readonly ranges: TerminalFields[] = [];
  private readonly freed: TerminalFields[] = [];

  constructor(slots = 256) {
    this.slots = slots;
    this.mem = new AlignedBuffer(slots * ROW * 8);
    this.f = new Float64Array(this.mem.buffer);
  }

  /** n fields per terminal, each `init` for a new terminal; null when the row has no room left. */
  reserve(n: number, init: number): TerminalFields | null {
    const reuse = this.freed.findIndex((r) => r.count === n);
    let range: TerminalFields;
    if (reuse >= 0) {
      const old = this.freed.splice(reuse, 1)[0]!;
      range = new TerminalFields(this, old.base, n, init);
    } else {
      if (this.used + n > ROW) return null;
      range = new TerminalFields(this, this.used, n, init);
      this.used += n;
    }
    this.ranges.push(range);
    // Terminals registered before the range existed (a shadow instance added by setRules) start fresh.
    const f = this.f;
    for (let k = 0; k < this.slots; k++) f.fill(init, k * ROW + range.base, k * ROW + range.base + n);
    return range;
  }

  release(range: TerminalFields): void {
    const i = this.ranges.indexOf(range);
    if (i < 0) return;
    this.ranges.splice(i, 1);
    this.freed.push(range);
  }

  /** Loads both cache lines of slot k's row (an early miss, for engine.prefetch); the value is only a sink. */
  touch(k: number): number {
    const f = this.f;
    const o = k * ROW;
    return o + ROW <= f.length ? f[o]! + f[o + ROW - 1]! : 0;
  }

  /** A terminal took slot k: every range gets its initial values (the table grows to hold the slot). */
  reset(k: number): void {
    if (k >= this.slots) this.grow(k);
    const f = this.f;
    const ranges = this.ranges;
    for (let r = 0; r < ranges.length; r++) {
      const range = ranges[r]!;
      const o = k * ROW + range.base;
      f.fill(range.init, o, o + range.count);
    }
  }

  private grow(k: number): void {
    const slots = Math.max(this.slots * 2, k + 1);
    this.f = new Float64Array(this.mem.grow(slots * ROW * 8));
    this.slots = slots;
  }
}
