// The sink against the real broker and registry and the embedded ClickHouse: ClickHouse goes away
// for a while (a fault-injecting wrapper at the ClickHouse port); the sink backs off, keeps its
// offsets, and catches up without losing or doubling a row.
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, valueSubject, type Alert, type TopicRole } from '@tillwatch/schemas';
import { ClickHouseUnavailableError, type ClickHouse } from '@tillwatch/clickhouse';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { createAvroSerde, deleteScopedTopics, provisionScopedTopics, randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createRegistry, createSinkMetrics } from '@tillwatch/telemetry';
import { createSink } from '@tillwatch/sink';

const { kafka, registry, logger } = testKafka('sink-it');
let topics: Record<TopicRole, string> | undefined;
let topics2: Record<TopicRole, string> | undefined;
let db: TestClickHouse | undefined;
afterAll(async () => {
  if (topics) await deleteScopedTopics(kafka, topics);
  if (topics2) await deleteScopedTopics(kafka, topics2);
  await db?.dispose();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The real ClickHouse, except that inserts fail while `down` is true. */
function flaky(ch: ClickHouse, state: { down: boolean; failures: number }): ClickHouse {
  const client = new Proxy(ch.client, {
    get(target, prop, receiver) {
      if (prop === 'insert') {
        return async (...args: unknown[]) => {
          if (state.down) {
            state.failures++;
            throw new ClickHouseUnavailableError('injected: connection refused', { code: 'ECONNREFUSED' });
          }
          return (target.insert as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        };
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  return { ...ch, client, table: (n: string) => ch.table(n) };
}

const alert = (i: number): Alert => ({
  alert_id: `a-${i}`, rule: i % 2 ? 'duplicate_charge' : 'sync_lag', rule_version: 1, rules_version: 1, severity: 'high', terminal_id: `T${i % 7}`, merchant_id: `M${i % 5}`,
  card_token: null, event_ids: [`e-${i}`], window_start: 1_767_000_000_000 + i, window_end: 1_767_000_000_000 + i, detected_at: 1_767_000_001_000 + i,
  summary: `alert ${i}`, details: { n: i },
});

describe('sink', () => {
  it('backs off while ClickHouse is unavailable and catches up without loss or doubles', async () => {
    topics = await provisionScopedTopics(kafka, registry, 2);
    db = await createTestClickHouse({ migrate: true });

    const serde = createAvroSerde<Alert>(registry, valueSubject(topics.alerts), AvroSchemas.alert);
    await serde.init();
    const producer = kafka.producer();
    await producer.connect();
    const N = 3000;
    const all = Array.from({ length: N }, (_, i) => alert(i));
    // Each alert twice: a replayed stream must still give one row per alert.
    await producer.send({ topic: topics.alerts, messages: [...all, ...all.slice(0, 500)].map((a) => ({ key: a.merchant_id, value: serde.encode(a) })) });

    const state = { down: true, failures: 0 };
    const promRegistry = createRegistry({ service: 'sink-test', defaultMetrics: false });
    const groupId = randomId('g-sink');
    const sink = createSink({ kafka, registry, ch: flaky(db.ch, state), metrics: createSinkMetrics(promRegistry), logger, groupId, topics, maxRows: 1000, maxDelayMs: 200 });
    await sink.start();
    await sleep(4000);
    expect(state.failures).toBeGreaterThan(0);
    // Nothing committed while nothing could be written.
    const offsetsWhileDown = await kafka.admin().fetchOffsets({ groupId, topics: [topics.alerts] }).catch(() => []);
    for (const t of offsetsWhileDown) for (const p of t.partitions) expect(Number(p.offset)).toBeLessThanOrEqual(0);
    state.down = false;

    const count = async () => {
      const rs = await db!.ch.client.query({ query: `SELECT count() AS n FROM ${db!.ch.table('alerts')} FINAL`, format: 'JSONEachRow' });
      return Number(((await rs.json()) as { n: number }[])[0]?.n);
    };
    for (let i = 0; i < 300 && (await count()) < N; i++) await sleep(200);
    // More messages after recovery flow too.
    await producer.send({ topic: topics.alerts, messages: [alert(N)].map((a) => ({ key: a.merchant_id, value: serde.encode(a) })) });
    for (let i = 0; i < 100 && (await count()) < N + 1; i++) await sleep(200);
    await producer.disconnect();
    await sink.stop();
    expect(await count()).toBe(N + 1);
    const m = await promRegistry.metrics();
    expect(m).toMatch(/tillwatch_retriable_errors_total\{stage="sink.write"/);
    expect(m).toMatch(/tillwatch_clickhouse_rows_written_total\{table="alerts"/);
  });
  it('stop() during a ClickHouse outage gives up after stopTimeoutMs without committing; the next run writes every row once', async () => {
    topics2 = await provisionScopedTopics(kafka, registry, 2);
    db ??= await createTestClickHouse({ migrate: true });
    const ch = db.ch;
    const serde = createAvroSerde<Alert>(registry, valueSubject(topics2.alerts), AvroSchemas.alert);
    await serde.init();
    const producer = kafka.producer();
    await producer.connect();
    const batch = Array.from({ length: 400 }, (_, i) => ({ ...alert(100_000 + i), alert_id: `stop-${i}` }));
    await producer.send({ topic: topics2.alerts, messages: batch.map((a) => ({ key: a.merchant_id, value: serde.encode(a) })) });
    await producer.disconnect();
    const groupId = randomId('g-sink-stop');
    const state = { down: true, failures: 0 };
    const first = createSink({ kafka, registry, ch: flaky(ch, state), metrics: createSinkMetrics(createRegistry({ service: 'sink-stop', defaultMetrics: false })), logger, groupId, topics: topics2, maxRows: 100_000, maxDelayMs: 200, stopTimeoutMs: 3000 });
    await first.start();
    for (let i = 0; i < 100 && (first.pending() < batch.length || state.failures === 0); i++) await sleep(100);
    expect(first.pending()).toBe(batch.length);
    expect(state.failures).toBeGreaterThan(0);
    const t0 = Date.now();
    await first.stop();
    // Bounded (3 s budget, plus leaving the group), where it used to back off for as long as ClickHouse stayed down.
    expect(Date.now() - t0).toBeLessThan(15_000);
    const admin = kafka.admin();
    await admin.connect();
    const committed = await admin.fetchOffsets({ groupId, topics: [topics2.alerts] });
    await admin.disconnect();
    for (const t of committed) for (const p of t.partitions) expect(Number(p.offset)).toBeLessThanOrEqual(0);

    // ClickHouse back: a new run of the same group reads the rows again and writes each once.
    const second = createSink({ kafka, registry, ch, metrics: createSinkMetrics(createRegistry({ service: 'sink-stop2', defaultMetrics: false })), logger, groupId, topics: topics2, maxRows: 1000, maxDelayMs: 200 });
    await second.start();
    const count = async () => {
      const rs = await ch.client.query({ query: `SELECT count() AS n, uniqExact(alert_id) AS u FROM ${ch.table('alerts')} WHERE alert_id LIKE 'stop-%'`, format: 'JSONEachRow' });
      return ((await rs.json()) as { n: string | number; u: string | number }[])[0]!;
    };
    for (let i = 0; i < 150 && Number((await count()).u) < batch.length; i++) await sleep(200);
    await second.stop();
    const c = await count();
    expect(Number(c.u)).toBe(batch.length);
    expect(Number(c.n)).toBe(batch.length);
  });
});
