// Small SQL helpers shared by the factory, the migrator and the writer. No I/O here.

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** True for a plain ClickHouse identifier (what CLICKHOUSE_DATABASE and our table names allow). */
export function isPlainIdentifier(name: string): boolean {
  return IDENTIFIER.test(name);
}

/** Back-quote an identifier. We only accept plain identifiers, so quoting is never ambiguous. */
export function quoteIdentifier(name: string): string {
  if (!isPlainIdentifier(name)) {
    throw new TypeError(`not a plain ClickHouse identifier: ${JSON.stringify(name)} (expected [A-Za-z_][A-Za-z0-9_]*)`);
  }
  return `\`${name}\``;
}

/** `db`.`table` */
export function qualifiedName(database: string, table: string): string {
  return `${quoteIdentifier(database)}.${quoteIdentifier(table)}`;
}

/**
 * Migrations name their database as `{db}`, replaced by the quoted database name before running.
 * Why not the session's current database: the embedded chDB connection ignores the client's
 * `database` option (it is an HTTP URL parameter), and materialized views store the names they
 * were created with, so fully qualified names are the one form that means the same on both.
 * `{db}` is not valid ClickHouse query-parameter syntax (`{name:Type}`), so it cannot collide.
 */
export function renderMigrationSql(sql: string, database: string): string {
  return sql.replaceAll('{db}', quoteIdentifier(database));
}

/**
 * Split a script into statements at `;` outside string literals, quoted identifiers and comments.
 * The HTTP interface runs one statement per request, so the migrator sends them one by one
 * (chDB would accept a multi-statement script, a real server does not).
 * Handles: '...' with '' and \' escapes, "..." and `...` identifiers, -- and # line comments,
 * nested-free block comments. Statements that are only comments/whitespace are dropped; the
 * returned statements keep their inner comments but are trimmed.
 */
export function splitStatements(script: string): string[] {
  const statements: string[] = [];
  let current = '';
  let hasCode = false;
  let i = 0;
  const n = script.length;
  while (i < n) {
    const ch = script[i] as string;
    const next = script[i + 1];
    if (ch === '-' && next === '-') {
      const end = script.indexOf('\n', i);
      const stop = end === -1 ? n : end;
      current += script.slice(i, stop);
      i = stop;
      continue;
    }
    if (ch === '#' && (next === ' ' || next === '!')) {
      // ClickHouse also treats `# ` as a line comment.
      const end = script.indexOf('\n', i);
      const stop = end === -1 ? n : end;
      current += script.slice(i, stop);
      i = stop;
      continue;
    }
    if (ch === '/' && next === '*') {
      const end = script.indexOf('*/', i + 2);
      if (end === -1) throw new SyntaxError(`unterminated block comment starting at offset ${i}`);
      current += script.slice(i, end + 2);
      i = end + 2;
      continue;
    }
    if (ch === "'" || ch === '"' || ch === '`') {
      const start = i;
      i += 1;
      for (;;) {
        if (i >= n) throw new SyntaxError(`unterminated ${ch} quote starting at offset ${start}`);
        const c = script[i];
        if (c === '\\') {
          i += 2;
          continue;
        }
        if (c === ch) {
          if (script[i + 1] === ch) {
            i += 2; // doubled quote escapes itself
            continue;
          }
          i += 1;
          break;
        }
        i += 1;
      }
      current += script.slice(start, i);
      hasCode = true;
      continue;
    }
    if (ch === ';') {
      if (hasCode) statements.push(current.trim());
      current = '';
      hasCode = false;
      i += 1;
      continue;
    }
    if (!/\s/.test(ch)) hasCode = true;
    current += ch;
    i += 1;
  }
  if (hasCode) statements.push(current.trim());
  return statements;
}
