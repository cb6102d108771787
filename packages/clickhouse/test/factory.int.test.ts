import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createClickHouse } from '../src/factory.js';
import { ClickHouseQueryError, EmbeddedPathConflictError } from '../src/errors.js';
import { openEmbeddedPaths } from '../src/embedded.js';
import { createTestClickHouse, testDataPath, type TestClickHouse } from '../src/testing.js';

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

describe('createClickHouse (embedded chDB)', () => {
  it('reports version, answers ping and is embedded at the test path', async () => {
    const { ch } = await testDb();
    expect(ch.kind).toBe('embedded');
    expect(ch.path).toBe(testDataPath());
    expect(await ch.version()).toMatch(/^\d+\.\d+/);
    await expect(ch.ping()).resolves.toBeUndefined();
  });

  it('ensureDatabase makes unqualified names resolve to the database, as over HTTP', async () => {
    const { ch, database } = await testDb();
    await ch.client.command({ query: 'CREATE TABLE plain (x UInt8) ENGINE = MergeTree ORDER BY x' });
    await ch.client.insert({ table: 'plain', values: [{ x: 7 }], format: 'JSONEachRow' });
    const rs = await ch.client.query({ query: `SELECT currentDatabase() AS db, (SELECT sum(x) FROM ${ch.table('plain')}) AS s`, format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ db: database, s: 7 }]);
  });

  it('supports query parameters, including Identifier and arrays', async () => {
    const { ch, database } = await testDb();
    const rs = await ch.client.query({
      query: "SELECT {s:String} AS s, {n:Int64} AS n, {a:Array(String)} AS a, fromUnixTimestamp64Milli({t:Int64}, 'UTC') AS t, (SELECT count() FROM system.tables WHERE database = {db:String}) AS c",
      query_params: { s: "it's; -- not sql", n: 9_007_199_254, a: ['x', "y'z"], t: 1_700_000_000_123, db: database },
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([{ s: "it's; -- not sql", n: 9_007_199_254, a: ['x', "y'z"], t: '2023-11-14 22:13:20.123', c: 0 }]);
  });

  it('maps engine errors to ClickHouseQueryError with the ClickHouse code', async () => {
    const { ch } = await testDb();
    const err = await ch.client.query({ query: `SELECT * FROM ${ch.table('missing')}` }).catch((e: unknown) => e);
    const { mapClickHouseError } = await import('../src/errors.js');
    const mapped = mapClickHouseError(err);
    expect(mapped).toBeInstanceOf(ClickHouseQueryError);
    expect(mapped).toMatchObject({ code: 60, type: 'UNKNOWN_TABLE' });
  });

  it('per-call settings do not stick to the embedded session', async () => {
    const { ch } = await testDb();
    const get = async (settings?: Record<string, string | number>) => {
      const rs = await ch.client.query({ query: "SELECT getSetting('max_threads') AS v, getSetting('async_insert') AS a", format: 'JSONEachRow', ...(settings ? { clickhouse_settings: settings } : {}) });
      return (await rs.json<{ v: unknown; a: unknown }>())[0];
    };
    const before = await get();
    expect((await get({ max_threads: 1 }))?.v).toBe(1);
    expect(await get()).toEqual(before);
    expect(before?.a).toBe(false); // pinned off on embedded (chDB's profile defaults to async_insert=1)
  });

  it('refuses a second embedded data directory in the same process, and shares the same one', async () => {
    const t = await testDb();
    expect(() => createClickHouse({ path: join(testDataPath(), '..', 'other'), database: 'x' })).toThrow(EmbeddedPathConflictError);
    const same = createClickHouse({ path: testDataPath(), database: t.database });
    try {
      await same.ensureDatabase();
      expect(await same.version()).toBe(await t.ch.version());
    } finally {
      await same.close();
    }
    expect(openEmbeddedPaths()).toEqual([testDataPath()]);
  });

  it('data survives closing and reopening the directory', async () => {
    const t = await createTestClickHouse();
    await t.ch.client.command({ query: `CREATE TABLE ${t.ch.table('keep')} (x UInt8) ENGINE = MergeTree ORDER BY x` });
    await t.ch.client.insert({ table: t.ch.table('keep'), values: [{ x: 1 }, { x: 2 }], format: 'JSONEachRow' });
    await t.ch.close();
    expect(openEmbeddedPaths()).toEqual([]);
    // Reopen through the test helper with the same database name; its dispose() drops it.
    const again = await createTestClickHouse({ database: t.database });
    open.push(again);
    const rs = await again.ch.client.query({ query: `SELECT count() AS n FROM ${again.ch.table('keep')}`, format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ n: 2 }]);
  });
});
