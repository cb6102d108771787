// What a detector partition (or the backtest's engine) tells the second stage, derived from the rule
// engine's output: episode starts and ends, proposed actions, terminal activity and the watermark.
import type { Action, Alert, AlertUpdate } from '@tillwatch/schemas';
import { ACTIVITY_BUCKET_MS, EPISODE_RULES, MEMBER_ALERT_RULES } from './core.js';
import type { StageRecord, TerminalSeen } from './types.js';

/** Episode starts (alerts of EPISODE_RULES), other member-candidate alerts (MEMBER_ALERT_RULES), episode ends and proposed actions of one engine output. */
export function stageRecordsOf(partition: number, out: { alerts: readonly Alert[]; actions: readonly Action[]; updates?: readonly AlertUpdate[] | undefined }, into: StageRecord[] = []): StageRecord[] {
  for (const a of out.alerts) {
    if (MEMBER_ALERT_RULES.has(a.rule)) {
      into.push({ type: 'alert', partition, time: a.detected_at, rule: a.rule, alert_id: a.alert_id, terminal_id: a.terminal_id, merchant_id: a.merchant_id });
      continue;
    }
    if (!EPISODE_RULES.has(a.rule)) continue;
    into.push({ type: 'start', partition, time: a.detected_at, rule: a.rule, alert_id: a.alert_id, terminal_id: a.terminal_id, merchant_id: a.merchant_id, event_id: a.event_ids[0] ?? null });
  }
  if (out.updates) {
    for (const u of out.updates) {
      if (!EPISODE_RULES.has(u.rule) || u.resolution !== 'episode_ended') continue;
      into.push({ type: 'end', partition, time: u.resolved_at, rule: u.rule, alert_id: u.alert_id, terminal_id: u.terminal_id, merchant_id: u.merchant_id });
    }
  }
  for (const a of out.actions) into.push({ type: 'action', partition, time: a.issued_at, action: a });
  return into;
}

/**
 * A detector partition's terminal activity, thinned for the stage: a terminal's first record of each
 * hour of received time (`seen`, returned at once), and the close of each hour it was active in, with
 * its last record's received time in that hour (`closes`: when it moves on to a later hour, or once
 * the partition's watermark has passed the hour's end). The stage then knows every terminal's last
 * activity exactly (its active count is exact at any time), with one or two small records per active
 * terminal per hour whatever its traffic.
 *
 * The map is an optimisation, not state the stage depends on: after a restart it starts empty and
 * repeats some first records, which the stage ignores (it keeps the latest activity per terminal); the
 * closes of the hour a restart interrupted are lost, so for a terminal silent ever since the stage
 * knows that hour's first record instead of its last (it may stop counting it up to an hour early).
 */
export interface ActivityTracker {
  seen(partition: number, terminalId: string, merchantId: string, receivedTime: number): TerminalSeen | null;
  /** Appends the closes due once the partition's watermark is `watermark`, published at time `time` (>= every earlier watermark of the partition). */
  closes(partition: number, watermark: number, time: number, into: StageRecord[]): void;
}

interface Activity {
  merchant: string;
  bucket: number;
  /** Last received time in `bucket`. */
  last: number;
  /** Its close not yet published. */
  open: boolean;
}

export function createActivityTracker(): ActivityTracker {
  const byTerminal = new Map<string, Activity>();
  // Hours entered, in the order entered (received time is nearly ordered within a partition): the
  // closes due are found from the head, not by scanning every terminal.
  let entered: Array<{ bucket: number; terminal: string }> = [];
  let head = 0;
  const moved: Array<{ terminal: string; merchant: string; bucket: number; last: number }> = [];
  return {
    seen(partition, terminalId, merchantId, receivedTime) {
      const bucket = Math.floor(receivedTime / ACTIVITY_BUCKET_MS);
      const a = byTerminal.get(terminalId);
      if (a !== undefined) {
        if (bucket < a.bucket) return null; // an earlier hour (input out of order): that hour is published already
        if (bucket === a.bucket) {
          if (receivedTime > a.last) a.last = receivedTime;
          return null;
        }
        if (a.open) moved.push({ terminal: terminalId, merchant: a.merchant, bucket: a.bucket, last: a.last });
        a.merchant = merchantId;
        a.bucket = bucket;
        a.last = receivedTime;
        a.open = true;
      } else byTerminal.set(terminalId, { merchant: merchantId, bucket, last: receivedTime, open: true });
      entered.push({ bucket, terminal: terminalId });
      return { type: 'seen', partition, time: receivedTime, terminal_id: terminalId, merchant_id: merchantId, bucket };
    },
    closes(partition, watermark, time, into) {
      for (const m of moved) into.push({ type: 'seen', partition, time, terminal_id: m.terminal, merchant_id: m.merchant, bucket: m.bucket, last: m.last });
      moved.length = 0;
      // An hour is over once the watermark reaches its end: nothing of this partition comes below it.
      const current = Math.floor(watermark / ACTIVITY_BUCKET_MS);
      while (head < entered.length && entered[head]!.bucket < current) {
        const { bucket, terminal } = entered[head++]!;
        const a = byTerminal.get(terminal)!;
        if (a.bucket !== bucket || !a.open) continue; // moved on (closed above) or closed already
        a.open = false;
        into.push({ type: 'seen', partition, time, terminal_id: terminal, merchant_id: a.merchant, bucket, last: a.last });
      }
      if (head > 4096 && head * 2 > entered.length) {
        entered = entered.slice(head);
        head = 0;
      }
    },
  };
}
