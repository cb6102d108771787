// Runs a scenario's events.jsonl through both stages (the CLI's path) and returns the output lines.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStagedBacktest } from '../../scripts/backtest.js';

export interface ScenarioOutput {
  alerts: string;
  updates: string;
  actions: string;
  memberships: string;
}

export async function runScenario(eventsPath: string): Promise<ScenarioOutput> {
  const dir = await mkdtemp(join(tmpdir(), 'tw-stage-'));
  try {
    const p = (f: string): string => join(dir, f);
    await runStagedBacktest({ eventsPath, outPath: p('alerts.jsonl'), updatesPath: p('updates.jsonl'), actionsPath: p('actions.jsonl'), membershipsPath: p('memberships.jsonl'), log: () => {} });
    const [alerts, updates, actions, memberships] = await Promise.all(['alerts.jsonl', 'updates.jsonl', 'actions.jsonl', 'memberships.jsonl'].map((f) => readFile(p(f), 'utf8')));
    return { alerts: alerts!, updates: updates!, actions: actions!, memberships: memberships! };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const lines = <T>(text: string): T[] => text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as T);
