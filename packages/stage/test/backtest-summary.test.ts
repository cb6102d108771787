// `tillwatch backtest`'s summary counts what its files hold: every alert line (the second stage's
// sync_incident and freeze_circuit_open included) and the governor's final actions (what --actions
// holds and the live pipeline publishes), not the engine's proposals.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runStagedBacktest } from '../scripts/backtest.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const linesOf = async (path: string): Promise<Array<Record<string, unknown>>> =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const countBy = (xs: Array<Record<string, unknown>>, key: string): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const x of xs) out[String(x[key])] = (out[String(x[key])] ?? 0) + 1;
  return out;
};

describe('backtest summary with both stages', () => {
  it('the fleet outage golden: alert and action counts (total and per rule / kind) equal the files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tw-summary-'));
    dirs.push(dir);
    const events = fileURLToPath(new URL('./scenarios/fleet_outage/events.jsonl', import.meta.url));
    const s = await runStagedBacktest({ eventsPath: events, outPath: join(dir, 'alerts.jsonl'), actionsPath: join(dir, 'actions.jsonl'), progress: false, log: () => undefined });
    const alerts = await linesOf(join(dir, 'alerts.jsonl'));
    const actions = await linesOf(join(dir, 'actions.jsonl'));
    expect(alerts.some((a) => a.rule === 'sync_incident')).toBe(true);
    expect(s.alerts).toBe(alerts.length);
    const byRule = Object.fromEntries(Object.entries(s.alertsByRule as Record<string, number>).filter(([, n]) => n > 0));
    expect(byRule).toEqual(countBy(alerts, 'rule'));
    expect(s.actions).toBe(actions.length);
    expect(s.actionsByKind).toEqual(countBy(actions, 'kind'));
  });
});
