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
 * Publishes a terminal's activity once per activity bucket (its first record in the hour). The map is
 * an optimisation, not state the stage depends on: after a restart it starts empty and repeats some
 * buckets, which the stage ignores (it keeps the highest bucket per terminal).
 */
export interface ActivityTracker {
  seen(partition: number, terminalId: string, merchantId: string, receivedTime: number): TerminalSeen | null;
}

export function createActivityTracker(): ActivityTracker {
  const last = new Map<string, number>();
  return {
    seen(partition, terminalId, merchantId, receivedTime) {
      const bucket = Math.floor(receivedTime / ACTIVITY_BUCKET_MS);
      const prev = last.get(terminalId);
      if (prev !== undefined && prev >= bucket) return null;
      last.set(terminalId, bucket);
      return { type: 'seen', partition, time: receivedTime, terminal_id: terminalId, merchant_id: merchantId, bucket };
    },
  };
}
