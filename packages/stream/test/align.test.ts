// alignInputs (align.ts): the bound rule, and the batch protocol of transactional-processor.ts
// simulated on random inputs — every record is processed, in time order across the two topics,
// with no deadlock, whatever the batch sizes and the order in which the two batches of a fetch run;
// and the buffered steps that replaced stopping and fetching again (aligned-step.ts).
import { describe, expect, it } from 'vitest';
import { alignBound, appendRecords, detachPending, dropBefore, freshRecords, newInputBuffer, newPositions, type InputBuffer, type TaskPositions } from '../src/processor/align.js';
import { alignedStep } from '../src/processor/aligned-step.js';
import { PoisonRecordError } from '../src/errors.js';
import type { DecodedRecord, InputTopic, Task } from '../src/processor/task.js';

describe('detachPending', () => {
  it('gives each waiting record its own bytes, once, and keeps offsets, order and content', () => {
    // Values as kafkajs hands them out: slices of one fetch response.
    const response = Buffer.alloc(1 << 20, 7);
    const rec = (o: number) => ({ offset: String(o), value: response.subarray(o * 10, o * 10 + 10) });
    const b = newInputBuffer<{ offset: string; value: Buffer }>(false);
    const batch = [0, 1, 2, 3, 4].map(rec);
    appendRecords(b, batch);
    dropBefore(b, 2); // 0 and 1 were taken
    const copy = (m: { offset: string; value: Buffer }) => ({ ...m, value: Buffer.from(m.value) });
    detachPending(b, copy);
    expect(b.records.map((m) => m.offset)).toEqual(['2', '3', '4']);
    for (const m of b.records) {
      expect(m.value.buffer).not.toBe(response.buffer);
      expect(m.value.equals(response.subarray(Number(m.offset) * 10, Number(m.offset) * 10 + 10))).toBe(true);
    }
    expect(batch[2]!.value.buffer).toBe(response.buffer); // the fetched batch's own array is not changed
    // Records appended later are copied; those copied before are kept as they are.
    const before = b.records[0];
    appendRecords(b, [5, 6].map(rec));
    detachPending(b, copy);
    expect(b.records[0]).toBe(before);
    expect(b.records.map((m) => m.value.buffer === response.buffer)).toEqual([false, false, false, false, false]);
    // Nothing pending: nothing to do.
    dropBefore(b, b.records.length);
    detachPending(b, () => {
      throw new Error('no record is pending');
    });
  });
});

describe('alignBound', () => {
  it('is +Infinity against a caught-up input, else its head, else its last time, else -Infinity', () => {
    const p: TaskPositions = newPositions(['tx', 'hb'], (t) => t === 'hb');
    expect(alignBound(p, 'tx')).toBe(Number.POSITIVE_INFINITY);
    expect(alignBound(p, 'hb')).toBe(Number.NEGATIVE_INFINITY);
    p.get('tx')!.last = 5;
    expect(alignBound(p, 'hb')).toBe(5);
    p.get('tx')!.head = 9;
    expect(alignBound(p, 'hb')).toBe(9);
    p.get('tx')!.caughtUp = true;
    expect(alignBound(p, 'hb')).toBe(Number.POSITIVE_INFINITY);
  });
});

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('the batch protocol on two inputs', () => {
  it('processes every record, in time order across topics, without deadlock (500 random cases)', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const r = rng(seed);
      const times = (n: number) => {
        const xs: number[] = [];
        let t = 0;
        for (let i = 0; i < n; i++) xs.push((t += Math.floor(r() * 4)));
        return xs;
      };
      const logs: Record<string, number[]> = { tx: times(Math.floor(r() * 60)), hb: times(Math.floor(r() * 60)) };
      const next: Record<string, number> = { tx: 0, hb: 0 };
      const positions = newPositions(['tx', 'hb'], (t) => logs[t]!.length === 0);
      const out: number[] = [];
      let rounds = 0;
      while (next.tx! < logs.tx!.length || next.hb! < logs.hb!.length) {
        expect(++rounds).toBeLessThan(1_000);
        // One fetch: a batch of random size from each input with records left, run in random order.
        const topics = (['tx', 'hb'] as const).filter((t) => next[t]! < logs[t]!.length);
        if (r() < 0.5) topics.reverse();
        const batches = topics.map((t) => ({ t, end: Math.min(logs[t]!.length, next[t]! + 1 + Math.floor(r() * 20)) }));
        for (const { t, end } of batches) {
          const bound = alignBound(positions, t);
          const p = positions.get(t)!;
          let i = next[t]!;
          for (; i < end && logs[t]![i]! <= bound; i++) {
            out.push(logs[t]![i]!);
            p.last = logs[t]![i]!;
          }
          next[t] = i;
          p.head = i < end ? logs[t]![i]! : undefined;
          p.caughtUp = i === end && end >= logs[t]!.length;
        }
      }
      expect(out.length).toBe(logs.tx!.length + logs.hb!.length);
      expect(out).toEqual([...out].sort((a, b) => a - b));
    }
  });
});

describe('buffered steps (aligned-step.ts) on two inputs', () => {
  type Msg = { offset: string; key: Buffer | null; value: Buffer | null };
  const poison = new PoisonRecordError('Test', 'not a record');
  const inputs = new Map<string, InputTopic>(
    ['tx', 'hb'].map((topic) => [
      topic,
      {
        topic,
        decode: (v: Buffer | null) => {
          if (v === null) throw poison;
          return Number(v.toString());
        },
        time: (v: unknown) => v as number,
      },
    ]),
  );

  it('commits every record once, in time order across topics, without deadlock, through failed commits and fetches again (300 random cases)', async () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const log = (n: number): Msg[] => {
        const xs: Msg[] = [];
        let t = 0;
        for (let i = 0; i < n; i++) xs.push({ offset: String(i), key: null, value: r() < 0.05 ? null : Buffer.from(String((t += Math.floor(r() * 4)))) });
        return xs;
      };
      const logs: Record<string, Msg[]> = { tx: log(Math.floor(r() * 80)), hb: log(Math.floor(r() * 80)) };
      const topics = ['tx', 'hb'];
      const committed: Record<string, number> = { tx: 0, hb: 0 };
      const fetchAt: Record<string, number> = { tx: 0, hb: 0 };
      // The task's committed output: record times in the order processed, and dead letters.
      const out: number[] = [];
      const outOf: Record<string, number[]> = { tx: [], hb: [] };
      let dead = 0;
      let tentative: Array<[string, number]> = [];
      // Every other case: a task that takes both inputs in one call (processMixed), each record naming its topic.
      const mixed = seed % 2 === 0;
      const task: Task = {
        restore: () => undefined,
        process: (topic, records) => {
          for (const x of records) {
            expect(x.topic).toBe(topic);
            tentative.push([topic, x.value as number]);
          }
          return { messages: [] };
        },
        ...(mixed
          ? {
              processMixed: (records: DecodedRecord[]) => {
                for (const x of records) tentative.push([x.topic, x.value as number]);
                return { messages: [] };
              },
            }
          : {}),
        tick: () => ({ messages: [] }),
        takeChanges: () => [],
      };
      if (mixed) task.process = () => expect.unreachable('process() with processMixed present') as never;
      // A restore: the committed state, empty buffers, kafkajs fetching from the committed offsets.
      let positions!: TaskPositions;
      let buffers!: Map<string, InputBuffer<Msg>>;
      const restore = () => {
        tentative = [];
        positions = newPositions(topics, (t) => committed[t]! >= logs[t]!.length);
        buffers = new Map(topics.map((t) => [t, newInputBuffer<Msg>(positions.get(t)!.caughtUp)]));
        for (const t of topics) fetchAt[t] = committed[t]!;
      };
      restore();
      const step = async () => {
        const s = await alignedStep({ task, partition: 0, inputs, buffers: buffers as Map<string, InputBuffer<never>>, positions, wallMs: 0, chunk: 1 + Math.floor(r() * 7), deadLetter: () => ({ topic: 'dlq', key: null, value: null }), gone: () => false });
        if (!s) return;
        if (r() < 0.1) return restore(); // the transaction failed: nothing of it counts
        for (const [t, v] of tentative) {
          out.push(v);
          outOf[t]!.push(v);
        }
        tentative = [];
        dead += s.messages.filter((m) => m.topic === 'dlq').length;
        for (const [t, at] of s.taken) dropBefore(buffers.get(t)!, at);
        for (const x of s.offsets) committed[x.topic] = Number(x.offset);
      };
      let rounds = 0;
      while (committed.tx! < logs.tx!.length || committed.hb! < logs.hb!.length) {
        expect(++rounds).toBeLessThan(2_000);
        // After a rebalance kafkajs fetches from the committed offset again: those records are buffered already.
        if (r() < 0.05) for (const t of topics) fetchAt[t] = committed[t]!;
        const order = r() < 0.5 ? [...topics].reverse() : [...topics];
        for (const t of order) {
          const b = buffers.get(t)!;
          if (fetchAt[t]! >= logs[t]!.length) {
            // A fetch at the end: a batch of control records only, which tells the input is caught up.
            if (!b.fetchedToEnd) {
              b.fetchedToEnd = true;
              await step();
            }
            continue;
          }
          const end = Math.min(logs[t]!.length, fetchAt[t]! + 1 + Math.floor(r() * 20));
          appendRecords(b, freshRecords(b, logs[t]!.slice(fetchAt[t], end)));
          // The last batch sometimes does not show the end (a transaction marker follows it).
          b.fetchedToEnd = end >= logs[t]!.length && r() < 0.5;
          fetchAt[t] = end;
          await step();
        }
      }
      const all = [...logs.tx!, ...logs.hb!];
      expect(out).toEqual([...out].sort((a, b) => a - b));
      expect([...out].sort((a, b) => a - b)).toEqual(all.filter((m) => m.value !== null).map((m) => Number(m.value!.toString())).sort((a, b) => a - b));
      expect(dead).toBe(all.filter((m) => m.value === null).length);
      // Each record given to the task under its own topic.
      for (const t of topics) expect([...outOf[t]!].sort((a, b) => a - b)).toEqual(logs[t]!.filter((m) => m.value !== null).map((m) => Number(m.value!.toString())).sort((a, b) => a - b));
    }
  });
});
