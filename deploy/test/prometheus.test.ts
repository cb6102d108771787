// deploy/prometheus: promtool check config / check rules / test rules, plus checks promtool does not
// make: every alert has a firing and a not-firing unit test, annotations and runbook anchors, metric
// names and labels the services really export, scrape jobs matching the rules' job selectors, and
// the Kubernetes relabelling applied to the pods of deploy/k8s.
//
// promtool: on PATH or $PROMTOOL. Missing -> the promtool tests are skipped with a message locally,
// and FAIL in CI (env CI set), where .ci/run installs it via deploy/prometheus/ensure-promtool.sh.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { createRegistry } from '@tillwatch/telemetry';
import { createStageMetrics } from '@tillwatch/stage-service';
import { ALL_METRIC_LABELS, API_METRICS, KNOWN_METRICS, STAGE_METRICS, metricNamesIn, unknownSeries, type MetricType } from './support/metrics.js';
import { deployDir, k8sDir, prometheusDir } from './support/paths.js';
import { MISSING_PROMTOOL, findPromtool, isCI, runPromtool } from './support/promtool.js';
import { METRICS_PORTS, SERVICE_PORTS, SERVICES, STAGE_PORT } from './support/env.js';

interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RulesFile {
  groups: Array<{ name: string; rules: AlertRule[] }>;
}
interface RulesTestFile {
  rule_files: string[];
  tests: Array<{ name: string; alert_rule_test?: Array<{ eval_time: string; alertname: string; exp_alerts: unknown[] }> }>;
}
interface RelabelConfig {
  source_labels?: string[];
  separator?: string;
  regex?: string;
  target_label?: string;
  replacement?: string;
  action?: string;
}
interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  static_configs?: Array<{ targets: string[] }>;
  dns_sd_configs?: Array<{ names: string[]; type: string; port: number }>;
  kubernetes_sd_configs?: Array<{ role: string; namespaces?: { names: string[] } }>;
  relabel_configs?: RelabelConfig[];
}
interface PrometheusConfig {
  rule_files: string[];
  scrape_configs: ScrapeConfig[];
}

const RULES = 'rules/tillwatch.rules.yml';
const RULES_TEST = 'rules/tillwatch.rules.test.yml';
const CONFIGS = ['prometheus.yml', 'prometheus.compose.yml', 'prometheus.k8s.yml'] as const;

const readYaml = <T>(rel: string): T => parse(readFileSync(path.join(prometheusDir, rel), 'utf8')) as T;
const rules = readYaml<RulesFile>(RULES);
const alerts = rules.groups.flatMap((g) => g.rules).filter((r): r is AlertRule & { alert: string } => typeof r.alert === 'string');
const ruleTests = readYaml<RulesTestFile>(RULES_TEST);

// ---------------------------------------------------------------------------------------------
const promtool = findPromtool();
if (!promtool && !isCI()) console.warn(`[deploy/test/prometheus.test.ts] SKIPPING promtool checks: ${MISSING_PROMTOOL}`);
const withPromtool = promtool || isCI() ? it : it.skip;
// promtool runs as a child process; on a loaded machine one run takes seconds.
const PROMTOOL_TIMEOUT = { timeout: 60_000 };

function promtoolOk(args: string[]): string {
  if (!promtool) throw new Error(`${MISSING_PROMTOOL} (CI is set, so this fails instead of skipping)`);
  const r = runPromtool(promtool, args, prometheusDir);
  expect(r.code, `promtool ${args.join(' ')}\n${r.output}`).toBe(0);
  return r.output;
}

describe('promtool', () => {
  withPromtool('check config: prometheus.yml and prometheus.compose.yml (and the rule file they load)', PROMTOOL_TIMEOUT, () => {
    for (const file of ['prometheus.yml', 'prometheus.compose.yml']) expect(promtoolOk(['check', 'config', file])).toMatch(/SUCCESS: \d+ rules found/);
  });

  withPromtool('check config: prometheus.k8s.yml, where the promtool build has Kubernetes discovery', PROMTOOL_TIMEOUT, () => {
    if (!promtool) throw new Error(MISSING_PROMTOOL);
    const r = runPromtool(promtool, ['check', 'config', 'prometheus.k8s.yml'], prometheusDir);
    // Debian's prometheus package is built without Kubernetes service discovery; such a promtool
    // cannot parse kubernetes_sd_configs. That file is then covered by the relabel tests below.
    if (r.code !== 0 && /field kubernetes_sd_configs not found/.test(r.output)) {
      console.warn('[deploy/test/prometheus.test.ts] this promtool has no Kubernetes SD (Debian build): prometheus.k8s.yml checked structurally only');
      return;
    }
    expect(r.code, r.output).toBe(0);
  });

  withPromtool('check rules', PROMTOOL_TIMEOUT, () => {
    expect(promtoolOk(['check', 'rules', RULES])).toMatch(new RegExp(`SUCCESS: ${alerts.length} rules found`));
  });

  withPromtool('test rules: every unit test in rules/tillwatch.rules.test.yml passes', PROMTOOL_TIMEOUT, () => {
    expect(promtoolOk(['test', 'rules', RULES_TEST])).toMatch(/SUCCESS/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('alerting rules', () => {
  it('has the alerts the runbook promises', () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual(
      [
        'TillwatchChangelogRestoreSlow',
        'TillwatchConsumerLagGrowing',
        'TillwatchDLQRateHigh',
        'TillwatchDecisionLatencySLOBreach',
        'TillwatchDetectorDown',
        'TillwatchDetectorInstanceDown',
        'TillwatchServiceDown',
        'TillwatchSinkInsertErrors',
        'TillwatchSinkLagging',
        // Issue 13: metrics that tell the truth.
        'TillwatchConsumerStalled',
        'TillwatchDeadLettersPerMinute',
        'TillwatchSinkRowsDeadLettered',
        'TillwatchRetriableErrorsClimbing',
        'TillwatchEventTimeLagHigh',
        'TillwatchTransactionAborts',
        'TillwatchApi5xxRate',
        'TillwatchApiReadModelStale',
      ].sort(),
    );
  });

  it('every alert has a severity, summary, description and a runbook anchor that exists in deploy/README.md', () => {
    const readme = readFileSync(path.join(deployDir, 'README.md'), 'utf8');
    // GitHub heading anchors: lower-cased, spaces to dashes, punctuation dropped.
    const anchors = new Set([...readme.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')));
    for (const a of alerts) {
      expect(['warning', 'critical'], a.alert).toContain(a.labels?.['severity']);
      expect(a.annotations?.['summary'], a.alert).toBeTruthy();
      expect(a.annotations?.['description'], a.alert).toBeTruthy();
      const anchor = /#([\w-]+)$/.exec(a.annotations?.['runbook_url'] ?? '')?.[1];
      expect(anchor, `${a.alert} runbook_url`).toBe(a.alert.toLowerCase());
      expect(anchors.has(anchor!), `deploy/README.md has no heading for #${anchor}`).toBe(true);
    }
  });

  it('the latency SLO is p99 event-to-decision > 100 ms for 5 minutes', () => {
    const slo = alerts.find((a) => a.alert === 'TillwatchDecisionLatencySLOBreach')!;
    expect(slo.expr.replace(/\s+/g, ' ')).toMatch(/histogram_quantile\(0\.99, sum by \(le\) \(rate\(tillwatch_event_to_decision_seconds_bucket\{[^}]*\}\[5m\]\)\)\) > 0\.1/);
    expect(slo.for).toBe('5m');
  });

  it('every alert has a firing and a not-firing case in the promtool unit tests', () => {
    expect(ruleTests.rule_files).toEqual(['tillwatch.rules.yml']);
    const cases = ruleTests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      expect(mine.some((c) => c.exp_alerts.length > 0), `${a.alert}: no test where it fires`).toBe(true);
      expect(mine.some((c) => c.exp_alerts.length === 0), `${a.alert}: no test where it stays quiet`).toBe(true);
    }
    const names = new Set(alerts.map((a) => a.alert));
    for (const c of cases) expect(names.has(c.alertname), `test for unknown alert ${c.alertname}`).toBe(true);
  });

  it("the second stage's documented metric list is what it registers (besides the stream metrics)", async () => {
    const stage = createRegistry({ service: 'stage', defaultMetrics: false });
    createStageMetrics(stage);
    const own = (await stage.getMetricsAsJSON()).filter((m) => !(m.name in KNOWN_METRICS)).map((m) => [m.name, String(m.type)]);
    expect(Object.fromEntries(own.sort())).toEqual(Object.fromEntries(Object.entries(STAGE_METRICS).sort()));
  });

  it('expressions use only metrics the services export, with their real labels', async () => {
    const known: Record<string, MetricType> = { ...KNOWN_METRICS, ...STAGE_METRICS, ...API_METRICS };
    for (const m of await createRegistry({ service: 'x' }).getMetricsAsJSON()) known[m.name] = String(m.type) as MetricType;
    for (const a of alerts) {
      const names = metricNamesIn(a.expr);
      for (const n of names) expect(unknownSeries(n, known), `${a.alert}: ${a.expr}`).toBeUndefined();
      const available = new Set(['service', 'job', 'instance', ...names.flatMap((n) => [...(ALL_METRIC_LABELS[n.replace(/_(bucket|sum|count)$/, '')] ?? []), ...(n.endsWith('_bucket') ? ['le'] : [])])]);
      for (const m of a.expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g))
        for (const label of m[1]!.split(',').map((s) => s.trim()).filter(Boolean)) expect(available.has(label), `${a.alert}: by (${label})`).toBe(true);
      // Label matchers name labels the metric has.
      for (const m of a.expr.matchAll(/\{([^}]*)\}/g))
        for (const label of [...m[1]!.matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)].map((x) => x[1]!)) expect(available.has(label), `${a.alert}: {${label}=...}`).toBe(true);
      // service="..." selectors name a real service.
      for (const m of a.expr.matchAll(/service="(\w+)"/g)) expect(SERVICES as string[], a.alert).toContain(m[1]);
    }
  });

  it('histogram le matchers accept Prometheus 3 float notation (30 and 30.0)', () => {
    for (const a of alerts)
      for (const m of a.expr.matchAll(/le(=~?)"([^"]*)"/g)) {
        expect(m[1], `${a.alert}: match le with a regex`).toBe('=~');
        const re = new RegExp(`^(?:${m[2]!.replace(/\\\\/g, '\\')})$`);
        const bound = m[2]!.replace(/\(.*$/, '');
        expect(re.test(bound) && re.test(`${bound}.0`), `${a.alert}: ${m[0]}`).toBe(true);
      }
  });
});

// ---------------------------------------------------------------------------------------------
describe('scrape configs', () => {
  const configs = Object.fromEntries(CONFIGS.map((f) => [f, readYaml<PrometheusConfig>(f)])) as Record<(typeof CONFIGS)[number], PrometheusConfig>;
  const jobsInRules = new Set(alerts.flatMap((a) => [...a.expr.matchAll(/job=~?"([^"]+)"/g)].map((m) => m[1]!)));

  it('every config loads the alerting rules (and not the unit tests)', () => {
    for (const f of CONFIGS) expect(configs[f].rule_files, f).toEqual([RULES]);
  });

  it('prometheus.yml scrapes every service on loopback at its default metrics port', () => {
    for (const s of SERVICES) {
      const job = configs['prometheus.yml'].scrape_configs.find((c) => c.job_name === `tillwatch-${s}`);
      expect(job?.static_configs?.[0]?.targets, s).toEqual([`127.0.0.1:${METRICS_PORTS[s]}`]);
      expect(job?.metrics_path ?? '/metrics').toBe('/metrics');
    }
  });

  it('prometheus.compose.yml discovers every replica of every compose service through DNS', () => {
    const compose = parse(readFileSync(path.join(deployDir, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, unknown> };
    for (const s of SERVICES) {
      const job = configs['prometheus.compose.yml'].scrape_configs.find((c) => c.job_name === `tillwatch-${s}`);
      expect(job?.dns_sd_configs?.[0], s).toEqual(expect.objectContaining({ names: [s], type: 'A', port: METRICS_PORTS[s] }));
      expect(Object.keys(compose.services)).toContain(s);
    }
  });

  it('every service (the second stage included) has a down alert: its job up == 0, and absent() when no target is discovered', () => {
    const downSelectors = alerts.flatMap((a) => [...a.expr.matchAll(/up\{job=~?"([^"]+)"\}\)?\s*==\s*0/g)].map((m) => new RegExp(`^(?:${m[1]})$`)));
    for (const s of SERVICES) {
      const job = `tillwatch-${s}`;
      expect(downSelectors.some((re) => re.test(job)), `${job}: no alert on up == 0`).toBe(true);
      expect(alerts.some((a) => a.expr.includes(`absent(up{job="${job}"})`)), `${job}: no alert when it has no target`).toBe(true);
    }
  });

  it('the job names the rules select on exist in the static and compose configs', () => {
    expect(jobsInRules.size).toBeGreaterThan(0);
    for (const f of ['prometheus.yml', 'prometheus.compose.yml'] as const) {
      const jobs = configs[f].scrape_configs.map((c) => c.job_name);
      for (const j of jobsInRules) expect(jobs.some((name) => new RegExp(`^(?:${j})$`).test(name)), `${f}: no job for ${j}`).toBe(true);
    }
  });

  // Prometheus relabelling, enough of it to run prometheus.k8s.yml over the pods in deploy/k8s:
  // actions replace/keep/drop, anchored RE2-compatible regexes, $1-style replacements.
  function relabel(labels: Record<string, string>, configsIn: RelabelConfig[]): Record<string, string> | undefined {
    const out = { ...labels };
    for (const c of configsIn) {
      const value = (c.source_labels ?? []).map((l) => out[l] ?? '').join(c.separator ?? ';');
      const re = new RegExp(`^(?:${c.regex ?? '(.*)'})$`);
      const action = c.action ?? 'replace';
      if (action === 'keep' && !re.test(value)) return undefined;
      if (action === 'drop' && re.test(value)) return undefined;
      if (action === 'replace') {
        const m = re.exec(value);
        if (!m) continue;
        const result = (c.replacement ?? '$1').replace(/\$\{?(\d+)\}?/g, (_s, n: string) => m[Number(n)] ?? '');
        if (c.target_label) {
          if (result === '') delete out[c.target_label];
          else out[c.target_label] = result;
        }
      }
    }
    return out;
  }
  const sanitize = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, '_');

  interface PodSpecLike {
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    spec: { containers: Array<{ ports?: Array<{ containerPort: number }> }> };
  }
  const workloads = readdirSync(k8sDir)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .flatMap((f) => parseAllDocuments(readFileSync(path.join(k8sDir, f), 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string }; spec?: { template?: PodSpecLike } }))
    .filter((d) => d.spec?.template);

  it('prometheus.k8s.yml turns annotated tillwatch pods into jobs the rules match, and ignores the rest', () => {
    const job = configs['prometheus.k8s.yml'].scrape_configs[0]!;
    expect(job.kubernetes_sd_configs?.[0]).toEqual({ role: 'pod', namespaces: { names: ['tillwatch'] } });
    const scraped: Record<string, string> = {};
    for (const w of workloads) {
      const tpl = w.spec!.template!;
      // What Kubernetes SD (role: pod) would produce for the first container port of a running pod.
      const meta: Record<string, string> = {
        __address__: `10.1.2.3:${tpl.spec.containers[0]?.ports?.[0]?.containerPort ?? 80}`,
        __metrics_path__: '/metrics',
        __meta_kubernetes_namespace: w.metadata.namespace ?? '',
        __meta_kubernetes_pod_name: `${w.metadata.name}-abc12`,
        __meta_kubernetes_pod_phase: 'Running',
      };
      for (const [k, v] of Object.entries(tpl.metadata?.labels ?? {})) meta[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
      for (const [k, v] of Object.entries(tpl.metadata?.annotations ?? {})) meta[`__meta_kubernetes_pod_annotation_${sanitize(k)}`] = v;
      const target = relabel(meta, job.relabel_configs ?? []);
      if (target) scraped[target['job']!] = `${target['__address__']}${target['__metrics_path__']}`;
    }
    expect(scraped).toEqual({
      ...Object.fromEntries(SERVICES.map((s) => [`tillwatch-${s}`, `10.1.2.3:${METRICS_PORTS[s]}/metrics`])),
      'tillwatch-stage': `10.1.2.3:${STAGE_PORT}/metrics`,
    });
    for (const j of jobsInRules) expect(Object.keys(scraped).some((name) => new RegExp(`^(?:${j})$`).test(name)), `k8s: no job for ${j}`).toBe(true);
    // A pod whose annotation names another port than the discovered one is scraped on the annotated
    // port (the api: discovered on its HTTP port, scraped on its ops port).
    const moved = relabel(
      { __address__: `10.0.0.9:${SERVICE_PORTS.api}`, __meta_kubernetes_pod_annotation_prometheus_io_scrape: 'true', __meta_kubernetes_pod_annotation_prometheus_io_port: String(METRICS_PORTS.api), __meta_kubernetes_pod_phase: 'Running' },
      job.relabel_configs ?? [],
    );
    expect(moved?.['__address__']).toBe(`10.0.0.9:${METRICS_PORTS.api}`);
    const done = relabel({ __address__: '10.0.0.9:8080', __meta_kubernetes_pod_annotation_prometheus_io_scrape: 'true', __meta_kubernetes_pod_phase: 'Succeeded' }, job.relabel_configs ?? []);
    expect(done).toBeUndefined();
  });
});
