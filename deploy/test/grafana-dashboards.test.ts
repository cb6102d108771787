// Static checks of deploy/grafana (no ClickHouse needed; the panels' SQL is run by
// grafana-panels.int.test.ts): provisioning files, dashboard structure, data source references,
// variables, the plugin macro expansion itself, table names against the migrations, and every
// Prometheus expression's metric names against what the services export.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { RULE_IDS } from '@tillwatch/rules';
import { createDetectorMetrics, createRegistry, createSinkMetrics } from '@tillwatch/telemetry';
import { createApiMetrics } from '@tillwatch/api';
import {
  CLICKHOUSE_PLUGIN,
  SAFE_SQL_FORMAT,
  SqlFormat,
  allValues,
  expandMacros,
  interpolateVariables,
  loadDashboards,
  queryIntervalMs,
  queryPanels,
  rewriteDatabase,
  tablesIn,
  variableRefs,
  variablesIn,
  type Panel,
} from './support/grafana.js';
import { ALL_METRIC_LABELS, API_METRICS, KNOWN_METRICS, metricNamesIn, unknownSeries, type MetricType } from './support/metrics.js';
import { deployDir, grafanaDir, migrationsDir } from './support/paths.js';

interface DatasourceProvisioning {
  apiVersion: number;
  datasources: Array<{ name: string; uid: string; type: string; url?: string; jsonData?: Record<string, unknown>; secureJsonData?: Record<string, unknown> }>;
}
interface DashboardProvisioning {
  apiVersion: number;
  providers: Array<{ name: string; type: string; options: { path: string } }>;
}

const readYaml = <T>(file: string): T => parse(readFileSync(file, 'utf8')) as T;
const yamlFiles = (dir: string) => readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).map((f) => path.join(dir, f));

const datasources = yamlFiles(path.join(grafanaDir, 'provisioning', 'datasources')).flatMap((f) => readYaml<DatasourceProvisioning>(f).datasources);
const providers = yamlFiles(path.join(grafanaDir, 'provisioning', 'dashboards')).flatMap((f) => readYaml<DashboardProvisioning>(f).providers);
const dashboards = loadDashboards();

/** Tables and views the migrations create (`CREATE TABLE|VIEW ... {db}.name`). */
const migratedTables = new Set(
  readdirSync(migrationsDir)
    .filter((f) => f.endsWith('.sql'))
    .flatMap((f) => [...readFileSync(path.join(migrationsDir, f), 'utf8').matchAll(/CREATE\s+(?:MATERIALIZED\s+)?(?:TABLE|VIEW)\s+IF\s+NOT\s+EXISTS\s+\{db\}\.(\w+)/gi)].map((m) => m[1]!)),
);

describe('Grafana provisioning', () => {
  it('provisions the ClickHouse plugin and Prometheus with fixed uids', () => {
    const ch = datasources.find((d) => d.type === CLICKHOUSE_PLUGIN);
    const prom = datasources.find((d) => d.type === 'prometheus');
    expect(ch?.uid).toBe('tillwatch-clickhouse');
    expect(ch?.jsonData).toMatchObject({ host: 'clickhouse', port: 8123, protocol: 'http', defaultDatabase: 'tillwatch' });
    // A password is never in the file; it comes from the Grafana process environment.
    expect(String(ch?.secureJsonData?.['password'])).toMatch(/^\$__env\{\w+\}$/);
    expect(prom?.uid).toBe('tillwatch-prometheus');
    expect(prom?.url).toBe('http://prometheus:9090');
    expect(new Set(datasources.map((d) => d.uid)).size).toBe(datasources.length);
  });

  it('the dashboard provider reads the folder compose mounts the dashboards into', () => {
    const compose = parse(readFileSync(path.join(deployDir, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, { volumes?: string[] }> };
    const mounts = (compose.services['grafana']?.volumes ?? []).map((v) => v.split(':'));
    expect(providers).toHaveLength(1);
    const dashboardsMount = mounts.find(([src]) => src === './grafana/dashboards');
    expect(dashboardsMount?.[1]).toBe(providers[0]!.options.path);
    expect(mounts.find(([src]) => src === './grafana/provisioning')?.[1]).toBe('/etc/grafana/provisioning');
    // The home dashboard compose sets is one of the mounted files.
    const grafanaEnv = (compose.services['grafana'] as { environment?: Record<string, string> }).environment ?? {};
    const home = grafanaEnv['GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH'] ?? '';
    expect(path.dirname(home)).toBe(providers[0]!.options.path);
    expect(dashboards.map((d) => d.file)).toContain(path.basename(home));
  });
});

describe('dashboards', () => {
  const uids = new Set(datasources.map((d) => d.uid));

  it('fleet overview, pipeline health, triage, money trail and rules (others may be added), with unique uids', () => {
    const all = dashboards.map((d) => d.dashboard.uid);
    expect(all).toEqual(expect.arrayContaining(['tillwatch-fleet', 'tillwatch-pipeline', 'tillwatch-triage', 'tillwatch-money-trail', 'tillwatch-rules']));
    expect(new Set(all).size).toBe(all.length);
  });

  for (const { file, dashboard } of dashboards) {
    describe(file, () => {
      const panels = queryPanels(dashboard);

      it('panels have unique ids, a title, a provisioned data source and at least one query', () => {
        const ids = [...dashboard.panels.map((p) => p.id), ...panels.map((p) => p.id)];
        expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
        expect(ids.every((id) => Number.isInteger(id))).toBe(true);
        for (const p of panels) {
          expect(p.title, `panel ${p.id}`).toBeTruthy();
          expect(uids.has(p.datasource?.uid ?? ''), `panel "${p.title}" data source ${JSON.stringify(p.datasource)}`).toBe(true);
          expect(p.targets?.length, `panel "${p.title}" has no targets`).toBeGreaterThan(0);
          for (const t of p.targets ?? []) expect(t.datasource ?? p.datasource, `panel "${p.title}" target ${t.refId}`).toEqual(p.datasource);
        }
      });

      it('panels fit the 24-column grid without overlapping', () => {
        const cells = new Set<string>();
        for (const p of dashboard.panels as Array<Panel & { gridPos: { x: number; y: number; w: number; h: number } }>) {
          expect(p.gridPos.x + p.gridPos.w, `panel "${p.title}"`).toBeLessThanOrEqual(24);
          for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
            for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
              const key = `${x},${y}`;
              expect(cells.has(key), `panel "${p.title}" overlaps at ${key}`).toBe(false);
              cells.add(key);
            }
        }
      });

      it('every variable a query uses is defined', () => {
        const defined = new Set(dashboard.templating.list.map((v) => v.name));
        for (const p of panels)
          for (const t of p.targets ?? []) for (const v of variablesIn(t.rawSql ?? t.expr ?? '')) expect(defined.has(v), `panel "${p.title}" uses $${v}`).toBe(true);
      });
    });
  }
});

describe('ClickHouse panels (static)', () => {
  const chPanels = dashboards.flatMap(({ dashboard }) => queryPanels(dashboard).filter((p) => p.datasource?.type === CLICKHOUSE_PLUGIN));

  it('use the SQL editor, a format matching the panel type, and only tables the migrations create, in database tillwatch', () => {
    expect(chPanels.length).toBeGreaterThanOrEqual(10);
    for (const p of chPanels)
      for (const t of p.targets ?? []) {
        const where = `panel "${p.title}"`;
        expect(t.editorType, where).toBe('sql');
        expect(t.format, where).toBe(p.type === 'timeseries' ? SqlFormat.TimeSeries : SqlFormat.Table);
        expect(t.queryType, where).toBe(p.type === 'timeseries' ? 'timeSeries' : 'table');
        const tables = tablesIn(t.rawSql ?? '');
        expect(tables.length, `${where} reads no tillwatch.<table>`).toBeGreaterThan(0);
        for (const table of tables) expect(migratedTables.has(table), `${where}: table ${table} is not created by schemas/clickhouse`).toBe(true);
        // Every FROM/JOIN names a qualified table or a subquery, never an unqualified one.
        // (trim(BOTH '...' FROM x) is a function and ARRAY JOIN unnests a column: neither names a table.)
        const sql = (t.rawSql ?? '').replace(/\btrim\(\s*(?:BOTH|LEADING|TRAILING)\s+'[^']*'\s+FROM\b/gi, 'trim(');
        for (const m of sql.matchAll(/\b(?:FROM|(?<!\bARRAY\s+)JOIN)\s+([^\s(]+)/gi)) expect(m[1], `${where}: FROM/JOIN ${m[1]}`).toMatch(/^tillwatch\.\w+$/);
      }
  });

  it('variables reach SQL only percent-encoded inside a quoted literal ClickHouse decodes (no quote or backslash can break out)', () => {
    for (const p of chPanels)
      for (const t of p.targets ?? []) {
        const sql = t.rawSql ?? '';
        for (const [name, format] of variableRefs(sql)) expect(format, `panel "${p.title}": $${name} must use :${SAFE_SQL_FORMAT}`).toBe(SAFE_SQL_FORMAT);
        const refs = variableRefs(sql).length;
        const wrapped = [...sql.matchAll(/decodeURLComponent\('\$\{\w+:percentencode\}'\)/g)].length;
        expect(wrapped, `panel "${p.title}": every variable inside decodeURLComponent('...')`).toBe(refs);
      }
  });

  it('time series panels bucket with $__timeInterval and filter with the dashboard time range', () => {
    for (const p of chPanels.filter((x) => x.type === 'timeseries'))
      for (const t of p.targets ?? []) {
        expect(t.rawSql, p.title).toMatch(/\$__timeInterval\(\w+\) AS time/);
        expect(t.rawSql, p.title).toMatch(/\$__timeFilter\(\w+\)/);
      }
  });

  it('the rule variable is read from ClickHouse (alerts and alerts_shadow), so a new rule needs no dashboard edit', () => {
    const withRule = dashboards.filter(({ dashboard }) => dashboard.templating.list.some((v) => v.name === 'rule'));
    expect(withRule.map((d) => d.dashboard.uid)).toEqual(expect.arrayContaining(['tillwatch-fleet', 'tillwatch-triage', 'tillwatch-rules']));
    for (const { dashboard } of withRule) {
      const rule = dashboard.templating.list.find((v) => v.name === 'rule')!;
      const where = `${dashboard.uid} $rule`;
      expect(rule.type, where).toBe('query');
      expect(rule.datasource, where).toEqual({ type: CLICKHOUSE_PLUGIN, uid: 'tillwatch-clickhouse' });
      // Refreshed with every refresh of the dashboard (2: on time range change, which a relative
      // range's auto-refresh is), so a new rule's alerts show on an open dashboard without a
      // reload; over all time: a range-bound list would drop rules whose open alerts were detected
      // before the range (the triage backlog panels).
      expect(rule.refresh, where).toBe(2);
      expect(rule.includeAll && rule.multi, where).toBe(true);
      expect(rule.allValue ?? '', `${where}: "All" must expand to the listed rules`).toBe('');
      expect(typeof rule.query, where).toBe('string');
      const sql = String(rule.query);
      expect(variablesIn(sql), `${where}: the variable query uses no variable`).toEqual([]);
      expect(tablesIn(sql).sort(), where).toEqual(['alerts', 'alerts_shadow']);
      for (const m of sql.matchAll(/\b(?:FROM|JOIN)\s+([^\s(]+)/gi)) expect(m[1], `${where}: FROM/JOIN ${m[1]}`).toMatch(/^tillwatch\.\w+$/);
    }
  });

  it('no variable hard-codes a rule id (its options or a custom list would hide a new rule until edited)', () => {
    for (const { dashboard } of dashboards)
      for (const v of dashboard.templating.list) {
        const listed = [...(v.type === 'custom' ? allValues(v) : []), ...(v.options ?? []).map((o) => o.value)];
        expect(listed.filter((x) => (RULE_IDS as readonly string[]).includes(x)), `${dashboard.uid} $${v.name}`).toEqual([]);
      }
    const fleet = dashboards.find((d) => d.dashboard.uid === 'tillwatch-fleet')!.dashboard;
    const severity = fleet.templating.list.find((v) => v.name === 'severity')!;
    expect(allValues(severity)).toEqual(['low', 'medium', 'high', 'critical']);
  });
});

describe('plugin macro expansion (grafana-clickhouse-datasource pkg/macros semantics)', () => {
  const ctx = { fromMs: 1_700_000_000_123, toMs: 1_700_003_600_999, intervalMs: 60_000 };

  it('expands the time macros to Unix-second DateTime bounds', () => {
    expect(expandMacros('WHERE $__timeFilter(detected_at)', ctx)).toBe('WHERE detected_at >= toDateTime(1700000000) AND detected_at <= toDateTime(1700003600)');
    expect(expandMacros('$__fromTime / $__toTime', ctx)).toBe('toDateTime(1700000000) / toDateTime(1700003600)');
    expect(expandMacros('$__timeFilter_ms(t) AND $__toTime_ms', ctx)).toBe(
      't >= fromUnixTimestamp64Milli(1700000000123) AND t <= fromUnixTimestamp64Milli(1700003600999) AND fromUnixTimestamp64Milli(1700003600999)',
    );
  });

  it('expands the interval macros with a floor of one second', () => {
    expect(expandMacros('$__timeInterval(minute) AS time', ctx)).toBe('toStartOfInterval(toDateTime(minute), INTERVAL 60 second) AS time');
    expect(expandMacros('x / $__interval_s', ctx)).toBe('x / 60');
    expect(expandMacros('$__interval_s', { ...ctx, intervalMs: 200 })).toBe('1');
    expect(expandMacros('$__timeInterval(toStartOfMinute(a.t))', ctx)).toBe('toStartOfInterval(toDateTime(toStartOfMinute(a.t)), INTERVAL 60 second)');
  });

  it('rejects macros it does not implement and bad argument counts', () => {
    expect(() => expandMacros('$__conditionalAll(x, $rule)', ctx)).toThrow(/not one the plugin defines/);
    expect(() => expandMacros('$__timeFilter(a, b)', ctx)).toThrow(/expects 1 argument/);
    expect(() => expandMacros('$__timeFilter(a', ctx)).toThrow(/unclosed/);
  });

  it('interpolates variables with explicit formats only', () => {
    expect(interpolateVariables("rule IN (${rule:singlequote})", { rule: ['a', "b'c"] })).toBe("rule IN ('a','b\\'c')");
    expect(interpolateVariables("m = ${merchant:sqlstring}", { merchant: "o'hara" })).toBe("m = 'o''hara'");
    // Grafana's quoting formats leave a backslash alone: a trailing one escapes the closing quote.
    expect(interpolateVariables('m = ${merchant:sqlstring}', { merchant: 'm1\\' })).toBe("m = 'm1\\'");
    // percentencode: only [A-Za-z0-9._~%-]; a multi-value variable is the encoded glob {a,b}.
    expect(interpolateVariables("m = '${merchant:percentencode}'", { merchant: "m1\\' OR 1=1 (*)!" })).toBe("m = 'm1%5C%27%20OR%201%3D1%20%28%2A%29%21'");
    expect(interpolateVariables("r = '${rule:percentencode}'", { rule: ['a', 'b_c'] })).toBe("r = '%7Ba%2Cb_c%7D'");
    expect(() => interpolateVariables('rule IN (${rule})', { rule: ['a'] })).toThrow(/no format/);
    expect(() => interpolateVariables('x = ${nope:singlequote}', {})).toThrow(/undefined dashboard variable/);
  });

  it('rewrites the dashboard database, and picks the query interval like Grafana', () => {
    expect(rewriteDatabase('FROM tillwatch.alerts AS a JOIN tillwatch.alert_status s', 'test_1')).toBe('FROM `test_1`.`alerts` AS a JOIN `test_1`.`alert_status` s');
    const panel = { id: 1, type: 'timeseries', title: 'x', interval: '1m' } as Panel;
    expect(queryIntervalMs(panel, 3 * 3_600_000)).toBe(60_000);
    expect(queryIntervalMs(panel, 7 * 86_400_000)).toBe(900_000);
    expect(queryIntervalMs({ ...panel, interval: undefined } as Panel, 3 * 3_600_000)).toBe(15_000);
  });
});

describe('Prometheus panels', () => {
  const promPanels = dashboards.flatMap(({ dashboard }) => queryPanels(dashboard).filter((p) => p.datasource?.type === 'prometheus'));

  it('the documented metric list is what @tillwatch/telemetry registers', async () => {
    const detector = createRegistry({ service: 'detector', defaultMetrics: false });
    createDetectorMetrics(detector);
    const sink = createRegistry({ service: 'sink', defaultMetrics: false });
    createSinkMetrics(sink);
    const registered = new Map<string, string>();
    for (const m of [...(await detector.getMetricsAsJSON()), ...(await sink.getMetricsAsJSON())]) registered.set(m.name, String(m.type));
    expect(Object.fromEntries([...registered].sort())).toEqual(Object.fromEntries(Object.entries(KNOWN_METRICS).sort()));
  });

  it('the documented api metric list is what the api registers', async () => {
    const api = createRegistry({ service: 'api', defaultMetrics: false });
    createApiMetrics(api);
    const registered = Object.fromEntries((await api.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]).sort());
    expect(registered).toEqual(Object.fromEntries(Object.entries(API_METRICS).sort()));
  });

  it('every expression uses only metrics the services export, with their real labels', async () => {
    // Process metrics (collectDefaultMetrics with prefix tillwatch_) come from prom-client itself.
    const withDefaults = createRegistry({ service: 'x' });
    const known: Record<string, MetricType> = { ...KNOWN_METRICS, ...API_METRICS };
    for (const m of await withDefaults.getMetricsAsJSON()) known[m.name] = String(m.type) as MetricType;

    expect(promPanels.length).toBeGreaterThanOrEqual(15);
    const used = new Set<string>();
    for (const p of promPanels)
      for (const t of p.targets ?? []) {
        const expr = t.expr ?? '';
        const names = metricNamesIn(expr);
        expect(names.length + (/\bup\b/.test(expr) ? 1 : 0), `panel "${p.title}" ${t.refId}: no metric in ${expr}`).toBeGreaterThan(0);
        for (const n of names) {
          expect(unknownSeries(n, known), `panel "${p.title}": ${expr}`).toBeUndefined();
          used.add(n.replace(/_(bucket|sum|count)$/, ''));
        }
        // Labels in by (...) must exist on a metric the expression reads.
        const available = new Set(['service', 'job', 'instance', ...names.flatMap((n) => [...(ALL_METRIC_LABELS[n.replace(/_(bucket|sum|count)$/, '')] ?? []), ...(n.endsWith('_bucket') ? ['le'] : [])])]);
        for (const m of expr.matchAll(/\bby\s*\(([^)]*)\)/g))
          for (const label of m[1]!.split(',').map((s) => s.trim()).filter(Boolean)) expect(available.has(label), `panel "${p.title}": by (${label}) in ${expr}`).toBe(true);
      }
    // The pipeline dashboard shows every stage metric at least once.
    expect([...Object.keys(KNOWN_METRICS)].filter((m) => !used.has(m))).toEqual([]);
  });

  it('rate windows use $__rate_interval, never a fixed window that breaks with the scrape interval', () => {
    for (const p of promPanels) for (const t of p.targets ?? []) for (const m of (t.expr ?? '').matchAll(/\[([^\]]+)\]/g)) expect(m[1], `panel "${p.title}"`).toBe('$__rate_interval');
  });
});
