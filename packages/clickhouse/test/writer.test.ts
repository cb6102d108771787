// Batching, retry and token behaviour of the writer against a fake client (the port). The real
// insert path is covered by writer.int.test.ts.
import { describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '@clickhouse/client';
import fc from 'fast-check';
import { createBatchWriter, contentToken, type FlushInfo, type RejectedRow } from '../src/writer.js';
import { ClickHouseDataError, ClickHouseQueryError, ClickHouseUnavailableError } from '../src/errors.js';

interface Call {
  table: string;
  rows: { n: number }[];
  token: unknown;
}

function fakeClickHouse() {
  const calls: Call[] = [];
  let failures = 0;
  const client = {
    insert: async (p: { table: string; values: { n: number }[]; clickhouse_settings?: Record<string, unknown> }) => {
      if (failures > 0) {
        failures -= 1;
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
      }
      calls.push({ table: p.table, rows: [...p.values], token: p.clickhouse_settings?.['insert_deduplication_token'] });
      return {};
    },
  };
  return {
    ch: { client: client as unknown as ClickHouseClient, table: (name: string) => `\`db\`.\`${name}\`` },
    calls,
    failNext(n: number) {
      failures = n;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('createBatchWriter', () => {
  it('flushes when maxRows rows are buffered, into the qualified table', async () => {
    const fake = fakeClickHouse();
    const w = createBatchWriter<{ n: number }>({ ch: fake.ch, table: 'alerts', maxRows: 3, maxDelayMs: 60_000 });
    await w.add({ n: 1 });
    await w.add({ n: 2 });
    expect(fake.calls).toHaveLength(0);
    expect(w.pending).toBe(2);
    await w.add({ n: 3 });
    expect(fake.calls).toEqual([{ table: '`db`.`alerts`', rows: [{ n: 1 }, { n: 2 }, { n: 3 }], token: contentToken('alerts', [{ n: 1 }, { n: 2 }, { n: 3 }]) }]);
    expect(w.pending).toBe(0);
    await w.close();
  });

  it('flushes after maxDelayMs without more rows', async () => {
    const fake = fakeClickHouse();
    const flushed: number[] = [];
    const w = createBatchWriter<{ n: number }>({ ch: fake.ch, table: 't', maxRows: 100, maxDelayMs: 20, onFlush: (i) => flushed.push(i.rows) });
    await w.add({ n: 1 });
    await sleep(80);
    expect(fake.calls).toHaveLength(1);
    expect(flushed).toEqual([1]);
    await w.close();
  });

  it('keeps rows on failure, propagates the error, and retries the same batch with the same token', async () => {
    const fake = fakeClickHouse();
    const w = createBatchWriter<{ n: number }>({ ch: fake.ch, table: 't', maxRows: 2, maxDelayMs: 60_000 });
    fake.failNext(1);
    await w.add({ n: 1 });
    await expect(w.add({ n: 2 })).rejects.toBeInstanceOf(ClickHouseUnavailableError);
    expect(w.pending).toBe(2);
    await w.add({ n: 3 }); // buffered behind the failed batch
    await w.flush();
    expect(fake.calls.map((c) => c.rows)).toEqual([[{ n: 1 }, { n: 2 }], [{ n: 3 }]]);
    expect(fake.calls[0]?.token).toBe(contentToken('t', [{ n: 1 }, { n: 2 }]));
    expect(w.pending).toBe(0);
    await w.close();
  });

  it('uses the caller batch id as the deduplication token', async () => {
    const fake = fakeClickHouse();
    const w = createBatchWriter<{ n: number }>({ ch: fake.ch, table: 't', maxRows: 100, maxDelayMs: 60_000 });
    await w.add({ n: 1 });
    await w.flush({ batchId: 'pos.alerts.v1:0:10-10' });
    expect(fake.calls[0]?.token).toBe('pos.alerts.v1:0:10-10');
    await w.close();
  });

  it('derives equal tokens for equal rows and different ones otherwise', () => {
    expect(contentToken('t', [{ a: 1 }])).toBe(contentToken('t', [{ a: 1 }]));
    expect(contentToken('t', [{ a: 1 }])).not.toBe(contentToken('t', [{ a: 2 }]));
    expect(contentToken('t', [{ a: 1 }])).not.toBe(contentToken('u', [{ a: 1 }]));
  });

  it('reports timer flush failures and retries them', async () => {
    const fake = fakeClickHouse();
    const errors: Error[] = [];
    const w = createBatchWriter<{ n: number }>({ ch: fake.ch, table: 't', maxRows: 100, maxDelayMs: 15, onError: (e) => errors.push(e) });
    fake.failNext(2);
    await w.add({ n: 1 });
    await sleep(150);
    expect(errors.length).toBe(2);
    expect(errors[0]).toBeInstanceOf(ClickHouseUnavailableError);
    expect(fake.calls.map((c) => c.rows)).toEqual([[{ n: 1 }]]);
    await w.close();
  });

  it('serialises concurrent flushes and never loses a row', async () => {
    const fake = fakeClickHouse();
    const w = createBatchWriter<{ n: number }>({ ch: fake.ch, table: 't', maxRows: 7, maxDelayMs: 5 });
    await Promise.all(Array.from({ length: 100 }, (_, n) => w.add({ n }).then(() => (n % 10 === 0 ? w.flush() : undefined))));
    await w.close();
    const written = fake.calls.flatMap((c) => c.rows.map((r) => r.n)).sort((a, b) => a - b);
    expect(written).toEqual(Array.from({ length: 100 }, (_, n) => n));
  });

  it('close flushes, and add after close is refused', async () => {
    const fake = fakeClickHouse();
    const w = createBatchWriter<{ n: number }>({ ch: fake.ch, table: 't', maxRows: 100, maxDelayMs: 60_000 });
    await w.add({ n: 1 });
    await w.close();
    expect(fake.calls).toHaveLength(1);
    await expect(w.add({ n: 2 })).rejects.toThrow(/closed/);
  });

  it('lifts the partition limit on every insert, bisection halves included; a caller setting may set another', async () => {
    const seen: Record<string, unknown>[] = [];
    const client = {
      insert: async (p: { values: { n: number }[]; clickhouse_settings?: Record<string, unknown> }) => {
        seen.push({ ...p.clickhouse_settings });
        if (p.values.some((r) => r.n === 2)) throw Object.assign(new Error("Unknown element 'X' for enum"), { code: '691', type: 'UNKNOWN_ELEMENT_OF_ENUM' });
        return {};
      },
    };
    const ch = { client: client as unknown as ClickHouseClient, table: (name: string) => `\`db\`.\`${name}\`` };
    const w = createBatchWriter<{ n: number }>({ ch, table: 'transactions', maxRows: 100, maxDelayMs: 60_000, settings: { wait_for_async_insert: 1 }, onRejected: async () => {} });
    for (let n = 0; n < 4; n++) await w.add({ n });
    await w.flush();
    expect(seen.length).toBeGreaterThan(1); // the batch and its halves
    for (const s of seen) expect(s).toMatchObject({ max_partitions_per_insert_block: '0', wait_for_async_insert: 1 });
    seen.length = 0;
    const capped = createBatchWriter<{ n: number }>({ ch, table: 'transactions', maxRows: 100, maxDelayMs: 60_000, settings: { max_partitions_per_insert_block: '500' } });
    await capped.add({ n: 0 });
    await capped.flush();
    expect(seen).toEqual([expect.objectContaining({ max_partitions_per_insert_block: '500' })]);
  });

  it('validates its options', () => {
    const fake = fakeClickHouse();
    expect(() => createBatchWriter({ ch: fake.ch, table: 't', maxRows: 0, maxDelayMs: 1 })).toThrow(RangeError);
    expect(() => createBatchWriter({ ch: fake.ch, table: 't', maxRows: 1, maxDelayMs: -1 })).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Rows ClickHouse rejects for their values: bisection, against a fake client that behaves like
// ClickHouse at the port — a block with any bad row is refused whole (UNKNOWN_ELEMENT_OF_ENUM, as
// chDB throws it), and a repeated insert_deduplication_token is accepted but dropped.

interface Row {
  n: number;
  bad?: boolean;
}

function rejectingClickHouse() {
  const written: number[] = [];
  const tokens = new Set<string>();
  const calls: { rows: number[]; token: string; outcome: 'written' | 'deduplicated' | 'rejected' | 'down' }[] = [];
  let down = 0;
  let statementError = false;
  const client = {
    insert: async (p: { values: Row[]; clickhouse_settings?: Record<string, unknown> }) => {
      const token = String(p.clickhouse_settings?.['insert_deduplication_token']);
      const rows = p.values.map((r) => r.n);
      if (down > 0) {
        down -= 1;
        calls.push({ rows, token, outcome: 'down' });
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
      }
      if (statementError) throw Object.assign(new Error("Table db.t doesn't exist"), { code: '60', type: 'UNKNOWN_TABLE' });
      const bad = p.values.find((r) => r.bad);
      if (bad) {
        calls.push({ rows, token, outcome: 'rejected' });
        throw Object.assign(new Error(`Unknown element 'X${bad.n}' for enum: (while reading the value of key kind): (at row 1)`), { code: '691', type: 'UNKNOWN_ELEMENT_OF_ENUM' });
      }
      if (tokens.has(token)) {
        calls.push({ rows, token, outcome: 'deduplicated' });
        return {};
      }
      tokens.add(token);
      written.push(...rows);
      calls.push({ rows, token, outcome: 'written' });
      return {};
    },
  };
  return {
    ch: { client: client as unknown as ClickHouseClient, table: (name: string) => `\`db\`.\`${name}\`` },
    written,
    calls,
    goDown(n: number) {
      down = n;
    },
    breakStatement() {
      statementError = true;
    },
  };
}

const rowsOf = (n: number, bad: readonly number[]): Row[] => Array.from({ length: n }, (_, i) => (bad.includes(i) ? { n: i, bad: true } : { n: i }));

describe('createBatchWriter: rows ClickHouse rejects', () => {
  it('without onRejected, a data rejection keeps the batch and surfaces as ClickHouseDataError', async () => {
    const fake = rejectingClickHouse();
    const w = createBatchWriter<Row>({ ch: fake.ch, table: 't', maxRows: 100, maxDelayMs: 60_000 });
    for (const r of rowsOf(4, [1])) await w.add(r);
    const err = await w.flush().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClickHouseDataError);
    expect(err).toBeInstanceOf(ClickHouseQueryError); // callers that only know the parent class still see it
    expect(err).toMatchObject({ code: 691, type: 'UNKNOWN_ELEMENT_OF_ENUM', kind: 'fatal' });
    expect(w.pending).toBe(4);
    expect(fake.calls).toHaveLength(1);
  });

  it('bisects down to the offending rows, writes every other row once, and hands over the rejected ones with their meta', async () => {
    const fake = rejectingClickHouse();
    const handed: RejectedRow<Row, string>[][] = [];
    const flushed: FlushInfo[] = [];
    const w = createBatchWriter<Row, string>({
      ch: fake.ch, table: 't', maxRows: 100, maxDelayMs: 60_000,
      onRejected: async (rejected, table) => {
        expect(table).toBe('t');
        handed.push(rejected);
      },
      onFlush: (i) => flushed.push(i),
    });
    for (const r of rowsOf(8, [2, 5])) await w.add(r, `offset-${r.n}`);
    await w.flush({ batchId: 'b1' });
    expect([...fake.written].sort((a, b) => a - b)).toEqual([0, 1, 3, 4, 6, 7]);
    expect(handed).toHaveLength(1);
    expect(handed[0]!.map((r) => [r.row.n, r.meta, r.error.type])).toEqual([[2, 'offset-2', 'UNKNOWN_ELEMENT_OF_ENUM'], [5, 'offset-5', 'UNKNOWN_ELEMENT_OF_ENUM']]);
    expect(handed[0]![0]!.error).toBeInstanceOf(ClickHouseDataError);
    expect(w.pending).toBe(0);
    expect(flushed).toEqual([expect.objectContaining({ table: 't', rows: 6, rejected: 2, token: 'b1' })]);
    // Whole batch, then halves [0,4) [4,8), then quarters: sub-batch tokens derive from the batch token.
    expect(fake.calls.map((c) => [c.token, c.outcome])).toEqual([
      ['b1', 'rejected'],
      ['b1#0-4', 'rejected'],
      ['b1#0-2', 'written'],
      ['b1#2-4', 'rejected'],
      ['b1#2-3', 'rejected'],
      ['b1#3-4', 'written'],
      ['b1#4-8', 'rejected'],
      ['b1#4-6', 'rejected'],
      ['b1#4-5', 'written'],
      ['b1#5-6', 'rejected'],
      ['b1#6-8', 'written'],
    ]);
  });

  it('a single rejected row and an all-bad batch are handed over whole, nothing written', async () => {
    const fake = rejectingClickHouse();
    const handed: number[] = [];
    const w = createBatchWriter<Row>({ ch: fake.ch, table: 't', maxRows: 100, maxDelayMs: 60_000, onRejected: async (rejected) => void handed.push(...rejected.map((r) => r.row.n)) });
    await w.add({ n: 0, bad: true });
    await w.flush();
    for (const r of rowsOf(3, [0, 1, 2])) await w.add({ ...r, n: r.n + 10 });
    await w.flush();
    expect(handed).toEqual([0, 10, 11, 12]);
    expect(fake.written).toEqual([]);
    expect(w.pending).toBe(0);
  });

  it('if onRejected fails, the batch stays; the retry re-sends the written halves with the same tokens (dropped as duplicates)', async () => {
    const fake = rejectingClickHouse();
    let dlqUp = false;
    const handed: number[][] = [];
    const w = createBatchWriter<Row>({
      ch: fake.ch, table: 't', maxRows: 100, maxDelayMs: 60_000,
      onRejected: async (rejected) => {
        handed.push(rejected.map((r) => r.row.n));
        if (!dlqUp) throw new Error('DLQ topic unavailable');
      },
    });
    for (const r of rowsOf(6, [4])) await w.add(r);
    await expect(w.flush()).rejects.toThrow(/DLQ topic unavailable/);
    expect(w.pending).toBe(6);
    dlqUp = true;
    await w.flush();
    expect(handed).toEqual([[4], [4]]);
    expect([...fake.written].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 5]); // each once
    expect(fake.calls.filter((c) => c.outcome === 'deduplicated').length).toBeGreaterThan(0);
    expect(w.pending).toBe(0);
  });

  it('ClickHouse going away during the bisection is retriable: batch kept, nothing lost or doubled on retry', async () => {
    const fake = rejectingClickHouse();
    const handed: number[] = [];
    const w = createBatchWriter<Row>({ ch: fake.ch, table: 't', maxRows: 100, maxDelayMs: 60_000, onRejected: async (rejected) => void handed.push(...rejected.map((r) => r.row.n)) });
    for (const r of rowsOf(8, [7])) await w.add(r);
    // Let the whole batch and its left half through, then fail.
    const insert = fake.ch.client.insert.bind(fake.ch.client);
    let calls = 0;
    (fake.ch.client as unknown as { insert: typeof insert }).insert = async (p) => {
      calls += 1;
      if (calls === 3) fake.goDown(1);
      return insert(p);
    };
    await expect(w.flush()).rejects.toBeInstanceOf(ClickHouseUnavailableError);
    expect(handed).toEqual([]);
    expect(w.pending).toBe(8);
    await w.flush();
    expect(handed).toEqual([7]);
    expect([...fake.written].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('a statement error is not bisected: no row is at fault', async () => {
    const fake = rejectingClickHouse();
    fake.breakStatement();
    const onRejected = async () => undefined;
    const w = createBatchWriter<Row>({ ch: fake.ch, table: 't', maxRows: 100, maxDelayMs: 60_000, onRejected });
    for (const r of rowsOf(4, [])) await w.add(r);
    const err = await w.flush().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClickHouseQueryError);
    expect(err).not.toBeInstanceOf(ClickHouseDataError);
    expect(w.pending).toBe(4);
  });

  it('property: every row is written exactly once or rejected, never both, for any set of bad rows', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 64 }).chain((n) => fc.tuple(fc.constant(n), fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { maxLength: n }))), async ([n, bad]) => {
        const fake = rejectingClickHouse();
        const rejected: number[] = [];
        const w = createBatchWriter<Row>({ ch: fake.ch, table: 't', maxRows: 1000, maxDelayMs: 60_000, onRejected: async (r) => void rejected.push(...r.map((x) => x.row.n)) });
        for (const r of rowsOf(n, bad)) await w.add(r);
        await w.flush();
        expect([...rejected].sort((a, b) => a - b)).toEqual([...bad].sort((a, b) => a - b));
        expect([...fake.written].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i).filter((i) => !bad.includes(i)));
        // Bisection cost: at most 2 inserts per level per bad row, plus the first.
        expect(fake.calls.length).toBeLessThanOrEqual(1 + 2 * Math.max(1, bad.length) * Math.ceil(Math.log2(n) + 1));
      }),
      { numRuns: 200 },
    );
  });
});
