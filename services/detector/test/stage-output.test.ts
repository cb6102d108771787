// The detector's side of the second stage (src/stage-output.ts) through the detector task: with a
// stage, proposed actions go to the internal topic instead of pos.actions.*, every batch ends with a
// watermark no later record of the partition goes below, episode starts/ends and activity are there,
// and a partition with no input publishes idle marks from its tick.
import { describe, expect, it } from 'vitest';
import { createRuleEngine, defaultRulesConfig } from '@tillwatch/rules';
import type { Transaction } from '@tillwatch/schemas';
import type { StageRecord } from '@tillwatch/stage';
import type { DecodedRecord, OutputMessage } from '@tillwatch/stream';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import { createDetectorTask } from '../src/detector-task.js';
import { createStageOutput } from '../src/stage-output.js';
import { JSON_ENCODERS, TOPICS } from './task-fixtures.js';

const topics = TOPICS;
const metrics = createDetectorMetrics(createRegistry({ service: 'stage-output-test', defaultMetrics: false }));
const T = Date.UTC(2026, 0, 5, 9);
const MIN = 60_000;

const txn = (n: number, recv: number, extra: Partial<Transaction> = {}): Transaction => ({
  event_id: `ev-${n}`, txn_id: `tx-${n}`, kind: 'SALE', status: 'APPROVED', terminal_id: 'T1', merchant_id: 'M1', card_token: `tok_${n}`,
  amount_minor: 1000 + n, currency: 'EUR', terminal_seq: n, original_txn_id: null, event_time: recv - 1000, received_time: recv, ...extra,
});
const recs = (events: Transaction[]): DecodedRecord[] => events.map((value, i) => ({ topic: 'tx', partition: 2, offset: String(i), key: null, value }));
const staged = (ms: OutputMessage[]): StageRecord[] => ms.filter((m) => m.topic === 'stage-in').map((m) => JSON.parse(m.value!.toString()) as StageRecord);

function task() {
  return createDetectorTask({
    partition: 2,
    engine: createRuleEngine(defaultRulesConfig()),
    topics,
    ...JSON_ENCODERS,
    metrics,
    wallClockTimers: true,
    stage: createStageOutput({ partition: 2, topic: 'stage-in' }),
  });
}

describe('detector output to the second stage', () => {
  it('proposes actions to the stage instead of publishing them, with episode starts, activity and the watermark', () => {
    const t = task();
    // A refund of an unknown sale (FREEZE_TERMINAL + NOTIFY_ACQUIRER proposed), then a late sale (sync_lag).
    const out = t.process('tx', recs([txn(1, T), txn(2, T + 1000, { kind: 'REFUND', original_txn_id: 'nope' }), txn(3, T + 2000, { event_time: T + 2000 - 20 * MIN })]), Date.now());
    expect(out.messages.filter((m) => m.topic === 'freeze' || m.topic === 'notify')).toEqual([]);
    expect(out.messages.some((m) => m.topic === 'alerts')).toBe(true);
    const s = staged(out.messages);
    expect(s.filter((r) => r.type === 'action').map((r) => (r.type === 'action' ? r.action.kind : '')).sort()).toEqual(['FREEZE_TERMINAL', 'NOTIFY_ACQUIRER', 'NOTIFY_MERCHANT']);
    expect(s.filter((r) => r.type === 'start').map((r) => (r.type === 'start' ? r.rule : ''))).toEqual(['sync_lag']);
    expect(s.filter((r) => r.type === 'seen')).toHaveLength(1); // T1's first record of the hour
    expect(s.at(-1)).toEqual({ type: 'watermark', partition: 2, time: T + 2000 });
    expect(s.every((m) => m.partition === 2)).toBe(true);
    expect(out.messages.filter((m) => m.topic === 'stage-in').every((m) => m.partition === 0)).toBe(true);
  });

  it('a tick advances the watermark with wall time, 5 s behind the clock, never below the latest received time', () => {
    const t = task();
    const wall = 1_000_000;
    t.process('tx', recs([txn(1, T)]), wall);
    expect(staged(t.tick(wall + 2000).messages)).toEqual([]); // clock T + 2 s: max(T, T - 3 s) = T, unchanged
    expect(staged(t.tick(wall + 9000).messages)).toEqual([{ type: 'watermark', partition: 2, time: T + 4000 }]);
    expect(staged(t.tick(wall + 9400).messages)).toEqual([]); // < 500 ms of wall time after the last tick's
    expect(staged(t.tick(wall + 10_000).messages)).toEqual([{ type: 'watermark', partition: 2, time: T + 5000 }]);
  });

  it('the first tick past the grace publishes at once, however little it moved the watermark', () => {
    // A quiet partition holds the stage back until its watermark passes the last records: a tick
    // watermark skipped because it was "too close" to the batch's added up to a second to that hold.
    const t = task();
    const wall = 1_000_000;
    t.process('tx', recs([txn(1, T)]), wall);
    expect(staged(t.tick(wall + 4900).messages)).toEqual([]); // clock - 5 s is still below T
    expect(staged(t.tick(wall + 5200).messages)).toEqual([{ type: 'watermark', partition: 2, time: T + 200 }]);
    expect(staged(t.tick(wall + 6200).messages)).toEqual([{ type: 'watermark', partition: 2, time: T + 1200 }]);
  });

  it('a partition with no input yet publishes idle marks from its tick', () => {
    const t = task();
    expect(staged(t.tick(5000).messages)).toEqual([{ type: 'watermark', partition: 2, time: 0, idle: true }]);
  });

  it('without a stage, actions are published as before', () => {
    const t = createDetectorTask({ partition: 0, engine: createRuleEngine(defaultRulesConfig()), topics, ...JSON_ENCODERS, metrics, wallClockTimers: false });
    const out = t.process('tx', recs([txn(2, T, { kind: 'REFUND', original_txn_id: 'nope' })]), 0);
    expect(out.messages.filter((m) => m.topic === 'freeze')).toHaveLength(1);
    expect(out.messages.some((m) => m.topic === 'stage-in')).toBe(false);
  });

  it('a restored task (restart, rebalance, failed transaction) publishes the closes of the hour in progress as the task before it would have', () => {
    const closes = (ms: OutputMessage[]) => staged(ms).filter((r) => r.type === 'seen' && r.last !== undefined);
    const before = (t: ReturnType<typeof task>) => {
      t.process('tx', recs([1, 2, 3].map((i) => txn(10 + i, T + 10 * MIN + i, { terminal_id: `T${i}` }))), Date.now());
      t.process('tx', recs([1, 2, 3].map((i) => txn(20 + i, T + 25 * MIN + i, { terminal_id: `T${i}` }))), Date.now());
    };
    // The next hour's first record (another terminal) passes the watermark over 10:00.
    const after = [txn(99, T + 65 * MIN, { terminal_id: 'T9' })];
    const a = task();
    before(a);
    const state = new Map<string, Buffer>();
    for (const [k, v] of a.takeChanges()) if (v !== null) state.set(k, v);
    const expected = closes(a.process('tx', recs(after), Date.now()).messages);
    expect(expected.map((r) => (r.type === 'seen' ? [r.terminal_id, r.last, r.time] : []))).toEqual([1, 2, 3].map((i) => [`T${i}`, T + 25 * MIN + i, T + 60 * MIN]));
    // A new task restored from that changelog: the same closes, although its tracker never saw 09:25.
    const b = task();
    b.restore(state);
    expect(closes(b.process('tx', recs(after), Date.now()).messages)).toEqual(expected);
  });
});
