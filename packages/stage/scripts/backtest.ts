// `tillwatch backtest` with both stages: the engine's file-reading backtest (@tillwatch/rules/backtest)
// with the second stage plugged in behind it. Does I/O, so it lives outside src.
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { contractJson } from '@tillwatch/schemas';
import { defaultRulesConfig, loadRulesConfig, type RulesConfig } from '@tillwatch/rules';
import { runBacktest, type BacktestRunSummary, type RunBacktestOptions } from '@tillwatch/rules/backtest';
import { createBacktestStage } from '../src/backtest.js';
import type { DecisionKind } from '../src/types.js';

export interface StagedBacktestSummary extends BacktestRunSummary {
  /** The governor's decisions per kind (issued, suppressed, downgraded). */
  decisions: Record<DecisionKind, number>;
  governedActionsPath: string | null;
  /** Incident memberships written to membershipsPath (counted either way). */
  memberships: number;
  membershipsPath: string | null;
  /** Memberships decided after their alert line was written (input out of received-time order); those lines say incident_id null. */
  late_links: number;
}

/** RunBacktestOptions' actionsPath (engine actions) is replaced by the governor's actions. */
export async function runStagedBacktest(o: Omit<RunBacktestOptions, 'stage' | 'actionsPath'> & { actionsPath?: string; membershipsPath?: string }): Promise<StagedBacktestSummary> {
  let config: RulesConfig = defaultRulesConfig();
  if (o.configPath !== undefined) {
    // An invalid file is reported by runBacktest itself (same message as without the stage).
    try {
      config = loadRulesConfig(await readFile(o.configPath, 'utf8'), extname(o.configPath).toLowerCase() === '.json' ? 'json' : 'yaml');
    } catch {
      config = defaultRulesConfig();
    }
  }
  const stage = createBacktestStage(config);
  const decisions: Record<DecisionKind, number> = { issued: 0, suppressed: 0, downgraded: 0 };
  const out = o.actionsPath === undefined ? null : createWriteStream(o.actionsPath);
  const membersOut = o.membershipsPath === undefined ? null : createWriteStream(o.membershipsPath);
  let memberships = 0;
  // The summary's counts are those of the files: the governor's final actions (what --actions holds and
  // the live pipeline publishes), and every alert line, the second stage's own alerts included.
  let governed = 0;
  const governedByKind: Record<string, number> = {};
  let stageAlerts = 0;
  const stageAlertsByRule: Record<string, number> = {};
  let failed: Error | null = null;
  out?.on('error', (e) => (failed = e));
  membersOut?.on('error', (e) => (failed = e));
  const { actionsPath, membershipsPath, ...rest } = o;
  const summary = await runBacktest({
    ...rest,
    stage: {
      onOutput: stage.onOutput,
      end: stage.end,
      ownsAlertLines: stage.ownsAlertLines,
      take: () => {
        const lines = stage.takeActions();
        for (const l of lines) {
          decisions[l.decision]++;
          governed++;
          governedByKind[l.kind] = (governedByKind[l.kind] ?? 0) + 1;
        }
        if (out !== null && lines.length > 0) out.write(lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
        const ms = stage.takeMemberships();
        memberships += ms.length;
        if (membersOut !== null && ms.length > 0) membersOut.write(ms.map((m) => contractJson('incidentMembership', m)).join('\n') + '\n');
        const taken = stage.take();
        for (const a of taken.alerts) {
          stageAlerts++;
          stageAlertsByRule[a.rule] = (stageAlertsByRule[a.rule] ?? 0) + 1;
        }
        return taken;
      },
    },
  });
  if (out !== null) await new Promise<void>((resolve) => out.end(() => resolve()));
  if (membersOut !== null) await new Promise<void>((resolve) => membersOut.end(() => resolve()));
  if (failed) throw failed;
  return {
    ...summary,
    alerts: summary.alerts + stageAlerts,
    alertsByRule: { ...summary.alertsByRule, ...stageAlertsByRule },
    actions: governed,
    actionsByKind: governedByKind,
    actionsPath: actionsPath ?? null, governedActionsPath: actionsPath ?? null, decisions, memberships, membershipsPath: membershipsPath ?? null, late_links: stage.lateLinks() };
}
