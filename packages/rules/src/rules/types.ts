// The contract between the engine loop and a rule. A rule is a folder under src/rules/<rule_id>/ that
// exports one RuleDefinition; src/rules/registry.ts lists them. The engine owns the clock, the timers,
// the terminals and the sale ledger (shared storage); a rule owns its config schema and defaults, its
// default action policy, its state (per terminal: numbers in its field range of the engine's terminal
// rows (terminalFields), objects in the instance indexed by `term.slot`, or in `term.st[slot]`; or
// rule-wide),
// how that state is written to and read from the changelog, and what it does on events and timers.
import type { ActionKind, AlertUpdate, Heartbeat, Severity, Transaction } from '@tillwatch/schemas';
import type { z } from 'zod';
import type { IndexedMinHeap } from '../heap.js';
import type { SampleSlab } from '../median.js';
import type { SaleLedger } from '../storage/ledger.js';
import type { TerminalFields } from '../storage/terminal-rows.js';
import type { ResolvedRules, RulesConfig } from '../config.js';
import type { StateWriter } from '../state-writer.js';

/** `shadow`: the rule evaluates, its alerts go to EngineOutput.shadowAlerts, and it issues no actions. */
export type RuleMode = 'active' | 'shadow';

/** Fields every rule has. */
export interface RuleCommon {
  enabled: boolean;
  severity: Severity;
  mode: RuleMode;
}

export interface PolicyAction {
  kind: ActionKind;
  /** The action's expires_at = issued_at + expires_after; null = no expiry. */
  expires_after: number | null;
}

/** Variant of a rule instance: 0 = the active rule of the `rules` section, 1 = its `shadow` section instance. */
export type Variant = 0 | 1;

export interface MerchantState {
  id: string;
  /** Row tag in the sale ledger; reused after the merchant is removed. */
  idx: number;
  /** Resolved parameters per variant (index 1 only when some rule has a shadow instance). */
  rules: ResolvedRules[];
  terminals: Map<string, TerminalState>;
  /** The merchant's sale rows, a doubly linked list in insertion order (for snapshots). */
  head: number;
  tail: number;
  rows: number;
  removed: boolean;
  /** Last currency string seen, so equal codes share one string. */
  currency: string;
}

export interface TerminalState {
  id: string;
  merchant: MerchantState;
  /** Position in the engine's terminal index; -1 once dropped. */
  slot: number;
  /** Changed since the last takeChangedEntities. */
  eDirty: boolean;
  hash: number;
  /** Resolved parameters per variant. */
  rules: ResolvedRules[];
  lastRecv: number;
  /** The terminal has sent a heartbeat (its transactions then also go to onBeatingEvent). */
  beats: boolean;
  /** Per rule instance state, indexed by RuleInstance.slot; undefined until the instance first needs it. */
  st: unknown[];
}

/** A timer in the engine's heap. Fired in (due, terminal, merchant, instance slot, order) order. */
export interface Timer {
  /** Position in the heap; -1 once removed. */
  heapIndex: number;
  due: number;
  terminal: TerminalState;
  owner: RuleInstance;
  /** Last tie-breaker, chosen by the rule (sequence_gap: the first missing seq). */
  order: number;
}

/** What the engine offers a rule. */
export interface EngineCore {
  /** The engine clock (stream received time), epoch ms. */
  readonly clk: number;
  /** engine.allowed_lateness, engine.refund_lookback (ms). */
  readonly lateness: number;
  readonly lookback: number;
  readonly sales: SaleLedger;
  /** The rule set in force (setRules replaces it, then calls reconfigure). */
  readonly config: RulesConfig;
  /** The capacity hint the engine was created with (sales it expects to hold). */
  readonly expectedSales: number;
  /** The merchant owning a sale row. */
  merchantOfRow(row: number): MerchantState;
  /** The merchant lost state in a sweep: the engine removes it once it holds nothing. */
  touch(m: MerchantState): void;
  readonly timers: IndexedMinHeap<Timer>;
  /**
   * Reserves `count` numeric fields per terminal in the engine's terminal rows (storage/terminal-rows.ts),
   * each `init` for a new terminal (reset whenever a terminal takes a slot). Call it when the instance
   * is created; release() the range in dispose.
   */
  terminalFields(count: number, init: number): TerminalFields;
  /** Median sample slab for a sample size (shared by all terminals with that size). */
  slab(capacity: number): SampleSlab;
  /** The terminal changed: write it to the changelog at the next takeChangedEntities. */
  markTerminal(term: TerminalState): void;
  /** The sale row changed (same, for sales). */
  markRow(row: number): void;
  /** Parameters in force for a terminal id of a merchant (the terminal may be unknown). */
  rulesFor(m: MerchantState, terminalId: string): ResolvedRules[];
  /** Raises an alert; returns its id (alertId of rule, version and evidence). */
  emit(
    rule: RuleInstance,
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
    /** The money the alert is about (Alert.currency / amount_minor); omitted: none (both null). */
    currency?: string | null,
    amountMinor?: number | null,
  ): string;
  /** A lifecycle update of an alert raised earlier (EngineOutput.updates, pos.alerts.updates.v1); never a second alert. */
  emitUpdate(update: AlertUpdate): void;
}

/** Stats the rules contribute (EngineStats minus what the engine counts itself). */
export interface RuleStats {
  cards: number;
  duplicateLegs: number;
  pendingGaps: number;
  samples: number;
  lateSales: number;
}

/** Sales one engine.prefetch call hints at most (hint slots 0 .. PREFETCH_MAX-1). */
export const PREFETCH_MAX = 16;

/**
 * One running instance of a rule (the active one, or the shadow one). Every hook is optional; the
 * engine calls each hook of the instances that have it, in registry order, active before shadow.
 */
export interface RuleInstance {
  readonly def: AnyRuleDefinition;
  /** Index into TerminalState.st for this instance's per-terminal state. */
  readonly slot: number;
  readonly variant: Variant;

  /** Every event, after the terminal is found or created (fresh: its first event). */
  onEvent?(term: TerminalState, t: Transaction): void;
  /**
   * Every heartbeat (pos.heartbeats.v1), after the clock moved to its received_time (due timers
   * fired) and the terminal was found or created. Rules without it never see heartbeats.
   */
  onHeartbeat?(term: TerminalState, h: Heartbeat): void;
  /**
   * Every transaction of a terminal that has sent a heartbeat, after onEvent. Rules that only watch
   * heartbeating terminals use it instead of onEvent: transactions of other terminals never reach
   * them, so the per-event call site stays as narrow as before heartbeats.
   */
  onBeatingEvent?(term: TerminalState, t: Transaction): void;
  /** An APPROVED SALE (not a redelivery), before it is stored in the ledger; voided: a void named it earlier. */
  onSaleJudge?(term: TerminalState, t: Transaction, voided: boolean): void;
  /**
   * An APPROVED SALE after the ledger stored it (row; -1 when older than the refund lookback, so not
   * kept). hadRefunds: refunds of it arrived before the sale.
   */
  onSaleStored?(term: TerminalState, t: Transaction, row: number, voided: boolean, hadRefunds: boolean): void;
  /**
   * True: onSaleStored does nothing unless hadRefunds (a sale whose refunds arrived first), so the
   * engine calls it only then (the refund rules: one call per sale fewer each, on the hottest path).
   */
  readonly saleStoredOnlyIfRefunded?: boolean;
  /**
   * An APPROVED REFUND after the ledger recorded it. row: the sale's row (-1 when none could be kept:
   * no original_txn_id, or beyond the lookback); before: refunded total of the sale before this refund.
   * Not called for a refund delivered twice.
   */
  onRefund?(term: TerminalState, t: Transaction, row: number, before: number): void;
  /**
   * An APPROVED VOID or REVERSAL with an original_txn_id, after the ledger marked the sale voided.
   * row: the sale's row (-1 when none could be kept: beyond the lookback). Called for every delivery.
   */
  onVoid?(term: TerminalState, t: Transaction, row: number): void;
  onTimer?(timer: Timer): void;
  /** The physical expiry sweep (every 5 min of clock). */
  sweep?(clk: number): void;
  /** True while the instance must keep an idle terminal (pending timers). */
  holdsTerminal?(term: TerminalState): boolean;
  /** The terminal is dropped (idle or replaced): release what the instance holds for it. */
  dropTerminal?(term: TerminalState): void;
  /**
   * Writes the instance's state of the terminal into its changelog value, field by field through `w`
   * (src/state-writer.ts: field names registered once with fieldKeys; nested maps and lists opened
   * and ended). A field is written at most once per terminal by one rule; what is written must read
   * back as the plain object readTerminal gets.
   */
  writeTerminal?(term: TerminalState, w: StateWriter): void;
  /** Restores what writeTerminal wrote (fields may be missing: state written by another rule set). */
  readTerminal?(term: TerminalState, snap: Record<string, unknown>): void;
  /** Rule-wide state of a sale row for the changelog (duplicate legs), through `w` as writeTerminal. Active instance only. */
  writeSale?(row: number, w: StateWriter): void;
  readSale?(merchant: MerchantState, row: number, snap: Record<string, unknown>): void;
  /** The ledger frees a row: drop references to it. Active instance only. */
  onRowFreed?(row: number): void;
  /**
   * Computes what an APPROVED SALE will look up (e.g. its index hash, kept for the later hooks) and
   * returns the first memory load of that lookup (its value is only a sink). The engine calls this
   * after hashing the sale's txn_id and issues the ledger's own probe load right after, so the cache
   * misses overlap (no hashing in between).
   */
  prefetchSale?(t: Transaction, hint: number): number;
  /**
   * With prefetchSale: engine.prefetch hints a sale coming soon; the rule computes its hash now and
   * keeps it under `hint` (0 .. PREFETCH_MAX-1); prefetchSale(t, hint) then reuses it (hint -1: none).
   */
  hintSale?(t: Transaction, hint: number): void;
  /** The first memory load of the lookup of the sale hinted under `hint` (its value is only a sink). */
  probeHint?(hint: number): number;
  /** The rule set changed (setRules): parameters in merchant/terminal `rules` are already new. */
  reconfigure?(): void;
  /** The instance is removed by setRules: drop its state everywhere. */
  dispose?(terminals: Iterable<TerminalState>): void;
  /** Links the shadow instance to the active one (rules that share state across variants). */
  attachShadow?(shadow: RuleInstance | null): void;
  stats?(into: RuleStats): void;
}

/** A rule: everything about it in one place. C is its config (common fields plus its own). */
export interface RuleDefinition<Id extends string = string, C extends RuleCommon = RuleCommon> {
  id: Id;
  /** Version of the rule's logic; part of every alert (`duplicate_charge@1`) and of its id. Bump on a semantic change. */
  version: number;
  defaults: C;
  /** zod schemas of the rule's own fields (enabled, severity and mode are common). */
  fields: Record<Exclude<keyof C, keyof RuleCommon>, z.ZodType>;
  /** Fields that make no sense per terminal, with why (refused in overrides.terminals). */
  merchantOnly?: Partial<Record<Exclude<keyof C, keyof RuleCommon>, string>>;
  /** Default action policy. */
  policy: PolicyAction[];
  /** Whether its alerts carry a card, and are about one transaction (what actions can target). */
  alertHas: { card: boolean; transaction: boolean };
  create(core: EngineCore, slot: number, variant: Variant): RuleInstance;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRuleDefinition = RuleDefinition<string, any>;
