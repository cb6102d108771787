// Scale-out with real processes: two `tillwatch detector` processes in one group on 12 partitions, a
// third joins mid-stream and one of the first two leaves (SIGTERM). Every move is a rebalance with
// a restore from the changelog in another process; the alerts must equal the backtest, none doubled.
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, type Alert, type TopicRole } from '@tillwatch/schemas';
import { randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { alertDigest, backtest, closeStreamTime, deleteTopics, duplicates, produceEvents, readAll, scenario, setupTopics, sleep, spawnDetector, stableAssignment, waitCommitted } from './support.js';

const { kafka, registry } = testKafka('scale-out-it');
const cleanup: Record<TopicRole, string>[] = [];
const children: ReturnType<typeof spawnDetector>[] = [];
afterAll(async () => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  for (const t of cleanup) await deleteTopics(kafka, t);
});

describe('scale-out with detector processes', () => {
  it('12 partitions: two processes, a third joins, one leaves; alerts equal the backtest, none doubled', { timeout: 300_000 }, async () => {
    const prefix = randomId('scale');
    const topics = await setupTopics(kafka, registry, 12, prefix);
    cleanup.push(topics);
    const groupId = randomId('g-scale');
    const events = scenario(9000, 11);
    const expected = backtest(events);
    expect(expected.length).toBeGreaterThan(20);
    const all = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const spawnOne = (logLevel?: Parameters<typeof spawnDetector>[2]) => {
      const c = spawnDetector(prefix, groupId, logLevel);
      children.push(c);
      return c;
    };
    /** Records restored by a process so far, from its 'task restored from changelog' log lines (complete lines only). */
    const restored = (c: ReturnType<typeof spawnDetector>): number => {
      let n = 0;
      for (const line of c.output().split('\n').slice(0, -1)) {
        if (!line.includes('task restored from changelog')) continue;
        try {
          n += Number((JSON.parse(line) as { records?: number }).records ?? 0);
        } catch {
          // Not a whole JSON line (stdout and stderr share the buffer): the next poll reads it again.
        }
      }
      return n;
    };
    const output = () => children.map((c, i) => `--- detector ${i} ---\n${c.output().slice(-3000)}`).join('\n');

    const a = spawnOne();
    const b = spawnOne();
    const two = await stableAssignment(kafka, groupId, topics.transactions, 12, 2);
    expect(two.flat().sort((x, y) => x - y)).toEqual(all);
    await produceEvents(kafka, registry, topics.transactions, events.slice(0, 3000));
    // Committed first, so the tasks that move carry state in their changelog.
    await waitCommitted(kafka, groupId, topics.transactions);

    // A third process joins mid-stream: tasks move to it and restore there (its info log says how much).
    const c = spawnOne('info');
    const three = await stableAssignment(kafka, groupId, topics.transactions, 12, 3);
    expect(three.flat().sort((x, y) => x - y)).toEqual(all);
    for (const owned of three) expect(owned.length).toBeGreaterThan(0);
    for (let t = Date.now(); restored(c) === 0 && Date.now() - t < 60_000; ) await sleep(200);
    expect(restored(c), output()).toBeGreaterThan(0);
    await produceEvents(kafka, registry, topics.transactions, events.slice(3000, 6000));
    await sleep(1000);

    // One of the first two leaves (SIGTERM: finish, commit, leave the group): its tasks restore on the others.
    b.child.kill('SIGTERM');
    expect(await b.exited, output()).toBe(0);
    const after = await stableAssignment(kafka, groupId, topics.transactions, 12, 2);
    expect(after.flat().sort((x, y) => x - y)).toEqual(all);
    await produceEvents(kafka, registry, topics.transactions, events.slice(6000));

    await waitCommitted(kafka, groupId, topics.transactions, 150_000).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${output()}`);
    });
    await closeStreamTime(kafka, registry, topics.heartbeats, events.at(-1)!.received_time);
    await waitCommitted(kafka, groupId, topics.heartbeats);
    a.child.kill('SIGTERM');
    c.child.kill('SIGTERM');
    expect(await a.exited, output()).toBe(0);
    expect(await c.exited, output()).toBe(0);

    const got = await readAll<Alert>(kafka, registry, topics.alerts, AvroSchemas.alert);
    expect(duplicates(got)).toEqual([]);
    expect(got.map(alertDigest).sort()).toEqual(expected.map(alertDigest).sort());
  });
});
