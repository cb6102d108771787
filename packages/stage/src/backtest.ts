// Both stages in one process for `tillwatch backtest`: the engine's output for each input record goes
// into the stage core as the records one detector partition would publish (partition 0 of 1), with the
// engine clock as its watermark; the stage's alerts and updates join the engine's in the output files,
// and the governor's final actions (with their decision) go to --actions.
import type { Action, Alert, AlertUpdate } from '@tillwatch/schemas';
import type { EngineOutput, RulesConfig } from '@tillwatch/rules';
import { createStageCore, type StageOutput } from './core.js';
import { createActivityTracker, stageRecordsOf } from './derive.js';
import type { ActionDecision, GovernedAction, StageRecord } from './types.js';

export interface BacktestStage {
  onOutput(input: { terminal_id: string; merchant_id: string; received_time: number }, out: EngineOutput): void;
  end(): void;
  take(): { alerts: readonly Alert[]; updates: readonly AlertUpdate[] };
  /** The governor's actions and decisions since the last call (the --actions lines). */
  takeActions(): GovernedAction[];
  decisions(): number;
}

/** Joins decisions with the actions they produced: one line per proposed action (and per stage action). */
export function governedActions(o: StageOutput, proposed: ReadonlyMap<string, Action>): GovernedAction[] {
  const finals = new Map(o.actions.map((a) => [a.action_id, a]));
  return o.decisions.map((d: ActionDecision): GovernedAction => {
    const a = (d.final_action_id !== null ? finals.get(d.final_action_id) : undefined) ?? proposed.get(d.action_id)!;
    return { ...a, decision: d.decision, decision_reason: d.reason, incident_id: d.incident_id };
  });
}

export function createBacktestStage(config: RulesConfig): BacktestStage {
  const core = createStageCore({ partitions: 1, config });
  const tracker = createActivityTracker();
  let clock = -1;
  const alerts: Alert[] = [];
  const updates: AlertUpdate[] = [];
  let actions: GovernedAction[] = [];
  let decisions = 0;
  const proposed = new Map<string, Action>();
  const records: StageRecord[] = [];
  const collect = (o: StageOutput): void => {
    for (const a of o.alerts) alerts.push(a);
    for (const u of o.updates) updates.push(u);
    decisions += o.decisions.length;
    if (o.decisions.length > 0) for (const g of governedActions(o, proposed)) actions.push(g);
    for (const d of o.decisions) proposed.delete(d.action_id);
  };
  return {
    onOutput(input, out) {
      records.length = 0;
      const s = tracker.seen(0, input.terminal_id, input.merchant_id, input.received_time);
      if (s !== null) records.push(s);
      stageRecordsOf(0, out, records);
      for (const r of records) if (r.type === 'action') proposed.set(r.action.action_id, r.action);
      if (input.received_time > clock) clock = input.received_time;
      records.push({ type: 'watermark', partition: 0, time: clock });
      collect(core.apply(records));
    },
    end() {
      collect(core.flush());
    },
    take() {
      const r = { alerts: alerts.splice(0), updates: updates.splice(0) };
      return r;
    },
    takeActions() {
      const r = actions;
      actions = [];
      return r;
    },
    decisions: () => decisions,
  };
}
