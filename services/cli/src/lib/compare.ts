// `tillwatch backtest --compare a.yaml b.yaml`: two rule sets on the same input in ONE pass. Every
// event is parsed and validated once and fed to two engines (createBacktest from @tillwatch/rules,
// the engine the detector runs); their alerts are written as they fire (DIR/a.jsonl, DIR/b.jsonl)
// and matched by alert_id - deterministic from rule, rule version and evidence, so the same alert
// raised by both rule sets has the same id - into DIR/diff.md: per rule, alerts only in a, only in b,
// and in both, with up to 5 examples each. Only rules that raised an alert in a or b are listed (in
// registry order), so a rule added to the registry that raises nothing on the input leaves diff.md as
// it was. Alerts of rules in `mode: shadow` count as alerts of their rule set (the comparison is of
// what each rule set would raise).
import { RULE_IDS, createBacktest, type Backtest, type BacktestInput, type EngineOptions, type RulesConfig } from '@tillwatch/rules';
import type { Alert } from '@tillwatch/schemas';

export const EXAMPLES_PER_BUCKET = 5;

export interface RuleSetInput {
  /** Path of the rules file (named in diff.md and on stdout). */
  path: string;
  config: RulesConfig;
}

interface AlertRef {
  rule: string;
  summary: string;
  terminal_id: string;
  merchant_id: string;
  detected_at: number;
}

export interface RuleDiff {
  rule: string;
  onlyA: number;
  onlyB: number;
  both: number;
  examplesOnlyA: (AlertRef & { alert_id: string })[];
  examplesOnlyB: (AlertRef & { alert_id: string })[];
  examplesBoth: (AlertRef & { alert_id: string; summaryB: string })[];
}

export interface CompareResult {
  names: { a: string; b: string };
  versions: { a: number; b: number };
  alerts: { a: number; b: number };
  /** The rules with at least one alert in a or b: registry order, then any other rule id by name. */
  rules: RuleDiff[];
}

/**
 * The two sides' names: `a` and `b` whatever the rules files are called (the issue's contract:
 * DIR/a.jsonl and DIR/b.jsonl; diff.md says which file each is). Fixed names cannot clash with each
 * other or with DIR/rejects.jsonl and DIR/diff.md.
 */
export const SIDE_NAMES = { a: 'a', b: 'b' } as const;

const toRef = (x: Alert): AlertRef => ({ rule: x.rule, summary: x.summary, terminal_id: x.terminal_id, merchant_id: x.merchant_id, detected_at: x.detected_at });

/** The pure core: two backtests fed the same events; alerts kept by id (summaries only) for the diff. */
export class Comparison {
  readonly a: Backtest;
  readonly b: Backtest;
  private readonly seenA = new Map<string, AlertRef>();
  private readonly seenB = new Map<string, AlertRef>();

  constructor(
    private readonly configA: RulesConfig,
    private readonly configB: RulesConfig,
    options: EngineOptions = {},
    private readonly onAlert: (side: 'a' | 'b', alert: Alert) => void = () => undefined,
  ) {
    this.a = createBacktest(configA, options);
    this.b = createBacktest(configB, options);
  }

  /** One event through both engines (input order). */
  apply(t: BacktestInput): void {
    const ra = this.a.apply(t);
    const rb = this.b.apply(t);
    if (ra.alerts.length || ra.shadowAlerts.length) this.take('a', ra.alerts, ra.shadowAlerts);
    if (rb.alerts.length || rb.shadowAlerts.length) this.take('b', rb.alerts, rb.shadowAlerts);
  }

  private take(side: 'a' | 'b', alerts: readonly Alert[], shadow: readonly Alert[]): void {
    const seen = side === 'a' ? this.seenA : this.seenB;
    for (const list of [alerts, shadow]) {
      for (const x of list) {
        // A re-fire of the same id (possible after state expiry) is one alert for the diff.
        if (!seen.has(x.alert_id)) seen.set(x.alert_id, toRef(x));
        this.onAlert(side, x);
      }
    }
  }

  result(names: { a: string; b: string }): CompareResult {
    const byRule = new Map<string, RuleDiff>();
    const diff = (rule: string): RuleDiff => {
      let d = byRule.get(rule);
      if (!d) byRule.set(rule, (d = { rule, onlyA: 0, onlyB: 0, both: 0, examplesOnlyA: [], examplesOnlyB: [], examplesBoth: [] }));
      return d;
    };
    for (const [id, ra] of this.seenA) {
      const d = diff(ra.rule);
      const rb = this.seenB.get(id);
      if (rb) {
        d.both++;
        if (d.examplesBoth.length < EXAMPLES_PER_BUCKET) d.examplesBoth.push({ alert_id: id, ...ra, summaryB: rb.summary });
      } else {
        d.onlyA++;
        if (d.examplesOnlyA.length < EXAMPLES_PER_BUCKET) d.examplesOnlyA.push({ alert_id: id, ...ra });
      }
    }
    for (const [id, rb] of this.seenB) {
      if (this.seenA.has(id)) continue;
      const d = diff(rb.rule);
      d.onlyB++;
      if (d.examplesOnlyB.length < EXAMPLES_PER_BUCKET) d.examplesOnlyB.push({ alert_id: id, ...rb });
    }
    const known = new Set<string>(RULE_IDS);
    const rules = [
      ...RULE_IDS.flatMap((r) => byRule.get(r) ?? []),
      ...[...byRule.values()].filter((d) => !known.has(d.rule)).sort((x, y) => x.rule.localeCompare(y.rule)),
    ];
    return { names, versions: { a: this.configA.version, b: this.configB.version }, alerts: { a: this.seenA.size, b: this.seenB.size }, rules };
  }
}

export interface DiffContext {
  input: string;
  aPath: string;
  bPath: string;
  events: number;
  rejected: number;
  durationMs: number;
}

const iso = (ms: number) => new Date(ms).toISOString();
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** DIR/diff.md. Deterministic for a given input (no wall-clock values besides the measured duration line). */
export function renderDiff(r: CompareResult, c: DiffContext): string {
  const { a, b } = r.names;
  const out: string[] = [];
  out.push(`# Rule set comparison: ${a} (\`${c.aPath}\`) vs ${b} (\`${c.bPath}\`)`, '');
  out.push(`- input: ${c.input}`);
  out.push(`- events: ${c.events} processed, ${c.rejected} rejected`);
  out.push(`- a = \`${c.aPath}\` (rules version ${r.versions.a}): ${r.alerts.a} alerts -> \`${a}.jsonl\``);
  out.push(`- b = \`${c.bPath}\` (rules version ${r.versions.b}): ${r.alerts.b} alerts -> \`${b}.jsonl\``);
  out.push('- alerts are matched by alert_id (deterministic from rule, rule version and evidence)');
  out.push('- rules that raised no alert in either run are not listed', '');
  out.push('## Summary', '');
  out.push(`| rule | only in ${a} | only in ${b} | in both |`, '|---|---:|---:|---:|');
  const tot = { onlyA: 0, onlyB: 0, both: 0 };
  for (const d of r.rules) {
    out.push(`| ${d.rule} | ${d.onlyA} | ${d.onlyB} | ${d.both} |`);
    tot.onlyA += d.onlyA;
    tot.onlyB += d.onlyB;
    tot.both += d.both;
  }
  out.push(`| **total** | ${tot.onlyA} | ${tot.onlyB} | ${tot.both} |`, '');
  const examples = (title: string, n: number, items: { alert_id: string; summary: string; terminal_id: string; merchant_id: string; detected_at: number; summaryB?: string }[]) => {
    out.push(`### ${title} (${n})`, '');
    if (items.length === 0) out.push('none', '');
    else {
      if (n > items.length) out.push(`first ${items.length} of ${n}:`, '');
      for (const x of items) {
        out.push(`- \`${x.alert_id}\` merchant ${x.merchant_id}, terminal ${x.terminal_id}, detected ${iso(x.detected_at)}: ${cell(x.summary)}`);
        if (x.summaryB !== undefined && x.summaryB !== x.summary) out.push(`  - in ${b}: ${cell(x.summaryB)}`);
      }
      out.push('');
    }
  };
  for (const d of r.rules) {
    out.push(`## ${d.rule}`, '');
    examples(`Only in ${a}`, d.onlyA, d.examplesOnlyA);
    examples(`Only in ${b}`, d.onlyB, d.examplesOnlyB);
    examples('In both', d.both, d.examplesBoth);
  }
  return out.join('\n');
}
