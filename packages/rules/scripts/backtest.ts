// `tillwatch backtest`: the file-reading shell around the pure backtest in src/backtest.ts.
// Imported by the CLI as `@tillwatch/rules/backtest`. Lives outside src because it does I/O and
// reads the wall clock (the engine never does).
//
// Input: JSON lines in the transaction contract, arrival order; a line with "type": "heartbeat" is a
// heartbeat (heartbeat contract), validated and rejected like transactions. Output: one alert per line (alert
// contract), optionally one action per line, and a rejects file with every line that is not a valid
// transaction ({line, reason, raw}); a bad line is never fatal and never silently dropped.
import { createWriteStream, type WriteStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { contractJson, type Alert, type AlertUpdate, type RefundReason } from '@tillwatch/schemas';
import { RULE_IDS, createBacktest, type BacktestInput, createLineParser, defaultRulesConfig, isRejected, loadRulesConfig, type BacktestSummary, type EngineOutput, type RulesConfig } from '../src/index.js';

/**
 * A later pipeline stage run in-process behind the engine (the CLI plugs in @tillwatch/stage, which
 * depends on this package, not the other way round). It sees every input record with the engine's
 * output for it, in input order; what it takes out goes to the alerts and updates files.
 */
export interface BacktestStageHook {
  onOutput(input: { terminal_id: string; merchant_id: string; received_time: number }, out: EngineOutput): void;
  /** End of input. */
  end(): void;
  /** The stage's alerts and updates; with `ownsAlertLines`, also every alert line to write (`alertLines`, in its order). */
  take(): { alerts: readonly Alert[]; updates: readonly AlertUpdate[]; alertLines?: readonly string[] };
  /**
   * The stage writes the alert file: the engine's alerts (given to it through onOutput) and its own, as
   * take().alertLines, when it knows what to add to them (the second stage adds the fleet incident a
   * per-terminal alert belongs to, known only later); runBacktest writes no alert line itself.
   */
  ownsAlertLines?: boolean;
}

export interface RunBacktestOptions {
  eventsPath: string;
  outPath: string;
  /** Rules file, YAML or JSON (by extension: .json is JSON, anything else YAML). Default rules when absent. */
  configPath?: string;
  /** Default `<outPath>.rejects.jsonl`. Always written (empty when nothing was rejected). */
  rejectsPath?: string;
  /** When set, the actions are written there, one per line. */
  actionsPath?: string;
  /** When set, the alert updates (EngineOutput.updates) are written there, one per line (alert-update contract). */
  updatesPath?: string;
  /** When set, the refund reasons (EngineOutput.refundReasons) are written there, one per line (refund-reason contract). */
  refundsPath?: string;
  /** Progress bar on stderr; shown only when stderr is a TTY. */
  progress?: boolean;
  /** A second stage run behind the engine (see BacktestStageHook). */
  stage?: BacktestStageHook;
  /** Informational lines (what is read and written). The summary is returned, not logged. */
  log: (line: string) => void;
}

export interface BacktestRunSummary extends BacktestSummary {
  eventsPath: string;
  outPath: string;
  rejectsPath: string;
  actionsPath: string | null;
  updatesPath: string | null;
  refundsPath: string | null;
  /** Alert updates the engine emitted. */
  updates: number;
  /** Refund reasons the engine emitted, per reason and currency (amounts in minor units). */
  refundReasons: RefundReasonTotal[];
  configPath: string | null;
  bytesRead: number;
  /** Peak resident set size of the process so far, bytes. */
  peakRssBytes: number;
}

export interface RefundReasonTotal {
  reason: RefundReason['reason'];
  currency: string;
  count: number;
  amountMinor: number;
}

const CHUNK = 4 << 20;
const GROUP = 256;
const FLUSH_CHARS = 1 << 20;

/** Buffers lines and writes them in large chunks, honouring back-pressure (also the compare command's writer). */
export class LineWriter {
  private readonly stream: WriteStream;
  private parts: string[] = [];
  private size = 0;
  private failed: Error | null = null;

  constructor(path: string) {
    this.stream = createWriteStream(path, { highWaterMark: FLUSH_CHARS });
    this.stream.on('error', (e) => {
      this.failed = e;
    });
  }

  add(line: string): void {
    this.parts.push(line);
    this.size += line.length + 1;
  }

  /** Called between input chunks: writes when enough is buffered. */
  async maybeFlush(): Promise<void> {
    if (this.size >= FLUSH_CHARS) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.parts.length === 0) return;
    const text = this.parts.join('\n') + '\n';
    this.parts = [];
    this.size = 0;
    if (!this.stream.write(text)) await new Promise<void>((resolve, reject) => {
      this.stream.once('drain', resolve);
      this.stream.once('error', reject);
    });
  }

  async close(): Promise<void> {
    await this.flush();
    await new Promise<void>((resolve, reject) => {
      this.stream.once('error', reject);
      this.stream.end(() => resolve());
    });
    if (this.failed) throw this.failed;
  }
}

async function loadConfig(path: string | undefined): Promise<RulesConfig> {
  if (path === undefined) return defaultRulesConfig();
  const text = await readFile(path, 'utf8');
  try {
    return loadRulesConfig(text, extname(path).toLowerCase() === '.json' ? 'json' : 'yaml');
  } catch (e) {
    throw new Error(`invalid rules config ${path}: ${(e as Error).message}`, { cause: e });
  }
}

// Buffer#latin1Slice is what toString('latin1') ends in, without the encoding dispatch; it is not in
// the typings, so it is detected (present in Node 20, 22 and 24) with toString as the fallback.
type Latin1Buffer = Buffer & { latin1Slice?: (start: number, end: number) => string };
const latin1 =
  typeof (Buffer.prototype as Latin1Buffer).latin1Slice === 'function'
    ? (b: Uint8Array, s: number, e: number): string => (b as Latin1Buffer).latin1Slice!(s, e)
    : (b: Uint8Array, s: number, e: number): string => (b as Buffer).toString('latin1', s, e);

/** Lines in the file, estimated from the first 256 KiB: sizes the engine once instead of growing it (capped). */
async function estimateLines(fh: Awaited<ReturnType<typeof open>>, totalBytes: number): Promise<number> {
  const probe = Buffer.allocUnsafe(Math.min(totalBytes, 256 << 10));
  const { bytesRead } = await fh.read(probe, 0, probe.length, 0);
  let lines = 0;
  for (let i = probe.indexOf(10); i >= 0 && i < bytesRead; i = probe.indexOf(10, i + 1)) lines++;
  if (lines === 0) return 0;
  return Math.min(2_000_000, Math.ceil((totalBytes / bytesRead) * lines));
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');

function progressLine(bytes: number, total: number, lines: number, ms: number, alerts: number, width: number): string {
  const frac = total > 0 ? Math.min(1, bytes / total) : 0;
  const barW = Math.max(10, Math.min(40, width - 60));
  const filled = Math.round(frac * barW);
  const rate = ms > 0 ? (lines * 1000) / ms : 0;
  return `\r  backtest [${'#'.repeat(filled)}${'-'.repeat(barW - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${fmtInt(lines)} lines  ${fmtInt(rate)} ev/s  ${fmtInt(alerts)} alerts\x1b[K`;
}

export async function runBacktest(o: RunBacktestOptions): Promise<BacktestRunSummary> {
  const config = await loadConfig(o.configPath);
  const rejectsPath = o.rejectsPath ?? `${o.outPath}.rejects.jsonl`;
  const fh = await open(o.eventsPath, 'r');
  const totalBytes = (await fh.stat()).size;
  o.log(`backtest: ${o.eventsPath} (${(totalBytes / 1e6).toFixed(1)} MB) with ${o.configPath ?? 'the default rules'} -> ${o.outPath}`);
  const tty = o.progress === true && process.stderr.isTTY === true;

  const bt = createBacktest(config, { expectedSales: await estimateLines(fh, totalBytes) });
  const out = new LineWriter(o.outPath);
  const rejects = new LineWriter(rejectsPath);
  const actions = o.actionsPath === undefined ? null : new LineWriter(o.actionsPath);
  const updatesOut = o.updatesPath === undefined ? null : new LineWriter(o.updatesPath);
  const refundsOut = o.refundsPath === undefined ? null : new LineWriter(o.refundsPath);
  let updates = 0;
  const refundTotals = new Map<string, RefundReasonTotal>();
  const t0 = performance.now();
  let nextDraw = t0;
  let buf = Buffer.allocUnsafe(CHUNK);
  let carry = 0; // bytes of an unfinished line kept at the start of buf
  let bytesRead = 0;
  let lineNo = 0;
  let alertsSoFar = 0;

  // Lines are parsed and validated in groups, then the group goes through the engine: alternating
  // JSON.parse (allocation-heavy) and the engine (random access into its state) per line thrashes the
  // caches; grouping measured ~25% faster. Synchronous per line (no promise per event); the writers
  // flush between chunks. Output order is input order.
  const group: BacktestInput[] = [];
  const stage = o.stage;
  const takeStage = (): void => {
    if (stage === undefined) return;
    const s = stage.take();
    alertsSoFar += s.alerts.length;
    if (s.alertLines !== undefined) for (const l of s.alertLines) out.add(l);
    else for (const a of s.alerts) out.add(contractJson('alert', a));
    updates += s.updates.length;
    if (updatesOut !== null) for (const u of s.updates) updatesOut.add(contractJson('alertUpdate', u));
  };
  const runGroup = (): void => {
    for (let i = 0; i < group.length; i++) {
      const r = bt.apply(group[i]!);
      if (stage !== undefined) stage.onOutput(group[i]!, r);
      if (r.updates !== undefined && r.updates.length > 0) {
        updates += r.updates.length;
        if (updatesOut !== null) for (const u of r.updates) updatesOut.add(contractJson('alertUpdate', u));
      }
      if (r.refundReasons !== undefined && r.refundReasons.length > 0) {
        for (const x of r.refundReasons) {
          const key = `${x.reason}\u0000${x.currency}`;
          const t = refundTotals.get(key) ?? { reason: x.reason, currency: x.currency, count: 0, amountMinor: 0 };
          t.count++;
          t.amountMinor += x.amount_minor;
          refundTotals.set(key, t);
          if (refundsOut !== null) refundsOut.add(contractJson('refundReason', x));
        }
      }
      if (r.alerts.length === 0) continue;
      alertsSoFar += r.alerts.length;
      // Contract order, absent nullable fields as null: the same line replay writes for the decoded alert.
      if (stage?.ownsAlertLines !== true) for (const a of r.alerts) out.add(contractJson('alert', a));
      if (actions !== null) for (const a of r.actions) actions.add(JSON.stringify(a));
    }
    group.length = 0;
  };
  // Lines go through the byte-level fast path (src/jsonl.ts) and fall back to JSON.parse on the
  // decoded text for anything outside its narrow shape: same results, same rejects.
  const fast = createLineParser(latin1);
  let lineStart = 0;
  let lineEnd = 0;
  const rawLine = (): string => buf.toString('utf8', lineStart, lineEnd);
  const handle = (start: number, end: number): void => {
    lineStart = start;
    lineEnd = end;
    const v = fast(buf, start, end);
    const r = v !== null ? bt.validate(v, ++lineNo, rawLine) : bt.parse(rawLine(), ++lineNo);
    if (r === null) return;
    if (isRejected(r)) rejects.add(JSON.stringify(r));
    else if (group.push(r) === GROUP) runGroup();
  };

  try {
    for (;;) {
      if (carry === buf.length) {
        // One line longer than the buffer: grow it.
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, carry);
        buf = bigger;
      }
      const { bytesRead: n } = await fh.read(buf, carry, buf.length - carry, null);
      bytesRead += n;
      const end = carry + n;
      if (n === 0) {
        if (end > 0) handle(0, end); // last line without a newline
        runGroup();
        if (stage !== undefined) stage.end();
        takeStage();
        break;
      }
      const lastNl = buf.lastIndexOf(10, end - 1);
      if (lastNl < 0) {
        carry = end;
        continue;
      }
      for (let p = 0; p <= lastNl; ) {
        const q = buf.indexOf(10, p);
        handle(p, q);
        p = q + 1;
      }
      carry = end - lastNl - 1;
      buf.copy(buf, 0, lastNl + 1, end);
      runGroup();
      takeStage();
      await out.maybeFlush();
      await rejects.maybeFlush();
      if (actions !== null) await actions.maybeFlush();
      if (updatesOut !== null) await updatesOut.maybeFlush();
      if (refundsOut !== null) await refundsOut.maybeFlush();
      if (tty) {
        const now = performance.now();
        if (now >= nextDraw) {
          nextDraw = now + 200;
          process.stderr.write(progressLine(bytesRead, totalBytes, lineNo, now - t0, alertsSoFar, process.stderr.columns ?? 80));
        }
      }
    }
    await out.close();
    await rejects.close();
    if (actions !== null) await actions.close();
    if (updatesOut !== null) await updatesOut.close();
    if (refundsOut !== null) await refundsOut.close();
  } finally {
    await fh.close();
    if (tty) process.stderr.write('\r\x1b[K');
  }

  const summary = bt.summary(performance.now() - t0);
  return {
    ...summary,
    eventsPath: o.eventsPath,
    outPath: o.outPath,
    rejectsPath,
    actionsPath: o.actionsPath ?? null,
    updatesPath: o.updatesPath ?? null,
    refundsPath: o.refundsPath ?? null,
    updates,
    refundReasons: [...refundTotals.values()].sort((a, b) => (a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : a.currency < b.currency ? -1 : 1)),
    configPath: o.configPath ?? null,
    bytesRead,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

/** The human summary printed by `tillwatch backtest`. */
export function formatSummary(s: BacktestRunSummary): string {
  const w = 24;
  const row = (label: string, value: string): string => `  ${label.padEnd(w)}${value}`;
  const lines = [
    `backtest ${s.eventsPath} -> ${s.outPath}${s.configPath ? ` (rules ${s.configPath})` : ''}`,
    row('lines read', `${fmtInt(s.linesRead)}${s.blankLines > 0 ? ` (+${fmtInt(s.blankLines)} blank, skipped)` : ''}`),
    row('events processed', `${fmtInt(s.eventsProcessed)}${s.heartbeats > 0 ? ` (${fmtInt(s.heartbeats)} heartbeats)` : ''}`),
    row('rejected', `${fmtInt(s.rejected)}${s.rejected > 0 ? `  -> ${s.rejectsPath}` : ''}`),
    row('alerts', fmtInt(s.alerts)),
    // The engine's rules, then any a later stage added (sync_incident, freeze_circuit_open).
    ...[...RULE_IDS, ...Object.keys(s.alertsByRule).filter((r) => !(RULE_IDS as readonly string[]).includes(r))].map((r) => row(`  ${r}`, fmtInt((s.alertsByRule as Record<string, number>)[r] ?? 0))),
    row('actions', `${fmtInt(s.actions)}${s.actionsPath ? `  -> ${s.actionsPath}` : ''}`),
    ...Object.entries(s.actionsByKind).map(([k, n]) => row(`  ${k}`, fmtInt(n))),
    row('time', `${(s.durationMs / 1000).toFixed(2)} s  (${fmtInt(s.eventsPerSecond)} events/s)`),
    row(
      'state at end',
      `${fmtInt(s.state.merchants)} merchants, ${fmtInt(s.state.terminals)} terminals, ${fmtInt(s.state.sales)} sales, ${fmtInt(s.state.cards)} card keys, ${fmtInt(s.state.pendingGaps)} pending gaps`,
    ),
    row('peak memory', `${(s.peakRssBytes / 2 ** 20).toFixed(0)} MiB RSS`),
  ];
  return lines.join('\n');
}
