// Reading the dashboards, and doing to a ClickHouse panel's SQL what Grafana and the
// grafana-clickhouse-datasource plugin do before the query reaches ClickHouse:
//   1. the frontend interpolates dashboard variables (${name:format});
//   2. the plugin backend expands its macros ($__timeFilter(col), ...).
//
// Macro semantics follow the plugin's pkg/macros/macros.go (grafana/clickhouse-datasource v4):
//   $__timeFilter(c)   -> c >= toDateTime(<from s>) AND c <= toDateTime(<to s>)
//   $__timeFilter_ms(c)-> c >= fromUnixTimestamp64Milli(<from ms>) AND c <= fromUnixTimestamp64Milli(<to ms>)
//   $__fromTime        -> toDateTime(<from s>)          $__toTime    -> toDateTime(<to s>)
//   $__fromTime_ms     -> fromUnixTimestamp64Milli(ms)  $__toTime_ms -> fromUnixTimestamp64Milli(ms)
//   $__timeInterval(c) -> toStartOfInterval(toDateTime(c), INTERVAL <max(interval s, 1)> second)
//   $__interval_s      -> <max(interval s, 1)>
// Times are Unix seconds (Go's time.Unix(): truncated); the interval is Grafana's query interval.
// Only the macros listed are implemented; anything else starting with $__ is an error, so a panel
// cannot use a macro this test does not understand.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { dashboardsDir } from './paths.js';

// ---------------------------------------------------------------------------------------------
// Dashboard shapes (the parts the tests read).

export interface DatasourceRef {
  type: string;
  uid: string;
}

export interface Target {
  refId: string;
  datasource?: DatasourceRef;
  // grafana-clickhouse-datasource
  editorType?: string;
  queryType?: string;
  format?: number;
  rawSql?: string;
  // prometheus
  expr?: string;
  legendFormat?: string;
}

export interface FieldOverride {
  matcher: { id: string; options: unknown };
  properties: Array<{ id: string; value?: unknown }>;
}

export interface Transformation {
  id: string;
  options: Record<string, unknown>;
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: DatasourceRef;
  interval?: string;
  targets?: Target[];
  fieldConfig?: { defaults: Record<string, unknown>; overrides: FieldOverride[] };
  options?: Record<string, unknown>;
  transformations?: Transformation[];
  panels?: Panel[];
}

export interface TemplateVariable {
  type: string;
  name: string;
  query?: unknown;
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string;
  /** Query variables: 1 = on dashboard load, 2 = on time range change. */
  refresh?: number;
  options?: Array<{ text: string; value: string }>;
  datasource?: DatasourceRef;
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: TemplateVariable[] };
}

export interface DashboardFile {
  file: string;
  dashboard: Dashboard;
}

export function loadDashboards(): DashboardFile[] {
  return readdirSync(dashboardsDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ file: f, dashboard: JSON.parse(readFileSync(path.join(dashboardsDir, f), 'utf8')) as Dashboard }));
}

/** Every panel that queries (rows and their nested panels flattened out). */
export function queryPanels(d: Dashboard): Panel[] {
  const out: Panel[] = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      if (p.type === 'row') walk(p.panels ?? []);
      else out.push(p);
    }
  };
  walk(d.panels);
  return out;
}

export const CLICKHOUSE_PLUGIN = 'grafana-clickhouse-datasource';

/** grafana-plugin-sdk-go sqlutil.FormatQueryOption, as the ClickHouse plugin sends it. */
export const SqlFormat = { TimeSeries: 0, Table: 1 } as const;

// ---------------------------------------------------------------------------------------------
// 1. Template variables (what Grafana's TemplateSrv does before the datasource sees the query).

/**
 * Grafana's variable formats (grafana/scenes formatRegistry.ts), for a single value (a string: a
 * textbox, or a variable without multi) and for several (an array: a multi-value variable, even
 * with one value selected or "All"). A variable without a format is rejected: the panels always say.
 *
 * None of Grafana's quoting formats is safe in ClickHouse SQL: `singlequote` escapes ' as \' and
 * `sqlstring` doubles it, but neither escapes a backslash, and ClickHouse reads a backslash in a
 * string literal as an escape: a value ending in \ swallows the closing quote (a syntax error at
 * best, an injection at worst). So the dashboards only use `percentencode` (RFC 3986: the output
 * is [A-Za-z0-9._~%-] only, and a multi-value variable becomes the percent-encoded glob "{a,b}")
 * inside a quoted literal decoded by ClickHouse's decodeURLComponent; the tests check that.
 */
export type VariableValue = string | string[];
const encodeStrict = (v: string) => encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const FORMATS: Record<string, (value: VariableValue) => string> = {
  singlequote: (v) => (Array.isArray(v) ? v : [v]).map((x) => `'${x.replaceAll("'", "\\'")}'`).join(','),
  sqlstring: (v) => (Array.isArray(v) ? v : [v]).map((x) => `'${x.replace(/'|"/g, (m) => (m === "'" ? "''" : '\\"'))}'`).join(','),
  percentencode: (v) => (Array.isArray(v) ? encodeStrict(`{${v.join(',')}}`) : encodeStrict(v)),
  csv: (v) => (Array.isArray(v) ? v.join(',') : v),
  raw: (v) => String(v),
};

/** The only variable format the ClickHouse panels may use (see FORMATS). */
export const SAFE_SQL_FORMAT = 'percentencode';

export type VariableValues = Record<string, VariableValue>;

/**
 * The values of a variable set to "All": Grafana sends every option (a custom all value, which
 * Grafana inserts unformatted, is not used by these dashboards and is rejected). For a query
 * variable that is what its query returned (stored options are only a cache, empty here): the
 * panel test runs the query to get them.
 */
export function allValues(v: TemplateVariable): string[] {
  if (v.allValue !== undefined && v.allValue !== '') throw new Error(`variable ${v.name}: custom allValue not supported by this test`);
  if (v.type === 'custom') return String(v.query ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  return (v.options ?? []).map((o) => o.value).filter((x) => x !== '$__all');
}

/** Variable references with their format: [name, format | undefined]. */
export function variableRefs(text: string): Array<[string, string | undefined]> {
  return [...text.matchAll(/\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(?!__)([A-Za-z]\w*)/g)].map((m) => [(m[1] ?? m[3] ?? m[5])!, m[2] ?? m[4]]);
}

export function interpolateVariables(sql: string, values: VariableValues): string {
  // ${name}, ${name:format}, $name, [[name]] / [[name:format]] (Grafana's three syntaxes).
  return sql.replace(/\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(?!__)([A-Za-z]\w*)/g, (m, n1, f1, n2, f2, n3) => {
    const name = (n1 ?? n2 ?? n3) as string;
    const format = (f1 ?? f2) as string | undefined;
    const vs = values[name];
    if (vs === undefined) throw new Error(`undefined dashboard variable ${m}`);
    if (!format) throw new Error(`variable ${m} has no format: use \${${name}:${SAFE_SQL_FORMAT}}`);
    const fmt = FORMATS[format];
    if (!fmt) throw new Error(`variable format "${format}" in ${m} is not implemented by this test`);
    return fmt(vs);
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Plugin macros.

export interface QueryContext {
  fromMs: number;
  toMs: number;
  /** Grafana's query interval for the panel, in ms. */
  intervalMs: number;
}

const unixSeconds = (ms: number) => Math.floor(ms / 1000);
const toDateTime = (ms: number) => `toDateTime(${unixSeconds(ms)})`;
const toDateTime64 = (ms: number) => `fromUnixTimestamp64Milli(${Math.trunc(ms)})`;
const intervalSeconds = (ctx: QueryContext) => Math.trunc(Math.max(ctx.intervalMs / 1000, 1));

type Macro = (args: string[], ctx: QueryContext) => string;

function oneArg(name: string, args: string[]): string {
  if (args.length !== 1 || args[0] === '') throw new Error(`$__${name} expects 1 argument, got ${args.length}`);
  return args[0]!;
}

const MACROS: Record<string, Macro> = {
  fromTime: (_a, c) => toDateTime(c.fromMs),
  toTime: (_a, c) => toDateTime(c.toMs),
  fromTime_ms: (_a, c) => toDateTime64(c.fromMs),
  toTime_ms: (_a, c) => toDateTime64(c.toMs),
  timeFilter: (a, c) => {
    const col = oneArg('timeFilter', a);
    return `${col} >= ${toDateTime(c.fromMs)} AND ${col} <= ${toDateTime(c.toMs)}`;
  },
  timeFilter_ms: (a, c) => {
    const col = oneArg('timeFilter_ms', a);
    return `${col} >= ${toDateTime64(c.fromMs)} AND ${col} <= ${toDateTime64(c.toMs)}`;
  },
  timeInterval: (a, c) => `toStartOfInterval(toDateTime(${oneArg('timeInterval', a)}), INTERVAL ${intervalSeconds(c)} second)`,
  interval_s: (_a, c) => String(intervalSeconds(c)),
};

/** Split macro arguments at top-level commas (a column expression may contain parentheses). */
function splitArgs(s: string): string[] {
  const args: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      args.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  args.push(cur.trim());
  return args;
}

export function expandMacros(sql: string, ctx: QueryContext): string {
  let out = '';
  let i = 0;
  for (;;) {
    const at = sql.indexOf('$__', i);
    if (at < 0) return out + sql.slice(i);
    out += sql.slice(i, at);
    const name = /^\$__(\w+)/.exec(sql.slice(at))?.[1];
    if (!name) throw new Error(`stray "$__" at ${at}`);
    const macro = MACROS[name];
    if (!macro) throw new Error(`macro $__${name} is not one the plugin defines (or this test implements)`);
    let end = at + 3 + name.length;
    let args: string[] = [];
    if (sql[end] === '(') {
      let depth = 0;
      let j = end;
      for (; j < sql.length; j++) {
        if (sql[j] === '(') depth++;
        else if (sql[j] === ')' && --depth === 0) break;
      }
      if (j >= sql.length) throw new Error(`unclosed parenthesis after $__${name}`);
      args = splitArgs(sql.slice(end + 1, j));
      end = j + 1;
    }
    out += macro(args, ctx);
    i = end;
  }
}

// ---------------------------------------------------------------------------------------------
// Query interval: max(panel min interval, range / max data points, rounded to a "nice" step),
// approximating Grafana's rangeutil.calculateInterval.

const NICE_STEPS_MS = [1, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);

export function parseDurationMs(s: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s.trim());
  if (!m) throw new Error(`cannot parse duration "${s}"`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

export function queryIntervalMs(panel: Panel, rangeMs: number, maxDataPoints = 1000): number {
  const raw = rangeMs / maxDataPoints;
  const nice = NICE_STEPS_MS.find((s) => s >= raw) ?? NICE_STEPS_MS[NICE_STEPS_MS.length - 1]!;
  const min = panel.interval ? parseDurationMs(panel.interval) : 0;
  return Math.max(nice, min);
}

/** Variables ${...} a piece of SQL or PromQL refers to. */
export function variablesIn(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(?!__)([A-Za-z]\w*)/g)) names.add((m[1] ?? m[2] ?? m[3])!);
  return [...names];
}

/** The database the dashboards are written for; tests rewrite it to their own. */
export const DASHBOARD_DATABASE = 'tillwatch';

/** Qualified table references `tillwatch.<table>` in SQL. */
export function tablesIn(sql: string): string[] {
  return [...new Set([...sql.matchAll(new RegExp(`\\b${DASHBOARD_DATABASE}\\.(\\w+)`, 'g'))].map((m) => m[1]!))];
}

export function rewriteDatabase(sql: string, database: string): string {
  return sql.replace(new RegExp(`\\b${DASHBOARD_DATABASE}\\.(\\w+)`, 'g'), (_m, t: string) => `\`${database}\`.\`${t}\``);
}
