// Rule engine benchmark: `npm run bench:rules` (tsx packages/rules/bench/bench.ts [--events N] [--no-prefetch]).
// Prints figures; it is not a timed test and asserts nothing.
//
//  1. generates a realistic stream (thousands of terminals, ~300k cards, anomalies sprinkled) as
//     JSON lines under .cache/bench/ (reused when already there),
//  2. engine alone: (a) the file parsed and validated in batches of BATCH events, as the detector
//     decodes a Kafka batch; (b) all events pre-parsed in memory, with and without a capacity hint;
//     only the engine calls are timed (wall clock -> events/s, and CPU time per event from
//     process.cpuUsage, which other load on a shared machine disturbs far less),
//  3. backtest end to end: runBacktest on the file (read, parse, validate, engine, write),
//  4. memory: peak RSS, retained engine state, and bytes per tracked terminal / card / sale measured
//     in isolation.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync, createWriteStream } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { validateTransaction, type Transaction } from '@tillwatch/schemas';
import { createRuleEngine, defaultRulesConfig, parseRulesConfig, type RuleEngine } from '../src/index.js';
import { formatSummary, runBacktest } from '../scripts/backtest.js';
import { BENCH_STREAM, generateEvents, type GenerateOptions } from './generate.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const argN = process.argv.indexOf('--events');
const EVENTS = argN > 0 ? Number(process.argv[argN + 1]) : 1_200_000;
const BATCH = 4096;
/** engine.prefetch every this many events (the detector-like loops hint the next few sales); `--no-prefetch`: 0, off. */
const PREFETCH = process.argv.includes('--no-prefetch') ? 0 : 8;
const REPEAT = 3;

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cacheDir = join(root, '.cache', 'bench');
const GEN: GenerateOptions = { ...BENCH_STREAM, events: EVENTS };
const GEN_VERSION = 2;

const load = (): string => `load average ${loadavg().map((x) => x.toFixed(2)).join(', ')}`;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
const heapNow = (): number => {
  gc();
  gc();
  const m = process.memoryUsage();
  // external, not arrayBuffers: the sale rows and terminal rows are WebAssembly.Memory buffers
  // (page-aligned, see store.ts), which Node counts in external only (external includes arrayBuffers).
  return m.heapUsed + m.external;
};

async function ensureFile(): Promise<string> {
  mkdirSync(cacheDir, { recursive: true });
  const file = join(cacheDir, `events-v${GEN_VERSION}-s${GEN.seed}-${GEN.events}.jsonl`);
  if (existsSync(file)) {
    console.log(`input      ${file} (cached, ${mib(statSync(file).size)})`);
    return file;
  }
  const t0 = performance.now();
  const tmp = `${file}.tmp`;
  const ws = createWriteStream(tmp);
  let parts: string[] = [];
  for (const t of generateEvents(GEN)) {
    parts.push(JSON.stringify(t));
    if (parts.length === 10_000) {
      if (!ws.write(parts.join('\n') + '\n')) await new Promise<void>((r) => ws.once('drain', () => r()));
      parts = [];
    }
  }
  if (parts.length > 0) ws.write(parts.join('\n') + '\n');
  await new Promise<void>((r) => ws.end(() => r()));
  const { renameSync } = await import('node:fs');
  renameSync(tmp, file);
  console.log(`input      ${file} (generated in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${mib(statSync(file).size)})`);
  return file;
}

/** Parses the file in batches and hands each batch to `each` (the batch is garbage afterwards). */
function forEachBatch(file: string, each: (batch: Transaction[]) => void): number {
  const buf = readFileSync(file);
  let n = 0;
  let p = 0;
  let batch: Transaction[] = [];
  while (p < buf.length) {
    let q = buf.indexOf(10, p);
    if (q < 0) q = buf.length;
    if (q > p) {
      batch.push(validateTransaction(JSON.parse(buf.toString('utf8', p, q))));
      n++;
      if (batch.length === BATCH) {
        each(batch);
        batch = [];
      }
    }
    p = q + 1;
  }
  if (batch.length > 0) each(batch);
  return n;
}

function parseAll(file: string): Transaction[] {
  const all: Transaction[] = [];
  forEachBatch(file, (batch) => {
    for (const t of batch) all.push(t);
  });
  return all;
}

interface EngineRun {
  rates: number[];
  /** CPU time (user + system, process.cpuUsage) per event over the timed engine calls, µs; less sensitive to other load on the machine than events/s. */
  cpuUs: number[];
  engine: RuleEngine;
  alerts: number;
}

/** CPU time (user + system) since `from`, µs. */
const cpuSince = (from: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(from);
  return u.user + u.system;
};

/** All events pre-parsed in memory; only the engine loop is timed. */
function engineInMemory(events: Transaction[], expectedSales: number | undefined): EngineRun {
  const rates: number[] = [];
  const cpuUs: number[] = [];
  let engine = createRuleEngine(defaultRulesConfig());
  let alerts = 0;
  for (let r = 0; r < REPEAT; r++) {
    engine = createRuleEngine(defaultRulesConfig(), { expectedSales });
    alerts = 0;
    gc(); // construction allocates the buffers; collect before timing event processing
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < events.length; i++) {
      if (PREFETCH > 0 && i % PREFETCH === 0) engine.prefetch(events, i, i + PREFETCH);
      alerts += engine.onTransaction(events[i]!).alerts.length;
    }
    rates.push((events.length * 1000) / (performance.now() - t0));
    cpuUs.push(cpuSince(c0) / events.length);
  }
  return { rates, cpuUs, engine, alerts };
}

/** Parsed and validated in batches (as the detector decodes a Kafka batch); only the engine calls are timed. */
function engineBatched(file: string, expectedSales: number): EngineRun {
  const rates: number[] = [];
  const cpuUs: number[] = [];
  let engine = createRuleEngine(defaultRulesConfig());
  let alerts = 0;
  for (let r = 0; r < REPEAT; r++) {
    engine = createRuleEngine(defaultRulesConfig(), { expectedSales });
    const e = engine;
    gc();
    let ms = 0;
    let us = 0;
    alerts = 0;
    const n = forEachBatch(file, (batch) => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < batch.length; i++) {
        if (PREFETCH > 0 && i % PREFETCH === 0) e.prefetch(batch, i, i + PREFETCH);
        alerts += e.onTransaction(batch[i]!).alerts.length;
      }
      ms += performance.now() - t0;
      us += cpuSince(c0);
    });
    rates.push((n * 1000) / ms);
    cpuUs.push(us / n);
  }
  return { rates, cpuUs, engine, alerts };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const summarise = (rates: number[]): string => {
  const sorted = [...rates].sort((a, b) => a - b);
  return `best ${fmt(sorted[sorted.length - 1]!)}   median ${fmt(median(rates))}   runs ${rates.map(fmt).join(', ')}`;
};
/** CPU µs per event: best (lowest), median, runs; and the events/s that CPU time alone would allow. */
const summariseCpu = (us: number[]): string =>
  `best ${Math.min(...us).toFixed(3)}   median ${median(us).toFixed(3)}   runs ${us.map((x) => x.toFixed(3)).join(', ')}   (= ${fmt(1e6 / Math.min(...us))} events/s per CPU-second at best)`;

/** Bytes of retained state per unit, measured by growing one kind of state in isolation. */
function perUnit(label: string, units: number, build: () => RuleEngine): string {
  const before = heapNow();
  const e = build();
  const after = heapNow();
  const s = e.stats();
  return `${label.padEnd(44)} ${fmt((after - before) / units).padStart(6)} B  (${fmt(units)} units; state ${JSON.stringify({ terminals: s.terminals, sales: s.sales, cards: s.cards })})`;
}

function memoryPerUnit(): string[] {
  const T0 = Date.UTC(2025, 0, 6);
  // seq: the terminal's own consecutive sequence number (a jump would open a sequence gap per sale, and
  // the gaps' state, not the state being measured, would dominate the figure).
  const sale = (i: number, terminal: string, card: string, at: number, seq: number, amount = 1000 + (i % 97)): Transaction => ({
    event_id: `ev-${i.toString(36)}-0000-4000-8000-000000000000`.slice(0, 36),
    txn_id: `tx${i.toString(36)}`,
    kind: 'SALE',
    status: 'APPROVED',
    terminal_id: terminal,
    merchant_id: `M${terminal.slice(1, 4)}`,
    card_token: card,
    amount_minor: amount,
    currency: 'EUR',
    terminal_seq: seq,
    original_txn_id: null,
    event_time: at,
    received_time: at + 500,
  });
  const out: string[] = [];
  // Terminals with a full median sample; their sales expire at once (1 ms horizons), so only terminal state stays.
  const K = 20_000;
  out.push(
    perUnit('per terminal (full 101-sale median sample)', K, () => {
      // refund_after_deadline's deadline may not exceed the lookback (config validation).
      const e = createRuleEngine(parseRulesConfig({ engine: { allowed_lateness: 1, refund_lookback: 2 }, rules: { duplicate_charge: { window: 1 }, refund_after_deadline: { deadline: 1 } } }));
      for (let k = 0; k < 101; k++) for (let t = 0; t < K; t++) e.onTransaction(sale(k * K + t, `T${String(t).padStart(6, '0')}`, `tok_${t}_${k}`, T0 + k * 60_000 + t, k));
      e.advanceClock(T0 + 200 * 60_000);
      return e;
    }),
  );
  // Sales on distinct cards, all within the duplicate horizon: a refund-index row + a duplicate key each.
  const N = 300_000;
  out.push(
    perUnit('per card (a sale on a new card, duplicate leg)', N, () => {
      const e = createRuleEngine(defaultRulesConfig());
      for (let i = 0; i < N; i++) e.onTransaction(sale(i, `T${String(i % 3000).padStart(6, '0')}`, `tok_${(i * 2654435761 >>> 0).toString(36)}`, T0 + i * 100, Math.floor(i / 3000)));
      return e;
    }),
  );
  out.push(
    perUnit('per sale past the duplicate horizon (refunds)', N, () => {
      const e = createRuleEngine(defaultRulesConfig());
      for (let i = 0; i < N; i++) e.onTransaction(sale(i, `T${String(i % 3000).padStart(6, '0')}`, `tok_${(i * 2654435761 >>> 0).toString(36)}`, T0 + i * 100, Math.floor(i / 3000)));
      e.advanceClock(T0 + N * 100 + 25 * 3600_000);
      return e;
    }),
  );
  return out;
}

async function main(): Promise<void> {
  console.log(`tillwatch rules benchmark  node ${process.version}  ${process.platform}/${process.arch}  ${load()}`);
  const file = await ensureFile();
  console.log(`stream     ${fmt(EVENTS)} events, ${fmt(GEN.merchants)} merchants, ${fmt(GEN.terminals)} terminals, ${fmt(GEN.cards)} cards`);

  const batched = engineBatched(file, EVENTS);
  console.log(`\nengine alone, parsed in batches of ${BATCH} (detector-like), engine calls timed, ${REPEAT} runs`);
  console.log(`  events/s   ${summarise(batched.rates)}`);
  console.log(`  CPU µs/ev  ${summariseCpu(batched.cpuUs)}`);

  const base = heapNow();
  const events = parseAll(file);
  const inputBytes = heapNow() - base;
  const mem = engineInMemory(events, EVENTS);
  const s = mem.engine.stats();
  console.log(`\nengine alone, all ${fmt(events.length)} events pre-parsed in memory (${mib(inputBytes)}), capacity hint = event count, ${REPEAT} runs`);
  console.log(`  events/s   ${summarise(mem.rates)}`);
  console.log(`  CPU µs/ev  ${summariseCpu(mem.cpuUs)}`);
  const noHint = engineInMemory(events, undefined);
  console.log(`  no hint    ${summarise(noHint.rates)}   (buffers grow by doubling from small)`);
  console.log(`  no hint    CPU µs/ev ${summariseCpu(noHint.cpuUs)}`);
  console.log(`  alerts     ${fmt(mem.alerts)}`);
  console.log(`  state      ${fmt(s.merchants)} merchants, ${fmt(s.terminals)} terminals, ${fmt(s.sales)} sales, ${fmt(s.cards)} card keys, ${fmt(s.duplicateLegs)} duplicate legs`);
  events.length = 0;
  noHint.engine = mem.engine;
  const retained = heapNow() - base;
  console.log(`  retained   ${mib(retained)} heap+buffers for that state, presized (${fmt(retained / Math.max(1, s.sales))} B per sale held, all-in)`);
  const best = Math.max(...mem.rates);
  const medianRate = median(mem.rates);
  // Let the engines go before the backtest runs.
  mem.engine = noHint.engine = batched.engine = createRuleEngine(defaultRulesConfig());

  console.log(`\nbacktest end to end (read, parse, validate, engine, write), ${REPEAT - 1} runs`);
  const btRates: number[] = [];
  let last;
  for (let r = 0; r < REPEAT - 1; r++) {
    gc();
    last = await runBacktest({ eventsPath: file, outPath: join(cacheDir, 'alerts.jsonl'), actionsPath: join(cacheDir, 'actions.jsonl'), log: () => {} });
    btRates.push(last.eventsPerSecond);
  }
  console.log(`  events/s   best ${fmt(Math.max(...btRates))}   runs ${btRates.map(fmt).join(', ')}`);
  console.log(formatSummary(last!).replace(/^/gm, '  | '));

  console.log('\nmemory');
  console.log(`  peak RSS   ${mib(process.resourceUsage().maxRSS * 1024)} (whole benchmark process)`);
  for (const l of memoryPerUnit()) console.log(`  ${l}`);

  const result = {
    when: new Date().toISOString(),
    loadAverageAtEnd: loadavg(),
    node: process.version,
    events: EVENTS,
    engineEventsPerSecond: { best: Math.round(best), median: Math.round(medianRate), runs: mem.rates.map(Math.round) },
    engineCpuMicrosPerEvent: mem.cpuUs,
    engineBatchedEventsPerSecond: batched.rates.map(Math.round),
    engineBatchedCpuMicrosPerEvent: batched.cpuUs,
    engineNoHintEventsPerSecond: noHint.rates.map(Math.round),
    backtestEventsPerSecond: { best: Math.max(...btRates), runs: btRates },
    retainedStateBytes: retained,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
  writeFileSync(join(cacheDir, 'results.json'), JSON.stringify(result, null, 2));
  console.log(`\nresults    ${join(cacheDir, 'results.json')}   ${load()}`);
}

await main();
