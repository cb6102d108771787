// The detector's side of the second stage (issue 10, packages/stage): each partition task tells the
// stage, on the internal topic and in the same Kafka transaction as its alerts, its episode starts and
// ends, the actions its rules propose (which it then does not publish itself: only the stage's
// governor writes pos.actions.*), terminal activity, and its watermark (the engine clock after the
// batch, which no later record of this partition goes below).
import type { Action, Alert, AlertUpdate } from '@tillwatch/schemas';
import { createActivityTracker, stageRecordsOf, type StageRecord } from '@tillwatch/stage';
import type { OutputMessage } from '@tillwatch/stream';
import { STREAM_CLOCK_TERMINAL } from './stream-clock.js';

export interface StageOutput {
  /** A transaction or heartbeat of this partition arrived (activity, counted per hour). */
  seen(terminalId: string, merchantId: string, receivedTime: number): void;
  /** After the task's state was restored: the engine's terminals active in the last hours (see ActivityTracker.seed). */
  restored(activity: Iterable<{ terminal_id: string; merchant_id: string; last_received: number }>): void;
  /**
   * The internal-topic messages for one batch or tick: episode records, proposed actions, activity
   * seen since the last call, and the watermark (always after a batch; after a tick when it moved,
   * at most every `watermarkIntervalMs` of wall time, or `idle` while the partition has had no input).
   */
  messages(alerts: readonly Alert[], actions: readonly Action[], updates: readonly AlertUpdate[], clock: number, lastReceived: number, fromTick: boolean, wallMs: number): OutputMessage[];
}

export interface StageOutputOptions {
  partition: number;
  topic: string;
  /**
   * At most one tick watermark per this much wall time (default 500 ms: with the detector's 1 s
   * tick, every tick that moves the watermark publishes it; a faster tick is thinned out). Batch
   * watermarks do not count: the first tick past the grace after a batch publishes at once.
   */
  watermarkIntervalMs?: number;
  /**
   * In live mode the clock runs ahead of the received times with wall time; a record stamped by its
   * gateway before that but read later must not fall below a published watermark. The watermark is
   * max(latest received time, clock - grace); records delayed longer reach the stage late (default 5 s).
   */
  graceMs?: number;
}

export function createStageOutput(o: StageOutputOptions): StageOutput {
  const tracker = createActivityTracker();
  const pending: StageRecord[] = [];
  let lastWm = -1;
  let lastIdle = -Infinity;
  let lastTick = -Infinity;
  const interval = o.watermarkIntervalMs ?? 500;
  const grace = o.graceMs ?? 5000;
  return {
    seen(terminalId, merchantId, receivedTime) {
      if (terminalId === STREAM_CLOCK_TERMINAL) return; // a test's clock heartbeat, not a terminal
      const s = tracker.seen(o.partition, terminalId, merchantId, receivedTime);
      if (s !== null) pending.push(s);
    },
    restored(activity) {
      const seed: Array<{ terminal_id: string; merchant_id: string; last_received: number }> = [];
      for (const x of activity) if (x.terminal_id !== STREAM_CLOCK_TERMINAL) seed.push(x);
      tracker.seed(seed);
    },
    messages(alerts, actions, updates, clock, lastReceived, fromTick, wallMs) {
      stageRecordsOf(o.partition, { alerts, actions, updates }, pending);
      if (clock <= 0) {
        // Nothing received yet on this partition: it holds the stage back in nothing.
        if (!fromTick || wallMs - lastIdle < interval) return [];
        lastIdle = wallMs;
        return [{ topic: o.topic, key: null, partition: 0, value: Buffer.from(JSON.stringify({ type: 'watermark', partition: o.partition, time: 0, idle: true })) }];
      }
      const wm = Math.max(lastWm, lastReceived, clock - grace);
      // Hours of activity that ended by this watermark, or that a terminal has left: their closes.
      tracker.closes(o.partition, wm, lastWm, pending);
      if (pending.length === 0 && (wm === lastWm || (fromTick && wallMs - lastTick < interval))) return [];
      if (fromTick) lastTick = wallMs;
      pending.push({ type: 'watermark', partition: o.partition, time: wm });
      lastWm = wm;
      const out = pending.map((r): OutputMessage => ({ topic: o.topic, key: null, partition: 0, value: Buffer.from(JSON.stringify(r)) }));
      pending.length = 0;
      return out;
    },
  };
}
