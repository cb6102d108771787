// `tillwatch replay` (Kafka, registry, an in-process detector, alerts read back read_committed)
// gives the same alert ids as `tillwatch backtest` (the pure engine) for the same file, both run
// as the real CLI.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createFleet } from '@tillwatch/simulator';
import type { Alert, Transaction } from '@tillwatch/schemas';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../bin/tillwatch.js', import.meta.url));
let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const readAlerts = async (path: string): Promise<Alert[]> =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Alert);

describe('tillwatch replay', () => {
  it('gives the same alerts as tillwatch backtest for the same file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'tillwatch-replay-'));
    const fleet = createFleet({ terminals: 50, cards: 300, seed: 17, anomalyRate: 0.05 });
    const events: Transaction[] = [];
    let now = Date.UTC(2026, 2, 1, 8);
    while (events.length < 4000) {
      now += 1200;
      for (const e of fleet.next(now)) events.push(e);
    }
    const file = join(dir, 'events.jsonl');
    await writeFile(file, events.map((e) => JSON.stringify(e)).join('\n') + '\n');

    const env = { ...process.env, LOG_LEVEL: 'warn' };
    await run(process.execPath, [cli, 'backtest', '--events', file, '--out', join(dir, 'backtest.jsonl'), '--no-progress'], { env });
    const replayed = await run(process.execPath, [cli, 'replay', '--events', file, '--out', join(dir, 'replay.jsonl')], { env, timeout: 170_000 });
    expect(replayed.stdout).toMatch(/replayed 4\d{3} events/);

    const backtest = await readAlerts(join(dir, 'backtest.jsonl'));
    const replay = await readAlerts(join(dir, 'replay.jsonl'));
    expect(backtest.length).toBeGreaterThan(30);
    const rules = new Set(backtest.map((a) => a.rule));
    for (const r of ['duplicate_charge', 'abnormal_amount', 'sync_lag', 'sequence_gap', 'refund_without_sale', 'refund_exceeds_sale']) expect(rules).toContain(r);
    const ids = (xs: Alert[]) => xs.map((a) => a.alert_id).sort();
    expect(ids(replay)).toEqual(ids(backtest));
    // Same alerts, field for field (order of lines aside).
    const byId = new Map(backtest.map((a) => [a.alert_id, a]));
    for (const a of replay) expect(a).toEqual(byId.get(a.alert_id));
  });

  it('publishes heartbeat lines ("type": "heartbeat") to the heartbeat topic: the same upload_backlog alert as the backtest', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'tillwatch-replay-'));
    // A golden file of heartbeats only (one input topic, so the live order is the file's).
    const file = fileURLToPath(new URL('../../../packages/rules/test/scenarios/upload_backlog_draining/events.jsonl', import.meta.url));
    const env = { ...process.env, LOG_LEVEL: 'warn' };
    await run(process.execPath, [cli, 'backtest', '--events', file, '--out', join(dir, 'hb-backtest.jsonl'), '--no-progress'], { env });
    await run(process.execPath, [cli, 'replay', '--events', file, '--out', join(dir, 'hb-replay.jsonl')], { env, timeout: 170_000 });
    const backtest = await readAlerts(join(dir, 'hb-backtest.jsonl'));
    expect(backtest.map((a) => a.rule)).toEqual(['upload_backlog']);
    expect(await readAlerts(join(dir, 'hb-replay.jsonl'))).toEqual(backtest);
  });
});
