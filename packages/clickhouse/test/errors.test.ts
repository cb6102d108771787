import { describe, expect, it } from 'vitest';
import { ClickHouseError } from '@clickhouse/client';
import { ClickHouseQueryError, ClickHouseUnavailableError, mapClickHouseError } from '../src/errors.js';
import { createClickHouse } from '../src/factory.js';

describe('mapClickHouseError', () => {
  it('maps a statement error to ClickHouseQueryError with its code', () => {
    const e = mapClickHouseError(new ClickHouseError({ message: "Table x doesn't exist", code: '60', type: 'UNKNOWN_TABLE' }));
    expect(e).toBeInstanceOf(ClickHouseQueryError);
    expect(e).toMatchObject({ code: 60, type: 'UNKNOWN_TABLE', retriable: false, kind: 'fatal' });
  });

  it('matches structurally (chDB throws the client-common copy of ClickHouseError)', () => {
    const foreign = Object.assign(new Error('Syntax error'), { name: 'ClickHouseError', code: '62', type: 'SYNTAX_ERROR' });
    expect(mapClickHouseError(foreign)).toMatchObject({ name: 'ClickHouseQueryError', code: 62 });
  });

  it('treats load errors from the server as retriable', () => {
    const e = mapClickHouseError(new ClickHouseError({ message: 'Too many parts', code: '252', type: 'TOO_MANY_PARTS' }));
    expect(e).toBeInstanceOf(ClickHouseUnavailableError);
    expect(e).toMatchObject({ retriable: true, code: '252' });
  });

  it('treats network errors and client timeouts as retriable', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
    expect(mapClickHouseError(refused)).toBeInstanceOf(ClickHouseUnavailableError);
    expect(mapClickHouseError(new Error('Timeout error.'))).toBeInstanceOf(ClickHouseUnavailableError);
    expect(mapClickHouseError(new Error('Service Unavailable'))).toBeInstanceOf(ClickHouseUnavailableError);
    const wrapped = new Error('request failed', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) });
    expect(mapClickHouseError(wrapped)).toBeInstanceOf(ClickHouseUnavailableError);
  });

  it('leaves unrelated errors alone', () => {
    const bug = new TypeError('x is undefined');
    expect(mapClickHouseError(bug)).toBe(bug);
  });
});

describe('HTTP factory against nothing listening', () => {
  it('ping and queries fail with ClickHouseUnavailableError', async () => {
    const ch = createClickHouse({ url: 'http://127.0.0.1:1', database: 'tillwatch', requestTimeoutMs: 2_000 });
    try {
      expect(ch.kind).toBe('http');
      await expect(ch.ping()).rejects.toBeInstanceOf(ClickHouseUnavailableError);
      await expect(ch.version()).rejects.toBeInstanceOf(ClickHouseUnavailableError);
      await expect(ch.ensureDatabase()).rejects.toMatchObject({ retriable: true });
    } finally {
      await ch.close();
    }
  });

  it('rejects bad options with a clear message', () => {
    expect(() => createClickHouse({ database: 'tillwatch' })).toThrow(/url .* or path/);
    expect(() => createClickHouse({ url: 'http://localhost:8123', database: 'bad-name' })).toThrow(/database name/);
  });
});
