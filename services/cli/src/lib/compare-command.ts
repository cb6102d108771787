// tillwatch backtest --compare a.yaml b.yaml --out DIR (--events FILE | --from-clickhouse [--since 7d] [--merchant M])
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadRulesConfig, type BacktestInput, type RulesConfig } from '@tillwatch/rules';
import { openClickHouse } from './clickhouse.js';
import { LineWriter } from '@tillwatch/rules/backtest';
import { Comparison, SIDE_NAMES, renderDiff, type CompareResult } from './compare.js';
import { clickhouseSource, fileSource, parseSince, type Rejected } from './compare-sources.js';

export const COMPARE_USAGE =
  'usage: tillwatch backtest --compare A.yaml B.yaml --out DIR (--events FILE | --from-clickhouse [--since 7d] [--merchant M]) [--no-progress]';

export interface CompareRunOptions {
  source: AsyncIterable<BacktestInput[]>;
  inputLabel: string;
  a: { path: string; config: RulesConfig };
  b: { path: string; config: RulesConfig };
  outDir: string;
  /** Engine buffer hint (events expected). */
  expectedEvents?: number;
  rejected: () => number;
  progress?: (events: number, ms: number) => void;
}

export interface CompareRunSummary {
  result: CompareResult;
  events: number;
  rejected: number;
  durationMs: number;
  eventsPerSecond: number;
  files: { a: string; b: string; diff: string };
}

/** The shell: both engines over one pass of the source, alerts streamed to files, diff.md at the end. */
export async function runCompare(o: CompareRunOptions): Promise<CompareRunSummary> {
  await mkdir(o.outDir, { recursive: true });
  const names = SIDE_NAMES;
  const files = { a: join(o.outDir, `${names.a}.jsonl`), b: join(o.outDir, `${names.b}.jsonl`), diff: join(o.outDir, 'diff.md') };
  const sinks = { a: new LineWriter(files.a), b: new LineWriter(files.b) };
  const cmp = new Comparison(o.a.config, o.b.config, { expectedSales: o.expectedEvents ?? 0 }, (side, alert) => sinks[side].add(JSON.stringify(alert)));
  const t0 = performance.now();
  let events = 0;
  let nextProgress = t0 + 1000;
  for await (const batch of o.source) {
    for (let i = 0; i < batch.length; i++) cmp.apply(batch[i]!);
    events += batch.length;
    await sinks.a.maybeFlush();
    await sinks.b.maybeFlush();
    const now = performance.now();
    if (o.progress && now >= nextProgress) {
      nextProgress = now + 1000;
      o.progress(events, now - t0);
    }
  }
  await sinks.a.close();
  await sinks.b.close();
  const durationMs = performance.now() - t0;
  const result = cmp.result(names);
  const rejected = o.rejected();
  await writeFile(files.diff, renderDiff(result, { input: o.inputLabel, aPath: o.a.path, bPath: o.b.path, events, rejected, durationMs }) + '\n');
  return { result, events, rejected, durationMs, eventsPerSecond: durationMs > 0 ? Math.round((events * 1000) / durationMs) : 0, files };
}

async function loadConfig(path: string): Promise<RulesConfig> {
  try {
    return loadRulesConfig(await readFile(path, 'utf8'), /\.json$/i.test(path) ? 'json' : 'yaml');
  } catch (e) {
    throw new Error(`invalid rules config ${path}: ${(e as Error).message}`, { cause: e });
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export async function runCompareCommand(argv: string[]): Promise<number> {
  // --compare takes two values; node:util parseArgs takes one per option, so they are lifted out first.
  const i = argv.indexOf('--compare');
  const pair = argv.slice(i + 1, i + 3);
  if (i < 0 || pair.length < 2 || pair.some((p) => p.startsWith('--'))) {
    console.error(COMPARE_USAGE);
    return 2;
  }
  const rest = [...argv.slice(0, i), ...argv.slice(i + 3)];
  const { values } = parseArgs({
    args: rest,
    options: {
      events: { type: 'string' },
      out: { type: 'string' },
      'from-clickhouse': { type: 'boolean', default: false },
      since: { type: 'string', default: '7d' },
      merchant: { type: 'string' },
      'no-progress': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  const fromCh = values['from-clickhouse'];
  if (values.help || !values.out || (fromCh ? values.events !== undefined : values.events === undefined)) {
    console.error(COMPARE_USAGE);
    return values.help ? 0 : 2;
  }
  const [aPath, bPath] = pair as [string, string];
  const a = { path: aPath, config: await loadConfig(aPath) };
  const b = { path: bPath, config: await loadConfig(bPath) };
  const rejects: Rejected[] = [];
  let rejectedCount = 0;
  const onReject = (r: Rejected) => {
    rejectedCount++;
    if (rejects.length < 1000) rejects.push(r);
  };
  const progress = values['no-progress'] ? undefined : (n: number, ms: number) => console.error(`  compare: ${fmt(n)} events, ${fmt((n * 1000) / ms)} events/s`);
  let summary: CompareRunSummary;
  if (fromCh) {
    const sinceMs = parseSince(values.since, Date.now());
    const ch = openClickHouse();
    try {
      const label = `ClickHouse ${ch.database}.transactions received since ${new Date(sinceMs).toISOString()}${values.merchant ? `, merchant ${values.merchant}` : ''} (received-time order)`;
      console.error(`backtest --compare: ${label}`);
      summary = await runCompare({ source: clickhouseSource(ch, { sinceMs, ...(values.merchant !== undefined ? { merchant: values.merchant } : {}) }), inputLabel: label, a, b, outDir: values.out, rejected: () => rejectedCount, ...(progress ? { progress } : {}) });
    } finally {
      await ch.close();
    }
  } else {
    const eventsPath = values.events!;
    const size = (await stat(eventsPath)).size;
    console.error(`backtest --compare: ${eventsPath} (${(size / 1e6).toFixed(1)} MB)`);
    // ~200 bytes per line: sizes the engines' buffers once instead of growing them.
    summary = await runCompare({ source: fileSource(eventsPath, onReject, a.config), inputLabel: `\`${eventsPath}\``, a, b, outDir: values.out, expectedEvents: Math.min(2_000_000, Math.ceil(size / 200)), rejected: () => rejectedCount, ...(progress ? { progress } : {}) });
  }
  if (rejects.length > 0) await writeFile(join(values.out, 'rejects.jsonl'), rejects.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const r = summary.result;
  const tot = r.rules.reduce((t, d) => ({ onlyA: t.onlyA + d.onlyA, onlyB: t.onlyB + d.onlyB, both: t.both + d.both }), { onlyA: 0, onlyB: 0, both: 0 });
  console.log(`compared ${aPath} (v${r.versions.a}) and ${bPath} (v${r.versions.b}) on ${fmt(summary.events)} events (${fmt(summary.rejected)} rejected${summary.rejected ? `, first ${rejects.length} in ${join(values.out, 'rejects.jsonl')}` : ''})`);
  console.log(`  alerts: ${fmt(r.alerts.a)} in ${r.names.a}, ${fmt(r.alerts.b)} in ${r.names.b}; only in ${r.names.a}: ${fmt(tot.onlyA)}, only in ${r.names.b}: ${fmt(tot.onlyB)}, in both: ${fmt(tot.both)}`);
  console.log(`  time: ${(summary.durationMs / 1000).toFixed(2)} s (${fmt(summary.eventsPerSecond)} events/s, both rule sets in one pass)`);
  console.log(`  wrote ${summary.files.a}, ${summary.files.b}, ${summary.files.diff}`);
  return 0;
}
