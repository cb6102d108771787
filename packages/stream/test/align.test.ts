// alignInputs (align.ts): the bound rule, and the batch protocol of transactional-processor.ts
// simulated on random inputs — every record is processed, in time order across the two topics,
// with no deadlock, whatever the batch sizes and the order in which the two batches of a fetch run.
import { describe, expect, it } from 'vitest';
import { alignBound, newPositions, type TaskPositions } from '../src/processor/align.js';

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
