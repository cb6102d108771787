// The detector task's live rules switch is atomic per batch (issue 9: "atomically at a batch
// boundary"): a batch (one Kafka transaction) can reach the task in several process() or
// processMixed() calls (the processor's 1,000-record chunks, with the event loop running between
// them, which is when the rules follower can see a new version), and it ends when its changes are
// taken. A version that arrives between two calls of one batch applies from the next batch: every
// alert of a transaction carries one rules_version. The integration test (live-rules.int.test.ts)
// checks the same on the real broker, where the timing is not under the test's control.
import { describe, expect, it } from 'vitest';
import { createRuleEngine, loadRulesConfig, type RulesConfig } from '@tillwatch/rules';
import type { DecodedRecord } from '@tillwatch/stream';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import type { Alert, Transaction } from '@tillwatch/schemas';
import { createDetectorTask, type DetectorTask } from '../src/detector-task.js';
import { JSON_ENCODERS, TOPICS, fleetStream } from './task-fixtures.js';

const topics = TOPICS;
const metrics = createDetectorMetrics(createRegistry({ service: 'rules-switch-test', defaultMetrics: false }));

const v1 = loadRulesConfig('version: 1\n', 'yaml');
const v2 = loadRulesConfig('version: 2\n', 'yaml');

function newTask(current: () => RulesConfig, switched: number[]): DetectorTask {
  const task = createDetectorTask({
    partition: 0,
    engine: createRuleEngine(current()),
    topics,
    rules: current,
    onRulesApplied: (_p, version) => switched.push(version),
    ...JSON_ENCODERS,
    metrics,
    wallClockTimers: false,
  });
  task.restore(new Map());
  return task;
}

const records = (events: Transaction[], from: number): DecodedRecord[] => events.map((value, i) => ({ topic: topics.transactions, partition: 0, offset: String(from + i), key: null, value }));
const versions = (messages: { topic: string; value: Buffer | null }[]): number[] => messages.filter((m) => m.topic === topics.alerts).map((m) => (JSON.parse(m.value!.toString()) as Alert).rules_version);

describe('detector task: live rules switch', () => {
  const events = fleetStream(11, 3000);
  const [a, b, c] = [events.slice(0, 1000), events.slice(1000, 2000), events.slice(2000)];

  for (const mode of ['process', 'processMixed'] as const) {
    it(`${mode}: a version that arrives between two calls of one batch applies from the next batch`, () => {
      let current = v1;
      const switched: number[] = [];
      const task = newTask(() => current, switched);
      const call = (part: Transaction[], from: number) => (mode === 'process' ? task.process(topics.transactions, records(part, from), 0) : task.processMixed!(records(part, from), 0));
      // One batch in two calls, version 2 arriving between them.
      const first = versions(call(a, 0).messages);
      current = v2;
      const second = versions(call(b, 1000).messages);
      task.takeChanges();
      // The next batch.
      const third = versions(call(c, 2000).messages);
      task.takeChanges();
      // Every part raises alerts, so each assertion below has something to check.
      expect([first.length, second.length, third.length].every((n) => n > 0)).toBe(true);
      expect(new Set([...first, ...second])).toEqual(new Set([1]));
      expect(new Set(third)).toEqual(new Set([2]));
      expect(switched).toEqual([2]);
    });
  }

  it('a tick is a batch of its own: a version seen at a tick applies there', () => {
    let current = v1;
    const switched: number[] = [];
    const task = newTask(() => current, switched);
    task.process(topics.transactions, records(a, 0), 0);
    task.takeChanges();
    current = v2;
    task.tick(0);
    expect(switched).toEqual([2]);
    task.takeChanges();
    expect(new Set(versions(task.process(topics.transactions, records(b, 1000), 0).messages))).toEqual(new Set([2]));
  });

  it('rulesForBatch pins the version at the batch\'s first decoded record: the input checks and the engine of one batch see one version', () => {
    let current = v1;
    const switched: number[] = [];
    const task = newTask(() => current, switched);
    // The processor decodes (input checks) before the first process call of a batch.
    expect(task.rulesForBatch()!.version).toBe(1);
    current = v2;
    // Version 2 arrives before the batch's process call: the batch stays on version 1.
    expect(task.rulesForBatch()!.version).toBe(1);
    const first = versions(task.process(topics.transactions, records(a, 0), 0).messages);
    task.takeChanges();
    expect(first.length).toBeGreaterThan(0);
    expect(new Set(first)).toEqual(new Set([1]));
    expect(switched).toEqual([]);
    // The next batch's first decode switches, before any of its records is processed.
    expect(task.rulesForBatch()!.version).toBe(2);
    expect(switched).toEqual([2]);
    expect(new Set(versions(task.process(topics.transactions, records(b, 1000), 0).messages))).toEqual(new Set([2]));
  });
});
