import { describe, expect, it } from 'vitest';
import { ClickHouseError } from '@clickhouse/client';
import { ClickHouseDataError, ClickHouseQueryError, ClickHouseUnavailableError, classifyClickHouseError, mapClickHouseError } from '../src/errors.js';
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

  it('maps a rejection of inserted values to ClickHouseDataError (still a ClickHouseQueryError)', () => {
    // As chDB throws it for an Enum8 symbol the column does not know (seen with chdb 3.4 / ClickHouse 26).
    const chdb = Object.assign(new Error("Unknown element 'NOTIFY_ACQUIRER' for enum: (while reading the value of key kind): (at row 1)"), { code: '691', type: 'UNKNOWN_ELEMENT_OF_ENUM' });
    const e = mapClickHouseError(chdb);
    expect(e).toBeInstanceOf(ClickHouseDataError);
    expect(e).toBeInstanceOf(ClickHouseQueryError);
    expect(e).toMatchObject({ name: 'ClickHouseDataError', code: 691, type: 'UNKNOWN_ELEMENT_OF_ENUM', kind: 'fatal', retriable: false });
    // The HTTP client's error class, and a code without a type: the name comes from the table.
    expect(mapClickHouseError(new ClickHouseError({ message: 'Cannot parse input', code: '27', type: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED' }))).toBeInstanceOf(ClickHouseDataError);
    expect(mapClickHouseError(Object.assign(new Error('Cannot read DateTime'), { name: 'ClickHouseError', code: '41' }))).toMatchObject({ name: 'ClickHouseDataError', type: 'CANNOT_PARSE_DATETIME' });
  });
});

describe('classifyClickHouseError', () => {
  const ch = (code: number, type: string) => new ClickHouseError({ message: type, code: String(code), type });

  it.each([
    // retriable: the server or the network, not the statement
    [ch(252, 'TOO_MANY_PARTS'), 'retriable'],
    [ch(241, 'MEMORY_LIMIT_EXCEEDED'), 'retriable'],
    [ch(159, 'TIMEOUT_EXCEEDED'), 'retriable'],
    [ch(209, 'SOCKET_TIMEOUT'), 'retriable'],
    [ch(202, 'TOO_MANY_SIMULTANEOUS_QUERIES'), 'retriable'],
    [ch(203, 'NO_FREE_CONNECTION'), 'retriable'],
    [ch(745, 'SERVER_OVERLOADED'), 'retriable'],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' }), 'retriable'],
    [new Error('Timeout error.'), 'retriable'],
    // data: a value of the batch does not parse into or fit its column
    [ch(691, 'UNKNOWN_ELEMENT_OF_ENUM'), 'data'],
    [ch(27, 'CANNOT_PARSE_INPUT_ASSERTION_FAILED'), 'data'],
    [ch(41, 'CANNOT_PARSE_DATETIME'), 'data'],
    [ch(72, 'CANNOT_PARSE_NUMBER'), 'data'],
    [ch(53, 'TYPE_MISMATCH'), 'data'],
    [ch(117, 'INCORRECT_DATA'), 'data'],
    [ch(130, 'CANNOT_READ_ARRAY_FROM_TEXT'), 'data'],
    [ch(321, 'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE'), 'data'],
    [ch(349, 'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN'), 'data'],
    [ch(469, 'VIOLATED_CONSTRAINT'), 'data'],
    // fatal: the statement or the schema, no row at fault
    [ch(60, 'UNKNOWN_TABLE'), 'fatal'],
    [ch(16, 'NO_SUCH_COLUMN_IN_TABLE'), 'fatal'],
    [ch(62, 'SYNTAX_ERROR'), 'fatal'],
    [ch(497, 'ACCESS_DENIED'), 'fatal'],
    // in ClickHouse's isParseError() but also a request body cut short over HTTP: not a row's fault
    [ch(33, 'CANNOT_READ_ALL_DATA'), 'fatal'],
    [new TypeError('x is undefined'), 'fatal'],
  ] as const)('%s -> %s', (e, expected) => {
    expect(classifyClickHouseError(e)).toBe(expected);
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
