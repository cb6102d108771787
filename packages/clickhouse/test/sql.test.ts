import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clickhouseMigrationsDir } from '@tillwatch/schemas';
import { qualifiedName, quoteIdentifier, renderMigrationSql, splitStatements } from '../src/sql.js';

describe('splitStatements', () => {
  it('splits at semicolons and trims', () => {
    expect(splitStatements('CREATE TABLE a (x UInt8) ENGINE = Memory;\n\nSELECT 1;\n')).toEqual([
      'CREATE TABLE a (x UInt8) ENGINE = Memory',
      'SELECT 1',
    ]);
  });

  it('keeps a last statement without a semicolon', () => {
    expect(splitStatements('SELECT 1; SELECT 2')).toEqual(['SELECT 1', 'SELECT 2']);
  });

  it('ignores semicolons inside string literals, with both escape styles', () => {
    const sql = "SELECT 'a;b', 'it''s;', 'back\\';slash';SELECT 2";
    expect(splitStatements(sql)).toEqual(["SELECT 'a;b', 'it''s;', 'back\\';slash'", 'SELECT 2']);
  });

  it('ignores semicolons inside quoted identifiers', () => {
    expect(splitStatements('SELECT 1 AS "a;b", 2 AS `c;d`; SELECT 3')).toEqual(['SELECT 1 AS "a;b", 2 AS `c;d`', 'SELECT 3']);
  });

  it('ignores semicolons in line and block comments', () => {
    const sql = [
      '-- header; with a semicolon',
      'CREATE TABLE t (x UInt8 COMMENT \'a;b\') /* inline; comment */ ENGINE = Memory;',
      '# hash comment; also',
      'SELECT 1; -- trailing; comment',
    ].join('\n');
    const out = splitStatements(sql);
    expect(out).toHaveLength(2);
    expect(out[0]).toContain("COMMENT 'a;b'");
    expect(out[0]).toContain('/* inline; comment */');
    expect(out[1]).toMatch(/SELECT 1$/);
  });

  it('drops statements that are only comments or whitespace', () => {
    expect(splitStatements('-- nothing here;\n;\n  ;/* x; */;')).toEqual([]);
  });

  it('rejects unterminated quotes and comments', () => {
    expect(() => splitStatements("SELECT 'oops")).toThrow(/unterminated/);
    expect(() => splitStatements('SELECT 1 /* oops')).toThrow(/unterminated/);
  });

  it('splits every shipped migration into DDL and backfill statements', () => {
    const files = readdirSync(clickhouseMigrationsDir).filter((f) => f.endsWith('.sql'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const statements = splitStatements(readFileSync(join(clickhouseMigrationsDir, f), 'utf8'));
      expect(statements.length, f).toBeGreaterThan(0);
      for (const s of statements) expect(s, f).toMatch(/^(--[^\n]*\n\s*)*(CREATE|ALTER|INSERT|DROP (VIEW|TABLE) IF EXISTS) /);
    }
  });
});

describe('identifiers', () => {
  it('quotes plain identifiers and rejects anything else', () => {
    expect(quoteIdentifier('tillwatch_1')).toBe('`tillwatch_1`');
    expect(qualifiedName('db', 'alerts')).toBe('`db`.`alerts`');
    expect(() => quoteIdentifier('a`b')).toThrow(TypeError);
    expect(() => quoteIdentifier('1abc')).toThrow(TypeError);
    expect(() => quoteIdentifier('')).toThrow(TypeError);
  });

  it('renders {db} placeholders', () => {
    expect(renderMigrationSql('CREATE TABLE {db}.t AS {db}.u', 'x')).toBe('CREATE TABLE `x`.t AS `x`.u');
    expect(() => renderMigrationSql('{db}', 'bad name')).toThrow(TypeError);
  });
});
