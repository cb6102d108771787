// The rule engine: (state, event, clock) -> (state, alerts, actions). Pure: no I/O, no wall clock.
//
// This file is the loop: it keeps the clock, the timers, the merchants and terminals and the sale
// ledger (shared storage), routes every event, clock advance and due timer to the registered rules
// (src/rules/registry.ts; each rule in its own folder), and collects their alerts and actions. State
// is organised per merchant (every rule is merchant-local and merchant_id is the Kafka key). Expiry
// is *logical*: every lookup checks an entry's expiry against the clock, so results never depend on
// when the amortised physical sweep ran, on how often the clock was advanced, or on where a run was
// restored from the changelog.
import type { Action, Alert, AlertUpdate, Heartbeat, Transaction } from '@tillwatch/schemas';
import { ACTION_TARGETS, resolveVariant, type ResolvedRules, type RulesConfig } from './config.js';
import { IndexedMinHeap } from './heap.js';
import { actionId, alertId } from './ids.js';
import { SampleSlab } from './median.js';
import { RefundReasons } from './reasons/index.js';
import { RULES } from './rules/registry.js';
import { PREFETCH_MAX, type EngineCore, type MerchantState, type RuleCommon, type RuleInstance, type RuleStats, type TerminalState, type Timer } from './rules/types.js';
import { E_DIRTY, SEEN, SaleLedger, TXN_SEED, VOIDED, type LedgerOwner, type RefundResult, type SaleFields } from './storage/ledger.js';
import { TerminalRowTable, type TerminalFields } from './storage/terminal-rows.js';
import { RowIndex, hashString } from './store.js';
import { ObjectStateWriter, fieldKey, fieldKeys, type FieldKey, type StateWriter } from './state-writer.js';
import type { EngineOptions, EntityChange, EntitySink, EngineOutput, EngineStats, MerchantSnapshot, RuleEngine, SaleSnapshot, TerminalSnapshot } from './types.js';

/** The engine's own fields of a terminal's changelog value. */
const K = fieldKeys('id', 'last_received', 'beats', 'shadow');

const EMPTY_OUTPUT: EngineOutput = Object.freeze({
  alerts: Object.freeze([]) as unknown as Alert[],
  actions: Object.freeze([]) as unknown as Action[],
  shadowAlerts: Object.freeze([]) as unknown as Alert[],
});

/** Physical sweeps run at most this often (clock time); expiry buckets have the same width. */
const SWEEP_EVERY_MS = 5 * 60_000;
const TERMINAL_SWEEP_EVERY_MS = 60 * 60_000;
const TERMINAL_SEED = 0x27d4eb2f;
/** Instance slots per rule: 0 = active, 1 = shadow. */
const VARIANTS = 2;

/** What identifies a terminal in an input (a transaction or a heartbeat). */
type TerminalRef = Pick<Transaction, 'terminal_id' | 'merchant_id' | 'received_time'>;

const timerLess = (a: Timer, b: Timer): boolean => {
  if (a.due !== b.due) return a.due < b.due;
  const ta = a.terminal.id;
  const tb = b.terminal.id;
  if (ta !== tb) return ta < tb;
  const ma = a.terminal.merchant.id;
  const mb = b.terminal.merchant.id;
  if (ma !== mb) return ma < mb;
  if (a.owner.slot !== b.owner.slot) return a.owner.slot < b.owner.slot;
  return a.order < b.order;
};

export function createRuleEngine(config: RulesConfig, options: EngineOptions = {}): RuleEngine {
  return new Engine(config, options);
}

class Engine implements RuleEngine, EngineCore, LedgerOwner {
  clk = 0;
  config: RulesConfig;
  lateness: number;
  lookback: number;
  private idleTtl: number;
  private hasTerminalOverrides: boolean;
  /** Variants in use: 1 (active only) or 2 (some rule has a shadow instance). */
  private variants = 1;
  readonly expectedSales: number;
  readonly sales: SaleLedger;
  readonly timers = new IndexedMinHeap<Timer>(timerLess);
  private readonly merchants = new Map<string, MerchantState>();
  private readonly merchantByIdx: (MerchantState | undefined)[] = [];
  private readonly freeIdx: number[] = [];
  private out: EngineOutput | null = null;
  private nextSweepAt = 0;
  private nextTerminalSweepAt = 0;
  // Terminals: one small engine-wide index (terminal_id hash -> slot), verified against (terminal, merchant).
  private readonly termIdx = new RowIndex(4096);
  private readonly termBySlot: (TerminalState | undefined)[] = [];
  private readonly termFree: number[] = [];
  /** Numeric per-terminal state of the rules, one row per terminal slot (storage/terminal-rows.ts); more tables only when one row is full. */
  private readonly rowTables: TerminalRowTable[] = [new TerminalRowTable()];
  /** Median samples, one slab per sample size. */
  private readonly slabs = new Map<number, SampleSlab>();
  // Rule instances by slot (rule index * VARIANTS + variant), and per hook, in registry order.
  private readonly instances: (RuleInstance | undefined)[] = [];
  private all: RuleInstance[] = [];
  private onEventHooks: RuleInstance[] = [];
  private heartbeatHooks: RuleInstance[] = [];
  private beatingHooks: RuleInstance[] = [];
  private judgeHooks: RuleInstance[] = [];
  private storedHooks: RuleInstance[] = [];
  /** storedHooks without those that act only on a sale whose refunds came first (saleStoredOnlyIfRefunded). */
  private storedPlainHooks: RuleInstance[] = [];
  private refundHooks: RuleInstance[] = [];
  private voidHooks: RuleInstance[] = [];
  private prefetchHooks: RuleInstance[] = [];
  private sweepHooks: RuleInstance[] = [];
  private holdHooks: RuleInstance[] = [];
  private rowFreedHooks: RuleInstance[] = [];
  private readonly refund: RefundResult = { row: -1, before: 0 };
  /** The resolved rules of every scope without an override (see resolve). */
  private sharedRules: ResolvedRules[] | null = null;
  /** Sink for the early probe loads (kept so the compiler cannot drop them). */
  prefetchSink = 0;
  // Sales hinted by prefetch(): the objects, their txn hashes, how many, and the next one expected.
  private readonly hinted: (Transaction | null)[] = new Array<Transaction | null>(PREFETCH_MAX).fill(null);
  private readonly hintTxn = new Int32Array(PREFETCH_MAX);
  private hintCount = 0;
  private hintAt = 0;
  // Inputs hinted by prefetch() (all kinds) and the terminal each had then (undefined: none yet).
  private readonly termHinted: (TerminalRef | null)[] = new Array<TerminalRef | null>(PREFETCH_MAX).fill(null);
  private readonly termHintOf: (TerminalState | undefined)[] = new Array<TerminalState | undefined>(PREFETCH_MAX).fill(undefined);
  private readonly termHintHash = new Int32Array(PREFETCH_MAX);
  private termHintCount = 0;
  private termHintAt = 0;
  private touched: MerchantState[] = [];
  // Entity-level change tracking (takeChangedEntities), on from its first call.
  private trackEntities = false;
  private restoring = false;
  private dirtyTerms: TerminalState[] = [];
  private dirtyRows: number[] = [];
  private tombstones: EntityChange[] = [];
  /** Field key of each shadow instance's map in a terminal's value (its rule id), by instance slot. */
  private readonly shadowKeys: FieldKey[] = [];
  private nTerminals = 0;
  private nEvents = 0;
  /** Why each approved refund, reversal and void happened (src/reasons/). */
  private readonly reasons: RefundReasons;

  constructor(config: RulesConfig, options: EngineOptions) {
    // Growing the big buffers copies them and makes V8 collect (external memory): a caller that knows
    // roughly how many sales it will hold (a backtest knows its input size) sizes them once.
    this.expectedSales = Math.min(Math.max(4096, Math.ceil(options.expectedSales ?? 0)), 1 << 24);
    this.config = config;
    this.lateness = config.engine.allowed_lateness;
    this.lookback = config.engine.refund_lookback;
    this.idleTtl = config.engine.terminal_idle_ttl;
    this.hasTerminalOverrides = Object.keys(config.overrides.terminals).length > 0;
    this.sales = new SaleLedger(this.expectedSales, SWEEP_EVERY_MS, this);
    this.buildInstances();
    this.reasons = new RefundReasons(this, this.all);
  }

  // ---------------------------------------------------------------- rule instances

  /** Creates the instances the config asks for, drops the others, and rebuilds the hook lists. */
  private buildInstances(): void {
    const cfg = this.config;
    this.variants = Object.keys(cfg.shadow).length > 0 ? 2 : 1;
    RULES.forEach((def, i) => {
      const activeSlot = i * VARIANTS;
      let active = this.instances[activeSlot];
      if (active === undefined) this.instances[activeSlot] = active = def.create(this, activeSlot, 0);
      const shadowSlot = activeSlot + 1;
      const want = Object.hasOwn(cfg.shadow, def.id);
      let shadow = this.instances[shadowSlot];
      if (want && shadow === undefined) this.instances[shadowSlot] = shadow = def.create(this, shadowSlot, 1);
      else if (!want && shadow !== undefined) {
        shadow.dispose?.(this.allTerminals());
        this.instances[shadowSlot] = shadow = undefined;
      }
      active.attachShadow?.(shadow ?? null);
    });
    this.all = this.instances.filter((x): x is RuleInstance => x !== undefined);
    // The shadow instance of a rule that shares state across variants has no hooks: the active one runs it.
    const withHook = (h: keyof RuleInstance): RuleInstance[] => this.all.filter((x) => typeof x[h] === 'function');
    this.onEventHooks = withHook('onEvent');
    this.heartbeatHooks = withHook('onHeartbeat');
    this.beatingHooks = withHook('onBeatingEvent');
    this.judgeHooks = withHook('onSaleJudge');
    this.storedHooks = withHook('onSaleStored');
    this.storedPlainHooks = this.storedHooks.filter((x) => x.saleStoredOnlyIfRefunded !== true);
    this.refundHooks = withHook('onRefund');
    this.voidHooks = withHook('onVoid');
    this.prefetchHooks = withHook('prefetchSale');
    for (const x of this.prefetchHooks) if (x.hintSale === undefined || x.probeHint === undefined) throw new TypeError(`rule ${x.def.id}: prefetchSale needs hintSale and probeHint`);
    this.sweepHooks = withHook('sweep');
    this.holdHooks = withHook('holdsTerminal');
    this.rowFreedHooks = withHook('onRowFreed');
  }

  private *allTerminals(): Iterable<TerminalState> {
    for (const m of this.merchants.values()) yield* m.terminals.values();
  }

  private resolve(merchantId: string, terminalId: string | null): ResolvedRules[] {
    const active = resolveVariant(this.config, 0, merchantId, terminalId);
    // Without an override (active only) every merchant and terminal shares one array: rules read
    // `term.rules[variant]` on every event, and a per-terminal array would be one more cache line.
    if (this.variants === 1 && active === this.config.rules) {
      if (this.sharedRules === null || this.sharedRules[0] !== active) this.sharedRules = [active];
      return this.sharedRules;
    }
    const out = [active];
    if (this.variants === 2) out.push(resolveVariant(this.config, 1, merchantId, terminalId));
    return out;
  }

  /**
   * Replaces the rule set for subsequent events and timers, keeping state (see the rules README for
   * what each rule does with its state on a change). Atomic: nothing is evaluated half-switched.
   */
  setRules(config: RulesConfig): void {
    // New rule instances have no hint state: a hint given before must not be used after.
    this.dropHints();
    this.config = config;
    this.lateness = config.engine.allowed_lateness;
    this.lookback = config.engine.refund_lookback;
    this.idleTtl = config.engine.terminal_idle_ttl;
    this.hasTerminalOverrides = Object.keys(config.overrides.terminals).length > 0;
    this.variants = Object.keys(config.shadow).length > 0 ? 2 : 1;
    for (const m of this.merchants.values()) {
      m.rules = this.resolve(m.id, null);
      for (const term of m.terminals.values()) term.rules = this.resolve(m.id, term.id);
    }
    this.buildInstances();
    for (const inst of this.all) inst.reconfigure?.();
  }

  rulesVersion(): number {
    return this.config.version;
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
      g.owner.onTimer!(g);
      g = h.peek();
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

    // Approved sales probe the big indexes. Their hashes depend on the event alone, so the first
    // probe lines are requested now and their cache misses overlap each other and the terminal lookup:
    // every hash first (the rules hash inside prefetchSale, just before their load), then the loads
    // back to back (the ledger's last), summed into a sink.
    // A sale hinted by prefetch() has its hashes computed and its loads issued already.
    const sale = t.kind === 'SALE' && t.status === 'APPROVED';
    let th = 0;
    if (sale) {
      let hint = this.hintAt;
      if (hint < this.hintCount && this.hinted[hint] === t) {
        th = this.hintTxn[hint]!;
        this.hinted[hint] = null;
        this.hintAt = hint + 1;
      } else {
        hint = -1;
        th = hashString(t.txn_id, TXN_SEED);
      }
      const pre = this.prefetchHooks;
      let sink = 0;
      for (let i = 0; i < pre.length; i++) sink ^= pre[i]!.prefetchSale!(t, hint);
      this.prefetchSink = sink ^ this.sales.probeTxn(th);
    }
    let term = this.terminalOf(t);
    let m: MerchantState;
    if (term === undefined || this.clk - term.lastRecv > this.idleTtl) {
      m = term !== undefined ? term.merchant : (this.merchants.get(t.merchant_id) ?? this.newMerchant(t.merchant_id));
      term = this.newTerminal(m, t);
    } else {
      m = term.merchant;
      if (recv > term.lastRecv) term.lastRecv = recv;
    }
    const ev = this.onEventHooks;
    for (let i = 0; i < ev.length; i++) ev[i]!.onEvent!(term, t);
    if (term.beats) {
      const bh = this.beatingHooks;
      for (let i = 0; i < bh.length; i++) bh[i]!.onBeatingEvent!(term, t);
    }

    if (sale) this.onSale(m, term, t, th);
    else if (t.status === 'APPROVED' && t.kind !== 'SALE') {
      // The sale row it names (-1: none), or -2 for a refund delivered twice or a sale voided already.
      let row = -1;
      if (t.kind === 'REFUND') row = this.onRefund(m, term, t);
      else if (t.original_txn_id !== null) row = this.onVoid(term, m, t, t.original_txn_id); // REVERSAL, VOID
      // Its reason, after the rules ran on it (a refund delivered twice, or a sale voided already, has it already).
      if (row !== -2) this.emitReason(term, t, row);
    }
    this.markTerminal(term);
    // A timer created already due (a gap whose higher seq arrived long after the clock) fires now.
    const top2 = this.timers.peek();
    if (top2 !== undefined && top2.due <= this.clk) this.fireDue();
    return this.flush();
  }

  prefetch(inputs: readonly (Transaction | Heartbeat)[], from: number, to: number): void {
    // Every hash first, then the loads back to back (their cache misses overlap each other).
    const pre = this.prefetchHooks;
    const end = Math.min(to, inputs.length);
    let n = 0;
    for (let i = Math.max(0, from); i < end && n < PREFETCH_MAX; i++) {
      const t = inputs[i] as Transaction;
      if (t.kind !== 'SALE' || t.status !== 'APPROVED') continue; // a heartbeat has no kind
      this.hinted[n] = t;
      this.hintTxn[n] = hashString(t.txn_id, TXN_SEED);
      for (let j = 0; j < pre.length; j++) pre[j]!.hintSale!(t, n);
      n++;
    }
    for (let k = n; k < this.hintCount; k++) this.hinted[k] = null; // no reference kept to old inputs
    this.hintCount = n;
    this.hintAt = 0;
    let sink = 0;
    for (let k = 0; k < n; k++) {
      sink ^= this.sales.probeTxn(this.hintTxn[k]!);
      for (let j = 0; j < pre.length; j++) sink ^= pre[j]!.probeHint!(k);
    }
    // The rows these sales will be stored in (when they are new).
    this.prefetchSink = sink ^ this.sales.rows.touchNext(n);
    // The terminals of all the inputs, looked up one after the other (independent lookups, whose
    // loads of terminal and merchant objects overlap); an input then takes its terminal from here if
    // it is still registered (a terminal dropped or replaced meanwhile has slot -1: looked up again).
    // Their hashes first, then the first probe line of each (the misses overlap), then the lookups.
    let m = 0;
    const termHash = this.termHintHash;
    for (let i = Math.max(0, from); i < end && m < PREFETCH_MAX; i++) {
      const x = inputs[i]!;
      this.termHinted[m] = x;
      termHash[m++] = hashString(x.terminal_id, TERMINAL_SEED);
    }
    const idx = this.termIdx;
    let rowSink = 0;
    for (let k = 0; k < m; k++) rowSink ^= idx.probe(termHash[k]!);
    const rows = this.rowTables[0]!;
    for (let k = 0; k < m; k++) {
      const term = this.findTerminalHashed(this.termHinted[k]!, termHash[k]!);
      this.termHintOf[k] = term;
      if (term !== undefined) rowSink += rows.touch(term.slot); // the rules' per-terminal numbers
    }
    this.prefetchSink ^= rowSink | 0;
    for (let k = m; k < this.termHintCount; k++) {
      this.termHinted[k] = null;
      this.termHintOf[k] = undefined;
    }
    this.termHintCount = m;
    this.termHintAt = 0;
    // The inputs after these (the next call's), whose objects and ids are read first thing there:
    // requested now, so their cache misses overlap the events in between.
    const ahead = Math.min(inputs.length, end + (end - from));
    let inSink = 0;
    for (let i = end; i < ahead; i++) inSink += inputs[i]!.terminal_id.length;
    this.prefetchSink ^= inSink;
  }

  /** The terminal of an input: from prefetch's lookup when it hinted this input next, else looked up now. */
  private terminalOf(t: TerminalRef): TerminalState | undefined {
    const k = this.termHintAt;
    if (k < this.termHintCount && this.termHinted[k] === t) {
      this.termHintAt = k + 1;
      const term = this.termHintOf[k];
      this.termHinted[k] = null;
      this.termHintOf[k] = undefined;
      if (term !== undefined && term.slot >= 0) return term;
    }
    return this.findTerminal(t);
  }

  onHeartbeat(h: Heartbeat): EngineOutput {
    const recv = h.received_time;
    if (recv > this.clk) this.clk = recv;
    const top = this.timers.peek();
    if (top !== undefined && top.due <= this.clk) this.fireDue();
    if (this.clk >= this.nextSweepAt) this.sweep();
    // A heartbeat keeps its terminal known (and alive against the idle TTL) like a transaction does.
    let term = this.terminalOf(h);
    if (term === undefined || this.clk - term.lastRecv > this.idleTtl) {
      const m = term !== undefined ? term.merchant : (this.merchants.get(h.merchant_id) ?? this.newMerchant(h.merchant_id));
      term = this.newTerminal(m, h);
    } else if (recv > term.lastRecv) term.lastRecv = recv;
    term.beats = true;
    const hooks = this.heartbeatHooks;
    for (let i = 0; i < hooks.length; i++) hooks[i]!.onHeartbeat!(term, h);
    this.markTerminal(term);
    const top2 = this.timers.peek();
    if (top2 !== undefined && top2.due <= this.clk) this.fireDue();
    return this.flush();
  }

  private onSale(m: MerchantState, term: TerminalState, t: Transaction, th: number): void {
    const ledger = this.sales;
    let row = ledger.find(m, t.txn_id, th);
    if (row >= 0 && ledger.rows.flags(row) & SEEN) return; // the same sale again (redelivery, status re-sent)
    const voided = row >= 0 && (ledger.rows.flags(row) & VOIDED) !== 0;
    const judges = this.judgeHooks;
    for (let i = 0; i < judges.length; i++) judges[i]!.onSaleJudge!(term, t, voided);
    const hadRefunds = row >= 0 && ledger.hasRefunds(row);
    row = ledger.storeSale(m, term.id, t, th, row, this.lookback);
    // Registry order either way: the hooks skipped without refunds would have returned at once.
    const stored = hadRefunds ? this.storedHooks : this.storedPlainHooks;
    for (let i = 0; i < stored.length; i++) stored[i]!.onSaleStored!(term, t, row, voided, hadRefunds);
    this.reasons.onSaleStored(term, t, row);
  }

  /** The sale row the refund names (-1: none kept), or -2: the same refund again (nothing was applied). */
  private onRefund(m: MerchantState, term: TerminalState, t: Transaction): number {
    const orig = t.original_txn_id;
    let r: RefundResult | null = this.refund;
    if (orig === null) {
      r.row = -1;
      r.before = 0;
    } else {
      r = this.sales.recordRefund(m, term.id, t, orig, this.lookback, r);
      if (r === null) return -2; // the same refund again
    }
    const row = r.row;
    const hooks = this.refundHooks;
    for (let i = 0; i < hooks.length; i++) hooks[i]!.onRefund!(term, t, row, r.before);
    return row;
  }

  /** row: the sale row the ledger gave the refund, reversal or void (-1: none), as the reason would look it up. */
  private emitReason(term: TerminalState, t: Transaction, row: number): void {
    const reason = this.reasons.reason(term, t, this.out?.alerts ?? [], row);
    ((this.out ??= { alerts: [], actions: [], shadowAlerts: [] }).refundReasons ??= []).push(reason);
  }

  private onVoid(term: TerminalState, m: MerchantState, t: Transaction, orig: string): number {
    const row = this.sales.recordVoid(m, t, orig, this.lookback);
    if (row === -2) return -2; // voided already: the rules saw the first one
    const hooks = this.voidHooks;
    for (let i = 0; i < hooks.length; i++) hooks[i]!.onVoid!(term, t, row);
    return row;
  }

  private newMerchant(id: string): MerchantState {
    const idx = this.freeIdx.pop() ?? this.merchantByIdx.length;
    const m: MerchantState = { id, idx, rules: this.resolve(id, null), terminals: new Map(), head: -1, tail: -1, rows: 0, removed: false, currency: '' };
    this.merchants.set(id, m);
    this.merchantByIdx[idx] = m;
    return m;
  }

  private findTerminal(t: TerminalRef): TerminalState | undefined {
    return this.findTerminalHashed(t, hashString(t.terminal_id, TERMINAL_SEED));
  }

  /** findTerminal with the terminal id's hash computed already. */
  private findTerminalHashed(t: TerminalRef, h: number): TerminalState | undefined {
    const tid = t.terminal_id;
    const idx = this.termIdx;
    for (let i = idx.first(h); ; i = idx.nextSlot(i)) {
      const r = idx.rowAt(i);
      if (r < 0) return undefined;
      if (idx.hashAt(i) === h) {
        const term = this.termBySlot[r]!;
        if (term.id === tid && term.merchant.id === t.merchant_id) return term;
      }
    }
  }

  private registerTerminal(term: TerminalState): void {
    const slot = this.termFree.pop() ?? this.termBySlot.length;
    term.slot = slot;
    term.hash = hashString(term.id, TERMINAL_SEED);
    this.termBySlot[slot] = term;
    const tables = this.rowTables;
    for (let i = 0; i < tables.length; i++) tables[i]!.reset(slot);
    this.termIdx.insert(term.hash, slot);
    term.merchant.terminals.set(term.id, term);
    this.nTerminals++;
  }

  private createTerminal(m: MerchantState, id: string, lastRecv: number): TerminalState {
    return { id, merchant: m, slot: -1, eDirty: false, hash: 0, rules: this.resolve(m.id, id), lastRecv, beats: false, st: new Array<unknown>(RULES.length * VARIANTS) };
  }

  /** First event of a terminal (or first after it was forgotten for idleness); the rules initialise their state on it. */
  private newTerminal(m: MerchantState, t: TerminalRef): TerminalState {
    const old = m.terminals.get(t.terminal_id);
    if (old !== undefined) this.dropTerminal(old);
    const term = this.createTerminal(m, t.terminal_id, t.received_time);
    this.registerTerminal(term);
    return term;
  }

  private dropTerminal(term: TerminalState): void {
    for (const inst of this.all) inst.dropTerminal?.(term);
    this.nTerminals--;
    term.merchant.terminals.delete(term.id);
    this.termIdx.remove(term.hash, term.slot);
    this.termBySlot[term.slot] = undefined;
    this.termFree.push(term.slot);
    term.slot = -1;
    if (this.trackEntities && !this.restoring) this.tombstones.push({ merchant: term.merchant.id, kind: 'terminal', id: term.id, value: null });
  }

  terminalFields(count: number, init: number): TerminalFields {
    for (const table of this.rowTables) {
      const range = table.reserve(count, init);
      if (range !== null) return range;
    }
    const table = new TerminalRowTable(Math.max(256, this.termBySlot.length));
    this.rowTables.push(table);
    const range = table.reserve(count, init);
    if (range === null) throw new RangeError(`terminalFields: a rule asked for ${count} fields, more than a terminal row holds`);
    return range;
  }

  slab(capacity: number): SampleSlab {
    let s = this.slabs.get(capacity);
    if (s === undefined) this.slabs.set(capacity, (s = new SampleSlab(capacity, 256)));
    return s;
  }

  rulesFor(m: MerchantState, terminalId: string): ResolvedRules[] {
    if (!this.hasTerminalOverrides) return m.rules;
    return m.terminals.get(terminalId)?.rules ?? this.resolve(m.id, terminalId);
  }

  merchantOfRow(row: number): MerchantState {
    return this.merchantByIdx[this.sales.rows.merchant(row)]!;
  }

  merchantOfIdx(idx: number): MerchantState {
    return this.merchantByIdx[idx]!;
  }

  rowFreed(m: MerchantState, row: number): void {
    if (this.trackEntities && !this.restoring) this.tombstones.push({ merchant: m.id, kind: 'sale', id: this.sales.rows.txn[row]!, value: null });
    const hooks = this.rowFreedHooks;
    for (let i = 0; i < hooks.length; i++) hooks[i]!.onRowFreed!(row);
  }

  // ---------------------------------------------------------------- output

  emit(
    inst: RuleInstance,
    params: RuleCommon,
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
    currency: string | null = null,
    amountMinor: number | null = null,
  ): string {
    const rule = inst.def.id;
    const version = inst.def.version;
    // The id depends on rule, rule version and evidence only: a new rules document version raising
    // the same alert gives the same id.
    const id = alertId(rule, version, evidence);
    const alert: Alert = {
      alert_id: id,
      rule,
      rule_version: version,
      severity: params.severity,
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
      // The money the alert is about, so ClickHouse rows can sum it per currency (null: no amount).
      currency: amountMinor === null ? null : currency,
      amount_minor: currency === null ? null : amountMinor,
    };
    const out = (this.out ??= { alerts: [], actions: [], shadowAlerts: [] });
    // A shadow instance, or a rule/override in mode shadow: evaluated, reported apart, no actions.
    if (inst.variant === 1 || params.mode === 'shadow') {
      out.shadowAlerts.push(alert);
      return id;
    }
    out.alerts.push(alert);
    for (const pa of this.config.policy[rule as keyof RulesConfig['policy']]) {
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
    return id;
  }

  emitUpdate(update: AlertUpdate): void {
    ((this.out ??= { alerts: [], actions: [], shadowAlerts: [] }).updates ??= []).push(update);
  }

  // ---------------------------------------------------------------- expiry (physical, amortised)

  touch(m: MerchantState): void {
    this.touched.push(m);
  }

  private held(term: TerminalState): boolean {
    const hooks = this.holdHooks;
    for (let i = 0; i < hooks.length; i++) if (hooks[i]!.holdsTerminal!(term)) return true;
    return false;
  }

  /** Logically live: not idle past the TTL, or held by a rule (pending timers). */
  private terminalLive(term: TerminalState): boolean {
    return !(this.clk - term.lastRecv > this.idleTtl) || this.held(term);
  }

  private sweep(): void {
    const clk = this.clk;
    this.nextSweepAt = clk + SWEEP_EVERY_MS;
    for (const inst of this.sweepHooks) inst.sweep!(clk);
    this.sales.sweep(clk);
    if (clk >= this.nextTerminalSweepAt) {
      this.nextTerminalSweepAt = clk + TERMINAL_SWEEP_EVERY_MS;
      for (const m of this.merchants.values()) {
        for (const term of m.terminals.values()) {
          if (!this.terminalLive(term)) {
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

  private removeMerchant(m: MerchantState): void {
    for (const term of [...m.terminals.values()]) this.dropTerminal(term);
    while (m.head >= 0) this.sales.free(m.head);
    m.removed = true;
    if (this.merchants.get(m.id) === m) this.merchants.delete(m.id);
    if (this.merchantByIdx[m.idx] === m) {
      this.merchantByIdx[m.idx] = undefined;
      this.freeIdx.push(m.idx);
    }
  }

  // ---------------------------------------------------------------- changelog: entities

  /** A terminal's changelog value: the engine's fields, then each active instance's, then the shadow instances' under `shadow`. */
  private writeTerminalValue(term: TerminalState, w: StateWriter): void {
    w.str(K.id, term.id);
    w.num(K.last_received, term.lastRecv);
    if (term.beats) w.bool(K.beats, true);
    const all = this.all;
    let shadow = false;
    for (let i = 0; i < all.length; i++) {
      const inst = all[i]!;
      if (inst.variant === 0 && inst.writeTerminal !== undefined) inst.writeTerminal(term, w);
      else if (inst.variant === 1 && inst.writeTerminal !== undefined) shadow = true;
    }
    if (!shadow) return;
    w.map(K.shadow);
    for (let i = 0; i < all.length; i++) {
      const inst = all[i]!;
      if (inst.variant !== 1 || inst.writeTerminal === undefined) continue;
      w.map((this.shadowKeys[inst.slot] ??= fieldKey(inst.def.id)));
      inst.writeTerminal(term, w);
      w.end();
    }
    w.end();
  }

  /** A sale's changelog value: the ledger's fields, then each rule's, then the refund reasons'. */
  private writeSaleValue(r: number, w: StateWriter): void {
    this.sales.write(r, w);
    const all = this.all;
    for (let i = 0; i < all.length; i++) all[i]!.writeSale?.(r, w);
    this.reasons.writeSale(r, w);
  }

  takeChangedEntities(): EntityChange[] {
    const out: EntityChange[] = [];
    const w = new ObjectStateWriter();
    let at: EntityChange | null = null;
    this.writeChangedEntities({
      removed: (merchant, kind, id) => void out.push({ merchant, kind, id, value: null }),
      begin: (merchant, kind, id) => {
        at = { merchant, kind, id, value: null };
        w.beginValue();
        return w;
      },
      end: () => {
        at!.value = w.endValue() as unknown as TerminalSnapshot | SaleSnapshot;
        out.push(at!);
      },
    });
    return out;
  }

  writeChangedEntities(sink: EntitySink): void {
    if (!this.trackEntities) {
      this.trackEntities = true;
      return;
    }
    const gone = this.tombstones;
    this.tombstones = [];
    for (let k = 0; k < gone.length; k++) {
      const g = gone[k]!;
      sink.removed(g.merchant, g.kind, g.id);
    }
    const terms = this.dirtyTerms;
    this.dirtyTerms = [];
    for (let k = 0; k < terms.length; k++) {
      const term = terms[k]!;
      term.eDirty = false;
      // A dropped or logically expired terminal is tombstoned when it is physically removed.
      if (term.slot < 0 || !this.terminalLive(term)) continue;
      this.writeTerminalValue(term, sink.begin(term.merchant.id, 'terminal', term.id));
      sink.end();
    }
    const rows = this.dirtyRows;
    this.dirtyRows = [];
    const c = this.sales.rows;
    for (let k = 0; k < rows.length; k += 2) {
      const r = rows[k]!;
      if (c.gen(r) !== rows[k + 1]) continue; // freed since (its tombstone is in out)
      c.clearFlags(r, E_DIRTY);
      if (this.sales.expired(r, this.clk)) continue;
      this.writeSaleValue(r, sink.begin(this.merchantOfRow(r).id, 'sale', c.txn[r]!));
      sink.end();
    }
  }

  markTerminal(term: TerminalState): void {
    if (this.trackEntities && !term.eDirty) {
      term.eDirty = true;
      this.dirtyTerms.push(term);
    }
  }

  markRow(row: number): void {
    if (!this.trackEntities || this.restoring) return;
    if (this.sales.markDirty(row)) this.dirtyRows.push(row, this.sales.rows.gen(row));
  }

  /** Forgets every prefetch() hint (a hint is only ever an optimisation). */
  private dropHints(): void {
    for (let k = 0; k < this.hintCount; k++) this.hinted[k] = null;
    for (let k = 0; k < this.termHintCount; k++) {
      this.termHinted[k] = null;
      this.termHintOf[k] = undefined;
    }
    this.hintCount = this.hintAt = this.termHintCount = this.termHintAt = 0;
  }

  restoreMerchant(merchantId: string, snap: MerchantSnapshot | null): void {
    this.dropHints();
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
    if (existing !== undefined) this.removeMerchant(existing);
    if (snap === null) return;
    if (snap.v !== 1) throw new TypeError(`restoreMerchant(${merchantId}): unknown snapshot version ${String(snap.v)}`);
    this.setClock(snap.clock);
    const m = this.newMerchant(merchantId);
    for (const ts of snap.terminals) {
      const term = this.createTerminal(m, ts.id, ts.last_received);
      this.registerTerminal(term); // first: rules may keep terminal state by slot
      const flat = ts as unknown as Record<string, unknown>;
      term.beats = flat.beats === true;
      const shadow = (flat.shadow ?? {}) as Record<string, Record<string, unknown> | undefined>;
      for (const inst of this.all) {
        if (inst.readTerminal === undefined) continue;
        if (inst.variant === 0) inst.readTerminal(term, flat);
        else {
          const s = shadow[inst.def.id];
          if (s !== undefined) inst.readTerminal(term, s);
        }
      }
    }
    for (const s of snap.sales) {
      const row = this.sales.read(m, s as SaleFields);
      for (const inst of this.all) inst.readSale?.(m, row, s as unknown as Record<string, unknown>);
      this.reasons.readSale(row, s as unknown as Record<string, unknown>);
    }
  }

  terminalsActiveSince(since: number): Array<{ terminal_id: string; merchant_id: string; last_received: number }> {
    const out: Array<{ terminal_id: string; merchant_id: string; last_received: number }> = [];
    for (const m of this.merchants.values()) for (const t of m.terminals.values()) if (t.lastRecv >= since) out.push({ terminal_id: t.id, merchant_id: m.id, last_received: t.lastRecv });
    return out;
  }

  stats(): EngineStats {
    const r: RuleStats = { cards: 0, duplicateLegs: 0, pendingGaps: 0, samples: 0, lateSales: 0 };
    for (const inst of this.all) inst.stats?.(r);
    return {
      clock: this.clk,
      merchants: this.merchants.size,
      terminals: this.nTerminals,
      cards: r.cards,
      sales: this.sales.size,
      duplicateLegs: r.duplicateLegs,
      pendingGaps: r.pendingGaps,
      samples: r.samples,
      events: this.nEvents,
      lateSales: r.lateSales,
    };
  }
}

