import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clickhouseMigrationsDir } from '@tillwatch/schemas';
import { loadMigrations, migrate } from '../src/migrate.js';
import { MigrationChecksumError, MigrationFileError } from '../src/errors.js';
import { createTestClickHouse, type TestClickHouse } from '../src/testing.js';

const EXPECTED_TABLES = [
  'action_decisions',
  'actions',
  'alert_status',
  'alert_triage',
  'alert_updates',
  'alerts',
  'alerts_by_detected_v2',
  'alerts_by_detected_v2_mv',
  'alerts_per_minute',
  'alerts_per_minute_mv',
  'alerts_shadow',
  'currency_minor_units',
  'dead_letters',
  'incident_members',
  'refund_reasons',
  'schema_migrations',
  'terminal_sync_lag_minute',
  'terminal_sync_lag_minute_mv',
  'transactions',
];

let open: TestClickHouse[] = [];
afterEach(async () => {
  for (const t of open) await t.dispose();
  open = [];
});
async function testDb() {
  const t = await createTestClickHouse();
  open.push(t);
  return t;
}

async function schemaSnapshot(t: TestClickHouse) {
  const rs = await t.ch.client.query({
    query: 'SELECT name, engine, create_table_query, metadata_modification_time FROM system.tables WHERE database = {db:String} ORDER BY name',
    query_params: { db: t.database },
    format: 'JSONEachRow',
  });
  return rs.json<{ name: string; engine: string; create_table_query: string; metadata_modification_time: string }>();
}

async function ledger(t: TestClickHouse) {
  const rs = await t.ch.client.query({ query: `SELECT version, name, checksum FROM ${t.ch.table('schema_migrations')} ORDER BY version`, format: 'JSONEachRow' });
  return rs.json<{ version: number; name: string; checksum: string }>();
}

describe('migrate (embedded chDB)', () => {
  it('applies every migration once; a rerun changes nothing', async () => {
    const t = await testDb();
    const first = await migrate(t.ch, { dir: clickhouseMigrationsDir });
    expect(first.applied).toEqual(['001_transactions', '002_alerts', '003_actions', '004_dead_letters', '005_rollups', '006_alert_read_paths', '007_triage_ingested_at', '008_rules_versions_and_shadow', '009_money_trail', '010_shadow_alert_money', '012_action_decisions', '014_incident_members', '015_alert_read_paths_version_money']);
    expect(first.skipped).toEqual([]);

    const tables = await schemaSnapshot(t);
    expect(tables.map((r) => r.name)).toEqual(EXPECTED_TABLES);
    const engines = Object.fromEntries(tables.map((r) => [r.name, r.engine]));
    expect(engines).toMatchObject({
      transactions: 'ReplacingMergeTree',
      alerts: 'ReplacingMergeTree',
      alert_triage: 'MergeTree',
      actions: 'ReplacingMergeTree',
      dead_letters: 'ReplacingMergeTree',
      alerts_per_minute: 'AggregatingMergeTree',
      terminal_sync_lag_minute: 'AggregatingMergeTree',
      alerts_per_minute_mv: 'MaterializedView',
      alert_status: 'View',
    });
    const ledgerBefore = await ledger(t);
    expect(ledgerBefore.map((r) => r.name)).toEqual(first.applied);

    const second = await migrate(t.ch, { dir: clickhouseMigrationsDir });
    expect(second).toEqual({ applied: [], skipped: first.applied });
    expect(await schemaSnapshot(t)).toEqual(tables);
    expect(await ledger(t)).toEqual(ledgerBefore);
  });

  it('refuses to run when an applied migration changed, and changes nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tillwatch-migrations-'));
    try {
      await cp(clickhouseMigrationsDir, dir, { recursive: true });
      const t = await testDb();
      await migrate(t.ch, { dir });
      const before = await schemaSnapshot(t);

      const file = join(dir, '002_alerts.sql');
      await writeFile(file, (await readFile(file, 'utf8')).replace('INTERVAL 365 DAY', 'INTERVAL 30 DAY'));
      await writeFile(join(dir, '099_extra.sql'), `CREATE TABLE IF NOT EXISTS {db}.extra (x UInt8) ENGINE = MergeTree ORDER BY x;\n`);

      const run = migrate(t.ch, { dir });
      await expect(run).rejects.toBeInstanceOf(MigrationChecksumError);
      await expect(run).rejects.toMatchObject({ version: 2, migration: '002_alerts' });
      expect(await schemaSnapshot(t)).toEqual(before); // 099_extra was not applied either
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('applies a new migration after the existing ones; CRLF line endings are not an edit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tillwatch-migrations-'));
    try {
      await cp(clickhouseMigrationsDir, dir, { recursive: true });
      const t = await testDb();
      await migrate(t.ch, { dir });
      const file = join(dir, '001_transactions.sql');
      await writeFile(file, (await readFile(file, 'utf8')).replace(/\n/g, '\r\n'));
      await writeFile(join(dir, '099_extra.sql'), `-- a later migration\nCREATE TABLE IF NOT EXISTS {db}.extra (x UInt8) ENGINE = MergeTree ORDER BY x;\n`);
      const result = await migrate(t.ch, { dir });
      expect(result.applied).toEqual(['099_extra']);
      expect(result.skipped).toHaveLength((await loadMigrations(clickhouseMigrationsDir)).length);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects badly named or duplicate migration files before touching the database', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tillwatch-migrations-'));
    try {
      const t = await testDb();
      await writeFile(join(dir, '001_a.sql'), 'CREATE TABLE IF NOT EXISTS {db}.a (x UInt8) ENGINE = Memory;');
      await writeFile(join(dir, '001_b.sql'), 'CREATE TABLE IF NOT EXISTS {db}.b (x UInt8) ENGINE = Memory;');
      await expect(migrate(t.ch, { dir })).rejects.toBeInstanceOf(MigrationFileError);
      await rm(join(dir, '001_b.sql'));
      await writeFile(join(dir, 'Bad.sql'), 'SELECT 1;');
      await expect(migrate(t.ch, { dir })).rejects.toThrow(/NNN_name\.sql/);
      expect((await schemaSnapshot(t)).map((r) => r.name)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps databases of different tests apart inside one data directory', async () => {
    const a = await testDb();
    const b = await testDb();
    expect(a.ch.path).toBe(b.ch.path);
    await migrate(a.ch, { dir: clickhouseMigrationsDir });
    expect((await schemaSnapshot(b)).map((r) => r.name)).toEqual([]);
  });
});
