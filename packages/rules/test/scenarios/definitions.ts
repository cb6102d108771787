// Golden scenarios: each builds its input with the scenario builder and declares which alerts it must
// produce (rule + evidence, and where it matters the detection time or details). `generate.ts` writes
// <name>/events.jsonl and <name>/expected.jsonl from these and refuses if the engine disagrees with the
// declaration; golden.test.ts checks the files byte for byte and the declarations again.
import type { RefundReasonCode, Transaction } from '@tillwatch/schemas';
import type { RuleId } from '../../src/index.js';
import { HOUR, MIN, SEC, T0, type Scenario } from '../helpers/builder.js';

const DAY = 24 * HOUR;

export interface Expectation {
  rule: RuleId;
  /** Transactions or heartbeats (builder HeartbeatLine: its evidence id). */
  evidence: { event_id: string }[];
  /** ms after T0 */
  detectedAt?: number;
  details?: Record<string, number | undefined>;
  terminal?: string;
  /**
   * The alert update that must close this alert (EngineOutput.updates): resolved_at (ms after T0),
   * resolution, details and (when given) the events that resolved it; null: none must. Unchecked when absent.
   */
  closed?: { at: number; resolution: string; details: Record<string, number | undefined>; by?: { event_id: string }[] } | null;
}

export interface ScenarioDef {
  name: string;
  about: string;
  /** Rules config (raw, as in a rules file); defaults when absent. */
  config?: unknown;
  /** The alerts it must produce; with `reasons`, also the refund reason each listed event must get. */
  build(s: Scenario): Expectation[] | { alerts: Expectation[]; reasons: [Transaction, RefundReasonCode][] };
}

const cards = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `tok_${prefix}${String(i).padStart(3, '0')}`);

export const scenarios: ScenarioDef[] = [
  // ------------------------------------------------------------------ duplicate_charge
  {
    name: 'duplicate_charge_basic',
    about: 'Same card, merchant and amount 3 min apart at two tills fires once; other card, other amount, two hours later and another merchant do not.',
    build(s) {
      const a = s.sale({ at: 0, terminal: 'T1', card: 'tok_a', amount: 1250 });
      s.sale({ at: 1 * MIN, terminal: 'T1', card: 'tok_b', amount: 1250 });
      s.sale({ at: 2 * MIN, terminal: 'T1', card: 'tok_a', amount: 990 });
      const b = s.sale({ at: 3 * MIN, terminal: 'T2', card: 'tok_a', amount: 1250 });
      s.sale({ at: 3 * MIN + 30 * SEC, merchant: 'M2', terminal: 'T9', card: 'tok_a', amount: 1250 });
      s.sale({ at: 2 * HOUR + 3 * MIN, terminal: 'T1', card: 'tok_a', amount: 1250 });
      return [{ rule: 'duplicate_charge', evidence: [a, b], terminal: 'T2', detectedAt: 3 * MIN + 1500, details: { amount_minor: 1250, gap_ms: 3 * MIN, window_ms: 10 * MIN, same_terminal: 0 } }];
    },
  },
  {
    name: 'duplicate_charge_late_first_leg',
    about: 'The first leg sits 5 h in an offline terminal queue and arrives after the retry: the duplicate still fires (and the lag episode is reported once).',
    build(s) {
      const retry = s.sale({ at: 64 * MIN, terminal: 'T1', card: 'tok_a', amount: 4590 });
      s.sale({ at: 2 * HOUR, terminal: 'T1', card: 'tok_c', amount: 800 });
      s.sale({ at: 4 * HOUR, terminal: 'T1', card: 'tok_d', amount: 1200 });
      // T2 reconnects at 06:00 after T0 and uploads its queue.
      const first = s.sale({ at: 60 * MIN, recvAt: 6 * HOUR + 10 * SEC, terminal: 'T2', card: 'tok_a', amount: 4590 });
      s.sale({ at: 61 * MIN, recvAt: 6 * HOUR + 11 * SEC, terminal: 'T2', card: 'tok_e', amount: 2100 });
      s.sale({ at: 6 * HOUR + 1 * MIN, terminal: 'T2', card: 'tok_f', amount: 990 });
      return [
        { rule: 'sync_lag', evidence: [first], detectedAt: 6 * HOUR + 10 * SEC, details: { lag_ms: 5 * HOUR + 10 * SEC, threshold_ms: 15 * MIN, terminal_seq: 1 } },
        { rule: 'duplicate_charge', evidence: [first, retry], terminal: 'T1', detectedAt: 6 * HOUR + 10 * SEC, details: { amount_minor: 4590, gap_ms: 4 * MIN, window_ms: 10 * MIN, same_terminal: 0 } },
      ];
    },
  },
  {
    name: 'duplicate_charge_normal_retries',
    about: 'Declined then approved; timeout, reversal, retry; approved, voided, charged again; the same event delivered twice: none is a duplicate.',
    build(s) {
      s.sale({ at: 0, card: 'tok_a', amount: 2500, status: 'DECLINED' });
      s.sale({ at: 40 * SEC, card: 'tok_a', amount: 2500 });
      const x = s.sale({ at: 5 * MIN, card: 'tok_b', amount: 3000, status: 'TIMEOUT' });
      s.void({ at: 5 * MIN + 20 * SEC, kind: 'REVERSAL', of: x.txn_id, card: 'tok_b', amount: 3000 });
      s.sale({ at: 6 * MIN, card: 'tok_b', amount: 3000 });
      const y = s.sale({ at: 10 * MIN, card: 'tok_c', amount: 1800 });
      s.void({ at: 11 * MIN, of: y.txn_id, card: 'tok_c', amount: 1800 });
      s.sale({ at: 12 * MIN, card: 'tok_c', amount: 1800 });
      const z = s.sale({ at: 20 * MIN, card: 'tok_d', amount: 700 });
      s.again(z);
      return [];
    },
  },
  {
    name: 'duplicate_charge_timeout_then_approved',
    about: 'The terminal showed TIMEOUT, the cashier retried, and the host later reports the first attempt APPROVED: the customer paid twice.',
    build(s) {
      const x = s.sale({ at: 0, card: 'tok_a', amount: 5600, status: 'TIMEOUT', txn: 'tx-first' });
      const y = s.sale({ at: 45 * SEC, card: 'tok_a', amount: 5600, txn: 'tx-retry' });
      const xa = s.sale({ at: 0, recvAt: 3 * MIN, card: 'tok_a', amount: 5600, status: 'APPROVED', txn: x.txn_id, seq: x.terminal_seq });
      return [{ rule: 'duplicate_charge', evidence: [xa, y], terminal: 'T1', detectedAt: 3 * MIN, details: { amount_minor: 5600, gap_ms: 45 * SEC, window_ms: 10 * MIN, same_terminal: 1 } }];
    },
  },
  {
    name: 'duplicate_charge_window_edge',
    about: 'Legs exactly 10 min apart fire; 10 min + 1 ms apart do not.',
    build(s) {
      const a = s.sale({ at: 0, terminal: 'T1', card: 'tok_a', amount: 500 });
      s.sale({ at: 0, terminal: 'T2', card: 'tok_b', amount: 600 });
      const b = s.sale({ at: 10 * MIN, terminal: 'T1', card: 'tok_a', amount: 500 });
      s.sale({ at: 10 * MIN + 1, terminal: 'T2', card: 'tok_b', amount: 600 });
      return [{ rule: 'duplicate_charge', evidence: [a, b], details: { amount_minor: 500, gap_ms: 10 * MIN, window_ms: 10 * MIN, same_terminal: 1 } }];
    },
  },
  {
    name: 'duplicate_charge_triple',
    about: 'Three charges: one alert per extra charge, each paired with its nearest earlier leg; never two alerts for one pair.',
    build(s) {
      const a = s.sale({ at: 0, card: 'tok_a', amount: 1999 });
      const b = s.sale({ at: 2 * MIN, card: 'tok_a', amount: 1999 });
      const c = s.sale({ at: 4 * MIN, card: 'tok_a', amount: 1999 });
      return [
        { rule: 'duplicate_charge', evidence: [a, b] },
        { rule: 'duplicate_charge', evidence: [b, c] },
      ];
    },
  },
  {
    name: 'duplicate_charge_beyond_lateness',
    about: 'Both legs arrive 30 h late, beyond the 24 h allowed lateness: not matched as duplicates (documented); the lag episode is reported.',
    build(s) {
      s.sale({ at: 0, terminal: 'T1', card: 'tok_x', amount: 100 });
      s.sale({ at: 30 * HOUR, terminal: 'T1', card: 'tok_y', amount: 100 });
      const a = s.sale({ at: 10 * MIN, recvAt: 30 * HOUR + 10 * MIN, terminal: 'T2', card: 'tok_a', amount: 3333 });
      s.sale({ at: 12 * MIN, recvAt: 30 * HOUR + 10 * MIN + 100, terminal: 'T2', card: 'tok_a', amount: 3333 });
      return [{ rule: 'sync_lag', evidence: [a] }];
    },
  },
  {
    name: 'duplicate_charge_resolved',
    about:
      'A duplicate is resolved (alert update, auto_resolved) by an approved reversal of its second leg, by a void of its first leg a day later, by refunds of both legs adding up to the amount, and by one full refund that arrived before the second leg; a reversal of an unrelated sale, a declined reversal and a partial refund of one leg resolve nothing.',
    build(s): Expectation[] {
      // A: reversed two minutes after the retry.
      const a1 = s.sale({ at: 0, terminal: 'T1', card: 'tok_a', amount: 2500, txn: 'tx-a1' });
      const a2 = s.sale({ at: 1 * MIN, terminal: 'T1', card: 'tok_a', amount: 2500, txn: 'tx-a2' });
      const rev = s.void({ at: 3 * MIN, kind: 'REVERSAL', terminal: 'T1', card: 'tok_a', amount: 2500, of: 'tx-a2' });
      // B: voided a day later (first leg), a declined reversal before that changes nothing.
      const b1 = s.sale({ at: 10 * MIN, terminal: 'T2', card: 'tok_b', amount: 990, txn: 'tx-b1' });
      const b2 = s.sale({ at: 12 * MIN, terminal: 'T3', card: 'tok_b', amount: 990, txn: 'tx-b2' });
      s.void({ at: 13 * MIN, kind: 'REVERSAL', status: 'DECLINED', terminal: 'T2', card: 'tok_b', amount: 990, of: 'tx-b1' });
      // C: refunded in two parts, one per leg (700 + 500 >= 1200).
      const c1 = s.sale({ at: 20 * MIN, terminal: 'T1', card: 'tok_c', amount: 1200, txn: 'tx-c1' });
      const c2 = s.sale({ at: 25 * MIN, terminal: 'T1', card: 'tok_c', amount: 1200, txn: 'tx-c2' });
      const cr1 = s.refund({ at: 2 * HOUR, terminal: 'T1', card: 'tok_c', amount: 700, of: 'tx-c2' });
      const cr2 = s.refund({ at: 3 * HOUR, terminal: 'T2', card: 'tok_c', amount: 500, of: 'tx-c1' });
      // D (negative control): a partial refund of one leg does not resolve it.
      const d1 = s.sale({ at: 30 * MIN, terminal: 'T1', card: 'tok_d', amount: 4000, txn: 'tx-d1' });
      const d2 = s.sale({ at: 31 * MIN, terminal: 'T1', card: 'tok_d', amount: 4000, txn: 'tx-d2' });
      s.refund({ at: 4 * HOUR, terminal: 'T1', card: 'tok_d', amount: 3999, of: 'tx-d2' });
      // E (negative control): a reversal of an unrelated sale of the same card and amount.
      const e1 = s.sale({ at: 40 * MIN, terminal: 'T1', card: 'tok_e', amount: 1500, txn: 'tx-e1' });
      const e2 = s.sale({ at: 42 * MIN, terminal: 'T1', card: 'tok_e', amount: 1500, txn: 'tx-e2' });
      s.sale({ at: 3 * HOUR, terminal: 'T1', card: 'tok_e', amount: 1500, txn: 'tx-e3' });
      s.void({ at: 3 * HOUR + MIN, kind: 'REVERSAL', terminal: 'T1', card: 'tok_e', amount: 1500, of: 'tx-e3' });
      // F: the first leg sat offline; its full refund reached the platform before the retry's late-arriving twin.
      const f2 = s.sale({ at: 5 * HOUR + 2 * MIN, terminal: 'T1', card: 'tok_f', amount: 800, txn: 'tx-f2' });
      const fr = s.refund({ at: 5 * HOUR + 10 * MIN, terminal: 'T1', card: 'tok_f', amount: 800, of: 'tx-f2' });
      const f1 = s.sale({ at: 5 * HOUR, recvAt: 5 * HOUR + 12 * MIN, terminal: 'T4', card: 'tok_f', amount: 800, txn: 'tx-f1' });
      // B's void, a day after the sale.
      const bv = s.void({ at: DAY, terminal: 'T2', card: 'tok_b', amount: 990, of: 'tx-b1' });
      const recv = (t: Transaction): number => t.received_time - T0;
      return [
        { rule: 'duplicate_charge', evidence: [a1, a2], closed: { at: recv(rev), resolution: 'reversed', details: { amount_minor: 2500 }, by: [rev] } },
        { rule: 'duplicate_charge', evidence: [b1, b2], terminal: 'T3', closed: { at: recv(bv), resolution: 'voided', details: { amount_minor: 990 }, by: [bv] } },
        { rule: 'duplicate_charge', evidence: [c1, c2], closed: { at: recv(cr2), resolution: 'refunded', details: { amount_minor: 1200, refunded_minor: 1200, refunds: 2 }, by: [cr1, cr2] } },
        { rule: 'duplicate_charge', evidence: [d1, d2], closed: null },
        { rule: 'duplicate_charge', evidence: [e1, e2], closed: null },
        { rule: 'duplicate_charge', evidence: [f1, f2], closed: { at: recv(f1), resolution: 'refunded', details: { amount_minor: 800, refunded_minor: 800, refunds: 1 }, by: [fr] } },
      ];
    },
  },
  // ------------------------------------------------------------------ abnormal_amount
  {
    name: 'abnormal_amount_warmup',
    about: 'A 20x sale after 19 approved sales is not judged (warm-up); the next one, after 20, fires.',
    build(s) {
      const cs = cards('w', 19);
      cs.forEach((card, i) => s.sale({ at: i * MIN, card, amount: 1000 }));
      s.sale({ at: 30 * MIN, card: 'tok_big1', amount: 20_000 });
      const b = s.sale({ at: 31 * MIN, card: 'tok_big2', amount: 20_000 });
      return [{ rule: 'abnormal_amount', evidence: [b], details: { amount_minor: 20_000, median_minor: 1000, ratio: 20, threshold_ratio: 10, sample_size: 20, sales_seen: 20 } }];
    },
  },
  {
    name: 'abnormal_amount_threshold',
    about: 'Exactly 10x the median fires, one unit less does not; ordinary variation up to 3x and a declined big sale never fire.',
    build(s) {
      cards('t', 25).forEach((card, i) => s.sale({ at: i * MIN, terminal: 'T1', card, amount: 1000 }));
      s.sale({ at: 30 * MIN, terminal: 'T1', card: 'tok_under', amount: 9999 });
      s.sale({ at: 31 * MIN, terminal: 'T1', card: 'tok_declined', amount: 500_000, status: 'DECLINED' });
      const at = s.sale({ at: 32 * MIN, terminal: 'T1', card: 'tok_at', amount: 10_000 });
      const amounts = [400, 1000, 1500, 3000, 700, 2500, 1200, 333, 2999, 1000];
      cards('v', 60).forEach((card, i) => s.sale({ at: i * MIN, terminal: 'T2', card, amount: amounts[i % amounts.length]! }));
      return [{ rule: 'abnormal_amount', evidence: [at], details: { amount_minor: 10_000, median_minor: 1000, ratio: 10, threshold_ratio: 10, sample_size: 26, sales_seen: 26 } }];
    },
  },
  // ------------------------------------------------------------------ sync_lag
  {
    name: 'sync_lag_burst',
    about:
      'A 200-transaction offline burst (188 of them late) is one alert, closed 30 min after its last late transaction; an on-time event does not end an episode, a 30 min quiet does, so a later outage is a second alert; lag exactly at 15 min does not fire, 1 ms more does, and that episode is still open at the end of the input (no update).',
    build(s) {
      const burst: Transaction[] = [];
      for (let k = 0; k < 200; k++) {
        burst.push(s.sale({ at: 60 * MIN + k * 72 * SEC, recvAt: 5 * HOUR + k * 50, terminal: 'T1', card: `tok_b${k}`, amount: 800 + ((k * 37) % 1200) }));
      }
      s.sale({ at: 5 * HOUR + 5 * MIN, terminal: 'T1', card: 'tok_online', amount: 1500 });
      const second: Transaction[] = [];
      for (let k = 0; k < 10; k++) second.push(s.sale({ at: 6 * HOUR + k * MIN, recvAt: 6 * HOUR + 30 * MIN + k * 100, terminal: 'T1', card: `tok_c${k}`, amount: 1000 + k }));
      s.sale({ at: 7 * HOUR, lag: 15 * MIN, terminal: 'T2', card: 'tok_edge1', amount: 1000 });
      const over = s.sale({ at: 7 * HOUR, lag: 15 * MIN + 1, terminal: 'T3', card: 'tok_edge2', amount: 1000 });
      return [
        {
          rule: 'sync_lag',
          evidence: [burst[0]!],
          detectedAt: 5 * HOUR,
          details: { lag_ms: 4 * HOUR, threshold_ms: 15 * MIN, terminal_seq: 1 },
          // The last 12 of the burst were made within 15 min of the upload (on time): 188 late, the last at k = 187.
          closed: { at: 5 * HOUR + 187 * 50 + 30 * MIN, resolution: 'episode_ended', details: { duration_ms: 4 * HOUR + 187 * 50, late_count: 188, max_lag_ms: 4 * HOUR } },
        },
        {
          rule: 'sync_lag',
          evidence: [second[0]!],
          detectedAt: 6 * HOUR + 30 * MIN,
          closed: { at: 7 * HOUR + 900, resolution: 'episode_ended', details: { duration_ms: 30 * MIN + 900, late_count: 10, max_lag_ms: 30 * MIN } },
        },
        { rule: 'sync_lag', evidence: [over], details: { lag_ms: 15 * MIN + 1, threshold_ms: 15 * MIN, terminal_seq: 1 }, closed: null },
      ];
    },
  },
  {
    name: 'sync_lag_reconnect_interleaved',
    about:
      'Offline 1h-3h, the terminal reconnects and uploads its 12-sale backlog over 22 min, out of order, each upload between two new on-time sales: one alert (sync_lag@1 raised 12), closed 30 min after the last late one with duration, late count and maximum lag; the backlog fills the sequence gap in time, so no sequence_gap.',
    build(s) {
      // Before the outage: seq 1-3. Offline sales: seq 4-15, made 1h..2h50m. After the reconnect: seq 16 on.
      for (let j = 0; j < 3; j++) s.sale({ at: j * 20 * MIN, card: `tok_p${j}`, amount: 1100 + j * 50, seq: 1 + j });
      const order = [3, 0, 1, 7, 2, 4, 5, 11, 6, 8, 9, 10];
      const backlog: Transaction[] = [];
      for (let j = 0; j <= 40; j++) {
        s.sale({ at: 3 * HOUR + j * 2 * MIN, card: `tok_n${j}`, amount: 1200 + ((j * 37) % 500), seq: 16 + j });
        if (j < order.length) {
          const k = order[j]!;
          backlog[k] = s.sale({ at: HOUR + k * 10 * MIN, recvAt: 3 * HOUR + j * 2 * MIN + 30 * SEC, card: `tok_o${k}`, amount: 900 + k * 25, seq: 4 + k });
        }
      }
      return [
        {
          rule: 'sync_lag',
          evidence: [backlog[3]!],
          detectedAt: 3 * HOUR + 30 * SEC,
          details: { lag_ms: HOUR + 30 * MIN + 30 * SEC, threshold_ms: 15 * MIN, terminal_seq: 7 },
          // Last late one received at 3h22m30s; the oldest made at 1h; the longest held back: seq 4, 2h2m30s.
          closed: { at: 3 * HOUR + 52 * MIN + 30 * SEC, resolution: 'episode_ended', details: { duration_ms: 2 * HOUR + 22 * MIN + 30 * SEC, late_count: 12, max_lag_ms: 2 * HOUR + 2 * MIN + 30 * SEC } },
        },
      ];
    },
  },
  {
    name: 'sync_lag_second_episode',
    about:
      'Two outages of one terminal with on-time sales throughout: a late sale 29 min after the previous late one joins its episode; one 37 min after the last late one is a second episode: two alerts, each closed by its own update.',
    build(s) {
      type Spec = { at: number; recvAt?: number; card: string };
      const specs: Spec[] = [];
      for (let j = 0; j <= 40; j++) specs.push({ at: 2 * HOUR + j * 3 * MIN, card: `tok_n${j}` });
      const late1: Spec[] = [
        { at: 90 * MIN, recvAt: 2 * HOUR, card: 'tok_a0' },
        { at: 95 * MIN, recvAt: 2 * HOUR + MIN, card: 'tok_a1' },
        { at: 100 * MIN, recvAt: 2 * HOUR + 2 * MIN, card: 'tok_a2' },
        { at: 105 * MIN, recvAt: 2 * HOUR + 4 * MIN, card: 'tok_a3' },
        { at: 2 * HOUR + 10 * MIN, recvAt: 2 * HOUR + 33 * MIN, card: 'tok_a4' }, // 29 min after the previous late one
      ];
      const late2: Spec[] = [
        { at: 2 * HOUR + 50 * MIN, recvAt: 3 * HOUR + 10 * MIN, card: 'tok_b0' }, // 37 min after the last late one
        { at: 2 * HOUR + 55 * MIN, recvAt: 3 * HOUR + 11 * MIN, card: 'tok_b1' },
        { at: 2 * HOUR + 52 * MIN, recvAt: 3 * HOUR + 12 * MIN, card: 'tok_b2' },
      ];
      const recv = (x: Spec): number => x.recvAt ?? x.at + 1500;
      const all = [...specs, ...late1, ...late2].sort((x, y) => recv(x) - recv(y));
      const made = new Map<Spec, Transaction>();
      all.forEach((x, i) => made.set(x, s.sale({ ...x, amount: 1000 + ((i * 53) % 700) })));
      return [
        {
          rule: 'sync_lag',
          evidence: [made.get(late1[0]!)!],
          detectedAt: 2 * HOUR,
          closed: { at: 3 * HOUR + 3 * MIN, resolution: 'episode_ended', details: { duration_ms: HOUR + 3 * MIN, late_count: 5, max_lag_ms: 30 * MIN } },
        },
        {
          rule: 'sync_lag',
          evidence: [made.get(late2[0]!)!],
          detectedAt: 3 * HOUR + 10 * MIN,
          closed: { at: 3 * HOUR + 42 * MIN, resolution: 'episode_ended', details: { duration_ms: 22 * MIN, late_count: 3, max_lag_ms: 20 * MIN } },
        },
      ];
    },
  },
  // ------------------------------------------------------------------ sequence_gap
  {
    name: 'sequence_gap_filled_late',
    about: 'A sequence number that arrives 5 minutes late fills its gap: no alert, even after the timeout has passed.',
    build(s) {
      s.sale({ at: 0, card: 'tok_1', seq: 1 });
      s.sale({ at: 1 * MIN, card: 'tok_2', seq: 2 });
      s.sale({ at: 3 * MIN, card: 'tok_4', seq: 4 });
      s.sale({ at: 4 * MIN, card: 'tok_5', seq: 5 });
      s.sale({ at: 2 * MIN, recvAt: 8 * MIN, card: 'tok_3', seq: 3 });
      for (let k = 6; k <= 20; k++) s.sale({ at: (k - 1) * 10 * MIN, card: `tok_${k}`, seq: k });
      return [];
    },
  },
  {
    name: 'sequence_gap_fires',
    about: 'Missing sequence numbers fire 30 min (received time) after the higher one arrived, detected_at = that due time; simultaneous gaps fire in (due, terminal) order.',
    build(s) {
      s.sale({ at: 0, terminal: 'T2', card: 'tok_a1', seq: 1 });
      s.sale({ at: 0, terminal: 'T10', card: 'tok_b1', seq: 1 });
      s.sale({ at: 1 * MIN, terminal: 'T2', card: 'tok_a2', seq: 2 });
      const low10 = s.sale({ at: 1 * MIN, terminal: 'T10', card: 'tok_b2', seq: 2 });
      const low2 = s.sale({ at: 2 * MIN, terminal: 'T2', card: 'tok_a3', seq: 3 });
      const high2 = s.sale({ at: 5 * MIN, recvAt: 5 * MIN + 2 * SEC, terminal: 'T2', card: 'tok_a6', seq: 6 });
      const high10 = s.sale({ at: 5 * MIN, recvAt: 5 * MIN + 2 * SEC, terminal: 'T10', card: 'tok_b9', seq: 9 });
      for (let k = 1; k <= 12; k++) s.sale({ at: 5 * MIN + k * 10 * MIN, terminal: 'T2', card: `tok_c${k}`, seq: 6 + k });
      const due = 35 * MIN + 2 * SEC;
      return [
        { rule: 'sequence_gap', evidence: [low10, high10], terminal: 'T10', detectedAt: due, details: { missing_from: 3, missing_to: 8, missing_count: 6, low_seq: 2, high_seq: 9, timeout_ms: 30 * MIN } },
        { rule: 'sequence_gap', evidence: [low2, high2], terminal: 'T2', detectedAt: due, details: { missing_from: 4, missing_to: 5, missing_count: 2, low_seq: 3, high_seq: 6, timeout_ms: 30 * MIN } },
      ];
    },
  },
  {
    name: 'sequence_gap_end_of_input',
    about: 'A gap whose timeout has not passed when the input ends is not reported (the backtest clock stops at the last received time).',
    build(s) {
      for (let k = 1; k <= 5; k++) s.sale({ at: k * MIN, card: `tok_${k}`, seq: k });
      s.sale({ at: 10 * MIN, card: 'tok_8', seq: 8 });
      s.sale({ at: 39 * MIN, card: 'tok_9', seq: 9 });
      return [];
    },
  },
  {
    name: 'sequence_gap_exactly_due',
    about: 'A missing seq arriving exactly at the due time is too late (the gap fires first, and the seq then closes the alert: gap_filled); 1 ms earlier it fills the gap.',
    build(s) {
      const low = s.sale({ at: 0, terminal: 'T1', card: 'tok_a1', seq: 1 });
      const high = s.sale({ at: 2 * MIN, recvAt: 2 * MIN, terminal: 'T1', card: 'tok_a3', seq: 3 });
      s.sale({ at: 1 * MIN, recvAt: 1 * MIN, terminal: 'T2', card: 'tok_b1', seq: 1 });
      s.sale({ at: 2 * MIN, recvAt: 2 * MIN, terminal: 'T2', card: 'tok_b3', seq: 3 });
      s.sale({ at: 2 * MIN, recvAt: 32 * MIN - 1, terminal: 'T2', card: 'tok_b2', seq: 2 });
      s.sale({ at: 1 * MIN, recvAt: 32 * MIN, terminal: 'T1', card: 'tok_a2', seq: 2 });
      return [
        { rule: 'sync_lag', evidence: [s.events[4]!] },
        // The late seq 2 arrives right after the alert fired: it closes it at once (gap_filled).
        {
          rule: 'sequence_gap',
          evidence: [low, high],
          terminal: 'T1',
          detectedAt: 32 * MIN,
          details: { missing_from: 2, missing_to: 2, missing_count: 1, low_seq: 1, high_seq: 3, timeout_ms: 30 * MIN },
          closed: { at: 32 * MIN, resolution: 'gap_filled', details: { missing_count: 1, filled_after_ms: 0, late_events: 1 }, by: [s.events[5]!] },
        },
        { rule: 'sync_lag', evidence: [s.events[5]!] },
      ];
    },
  },
  {
    name: 'sequence_gap_partial_fill',
    about: 'Gap 3..6, seq 4 arrives: one alert for the original gap with the still-missing range and count.',
    build(s) {
      s.sale({ at: 0, card: 'tok_1', seq: 1 });
      const low = s.sale({ at: 1 * MIN, card: 'tok_2', seq: 2 });
      const high = s.sale({ at: 2 * MIN, card: 'tok_7', seq: 7 });
      s.sale({ at: 1 * MIN, recvAt: 4 * MIN, card: 'tok_4', seq: 4 });
      for (let k = 8; k <= 12; k++) s.sale({ at: (k - 6) * 10 * MIN, card: `tok_${k}`, seq: k });
      return [{ rule: 'sequence_gap', evidence: [low, high], detectedAt: 32 * MIN + 1500, details: { missing_from: 3, missing_to: 6, missing_count: 3, low_seq: 2, high_seq: 7, timeout_ms: 30 * MIN } }];
    },
  },
  {
    name: 'sequence_gap_filled_after_alert',
    about:
      'A gap that fired is closed (alert update gap_filled) when every number it reported missing arrives after the alert, the last one resolving it; a number filled before the alert is not waited for; a gap only partly filled after its alert stays open (negative control), and a redelivered number does not count twice.',
    build(s) {
      // T1: gap 3..6; seq 4 arrives in time (partial fill), the alert reports 3, 5, 6.
      s.sale({ at: 0, terminal: 'T1', card: 'tok_1', seq: 1 });
      const low = s.sale({ at: 1 * MIN, terminal: 'T1', card: 'tok_2', seq: 2 });
      const high = s.sale({ at: 2 * MIN, terminal: 'T1', card: 'tok_7', seq: 7 });
      s.sale({ at: 1 * MIN, recvAt: 4 * MIN, terminal: 'T1', card: 'tok_4', seq: 4 });
      // T2 (negative control): gap 2..3; only 3 arrives after the alert, twice.
      const low2 = s.sale({ at: 0, terminal: 'T2', card: 'tok_b1', seq: 1 });
      const high2 = s.sale({ at: 2 * MIN, terminal: 'T2', card: 'tok_b4', seq: 4 });
      // Keep the clock moving past both due times.
      for (let k = 8; k <= 12; k++) s.sale({ at: (k - 6) * 10 * MIN, terminal: 'T1', card: `tok_${k}`, seq: k });
      // After the alerts (due 32m): T1's 3, 6 and 5 arrive (an hour or so late), T2's 3 twice.
      const f3 = s.sale({ at: 90 * SEC, recvAt: 70 * MIN, terminal: 'T1', card: 'tok_3', seq: 3 });
      const b3 = s.sale({ at: 1 * MIN, recvAt: 71 * MIN, terminal: 'T2', card: 'tok_b3', seq: 3 });
      s.again(b3);
      const f6 = s.sale({ at: 110 * SEC, recvAt: 72 * MIN, terminal: 'T1', card: 'tok_6', seq: 6 });
      s.again(f6);
      const f5 = s.sale({ at: 100 * SEC, recvAt: 80 * MIN, terminal: 'T1', card: 'tok_5', seq: 5 });
      return [
        {
          rule: 'sequence_gap',
          evidence: [low, high],
          terminal: 'T1',
          detectedAt: 32 * MIN + 1500,
          details: { missing_from: 3, missing_to: 6, missing_count: 3, low_seq: 2, high_seq: 7, timeout_ms: 30 * MIN },
          closed: { at: 80 * MIN, resolution: 'gap_filled', details: { missing_count: 3, filled_after_ms: 80 * MIN - (32 * MIN + 1500), late_events: 3 }, by: [f3, f6, f5] },
        },
        { rule: 'sequence_gap', evidence: [low2, high2], terminal: 'T2', detectedAt: 32 * MIN + 1500, closed: null },
        { rule: 'sync_lag', evidence: [f3] },
        { rule: 'sync_lag', evidence: [b3] },
      ];
    },
  },
  // ------------------------------------------------------------------ refunds
  {
    name: 'refund_without_sale',
    about: 'A refund at another till of the same merchant is normal; refunds naming no sale, an unknown sale, another merchant\'s sale, a voided sale, or arriving before their sale fire.',
    build(s) {
      const s1 = s.sale({ at: 0, terminal: 'T1', card: 'tok_a', amount: 5000 });
      s.refund({ at: 10 * MIN, terminal: 'T2', card: 'tok_a', amount: 2000, of: s1.txn_id });
      const noOrig = s.refund({ at: 11 * MIN, terminal: 'T1', card: 'tok_b', amount: 700, of: null });
      const unknown = s.refund({ at: 12 * MIN, terminal: 'T1', card: 'tok_c', amount: 900, of: 'tx-unknown' });
      s.refund({ at: 12 * MIN + 30 * SEC, terminal: 'T1', card: 'tok_c', amount: 900, of: 'tx-unknown-2', status: 'DECLINED' });
      const s2 = s.sale({ at: 13 * MIN, merchant: 'M2', terminal: 'T5', card: 'tok_d', amount: 1500 });
      const other = s.refund({ at: 14 * MIN, terminal: 'T1', card: 'tok_d', amount: 1500, of: s2.txn_id });
      const s3 = s.sale({ at: 15 * MIN, terminal: 'T1', card: 'tok_e', amount: 2500 });
      s.void({ at: 16 * MIN, terminal: 'T1', card: 'tok_e', amount: 2500, of: s3.txn_id });
      const voided = s.refund({ at: 17 * MIN, terminal: 'T2', card: 'tok_e', amount: 2500, of: s3.txn_id });
      // T3 was offline: its sale reaches the platform after the refund made at T2.
      const early = s.refund({ at: 20 * MIN, terminal: 'T2', card: 'tok_f', amount: 1000, of: 'tx-offline-sale' });
      s.sale({ at: 18 * MIN, recvAt: 25 * MIN, terminal: 'T3', card: 'tok_f', amount: 1000, txn: 'tx-offline-sale' });
      return [
        { rule: 'refund_without_sale', evidence: [noOrig], details: { amount_minor: 700, lookback_ms: 8 * DAY, no_original_txn: 1 } },
        { rule: 'refund_without_sale', evidence: [unknown], details: { amount_minor: 900, lookback_ms: 8 * DAY, sale_not_found: 1 } },
        { rule: 'refund_without_sale', evidence: [other], details: { amount_minor: 1500, lookback_ms: 8 * DAY, sale_not_found: 1 } },
        { rule: 'refund_without_sale', evidence: [voided], details: { amount_minor: 2500, lookback_ms: 8 * DAY, sale_voided: 1 } },
        { rule: 'refund_without_sale', evidence: [early], terminal: 'T2' },
      ];
    },
  },
  {
    name: 'refund_exceeds_sale',
    about: 'Partial refunds across tills adding up to the sale are fine; the refund that crosses it fires (and so does each one after); a redelivered refund is counted once; a sale arriving after refunds that exceed it fires then.',
    build(s) {
      const s1 = s.sale({ at: 0, terminal: 'T1', card: 'tok_a', amount: 10_000 });
      s.refund({ at: 5 * MIN, terminal: 'T1', card: 'tok_a', amount: 4000, of: s1.txn_id });
      s.refund({ at: 6 * MIN, terminal: 'T2', card: 'tok_a', amount: 6000, of: s1.txn_id });
      const cross = s.refund({ at: 7 * MIN, terminal: 'T3', card: 'tok_a', amount: 1, of: s1.txn_id });
      const after = s.refund({ at: 8 * MIN, terminal: 'T1', card: 'tok_a', amount: 500, of: s1.txn_id });
      const s2 = s.sale({ at: 10 * MIN, terminal: 'T1', card: 'tok_b', amount: 3000 });
      const r2 = s.refund({ at: 11 * MIN, terminal: 'T1', card: 'tok_b', amount: 2000, of: s2.txn_id });
      s.again(r2);
      const s3 = s.sale({ at: 12 * MIN, terminal: 'T1', card: 'tok_c', amount: 2000 });
      const over = s.refund({ at: 13 * MIN, terminal: 'T2', card: 'tok_c', amount: 2500, of: s3.txn_id });
      const r5a = s.refund({ at: 20 * MIN, terminal: 'T2', card: 'tok_d', amount: 3000, of: 'tx-late' });
      const r5b = s.refund({ at: 21 * MIN, terminal: 'T2', card: 'tok_d', amount: 3000, of: 'tx-late' });
      s.sale({ at: 15 * MIN, recvAt: 22 * MIN, terminal: 'T4', card: 'tok_d', amount: 5000, txn: 'tx-late' });
      return [
        { rule: 'refund_exceeds_sale', evidence: [cross], terminal: 'T3', details: { sale_amount_minor: 10_000, refunded_total_minor: 10_001, refunded_before_minor: 10_000, refund_amount_minor: 1, excess_minor: 1 } },
        { rule: 'refund_exceeds_sale', evidence: [after], details: { sale_amount_minor: 10_000, refunded_total_minor: 10_501, refunded_before_minor: 10_001, refund_amount_minor: 500, excess_minor: 501 } },
        { rule: 'refund_exceeds_sale', evidence: [over], details: { sale_amount_minor: 2000, refunded_total_minor: 2500, refunded_before_minor: 0, refund_amount_minor: 2500, excess_minor: 500 } },
        { rule: 'refund_without_sale', evidence: [r5a] },
        { rule: 'refund_without_sale', evidence: [r5b] },
        { rule: 'refund_exceeds_sale', evidence: [r5b], terminal: 'T2', detectedAt: 22 * MIN, details: { sale_amount_minor: 5000, refunded_total_minor: 6000, refunded_before_minor: 3000, refund_amount_minor: 3000, excess_minor: 1000 } },
      ];
    },
  },
  // ------------------------------------------------------------------ refund policy
  {
    name: 'refund_card_mismatch',
    about: 'A refund to the card that paid is normal (at any till); a refund of a known sale to another card fires, also two days after the sale; a declined one, one of an unknown or voided sale do not (refund_without_sale does); a sale arriving after its refund to another card fires then.',
    build(s) {
      const s1 = s.sale({ at: 0, terminal: 'T1', card: 'tok_a', amount: 5000 });
      s.refund({ at: 5 * MIN, terminal: 'T2', card: 'tok_a', amount: 2000, of: s1.txn_id }); // same card: normal
      const other = s.refund({ at: 6 * MIN, terminal: 'T1', card: 'tok_z', amount: 2500, of: s1.txn_id });
      s.refund({ at: 7 * MIN, terminal: 'T1', card: 'tok_z', amount: 500, of: s1.txn_id, status: 'DECLINED' });
      const unknown = s.refund({ at: 8 * MIN, terminal: 'T1', card: 'tok_z', amount: 700, of: 'tx-unknown' });
      const s2 = s.sale({ at: 9 * MIN, terminal: 'T1', card: 'tok_b', amount: 1500 });
      s.void({ at: 10 * MIN, terminal: 'T1', card: 'tok_b', amount: 1500, of: s2.txn_id });
      const voided = s.refund({ at: 11 * MIN, terminal: 'T1', card: 'tok_z', amount: 1500, of: s2.txn_id });
      // T3 was offline: its sale (card tok_c) reaches the platform after the refund to tok_y at T2.
      const early = s.refund({ at: 20 * MIN, terminal: 'T2', card: 'tok_y', amount: 1000, of: 'tx-offline-sale' });
      const late = s.sale({ at: 18 * MIN, recvAt: 25 * MIN, terminal: 'T3', card: 'tok_c', amount: 1000, txn: 'tx-offline-sale' });
      // Two days later (long past the duplicate horizon): the sale's card is still known.
      const s3 = s.sale({ at: 30 * MIN, terminal: 'T1', card: 'tok_d', amount: 12_345 });
      const twoDays = s.refund({ at: 2 * DAY, terminal: 'T2', card: 'tok_w', amount: 12_345, of: s3.txn_id });
      return [
        { rule: 'refund_card_mismatch', evidence: [s1, other], terminal: 'T1', detectedAt: 6 * MIN + 1500, details: { refund_amount_minor: 2500, sale_amount_minor: 5000 } },
        { rule: 'refund_without_sale', evidence: [unknown] },
        { rule: 'refund_without_sale', evidence: [voided] },
        { rule: 'refund_without_sale', evidence: [early] },
        { rule: 'refund_card_mismatch', evidence: [late, early], terminal: 'T2', detectedAt: 25 * MIN, details: { refund_amount_minor: 1000, sale_amount_minor: 1000 } },
        { rule: 'refund_card_mismatch', evidence: [s3, twoDays], terminal: 'T2', detectedAt: 2 * DAY + 1500, details: { refund_amount_minor: 12_345, sale_amount_minor: 12_345 } },
      ];
    },
  },
  {
    name: 'refund_after_deadline',
    about: 'Refunds exactly 7 d after the sale are on time, 7 d + 1 ms is late and fires, 7.5 d fires; a sale older than the 8 d lookback is not found (refund_without_sale); merchant M2 has a 1 d deadline.',
    config: { overrides: { merchants: { M2: { refund_after_deadline: { deadline: '1d' } } } } },
    build(s) {
      const s1 = s.sale({ at: 0, terminal: 'T1', card: 'tok_a', amount: 4000 });
      const s2 = s.sale({ at: 1 * MIN, terminal: 'T1', card: 'tok_b', amount: 3000 });
      const s3 = s.sale({ at: 2 * MIN, terminal: 'T1', card: 'tok_c', amount: 2000 });
      const s4 = s.sale({ at: 3 * MIN, terminal: 'T1', card: 'tok_d', amount: 1000 });
      const m2 = s.sale({ at: 4 * MIN, merchant: 'M2', terminal: 'T5', card: 'tok_e', amount: 999 });
      const m2ok = s.sale({ at: 5 * MIN, merchant: 'M2', terminal: 'T5', card: 'tok_f', amount: 999 });
      s.refund({ at: 12 * HOUR, merchant: 'M2', terminal: 'T5', card: 'tok_f', amount: 999, of: m2ok.txn_id }); // within M2's 1 d
      const m2late = s.refund({ at: 2 * DAY, merchant: 'M2', terminal: 'T5', card: 'tok_e', amount: 999, of: m2.txn_id });
      s.refund({ at: 7 * DAY, terminal: 'T2', card: 'tok_a', amount: 4000, of: s1.txn_id }); // exactly the deadline: on time
      const just = s.refund({ at: 1 * MIN + 7 * DAY + 1, terminal: 'T2', card: 'tok_b', amount: 3000, of: s2.txn_id });
      const half = s.refund({ at: 7 * DAY + 12 * HOUR, terminal: 'T1', card: 'tok_c', amount: 500, of: s3.txn_id });
      const gone = s.refund({ at: 8 * DAY + 4 * MIN, terminal: 'T1', card: 'tok_d', amount: 1000, of: s4.txn_id });
      return [
        { rule: 'refund_after_deadline', evidence: [m2, m2late], terminal: 'T5', details: { refund_amount_minor: 999, sale_amount_minor: 999, after_ms: 2 * DAY - 4 * MIN, deadline_ms: DAY } },
        { rule: 'refund_after_deadline', evidence: [s2, just], terminal: 'T2', details: { refund_amount_minor: 3000, sale_amount_minor: 3000, after_ms: 7 * DAY + 1, deadline_ms: 7 * DAY } },
        { rule: 'refund_after_deadline', evidence: [s3, half], details: { refund_amount_minor: 500, sale_amount_minor: 2000, after_ms: 7 * DAY + 12 * HOUR - 2 * MIN, deadline_ms: 7 * DAY } },
        { rule: 'refund_without_sale', evidence: [gone], details: { amount_minor: 1000, lookback_ms: 8 * DAY, sale_not_found: 1 } },
      ];
    },
  },
  {
    name: 'refund_velocity',
    about: '4 refunds in an hour at one terminal are normal; the 5th within 60 min fires with all five as evidence, then the terminal is silent for 60 min of event time and fires again after; 5 refunds exactly 60 min end to end fire, 60 min + 1 ms do not; refunds at different tills do not add up.',
    build(s) {
      // Sales to refund (one per refund, same card: no other rule fires).
      let n = 0;
      const refundAt = (terminal: string, at: number): Transaction => {
        const card = `tok_v${String(++n).padStart(3, '0')}`;
        const sale = s.sale({ at: at - 30 * MIN, terminal: 'T9', card, amount: 2000 });
        return s.refund({ at, terminal, card, amount: 1000, of: sale.txn_id });
      };
      const H = 2 * HOUR;
      // T1: 4 refunds in an hour, then the 5th 61 min after the first (only 4 in its window).
      [0, 10, 20, 30, 61].forEach((m) => refundAt('T1', H + m * MIN));
      // T2: fires at the 5th; 50 and 60 are silent; 100 and 105 have only 4 in their window; 110 fires again.
      const t2 = [0, 10, 20, 30, 40, 50, 60, 100, 105, 110].map((m) => refundAt('T2', 10 * H + m * MIN));
      // T3: first and fifth exactly 60 min apart (edges included); T4: 60 min + 1 ms apart.
      const t3 = [0, 15, 30, 45, 60].map((m) => refundAt('T3', 20 * H + m * MIN));
      [0, 15, 30, 45].forEach((m) => refundAt('T4', 30 * H + m * MIN));
      refundAt('T4', 30 * H + 60 * MIN + 1);
      return [
        { rule: 'refund_velocity', evidence: t2.slice(0, 5), terminal: 'T2', detectedAt: 10 * H + 40 * MIN + 1500, details: { refunds_in_window: 5, count: 5, window_ms: HOUR, refund_amount_minor: 1000 } },
        { rule: 'refund_velocity', evidence: t2.slice(5), terminal: 'T2', detectedAt: 10 * H + 110 * MIN + 1500, details: { refunds_in_window: 5, count: 5, window_ms: HOUR, refund_amount_minor: 1000 } },
        { rule: 'refund_velocity', evidence: t3, terminal: 'T3', details: { refunds_in_window: 5, count: 5, window_ms: HOUR, refund_amount_minor: 1000 } },
      ];
    },
  },
  // ------------------------------------------------------------------ refund reasons
  {
    name: 'refund_reasons',
    about:
      'Every approved refund, reversal and void gets one reason, first match wins: no_sale (refund_without_sale fired, also for a voided leg of a duplicate), duplicate_charge (a leg of a raised duplicate, even to another card), sync_failure (its sale synced late, or on time during its terminal\'s late-sync episode; even to another card), policy (card mismatch or past the deadline), ordinary (also a void); declined ones get none, a redelivered refund keeps its one reason.',
    build(s): { alerts: Expectation[]; reasons: [Transaction, RefundReasonCode][] } {
      // no_sale: an unknown sale.
      const unknown = s.refund({ at: 0, terminal: 'T1', card: 'tok_u', amount: 500, of: 'tx-unknown' });
      // duplicate_charge: a reversal of the retry and a refund (to another card) of the first leg of another duplicate.
      const a1 = s.sale({ at: 1 * MIN, terminal: 'T1', card: 'tok_a', amount: 2500, txn: 'tx-a1' });
      const a2 = s.sale({ at: 2 * MIN, terminal: 'T1', card: 'tok_a', amount: 2500, txn: 'tx-a2' });
      const aRev = s.void({ at: 3 * MIN, kind: 'REVERSAL', terminal: 'T1', card: 'tok_a', amount: 2500, of: 'tx-a2' });
      const b1 = s.sale({ at: 4 * MIN, terminal: 'T1', card: 'tok_b', amount: 700, txn: 'tx-b1' });
      const b2 = s.sale({ at: 5 * MIN, terminal: 'T2', card: 'tok_b', amount: 700, txn: 'tx-b2' });
      const bRef = s.refund({ at: 6 * MIN, terminal: 'T2', card: 'tok_other', amount: 700, of: 'tx-b1' });
      // no_sale beats duplicate_charge: the reversed leg refunded again.
      const aRef = s.refund({ at: 7 * MIN, terminal: 'T1', card: 'tok_a', amount: 2500, of: 'tx-a2' });
      // sync_failure: T3 was offline for 40 min; its late sale refunded (to another card: sync_failure first);
      // an on-time sale T3 made during its episode, refunded.
      const late = s.sale({ at: 10 * MIN, recvAt: 50 * MIN, terminal: 'T3', card: 'tok_l', amount: 1800, txn: 'tx-late' });
      s.sale({ at: 51 * MIN, terminal: 'T3', card: 'tok_m', amount: 900, txn: 'tx-during' });
      const lateRef = s.refund({ at: 60 * MIN, terminal: 'T3', card: 'tok_x', amount: 1800, of: 'tx-late' });
      const duringRef = s.refund({ at: 61 * MIN, terminal: 'T1', card: 'tok_m', amount: 900, of: 'tx-during' });
      // policy: an on-time sale refunded to another card.
      s.sale({ at: 2 * HOUR, terminal: 'T4', card: 'tok_p', amount: 4200, txn: 'tx-p' });
      const policy = s.refund({ at: 2 * HOUR + 5 * MIN, terminal: 'T4', card: 'tok_q', amount: 4200, of: 'tx-p' });
      // ordinary: a refund to the paying card (delivered twice), a void, a declined refund (no reason).
      s.sale({ at: 3 * HOUR, terminal: 'T4', card: 'tok_o', amount: 1000, txn: 'tx-o' });
      const ordinary = s.refund({ at: 3 * HOUR + 10 * MIN, terminal: 'T4', card: 'tok_o', amount: 400, of: 'tx-o' });
      s.again(ordinary);
      s.sale({ at: 3 * HOUR + 20 * MIN, terminal: 'T4', card: 'tok_v', amount: 300, txn: 'tx-v' });
      const voided = s.void({ at: 3 * HOUR + 21 * MIN, terminal: 'T4', card: 'tok_v', amount: 300, of: 'tx-v' });
      s.refund({ at: 3 * HOUR + 30 * MIN, terminal: 'T4', card: 'tok_o', amount: 100, of: 'tx-o', status: 'DECLINED' });
      return {
        alerts: [
          { rule: 'refund_without_sale', evidence: [unknown] },
          { rule: 'duplicate_charge', evidence: [a1, a2], closed: { at: aRev.received_time - T0, resolution: 'reversed', details: { amount_minor: 2500 } } },
          // A refund to another card pays nothing back to the double-charged card: the duplicate stays open.
          { rule: 'duplicate_charge', evidence: [b1, b2], closed: null },
          { rule: 'refund_card_mismatch', evidence: [b1, bRef] },
          { rule: 'refund_without_sale', evidence: [aRef] },
          { rule: 'sync_lag', evidence: [late] },
          { rule: 'refund_card_mismatch', evidence: [late, lateRef] },
          { rule: 'refund_card_mismatch', evidence: [s.events.find((t) => 'txn_id' in t && t.txn_id === 'tx-p')!, policy] },
        ],
        reasons: [
          [unknown, 'no_sale'],
          [aRev, 'duplicate_charge'],
          [bRef, 'duplicate_charge'],
          [aRef, 'no_sale'],
          [lateRef, 'sync_failure'],
          [duringRef, 'sync_failure'],
          [policy, 'policy'],
          [ordinary, 'ordinary'],
          [voided, 'ordinary'],
        ],
      };
    },
  },
  // ------------------------------------------------------------------ configuration
  {
    name: 'config_overrides',
    about: 'Per-merchant and per-terminal overrides: M2 tolerates 20x, terminal T9 has sequence_gap disabled, sync_lag is off for M3, and a rule can be disabled globally.',
    config: {
      rules: { refund_without_sale: { enabled: false } },
      overrides: {
        merchants: { M2: { abnormal_amount: { ratio: 20, min_sales: 5 } }, M3: { sync_lag: { enabled: false } } },
        terminals: { T9: { sequence_gap: { enabled: false }, abnormal_amount: { min_sales: 5, severity: 'high' } } },
      },
    },
    build(s) {
      cards('m2', 5).forEach((card, i) => s.sale({ at: i * MIN, merchant: 'M2', terminal: 'T5', card, amount: 1000 }));
      s.sale({ at: 6 * MIN, merchant: 'M2', terminal: 'T5', card: 'tok_m2_15x', amount: 15_000 });
      const m2big = s.sale({ at: 7 * MIN, merchant: 'M2', terminal: 'T5', card: 'tok_m2_25x', amount: 25_000 });
      cards('t9', 5).forEach((card, i) => s.sale({ at: i * MIN, merchant: 'M1', terminal: 'T9', card, amount: 1000, seq: i * 2 + 1 }));
      const t9big = s.sale({ at: 6 * MIN, merchant: 'M1', terminal: 'T9', card: 'tok_t9_15x', amount: 15_000, seq: 20 });
      s.sale({ at: 8 * MIN, lag: 2 * HOUR, merchant: 'M3', terminal: 'T7', card: 'tok_m3', amount: 1000 });
      s.refund({ at: 2 * HOUR + 9 * MIN, merchant: 'M1', terminal: 'T9', card: 'tok_x', amount: 1000, of: null, seq: 21 });
      s.sale({ at: 3 * HOUR, merchant: 'M1', terminal: 'T9', card: 'tok_late', amount: 1000, seq: 22 });
      return [
        { rule: 'abnormal_amount', evidence: [m2big], details: { amount_minor: 25_000, median_minor: 1000, ratio: 25, threshold_ratio: 20, sample_size: 6, sales_seen: 6 } },
        { rule: 'abnormal_amount', evidence: [t9big], terminal: 'T9' },
      ];
    },
  },
  // ------------------------------------------------------------------ heartbeats: terminal_offline, upload_backlog
  {
    name: 'sequence_gap_pending_upload',
    about:
      'Two terminals reconnect with seq 20 on time while 4-19 are still in their queues and upload one every 3 min (48 min, past the 30 min timeout); heartbeats every 60 s report the queue, so the gap is pending upload, not lost: T1 uploads everything (no alert); T2 never uploads seq 9, which fires when its queue is empty, saying it was held by the terminal, is not pending and is proven lost by the heartbeat (lost_by_heartbeat). (Each upload is one sync_lag episode.)',
    build(s) {
      type Ev = { recv: number; add: () => { event_id: string } };
      const evs: Ev[] = [];
      const lows = new Map<string, { event_id: string }>();
      for (const [terminal, lost, off] of [['T1', 0, 0], ['T2', 9, 20 * SEC]] as const) {
        for (let seq = 1; seq <= 3; seq++) evs.push({ recv: off + seq * SEC + 1500, add: () => { const t = s.sale({ at: off + seq * SEC, terminal, seq, card: `${terminal}c${seq}` }); if (seq === 3) lows.set(terminal, t); return t; } });
        evs.push({ recv: off + 4 * MIN + 1500, add: () => { const t = s.sale({ at: off + 4 * MIN, terminal, seq: 20, card: `${terminal}c20` }); lows.set(`${terminal}h`, t); return t; } });
        const uploads: number[] = [];
        for (let seq = 4; seq <= 19; seq++) {
          const at = off + 5 * MIN + (seq - 4) * 3 * MIN;
          if (seq === lost) continue;
          uploads.push(at);
          evs.push({ recv: at, add: () => { const t = s.sale({ at: off + seq * 10 * SEC, recvAt: at, terminal, seq, card: `${terminal}c${seq}` }); lows.set(`${terminal}s${seq}`, t); return t; } });
        }
        for (let at = off + 30 * SEC; at < 70 * MIN; at += MIN) {
          const queue = uploads.filter((u) => u > at + 500).length;
          evs.push({ recv: at + 500, add: () => s.heartbeat({ at, terminal, lastSeq: 20, queue }) });
        }
      }
      evs.sort((a, b) => a.recv - b.recv).forEach((e) => e.add());
      return [
        {
          rule: 'sequence_gap',
          evidence: [lows.get('T2')!, lows.get('T2h')!],
          terminal: 'T2',
          // T2's last upload (seq 19) at 20 s + 50 min; its first heartbeat with an empty queue 30.5 s later.
          detectedAt: 20 * SEC + 50 * MIN + 30 * SEC + 500,
          details: { missing_from: 9, missing_to: 9, missing_count: 1, low_seq: 3, high_seq: 20, timeout_ms: 30 * MIN, pending_upload: 0, held_by_terminal: 1, lost_by_heartbeat: 1 },
        },
        // The slow upload is late too: seq 8 (made 80 s in, uploaded at 17 min) is the first more than 15 min late.
        { rule: 'sync_lag', evidence: [lows.get('T1s8')!], terminal: 'T1' },
        { rule: 'sync_lag', evidence: [lows.get('T2s8')!], terminal: 'T2' },
      ];
    },
  },
  {
    name: 'sequence_gap_pending_through_silence',
    about:
      'Issue 10: a gap a heartbeat proves pending does not fire until the queue is empty, even when the heartbeats stop. T1 and T2 reconnect with seq 20 on time while 4-19 sit in their queues (heartbeats every 60 s report 16), then lose the network at 10 min for 2 h (no heartbeat, no upload: terminal_offline, each closed by its first heartbeat back). Back at 130 min: T1 uploads 4-19 (no sequence_gap; one sync_lag); T2 reports an empty queue and never uploads them: lost, it fires at that heartbeat (not 30 min after its last heartbeat, at 39 min, as before the fix), details lost_by_heartbeat 1.',
    build(s) {
      type Ev = { recv: number; add: () => { event_id: string } };
      const evs: Ev[] = [];
      const keep = new Map<string, { event_id: string }>();
      for (const [terminal, off] of [['T1', 0], ['T2', 20 * SEC]] as const) {
        for (let seq = 1; seq <= 3; seq++) evs.push({ recv: off + seq * SEC + 1500, add: () => { const t = s.sale({ at: off + seq * SEC, terminal, seq, card: `${terminal}c${seq}` }); keep.set(`${terminal}s${seq}`, t); return t; } });
        evs.push({ recv: off + 4 * MIN + 1500, add: () => { const t = s.sale({ at: off + 4 * MIN, terminal, seq: 20, card: `${terminal}c20` }); keep.set(`${terminal}s20`, t); return t; } });
        const back = 130 * MIN;
        const uploads = terminal === 'T1' ? Array.from({ length: 16 }, (_, i) => ({ seq: 4 + i, at: back + off + 10 * SEC + i * 2 * SEC })) : [];
        for (const u of uploads) evs.push({ recv: u.at, add: () => { const t = s.sale({ at: off + u.seq * 10 * SEC, recvAt: u.at, terminal, seq: u.seq, card: `${terminal}c${u.seq}` }); keep.set(`${terminal}s${u.seq}`, t); return t; } });
        for (let at = off + 30 * SEC; at < 160 * MIN; at += MIN) {
          if (at >= 10 * MIN && at < back) continue; // no network
          const queue = at < back ? 16 : uploads.filter((u) => u.at > at + 500).length;
          evs.push({ recv: at + 500, add: () => { const h = s.heartbeat({ at, terminal, lastSeq: 20, queue }); keep.set(`${terminal}h${at}`, h); return h; } });
        }
      }
      evs.sort((a, b) => a.recv - b.recv).forEach((e) => e.add());
      const hb = (terminal: string, at: number) => keep.get(`${terminal}h${at}`)!;
      return [
        {
          rule: 'sequence_gap',
          evidence: [keep.get('T2s3')!, keep.get('T2s20')!],
          terminal: 'T2',
          // T2's first heartbeat back (130 min + 20 s + 30 s) reports an empty queue.
          detectedAt: 130 * MIN + 50 * SEC + 500,
          details: { missing_from: 4, missing_to: 19, missing_count: 16, low_seq: 3, high_seq: 20, timeout_ms: 30 * MIN, pending_upload: 0, held_by_terminal: 1, lost_by_heartbeat: 1 },
        },
        { rule: 'terminal_offline', evidence: [hb('T1', 9 * MIN + 30 * SEC)], terminal: 'T1', detectedAt: 19 * MIN + 30 * SEC + 500 },
        { rule: 'terminal_offline', evidence: [hb('T2', 9 * MIN + 50 * SEC)], terminal: 'T2', detectedAt: 19 * MIN + 50 * SEC + 500 },
        { rule: 'sync_lag', evidence: [keep.get('T1s4')!], terminal: 'T1' },
      ];
    },
  },
  {
    name: 'upload_backlog_seqs_before_first_heartbeat',
    about:
      'Issue 10: "the highest synced terminal_seq" counts seqs received before the first heartbeat. T1 makes seqs 1-25 in its first 4 min; 1-5 arrive on time, before its first heartbeat; its heartbeats (every 60 s from 5 min, queue 0: it believes them sent) report last_seq 25, 20 ahead, for 30 min: upload_backlog fires 10 min after the first (before the fix: never). 6-25 arrive at 40 min; the next heartbeat (gap 0, below min_queue) closes it. The late upload is one sync_lag.',
    build(s) {
      type Ev = { recv: number; add: () => { event_id: string } };
      const evs: Ev[] = [];
      const keep = new Map<string, { event_id: string }>();
      for (let seq = 1; seq <= 25; seq++) {
        const at = (seq - 1) * 10 * SEC;
        const recv = seq <= 5 ? at + 1500 : 40 * MIN + (seq - 6) * SEC;
        evs.push({ recv, add: () => { const t = s.sale({ at, recvAt: recv, seq, card: `tok_b${seq}`, amount: 1000 + seq }); keep.set(`s${seq}`, t); return t; } });
      }
      for (let at = 5 * MIN; at < 45 * MIN; at += MIN) evs.push({ recv: at + 500, add: () => { const h = s.heartbeat({ at, lastSeq: 25, queue: 0 }); keep.set(`h${at}`, h); return h; } });
      evs.sort((a, b) => a.recv - b.recv).forEach((e) => e.add());
      return [
        {
          rule: 'upload_backlog',
          evidence: [keep.get(`h${5 * MIN}`)!, keep.get(`h${15 * MIN}`)!],
          terminal: 'T1',
          detectedAt: 15 * MIN + 500,
          details: { queue_depth: 0, last_seq: 25, seq_ahead: 20, backlog: 20, min_queue: 5, stuck_ms: 10 * MIN, stuck_for_ms: 10 * MIN, synced_seq: 5 },
          closed: { at: 41 * MIN + 500, resolution: 'episode_ended', details: { duration_ms: 36 * MIN, max_backlog: 20, backlog: 0, queue_depth: 0 } },
        },
        { rule: 'sync_lag', evidence: [keep.get('s6')!], terminal: 'T1', detectedAt: 40 * MIN },
      ];
    },
  },
  {
    name: 'terminal_offline_silence_then_upload',
    about:
      'T1 heartbeats every 60 s and sells every 5 min; from 30 min it loses its network (no heartbeat, no upload) until 75 min: terminal_offline fires 10 min after its last heartbeat and is closed by the first heartbeat back (queue 9); the upload raises one sync_lag. T2 heartbeats every 4 min and never fires; T3 never heartbeats and is not watched however quiet.',
    build(s) {
      type Ev = { recv: number; add: () => { event_id: string } };
      const evs: Ev[] = [];
      for (let n = 1; n <= 22; n++) {
        const at = (n - 1) * 5 * MIN;
        const held = at >= 30 * MIN && at < 74 * MIN;
        const recv = held ? 75 * MIN + 20 * SEC + (n - 7) * 2 * SEC : at + 1500;
        evs.push({ recv, add: () => s.sale({ at, recvAt: recv, card: `tok_s${n}`, amount: 1000 + n * 10, seq: n }) });
      }
      for (let at = 10 * SEC; at < 110 * MIN; at += MIN) {
        if (at >= 30 * MIN && at < 74 * MIN) continue; // no network
        const queue = at >= 74 * MIN && at < 76 * MIN ? 9 : 0;
        evs.push({ recv: at + 500, add: () => s.heartbeat({ at, lastSeq: Math.floor(at / (5 * MIN)) + 1, queue }) });
      }
      for (let at = 2 * MIN; at < 110 * MIN; at += 4 * MIN) evs.push({ recv: at + 500, add: () => s.heartbeat({ at, terminal: 'T2', lastSeq: 0 }) });
      evs.push({ recv: 1 * MIN + 1500, add: () => s.sale({ at: 1 * MIN, terminal: 'T3', card: 'tok_t3a', amount: 700 }) });
      evs.push({ recv: 50 * MIN + 1500, add: () => s.sale({ at: 50 * MIN, terminal: 'T3', card: 'tok_t3b', amount: 700 }) });
      evs.sort((a, b) => a.recv - b.recv);
      const made = evs.map((e) => ({ recv: e.recv, ev: e.add() }));
      const at = (recv: number) => made.filter((m) => m.recv === recv)[0]!.ev;
      return [
        {
          rule: 'terminal_offline',
          evidence: [at(29 * MIN + 10 * SEC + 500)],
          terminal: 'T1',
          detectedAt: 39 * MIN + 10 * SEC + 500,
          details: { silence_ms: 10 * MIN, last_seen_at: T0 + 29 * MIN + 10 * SEC + 500, last_seq: 6, queue_depth: 0, last_was_heartbeat: 1 },
          closed: { at: 74 * MIN + 10 * SEC + 500, resolution: 'episode_ended', details: { duration_ms: 45 * MIN, silence_ms: 10 * MIN, by_heartbeat: 1, queue_depth: 9 } },
        },
        { rule: 'sync_lag', evidence: [at(75 * MIN + 20 * SEC)], terminal: 'T1', detectedAt: 75 * MIN + 20 * SEC },
      ];
    },
  },
  {
    name: 'upload_backlog_heartbeat_only_outage',
    about:
      'T1 sells every 2 min; from 60 to 120 min its uploads fail while its heartbeats (every 60 s) go on, reporting the queue: upload_backlog fires 10 min after the queue reached 5 (before any late transaction arrives), no terminal_offline. At 120 min the full backlog of 30 is uploaded in order: one sync_lag, no sequence_gap, and the backlog alert is closed by the first heartbeat with a queue below 5.',
    build(s) {
      type Ev = { recv: number; add: () => { event_id: string } };
      const evs: Ev[] = [];
      for (let n = 1; n <= 80; n++) {
        const at = (n - 1) * 2 * MIN;
        if (at >= 120 * MIN && at < 124 * MIN) continue; // the till is busy uploading
        const held = at >= 60 * MIN && at < 120 * MIN;
        const k = (at - 60 * MIN) / (2 * MIN);
        const seq = at >= 124 * MIN ? n - 2 : n;
        const recv = held ? 120 * MIN + k * 4 * SEC : at + 1500;
        evs.push({ recv, add: () => s.sale({ at, recvAt: recv, card: `tok_u${n}`, amount: 1500 + ((n * 37) % 400), seq }) });
      }
      const heldBy = (t: number): number => (t < 60 * MIN ? 0 : Math.min(30, Math.floor((t - 60 * MIN) / (2 * MIN)) + 1));
      const uploadedBy = (t: number): number => (t < 120 * MIN ? 0 : Math.min(30, Math.floor((t - 120 * MIN) / (4 * SEC)) + 1));
      for (let at = 30 * SEC; at < 160 * MIN; at += MIN) {
        // The highest seq made by then (the till makes none while it uploads, 120-124 min).
        const lastSeq = at < 120 * MIN ? Math.floor(at / (2 * MIN)) + 1 : at < 124 * MIN ? 60 : Math.floor(at / (2 * MIN)) - 1;
        const queue = at < 120 * MIN ? heldBy(at) : 30 - uploadedBy(at);
        evs.push({ recv: at + 500, add: () => s.heartbeat({ at, lastSeq, queue }) });
      }
      evs.sort((a, b) => a.recv - b.recv);
      const made = evs.map((e) => ({ recv: e.recv, ev: e.add() }));
      const at = (recv: number) => made.filter((m) => m.recv === recv)[0]!.ev;
      return [
        {
          rule: 'upload_backlog',
          evidence: [at(68 * MIN + 30 * SEC + 500), at(78 * MIN + 30 * SEC + 500)],
          terminal: 'T1',
          detectedAt: 78 * MIN + 30 * SEC + 500,
          details: { queue_depth: 10, last_seq: 40, seq_ahead: 10, backlog: 10, min_queue: 5, stuck_ms: 10 * MIN, stuck_for_ms: 10 * MIN, synced_seq: 30 },
          closed: { at: 122 * MIN + 30 * SEC + 500, resolution: 'episode_ended', details: { duration_ms: 54 * MIN, max_backlog: 30, backlog: 0, queue_depth: 0 } },
        },
        {
          rule: 'sync_lag',
          evidence: [at(120 * MIN)],
          terminal: 'T1',
          detectedAt: 120 * MIN,
          details: { lag_ms: 60 * MIN, threshold_ms: 15 * MIN, terminal_seq: 31 },
          closed: { at: 151 * MIN + 32 * SEC, resolution: 'episode_ended', details: { duration_ms: 61 * MIN + 32 * SEC, late_count: 24, max_lag_ms: 60 * MIN } },
        },
      ];
    },
  },
  {
    name: 'upload_backlog_draining',
    about:
      'Heartbeats every 60 s: T1 drains a queue of 40 by one a minute (an upload in progress, not stuck); T2 holds 4 for an hour (below min_queue); T3 holds 6 for 12 min, then 3: one alert 10 min after its queue reached 6, closed when it fell to 3.',
    build(s) {
      type Ev = { recv: number; add: () => { event_id: string } };
      const evs: Ev[] = [];
      for (let i = 0; i <= 60; i++) {
        const at = i * MIN;
        evs.push({ recv: at + 500, add: () => s.heartbeat({ at, lastSeq: 100, queue: Math.max(0, 40 - i) }) });
        evs.push({ recv: at + 20 * SEC + 500, add: () => s.heartbeat({ at: at + 20 * SEC, terminal: 'T2', lastSeq: 50, queue: 4 }) });
        evs.push({ recv: at + 40 * SEC + 500, add: () => s.heartbeat({ at: at + 40 * SEC, terminal: 'T3', lastSeq: 70, queue: i < 5 ? 0 : i < 17 ? 6 : 3 }) });
      }
      evs.sort((a, b) => a.recv - b.recv);
      const made = evs.map((e) => ({ recv: e.recv, ev: e.add() }));
      const at = (recv: number) => made.filter((m) => m.recv === recv)[0]!.ev;
      return [
        {
          rule: 'upload_backlog',
          evidence: [at(5 * MIN + 40 * SEC + 500), at(15 * MIN + 40 * SEC + 500)],
          terminal: 'T3',
          detectedAt: 15 * MIN + 40 * SEC + 500,
          details: { queue_depth: 6, last_seq: 70, seq_ahead: 0, backlog: 6, min_queue: 5, stuck_ms: 10 * MIN, stuck_for_ms: 10 * MIN },
          closed: { at: 17 * MIN + 40 * SEC + 500, resolution: 'episode_ended', details: { duration_ms: 12 * MIN, max_backlog: 6, backlog: 3, queue_depth: 3 } },
        },
      ];
    },
  },
];

export const at = (ms: number): number => T0 + ms;
