// kill -9 of a detector process in mid-stream, then a restart: no alert lost or duplicated in the
// alert topic (read_committed) nor in ClickHouse. The detector runs as the real CLI process.
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, type Alert, type TopicRole } from '@tillwatch/schemas';
import { randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { createSink } from '@tillwatch/sink';
import { createRegistry, createSinkMetrics } from '@tillwatch/telemetry';
import { backtest, closeStreamTime, deleteTopics, duplicates, ids, produceEvents, readAll, scenario, setupTopics, sleep, spawnDetector, stableAssignment, waitCommitted } from './support.js';

const { kafka, registry, logger } = testKafka('crash-it');
const cleanup: Record<TopicRole, string>[] = [];
let db: TestClickHouse | undefined;
afterAll(async () => {
  for (const t of cleanup) await deleteTopics(kafka, t);
  await db?.dispose();
});

async function committedTotal(groupId: string, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [c] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return (c?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
  } finally {
    await admin.disconnect();
  }
}

describe('crash recovery (kill -9)', () => {
  it('loses and doubles no alert in Kafka or ClickHouse', { timeout: 300_000 }, async () => {
    const prefix = randomId('crash');
    const topics = await setupTopics(kafka, registry, 3, prefix);
    cleanup.push(topics);
    const groupId = randomId('g-crash');
    const events = scenario(24_000, 21, 80);
    const expected = backtest(events);

    const first = spawnDetector(prefix, groupId);
    // Feed the stream once the first detector has joined (so that it works while the stream
    // arrives, instead of finding all of it there), and kill it hard part-way through.
    await stableAssignment(kafka, groupId, topics.transactions, 3, 1);
    const feeding = (async () => {
      for (let i = 0; i < events.length; i += 2000) {
        await produceEvents(kafka, registry, topics.transactions, events.slice(i, i + 2000));
        await sleep(150);
      }
    })();
    const deadline = Date.now() + 120_000;
    while ((await committedTotal(groupId, topics.transactions)) < 4000) {
      if (Date.now() > deadline) throw new Error(`first detector made no progress:\n${first.output()}`);
      await sleep(100);
    }
    first.child.kill('SIGKILL');
    expect(await first.exited).toBeNull();
    const atKill = await committedTotal(groupId, topics.transactions);
    expect(atKill).toBeLessThan(events.length);

    await feeding;
    const second = spawnDetector(prefix, groupId);
    await waitCommitted(kafka, groupId, topics.transactions, 150_000).catch((e: unknown) => {
      throw new Error(`restarted detector did not catch up: ${(e as Error).message}\n--- detector output ---\n${second.output().slice(-6000)}`);
    });
    await closeStreamTime(kafka, registry, topics.heartbeats, events.at(-1)!.received_time);
    await waitCommitted(kafka, groupId, topics.heartbeats);
    // SIGTERM: finish the batch, commit, exit 0.
    second.child.kill('SIGTERM');
    expect(await second.exited, second.output()).toBe(0);

    const got = await readAll<Alert>(kafka, registry, topics.alerts, AvroSchemas.alert);
    expect(duplicates(got)).toEqual([]);
    expect(ids(got)).toEqual(ids(expected));

    // The same alerts through the sink into ClickHouse: each exactly once.
    db = await createTestClickHouse({ migrate: true });
    const sink = createSink({ kafka, registry, ch: db.ch, metrics: createSinkMetrics(createRegistry({ service: 'sink-test', defaultMetrics: false })), logger, groupId: randomId('g-sink'), topics, maxDelayMs: 200 });
    await sink.start();
    let rows: { n: string | number; u: string | number }[] = [];
    for (let i = 0; i < 300; i++) {
      const rs = await db.ch.client.query({ query: `SELECT count() AS n, uniqExact(alert_id) AS u FROM ${db.ch.table('alerts')} FINAL`, format: 'JSONEachRow' });
      rows = await rs.json();
      if (Number(rows[0]?.n) >= expected.length) break;
      await sleep(200);
    }
    await sink.stop();
    expect(Number(rows[0]?.n)).toBe(expected.length);
    expect(Number(rows[0]?.u)).toBe(expected.length);
  });
});
