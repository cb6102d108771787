// GET /alerts benchmark (prints figures; not a test).
//
//   npm run bench:api -- [--rate 500] [--duration 20] [--reload] [--only name] [--drill 0.05] [--out file.json]
//   (= node --expose-gc --import tsx services/api/bench/alerts-bench.ts; --expose-gc lets it report
//   the read model's memory after a full GC)
//
// 1. Loads 1,000,000 alerts into embedded ClickHouse at .cache/api-bench (generated in bulk with
//    INSERT ... SELECT FROM numbers(); kept between runs, --reload regenerates), plus replayed
//    copies of 1% of them (ReplacingMergeTree duplicates the reads must hide) and triage rows for 2%.
//    All migrations apply, the time-ordered alerts_by_detected_v2 (006, 015) and 007 included.
// 2. Per scenario: builds the in-memory read model (services/api/src/read-model) from ClickHouse
//    when the scenario uses it, and starts the API on 127.0.0.1 (random port) in this process: the
//    API and chDB share it, as in `npm start`.
// 3. A separate load-generator process sends GET /alerts with a mix of filters at a FIXED rate
//    (open loop: requests leave on schedule whether or not earlier ones finished, and latency is
//    measured from the scheduled send time, so a stall is not hidden by coordinated omission),
//    for each scenario, and reports throughput and exact percentiles over all samples.
// Results go to load-tests/results/api-alerts.json.
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { cpus, loadavg, totalmem } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse, migrate, type ClickHouse } from '@tillwatch/clickhouse';
import { createLogger, createRegistry } from '@tillwatch/telemetry';
import { clickhouseMigrationsDir } from '@tillwatch/schemas';
import { createApp } from '../src/app.js';
import { createAuthenticator } from '../src/auth.js';
import { createMemoryAlertFeed } from '../src/feed.js';
import { createApiMetrics } from '../src/metrics.js';
import { createAlertReadModel } from '../src/read-model/read-model.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..', '..');
const DATA_PATH = join(repo, '.cache', 'api-bench');
const RESULTS = process.argv.includes('--out') ? resolve(process.argv[process.argv.indexOf('--out') + 1]!) : join(repo, 'load-tests', 'results', 'api-alerts.json');
const ROWS = 1_000_000;
const MERCHANTS = 200;
const TERMINALS = 5000;
const DAYS = 30;
const GENERATOR_VERSION = 2;
const RULES = ['duplicate_charge', 'abnormal_amount', 'sync_lag', 'sequence_gap', 'refund_without_sale', 'refund_exceeds_sale'];
const KEY = 'bench-key-0123456789abcdef';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};

// ------------------------------------------------------------------------------------------------
// Load generator (child process).

interface WorkerInput {
  base: string;
  key: string;
  rate: number;
  durationMs: number;
  urls: string[];
}

interface WorkerResult {
  sent: number;
  completed: number;
  errors: number;
  statuses: Record<string, number>;
  cache: Record<string, number>;
  elapsedMs: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  serviceMs: { p50: number; p99: number };
}

const pct = (sorted: number[], p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!);
const r2 = (n: number) => Math.round(n * 100) / 100;

async function runWorker(input: WorkerInput): Promise<WorkerResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const target = new URL(input.base);
  const total = Math.round((input.rate * input.durationMs) / 1000);
  const intervalMs = 1000 / input.rate;
  const latencies: number[] = [];
  const service: number[] = [];
  const statuses: Record<string, number> = {};
  const cache: Record<string, number> = {};
  let errors = 0;
  let completed = 0;
  let sent = 0;
  const start = performance.now() + 50;
  await new Promise<void>((done) => {
    const fire = (i: number) => {
      const scheduled = start + i * intervalMs;
      const path = input.urls[i % input.urls.length]!;
      const t0 = performance.now();
      sent += 1;
      const req = request({ host: target.hostname, port: target.port, path, agent, headers: { 'x-api-key': input.key } }, (res) => {
        res.resume();
        res.on('end', () => {
          const t1 = performance.now();
          latencies.push(t1 - scheduled);
          service.push(t1 - t0);
          statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
          const c = String(res.headers['x-cache'] ?? 'none');
          cache[c] = (cache[c] ?? 0) + 1;
          completed += 1;
          if (completed + errors === total) done();
        });
      });
      req.on('error', () => {
        errors += 1;
        if (completed + errors === total) done();
      });
      req.end();
    };
    // Tick every ~1 ms and send everything whose scheduled time has come.
    let next = 0;
    const tick = () => {
      const now = performance.now();
      while (next < total && start + next * intervalMs <= now) fire(next++);
      if (next < total) setTimeout(tick, Math.max(0, Math.min(1, start + next * intervalMs - performance.now())));
    };
    setTimeout(tick, 50);
    // Bounded: give up on stragglers 15 s after the last scheduled send.
    setTimeout(() => done(), input.durationMs + 15_000).unref();
  });
  const elapsedMs = performance.now() - start;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  service.sort((a, b) => a - b);
  return {
    sent,
    completed,
    errors,
    statuses,
    cache,
    elapsedMs: r2(elapsedMs),
    latencyMs: {
      p50: r2(pct(latencies, 50)),
      p90: r2(pct(latencies, 90)),
      p99: r2(pct(latencies, 99)),
      p999: r2(pct(latencies, 99.9)),
      max: r2(latencies[latencies.length - 1] ?? NaN),
      mean: r2(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)),
    },
    serviceMs: { p50: r2(pct(service, 50)), p99: r2(pct(service, 99)) },
  };
}

if (process.argv.includes('--worker')) {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const result = await runWorker(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WorkerInput);
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}

function spawnWorker(input: WorkerInput): Promise<WorkerResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...process.execArgv.filter((a) => !/^--(trace-gc|cpu-prof)/.test(a)), fileURLToPath(import.meta.url), '--worker'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolvePromise(JSON.parse(out) as WorkerResult) : reject(new Error(`load generator exited ${code}`))));
    child.stdin.end(JSON.stringify(input));
  });
}

// ------------------------------------------------------------------------------------------------
// Data.

async function applyMigrations(ch: ClickHouse) {
  await migrate(ch, { dir: clickhouseMigrationsDir });
}

async function count(ch: ClickHouse, sql: string): Promise<number> {
  const rs = await ch.client.query({ query: sql, format: 'JSONEachRow' });
  return Number((await rs.json<{ n: number }>())[0]?.n ?? 0);
}

async function loadData(ch: ClickHouse, baseMs: number) {
  const A = ch.table('alerts');
  // The generator is a pure function of `number`: 6 rules, 4 severities, 5000 terminals over 200
  // merchants, detected_at spread evenly over the last 30 days, window_start up to 15 min before.
  const select = (from: string) => `
    SELECT lower(hex(MD5(toString(number)))) AS alert_id,
      [${RULES.map((r) => `'${r}'`).join(',')}][1 + cityHash64(number, 1) % ${RULES.length}] AS rule,
      1 AS rule_version,
      ['low','medium','high','critical'][1 + cityHash64(number, 2) % 4] AS severity,
      concat('T', leftPad(toString(cityHash64(number, 3) % ${TERMINALS}), 5, '0')) AS terminal_id,
      concat('M', leftPad(toString((cityHash64(number, 3) % ${TERMINALS}) % ${MERCHANTS}), 4, '0')) AS merchant_id,
      if(number % 3 = 0, NULL, concat('tok_', substring(lower(hex(MD5(toString(number % 50000)))), 1, 16))) AS card_token,
      [lower(hex(MD5(concat('e', toString(number))))), lower(hex(MD5(concat('f', toString(number)))))] AS event_ids,
      fromUnixTimestamp64Milli(toInt64(${baseMs} + intDiv(number * ${DAYS * 86_400_000}, ${ROWS}) - cityHash64(number, 4) % 900000), 'UTC') AS window_start,
      fromUnixTimestamp64Milli(toInt64(${baseMs} + intDiv(number * ${DAYS * 86_400_000}, ${ROWS}) - cityHash64(number, 5) % 60000), 'UTC') AS window_end,
      fromUnixTimestamp64Milli(toInt64(${baseMs} + intDiv(number * ${DAYS * 86_400_000}, ${ROWS})), 'UTC') AS detected_at,
      concat(rule, ' on terminal ', terminal_id, ' (#', toString(number), ')') AS summary,
      map('ratio', toFloat64(number % 100) / 7, 'lag_ms', toFloat64(number % 3600000)) AS details
    FROM ${from}`;
  const cols = 'alert_id, rule, rule_version, severity, terminal_id, merchant_id, card_token, event_ids, window_start, window_end, detected_at, summary, details';
  const t0 = performance.now();
  // In slices: one INSERT of 1M rows with its materialized view peaks higher in memory than needed.
  for (let from = 0; from < ROWS; from += 250_000) {
    await ch.client.command({ query: `INSERT INTO ${A} (${cols}) ${select(`numbers(${from}, ${Math.min(250_000, ROWS - from)})`)}`, clickhouse_settings: { async_insert: 0 } });
  }
  // Replayed copies of 1% (the sink is at-least-once): separate parts, merged away only eventually.
  await ch.client.command({ query: `INSERT INTO ${A} (${cols}) ${select(`numbers(${ROWS}) WHERE number % 100 = 7`)}` });
  // Triage rows for 2% of the alerts.
  await ch.client.command({
    query: `INSERT INTO ${ch.table('alert_triage')} (alert_id, status, actor, note, at)
            SELECT lower(hex(MD5(toString(number)))), ['acknowledged','resolved','false_positive'][1 + number % 3], 'bench', 'bulk triage', now64(3)
            FROM numbers(${ROWS}) WHERE number % 50 = 3`,
  });
  await ch.client.command({ query: `CREATE TABLE IF NOT EXISTS ${ch.table('bench_meta')} (version UInt32, base_ms Int64) ENGINE = MergeTree ORDER BY version` });
  await ch.client.insert({ table: ch.table('bench_meta'), values: [{ version: GENERATOR_VERSION, base_ms: baseMs }], format: 'JSONEachRow' });
  return performance.now() - t0;
}

// ------------------------------------------------------------------------------------------------
// Request mix.

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * A risk-console mix. "Hot" views are first pages that every console polls (latest, per rule, per
 * severity, open, open criticals); "drill-down" requests are what an analyst clicks: a merchant, a
 * terminal, an hour of time, the next pages of a list. The drill-down share decides how often the
 * page cache misses.
 */
function buildMix(baseMs: number, cursors: string[], n: number, drillShare: number) {
  const rand = rng(42);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const hot = [
    '/alerts',
    '/alerts?limit=100',
    ...RULES.map((r) => `/alerts?rule=${r}`),
    '/alerts?severity=critical',
    '/alerts?severity=critical&severity=high',
    '/alerts?status=open',
    '/alerts?status=open&severity=critical',
    '/alerts?rule=duplicate_charge&severity=critical',
    '/alerts?status=acknowledged',
  ];
  const drill = [
    () => `/alerts?merchant=M${String(Math.floor(rand() * MERCHANTS)).padStart(4, '0')}`,
    () => `/alerts?terminal=T${String(Math.floor(rand() * TERMINALS)).padStart(5, '0')}`,
    () => {
      const from = baseMs + Math.floor(rand() * DAYS * 24) * 3_600_000;
      return `/alerts?from=${new Date(from).toISOString()}&to=${new Date(from + 3_600_000).toISOString()}`;
    },
    () => `/alerts?rule=${pick(RULES)}&merchant=M${String(Math.floor(rand() * MERCHANTS)).padStart(4, '0')}`,
    () => `/alerts?cursor=${pick(cursors)}`,
  ];
  const urls: string[] = [];
  for (let i = 0; i < n; i++) urls.push(rand() < drillShare ? pick(drill)() : pick(hot));
  return urls;
}

// ------------------------------------------------------------------------------------------------

const rate = Number(arg('rate', '500'));
const durationS = Number(arg('duration', '20'));
const only = arg('only', '');
const drillOverride = arg('drill', '');

if (process.argv.includes('--reload')) await rm(DATA_PATH, { recursive: true, force: true });
await mkdir(DATA_PATH, { recursive: true });
const ch = createClickHouse({ path: DATA_PATH, database: 'bench' });
await applyMigrations(ch);
let baseMs: number;
const meta = await count(ch, `SELECT count() AS n FROM system.tables WHERE database = 'bench' AND name = 'bench_meta'`);
const existing = meta ? await ch.client.query({ query: `SELECT version, base_ms FROM ${ch.table('bench_meta')} ORDER BY version DESC LIMIT 1`, format: 'JSONEachRow' }).then((r) => r.json<{ version: number; base_ms: number }>()) : [];
if (existing[0]?.version === GENERATOR_VERSION && Date.now() - existing[0].base_ms < 300 * 86_400_000) {
  baseMs = existing[0].base_ms;
  console.log(`reusing ${DATA_PATH} (generated ${new Date(baseMs + DAYS * 86_400_000).toISOString()}); --reload to regenerate`);
} else {
  await ch.close();
  await rm(DATA_PATH, { recursive: true, force: true });
  await mkdir(DATA_PATH, { recursive: true });
  const fresh = createClickHouse({ path: DATA_PATH, database: 'bench' });
  await applyMigrations(fresh);
  baseMs = Math.floor((Date.now() - DAYS * 86_400_000) / 3_600_000) * 3_600_000;
  const ms = await loadData(fresh, baseMs);
  console.log(`loaded ${ROWS.toLocaleString()} alerts (+1% replayed copies, 2% triaged) in ${(ms / 1000).toFixed(1)} s`);
  await fresh.close();
}
const db = createClickHouse({ path: DATA_PATH, database: 'bench' });
await db.ensureDatabase();
const counts = {
  alertRows: await count(db, `SELECT count() AS n FROM ${db.table('alerts')}`),
  distinctAlerts: await count(db, `SELECT uniqExact(alert_id) AS n FROM ${db.table('alerts')}`),
  timeTableRows: await count(db, `SELECT count() AS n FROM ${db.table('alerts_by_detected_v2')}`),
  triageRows: await count(db, `SELECT count() AS n FROM ${db.table('alert_triage')}`),
  alertParts: await count(db, `SELECT count() AS n FROM system.parts WHERE database = 'bench' AND table = 'alerts' AND active`),
};
console.log('data:', counts);

const MB = 1024 * 1024;
const scenarios = [
  { name: 'A: hot views only (console polling), read model + page cache', readModel: true, rowMb: 256, cacheMs: 1000, drill: 0 },
  { name: 'B: 5% drill-down, read model + page cache', readModel: true, rowMb: 256, cacheMs: 1000, drill: 0.05 },
  { name: 'C: 20% drill-down, read model + page cache', readModel: true, rowMb: 256, cacheMs: 1000, drill: 0.2 },
  { name: 'D: 20% drill-down, read model, NO page cache', readModel: true, rowMb: 256, cacheMs: 0, drill: 0.2 },
  { name: 'E: 20% drill-down, read model with a 16 MiB row arena (~8% of the rows; misses read ClickHouse) + page cache', readModel: true, rowMb: 16, cacheMs: 1000, drill: 0.2 },
  { name: 'F: 5% drill-down, ClickHouse only (no read model), 006 + page cache', readModel: false, rowMb: 0, cacheMs: 1000, drill: 0.05 },
].filter((s) => !only || s.name.includes(only));

const results: unknown[] = [];
let memReported = false;
for (const s of scenarios) {
  const registry = createRegistry({ service: 'api-bench', defaultMetrics: false });
  const logger = createLogger({ service: 'api-bench', level: 'warn' });
  const heap0 = process.memoryUsage();
  const readModel = s.readModel
    ? createAlertReadModel({ ch: db, metrics: createApiMetrics(registry), logger, maxAlerts: 2_000_000, rowBytes: s.rowMb * MB, pollMs: 1000 })
    : undefined;
  await readModel?.start();
  // Drop load garbage so the figures below are what the model holds.
  (globalThis as { gc?: () => void }).gc?.();
  const mem = process.memoryUsage();
  const model = readModel?.stats();
  if (model) {
    // Process figures only for the first model: later ones also count what earlier scenarios freed
    // but the allocator has not returned yet.
    const proc = memReported
      ? ''
      : `; process RSS ${Math.round(mem.rss / MB)} MiB (+${Math.round((mem.rss - heap0.rss) / MB)} with the model and the load's ClickHouse caches), JS heap ${Math.round(mem.heapUsed / MB)} MiB (+${Math.round((mem.heapUsed - heap0.heapUsed) / MB)})`;
    memReported = true;
    console.log(`\nread model: ${model.alerts.toLocaleString()} alerts loaded in ${((model.loadMs ?? 0) / 1000).toFixed(1)} s; index ~${Math.round(model.indexBytes / MB)} MiB, rows ${Math.round(model.rowBytesUsed / MB)}/${Math.round(model.rowBytes / MB)} MiB${proc}`);
  }
  const app = createApp({
    ch: db,
    alertFeed: createMemoryAlertFeed(),
    auth: createAuthenticator([{ key: KEY, role: 'viewer', name: 'bench' }]),
    logger,
    metricsRegistry: registry,
    // One key at 500 req/s is far above the production default (6000/min): off for the bench.
    rateLimit: false,
    alertsCacheMs: s.cacheMs,
    ...(readModel ? { readModel } : {}),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  // Cursors for "next page" requests: walk a few lists 20 pages deep.
  const cursors: string[] = [];
  for (const q of ['', 'rule=sync_lag&', 'severity=critical&', 'status=open&']) {
    let cursor: string | null = null;
    for (let p = 0; p < 20; p++) {
      const res = await fetch(`${base}/alerts?${q}limit=50${cursor ? `&cursor=${cursor}` : ''}`, { headers: { 'x-api-key': KEY } });
      const body = (await res.json()) as { next_cursor: string | null };
      if (!body.next_cursor) break;
      cursor = body.next_cursor;
      cursors.push(cursor);
    }
  }
  const drill = drillOverride === '' ? s.drill : Number(drillOverride);
  const urls = buildMix(baseMs, cursors, Math.round(rate * durationS), drill);
  // Warm-up (2 s at the same rate): JIT, ClickHouse mark cache.
  await spawnWorker({ base, key: KEY, rate, durationMs: 2000, urls: urls.slice(-rate * 2) });
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const load0 = loadavg()[0]!;
  const r = await spawnWorker({ base, key: KEY, rate, durationMs: durationS * 1000, urls });
  loop.disable();
  // Requests the load generator gave up on may still be queued in chDB: let them finish so the
  // next scenario starts clean (the embedded connection runs calls in order).
  await db.client.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((x) => x.json());
  const queryMs: Record<string, { count: number; meanMs: number }> = {};
  for (const m of (await registry.getSingleMetric('tillwatch_api_clickhouse_query_seconds')!.get()).values as { metricName?: string; labels: Record<string, unknown>; value: number }[]) {
    const kind = m.metricName?.endsWith('_count') ? 'count' : m.metricName?.endsWith('_sum') ? 'sum' : undefined;
    if (!kind) continue;
    const q = (queryMs[String(m.labels['query'])] ??= { count: 0, meanMs: 0 });
    if (kind === 'count') q.count = m.value;
    else q.meanMs = m.value * 1000;
  }
  for (const q of Object.values(queryMs)) q.meanMs = r2(q.count ? q.meanMs / q.count : 0);
  const eventLoopDelayMs = { p50: r2(loop.percentile(50) / 1e6), p99: r2(loop.percentile(99) / 1e6), max: r2(loop.max / 1e6) };
  const machineLoad1m = [r2(load0), r2(loadavg()[0]!)];
  const reads: Record<string, number> = {};
  for (const m of (await registry.getSingleMetric('tillwatch_api_alert_reads_total')!.get()).values) reads[`${String(m.labels['source'])}/${String(m.labels['reason'])}`] = m.value;
  const rowFetches = (await registry.getSingleMetric('tillwatch_api_read_model_row_fetches_total')!.get()).values[0]?.value ?? 0;
  await app.close();
  await readModel?.close();
  const throughput = r2((r.completed / r.elapsedMs) * 1000);
  const ok = r.statuses['200'] ?? 0;
  console.log(`\n${s.name}\n  offered ${rate} req/s for ${durationS} s: ${r.completed}/${r.sent} answered (${ok} x 200, errors ${r.errors}), throughput ${throughput} req/s`);
  console.log(`  latency from scheduled send: p50 ${r.latencyMs.p50} ms, p90 ${r.latencyMs.p90} ms, p99 ${r.latencyMs.p99} ms, p99.9 ${r.latencyMs.p999} ms, max ${r.latencyMs.max} ms`);
  console.log(`  API event-loop delay p50 ${eventLoopDelayMs.p50} ms, p99 ${eventLoopDelayMs.p99} ms, max ${eventLoopDelayMs.max} ms; machine load (1 min) before/after ${machineLoad1m.join(' / ')}`);
  console.log(`  ClickHouse queries (count, mean ms, incl. warm-up and cursor setup): ${Object.entries(queryMs).map(([k, v]) => `${k} ${v.count} x ${v.meanMs}`).join(', ')}`);
  console.log(`  reads (incl. warm-up): ${JSON.stringify(reads)}, rows read from ClickHouse for pages: ${rowFetches}`);
  console.log(`  page cache: ${JSON.stringify(r.cache)}   target p99 <= 50 ms: ${r.latencyMs.p99 <= 50 && r.errors === 0 && ok === r.sent ? 'MET' : 'NOT MET'}`);
  results.push({ scenario: s.name, readModel: model ? { ...model, rssMiB: Math.round(mem.rss / MB), heapUsedMiB: Math.round(mem.heapUsed / MB) } : null, pageCacheMs: s.cacheMs, reads, rowFetches, drillDownShare: drill, offeredRate: rate, durationS, throughput, ...r, eventLoopDelayMs, machineLoad1m, clickhouseQueries: queryMs });
}
await db.close();

await mkdir(dirname(RESULTS), { recursive: true });
await writeFile(
  RESULTS,
  JSON.stringify(
    {
      benchmark: 'api GET /alerts',
      command: `npm run bench:api -- --rate ${rate} --duration ${durationS}${only ? ` --only '${only}'` : ''}`,
      at: new Date().toISOString(),
      machine: { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      clickhouse: 'embedded chDB (in the API process, one query at a time)',
      note: 'read model: services/api/src/read-model (index + row arena in the API process, fed from ClickHouse)',
      data: { ...counts, merchants: MERCHANTS, terminals: TERMINALS, days: DAYS },
      results,
    },
    null,
    2,
  ) + '\n',
);
console.log(`\nwrote ${RESULTS}`);
process.exit(0);
