// REFERENCE MODEL, for differential tests only: the rules written the straightforward way (objects in
// Maps, a naive median), without any of the engine's performance structures. The engine must produce
// exactly its alerts and actions (test/differential.test.ts). Keep the two in step on any semantic change.
import { formatMoney, type Action, type Alert, type Severity, type Transaction } from '@tillwatch/schemas';
import { ACTION_TARGETS, RULE_VERSIONS, resolveRules, type ResolvedRules, type RuleId, type RulesConfig } from '../../src/config.js';
import { MinHeap } from '../../src/heap.js';
import { actionId, alertId } from '../../src/ids.js';
import { MedianSample } from './median.js';
import { fmtDuration } from '../../src/format.js';
import type { EngineOutput, EngineStats } from '../../src/types.js';

const EMPTY_OUTPUT: EngineOutput = Object.freeze({
  alerts: Object.freeze([]) as unknown as Alert[],
  actions: Object.freeze([]) as unknown as Action[],
  shadowAlerts: Object.freeze([]) as unknown as Alert[],
});

/**
 * The rules this model implements (the differential test compares the engine on these only; a rule
 * added to the registry is covered here only if someone writes it again below). terminal_offline and
 * upload_backlog need heartbeats, which this model does not take.
 */
export const REFERENCE_RULES = [
  'duplicate_charge',
  'abnormal_amount',
  'sync_lag',
  'sequence_gap',
  'refund_without_sale',
  'refund_exceeds_sale',
  'refund_card_mismatch',
  'refund_after_deadline',
  'refund_velocity',
] as const satisfies readonly RuleId[];

/** The reference model's API (the engine's event and clock calls; no state changelog, no setRules, no shadow instances). */
export interface ReferenceEngine {
  onTransaction(t: Transaction): EngineOutput;
  advanceClock(nowMs: number): EngineOutput;
  clock(): number;
  setClock(ms: number): void;
  stats(): EngineStats;
}

/** Physical sweeps of expired sales run at most this often (clock time); terminals less often. */
const SWEEP_EVERY_MS = 5 * 60_000;
const TERMINAL_SWEEP_EVERY_MS = 60 * 60_000;

// SaleRec.flags
const SEEN = 1; // the APPROVED SALE itself has arrived (else: placeholder made by a refund or void)
const VOIDED = 2; // an APPROVED VOID/REVERSAL names it
const IN_DUP = 4; // currently in its card's duplicate legs

interface RefundRec {
  txn: string;
  eventId: string;
  terminalId: string;
  card: string;
  amount: number;
  currency: string;
  et: number;
}

/** A sale known to a merchant, keyed by txn_id; also a duplicate leg while IN_DUP. */
interface SaleRec {
  txn: string;
  eventId: string | null;
  card: string | null;
  terminalId: string | null;
  flags: number;
  amount: number;
  currency: string;
  et: number;
  dupExpiry: number;
  /** Held until (clock): min(event_time, received_time) + refund_lookback + allowed_lateness. */
  refExpiry: number;
  /** Refunds in the sale's currency (a placeholder: all). */
  refunded: number;
  refunds: RefundRec[] | null;
  /** txn_ids of refunds/voids that named it more than the lookback after it (event time): not matched. */
  outside: string[] | null;
  /** The sale's own card and event id, kept for the whole lookback (refund_card_mismatch, refund_after_deadline). */
  saleCard: string | null;
  saleEventId: string | null;
}

interface Gap {
  from: number;
  to: number;
  missing: number[];
  due: number;
  lowEventId: string;
  lowEt: number;
  highEventId: string;
  highEt: number;
  terminal: TerminalState;
  done: boolean;
}

interface TerminalState {
  id: string;
  merchant: MerchantState;
  rules: ResolvedRules;
  lastRecv: number;
  maxSeq: number;
  maxSeqEventId: string;
  maxSeqEt: number;
  /** sync_lag: latest received time of a late transaction of the episode, and when the episode ends (0: none yet). */
  lagLast: number;
  lagDue: number;
  salesSeen: number;
  sample: MedianSample | null;
  gaps: Gap[] | null;
  /** refund_velocity: approved refunds (event time, event id) and the silence end. */
  velocity: { et: number; id: string }[];
  velocitySilentUntil: number;
}

interface MerchantState {
  id: string;
  rules: ResolvedRules;
  terminals: Map<string, TerminalState>;
  /** card_token -> sales that are duplicate legs (small arrays). */
  cards: Map<string, SaleRec[]>;
  /** txn_id -> sale or placeholder, for refunds, voids and redelivery. */
  txns: Map<string, SaleRec>;
  /** Insertion-ordered expiry queues (roughly sorted by expiry; a late head only delays physical removal). */
  dupQ: SaleRec[];
  dupHead: number;
  refQ: SaleRec[];
  refHead: number;
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

export function createReferenceEngine(config: RulesConfig): ReferenceEngine {
  return new Engine(config);
}

class Engine implements ReferenceEngine {
  private clk = 0;
  private readonly merchants = new Map<string, MerchantState>();
  private readonly timers = new MinHeap<Gap>(gapLess);
  private out: EngineOutput | null = null;
  private nextSweepAt = 0;
  private nextTerminalSweepAt = 0;
  private readonly lateness: number;
  private readonly lookback: number;
  private readonly idleTtl: number;
  private readonly hasTerminalOverrides: boolean;
  private readonly dupOn: boolean;
  // Physical counts for stats().
  private nTerminals = 0;
  private nCards = 0;
  private nSales = 0;
  private nDupLegs = 0;
  private nGaps = 0;
  private nSamples = 0;
  private nEvents = 0;
  private nLateSales = 0;

  constructor(private readonly config: RulesConfig) {
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
      h.pop();
      if (!g.done) this.fireGap(g);
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

    const m = this.merchants.get(t.merchant_id) ?? this.newMerchant(t.merchant_id);
    let term = m.terminals.get(t.terminal_id);
    if (term === undefined || this.clk - term.lastRecv > this.idleTtl) term = this.newTerminal(m, t);
    else {
      if (recv > term.lastRecv) term.lastRecv = recv;
      this.onSequence(term, t);
    }
    this.onLag(term, t);

    if (t.status === 'APPROVED') {
      const kind = t.kind;
      if (kind === 'SALE') this.onSale(m, term, t);
      else if (kind === 'REFUND') this.onRefund(m, term, t);
      else this.onVoid(m, t); // REVERSAL, VOID
    }
    // A gap created already due (its higher seq arrived long after the clock) fires now, not later.
    const top2 = this.timers.peek();
    if (top2 !== undefined && top2.due <= this.clk) this.fireDue();
    return this.flush();
  }

  private newMerchant(id: string): MerchantState {
    const m: MerchantState = {
      id,
      rules: resolveRules(this.config, id, null),
      terminals: new Map(),
      cards: new Map(),
      txns: new Map(),
      dupQ: [],
      dupHead: 0,
      refQ: [],
      refHead: 0,
      currency: '',
    };
    this.merchants.set(id, m);
    return m;
  }

  /** First event of a terminal (or first after it was forgotten for idleness). */
  private newTerminal(m: MerchantState, t: Transaction): TerminalState {
    const old = m.terminals.get(t.terminal_id);
    if (old !== undefined) this.dropTerminal(old);
    const term: TerminalState = {
      id: t.terminal_id,
      merchant: m,
      rules: resolveRules(this.config, m.id, t.terminal_id),
      lastRecv: t.received_time,
      maxSeq: t.terminal_seq,
      maxSeqEventId: t.event_id,
      maxSeqEt: t.event_time,
      lagLast: 0,
      lagDue: 0,
      salesSeen: 0,
      sample: null,
      gaps: null,
      velocity: [],
      velocitySilentUntil: -Infinity,
    };
    m.terminals.set(term.id, term);
    this.nTerminals++;
    return term;
  }

  private dropTerminal(term: TerminalState): void {
    if (term.gaps !== null) {
      for (const g of term.gaps) g.done = true;
      this.nGaps -= term.gaps.length;
    }
    if (term.sample !== null) this.nSamples--;
    this.nTerminals--;
    term.merchant.terminals.delete(term.id);
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
          from: max + 1,
          to: seq - 1,
          missing: [max + 1, seq - 1],
          due: t.received_time + term.rules.sequence_gap.timeout,
          lowEventId: term.maxSeqEventId,
          lowEt: term.maxSeqEt,
          highEventId: t.event_id,
          highEt: t.event_time,
          terminal: term,
          done: false,
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
    gaps[index]!.done = true;
    gaps.splice(index, 1);
    if (gaps.length === 0) term.gaps = null;
    this.nGaps--;
  }

  private fireGap(g: Gap): void {
    const term = g.terminal;
    const gaps = term.gaps;
    const idx = gaps === null ? -1 : gaps.indexOf(g);
    if (idx < 0) return; // stale (terminal replaced)
    this.closeGap(term, idx);
    const m = term.merchant;
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
    if (lag <= p.threshold) return; // on-time transactions do not end an episode
    // The episode is open until the clock reaches its end (the engine's timer fires at due <= clock,
    // before the event that moved the clock there is judged). Alerts only: the reference model does
    // not produce the alert updates that close episodes.
    if (term.lagDue > this.clk) {
      term.lagLast = Math.max(term.lagLast, t.received_time);
      term.lagDue = term.lagLast + p.episode_quiet;
      return;
    }
    term.lagLast = t.received_time;
    term.lagDue = t.received_time + p.episode_quiet;
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

  // ---------------------------------------------------------------- sales: abnormal_amount, duplicate_charge

  private onSale(m: MerchantState, term: TerminalState, t: Transaction): void {
    let rec = m.txns.get(t.txn_id);
    if (rec !== undefined && this.clk > rec.refExpiry) rec = undefined; // logically gone; replaced below
    if (rec !== undefined && rec.flags & SEEN) return; // the same sale again (redelivery, status re-sent)
    const amount = t.amount_minor;
    const voided = rec !== undefined && (rec.flags & VOIDED) !== 0;

    // abnormal_amount: judged against the sales before it, then added to the sample.
    const pa = term.rules.abnormal_amount;
    if (pa.enabled || term.sample !== null) {
      let s = term.sample;
      if (s === null) {
        s = term.sample = new MedianSample(pa.sample_size);
        this.nSamples++;
      }
      if (pa.enabled && !voided && term.salesSeen >= pa.min_sales) {
        const median = s.median();
        if (median > 0 && amount >= pa.ratio * median && amount > 3 * median) this.fireAbnormal(m, term, t, median, s.size);
      }
      s.add(amount);
    }
    term.salesSeen++;

    let cur = t.currency;
    if (cur === m.currency) cur = m.currency;
    else m.currency = cur;
    const base = t.event_time < t.received_time ? t.event_time : t.received_time;
    const window = m.rules.duplicate_charge.window;
    let hadRefunds = false;
    if (rec === undefined) {
      const old = m.txns.get(t.txn_id);
      if (old !== undefined) this.forgetSale(m, old);
      rec = {
        txn: t.txn_id,
        eventId: t.event_id,
        card: null,
        terminalId: term.id,
        flags: SEEN,
        amount,
        currency: cur,
        et: t.event_time,
        dupExpiry: t.event_time + this.lateness + window,
        refExpiry: base + this.lookback + this.lateness,
        refunded: 0,
        refunds: null,
        outside: null,
        saleCard: t.card_token,
        saleEventId: t.event_id,
      };
      if (rec.refExpiry < this.clk) {
        // Older than the refund lookback plus the allowed lateness: nothing to keep.
        if (this.dupOn) this.nLateSales++;
        return;
      }
      m.txns.set(rec.txn, rec);
      m.refQ.push(rec);
      this.nSales++;
    } else {
      // A placeholder made by an earlier refund or void: the sale arrived after them.
      rec.flags |= SEEN;
      rec.eventId = t.event_id;
      rec.saleCard = t.card_token;
      rec.saleEventId = t.event_id;
      rec.terminalId = term.id;
      rec.amount = amount;
      rec.currency = cur;
      rec.et = t.event_time;
      rec.dupExpiry = t.event_time + this.lateness + window;
      if (base + this.lookback + this.lateness > rec.refExpiry) rec.refExpiry = base + this.lookback + this.lateness;
      hadRefunds = rec.refunds !== null;
      if (hadRefunds) rec.refunded = rec.refunds!.filter((r) => r.currency === cur).reduce((a, r) => a + r.amount, 0);
    }

    // duplicate_charge: both legs must be within the allowed lateness when they arrive.
    if (this.dupOn && !voided) {
      if (this.clk - t.event_time > this.lateness) this.nLateSales++;
      else this.matchDuplicate(m, term, t, rec, window);
    }
    if (hadRefunds && !voided) {
      this.checkRefundsOfLateSale(m, rec, t);
      for (const r of rec.refunds!) if (r.card !== rec.saleCard) this.fireCardMismatch(m, this.rulesFor(m, r.terminalId), rec, r, t.received_time);
      for (const r of rec.refunds!) {
        const rules = this.rulesFor(m, r.terminalId);
        if (r.et - rec.et > rules.refund_after_deadline.deadline) this.fireAfterDeadline(m, rules, rec, r, t.received_time);
      }
    }
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
      `Sale ${t.txn_id} of ${formatMoney(t.amount_minor, t.currency)} at terminal ${term.id} is ${ratio.toFixed(1)}x the terminal's median approved sale of ${Number.isInteger(median) ? formatMoney(median, t.currency) : `about ${formatMoney(Math.round(median), t.currency)}`} over its last ${n} sales.`,
      { amount_minor: t.amount_minor, median_minor: median, ratio: round4(ratio), threshold_ratio: pa.ratio, sample_size: n, sales_seen: term.salesSeen },
      t.txn_id,
      t.currency,
      t.amount_minor,
    );
  }

  private matchDuplicate(m: MerchantState, term: TerminalState, t: Transaction, rec: SaleRec, window: number): void {
    const card = t.card_token;
    let legs = m.cards.get(card);
    let best: SaleRec | null = null;
    let bestGap = Infinity;
    const amount = t.amount_minor;
    const et = t.event_time;
    const clk = this.clk;
    if (legs !== undefined) {
      for (let i = 0; i < legs.length; i++) {
        const a = legs[i]!;
        if (a.amount !== amount || a.flags & VOIDED || clk > a.dupExpiry || a.currency !== rec.currency || a.txn === rec.txn) continue;
        const gap = a.et > et ? a.et - et : et - a.et;
        if (gap > window) continue;
        // Nearest leg wins; ties broken by content, never by arrival order.
        if (gap < bestGap || (gap === bestGap && best !== null && (a.et < best.et || (a.et === best.et && a.eventId! < best.eventId!)))) {
          best = a;
          bestGap = gap;
        }
      }
      rec.card = legs.length > 0 ? legs[0]!.card : card;
      legs.push(rec);
    } else {
      legs = [rec];
      m.cards.set(card, legs);
      rec.card = card;
      this.nCards++;
    }
    rec.flags |= IN_DUP;
    m.dupQ.push(rec);
    this.nDupLegs++;
    if (best !== null) this.fireDuplicate(m, term, t, rec, best, bestGap, window);
  }

  private fireDuplicate(m: MerchantState, term: TerminalState, t: Transaction, b: SaleRec, a: SaleRec, gap: number, window: number): void {
    const ra = this.rulesFor(m, a.terminalId!);
    if (!term.rules.duplicate_charge.enabled || !ra.duplicate_charge.enabled) return;
    // The alert belongs to the later leg (the retry), so it is the same whichever leg arrived first.
    const bLater = b.et > a.et || (b.et === a.et && b.eventId! > a.eventId!);
    const first = bLater ? a : b;
    const second = bLater ? b : a;
    const rules = second === b ? term.rules : ra;
    this.emit(
      'duplicate_charge',
      rules.duplicate_charge.severity,
      second.terminalId!,
      m.id,
      t.card_token,
      [first.eventId!, second.eventId!],
      first.et,
      second.et,
      t.received_time,
      `Card ${t.card_token} was charged ${formatMoney(b.amount, b.currency)} twice at merchant ${m.id} within ${fmtDuration(gap)}: transaction ${first.txn} at terminal ${first.terminalId} and ${second.txn} at terminal ${second.terminalId}.`,
      { amount_minor: b.amount, gap_ms: gap, window_ms: window, same_terminal: first.terminalId === second.terminalId ? 1 : 0 },
      second.txn,
      b.currency,
      b.amount,
    );
  }

  // ---------------------------------------------------------------- refunds and voids

  private lookupTxn(m: MerchantState, txn: string): SaleRec | undefined {
    const rec = m.txns.get(txn);
    if (rec === undefined) return undefined;
    if (this.clk > rec.refExpiry) {
      this.forgetSale(m, rec);
      return undefined;
    }
    return rec;
  }

  private placeholder(m: MerchantState, txn: string, t: Transaction, flags: number): SaleRec | null {
    const base = t.event_time < t.received_time ? t.event_time : t.received_time;
    const rec: SaleRec = {
      txn,
      eventId: null,
      card: null,
      terminalId: null,
      flags,
      amount: 0,
      currency: '',
      et: 0,
      dupExpiry: 0,
      refExpiry: base + this.lookback + this.lateness,
      refunded: 0,
      refunds: null,
      outside: null,
      saleCard: null,
      saleEventId: null,
    };
    if (rec.refExpiry < this.clk) return null;
    m.txns.set(txn, rec);
    m.refQ.push(rec);
    this.nSales++;
    return rec;
  }

  private onRefund(m: MerchantState, term: TerminalState, t: Transaction): void {
    if (this.refundOfSale(m, term, t)) this.velocity(m, term, t);
  }

  /** refund_velocity: the refund that makes `count` at the terminal within `window` (event time, edges in). */
  private velocity(m: MerchantState, term: TerminalState, t: Transaction): void {
    const p = term.rules.refund_velocity;
    const list = term.velocity;
    if (list.some((r) => r.id === t.event_id)) return; // the same refund again (no original_txn_id)
    list.push({ et: t.event_time, id: t.event_id });
    list.sort((a, b) => a.et - b.et || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const latest = list[list.length - 1]!.et;
    // The documented bound: refunds within window + allowed lateness of the latest are kept.
    term.velocity = list.filter((r) => r.et >= latest - p.window - this.lateness);
    if (!p.enabled || t.event_time < term.velocitySilentUntil) return;
    const inWindow = term.velocity.filter((r) => r.et >= t.event_time - p.window && r.et <= t.event_time);
    if (inWindow.length < p.count) return;
    term.velocitySilentUntil = t.event_time + p.window;
    this.emit(
      'refund_velocity',
      p.severity,
      term.id,
      m.id,
      null,
      inWindow.map((r) => r.id),
      inWindow[0]!.et,
      t.event_time,
      t.received_time,
      `Terminal ${term.id} made ${inWindow.length} approved refunds within ${fmtDuration(p.window)}; the last, ${t.txn_id}, was ${formatMoney(t.amount_minor, t.currency)}.`,
      { refunds_in_window: inWindow.length, count: p.count, window_ms: p.window, refund_amount_minor: t.amount_minor },
      t.txn_id,
      t.currency,
      t.amount_minor,
    );
  }

  private fireCardMismatch(m: MerchantState, rules: ResolvedRules, sale: SaleRec, r: RefundRec, detectedAt: number): void {
    const p = rules.refund_card_mismatch;
    if (!p.enabled) return;
    const saleFirst = sale.et < r.et || (sale.et === r.et && sale.saleEventId! <= r.eventId);
    this.emit(
      'refund_card_mismatch',
      p.severity,
      r.terminalId,
      m.id,
      r.card,
      saleFirst ? [sale.saleEventId!, r.eventId] : [r.eventId, sale.saleEventId!],
      Math.min(sale.et, r.et),
      Math.max(sale.et, r.et),
      detectedAt,
      `Refund ${r.txn} of ${formatMoney(r.amount, r.currency)} at terminal ${r.terminalId} went to card ${r.card}, but sale ${sale.txn} was paid with card ${sale.saleCard!}.`,
      { refund_amount_minor: r.amount, sale_amount_minor: sale.amount },
      r.txn,
      sale.currency,
      r.amount,
    );
  }

  private fireAfterDeadline(m: MerchantState, rules: ResolvedRules, sale: SaleRec, r: RefundRec, detectedAt: number): void {
    const p = rules.refund_after_deadline;
    if (!p.enabled) return;
    const late = r.et - sale.et;
    this.emit(
      'refund_after_deadline',
      p.severity,
      r.terminalId,
      m.id,
      r.card,
      [sale.saleEventId!, r.eventId],
      sale.et,
      r.et,
      detectedAt,
      `Refund ${r.txn} of ${formatMoney(r.amount, r.currency)} at terminal ${r.terminalId} was made ${fmtDuration(late)} after sale ${sale.txn}, ${fmtDuration(late - p.deadline)} past the ${fmtDuration(p.deadline)} refund deadline.`,
      { refund_amount_minor: r.amount, sale_amount_minor: sale.amount, after_ms: late, deadline_ms: p.deadline },
      r.txn,
      r.currency,
      r.amount,
    );
  }

  /** refund_without_sale, refund_exceeds_sale, refund_card_mismatch, refund_after_deadline; false: the same refund again. */
  private refundOfSale(m: MerchantState, term: TerminalState, t: Transaction): boolean {
    const orig = t.original_txn_id;
    const pw = term.rules.refund_without_sale;
    if (orig === null) {
      if (pw.enabled) this.fireWithoutSale(m, term, t, 'names no original sale', { no_original_txn: 1 });
      return true;
    }
    let rec = this.lookupTxn(m, orig);
    if (rec !== undefined && rec.refunds !== null) {
      for (const r of rec.refunds) if (r.txn === t.txn_id) return false; // the same refund again
    }
    if (rec !== undefined && rec.outside !== null && rec.outside.includes(t.txn_id)) return false;
    if (rec !== undefined && rec.flags & SEEN && t.event_time - rec.et > this.lookback) {
      // Made more than the lookback after its sale (event time): not matched, remembered for redelivery.
      (rec.outside ??= []).push(t.txn_id);
      rec = undefined;
    } else rec ??= this.placeholder(m, orig, t, 0) ?? undefined;
    const before = rec === undefined ? 0 : rec.refunded;
    if (rec !== undefined) {
      (rec.refunds ??= []).push({ txn: t.txn_id, eventId: t.event_id, terminalId: term.id, card: t.card_token, amount: t.amount_minor, currency: t.currency, et: t.event_time });
      if (!(rec.flags & SEEN) || t.currency === rec.currency) rec.refunded += t.amount_minor;
    }
    if (rec === undefined || !(rec.flags & SEEN)) {
      if (pw.enabled) this.fireWithoutSale(m, term, t, `refers to sale ${orig}, which merchant ${m.id} has not seen within the ${fmtDuration(this.lookback)} lookback`, { sale_not_found: 1 });
    } else if (rec.flags & VOIDED) {
      if (pw.enabled) this.fireWithoutSale(m, term, t, `refers to sale ${orig}, which was voided or reversed`, { sale_voided: 1 });
    } else {
      if (t.currency === rec.currency && rec.refunded > rec.amount) this.fireExceeds(m, term.rules, rec, term.id, t.card_token, t.txn_id, t.event_id, t.amount_minor, t.event_time, before, t.received_time);
      const r = rec.refunds![rec.refunds!.length - 1]!;
      if (t.card_token !== rec.saleCard) this.fireCardMismatch(m, term.rules, rec, r, t.received_time);
      if (t.event_time - rec.et > term.rules.refund_after_deadline.deadline) this.fireAfterDeadline(m, term.rules, rec, r, t.received_time);
    }
    return true;
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
      `Approved refund ${t.txn_id} of ${formatMoney(t.amount_minor, t.currency)} at terminal ${term.id} ${why}.`,
      { amount_minor: t.amount_minor, lookback_ms: this.lookback, ...flags },
      t.txn_id,
      t.currency,
      t.amount_minor,
    );
  }

  private fireExceeds(
    m: MerchantState,
    rules: ResolvedRules,
    sale: SaleRec,
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
    const total = before + refundAmount;
    this.emit(
      'refund_exceeds_sale',
      p.severity,
      terminalId,
      m.id,
      card,
      [refundEventId],
      Math.min(sale.et, refundEt),
      Math.max(sale.et, refundEt),
      detectedAt,
      `Approved refunds of sale ${sale.txn} add up to ${formatMoney(total, sale.currency)}, ${formatMoney(total - sale.amount, sale.currency)} more than the sale's ${formatMoney(sale.amount, sale.currency)}; refund ${refundTxn} of ${formatMoney(refundAmount, sale.currency)} at terminal ${terminalId} ${before > sale.amount ? 'added to it' : 'crossed it'}.`,
      { sale_amount_minor: sale.amount, refunded_total_minor: total, refunded_before_minor: before, refund_amount_minor: refundAmount, excess_minor: total - sale.amount },
      refundTxn,
      sale.currency,
      refundAmount,
    );
  }

  /** The sale arrived after refunds of it: each refund that took the running total above it fires now. */
  private checkRefundsOfLateSale(m: MerchantState, rec: SaleRec, t: Transaction): void {
    let total = 0;
    for (const r of rec.refunds!) {
      if (r.currency !== rec.currency) continue;
      const before = total;
      total += r.amount;
      if (total > rec.amount) this.fireExceeds(m, this.rulesFor(m, r.terminalId), rec, r.terminalId, r.card, r.txn, r.eventId, r.amount, r.et, before, t.received_time);
    }
  }

  private onVoid(m: MerchantState, t: Transaction): void {
    const orig = t.original_txn_id;
    if (orig === null) return;
    const rec = this.lookupTxn(m, orig);
    if (rec !== undefined && rec.outside !== null && rec.outside.includes(t.txn_id)) return;
    if (rec !== undefined && rec.flags & SEEN && t.event_time - rec.et > this.lookback) (rec.outside ??= []).push(t.txn_id);
    else if (rec !== undefined) rec.flags |= VOIDED;
    else this.placeholder(m, orig, t, VOIDED);
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
    currency: string | null = null,
    amountMinor: number | null = null,
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
      currency: amountMinor === null ? null : currency,
      amount_minor: currency === null ? null : amountMinor,
    };
    const out = (this.out ??= { alerts: [], actions: [], shadowAlerts: [] });
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

  private forgetSale(m: MerchantState, rec: SaleRec): void {
    if (m.txns.get(rec.txn) === rec) {
      m.txns.delete(rec.txn);
      this.nSales--;
    }
    if (rec.flags & IN_DUP) this.dropLeg(m, rec);
  }

  private dropLeg(m: MerchantState, rec: SaleRec): void {
    rec.flags &= ~IN_DUP;
    this.nDupLegs--;
    const card = rec.card!;
    const legs = m.cards.get(card);
    if (legs !== undefined) {
      const i = legs.indexOf(rec);
      if (i >= 0) legs.splice(i, 1);
      if (legs.length === 0) {
        m.cards.delete(card);
        this.nCards--;
      }
    }
    // Only refunds can still match it, and they need neither the sale's event id nor its card.
    rec.eventId = null;
    rec.card = null;
  }

  private sweep(): void {
    const clk = this.clk;
    this.nextSweepAt = clk + SWEEP_EVERY_MS;
    const terminals = clk >= this.nextTerminalSweepAt;
    if (terminals) this.nextTerminalSweepAt = clk + TERMINAL_SWEEP_EVERY_MS;
    for (const m of this.merchants.values()) {
      let changed = false;
      const dq = m.dupQ;
      let h = m.dupHead;
      while (h < dq.length) {
        const r = dq[h]!;
        if (r.flags & IN_DUP) {
          if (r.dupExpiry > clk) break;
          this.dropLeg(m, r);
          changed = true;
        }
        h++;
      }
      if (h !== m.dupHead) {
        if (h === dq.length) {
          m.dupQ = [];
          h = 0;
        } else if (h > 1024 && h * 2 > dq.length) {
          m.dupQ = dq.slice(h);
          h = 0;
        }
        m.dupHead = h;
      }
      const rq = m.refQ;
      h = m.refHead;
      while (h < rq.length) {
        const r = rq[h]!;
        if (r.refExpiry > clk && m.txns.get(r.txn) === r) break;
        this.forgetSale(m, r);
        changed = true;
        h++;
      }
      if (h !== m.refHead) {
        if (h === rq.length) {
          m.refQ = [];
          h = 0;
        } else if (h > 1024 && h * 2 > rq.length) {
          m.refQ = rq.slice(h);
          h = 0;
        }
        m.refHead = h;
      }
      if (terminals) {
        for (const term of m.terminals.values()) {
          if (clk - term.lastRecv > this.idleTtl && term.gaps === null) {
            this.dropTerminal(term);
            changed = true;
          }
        }
      }
      if (changed && m.terminals.size === 0 && m.txns.size === 0 && m.cards.size === 0) this.merchants.delete(m.id);
    }
  }

  stats(): EngineStats {
    return {
      clock: this.clk,
      merchants: this.merchants.size,
      terminals: this.nTerminals,
      cards: this.nCards,
      sales: this.nSales,
      duplicateLegs: this.nDupLegs,
      pendingGaps: this.nGaps,
      samples: this.nSamples,
      events: this.nEvents,
      lateSales: this.nLateSales,
    };
  }
}
