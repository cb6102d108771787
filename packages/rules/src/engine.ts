// The rule engine: (state, event, clock) -> (state, alerts, actions). Pure: no I/O, no wall clock.
//
// State is organised per merchant (every rule is merchant-local and merchant_id is the Kafka key), so
// the live detector can write one compacted changelog record per merchant. Terminals are objects
// (per-merchant Map, plus one small engine-wide index for the hot lookup); sales, the big part, are
// rows of one typed buffer indexed by open-addressing tables (see store.ts for why). Expiry is
// *logical*: every lookup checks an entry's expiry against the clock, so results never depend on when
// the amortised physical sweep ran, on how often the clock was advanced, or on where a run was
// snapshotted and restored.
import type { Action, Alert, Severity, Transaction } from '@tillwatch/schemas';
import { ACTION_TARGETS, RULE_VERSIONS, resolveRules, type ResolvedRules, type RuleId, type RulesConfig } from './config.js';
import { fmtDuration } from './format.js';
import { IndexedMinHeap } from './heap.js';
import { actionId, alertId } from './ids.js';
import { SampleSlab, newSample, releaseSample, sampleAdd, sampleLowerBound, sampleMedian, sampleValues, type SampleState } from './median.js';
import {
  ExpiryWheel,
  F_AMOUNT,
  F_DUP_EXP,
  F_ET,
  F_REF_EXP,
  I_DUP_HASH,
  I_FLAGS,
  I_GEN,
  I_LEG_NEXT,
  I_MERCHANT,
  I_NEXT,
  I_PREV,
  I_TXN_HASH,
  RowIndex,
  SaleRows,
  hashString,
  mixInt,
} from './store.js';
import type {
  EngineOptions,
  EntityChange,
  EngineOutput,
  EngineSnapshot,
  EngineStats,
  GapSnapshot,
  MerchantSnapshot,
  RuleEngine,
  SaleSnapshot,
  TerminalSnapshot,
} from './types.js';

const EMPTY_OUTPUT: EngineOutput = Object.freeze({
  alerts: Object.freeze([]) as unknown as Alert[],
  actions: Object.freeze([]) as unknown as Action[],
  shadowAlerts: Object.freeze([]) as unknown as Alert[],
});

/** Physical sweeps run at most this often (clock time); expiry buckets have the same width. */
const SWEEP_EVERY_MS = 5 * 60_000;
const TERMINAL_SWEEP_EVERY_MS = 60 * 60_000;

// Sale row flags.
const SEEN = 1; // the APPROVED SALE itself has arrived (else: a placeholder made by a refund or void)
const VOIDED = 2; // an APPROVED VOID/REVERSAL names it
const IN_DUP = 4; // currently a duplicate-charge leg
const E_DIRTY = 8; // changed since the last takeChangedEntities (not part of snapshots)

const TXN_SEED = 0x1b873593;
const TERMINAL_SEED = 0x27d4eb2f;
const CARD_SEED = 0x5bd1e995;

interface RefundRec {
  txn: string;
  eventId: string;
  terminalId: string;
  card: string;
  amount: number;
  et: number;
}

interface Gap {
  /** Position in the timer heap; -1 once closed (filled, fired or dropped). */
  heapIndex: number;
  from: number;
  to: number;
  missing: number[];
  due: number;
  lowEventId: string;
  lowEt: number;
  highEventId: string;
  highEt: number;
  terminal: TerminalState;
}

interface TerminalState extends SampleState {
  id: string;
  merchant: MerchantState;
  /** Position in the engine's terminal index; -1 once dropped. */
  slot: number;
  /** Changed since the last takeChangedEntities. */
  eDirty: boolean;
  hash: number;
  rules: ResolvedRules;
  lastRecv: number;
  maxSeq: number;
  maxSeqEventId: string;
  maxSeqEt: number;
  lagEpisode: boolean;
  salesSeen: number;
  gaps: Gap[] | null;
}

interface MerchantState {
  id: string;
  /** Row tag in the sale columns; reused after the merchant is removed. */
  idx: number;
  rules: ResolvedRules;
  terminals: Map<string, TerminalState>;
  /** The merchant's sale rows, a doubly linked list in insertion order (for snapshots). */
  head: number;
  tail: number;
  rows: number;
  dirty: boolean;
  removed: boolean;
  /** Last currency string seen, so equal codes share one string. */
  currency: string;
}

const gapLess = (a: Gap, b: Gap): boolean => {
  if (a.due !== b.due) return a.due < b.due;
  const ta = a.terminal.id;
  const tb = b.terminal.id;
  if (ta !== tb) return ta < tb;
  const ma = a.terminal.merchant.id;
  const mb = b.terminal.merchant.id;
  if (ma !== mb) return ma < mb;
  return a.from < b.from;
};

const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

export function createRuleEngine(config: RulesConfig, options: EngineOptions = {}): RuleEngine {
  return new Engine(config, options);
}

class Engine implements RuleEngine {
  private clk = 0;
  private readonly merchants = new Map<string, MerchantState>();
  private readonly merchantByIdx: (MerchantState | undefined)[] = [];
  private readonly freeIdx: number[] = [];
  private dirtyList: MerchantState[] = [];
  private readonly timers = new IndexedMinHeap<Gap>(gapLess);
  private out: EngineOutput | null = null;
  private nextSweepAt = 0;
  private nextTerminalSweepAt = 0;
  private lateness: number;
  private lookback: number;
  private idleTtl: number;
  private hasTerminalOverrides: boolean;
  private dupOn: boolean;
  // Sales: columns, txn index (merchant, txn_id), duplicate index (merchant, card, amount) -> chain head.
  private readonly cols: SaleRows;
  private readonly txnIdx: RowIndex;
  private readonly dupIdx: RowIndex;
  private readonly refunds = new Map<number, RefundRec[]>();
  // Terminals: one small engine-wide index (terminal_id hash -> slot), verified against (terminal, merchant).
  private readonly termIdx = new RowIndex(4096);
  private readonly termBySlot: (TerminalState | undefined)[] = [];
  private readonly termFree: number[] = [];
  /** Median samples, one slab per sample size. */
  private readonly slabs = new Map<number, SampleSlab>();
  private readonly dupWheel = new ExpiryWheel(SWEEP_EVERY_MS);
  private readonly refWheel = new ExpiryWheel(SWEEP_EVERY_MS);
  private readonly visitDup = (row: number, gen: number): void => this.expireLeg(row, gen);
  private readonly visitRef = (row: number, gen: number): void => this.expireRow(row, gen);
  // Load a row and its index slot ahead of expiring it (see ExpiryWheel.sweep).
  private readonly touchDup = (row: number): void => {
    this.prefetch ^= this.dupIdx.slots[(this.cols.i[row * 16 + I_DUP_HASH]! & this.dupIdx.mask) << 1]!;
  };
  private readonly touchRef = (row: number): void => {
    this.prefetch ^= this.txnIdx.slots[(this.cols.i[row * 16 + I_TXN_HASH]! & this.txnIdx.mask) << 1]!;
  };
  private touched: MerchantState[] = [];
  /** Sink for the early probe loads (kept so the compiler cannot drop them). */
  private prefetch = 0;
  // Entity-level change tracking (takeChangedEntities), on from its first call.
  private trackEntities = false;
  private restoring = false;
  private dirtyTerms: TerminalState[] = [];
  private dirtyRows: number[] = [];
  private tombstones: EntityChange[] = [];
  // Counts for stats().
  private nTerminals = 0;
  private nDupLegs = 0;
  private nGaps = 0;
  private nSamples = 0;
  private nEvents = 0;
  private nLateSales = 0;

  constructor(
    private config: RulesConfig,
    options: EngineOptions,
  ) {
    // Growing the big buffers copies them and makes V8 collect (external memory): a caller that knows
    // roughly how many sales it will hold (a backtest knows its input size) sizes them once.
    const sales = Math.min(Math.max(4096, Math.ceil(options.expectedSales ?? 0)), 1 << 24);
    this.cols = new SaleRows(sales);
    this.txnIdx = new RowIndex(sales * 2);
    this.dupIdx = new RowIndex(sales * 2);
    this.lateness = config.engine.allowed_lateness;
    this.lookback = config.engine.refund_lookback;
    this.idleTtl = config.engine.terminal_idle_ttl;
    this.hasTerminalOverrides = Object.keys(config.overrides.terminals).length > 0;
    // Duplicate legs are only kept when some scope can fire the rule.
    this.dupOn =
      config.rules.duplicate_charge.enabled ||
      Object.values(config.overrides.merchants).some((o) => o.duplicate_charge?.enabled === true) ||
      Object.values(config.overrides.terminals).some((o) => o.duplicate_charge?.enabled === true);
  }

  // SHIM (w-live): swaps the config and re-resolves the cached per-merchant/terminal rules.
  setRules(config: RulesConfig): void {
    this.config = config;
    this.lateness = config.engine.allowed_lateness;
    this.lookback = config.engine.refund_lookback;
    this.idleTtl = config.engine.terminal_idle_ttl;
    this.hasTerminalOverrides = Object.keys(config.overrides.terminals).length > 0;
    this.dupOn =
      config.rules.duplicate_charge.enabled ||
      Object.values(config.overrides.merchants).some((o) => o.duplicate_charge?.enabled === true) ||
      Object.values(config.overrides.terminals).some((o) => o.duplicate_charge?.enabled === true);
    for (const m of this.merchants.values()) {
      m.rules = resolveRules(config, m.id, null);
      for (const t of m.terminals.values()) t.rules = resolveRules(config, m.id, t.id);
    }
  }

  // ---------------------------------------------------------------- clock and timers

  clock(): number {
    return this.clk;
  }

  setClock(ms: number): void {
    if (!Number.isFinite(ms)) throw new TypeError(`setClock: expected epoch milliseconds, got ${ms}`);
    if (ms > this.clk) this.clk = ms;
  }

  advanceClock(nowMs: number): EngineOutput {
    if (!Number.isFinite(nowMs)) throw new TypeError(`advanceClock: expected epoch milliseconds, got ${nowMs}`);
    if (nowMs > this.clk) this.clk = nowMs;
    this.fireDue();
    if (this.clk >= this.nextSweepAt) this.sweep();
    return this.flush();
  }

  private flush(): EngineOutput {
    const o = this.out;
    if (o === null) return EMPTY_OUTPUT;
    this.out = null;
    return o;
  }

  private fireDue(): void {
    const h = this.timers;
    let g = h.peek();
    while (g !== undefined && g.due <= this.clk) {
      this.fireGap(g);
      g = h.peek();
    }
  }

  private markDirty(m: MerchantState): void {
    if (!m.dirty) {
      m.dirty = true;
      this.dirtyList.push(m);
    }
  }

  // ---------------------------------------------------------------- events

  onTransaction(t: Transaction): EngineOutput {
    const recv = t.received_time;
    if (recv > this.clk) this.clk = recv;
    const top = this.timers.peek();
    if (top !== undefined && top.due <= this.clk) this.fireDue();
    if (this.clk >= this.nextSweepAt) this.sweep();
    this.nEvents++;

    // Approved sales probe both big indexes. Their hashes depend on the event alone, so both first
    // probe lines are requested now and their cache misses overlap each other and the terminal lookup.
    const sale = t.kind === 'SALE' && t.status === 'APPROVED';
    let th = 0;
    let dh = 0;
    if (sale) {
      th = hashString(t.txn_id, TXN_SEED);
      dh = mixInt(hashString(t.card_token, CARD_SEED), t.amount_minor);
      this.prefetch = this.txnIdx.slots[(th & this.txnIdx.mask) << 1]! ^ this.dupIdx.slots[(dh & this.dupIdx.mask) << 1]!;
    }
    let term = this.findTerminal(t);
    let m: MerchantState;
    if (term === undefined || this.clk - term.lastRecv > this.idleTtl) {
      m = term !== undefined ? term.merchant : (this.merchants.get(t.merchant_id) ?? this.newMerchant(t.merchant_id));
      term = this.newTerminal(m, t);
    } else {
      m = term.merchant;
      if (recv > term.lastRecv) term.lastRecv = recv;
      this.onSequence(term, t);
    }
    this.onLag(term, t);

    if (sale) this.onSale(m, term, t, th, dh);
    else if (t.status === 'APPROVED') {
      if (t.kind === 'REFUND') this.onRefund(m, term, t);
      else if (t.kind !== 'SALE') this.onVoid(m, t); // REVERSAL, VOID
    }
    this.markDirty(m);
    this.markTerminal(term);
    // A gap created already due (its higher seq arrived long after the clock) fires now, not later.
    const top2 = this.timers.peek();
    if (top2 !== undefined && top2.due <= this.clk) this.fireDue();
    return this.flush();
  }

  private newMerchant(id: string): MerchantState {
    const idx = this.freeIdx.pop() ?? this.merchantByIdx.length;
    const m: MerchantState = {
      id,
      idx,
      rules: resolveRules(this.config, id, null),
      terminals: new Map(),
      head: -1,
      tail: -1,
      rows: 0,
      dirty: false,
      removed: false,
      currency: '',
    };
    this.merchants.set(id, m);
    this.merchantByIdx[idx] = m;
    return m;
  }

  private findTerminal(t: Transaction): TerminalState | undefined {
    const tid = t.terminal_id;
    const h = hashString(tid, TERMINAL_SEED);
    const idx = this.termIdx;
    const sl = idx.slots;
    const mask = idx.mask;
    let i = h & mask;
    for (;;) {
      const r = sl[i << 1]!;
      if (r === 0) return undefined;
      if (sl[(i << 1) + 1] === h) {
        const term = this.termBySlot[r - 1]!;
        if (term.id === tid && term.merchant.id === t.merchant_id) return term;
      }
      i = (i + 1) & mask;
    }
  }

  private registerTerminal(term: TerminalState): void {
    const slot = this.termFree.pop() ?? this.termBySlot.length;
    term.slot = slot;
    term.hash = hashString(term.id, TERMINAL_SEED);
    this.termBySlot[slot] = term;
    this.termIdx.insert(term.hash, slot);
    term.merchant.terminals.set(term.id, term);
    this.nTerminals++;
  }

  /** First event of a terminal (or first after it was forgotten for idleness). */
  private newTerminal(m: MerchantState, t: Transaction): TerminalState {
    const old = m.terminals.get(t.terminal_id);
    if (old !== undefined) this.dropTerminal(old);
    const term: TerminalState = {
      id: t.terminal_id,
      merchant: m,
      slot: -1,
      eDirty: false,
      hash: 0,
      rules: resolveRules(this.config, m.id, t.terminal_id),
      lastRecv: t.received_time,
      maxSeq: t.terminal_seq,
      maxSeqEventId: t.event_id,
      maxSeqEt: t.event_time,
      lagEpisode: false,
      salesSeen: 0,
      gaps: null,
      sSlab: null,
      sOff: 0,
      sHead: 0,
      sN: 0,
      sAdded: 0,
      sN0: 0,
      sLB: 0,
    };
    this.registerTerminal(term);
    return term;
  }

  private dropTerminal(term: TerminalState): void {
    if (term.gaps !== null) {
      for (const g of term.gaps) this.timers.remove(g);
      this.nGaps -= term.gaps.length;
    }
    if (term.sSlab !== null) {
      releaseSample(term);
      this.nSamples--;
    }
    this.nTerminals--;
    term.merchant.terminals.delete(term.id);
    this.termIdx.remove(term.hash, term.slot);
    this.termBySlot[term.slot] = undefined;
    this.termFree.push(term.slot);
    term.slot = -1;
    if (this.trackEntities && !this.restoring) this.tombstones.push({ merchant: term.merchant.id, kind: 'terminal', id: term.id, value: null });
  }

  private slab(capacity: number): SampleSlab {
    let s = this.slabs.get(capacity);
    if (s === undefined) this.slabs.set(capacity, (s = new SampleSlab(capacity, 256)));
    return s;
  }

  private rulesFor(m: MerchantState, terminalId: string): ResolvedRules {
    if (!this.hasTerminalOverrides) return m.rules;
    return m.terminals.get(terminalId)?.rules ?? resolveRules(this.config, m.id, terminalId);
  }

  // ---------------------------------------------------------------- sequence_gap

  private onSequence(term: TerminalState, t: Transaction): void {
    const seq = t.terminal_seq;
    const max = term.maxSeq;
    if (seq === max + 1) {
      term.maxSeq = seq;
      term.maxSeqEventId = t.event_id;
      term.maxSeqEt = t.event_time;
    } else if (seq > max) {
      if (term.rules.sequence_gap.enabled) {
        const g: Gap = {
          heapIndex: -1,
          from: max + 1,
          to: seq - 1,
          missing: [max + 1, seq - 1],
          due: t.received_time + term.rules.sequence_gap.timeout,
          lowEventId: term.maxSeqEventId,
          lowEt: term.maxSeqEt,
          highEventId: t.event_id,
          highEt: t.event_time,
          terminal: term,
        };
        (term.gaps ??= []).push(g);
        this.timers.push(g);
        this.nGaps++;
      }
      term.maxSeq = seq;
      term.maxSeqEventId = t.event_id;
      term.maxSeqEt = t.event_time;
    } else if (term.gaps !== null) {
      this.fillGap(term, seq);
    }
    // else: a seq at or below the highest with no open gap: a redelivery, or a counter reset; ignored.
  }

  private fillGap(term: TerminalState, seq: number): void {
    const gaps = term.gaps!;
    for (let gi = 0; gi < gaps.length; gi++) {
      const g = gaps[gi]!;
      const ms = g.missing;
      for (let i = 0; i < ms.length; i += 2) {
        const a = ms[i]!;
        const b = ms[i + 1]!;
        if (seq < a || seq > b) continue;
        if (a === b) ms.splice(i, 2);
        else if (seq === a) ms[i] = a + 1;
        else if (seq === b) ms[i + 1] = b - 1;
        else ms.splice(i, 2, a, seq - 1, seq + 1, b);
        if (ms.length === 0) this.closeGap(term, gi);
        return;
      }
    }
  }

  private closeGap(term: TerminalState, index: number): void {
    const gaps = term.gaps!;
    this.timers.remove(gaps[index]!);
    gaps.splice(index, 1);
    if (gaps.length === 0) term.gaps = null;
    this.nGaps--;
  }

  private fireGap(g: Gap): void {
    const term = g.terminal;
    const gaps = term.gaps;
    const idx = gaps === null ? -1 : gaps.indexOf(g);
    if (idx < 0) {
      this.timers.remove(g); // not expected: every gap in the heap belongs to a live terminal
      return;
    }
    this.closeGap(term, idx);
    this.markTerminal(term);
    const m = term.merchant;
    if (!m.dirty) {
      m.dirty = true;
      this.dirtyList.push(m);
    }
    const ms = g.missing;
    const from = ms[0]!;
    const to = ms[ms.length - 1]!;
    let count = 0;
    for (let i = 0; i < ms.length; i += 2) count += ms[i + 1]! - ms[i]! + 1;
    const p = term.rules.sequence_gap;
    const what = count === 1 ? `sequence number ${from}` : from === to - count + 1 ? `sequence numbers ${from}-${to} (${count})` : `${count} sequence numbers between ${from} and ${to}`;
    this.emit(
      'sequence_gap',
      p.severity,
      term.id,
      m.id,
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

  // ---------------------------------------------------------------- sync_lag

  private onLag(term: TerminalState, t: Transaction): void {
    const p = term.rules.sync_lag;
    const lag = t.received_time - t.event_time;
    if (lag <= p.threshold) {
      term.lagEpisode = false;
      return;
    }
    if (term.lagEpisode) return;
    term.lagEpisode = true;
    if (!p.enabled) return;
    this.emit(
      'sync_lag',
      p.severity,
      term.id,
      term.merchant.id,
      null,
      [t.event_id],
      t.event_time,
      t.received_time,
      t.received_time,
      `Terminal ${term.id} uploaded transaction ${t.txn_id} ${fmtDuration(lag)} after it was made (threshold ${fmtDuration(p.threshold)}): start of a late-sync episode.`,
      { lag_ms: lag, threshold_ms: p.threshold, terminal_seq: t.terminal_seq },
      null,
    );
  }

  // ---------------------------------------------------------------- sale rows

  /** The live row of (merchant, txn_id), or -1. A logically expired row is freed and reported absent. */
  private findTxn(m: MerchantState, txn: string, h: number): number {
    const idx = this.txnIdx;
    const sl = idx.slots;
    const mask = idx.mask;
    const cols = this.cols;
    let i = h & mask;
    for (;;) {
      const r = sl[i << 1]!;
      if (r === 0) return -1;
      if (sl[(i << 1) + 1] === h) {
        const row = r - 1;
        if (cols.i[row * 16 + I_MERCHANT] === m.idx && cols.txn[row] === txn) {
          if (this.clk > cols.f[row * 8 + F_REF_EXP]!) {
            this.freeRow(row);
            return -1;
          }
          return row;
        }
      }
      i = (i + 1) & mask;
    }
  }

  private allocRow(m: MerchantState, txn: string, h: number, flags: number, refBucket: number): number {
    const c = this.cols;
    const row = c.alloc();
    c.txn[row] = txn;
    c.i[row * 16 + I_TXN_HASH] = h;
    c.i[row * 16 + I_FLAGS] = flags;
    c.i[row * 16 + I_MERCHANT] = m.idx;
    c.refunded[row] = 0;
    c.f[row * 8 + F_AMOUNT] = 0;
    c.f[row * 8 + F_ET] = 0;
    c.f[row * 8 + F_DUP_EXP] = 0;
    c.i[row * 16 + I_LEG_NEXT] = -1;
    // Append to the merchant's list.
    c.i[row * 16 + I_PREV] = m.tail;
    c.i[row * 16 + I_NEXT] = -1;
    if (m.tail >= 0) c.i[m.tail * 16 + I_NEXT] = row;
    else m.head = row;
    m.tail = row;
    m.rows++;
    this.txnIdx.insert(h, row);
    this.refWheel.add(refBucket, row, c.i[row * 16 + I_GEN]!);
    if (!this.restoring) this.markRow(row);
    return row;
  }

  private freeRow(row: number): void {
    const c = this.cols;
    const m = this.merchantByIdx[c.i[row * 16 + I_MERCHANT]!]!;
    if (this.trackEntities && !this.restoring) this.tombstones.push({ merchant: m.id, kind: 'sale', id: c.txn[row]!, value: null });
    if (c.i[row * 16 + I_FLAGS]! & IN_DUP) this.dropLeg(row);
    this.txnIdx.remove(c.i[row * 16 + I_TXN_HASH]!, row);
    const prev = c.i[row * 16 + I_PREV]!;
    const next = c.i[row * 16 + I_NEXT]!;
    if (prev >= 0) c.i[prev * 16 + I_NEXT] = next;
    else m.head = next;
    if (next >= 0) c.i[next * 16 + I_PREV] = prev;
    else m.tail = prev;
    m.rows--;
    this.refunds.delete(row);
    c.release(row);
  }

  /** Slot in the duplicate index of the chain for (merchant, card, amount), or -1. */
  private findDupSlot(mIdx: number, card: string, amount: number, h: number): number {
    const idx = this.dupIdx;
    const sl = idx.slots;
    const mask = idx.mask;
    const cols = this.cols;
    let i = h & mask;
    for (;;) {
      const r = sl[i << 1]!;
      if (r === 0) return -1;
      if (sl[(i << 1) + 1] === h) {
        const row = r - 1;
        if (cols.i[row * 16 + I_MERCHANT] === mIdx && cols.f[row * 8 + F_AMOUNT] === amount && cols.card[row] === card) return i;
      }
      i = (i + 1) & mask;
    }
  }

  private dropLeg(row: number): void {
    const c = this.cols;
    const h = c.i[row * 16 + I_DUP_HASH]!;
    const slot = this.findDupSlot(c.i[row * 16 + I_MERCHANT]!, c.card[row]!, c.f[row * 8 + F_AMOUNT]!, h);
    if (slot >= 0) {
      const headRow = this.dupIdx.row(slot);
      if (headRow === row) {
        const next = c.i[row * 16 + I_LEG_NEXT]!;
        if (next >= 0) this.dupIdx.set(slot, next);
        else this.dupIdx.removeAt(slot);
      } else {
        let p = headRow;
        while (p >= 0 && c.i[p * 16 + I_LEG_NEXT] !== row) p = c.i[p * 16 + I_LEG_NEXT]!;
        if (p >= 0) c.i[p * 16 + I_LEG_NEXT] = c.i[row * 16 + I_LEG_NEXT]!;
      }
    }
    c.i[row * 16 + I_LEG_NEXT] = -1;
    c.i[row * 16 + I_FLAGS] = c.i[row * 16 + I_FLAGS]! & ~IN_DUP;
    this.nDupLegs--;
    // Only refunds can still match the row, and they need neither its event id nor its card.
    c.eventId[row] = null;
    c.card[row] = null;
  }

  // ---------------------------------------------------------------- sales: abnormal_amount, duplicate_charge

  private onSale(m: MerchantState, term: TerminalState, t: Transaction, th: number, dh: number): void {
    const c = this.cols;
        let row = this.findTxn(m, t.txn_id, th);
    if (row >= 0 && c.i[row * 16 + I_FLAGS]! & SEEN) return; // the same sale again (redelivery, status re-sent)
    const amount = t.amount_minor;
    const voided = row >= 0 && (c.i[row * 16 + I_FLAGS]! & VOIDED) !== 0;

    // abnormal_amount: judged against the sales before it, then added to the sample.
    const pa = term.rules.abnormal_amount;
    if (pa.enabled || term.sSlab !== null) {
      if (term.sSlab === null) {
        newSample(term, this.slab(pa.sample_size));
        this.nSamples++;
      }
      // The cheap lower bound settles almost every sale; the exact median is taken only near the threshold.
      if (pa.enabled && !voided && term.salesSeen >= pa.min_sales && amount >= pa.ratio * sampleLowerBound(term)) {
        const median = sampleMedian(term);
        if (median > 0 && amount >= pa.ratio * median) this.fireAbnormal(m, term, t, median, term.sN);
      }
      sampleAdd(term, amount);
    }
    term.salesSeen++;

    let cur = t.currency;
    if (cur === m.currency) cur = m.currency;
    else m.currency = cur;
    const base = t.event_time < t.received_time ? t.event_time : t.received_time;
    const window = m.rules.duplicate_charge.window;
    const refExp = base + this.lookback;
    let hadRefunds = false;
    if (row < 0) {
      if (refExp < this.clk) {
        // Older than the refund lookback (so also beyond the allowed lateness): nothing to keep.
        if (this.dupOn) this.nLateSales++;
        return;
      }
      row = this.allocRow(m, t.txn_id, th, SEEN, this.refWheel.bucketOf(refExp));
      c.f[row * 8 + F_REF_EXP] = refExp;
    } else {
      // A placeholder made by an earlier refund or void: the sale arrived after them.
      c.i[row * 16 + I_FLAGS] = c.i[row * 16 + I_FLAGS]! | SEEN;
      if (refExp > c.f[row * 8 + F_REF_EXP]!) {
        c.f[row * 8 + F_REF_EXP] = refExp;
        this.refWheel.add(this.refWheel.bucketOf(refExp), row, c.i[row * 16 + I_GEN]!);
      }
      hadRefunds = this.refunds.has(row);
      this.markRow(row);
    }
    c.eventId[row] = t.event_id;
    c.terminalId[row] = term.id;
    c.f[row * 8 + F_AMOUNT] = amount;
    c.currency[row] = cur;
    c.f[row * 8 + F_ET] = t.event_time;
    c.f[row * 8 + F_DUP_EXP] = base + this.lateness + window;

    // duplicate_charge: both legs must be within the allowed lateness when they arrive.
    if (this.dupOn && !voided) {
      if (this.clk - t.event_time > this.lateness) this.nLateSales++;
      else this.matchDuplicate(m, term, t, row, window, dh);
    }
    if (hadRefunds && !voided) this.checkRefundsOfLateSale(m, row, t);
  }

  private fireAbnormal(m: MerchantState, term: TerminalState, t: Transaction, median: number, n: number): void {
    const pa = term.rules.abnormal_amount;
    const ratio = t.amount_minor / median;
    this.emit(
      'abnormal_amount',
      pa.severity,
      term.id,
      m.id,
      t.card_token,
      [t.event_id],
      t.event_time,
      t.event_time,
      t.received_time,
      `Sale ${t.txn_id} of ${t.amount_minor} ${t.currency} (minor units) at terminal ${term.id} is ${ratio.toFixed(1)}x the terminal's median approved sale of ${median} over its last ${n} sales.`,
      { amount_minor: t.amount_minor, median_minor: median, ratio: round4(ratio), threshold_ratio: pa.ratio, sample_size: n, sales_seen: term.salesSeen },
      t.txn_id,
    );
  }

  private matchDuplicate(m: MerchantState, term: TerminalState, t: Transaction, row: number, window: number, dh: number): void {
    const c = this.cols;
    const card = t.card_token;
    const amount = t.amount_minor;
    const et = t.event_time;
    const clk = this.clk;
    const cur = c.currency[row]!;
    const txn = c.txn[row]!;
    const h = dh;
    const slot = this.findDupSlot(m.idx, card, amount, h);
    let best = -1;
    let bestGap = Infinity;
    if (slot >= 0) {
      let a = this.dupIdx.row(slot);
      const headCard = c.card[a]!;
      while (a >= 0) {
        if (!(c.i[a * 16 + I_FLAGS]! & VOIDED) && clk <= c.f[a * 8 + F_DUP_EXP]! && c.currency[a] === cur && c.txn[a] !== txn) {
          const aet = c.f[a * 8 + F_ET]!;
          const gap = aet > et ? aet - et : et - aet;
          // Nearest leg wins; ties broken by content, never by arrival or storage order.
          if (gap <= window && (gap < bestGap || (gap === bestGap && (aet < c.f[best * 8 + F_ET]! || (aet === c.f[best * 8 + F_ET]! && c.eventId[a]! < c.eventId[best]!))))) {
            best = a;
            bestGap = gap;
          }
        }
        a = c.i[a * 16 + I_LEG_NEXT]!;
      }
      // Push on the chain head; share the card string already stored.
      c.card[row] = headCard;
      c.i[row * 16 + I_LEG_NEXT] = this.dupIdx.row(slot);
      this.dupIdx.set(slot, row);
    } else {
      c.card[row] = card;
      c.i[row * 16 + I_LEG_NEXT] = -1;
      this.dupIdx.insert(h, row);
    }
    c.i[row * 16 + I_DUP_HASH] = h;
    c.i[row * 16 + I_FLAGS] = c.i[row * 16 + I_FLAGS]! | IN_DUP;
    this.dupWheel.add(this.dupWheel.bucketOf(c.f[row * 8 + F_DUP_EXP]!), row, c.i[row * 16 + I_GEN]!);
    this.nDupLegs++;
    if (best >= 0) this.fireDuplicate(m, term, t, row, best, bestGap, window);
  }

  private fireDuplicate(m: MerchantState, term: TerminalState, t: Transaction, b: number, a: number, gap: number, window: number): void {
    const c = this.cols;
    const ra = this.rulesFor(m, c.terminalId[a]!);
    if (!term.rules.duplicate_charge.enabled || !ra.duplicate_charge.enabled) return;
    // The alert belongs to the later leg (the retry), so it is the same whichever leg arrived first.
    const bLater = c.f[b * 8 + F_ET]! > c.f[a * 8 + F_ET]! || (c.f[b * 8 + F_ET] === c.f[a * 8 + F_ET] && c.eventId[b]! > c.eventId[a]!);
    const first = bLater ? a : b;
    const second = bLater ? b : a;
    const rules = second === b ? term.rules : ra;
    const t1 = c.terminalId[first]!;
    const t2 = c.terminalId[second]!;
    this.emit(
      'duplicate_charge',
      rules.duplicate_charge.severity,
      t2,
      m.id,
      t.card_token,
      [c.eventId[first]!, c.eventId[second]!],
      c.f[first * 8 + F_ET]!,
      c.f[second * 8 + F_ET]!,
      t.received_time,
      `Card ${t.card_token} was charged ${t.amount_minor} ${t.currency} (minor units) twice at merchant ${m.id} within ${fmtDuration(gap)}: transaction ${c.txn[first]} at terminal ${t1} and ${c.txn[second]} at terminal ${t2}.`,
      { amount_minor: t.amount_minor, gap_ms: gap, window_ms: window, same_terminal: t1 === t2 ? 1 : 0 },
      c.txn[second]!,
    );
  }

  // ---------------------------------------------------------------- refunds and voids

  private placeholder(m: MerchantState, txn: string, h: number, t: Transaction, flags: number): number {
    const base = t.event_time < t.received_time ? t.event_time : t.received_time;
    const refExp = base + this.lookback;
    if (refExp < this.clk) return -1;
    const row = this.allocRow(m, txn, h, flags, this.refWheel.bucketOf(refExp));
    this.cols.f[row * 8 + F_REF_EXP] = refExp;
    return row;
  }

  private onRefund(m: MerchantState, term: TerminalState, t: Transaction): void {
    const orig = t.original_txn_id;
    const pw = term.rules.refund_without_sale;
    if (orig === null) {
      if (pw.enabled) this.fireWithoutSale(m, term, t, 'names no original sale', { no_original_txn: 1 });
      return;
    }
    const c = this.cols;
    const h = hashString(orig, TXN_SEED);
    let row = this.findTxn(m, orig, h);
    let list = row >= 0 ? this.refunds.get(row) : undefined;
    if (list !== undefined) {
      for (const r of list) if (r.txn === t.txn_id) return; // the same refund again
    }
    if (row < 0) row = this.placeholder(m, orig, h, t, 0);
    const before = row >= 0 ? c.refunded[row]! : 0;
    if (row >= 0) {
      if (list === undefined) this.refunds.set(row, (list = []));
      list.push({ txn: t.txn_id, eventId: t.event_id, terminalId: term.id, card: t.card_token, amount: t.amount_minor, et: t.event_time });
      c.refunded[row] = before + t.amount_minor;
      this.markRow(row);
    }
    const flags = row >= 0 ? c.i[row * 16 + I_FLAGS]! : 0;
    if (!(flags & SEEN)) {
      if (pw.enabled) this.fireWithoutSale(m, term, t, `refers to sale ${orig}, which merchant ${m.id} has not seen within the ${fmtDuration(this.lookback)} lookback`, { sale_not_found: 1 });
    } else if (flags & VOIDED) {
      if (pw.enabled) this.fireWithoutSale(m, term, t, `refers to sale ${orig}, which was voided or reversed`, { sale_voided: 1 });
    } else if (before + t.amount_minor > c.f[row * 8 + F_AMOUNT]!) {
      this.fireExceeds(m, term.rules, row, term.id, t.card_token, t.txn_id, t.event_id, t.amount_minor, t.event_time, before, t.received_time);
    }
  }

  private fireWithoutSale(m: MerchantState, term: TerminalState, t: Transaction, why: string, flags: Record<string, number>): void {
    const p = term.rules.refund_without_sale;
    this.emit(
      'refund_without_sale',
      p.severity,
      term.id,
      m.id,
      t.card_token,
      [t.event_id],
      t.event_time,
      t.event_time,
      t.received_time,
      `Approved refund ${t.txn_id} of ${t.amount_minor} ${t.currency} (minor units) at terminal ${term.id} ${why}.`,
      { amount_minor: t.amount_minor, lookback_ms: this.lookback, ...flags },
      t.txn_id,
    );
  }

  private fireExceeds(
    m: MerchantState,
    rules: ResolvedRules,
    sale: number,
    terminalId: string,
    card: string,
    refundTxn: string,
    refundEventId: string,
    refundAmount: number,
    refundEt: number,
    before: number,
    detectedAt: number,
  ): void {
    const p = rules.refund_exceeds_sale;
    if (!p.enabled) return;
    const c = this.cols;
    const total = before + refundAmount;
    const saleAmount = c.f[sale * 8 + F_AMOUNT]!;
    const saleEt = c.f[sale * 8 + F_ET]!;
    this.emit(
      'refund_exceeds_sale',
      p.severity,
      terminalId,
      m.id,
      card,
      [refundEventId],
      Math.min(saleEt, refundEt),
      Math.max(saleEt, refundEt),
      detectedAt,
      `Approved refunds of sale ${c.txn[sale]} add up to ${total} ${c.currency[sale]} (minor units), more than the sale's ${saleAmount}; refund ${refundTxn} at terminal ${terminalId} crossed it.`,
      { sale_amount_minor: saleAmount, refunded_total_minor: total, refunded_before_minor: before, refund_amount_minor: refundAmount, excess_minor: total - saleAmount },
      refundTxn,
    );
  }

  /** The sale arrived after refunds of it: each refund that took the running total above it fires now. */
  private checkRefundsOfLateSale(m: MerchantState, row: number, t: Transaction): void {
    let total = 0;
    const amount = this.cols.f[row * 8 + F_AMOUNT]!;
    for (const r of this.refunds.get(row)!) {
      const before = total;
      total += r.amount;
      if (total > amount) this.fireExceeds(m, this.rulesFor(m, r.terminalId), row, r.terminalId, r.card, r.txn, r.eventId, r.amount, r.et, before, t.received_time);
    }
  }

  private onVoid(m: MerchantState, t: Transaction): void {
    const orig = t.original_txn_id;
    if (orig === null) return;
    const h = hashString(orig, TXN_SEED);
    const row = this.findTxn(m, orig, h);
    if (row >= 0) {
      this.cols.i[row * 16 + I_FLAGS] = this.cols.i[row * 16 + I_FLAGS]! | VOIDED;
      this.markRow(row);
    }
    else this.placeholder(m, orig, h, t, VOIDED);
  }

  // ---------------------------------------------------------------- output

  private emit(
    rule: RuleId,
    severity: Severity,
    terminalId: string,
    merchantId: string,
    card: string | null,
    evidence: string[],
    windowStart: number,
    windowEnd: number,
    detectedAt: number,
    summary: string,
    details: Record<string, number>,
    subjectTxn: string | null,
  ): void {
    const version = RULE_VERSIONS[rule];
    const id = alertId(rule, version, evidence);
    const alert: Alert = {
      alert_id: id,
      rule,
      rule_version: version,
      severity,
      terminal_id: terminalId,
      merchant_id: merchantId,
      card_token: card,
      event_ids: evidence,
      window_start: windowStart,
      window_end: windowEnd,
      detected_at: detectedAt,
      summary,
      details,
      rules_version: this.config.version,
    };
    const out = (this.out ??= { alerts: [], actions: [], shadowAlerts: [] });
    if (resolveRules(this.config, merchantId, terminalId)[rule].mode === 'shadow') {
      out.shadowAlerts.push(alert);
      return;
    }
    out.alerts.push(alert);
    for (const pa of this.config.policy[rule]) {
      const target = ACTION_TARGETS[pa.kind];
      const targetId =
        target === 'TERMINAL' ? terminalId : target === 'CARD' ? card : target === 'TRANSACTION' ? subjectTxn : merchantId; // MERCHANT; ACQUIRER: the merchant's acquirer is not modelled
      if (targetId === null) continue; // excluded by config validation; defensive
      out.actions.push({
        action_id: actionId(id, pa.kind),
        kind: pa.kind,
        target_type: target,
        target_id: targetId,
        merchant_id: merchantId,
        terminal_id: terminalId,
        alert_id: id,
        rule,
        reason: `${rule}@${version}: ${summary}`,
        issued_at: detectedAt,
        expires_at: pa.expires_after === null ? null : detectedAt + pa.expires_after,
      });
    }
  }


  // ---------------------------------------------------------------- expiry (physical, amortised)

  private expireLeg(row: number, gen: number): void {
    const c = this.cols;
    if (c.i[row * 16 + I_GEN] !== gen || !(c.i[row * 16 + I_FLAGS]! & IN_DUP)) return;
    if (c.f[row * 8 + F_DUP_EXP]! > this.clk) {
      this.dupWheel.add(this.dupWheel.bucketOf(c.f[row * 8 + F_DUP_EXP]!), row, gen);
      return;
    }
    const m = this.merchantByIdx[c.i[row * 16 + I_MERCHANT]!]!;
    this.dropLeg(row);
    this.touch(m);
  }

  private expireRow(row: number, gen: number): void {
    const c = this.cols;
    if (c.i[row * 16 + I_GEN] !== gen) return;
    if (c.f[row * 8 + F_REF_EXP]! > this.clk) return; // raised meanwhile: filed again under its new expiry
    const m = this.merchantByIdx[c.i[row * 16 + I_MERCHANT]!]!;
    this.freeRow(row);
    this.touch(m);
  }

  private touch(m: MerchantState): void {
    this.markDirty(m);
    this.touched.push(m);
  }

  private sweep(): void {
    const clk = this.clk;
    this.nextSweepAt = clk + SWEEP_EVERY_MS;
    this.dupWheel.sweep(clk, this.visitDup, this.touchDup);
    this.refWheel.sweep(clk, this.visitRef, this.touchRef);
    if (clk >= this.nextTerminalSweepAt) {
      this.nextTerminalSweepAt = clk + TERMINAL_SWEEP_EVERY_MS;
      for (const m of this.merchants.values()) {
        for (const term of m.terminals.values()) {
          if (clk - term.lastRecv > this.idleTtl && term.gaps === null) {
            this.dropTerminal(term);
            this.touch(m);
          }
        }
      }
    }
    if (this.touched.length > 0) {
      for (const m of this.touched) if (!m.removed && m.rows === 0 && m.terminals.size === 0) this.removeMerchant(m);
      this.touched = [];
    }
  }

  // ---------------------------------------------------------------- snapshots

  takeDirty(): [string, MerchantSnapshot | null][] {
    const list = this.dirtyList;
    this.dirtyList = [];
    const out: [string, MerchantSnapshot | null][] = [];
    for (const m of list) {
      if (!m.dirty) continue; // replaced by restoreMerchant meanwhile
      m.dirty = false;
      if (m.removed) {
        out.push([m.id, null]);
        continue;
      }
      const snap = this.snapshotMerchant(m);
      if (snap === null) this.removeMerchant(m);
      out.push([m.id, snap]);
    }
    return out;
  }

  private removeMerchant(m: MerchantState): void {
    for (const term of [...m.terminals.values()]) this.dropTerminal(term);
    while (m.head >= 0) this.freeRow(m.head);
    m.removed = true;
    if (this.merchants.get(m.id) === m) this.merchants.delete(m.id);
    if (this.merchantByIdx[m.idx] === m) {
      this.merchantByIdx[m.idx] = undefined;
      this.freeIdx.push(m.idx);
    }
  }

  /** The merchant's logically live state, or null when nothing is live. */
  private terminalLive(term: TerminalState): boolean {
    return !(this.clk - term.lastRecv > this.idleTtl && term.gaps === null);
  }

  private terminalSnapshot(term: TerminalState): TerminalSnapshot {
    return {
      id: term.id,
      last_received: term.lastRecv,
      max_seq: term.maxSeq,
      max_seq_event_id: term.maxSeqEventId,
      max_seq_event_time: term.maxSeqEt,
      lag_episode: term.lagEpisode,
      sales_seen: term.salesSeen,
      sample: sampleValues(term),
      gaps: (term.gaps ?? []).map(
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
      ),
    };
  }

  private saleSnapshot(r: number): SaleSnapshot {
    const c = this.cols;
    const f = c.i[r * 16 + I_FLAGS]!;
    const dup = (f & IN_DUP) !== 0 && this.clk <= c.f[r * 8 + F_DUP_EXP]!;
    return {
      txn_id: c.txn[r]!,
      event_id: dup ? c.eventId[r]! : null,
      card_token: dup ? c.card[r]! : null,
      terminal_id: c.terminalId[r]!,
      seen: (f & SEEN) !== 0,
      voided: (f & VOIDED) !== 0,
      dup,
      amount: c.f[r * 8 + F_AMOUNT]!,
      currency: c.currency[r]!,
      event_time: c.f[r * 8 + F_ET]!,
      dup_expiry: c.f[r * 8 + F_DUP_EXP]!,
      ref_expiry: c.f[r * 8 + F_REF_EXP]!,
      refunded: c.refunded[r]!,
      refunds: (this.refunds.get(r) ?? []).map((x) => ({ txn_id: x.txn, event_id: x.eventId, terminal_id: x.terminalId, card_token: x.card, amount: x.amount, event_time: x.et })),
    };
  }

  /** The merchant's logically live state, or null when nothing is live. */
  private snapshotMerchant(m: MerchantState): MerchantSnapshot | null {
    const clk = this.clk;
    const terminals: TerminalSnapshot[] = [];
    for (const term of m.terminals.values()) if (this.terminalLive(term)) terminals.push(this.terminalSnapshot(term));
    const c = this.cols;
    const sales: SaleSnapshot[] = [];
    for (let r = m.head; r >= 0; r = c.i[r * 16 + I_NEXT]!) if (clk <= c.f[r * 8 + F_REF_EXP]!) sales.push(this.saleSnapshot(r));
    if (terminals.length === 0 && sales.length === 0) return null;
    return { v: 1, clock: clk, terminals, sales };
  }

  // ---------------------------------------------------------------- entity-level changes

  takeChangedEntities(): EntityChange[] {
    if (!this.trackEntities) {
      this.trackEntities = true;
      return [];
    }
    const out: EntityChange[] = this.tombstones;
    this.tombstones = [];
    const terms = this.dirtyTerms;
    this.dirtyTerms = [];
    for (const term of terms) {
      term.eDirty = false;
      // A dropped or logically expired terminal is tombstoned when it is physically removed.
      if (term.slot >= 0 && this.terminalLive(term)) out.push({ merchant: term.merchant.id, kind: 'terminal', id: term.id, value: this.terminalSnapshot(term) });
    }
    const rows = this.dirtyRows;
    this.dirtyRows = [];
    const c = this.cols;
    for (let k = 0; k < rows.length; k += 2) {
      const r = rows[k]!;
      if (c.i[r * 16 + I_GEN] !== rows[k + 1]) continue; // freed since (its tombstone is in out)
      c.i[r * 16 + I_FLAGS] = c.i[r * 16 + I_FLAGS]! & ~E_DIRTY;
      if (this.clk > c.f[r * 8 + F_REF_EXP]!) continue;
      out.push({ merchant: this.merchantByIdx[c.i[r * 16 + I_MERCHANT]!]!.id, kind: 'sale', id: c.txn[r]!, value: this.saleSnapshot(r) });
    }
    return out;
  }

  private markTerminal(term: TerminalState): void {
    if (this.trackEntities && !term.eDirty) {
      term.eDirty = true;
      this.dirtyTerms.push(term);
    }
  }

  private markRow(row: number): void {
    if (!this.trackEntities) return;
    const c = this.cols;
    const f = c.i[row * 16 + I_FLAGS]!;
    if (f & E_DIRTY) return;
    c.i[row * 16 + I_FLAGS] = f | E_DIRTY;
    this.dirtyRows.push(row, c.i[row * 16 + I_GEN]!);
  }

  snapshotAll(): EngineSnapshot {
    const merchants: [string, MerchantSnapshot][] = [];
    for (const m of this.merchants.values()) {
      const s = this.snapshotMerchant(m);
      if (s !== null) merchants.push([m.id, s]);
    }
    return { v: 1, clock: this.clk, merchants };
  }

  restoreAll(snapshot: EngineSnapshot): void {
    this.restoring = true;
    for (const m of [...this.merchants.values()]) {
      this.removeMerchant(m);
      m.dirty = false;
    }
    this.dirtyList = [];
    this.timers.clear();
    this.setClock(snapshot.clock);
    this.restoring = false;
    for (const [id, s] of snapshot.merchants) this.restoreMerchant(id, s);
  }

  restoreMerchant(merchantId: string, snap: MerchantSnapshot | null): void {
    // Restored state is what the changelog already holds: no tombstones for what it replaces, and
    // nothing restored counts as changed.
    this.restoring = true;
    try {
      this.restoreMerchantState(merchantId, snap);
    } finally {
      this.restoring = false;
    }
  }

  private restoreMerchantState(merchantId: string, snap: MerchantSnapshot | null): void {
    const existing = this.merchants.get(merchantId);
    if (existing !== undefined) {
      this.removeMerchant(existing);
      existing.dirty = false; // the restored state is what the changelog holds: no tombstone for the old one
    }
    if (snap === null) return;
    if (snap.v !== 1) throw new TypeError(`restoreMerchant(${merchantId}): unknown snapshot version ${String(snap.v)}`);
    this.setClock(snap.clock);
    const m = this.newMerchant(merchantId);
    for (const ts of snap.terminals) {
      const term: TerminalState = {
        id: ts.id,
        merchant: m,
        slot: -1,
        eDirty: false,
        hash: 0,
        rules: resolveRules(this.config, merchantId, ts.id),
        lastRecv: ts.last_received,
        maxSeq: ts.max_seq,
        maxSeqEventId: ts.max_seq_event_id,
        maxSeqEt: ts.max_seq_event_time,
        lagEpisode: ts.lag_episode,
        salesSeen: ts.sales_seen,
        gaps: null,
        sSlab: null,
        sOff: 0,
        sHead: 0,
        sN: 0,
        sAdded: 0,
        sN0: 0,
        sLB: 0,
      };
      if (ts.sample.length > 0 || term.rules.abnormal_amount.enabled) {
        const cap = term.rules.abnormal_amount.sample_size;
        newSample(term, this.slab(cap));
        // A smaller configured sample keeps the most recent values.
        for (const v of ts.sample.slice(Math.max(0, ts.sample.length - cap))) sampleAdd(term, v);
        this.nSamples++;
      }
      if (ts.gaps.length > 0) {
        term.gaps = ts.gaps.map((g) => ({
          heapIndex: -1,
          from: g.from,
          to: g.to,
          missing: [...g.missing],
          due: g.due,
          lowEventId: g.low_event_id,
          lowEt: g.low_event_time,
          highEventId: g.high_event_id,
          highEt: g.high_event_time,
          terminal: term,
        }));
        for (const g of term.gaps) this.timers.push(g);
        this.nGaps += term.gaps.length;
      }
      this.registerTerminal(term);
    }
    const c = this.cols;
    for (const s of snap.sales) {
      const h = hashString(s.txn_id, TXN_SEED);
      const row = this.allocRow(m, s.txn_id, h, (s.seen ? SEEN : 0) | (s.voided ? VOIDED : 0), this.refWheel.bucketOf(s.ref_expiry));
      c.f[row * 8 + F_REF_EXP] = s.ref_expiry;
      c.eventId[row] = s.event_id;
      c.terminalId[row] = s.terminal_id;
      c.f[row * 8 + F_AMOUNT] = s.amount;
      c.currency[row] = s.currency;
      c.f[row * 8 + F_ET] = s.event_time;
      c.f[row * 8 + F_DUP_EXP] = s.dup_expiry;
      c.refunded[row] = s.refunded;
      if (s.refunds.length > 0) {
        this.refunds.set(
          row,
          s.refunds.map((x) => ({ txn: x.txn_id, eventId: x.event_id, terminalId: x.terminal_id, card: x.card_token, amount: x.amount, et: x.event_time })),
        );
      }
      if (s.dup && s.card_token !== null && s.event_id !== null) {
        const dh = mixInt(hashString(s.card_token, CARD_SEED), s.amount);
        const slot = this.findDupSlot(m.idx, s.card_token, s.amount, dh);
        c.card[row] = s.card_token;
        if (slot >= 0) {
          c.i[row * 16 + I_LEG_NEXT] = this.dupIdx.row(slot);
          this.dupIdx.set(slot, row);
        } else this.dupIdx.insert(dh, row);
        c.i[row * 16 + I_DUP_HASH] = dh;
        c.i[row * 16 + I_FLAGS] = c.i[row * 16 + I_FLAGS]! | IN_DUP;
        this.dupWheel.add(this.dupWheel.bucketOf(s.dup_expiry), row, c.i[row * 16 + I_GEN]!);
        this.nDupLegs++;
      }
    }
  }

  stats(): EngineStats {
    return {
      clock: this.clk,
      merchants: this.merchants.size,
      terminals: this.nTerminals,
      cards: this.dupIdx.count,
      sales: this.cols.live,
      duplicateLegs: this.nDupLegs,
      pendingGaps: this.nGaps,
      samples: this.nSamples,
      events: this.nEvents,
      lateSales: this.nLateSales,
    };
  }
}
