import type { Action, Alert, AlertUpdate, Heartbeat, RefundReason, Transaction } from '@tillwatch/schemas';
import type { RulesConfig } from './config.js';
import type { StateWriter } from './state-writer.js';
import type { RaisedDuplicateSnapshot } from './rules/duplicate_charge/index.js';

/** What one engine call produced. The shared empty result is frozen: do not mutate outputs. */
export interface EngineOutput {
  alerts: Alert[];
  actions: Action[];
  /**
   * Alerts of shadow instances and of rules or overrides in `mode: shadow`: same contract as alerts,
   * never in `alerts`, and no actions come from them.
   */
  shadowAlerts: Alert[];
  /** Lifecycle updates of earlier alerts (pos.alerts.updates.v1); absent or empty when none. */
  updates?: AlertUpdate[];
  /** One reason per approved REFUND, REVERSAL or VOID (pos.refunds.reasons.v1); absent or empty when none. */
  refundReasons?: RefundReason[];
}

/** State size, physical (expired entries still waiting for the next sweep are counted). */
export interface EngineStats {
  /** Engine clock: latest received time seen or clock given, epoch ms (0 before anything arrived). */
  clock: number;
  merchants: number;
  terminals: number;
  /** Distinct (merchant, card) pairs holding duplicate-charge legs. */
  cards: number;
  /** Sales (and refund/void placeholders) matchable by refunds, across merchants. */
  sales: number;
  /** Sales still matchable as duplicate legs (within allowed lateness + window). */
  duplicateLegs: number;
  /** Sequence gaps waiting for their timeout. */
  pendingGaps: number;
  /** Terminals holding a median sample. */
  samples: number;
  /** Events processed by this engine instance (not restored). */
  events: number;
  /** Approved sales that arrived beyond the allowed lateness and so were not matched as duplicates (not restored). */
  lateSales: number;
}

export interface GapSnapshot {
  /** First and last missing seq when the gap opened. */
  from: number;
  to: number;
  /** Still-missing ranges as [a0, b0, a1, b1, ...], inclusive. */
  missing: number[];
  due: number;
  low_event_id: string;
  low_event_time: number;
  high_event_id: string;
  high_event_time: number;
  /** Only once a heartbeat showed the gap held in the terminal's queue: the original due, pending now (no timer: `due` is stale). */
  first_due?: number;
  pending?: boolean;
  /** Written before issue 10's fix (the last heartbeat that proved it held); ignored when read. */
  held_at?: number;
  /** A heartbeat with an empty queue and last_seq >= every missing seq proved the gap lost (absent: not). */
  lost?: boolean;
}

export interface TerminalSnapshot {
  id: string;
  last_received: number;
  /** The terminal has sent a heartbeat (absent: never). */
  beats?: boolean;
  max_seq: number;
  max_seq_event_id: string;
  max_seq_event_time: number;
  lag_episode: boolean;
  sales_seen: number;
  /** Recent approved sale amounts, oldest first. */
  sample: number[];
  gaps: GapSnapshot[];
  /** sequence_gap: gaps that fired and wait for their missing numbers (absent: none). */
  fired_gaps?: { alert_id: string; missing: number[]; count: number; by: string[]; detected_at: number }[];
  /** State of shadow instances, per rule id (their own fields, as above); absent without any. */
  shadow?: Record<string, Record<string, unknown>>;
}

export interface RefundSnapshot {
  txn_id: string;
  event_id: string;
  terminal_id: string;
  card_token: string;
  amount: number;
  /** The refund's currency (absent in changelogs written before it was kept: the sale's). */
  currency?: string;
  event_time: number;
}

export interface SaleSnapshot {
  txn_id: string;
  /** Set while the sale is a duplicate leg; null once it only serves refund matching. */
  event_id: string | null;
  card_token: string | null;
  terminal_id: string | null;
  /** The sale itself has arrived (false: a placeholder made by an earlier refund or void). */
  seen: boolean;
  voided: boolean;
  /** Still a duplicate-charge leg. */
  dup: boolean;
  amount: number;
  currency: string;
  event_time: number;
  dup_expiry: number;
  /** min(event_time, received_time) + refund_lookback (clock); the row is held until this + allowed_lateness. */
  ref_expiry: number;
  refunded: number;
  refunds: RefundSnapshot[];
  /** The ledger: txn_ids of refunds/voids/reversals that named the sale more than refund_lookback after it (event time), not matched; kept so a redelivery is recognised (absent: none). */
  refunds_outside?: string[];
  /** Refund reasons: the sale synced late or during its terminal's late-sync episode (absent: false). */
  sync_failure?: boolean;
  /** duplicate_charge: the raised duplicate alerts this sale is a leg of (absent: none). */
  dup_alerts?: RaisedDuplicateSnapshot[];
  /** duplicate_charge: the first approved void or reversal of this leg of a raised alert (absent: none). */
  dup_void?: { event_id: string; txn_id: string; reversal: boolean };
}

/** One merchant's state: plain JSON, written to the compacted changelog keyed by merchant_id. */
export interface MerchantSnapshot {
  v: 1;
  /** Engine clock when taken; restoring raises the engine clock to at least this. */
  clock: number;
  terminals: TerminalSnapshot[];
  sales: SaleSnapshot[];
}

export interface EngineOptions {
  /**
   * Sales the engine expects to hold at once (a capacity hint, not a limit): its buffers start at that
   * size instead of growing from small. A backtest passes its input size.
   */
  expectedSales?: number;
}

/** One entity of the engine's state that changed: a terminal (id = terminal_id) or a sale (id = txn_id). */
export interface EntityChange {
  merchant: string;
  kind: 'terminal' | 'sale';
  id: string;
  /** Its current state; null = removed (write a tombstone). */
  value: TerminalSnapshot | SaleSnapshot | null;
}

/**
 * Receives the changed entities without objects built for them (RuleEngine.writeChangedEntities):
 * each removed entity, and each changed one's value written field by field between begin and end.
 */
export interface EntitySink {
  /** The entity was removed (write a tombstone). */
  removed(merchant: string, kind: 'terminal' | 'sale', id: string): void;
  /** A changed entity: returns the writer its value's fields go to (the value's map already begun). */
  begin(merchant: string, kind: 'terminal' | 'sale', id: string): StateWriter;
  /** The value begun last is complete. */
  end(): void;
}

export interface RuleEngine {
  /** Advances the clock to max(clock, t.received_time) (firing due timers), then applies the event. */
  onTransaction(t: Transaction): EngineOutput;
  /**
   * Optional hint, no effect on results: the APPROVED SALEs among `inputs[from, to)` (at most
   * PREFETCH_MAX of them are taken) will be given to onTransaction next, in this order. Their index
   * hashes are computed now and their first probe loads issued back to back, so the cache misses of
   * several sales overlap instead of stalling each sale in turn; onTransaction then reuses the hashes
   * of a hinted sale (the same object, unchanged since). A caller holding a batch calls it every few
   * events, e.g. `if (i % 8 === 0) engine.prefetch(batch, i, i + 8)` before `onTransaction(batch[i])`.
   */
  prefetch(inputs: readonly (Transaction | Heartbeat)[], from: number, to: number): void;
  /**
   * Advances the clock to max(clock, h.received_time) (firing due timers) like a transaction does,
   * then gives the heartbeat to the rules that read heartbeats (terminal_offline, upload_backlog,
   * sequence_gap). The terminal's state (changelog entity) records it.
   */
  onHeartbeat(h: Heartbeat): EngineOutput;
  /** Raises the clock to nowMs if later and fires every timer due at or before it. */
  advanceClock(nowMs: number): EngineOutput;
  /**
   * Replaces the rule set for subsequent events and timers without losing state (per rule, what a
   * change does to its state is in the rules README). Atomic: call it between events.
   */
  setRules(config: RulesConfig): void;
  /** The version of the rule set in force (RulesConfig.version; every alert carries it as rules_version). */
  rulesVersion(): number;
  /**
   * Terminals and sales changed since the last call, and those removed (value null): an O(changes)
   * feed for an entity-level changelog. Tracking starts at the first call (which returns nothing).
   * Restoring the entities (grouped per merchant, through restoreMerchant) gives back the state.
   */
  takeChangedEntities(): EntityChange[];
  /**
   * The same feed (and the same tracking: a change is given once, by whichever of the two is called),
   * written through `sink` instead of returned as objects: removed entities first, then terminals, then
   * sales, as takeChangedEntities orders them; each value's fields in the order of its object.
   */
  writeChangedEntities(sink: EntitySink): void;
  /** Replaces one merchant's state (null removes it); used by createChangelogView's restore. Does not fire timers. */
  restoreMerchant(merchantId: string, snapshot: MerchantSnapshot | null): void;
  clock(): number;
  /** Raises the clock (never lowers it) without firing timers; the next call fires what is due. */
  setClock(ms: number): void;
  /** Terminals whose last record (transaction or heartbeat) was received at or after `since`: id, merchant and that received time. */
  terminalsActiveSince(since: number): Array<{ terminal_id: string; merchant_id: string; last_received: number }>;
  stats(): EngineStats;
}
