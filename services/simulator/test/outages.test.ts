// Sync outages in the simulated fleet, on a synthetic clock: heartbeats every 60 s show the upload
// queue growing during an outage (last_seq ahead of what was synced) and draining after it; nothing
// recorded is lost or sent twice; a fully offline terminal sends no heartbeat.
import { describe, expect, it } from 'vitest';
import type { Heartbeat, Transaction } from '@tillwatch/schemas';
import { createFleet } from '@tillwatch/simulator';

const T0 = Date.UTC(2026, 0, 5, 9);
const MIN = 60_000;

function run(outages: Parameters<typeof createFleet>[0]['outages'], minutes: number) {
  const fleet = createFleet({ terminals: 20, seed: 5, anomalyRate: 0, outages });
  const events: Transaction[] = [];
  const beats: Heartbeat[][] = [];
  let now = T0;
  // 10 events/s over 20 terminals.
  for (let s = 0; s < minutes * 60; s++) {
    for (let k = 0; k < 10; k++) events.push(...fleet.next(now + k * 100));
    now += 1000;
    if (s % 60 === 59) beats.push(fleet.heartbeats(now));
  }
  return { fleet, events, beats };
}

describe('fleet outages', () => {
  it('off by default: queues stay empty, every terminal heartbeats, events arrive on time', () => {
    const { events, beats } = run(undefined, 10);
    expect(beats.every((b) => b.length === 20 && b.every((h) => h.queue_depth === 0))).toBe(true);
    expect(Math.max(...events.map((e) => e.received_time - e.event_time))).toBeLessThan(5000);
  });

  it('queue grows during an outage with last_seq ahead of the synced seq, then drains; nothing lost or doubled', () => {
    const { events, beats } = run({ rate: 0.01, minMs: 5 * MIN, maxMs: 8 * MIN, drainPerMinute: 30, maxShare: 0.2, offlineShare: 0 }, 25);
    // Per terminal: every recorded seq arrives exactly once.
    const keys = events.map((e) => `${e.terminal_id}#${e.terminal_seq}`);
    expect(new Set(keys).size).toBe(keys.length);
    // Received times never go backwards (arrival order).
    let backwards = 0;
    for (let i = 1; i < events.length; i++) if (events[i]!.received_time < events[i - 1]!.received_time) backwards++;
    expect(backwards).toBe(0);
    // Late uploads exist: the backlog, minutes old.
    expect(events.some((e) => e.received_time - e.event_time > 4 * MIN)).toBe(true);

    // Heartbeats of one terminal that had an outage: the queue grows, then shrinks to 0.
    const byTerminal = new Map<string, Heartbeat[]>();
    for (const b of beats) for (const h of b) {
      const hs = byTerminal.get(h.terminal_id) ?? [];
      hs.push(h);
      byTerminal.set(h.terminal_id, hs);
    }
    const troubled = [...byTerminal.values()].filter((hs) => hs.some((h) => h.queue_depth > 0));
    expect(troubled.length).toBeGreaterThan(0);
    for (const hs of troubled) {
      const depths = hs.map((h) => h.queue_depth);
      const peak = depths.indexOf(Math.max(...depths));
      expect(depths[peak]).toBeGreaterThan(depths[0]!);
      // Unless the run ended in the outage, the queue then drains (new transactions go out on time).
      if (peak < depths.length - 1) expect(Math.min(...depths.slice(peak + 1))).toBeLessThan(depths[peak]!);
    }
    expect(troubled.some((hs) => hs.findIndex((h) => h.queue_depth > 0) < hs.findLastIndex((h) => h.queue_depth === 0))).toBe(true);
    // last_seq ahead of the highest seq synced by the heartbeat's time, by the queue depth.
    const sample = troubled[0]!.find((h) => h.queue_depth > 3)!;
    const synced = Math.max(...events.filter((e) => e.terminal_id === sample.terminal_id && e.received_time <= sample.received_time).map((e) => e.terminal_seq));
    expect(sample.last_seq - synced).toBeGreaterThanOrEqual(sample.queue_depth);
  });

  it('a fully offline terminal sends no heartbeat until it reconnects', () => {
    const { beats } = run({ rate: 0.01, minMs: 5 * MIN, maxMs: 8 * MIN, maxShare: 0.2, offlineShare: 1 }, 20);
    expect(beats.some((b) => b.length < 20)).toBe(true);
    // When it is back, its first heartbeat shows the queue it built while offline.
    const seen = new Set(beats[0]!.map((h) => h.terminal_id));
    let reconnectedWithQueue = false;
    for (let i = 1; i < beats.length; i++) {
      const now = new Set(beats[i]!.map((h) => h.terminal_id));
      for (const h of beats[i]!) if (!seen.has(h.terminal_id) && h.queue_depth > 0) reconnectedWithQueue = true;
      for (const id of seen) if (!now.has(id)) seen.delete(id);
      for (const id of now) seen.add(id);
    }
    expect(reconnectedWithQueue).toBe(true);
  });
});
