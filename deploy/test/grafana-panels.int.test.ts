// Every ClickHouse panel of every dashboard in deploy/grafana/dashboards, run for real: the panel SQL
// gets what Grafana + grafana-clickhouse-datasource would do to it (variables, then plugin macros,
// see support/grafana.ts), the database name `tillwatch` is rewritten to a migrated test database
// (embedded chDB, or TEST_CLICKHOUSE_URL), and the query runs over known alerts, transactions,
// actions and triage rows. Checked per panel:
//   - it parses and runs against the real schema (schemas/clickhouse migrations);
//   - it returns the columns the panel uses: time series -> `time` (DateTime) first, then numeric
//     values, string columns only as series labels; stat -> a numeric column matching
//     options.reduceOptions.fields; table -> exactly the columns its `organize` transformation
//     names; byName overrides -> existing fields;
//   - it returns rows for the fixture data;
// and for several panels, the values (open gaps exclude resolved ones, filters by rule/merchant
// work, alerts-per-minute normalisation adds up whatever the bucket width, ...).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertUpdateId, type Action, type Alert, type AlertUpdate, type DeadLetter, type RefundReason, type Transaction } from '@tillwatch/schemas';
import {
  createBatchWriter,
  toActionRow,
  toAlertRow,
  toAlertTriageRow,
  toDeadLetterRow,
  toAlertUpdateRow,
  toRefundReasonRow,
  toTransactionRow,
  type AlertTriage,
} from '@tillwatch/clickhouse';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import {
  CLICKHOUSE_PLUGIN,
  SqlFormat,
  allValues,
  expandMacros,
  interpolateVariables,
  loadDashboards,
  queryIntervalMs,
  queryPanels,
  rewriteDatabase,
  type Dashboard,
  type Panel,
  type Target,
  type VariableValues,
} from './support/grafana.js';

// ---------------------------------------------------------------------------------------------
// Fixture data, relative to a recent whole hour (TTLs are on platform time: 90 days for
// transactions, 365 for the rest, so the rows must be recent or a merge could drop them).

const HOUR = 3_600_000;
const MIN = 60_000;
const T0 = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;

function alert(id: string, rule: string, severity: Alert['severity'], merchant: string, terminal: string, detectedMin: number, details: Record<string, number> = {}, evidence: string[] = [`ev-${id}`]): Alert {
  const detected = T0 + detectedMin * MIN;
  return {
    alert_id: id,
    rule,
    rule_version: 1,
    rules_version: 1,
    severity,
    terminal_id: terminal,
    merchant_id: merchant,
    card_token: null,
    event_ids: evidence,
    window_start: detected - 10 * MIN,
    window_end: detected - MIN,
    detected_at: detected,
    summary: `${rule} at ${terminal}`,
    details,
  };
}

const ALERTS: Alert[] = [
  // Evidence of the money alerts points at fixture transactions (the triage dashboard's money at risk).
  alert('a1', 'duplicate_charge', 'high', 'm1', 't1', 5, { amount_minor: 1250, gap_ms: 180_000 }, ['e-t1-3', 'e-t1-4']),
  alert('a2', 'abnormal_amount', 'medium', 'm1', 't2', 6, { ratio: 14.2 }),
  alert('a3', 'sync_lag', 'medium', 'm2', 't3', 7, { lag_ms: 1_200_000 }),
  // Three sequence gaps: a4 never triaged (open), a5 acknowledged (still open), a6 resolved.
  alert('a4', 'sequence_gap', 'high', 'm2', 't3', 8, { missing_from: 41, missing_to: 43, missing_count: 3 }),
  alert('a5', 'sequence_gap', 'high', 'm1', 't1', 9, { missing_from: 100, missing_to: 100, missing_count: 1 }),
  alert('a6', 'sequence_gap', 'high', 'm1', 't2', 10, { missing_from: 7, missing_to: 9, missing_count: 3 }),
  alert('a7', 'refund_without_sale', 'critical', 'm2', 't3', 11, { amount_minor: 9900, sale_not_found: 1 }, ['e-t3-99']),
  // a8 carries its own money (the engine fills currency and amount_minor): it beats the evidence's 1005 GBP.
  { ...alert('a8', 'refund_exceeds_sale', 'high', 'm1', 't1', 12, { sale_amount_minor: 5000, refunded_total_minor: 7000, refund_amount_minor: 4000, excess_minor: 2000 }, ['e-t2-5']), currency: 'GBP', amount_minor: 4000 },
  // A fleet alert of the second stage (packages/stage core.ts): terminal_id and merchant_id are the
  // fleet pseudo-id '*', not a terminal or a merchant. Still open (no closing update).
  alert('a9', 'sync_incident', 'critical', '*', '*', 14, { terminals: 12, merchants: 2 }, ['e-t1-14', 'e-t3-3']),
];
/** A shadow alert of a rule no dashboard names and that has no active alert (a rule just added). */
const SHADOW_ONLY: Alert = alert('s1', 'new_rule_in_shadow', 'low', 'm1', 't2', 13);

function action(id: string, kind: Action['kind'], target: Action['target_type'], a: Alert, expiresAfterMin: number | null): Action {
  return {
    action_id: id,
    kind,
    target_type: target,
    target_id: target === 'TERMINAL' ? a.terminal_id : target === 'MERCHANT' ? a.merchant_id : `txn-${a.alert_id}`,
    merchant_id: a.merchant_id,
    terminal_id: a.terminal_id,
    alert_id: a.alert_id,
    rule: a.rule,
    reason: `${a.rule}@1: ${a.summary}`,
    issued_at: a.detected_at,
    expires_at: expiresAfterMin === null ? null : a.detected_at + expiresAfterMin * MIN,
  };
}

const byId = (id: string): Alert => ALERTS.find((a) => a.alert_id === id)!;
const ACTIONS: Action[] = [
  action('ac1', 'FREEZE_TERMINAL', 'TERMINAL', byId('a1'), null), // in force until lifted
  action('ac2', 'HOLD_SETTLEMENT', 'MERCHANT', byId('a8'), 30), // expired 30 min after issue
  action('ac3', 'REVIEW_REFUND', 'TRANSACTION', byId('a7'), 24 * 60),
  action('ac4', 'NOTIFY_MERCHANT', 'MERCHANT', byId('a7'), null),
];

const TRIAGE: AlertTriage[] = [
  { alert_id: 'a5', status: 'acknowledged', actor: 'risk-1', note: 'looking', at: T0 + 20 * MIN },
  { alert_id: 'a6', status: 'acknowledged', actor: 'risk-1', note: '', at: T0 + 20 * MIN },
  { alert_id: 'a6', status: 'resolved', actor: 'risk-2', note: 'terminal re-sent 7-9', at: T0 + 40 * MIN },
  { alert_id: 'a2', status: 'false_positive', actor: 'risk-1', note: 'catering order', at: T0 + 30 * MIN },
];

function txn(i: number, terminal: string, merchant: string, receivedMin: number, lagMs: number, over: Partial<Transaction> = {}): Transaction {
  const received = T0 + receivedMin * MIN + i;
  return {
    event_id: `e-${terminal}-${i}`,
    txn_id: `x-${terminal}-${i}`,
    kind: 'SALE',
    status: 'APPROVED',
    terminal_id: terminal,
    merchant_id: merchant,
    card_token: `tok-${i % 7}`,
    amount_minor: 1000 + i,
    currency: 'EUR',
    terminal_seq: i,
    original_txn_id: null,
    event_time: received - lagMs,
    received_time: received,
    ...over,
  };
}

const TRANSACTIONS: Transaction[] = [
  ...Array.from({ length: 30 }, (_, i) => txn(i, 't1', 'm1', i, 800 + 10 * i)),
  ...Array.from({ length: 30 }, (_, i) => txn(i, 't2', 'm1', i, 1500, i % 10 === 0 ? { status: 'DECLINED' } : i === 5 ? { currency: 'GBP' } : {})),
  // t3 uploads a 20-minute-old backlog at minute 15.
  ...Array.from({ length: 10 }, (_, i) => txn(i, 't3', 'm2', 15, 20 * MIN)),
  txn(99, 't3', 'm2', 16, 500, { kind: 'REFUND', original_txn_id: 'x-unknown', amount_minor: 9900 }),
];

function deadLetter(errorClass: string, stage: string, topic: string, offset: number, failedMin: number, reason: string): DeadLetter {
  return { reason, error_class: errorClass, stage, source_topic: topic, source_partition: 0, source_offset: offset, key: Buffer.from('m1'), value: Buffer.from([0, 1, 2]), failed_at: T0 + failedMin * MIN };
}

const DEAD_LETTERS: DeadLetter[] = [
  deadLetter('UndecodableRecord', 'detector.decode', 'pos.transactions.v1', 10, 3, 'magic byte 0x7b is not 0'),
  deadLetter('UndecodableRecord', 'detector.decode', 'pos.transactions.v1', 11, 4, 'unknown schema id 99'),
  deadLetter('ValueOutOfColumnRange', 'sink.write', 'pos.alerts.v1', 7, 6, 'detected_at 3000-01-01 is outside DateTime64'),
];

// Money trail (migration 009): a1 (duplicate charge, detected minute 5) refunded at minute 8,
// a3 (sync lag, minute 7) closed episode_ended at minute 37, a4 (sequence gap, minute 8) filled at
// minute 10; a6 stays closed by an analyst, the rest open. Refund reasons in EUR, JPY, KWD and an
// unknown code; r2 is stored twice (a replay).
function update(a: Alert, resolution: AlertUpdate['resolution'], atMin: number): AlertUpdate {
  return {
    update_id: alertUpdateId(a.alert_id, 'auto_resolved', resolution, [`res-${a.alert_id}`]), alert_id: a.alert_id, rule: a.rule, rule_version: 1, terminal_id: a.terminal_id, merchant_id: a.merchant_id,
    status: 'auto_resolved', resolution, resolved_by_event_ids: [`res-${a.alert_id}`], resolved_at: T0 + atMin * MIN, summary: `${resolution}`, details: {},
  };
}
const UPDATES: AlertUpdate[] = [update(byId('a1'), 'refunded', 8), update(byId('a3'), 'episode_ended', 37), update(byId('a4'), 'gap_filled', 10)];
function reason(id: string, r: RefundReason['reason'], amount: number, currency: string, merchant: string, atMin: number): RefundReason {
  return {
    event_id: id, txn_id: `tx-${id}`, original_txn_id: `sale-${id}`, kind: 'REFUND', reason: r, merchant_id: merchant, terminal_id: 't1', amount_minor: amount, currency,
    event_time: T0 + atMin * MIN - 1000, received_time: T0 + atMin * MIN, alert_id: null,
  };
}
const REASONS: RefundReason[] = [
  reason('r1', 'duplicate_charge', 1250, 'EUR', 'm1', 8),
  reason('r2', 'sync_failure', 2500, 'EUR', 'm1', 20),
  reason('r3', 'sync_failure', 1000, 'EUR', 'm2', 21),
  reason('r4', 'sync_failure', 1500, 'JPY', 'm2', 22),
  reason('r5', 'ordinary', 1250, 'KWD', 'm1', 23),
  reason('r6', 'no_sale', 99, 'ABC', 'm2', 24),
];

// Action governor (migration 012): the decisions about a2's and a3's proposed actions; one stored
// twice (a redelivery).
function decision(id: string, a: Alert, kind: string, decision: 'issued' | 'suppressed' | 'downgraded', reason: string, atMin: number, incident: string | null = null) {
  return {
    decision_id: id, action_id: id, kind, final_action_id: decision === 'suppressed' ? null : `${id}-final`, final_kind: decision === 'suppressed' ? null : decision === 'downgraded' ? 'REVIEW_REFUND' : kind,
    alert_id: a.alert_id, rule: a.rule, terminal_id: a.terminal_id, merchant_id: a.merchant_id, target_type: 'TERMINAL', target_id: a.terminal_id, decision, reason, incident_id: incident,
    decided_at: new Date(T0 + atMin * MIN).toISOString().replace('T', ' ').replace('Z', ''),
  };
}
const DECISIONS = [
  decision('d1', byId('a2'), 'FREEZE_TERMINAL', 'issued', 'policy', 6),
  decision('d2', byId('a2'), 'FREEZE_CARD', 'downgraded', 'freeze_cap_fleet', 6),
  decision('d3', byId('a3'), 'NOTIFY_MERCHANT', 'suppressed', 'fleet_incident', 7, 'inc-1'),
];

// ---------------------------------------------------------------------------------------------

let t: TestClickHouse;

async function write<Row extends object>(table: string, rows: Row[]): Promise<void> {
  const w = createBatchWriter<Row>({ ch: t.ch, table, maxRows: 100_000, maxDelayMs: 60_000 });
  for (const r of rows) await w.add(r);
  await w.close();
}

beforeAll(async () => {
  t = await createTestClickHouse({ migrate: true });
  await write('transactions', TRANSACTIONS.map(toTransactionRow));
  await write('alerts', ALERTS.map(toAlertRow));
  await write('actions', ACTIONS.map(toActionRow));
  await write('alert_triage', TRIAGE.map(toAlertTriageRow));
  await write('dead_letters', DEAD_LETTERS.map(toDeadLetterRow));
  await write('alert_updates', UPDATES.map(toAlertUpdateRow));
  await write('refund_reasons', [...REASONS, REASONS[1]!].map(toRefundReasonRow));
  await write('action_decisions', [...DECISIONS, DECISIONS[2]!]);
  // Shadow alerts for the rules dashboard (tillwatch-rules.json): a few of the same alerts, and
  // one from a rule in shadow only (no active alert), which the rule variable must list too.
  await write('alerts_shadow', [...ALERTS.slice(0, 3), SHADOW_ONLY].map(toAlertRow));
  // Query variables: what Grafana gets when the dashboard loads (their stored options are empty).
  for (const { dashboard } of loadDashboards())
    for (const v of dashboard.templating.list.filter((x) => x.type === 'query' && x.datasource?.type === CLICKHOUSE_PLUGIN)) {
      const sql = rewriteDatabase(expandMacros(String(v.query), { ...RANGE_3H, intervalMs: 60_000 }), t.database);
      const rs = await t.ch.client.query({ query: sql, format: 'JSONCompact' });
      queryVariableValues.set(`${dashboard.uid}/${v.name}`, (await rs.json<[string]>()).data.map((row) => row[0]));
    }
});

afterAll(async () => {
  await t?.dispose();
});

interface JsonResult {
  meta: Array<{ name: string; type: string }>;
  data: Array<Record<string, unknown>>;
  rows: number;
}

interface Range {
  fromMs: number;
  toMs: number;
}

/** Range that holds all fixture data: 3 h around it (query interval 60 s: panels' 1m minimum). */
const RANGE_3H: Range = { fromMs: T0 - HOUR, toMs: T0 + 2 * HOUR };
/** A week ending after the data (query interval 15 min): bucket arithmetic with wide buckets. */
const RANGE_7D: Range = { fromMs: T0 + 2 * HOUR - 7 * 24 * HOUR, toMs: T0 + 2 * HOUR };

/** The values a query variable's query returned for the fixture data, by `dashboard uid/name`. */
const queryVariableValues = new Map<string, string[]>();

function defaultVariables(d: Dashboard): VariableValues {
  const values: VariableValues = {};
  for (const v of d.templating.list) {
    if (v.type === 'custom' && v.includeAll) values[v.name] = allValues(v);
    else if (v.type === 'query' && v.includeAll && queryVariableValues.has(`${d.uid}/${v.name}`)) values[v.name] = queryVariableValues.get(`${d.uid}/${v.name}`)!;
    else if (v.type === 'textbox') values[v.name] = String(v.query ?? '');
    else throw new Error(`variable ${v.name} of type ${v.type}: add its default to the test`);
  }
  return values;
}

function panelSql(panel: Panel, target: Target, vars: VariableValues, range: Range): string {
  const interpolated = interpolateVariables(target.rawSql ?? '', vars);
  const expanded = expandMacros(interpolated, { ...range, intervalMs: queryIntervalMs(panel, range.toMs - range.fromMs) });
  return rewriteDatabase(expanded, t.database);
}

async function run(panel: Panel, target: Target, vars: VariableValues, range: Range = RANGE_3H): Promise<JsonResult> {
  const query = panelSql(panel, target, vars, range);
  try {
    const rs = await t.ch.client.query({ query, format: 'JSON' });
    const r = await rs.json<Record<string, unknown>>();
    return { meta: r.meta ?? [], data: r.data, rows: r.rows ?? r.data.length };
  } catch (e) {
    throw new Error(`panel "${panel.title}" failed: ${(e as Error).message}\n--- SQL sent ---\n${query}`);
  }
}

const isNumeric = (type: string) => /^(Nullable\()?(U?Int\d+|Float\d+|Decimal)/.test(type);
const isTime = (type: string) => /^(Nullable\()?DateTime/.test(type);
const isString = (type: string) => /^(Nullable\()?(LowCardinality\()?(String|Enum)/.test(type);

function regexFromGrafana(s: string): RegExp {
  const m = /^\/(.*)\/([a-z]*)$/.exec(s);
  return m ? new RegExp(m[1]!, m[2]) : new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

function organizeColumns(panel: Panel): { indexByName: Record<string, number>; renameByName: Record<string, string> } | undefined {
  const o = panel.transformations?.find((tr) => tr.id === 'organize');
  if (!o) return undefined;
  return {
    indexByName: (o.options['indexByName'] ?? {}) as Record<string, number>,
    renameByName: (o.options['renameByName'] ?? {}) as Record<string, string>,
  };
}

function checkShape(panel: Panel, target: Target, r: JsonResult): void {
  const cols = r.meta.map((c) => c.name);
  const where = `panel "${panel.title}" columns ${JSON.stringify(r.meta)}`;
  const overrides = (panel.fieldConfig?.overrides ?? []).filter((o) => o.matcher.id === 'byName').map((o) => String(o.matcher.options));

  if (target.format === SqlFormat.TimeSeries) {
    expect(panel.type, where).toBe('timeseries');
    expect(r.meta[0]?.name, `${where}: first column must be "time"`).toBe('time');
    expect(isTime(r.meta[0]!.type), `${where}: time column must be DateTime`).toBe(true);
    const rest = r.meta.slice(1);
    const values = rest.filter((c) => isNumeric(c.type));
    const labels = rest.filter((c) => !isNumeric(c.type));
    expect(values.length, `${where}: needs a numeric value column`).toBeGreaterThan(0);
    for (const l of labels) expect(isString(l.type), `${where}: ${l.name} is neither a value nor a string label`).toBe(true);
    // Long format (with label columns) is pivoted by Grafana; fields then get generated names, so
    // byName overrides only make sense on wide results.
    if (labels.length === 0) for (const name of overrides) expect(cols, `${where}: override byName "${name}"`).toContain(name);
    else expect(overrides, `${where}: byName overrides on a long-format series`).toEqual([]);
    return;
  }

  expect(target.format, where).toBe(SqlFormat.Table);
  if (panel.type === 'stat') {
    const reduce = (panel.options?.['reduceOptions'] ?? {}) as { fields?: string };
    expect(reduce.fields, `${where}: stat panels name their field`).toBeTruthy();
    const re = regexFromGrafana(reduce.fields!);
    const matched = r.meta.filter((c) => re.test(c.name));
    expect(matched.length, `${where}: reduceOptions.fields ${reduce.fields} matches no column`).toBeGreaterThan(0);
    for (const c of matched) expect(isNumeric(c.type), `${where}: ${c.name} is not numeric`).toBe(true);
    return;
  }
  if (panel.type === 'table') {
    const org = organizeColumns(panel);
    expect(org, `${where}: tables list their columns in an organize transformation`).toBeDefined();
    expect([...cols].sort(), `${where}: columns vs organize.indexByName`).toEqual(Object.keys(org!.indexByName).sort());
    expect(Object.keys(org!.renameByName).sort(), `${where}: every column has a display name`).toEqual([...cols].sort());
    const displayNames = Object.values(org!.renameByName);
    for (const name of overrides) expect(displayNames, `${where}: override byName "${name}"`).toContain(name);
    const sortBy = ((panel.options?.['sortBy'] ?? []) as Array<{ displayName: string }>).map((s) => s.displayName);
    for (const name of sortBy) expect(displayNames, `${where}: sortBy "${name}"`).toContain(name);
    return;
  }
  throw new Error(`${where}: panel type ${panel.type} not covered by this test`);
}

// ---------------------------------------------------------------------------------------------

const dashboards = loadDashboards();
const withClickHouse = dashboards.filter(({ dashboard }) => queryPanels(dashboard).some((p) => p.datasource?.type === CLICKHOUSE_PLUGIN));

describe('Grafana ClickHouse panels against the migrated schema', () => {
  it('there are ClickHouse dashboards to check', () => {
    expect(withClickHouse.map((d) => d.file)).toContain('tillwatch-fleet-overview.json');
  });

  for (const { file, dashboard } of withClickHouse) {
    describe(file, () => {
      const panels = queryPanels(dashboard).filter((p) => p.datasource?.type === CLICKHOUSE_PLUGIN);
      for (const panel of panels) {
        it(`"${panel.title}" runs and returns the columns the panel uses`, async () => {
          const vars = defaultVariables(dashboard);
          for (const target of panel.targets ?? []) {
            const r = await run(panel, target, vars);
            checkShape(panel, target, r);
            expect(r.rows, `panel "${panel.title}" returned no rows for the fixture data`).toBeGreaterThan(0);
            if (target.format === SqlFormat.TimeSeries) {
              // Wide buckets too (a week: 15-minute interval).
              const wide = await run(panel, target, vars, RANGE_7D);
              checkShape(panel, target, wide);
              expect(wide.rows).toBeGreaterThan(0);
            }
          }
        });
      }
    });
  }
});

// Values a user can type or put in a URL (var-merchant=...): quotes, a trailing backslash, comment
// and statement tricks, a comma and braces (the glob separators of a multi-value variable), UTF-8.
const HOSTILE = ['m1\\', "m1'", "m1' OR '1'='1", "\\' OR 1=1 --", 'a,b', '{m1}', '%27', 'caf\u00e9 \u6771\u4eac', "'; DROP TABLE alerts; --"];

describe('template variables with hostile values (every ClickHouse panel)', () => {
  for (const { file, dashboard } of withClickHouse) {
    const panels = queryPanels(dashboard).filter((p) => p.datasource?.type === CLICKHOUSE_PLUGIN);
    it(`${file}: every panel runs with each value in every variable, and matches nothing`, async () => {
      const defaults = defaultVariables(dashboard);
      for (const value of HOSTILE) {
        for (const name of Object.keys(defaults)) {
          const vars = { ...defaults, [name]: Array.isArray(defaults[name]) ? [value] : value };
          for (const panel of panels)
            for (const target of panel.targets ?? []) {
              if (!(target.rawSql ?? '').includes(`\${${name}:`)) continue;
              const r = await run(panel, target, vars);
              // Filtered panels return no row, or only zeros: no fixture id equals these values.
              const numbers = r.data.flatMap((row) => r.meta.filter((c) => /Int|Float|Decimal/.test(c.type)).map((c) => Number(row[c.name] ?? 0)));
              expect(numbers.every((n) => n === 0), `panel "${panel.title}" with ${name}=${JSON.stringify(value)} matched rows: ${JSON.stringify(r.data).slice(0, 300)}`).toBe(true);
            }
        }
      }
    });
  }
});

describe('rule variable (read from ClickHouse)', () => {
  it('lists every rule with an active or a shadow alert, including one no dashboard names, and "All" shows its alerts', async () => {
    const expected = [...new Set([...ALERTS, SHADOW_ONLY].map((a) => a.rule))].sort();
    for (const uid of ['tillwatch-fleet', 'tillwatch-triage', 'tillwatch-rules']) expect(queryVariableValues.get(`${uid}/rule`), uid).toEqual(expected);
    const rules = dashboards.find((d) => d.dashboard.uid === 'tillwatch-rules')!.dashboard;
    const p = queryPanels(rules).find((x) => x.title === 'Active vs shadow alerts per rule')!;
    const r = await run(p, p.targets![0]!, defaultVariables(rules));
    const byRule = Object.fromEntries(r.data.map((row) => [row['rule'], [Number(row['active']), Number(row['shadow'])]]));
    expect(byRule['new_rule_in_shadow']).toEqual([0, 1]);
    expect(byRule['duplicate_charge']).toEqual([1, 1]);
    expect(Object.keys(byRule).sort()).toEqual(expected);
  });
});

describe('fleet overview values', () => {
  const fleet = dashboards.find((d) => d.dashboard.uid === 'tillwatch-fleet')!.dashboard;
  const panel = (title: string): Panel => {
    const p = queryPanels(fleet).find((x) => x.title === title);
    if (!p) throw new Error(`no panel "${title}"`);
    return p;
  };
  const query = async (title: string, vars: Partial<VariableValues> = {}, range: Range = RANGE_3H) => {
    const p = panel(title);
    return run(p, p.targets![0]!, { ...defaultVariables(fleet), ...vars } as VariableValues, range);
  };
  const single = async (title: string, column: string, vars: Partial<VariableValues> = {}) => (await query(title, vars)).data[0]?.[column];

  it('alert counts follow the rule, severity and merchant variables', async () => {
    // The fleet alert a9 is an alert (counted), but '*' is not a terminal.
    expect(await single('Alerts in range', 'alerts')).toBe(9);
    expect(await single('Alerts in range', 'alerts', { rule: ['sequence_gap'] })).toBe(3);
    expect(await single('Alerts in range', 'alerts', { severity: ['medium', 'critical'] })).toBe(4);
    expect(await single('Alerts in range', 'alerts', { merchant: 'm2' })).toBe(3);
    expect(await single('Critical alerts in range', 'critical')).toBe(2);
    expect(await single('Terminals alerting in range', 'terminals')).toBe(3);
    expect(await single('Terminals alerting in range', 'terminals', { rule: ['sync_incident'] })).toBe(0);
    expect(await single('Actions issued in range', 'actions')).toBe(4);
  });

  it('a merchant id with a quote or a backslash is data: it neither breaks the query nor injects into it', async () => {
    expect(await single('Alerts in range', 'alerts', { merchant: "m1' OR '1'='1" })).toBe(0);
    expect(await single('Alerts in range', 'alerts', { merchant: 'm1\\' })).toBe(0);
    expect(await single('Alerts in range', 'alerts', { merchant: "m1\\' OR 1=1 OR '" })).toBe(0);
    expect(await single('Alerts in range', 'alerts', { rule: ["sequence_gap') OR ('1'='1", 'x\\'] })).toBe(0);
    // The same ids, exact: a percent-encoded value decodes back to what was typed.
    expect(await single('Alerts in range', 'alerts', { merchant: 'm1' })).toBe(5);
    expect(await single('Alerts in range', 'alerts', { rule: ['sequence_gap'] })).toBe(3);
  });

  it('open sequence gaps exclude resolved ones and filled ones (gap_filled by the end of the range), keep acknowledged ones, follow the merchant', async () => {
    // a6 resolved by an analyst; a4 filled by an alert update (gap_filled, minute 10): auto-resolved,
    // as the API and the triage dashboard say; a5 acknowledged, still open.
    const gaps = async (vars: Partial<VariableValues> = {}, range: Range = RANGE_3H) =>
      (await query('Open sequence gaps by terminal', vars, range)).data.map((r) => [r['alert_id'], r['status'], r['missing_from'], r['missing_to'], r['missing_count']]);
    const count = async (vars: Partial<VariableValues> = {}, range: Range = RANGE_3H) => (await query('Open sequence gaps', vars, range)).data[0]?.['open_gaps'];
    expect(await count()).toBe(1);
    expect(await gaps()).toEqual([['a5', 'acknowledged', 100, 100, 1]]);
    // A range ending before the fill (minute 9.5): a4 was still open then.
    const beforeFill: Range = { fromMs: T0 - HOUR, toMs: T0 + 9 * MIN + 30_000 };
    expect(await count({}, beforeFill)).toBe(2);
    expect(await gaps({}, beforeFill)).toEqual([
      ['a5', 'acknowledged', 100, 100, 1],
      ['a4', 'open', 41, 43, 3],
    ]);
    // The stat follows the merchant variable as the table does (a4 is m2's, a5 m1's).
    expect(await count({ merchant: 'm2' })).toBe(0);
    expect(await count({ merchant: 'm2' }, beforeFill)).toBe(1);
    expect(await count({ merchant: 'm1' })).toBe(1);
    expect(await gaps({ merchant: 'm2' }, beforeFill)).toEqual([['a4', 'open', 41, 43, 3]]);
  });

  it('alerts per minute add up to the alert count whatever the bucket width', async () => {
    for (const range of [RANGE_3H, RANGE_7D]) {
      const p = panel('Alerts per minute by rule and severity');
      const r = await run(p, p.targets![0]!, defaultVariables(fleet), range);
      const bucketMinutes = queryIntervalMs(p, range.toMs - range.fromMs) / MIN;
      const total = r.data.reduce((s, row) => s + Number(row['alerts_per_minute']) * bucketMinutes, 0);
      expect(total).toBeCloseTo(ALERTS.length, 6);
    }
  });

  it('alerts per minute and refund anomalies follow the merchant variable (the rollup has no merchant: the panels read alerts then)', async () => {
    const sum = async (title: string, column: string, vars: Partial<VariableValues>, range: Range) => {
      const p = panel(title);
      const r = await query(title, vars, range);
      const bucketMinutes = column === 'alerts_per_minute' ? queryIntervalMs(p, range.toMs - range.fromMs) / MIN : 1;
      return r.data.reduce((s, row) => s + Number(row[column]) * bucketMinutes, 0);
    };
    for (const range of [RANGE_3H, RANGE_7D]) {
      for (const m of ['m1', 'm2']) {
        const mine = ALERTS.filter((a) => a.merchant_id === m);
        expect(await sum('Alerts per minute by rule and severity', 'alerts_per_minute', { merchant: m }, range)).toBeCloseTo(mine.length, 6);
        expect(await sum('Alerts per minute by rule and severity', 'alerts_per_minute', { merchant: m, rule: ['sequence_gap'] }, range)).toBeCloseTo(mine.filter((a) => a.rule === 'sequence_gap').length, 6);
        expect(await sum('Refund anomalies', 'alerts', { merchant: m }, range)).toBe(mine.filter((a) => a.rule.startsWith('refund_')).length);
      }
      expect(await sum('Refund anomalies', 'alerts', {}, range)).toBe(2);
    }
    // The same series names and buckets from either source: m1's and m2's add up to the fleet's,
    // less the fleet alert (merchant '*').
    const fleetWide = await query('Alerts per minute by rule and severity');
    const perMerchant = [...(await query('Alerts per minute by rule and severity', { merchant: 'm1' })).data, ...(await query('Alerts per minute by rule and severity', { merchant: 'm2' })).data];
    const key = (row: Record<string, unknown>) => `${String(row['time'])} ${String(row['series'])}`;
    expect(perMerchant.map(key).sort()).toEqual(fleetWide.data.filter((row) => !String(row['series']).startsWith('sync_incident')).map(key).sort());
  });

  it("top terminals and merchants rank by alert count, without the fleet pseudo-id '*'", async () => {
    const terms = await query('Top terminals by alerts');
    expect(terms.data[0]).toMatchObject({ terminal_id: 't1', merchant: 'm1', alerts: 3 });
    expect(terms.data.map((r) => [r['terminal_id'], r['alerts']])).toEqual([
      ['t1', 3],
      ['t3', 3],
      ['t2', 2],
    ]);
    const merchants = await query('Top merchants by alerts');
    expect(merchants.data.map((r) => [r['merchant_id'], r['alerts'], r['terminals'], r['actions']])).toEqual([
      ['m1', 5, 2, 2],
      ['m2', 3, 1, 2],
    ]);
    expect((await query('Top terminals by alerts', { rule: ['sync_incident'] })).data).toEqual([]);
    expect((await query('Top merchants by alerts', { rule: ['sync_incident'] })).data).toEqual([]);
  });

  it('top merchants: the actions column follows the rule variable as the alert columns do', async () => {
    // ac1 comes from a1 (duplicate_charge, m1), ac2 from a8 (refund_exceeds_sale, m1), ac3 and ac4 from a7 (refund_without_sale, m2).
    const rows = async (rule: string[]) => (await query('Top merchants by alerts', { rule })).data.map((r) => [r['merchant_id'], r['alerts'], r['actions']]);
    expect(await rows(['duplicate_charge'])).toEqual([['m1', 1, 1]]);
    expect(await rows(['refund_without_sale'])).toEqual([['m2', 1, 2]]);
    expect(await rows(['abnormal_amount'])).toEqual([['m1', 1, 0]]);
  });

  it('sync lag percentiles see the 20-minute backlog', async () => {
    const r = await query('Sync lag percentiles (received − event time)');
    expect(Math.max(...r.data.map((row) => Number(row['max'])))).toBe(1200);
    const lagging = await query('Most lagging terminals');
    expect(lagging.data[0]).toMatchObject({ terminal_id: 't3', merchant_id: 'm2', max_lag_s: 1200, events: 11 });
  });

  it('refund anomalies list both refund rules with the amount behind them', async () => {
    const r = await query('Latest refund anomalies');
    expect(r.data.map((row) => [row['rule'], row['refund_minor'], row['excess_minor'], row['refund'], row['excess']])).toEqual([
      // a8 carries its currency: money in major units; a7 (written without one) stays in minor units, said so.
      ['refund_exceeds_sale', 4000, 2000, '40.00 GBP', '20.00 GBP'],
      ['refund_without_sale', 9900, 0, '9900 (minor units)', '0 (minor units)'],
    ]);
  });

  it('freezes in force at the end of the range skip expired holds', async () => {
    const r = await query('Freezes and holds in force at end of range');
    expect(r.data.map((row) => [row['kind'], row['target_id']])).toEqual([['FREEZE_TERMINAL', 't1']]);
  });
});

describe('triage dashboard values', () => {
  const triage = dashboards.find((d) => d.dashboard.uid === 'tillwatch-triage')!.dashboard;
  const query = async (title: string, vars: Partial<VariableValues> = {}, range: Range = RANGE_3H) => {
    const p = queryPanels(triage).find((x) => x.title === title);
    if (!p) throw new Error(`no panel "${title}"`);
    return run(p, p.targets![0]!, { ...defaultVariables(triage), ...vars } as VariableValues, range);
  };

  it('backlog: open and acknowledged per rule, and the age of the oldest open alert at the end of the range', async () => {
    // a5 acknowledged, a6 resolved, a2 false positive; of the six never triaged, events resolved
    // a1 (refunded, minute 8), a4 (gap filled, minute 10) and a3 (episode ended, minute 37); the
    // fleet incident a9 is open.
    expect((await query('Backlog')).data[0]).toMatchObject({ open: 3, acknowledged: 1 });
    const byRule = (await query('Backlog by rule')).data.map((r) => [r['rule'], r['open'], r['acknowledged']]);
    expect(byRule).toEqual([
      ['refund_exceeds_sale', 1, 0],
      ['refund_without_sale', 1, 0],
      ['sequence_gap', 0, 1],
      ['sync_incident', 1, 0],
    ]);
    // a7, detected at T0+11 min; the range ends at T0+2 h.
    expect((await query('Oldest open alert')).data[0]?.['oldest_open_age_s']).toBe(2 * 3600 - 11 * 60);
    expect((await query('Backlog', { merchant: 'm2' })).data[0]).toMatchObject({ open: 1, acknowledged: 0 });
    expect((await query('Backlog', { rule: ['abnormal_amount'] })).data[0]).toMatchObject({ open: 0, acknowledged: 0 });
  });

  it('backlog: an alert is open until the update that resolves it, at the end of the range', async () => {
    // Range ending at T0+30 min: a1 and a4 are resolved by then, a3's episode ends only at minute 37.
    const early = { fromMs: T0, toMs: T0 + 30 * MIN };
    expect((await query('Backlog', {}, early)).data[0]).toMatchObject({ open: 4, acknowledged: 1 });
    expect((await query('Oldest open alert', {}, early)).data[0]?.['oldest_open_age_s']).toBe(30 * 60 - 7 * 60);
  });

  it('false-positive rate per rule = false positives / closed alerts; nothing closed -> no rate', async () => {
    const rows = (await query('False-positive rate by rule')).data;
    const byRule = Object.fromEntries(rows.map((r) => [r['rule'], [r['alerts'], r['closed'], r['false_positives'], r['false_positive_rate']]]));
    expect(byRule['abnormal_amount']).toEqual([1, 1, 1, 1]);
    expect(byRule['sequence_gap']).toEqual([3, 1, 0, 0]);
    expect(byRule['duplicate_charge']).toEqual([1, 0, 0, null]);
    expect(rows[0]?.['rule']).toBe('abnormal_amount');
  });

  it('money at risk per currency sums the open money alerts: their own amount, else the largest evidence transaction; as money', async () => {
    const rows = (await query('Money at risk per currency (open alerts)')).data.map((r) => [r['currency'], r['open_alerts'], r['at_risk_minor'], r['largest_minor'], r['at_risk'], r['largest'], r['rules']]);
    // EUR: a7 (no own amount: its refund transaction, 9900); GBP: a8 (its own 4000, not the evidence's 1005).
    // a1 was auto-resolved (refunded) by an alert update, a2 is a false positive.
    expect(rows).toEqual([
      ['EUR', 1, 9900, 9900, '99.00 EUR', '99.00 EUR', 'refund_without_sale'],
      ['GBP', 1, 4000, 4000, '40.00 GBP', '40.00 GBP', 'refund_exceeds_sale'],
    ]);
    const m2 = (await query('Money at risk per currency (open alerts)', { merchant: 'm2' })).data.map((r) => [r['currency'], r['at_risk_minor']]);
    expect(m2).toEqual([['EUR', 9900]]);
    const largest = (await query('Largest open alerts by amount')).data.map((r) => [r['alert_id'], r['amount_minor'], r['amount']]);
    expect(largest).toEqual([
      ['a7', 9900, '99.00 EUR'],
      ['a8', 4000, '40.00 GBP'],
    ]);
    // Before the update resolved a1 (range ending at minute 7), it is open again, at its evidence's 1004.
    const before = (await query('Largest open alerts by amount', {}, { fromMs: T0 - HOUR, toMs: T0 + 7 * MIN })).data.map((r) => [r['alert_id'], r['amount']]);
    expect(before).toEqual([['a1', '10.04 EUR']]);
  });

  it('dead letters: counted by reason class and stage, with the latest first', async () => {
    const byReason = (await query('Dead letters by reason')).data.map((r) => [r['error_class'], r['stage'], r['dead_letters'], r['latest_reason']]);
    expect(byReason).toEqual([
      ['UndecodableRecord', 'detector.decode', 2, 'unknown schema id 99'],
      ['ValueOutOfColumnRange', 'sink.write', 1, 'detected_at 3000-01-01 is outside DateTime64'],
    ]);
    const latest = (await query('Latest dead letters')).data.map((r) => [r['error_class'], r['source_offset']]);
    expect(latest).toEqual([
      ['ValueOutOfColumnRange', 7],
      ['UndecodableRecord', 11],
      ['UndecodableRecord', 10],
    ]);
  });
});

describe('money trail values', () => {
  const trail = dashboards.find((d) => d.dashboard.uid === 'tillwatch-money-trail')!.dashboard;
  const query = async (title: string, vars: Partial<VariableValues> = {}) => {
    const p = queryPanels(trail).find((x) => x.title === title);
    if (!p) throw new Error(`no panel "${title}"`);
    return run(p, p.targets![0]!, { ...defaultVariables(trail), ...vars } as VariableValues);
  };

  it('open vs auto-resolved per rule: an update resolves, an analyst closes, the rest is open', async () => {
    const r = await query('Open vs auto-resolved per rule');
    const byRule = Object.fromEntries(r.data.map((row) => [row['rule'], [row['alerts'], row['open'], row['auto_resolved'], row['closed_by_analyst']]]));
    expect(byRule).toEqual({
      duplicate_charge: [1, 0, 1, 0],
      abnormal_amount: [1, 0, 0, 1], // a2: false positive (triage fixture)
      sync_lag: [1, 0, 1, 0],
      sequence_gap: [3, 1, 1, 1],
      refund_without_sale: [1, 1, 0, 0],
      refund_exceeds_sale: [1, 1, 0, 0],
      sync_incident: [1, 1, 0, 0],
    });
    const m2 = await query('Open vs auto-resolved per rule', { merchant: 'm2' });
    expect(m2.data.map((row) => row['rule']).sort()).toEqual(['refund_without_sale', 'sequence_gap', 'sync_lag']);
  });

  it('time from detection to resolution per rule', async () => {
    expect((await query('Alerts auto-resolved in range')).data[0]?.['auto_resolved']).toBe(3);
    const r = await query('Time from detection to resolution per rule');
    expect(r.data.map((row) => [row['rule'], row['resolved'], row['max_s']])).toEqual([
      ['duplicate_charge', 1, 180],
      ['sequence_gap', 1, 120],
      ['sync_lag', 1, 1800],
    ]);
    expect((await query('Median time to auto-resolution')).data[0]?.['p50_s']).toBe(180);
  });

  it('refunds by reason: count and money per currency with the ISO 4217 exponent, a replay counted once', async () => {
    const r = await query('Refunds by reason and currency');
    expect(r.data.map((row) => [row['reason'], row['currency'], row['refunds'], row['amount_text']])).toEqual([
      ['no_sale', 'ABC', 1, '0.99 ABC (unknown currency: 2 decimals assumed)'],
      ['sync_failure', 'EUR', 2, '35.00 EUR'],
      ['duplicate_charge', 'EUR', 1, '12.50 EUR'],
      ['sync_failure', 'JPY', 1, '1500 JPY'],
      ['ordinary', 'KWD', 1, '1.250 KWD'],
    ]);
    expect(r.data.find((row) => row['currency'] === 'EUR' && row['reason'] === 'sync_failure')?.['amount']).toBe(35);
    const series = await query('Refunds by reason');
    expect(series.data.reduce((n, row) => n + Number(row['refunds']), 0)).toBe(REASONS.length);
  });
});
