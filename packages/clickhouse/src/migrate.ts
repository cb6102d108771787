// Forward-only migrator: schemas/clickhouse/NNN_name.sql, applied in order, recorded with a checksum.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClickHouse } from './factory.js';
import { MigrationChecksumError, MigrationFileError, mapErrors } from './errors.js';
import { renderMigrationSql, splitStatements } from './sql.js';
import { toDateTime64 } from './rows.js';

export interface MigrationFile {
  version: number;
  /** NNN_name, the file name without .sql */
  name: string;
  file: string;
  sql: string;
  checksum: string;
}

export interface MigrateOptions {
  /** Directory of NNN_name.sql files; `clickhouseMigrationsDir` from @tillwatch/schemas. */
  dir: string;
  /** Called before each pending migration runs (for logs). */
  onApply?: (migration: { version: number; name: string; statements: number }) => void;
}

export interface MigrateResult {
  /** Applied by this run, in order (NNN_name). */
  applied: string[];
  /** Already applied earlier (NNN_name). */
  skipped: string[];
}

const FILE_PATTERN = /^(\d{3,})_([a-z0-9][a-z0-9_]*)\.sql$/;

/** sha256 of the file with line endings normalised, so a CRLF checkout does not look like an edit. */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql.replace(/\r\n?/g, '\n')).digest('hex');
}

/** Read and validate the migration files of `dir`, sorted by version. */
export async function loadMigrations(dir: string): Promise<MigrationFile[]> {
  const entries = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const out: MigrationFile[] = [];
  const seen = new Map<number, string>();
  for (const file of entries) {
    const m = FILE_PATTERN.exec(file);
    if (!m) throw new MigrationFileError(`migration file ${file} in ${dir} does not match NNN_name.sql (lower-case name)`);
    const version = Number(m[1]);
    const name = file.slice(0, -'.sql'.length);
    const other = seen.get(version);
    if (other !== undefined) throw new MigrationFileError(`migrations ${other} and ${name} share version ${version}`);
    seen.set(version, name);
    const sql = await readFile(join(dir, file), 'utf8');
    try {
      if (splitStatements(sql).length === 0) throw new MigrationFileError(`migration ${name} has no statements`);
    } catch (e) {
      if (e instanceof MigrationFileError) throw e;
      throw new MigrationFileError(`migration ${name}: ${(e as Error).message}`, { cause: e });
    }
    out.push({ version, name, file: join(dir, file), sql, checksum: migrationChecksum(sql) });
  }
  return out.sort((a, b) => a.version - b.version);
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

/**
 * Create the database and `schema_migrations`, verify the checksums of applied migrations, then
 * apply the pending ones in version order, one statement at a time, recording each after all its
 * statements succeeded. Safe to rerun: a second run applies nothing. Statements are DDL, which
 * ClickHouse does not run in a transaction, so migrations use IF NOT EXISTS: a run that died
 * half-way through a file simply repeats that file.
 */
export async function migrate(ch: ClickHouse, options: MigrateOptions): Promise<MigrateResult> {
  const migrations = await loadMigrations(options.dir);
  await ch.ensureDatabase();
  const ledger = ch.table('schema_migrations');
  await mapErrors(() =>
    ch.client.command({
      query: `CREATE TABLE IF NOT EXISTS ${ledger}
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version`,
    }),
  );

  const applied = await mapErrors(async () => {
    const rs = await ch.client.query({ query: `SELECT version, name, checksum FROM ${ledger} FINAL ORDER BY version`, format: 'JSONEachRow' });
    return rs.json<AppliedRow>();
  });
  const appliedByVersion = new Map(applied.map((r) => [Number(r.version), r]));

  // Verify everything before changing anything.
  for (const m of migrations) {
    const done = appliedByVersion.get(m.version);
    if (done && done.checksum !== m.checksum) throw new MigrationChecksumError(m.version, m.name, done.checksum, m.checksum);
  }

  const result: MigrateResult = { applied: [], skipped: [] };
  for (const m of migrations) {
    if (appliedByVersion.has(m.version)) {
      result.skipped.push(m.name);
      continue;
    }
    const statements = splitStatements(renderMigrationSql(m.sql, ch.database));
    options.onApply?.({ version: m.version, name: m.name, statements: statements.length });
    for (const [i, statement] of statements.entries()) {
      await mapErrors(() => ch.client.command({ query: statement })).catch((e: unknown) => {
        const err = e as Error;
        err.message = `migration ${m.name}, statement ${i + 1}/${statements.length}: ${err.message}`;
        throw err;
      });
    }
    await mapErrors(() =>
      ch.client.insert({
        table: ledger,
        values: [{ version: m.version, name: m.name, checksum: m.checksum, applied_at: toDateTime64(Date.now()) }],
        format: 'JSONEachRow',
        // Recording the same migration twice (a lost ack, two migrators racing) collapses in FINAL.
        clickhouse_settings: { insert_deduplication_token: `migration:${m.version}:${m.checksum}` },
      }),
    );
    result.applied.push(m.name);
  }
  return result;
}
