// A table the sink writes to is missing (dropped by hand), against the real broker and registry and
// the embedded ClickHouse. ClickHouse refuses the INSERT itself (UNKNOWN_TABLE, code 60): no row is
// at fault, so nothing may be dead-lettered and retrying forever would only stall the pipeline in
// silence. The sink must stop with one FatalError naming the table, commit nothing for the rows it
// could not write, and — once the table is back — a new run must write every row exactly once.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { AvroSchemas, clickhouseMigrationsDir, valueSubject, type Alert, type TopicRole } from '@tillwatch/schemas';
import { loadMigrations, migrate } from '@tillwatch/clickhouse';
import { createTestClickHouse, testDataPath, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { createAvroSerde, deleteScopedTopics, groupCaughtUp, provisionScopedTopics, randomId, type FatalError } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createRegistry, createSinkMetrics } from '@tillwatch/telemetry';
import { createSink, FatalWriteError, runSinkMain } from '@tillwatch/sink';

const { kafka, registry, logger } = testKafka('sink-fatal-it');
const created: { topics: Record<TopicRole, string>[]; dbs: TestClickHouse[] } = { topics: [], dbs: [] };
afterAll(async () => {
  for (const t of created.topics) await deleteScopedTopics(kafka, t);
  for (const d of created.dbs) await d.dispose();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const T = 1_767_000_000_000;

const alert = (i: number): Alert => ({
  alert_id: `a-${i}`, rule: 'duplicate_charge', rule_version: 1, rules_version: 0, severity: 'high', terminal_id: `T${i % 7}`, merchant_id: `M${i % 5}`, card_token: null,
  event_ids: [`e-${i}`], window_start: T + i, window_end: T + i, detected_at: T + i + 1000, summary: `alert ${i}`, details: { n: i },
});

describe('sink: a table ClickHouse does not have', () => {
  it('stops with a fatal error and commits nothing; once the table is back, a new run writes every row exactly once', async () => {
    const topics = await provisionScopedTopics(kafka, registry, 2);
    created.topics.push(topics);
    const db = await createTestClickHouse({ migrate: true });
    created.dbs.push(db);
    const ch = db.ch;
    await ch.client.command({ query: `DROP TABLE ${ch.table('alerts')} SYNC` });

    const serde = createAvroSerde<Alert>(registry, valueSubject(topics.alerts), AvroSchemas.alert);
    await serde.init();
    const producer = kafka.producer();
    await producer.connect();
    const N = 500;
    await producer.send({ topic: topics.alerts, messages: Array.from({ length: N }, (_, i) => ({ key: `M${i % 5}`, value: serde.encode(alert(i)) })) });
    await producer.disconnect();

    const groupId = randomId('g-sink');
    const admin = kafka.admin();
    await admin.connect();
    try {
      // Run 1: the table is missing.
      const prom1 = createRegistry({ service: 'sink-test', defaultMetrics: false });
      let onFatal: (e: FatalError) => void = () => undefined;
      const fatal = new Promise<FatalError>((resolve) => (onFatal = resolve));
      const fatalCalls: FatalError[] = [];
      const sink1 = createSink({ kafka, registry, ch, metrics: createSinkMetrics(prom1), logger, groupId, topics, maxRows: 1000, maxDelayMs: 200, onFatal: (e) => (fatalCalls.push(e), onFatal(e)) });
      await sink1.start();
      let err: FatalError | undefined;
      try {
        err = await Promise.race([fatal, sleep(60_000).then(() => undefined)]);
        expect(err, 'the sink never reported a fatal error').toBeInstanceOf(FatalWriteError);
        expect(err).toMatchObject({ table: 'alerts', code: 60, type: 'UNKNOWN_TABLE', attempts: 5 });
        expect(err!.message).toContain(`cannot write to ClickHouse table ${ch.table('alerts')}: ClickHouse error 60 (UNKNOWN_TABLE)`);
        expect(err!.message).toMatch(/run `tillwatch provision`/);
        expect(sink1.ready()).toBe(false);
      } finally {
        // Stopping a failed sink does not flush (which would fail again): it only leaves the group.
        // A sink that never failed would flush forever here: bounded, so the test fails, not hangs.
        const stopped = await Promise.race([sink1.stop().then(() => true), sleep(15_000).then(() => false)]);
        expect(stopped, 'stop() did not return').toBe(true);
      }
      expect(fatalCalls).toHaveLength(1);
      expect(await sink1.stop()).toBeUndefined(); // idempotent

      // Nothing committed: the group has no offset on either partition, so Kafka keeps every record.
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topics.alerts] });
      expect(committed?.partitions.map((p) => p.offset)).toEqual(['-1', '-1']);
      const m1 = await prom1.metrics();
      expect(m1).toMatch(/tillwatch_clickhouse_insert_errors_total\{table="alerts",service="sink-test"\} 5\n/);
      expect(m1).not.toMatch(/tillwatch_clickhouse_rows_written_total\{table="alerts"/);
      expect(m1).not.toMatch(/tillwatch_dlq_records_total\{/); // no row is at fault: nothing dead-lettered
      const [dlqEnd] = await admin.fetchTopicOffsets(topics.dlq);
      expect(Number(dlqEnd?.high)).toBe(0);

      // The operator's fix for a table dropped by hand: forget the migrations that build it and
      // provision again (they are idempotent: IF NOT EXISTS).
      const ledger = ch.table('schema_migrations');
      const touching = (await loadMigrations(clickhouseMigrationsDir)).filter((mf) => /\{db\}\.alerts\b/.test(mf.sql)).map((mf) => mf.version);
      await ch.client.command({ query: `ALTER TABLE ${ledger} DELETE WHERE version IN (${touching.join(', ')}) SETTINGS mutations_sync = 2` });
      expect((await migrate(ch, { dir: clickhouseMigrationsDir })).applied).toContain('002_alerts');

      // Run 2, same group: re-reads from the start (nothing was committed) and writes all N.
      const prom2 = createRegistry({ service: 'sink-test', defaultMetrics: false });
      const fatal2: FatalError[] = [];
      const sink2 = createSink({ kafka, registry, ch, metrics: createSinkMetrics(prom2), logger, groupId, topics, maxRows: 1000, maxDelayMs: 200, onFatal: (e) => void fatal2.push(e) });
      const count = async (final: boolean) => {
        const rs = await ch.client.query({ query: `SELECT count() AS n FROM ${ch.table('alerts')}${final ? ' FINAL' : ''}`, format: 'JSONEachRow' });
        return Number(((await rs.json()) as { n: number }[])[0]?.n);
      };
      await sink2.start();
      try {
        for (let i = 0; i < 300 && (await count(true)) < N; i++) await sleep(200);
        for (let i = 0; i < 100 && !(await groupCaughtUp(admin, groupId, topics.alerts)); i++) await sleep(200);
      } finally {
        await sink2.stop();
      }
      expect(fatal2).toEqual([]);
      expect(await groupCaughtUp(admin, groupId, topics.alerts)).toBe(true);
      // Exactly once: N distinct alerts, and no second copy waiting for a merge either.
      expect(await count(true)).toBe(N);
      expect(await count(false)).toBe(N);
      const rs = await ch.client.query({ query: `SELECT uniqExact(alert_id) AS n FROM ${ch.table('alerts')}`, format: 'JSONEachRow' });
      expect(Number(((await rs.json()) as { n: number }[])[0]?.n)).toBe(N);
      // The materialized views re-attach to the re-created table (the API reads alerts_by_detected_v2).
      const mv = await ch.client.query({ query: `SELECT uniqExact(alert_id) AS n FROM ${ch.table('alerts_by_detected_v2')}`, format: 'JSONEachRow' });
      expect(Number(((await mv.json()) as { n: number }[])[0]?.n)).toBe(N);
    } finally {
      await admin.disconnect();
    }
  });

  it('`tillwatch sink` (runSinkMain) exits 1 with one line naming the table and the fix; a restart does not re-create a table dropped by hand', async () => {
    const prefix = randomId('it-sinkmain');
    const topics = await provisionScopedTopics(kafka, registry, 1, prefix);
    created.topics.push(topics);
    const db = await createTestClickHouse({ migrate: true });
    created.dbs.push(db);
    await db.ch.client.command({ query: `DROP TABLE ${db.ch.table('alerts')} SYNC` });
    const serde = createAvroSerde<Alert>(registry, valueSubject(topics.alerts), AvroSchemas.alert);
    await serde.init();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: topics.alerts, messages: [0, 1, 2].map((i) => ({ key: 'M', value: serde.encode(alert(i)) })) });
    await producer.disconnect();

    const groupId = randomId('g-sinkmain');
    const stderr = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const sigterm = process.listeners('SIGTERM');
    const sigint = process.listeners('SIGINT');
    try {
      const url = process.env['TEST_CLICKHOUSE_URL'];
      const code = await Promise.race([
        runSinkMain({
          ...process.env,
          TOPIC_PREFIX: prefix,
          SINK_GROUP_ID: groupId,
          CLICKHOUSE_DATABASE: db.database,
          ...(url ? { CLICKHOUSE_URL: url } : { CLICKHOUSE_PATH: testDataPath() }),
          HTTP_PORT: '0',
          LOG_LEVEL: 'silent',
        }),
        sleep(60_000).then(() => 'still running'),
      ]);
      expect(code).toBe(1);
      const lines = stderr.mock.calls.map((c) => c.join(' '));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^tillwatch sink: fatal: cannot write to ClickHouse table `[^`]+`\.`alerts`: ClickHouse error 60 \(UNKNOWN_TABLE\).*To fix: run `tillwatch provision`/s);
    } finally {
      stderr.mockRestore();
      // runSinkMain's signal handlers would outlive it in this test process.
      for (const l of process.listeners('SIGTERM')) if (!sigterm.includes(l)) process.off('SIGTERM', l);
      for (const l of process.listeners('SIGINT')) if (!sigint.includes(l)) process.off('SIGINT', l);
    }
    const admin = kafka.admin();
    await admin.connect();
    try {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topics.alerts] });
      expect(committed?.partitions.map((p) => p.offset)).toEqual(['-1']);
    } finally {
      await admin.disconnect();
    }
  });
});
