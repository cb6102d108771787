// Batching, retry and token behaviour of the writer against a fake client (the port). The real
// insert path is covered by writer.int.test.ts.
import { describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '@clickhouse/client';
import { createBatchWriter, contentToken } from '../src/writer.js';
import { ClickHouseUnavailableError } from '../src/errors.js';

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

  it('validates its options', () => {
    const fake = fakeClickHouse();
    expect(() => createBatchWriter({ ch: fake.ch, table: 't', maxRows: 0, maxDelayMs: 1 })).toThrow(RangeError);
    expect(() => createBatchWriter({ ch: fake.ch, table: 't', maxRows: 1, maxDelayMs: -1 })).toThrow(RangeError);
  });
});
