// The consumer-lag monitor's arithmetic and label bookkeeping, with the admin client at its port
// (the real broker is in consumer-lag.int.test.ts).
import { describe, expect, it } from 'vitest';
import { createLogger } from '@tillwatch/telemetry';
import { createConsumerLagMonitor, partitionLag, type LagLabels } from '@tillwatch/stream';

const logger = createLogger({ service: 'lag-test', level: 'silent' });

function fakeGauge() {
  const values = new Map<string, number>();
  return {
    values,
    set: (l: LagLabels, v: number) => void values.set(`${l.topic}/${l.partition}`, v),
    remove: (l: LagLabels) => void values.delete(`${l.topic}/${l.partition}`),
  };
}

describe('partitionLag', () => {
  it('is end minus committed, from the start of the log when nothing is committed, never negative', () => {
    expect(partitionLag(100n, 0n, 40n)).toBe(60);
    expect(partitionLag(100n, 10n, undefined)).toBe(90);
    expect(partitionLag(100n, 10n, -1n)).toBe(90);
    expect(partitionLag(100n, 0n, 100n)).toBe(0);
    expect(partitionLag(100n, 0n, 101n)).toBe(0);
  });
});

describe('createConsumerLagMonitor', () => {
  it('sets the owned partitions, and drops the labels of partitions no longer owned', async () => {
    const end = { t: [120, 50, 7] };
    const committed: Record<number, string> = { 0: '100', 1: '-1', 2: '7' };
    const admin = {
      fetchOffsets: async ({ topics }: { topics: string[] }) =>
        topics.map((topic) => ({ topic, partitions: Object.entries(committed).map(([p, offset]) => ({ partition: Number(p), offset, metadata: null })) })),
      fetchTopicOffsets: async () => end.t.map((high, partition) => ({ partition, offset: String(high), high: String(high), low: '0' })),
    };
    let owned = new Map([['t', [0, 1, 2]]]);
    const gauge = fakeGauge();
    const committedGauge = fakeGauge();
    const m = createConsumerLagMonitor({ admin: admin as never, groupId: 'g', owned: () => owned, gauge, committedGauge, logger });
    await m.poll();
    expect(Object.fromEntries(gauge.values)).toEqual({ 't/0': 20, 't/1': 50, 't/2': 0 });
    expect(Object.fromEntries(committedGauge.values)).toEqual({ 't/0': 100, 't/1': 0, 't/2': 7 });

    // More input, no commit: the lag grows without any batch.
    end.t = [170, 50, 7];
    await m.poll();
    expect(gauge.values.get('t/0')).toBe(70);

    // A rebalance takes partitions 1 and 2 away: their labels go at once.
    owned = new Map([['t', [0]]]);
    m.refresh();
    expect([...gauge.values.keys()]).toEqual(['t/0']);
    expect([...committedGauge.values.keys()]).toEqual(['t/0']);
    await m.poll();
    expect([...gauge.values.keys()]).toEqual(['t/0']);
  });

  it('keeps the last values and logs once while the broker cannot be asked', async () => {
    let fail = false;
    const admin = {
      fetchOffsets: async ({ topics }: { topics: string[] }) => {
        if (fail) throw new Error('broker down');
        return topics.map((topic) => ({ topic, partitions: [{ partition: 0, offset: '5', metadata: null }] }));
      },
      fetchTopicOffsets: async () => [{ partition: 0, offset: '9', high: '9', low: '0' }],
    };
    const gauge = fakeGauge();
    const warnings: unknown[] = [];
    const log = { ...logger, warn: (...a: unknown[]) => void warnings.push(a), info: () => undefined } as unknown as typeof logger;
    const m = createConsumerLagMonitor({ admin: admin as never, groupId: 'g', owned: () => new Map([['t', [0]]]), gauge, logger: log });
    await m.poll();
    fail = true;
    await m.poll();
    await m.poll();
    expect(gauge.values.get('t/0')).toBe(4);
    expect(warnings).toHaveLength(1);
    await m.stop();
  });
});
