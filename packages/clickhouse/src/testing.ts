// Helpers for integration tests of any package that needs ClickHouse (import '@tillwatch/clickhouse/testing').
// Embedded chDB by default; set TEST_CLICKHOUSE_URL to run the same tests against a server.
//
// Isolation: one data directory per PROCESS (chDB binds one per process, and two processes must
// never share one), one random DATABASE per test. Files named *.int.test.ts run one at a time.
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { clickhouseMigrationsDir } from '@tillwatch/schemas';
import { createClickHouse, type ClickHouse } from './factory.js';
import { migrate, type MigrateResult } from './migrate.js';
import { openEmbeddedPaths } from './embedded.js';

/** <repo>/.stack/chdb-test/p<pid>: ignored by git, private to this process. */
export function testDataPath(): string {
  return join(clickhouseMigrationsDir, '..', '..', '.stack', 'chdb-test', `p${process.pid}`);
}

export function randomDatabaseName(prefix = 'test'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '')}`;
}

export interface TestClickHouse {
  ch: ClickHouse;
  database: string;
  migrated: MigrateResult | undefined;
  /** Drop the database, close, and remove the data directory once nothing in the process uses it. */
  dispose(): Promise<void>;
}

export async function createTestClickHouse(options: { migrate?: boolean; database?: string } = {}): Promise<TestClickHouse> {
  const database = options.database ?? randomDatabaseName();
  const url = process.env['TEST_CLICKHOUSE_URL'];
  const path = testDataPath();
  const ch = url ? createClickHouse({ url, database }) : createClickHouse({ path, database });
  let migrated: MigrateResult | undefined;
  try {
    if (options.migrate) migrated = await migrate(ch, { dir: clickhouseMigrationsDir });
    else await ch.ensureDatabase();
  } catch (e) {
    await ch.close();
    throw e;
  }
  return {
    ch,
    database,
    migrated,
    async dispose() {
      try {
        await ch.client.command({ query: `DROP DATABASE IF EXISTS ${'`'}${database}${'`'} SYNC` });
      } finally {
        await ch.close();
        if (ch.kind === 'embedded' && !openEmbeddedPaths().includes(path)) await rm(path, { recursive: true, force: true });
      }
    },
  };
}
