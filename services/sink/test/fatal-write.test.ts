// What the sink does when a flush fails, mocked only at the ClickHouse port (the client's insert):
// retriable errors back off for as long as it takes, a statement ClickHouse refuses (no row at
// fault) gets a few bounded attempts and then a FatalError naming the table, the ClickHouse code
// and the remedy, with the rows still held (never dropped, never dead-lettered).
import { describe, expect, it } from 'vitest';
import { ClickHouseQueryError, createBatchWriter, type ClickHouse } from '@tillwatch/clickhouse';
import { FatalError } from '@tillwatch/stream';
import { FatalWriteError, flushWithRetry, writeFailureKind, type WriteFailure } from '@tillwatch/sink';

type Fault = { code: string; type?: string; message: string } | 'ECONNREFUSED' | 'DATA';

/** ClickHouse at the port: each insert takes the next scripted fault, then succeeds. */
function scriptedClickHouse(faults: Fault[]) {
  const written: string[] = [];
  let inserts = 0;
  const client = {
    insert: async (p: { table: string; values: { id: string; bad?: boolean }[] }) => {
      inserts++;
      const f = faults.shift();
      if (f === 'ECONNREFUSED') throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
      if (f === 'DATA' && p.values.some((v) => v.bad)) throw Object.assign(new Error('Cannot parse input'), { code: '6', type: 'CANNOT_PARSE_TEXT' });
      if (f && f !== 'DATA') throw Object.assign(new Error(f.message), { name: 'ClickHouseError', code: f.code, ...(f.type ? { type: f.type } : {}) });
      written.push(...p.values.map((v) => `${p.table}/${v.id}`));
      return {};
    },
  };
  const ch = { client: client as unknown as ClickHouse['client'], table: (n: string) => `\`db\`.\`${n}\`` };
  return { ch, written, inserts: () => inserts };
}

const unknownTable = { code: '60', type: 'UNKNOWN_TABLE', message: 'Table db.alerts does not exist.' };

async function setup(faults: Fault[], fatalAttempts = 3) {
  const clickhouse = scriptedClickHouse(faults);
  const rejected: string[] = [];
  const writer = createBatchWriter<{ id: string; bad?: boolean }, string>({
    ch: clickhouse.ch,
    table: 'alerts',
    maxRows: 1000,
    maxDelayMs: 2 ** 31 - 1,
    onRejected: async (rows) => void rejected.push(...rows.map((r) => r.meta ?? '?')),
  });
  for (let i = 0; i < 4; i++) await writer.add({ id: `a${i}`, ...(i === 2 ? { bad: true } : {}) }, `offset ${i}`);
  const failures: WriteFailure[] = [];
  const waits: number[] = [];
  const flush = () =>
    flushWithRetry({
      writers: new Map([['alerts', writer]]),
      qualify: clickhouse.ch.table,
      policy: { fatalAttempts, backoffMs: (a) => 100 * 2 ** a },
      wait: async (ms) => void waits.push(ms),
      onFailure: (f) => void failures.push(f),
    });
  return { ...clickhouse, writer, rejected, failures, waits, flush };
}

describe('sink: a flush ClickHouse refuses', () => {
  it('classifies: ClickHouse unavailable → retriable; statement refused → fatal; not from ClickHouse (sending dead letters) → retriable', () => {
    expect(writeFailureKind(new ClickHouseQueryError('UNKNOWN_TABLE', { code: 60, type: 'UNKNOWN_TABLE' }))).toBe('fatal');
    expect(writeFailureKind(Object.assign(new Error('KafkaJSNumberOfRetriesExceeded'), { name: 'KafkaJSNumberOfRetriesExceeded' }))).toBe('retriable');
  });

  it('gives up on a missing table after the bounded attempts, with the table, code, name and remedy, keeping every row', async () => {
    const t = await setup([unknownTable, unknownTable, unknownTable, unknownTable]);
    const err = await t.flush().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(FatalWriteError);
    expect(err).toBeInstanceOf(FatalError); // the pipeline's class: owners exit 1 with the message
    const f = err as FatalWriteError;
    expect(f).toMatchObject({ table: 'alerts', qualifiedTable: '`db`.`alerts`', code: 60, type: 'UNKNOWN_TABLE', attempts: 3 });
    expect(f.message).toMatch(/^cannot write to ClickHouse table `db`\.`alerts`: ClickHouse error 60 \(UNKNOWN_TABLE\): Table db\.alerts does not exist\./);
    expect(f.message).toMatch(/offsets of the unwritten rows are not committed/);
    expect(f.message).toMatch(/run `tillwatch provision`/);
    expect(t.inserts()).toBe(3); // bounded: the 4th scripted failure is never reached
    expect(t.waits).toEqual([100, 200]);
    expect(t.failures.map((x) => [x.table, x.kind, x.waitMs])).toEqual([['alerts', 'fatal', 100], ['alerts', 'fatal', 200], ['alerts', 'fatal', undefined]]);
    // Nothing written, nothing dead-lettered (no row is at fault), nothing dropped.
    expect(t.written).toEqual([]);
    expect(t.rejected).toEqual([]);
    expect(t.writer.pending).toBe(4);
  });

  it('names the remedy by error: authentication → credentials, syntax → a bug to report', async () => {
    const auth = await setup([{ code: '516', type: 'AUTHENTICATION_FAILED', message: 'default: Authentication failed' }], 1);
    await expect(auth.flush()).rejects.toThrow(/ClickHouse error 516 \(AUTHENTICATION_FAILED\).*check CLICKHOUSE_USER \/ CLICKHOUSE_PASSWORD/s);
    const syntax = await setup([{ code: '62', type: 'SYNTAX_ERROR', message: 'Syntax error: failed at position 1' }], 1);
    await expect(syntax.flush()).rejects.toThrow(/SYNTAX_ERROR.*report it with this message/s);
    expect(syntax.inserts()).toBe(1);
  });

  it('writes every row once when the table comes back within the attempts (re-created by a migration)', async () => {
    const t = await setup([unknownTable, unknownTable]);
    await t.flush();
    expect(t.written).toEqual(['`db`.`alerts`/a0', '`db`.`alerts`/a1', '`db`.`alerts`/a2', '`db`.`alerts`/a3']);
    expect(t.writer.pending).toBe(0);
    expect(t.failures.map((x) => x.kind)).toEqual(['fatal', 'fatal']);
  });

  it('keeps backing off while ClickHouse is unavailable, however long: retriable errors do not count towards giving up', async () => {
    const t = await setup([...Array.from({ length: 10 }, () => 'ECONNREFUSED' as const), unknownTable], 2);
    await t.flush();
    expect(t.inserts()).toBe(12);
    expect(t.failures.filter((x) => x.kind === 'retriable')).toHaveLength(10);
    expect(t.writer.pending).toBe(0);
  });

  it('keeps the data path: a row ClickHouse rejects for its values is handed over (to the DLQ), not fatal', async () => {
    const t = await setup(['DATA', 'DATA', 'DATA', 'DATA', 'DATA'], 1);
    await t.flush();
    expect(t.rejected).toEqual(['offset 2']);
    expect(t.written.sort()).toEqual(['`db`.`alerts`/a0', '`db`.`alerts`/a1', '`db`.`alerts`/a3']);
    expect(t.failures).toEqual([]);
  });

  it('retries a failure to send dead letters (Kafka) without giving up', async () => {
    const t = await setup([]);
    let sends = 0;
    const waits: number[] = [];
    await flushWithRetry({
      writers: new Map([['alerts', t.writer]]),
      qualify: t.ch.table,
      policy: { fatalAttempts: 1, backoffMs: () => 1 },
      wait: async (ms) => void waits.push(ms),
      afterWrites: async () => {
        if (++sends < 4) throw Object.assign(new Error('There is no leader for this topic-partition'), { name: 'KafkaJSProtocolError' });
      },
    });
    expect(sends).toBe(4);
    expect(waits).toHaveLength(3);
    expect(t.inserts()).toBe(1); // the written table is not written again
  });
});
