// The detector task's changelog at the detector/stream boundary: state written in the binary
// changelog encoding (format byte + MessagePack) restores exactly, wherever the stream is cut, and
// a changelog written by earlier versions (JSON values, first byte '{') still restores.
// processMixed (transactions and heartbeats in one call) gives what process() gives per run of one topic.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createRuleEngine, defaultRulesConfig } from '@tillwatch/rules';
import { CHANGELOG_FORMAT, decodeChangelogValue, type DecodedRecord, type Task } from '@tillwatch/stream';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import type { Transaction } from '@tillwatch/schemas';
import { CLOCK_KEY, createDetectorTask } from '../src/detector-task.js';
import { createFleet } from '@tillwatch/simulator';
import { JSON_ENCODERS, TOPICS, fleetStream } from './task-fixtures.js';

const topics = TOPICS;
const metrics = createDetectorMetrics(createRegistry({ service: 'detector-task-test', defaultMetrics: false }));

const newTask = (): Task =>
  createDetectorTask({
    partition: 0,
    engine: createRuleEngine(defaultRulesConfig()),
    topics,
    ...JSON_ENCODERS,
    metrics,
    wallClockTimers: false,
  });

const records = (events: Transaction[], from: number): DecodedRecord[] => events.map((value, i) => ({ topic: topics.transactions, partition: 0, offset: String(from + i), key: null, value }));

/** Runs the events in batches of `every`, cutting (changelog -> fresh task) before each index in `cuts`. */
function run(events: Transaction[], every: number, cuts: Set<number>, rewrite: (v: Buffer) => Buffer = (v) => v): { out: Record<string, string[]>; changelog: Map<string, Buffer> } {
  const changelog = new Map<string, Buffer>();
  // Per output topic, in order (a batch emits its alerts, then its actions: batch bounds interleave topics differently).
  const out: Record<string, string[]> = {};
  let task = newTask();
  task.restore(new Map());
  const flush = () => {
    for (const [k, v] of task.takeChanges()) {
      if (v === null) changelog.delete(k);
      else changelog.set(k, rewrite(v));
    }
  };
  let i = 0;
  while (i < events.length) {
    if (cuts.has(i)) {
      task = newTask();
      task.restore(new Map(changelog));
    }
    let end = Math.min(events.length, i + every);
    for (const c of cuts) if (c > i && c < end) end = c;
    for (const m of task.process(topics.transactions, records(events.slice(i, end), i), 0).messages) (out[m.topic] ??= []).push(m.value!.toString());
    flush();
    i = end;
  }
  return { out, changelog };
}

describe('detector task changelog', () => {
  const events = fleetStream(7, 1500);
  const expected = run(events, 1_000_000, new Set()).out;

  it('writes entity values in the binary encoding (format byte 0x02)', () => {
    const { changelog } = run(events, 50, new Set());
    expect(expected[topics.alerts]!.length).toBeGreaterThan(50);
    expect(expected[topics.freezeActions]!.length).toBeGreaterThan(0);
    for (const [k, v] of changelog) if (k !== CLOCK_KEY) expect(v[0]).toBe(CHANGELOG_FORMAT);
  }, 60_000);

  it('split anywhere, restored from the binary changelog: exactly the same alerts and actions', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.uniqueArray(fc.integer({ min: 1, max: events.length - 1 }), { maxLength: 6 }), (every, cuts) => {
        expect(run(events, every, new Set(cuts)).out).toEqual(expected);
      }),
      { numRuns: 12 },
    );
    // Bounded work (about 3 s on a quiet core); the limit leaves room for a loaded shared machine.
  }, 60_000);

  it('restores a changelog written as JSON by earlier versions, and one that mixes both', () => {
    const toJson = (v: Buffer) => (v[0] === CHANGELOG_FORMAT ? Buffer.from(JSON.stringify(decodeChangelogValue(v))) : v);
    let n = 0;
    const mixed = (v: Buffer) => (n++ % 2 === 0 ? toJson(v) : v);
    for (const rewrite of [toJson, mixed]) {
      const { out, changelog } = run(events, 37, new Set([400, 900, 1300]), rewrite);
      expect(out).toEqual(expected);
      expect([...changelog].some(([k, v]) => k !== CLOCK_KEY && v[0] === 0x7b)).toBe(true);
    }
  }, 60_000);
});

describe('detector task: processMixed', () => {
  // Transactions and heartbeats of one fleet, merged by received time (heartbeats every 60 s per
  // terminal, some terminals going quiet so terminal_offline and upload_backlog have work).
  function mixed(seed: number, n: number): DecodedRecord[] {
    const fleet = createFleet({ terminals: 40, cards: 60, seed, anomalyRate: 0.08 });
    const out: DecodedRecord[] = [];
    let now = Date.UTC(2026, 0, 5, 9);
    let minute = Math.floor(now / 60_000);
    while (out.length < n) {
      now += 1_500;
      for (const e of fleet.next(now)) out.push({ topic: topics.transactions, partition: 0, offset: '', key: null, value: e });
      if (Math.floor(now / 60_000) !== minute) {
        minute = Math.floor(now / 60_000);
        for (const h of fleet.heartbeats(now)) out.push({ topic: topics.heartbeats, partition: 0, offset: '', key: null, value: h });
      }
    }
    return out.slice(0, n);
  }

  /**
   * Every message per output topic in order, and every changelog write, in order; `mixedCalls`:
   * processMixed per chunk, else process() per run of one topic. (Across topics the order differs:
   * a call emits its alerts, then its actions; nothing reads one transaction's topics in an order.)
   */
  function outputs(recs: DecodedRecord[], chunk: number, mixedCalls: boolean): { messages: Record<string, string[]>; changes: string[] } {
    const task = newTask();
    task.restore(new Map());
    const messages: Record<string, string[]> = {};
    const changes: string[] = [];
    const take = (ms: { topic: string; value: Buffer | null }[]) => {
      for (const m of ms) (messages[m.topic] ??= []).push(m.value?.toString() ?? '');
      for (const [k, v] of task.takeChanges()) changes.push(`${k} ${v?.toString('base64') ?? 'tombstone'}`);
    };
    for (let i = 0; i < recs.length; i += chunk) {
      const part = recs.slice(i, i + chunk);
      if (mixedCalls) take(task.processMixed!(part, 0).messages);
      else {
        const runs: DecodedRecord[][] = [];
        for (const r of part) {
          const last = runs[runs.length - 1];
          if (last !== undefined && last[0]!.topic === r.topic) last.push(r);
          else runs.push([r]);
        }
        const ms: { topic: string; value: Buffer | null }[] = [];
        for (const run of runs) for (const m of task.process(run[0]!.topic, run, 0).messages) ms.push(m);
        take(ms);
      }
    }
    return { messages, changes };
  }

  it('gives the messages and changelog writes of process() called once per run of one topic', () => {
    const recs = mixed(11, 2_500);
    expect(recs.some((r) => r.topic === topics.heartbeats)).toBe(true);
    for (const chunk of [1, 7, 100, 2_500]) {
      const viaRuns = outputs(recs, chunk, false);
      expect(viaRuns.messages[topics.alerts]!.length).toBeGreaterThan(20);
      expect(viaRuns.changes.length).toBeGreaterThan(100);
      expect(outputs(recs, chunk, true)).toEqual(viaRuns);
    }
  }, 60_000);
});
