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
 * A close's time is its hour's end, or the partition's last published watermark if that is later (a
 * record is never below a watermark already published): the same in the live detector, which calls
 * `closes` once per batch, and in the backtest, which calls it per event.
 *
 * The map is not state the stage depends on, but it must not lose the hour in progress: a restored
 * detector task (restart, rebalance, failed transaction) seeds it from the engine's restored terminals
 * (`seed`: each terminal's last received time), so the closes of the hour the restore interrupted are
 * published as if nothing had happened. Repeated first records are harmless: the stage keeps the
 * latest activity per terminal.
 */
export interface ActivityTracker {
  seen(partition: number, terminalId: string, merchantId: string, receivedTime: number): TerminalSeen | null;
  /** Appends the closes due once the partition's watermark is `watermark`; `published`: the watermark it published last (-1: none). */
  closes(partition: number, watermark: number, published: number, into: StageRecord[]): void;
  /** After a restore: the terminals' last received times (from the engine), for the hours not closed yet. */
  seed(activity: Iterable<{ terminal_id: string; merchant_id: string; last_received: number }>): void;
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
    closes(partition, watermark, published, into) {
      const timeOf = (bucket: number): number => Math.max(published, (bucket + 1) * ACTIVITY_BUCKET_MS);
      for (const m of moved) into.push({ type: 'seen', partition, time: timeOf(m.bucket), terminal_id: m.terminal, merchant_id: m.merchant, bucket: m.bucket, last: m.last });
      moved.length = 0;
      // An hour is over once the watermark reaches its end: nothing of this partition comes below it.
      const current = Math.floor(watermark / ACTIVITY_BUCKET_MS);
      while (head < entered.length && entered[head]!.bucket < current) {
        const { bucket, terminal } = entered[head++]!;
        const a = byTerminal.get(terminal)!;
        if (a.bucket !== bucket || !a.open) continue; // moved on (closed above) or closed already
        a.open = false;
        into.push({ type: 'seen', partition, time: timeOf(bucket), terminal_id: terminal, merchant_id: a.merchant, bucket, last: a.last });
      }
      if (head > 4096 && head * 2 > entered.length) {
        entered = entered.slice(head);
        head = 0;
      }
    },
    seed(activity) {
      const fresh: Array<{ bucket: number; terminal: string }> = [];
      for (const x of activity) {
        if (byTerminal.has(x.terminal_id)) continue;
        const bucket = Math.floor(x.last_received / ACTIVITY_BUCKET_MS);
        byTerminal.set(x.terminal_id, { merchant: x.merchant_id, bucket, last: x.last_received, open: true });
        fresh.push({ bucket, terminal: x.terminal_id });
      }
      // In hour order, so the closes due come off the head of `entered`.
      fresh.sort((a, b) => a.bucket - b.bucket);
      entered = [...fresh, ...entered.slice(head)];
      head = 0;
    },
  };
}
