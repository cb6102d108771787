// Both stages in one process for `tillwatch backtest`: the engine's output for each input record goes
// into the stage core as the records one detector partition would publish (partition 0 of 1), with the
// engine clock as its watermark; the stage's alerts and updates join the engine's in the output files,
// and the governor's final actions (with their decision) go to --actions.
//
// Alert lines are the alert contract plus `incident_id`: the fleet incident the alert belongs to (an
// IncidentMembership of the stage), null otherwise. Live, the per-terminal alert is published before
// the incident exists (the first terminals open it) and the link is a record of its own
// (pos.incidents.members.v1); here each alert line of a rule that can belong to an incident waits
// until its membership is decided, so the file says what the API says about the alert (alert joined
// with incident_members). The wait is bounded by stream time: an episode start can be linked only by
// an incident opening within `sync_incident.window` after it; an upload_backlog or sequence_gap alert
// by its terminal entering (role `before`) with a start less than `window` after it, itself linked less
// than `window` after that start: within 2 x `window`.
import { contractJson, type Action, type Alert, type AlertUpdate, type IncidentMembership } from '@tillwatch/schemas';
import type { EngineOutput, RulesConfig } from '@tillwatch/rules';
import { createStageCore, EPISODE_RULES, INCIDENT_NOTIFY_RULES, type StageOutput } from './core.js';
import { createActivityTracker, stageRecordsOf } from './derive.js';
import type { ActionDecision, GovernedAction, StageRecord } from './types.js';

export interface BacktestStage {
  onOutput(input: { terminal_id: string; merchant_id: string; received_time: number }, out: EngineOutput): void;
  end(): void;
  /** The stage's own alerts and updates, and every alert line decided so far (engine and stage, with incident_id). */
  take(): { alerts: readonly Alert[]; updates: readonly AlertUpdate[]; alertLines: readonly string[] };
  /** The engine's alert lines are written by take() (runBacktest writes none itself). */
  readonly ownsAlertLines: true;
  /** The governor's actions and decisions since the last call (the --actions lines). */
  takeActions(): GovernedAction[];
  /** Incident memberships since the last call. */
  takeMemberships(): IncidentMembership[];
  /** With `keepDecisions`: the decisions and the published (final) actions since the last call, as the live stage writes them. */
  takeDecisions(): { decisions: ActionDecision[]; actions: Action[] };
  decisions(): number;
  /** Memberships decided after their alert's line was written (input out of received-time order): the line says incident_id null. */
  lateLinks(): number;
}

/** An alert line of `tillwatch backtest` and `tillwatch replay`: the alert contract plus the incident it belongs to. */
export function alertLine(a: Alert, incidentId: string | null): string {
  const json = contractJson('alert', a);
  return `${json.slice(0, -1)},"incident_id":${JSON.stringify(incidentId)}}`;
}

/** Joins decisions with the actions they produced: one line per proposed action (and per stage action). */
export function governedActions(o: StageOutput, proposed: ReadonlyMap<string, Action>): GovernedAction[] {
  const finals = new Map(o.actions.map((a) => [a.action_id, a]));
  return o.decisions.map((d: ActionDecision): GovernedAction => {
    const a = (d.final_action_id !== null ? finals.get(d.final_action_id) : undefined) ?? proposed.get(d.action_id)!;
    return { ...a, decision: d.decision, decision_reason: d.reason, incident_id: d.incident_id };
  });
}

interface Line {
  alert: Alert;
  incident: string | null;
  /** Stage frontier at which, still unlinked, it is known to belong to no incident; null = decided. */
  due: number | null;
}

export function createBacktestStage(config: RulesConfig, options: { keepDecisions?: boolean } = {}): BacktestStage {
  const core = createStageCore({ partitions: 1, config });
  const tracker = createActivityTracker();
  const window = config.stage.sync_incident.window;
  let clock = -1;
  const alerts: Alert[] = [];
  const updates: AlertUpdate[] = [];
  let actions: GovernedAction[] = [];
  let memberships: IncidentMembership[] = [];
  let kept: { decisions: ActionDecision[]; actions: Action[] } = { decisions: [], actions: [] };
  let decisions = 0;
  let lateLinks = 0;
  const proposed = new Map<string, Action>();
  const records: StageRecord[] = [];
  // Alert lines in output order; the head is written once decided.
  let queue: Line[] = [];
  const undecided = new Map<string, Line>();
  const lines: string[] = [];
  const release = (frontier: number): void => {
    let i = 0;
    for (; i < queue.length; i++) {
      const l = queue[i]!;
      if (l.due !== null) {
        if (l.due > frontier) break;
        l.due = null;
        undecided.delete(l.alert.alert_id);
      }
      lines.push(alertLine(l.alert, l.incident));
    }
    if (i > 0) queue = queue.slice(i);
  };
  const collect = (o: StageOutput): void => {
    for (const m of o.memberships) {
      const l = undecided.get(m.alert_id);
      if (l === undefined) {
        // The wait above holds for input in received-time order. A record whose received_time is
        // before the stream clock (input out of order) can still open an incident or link alerts
        // whose lines are written: the membership is kept (--memberships, as the live stage links
        // it), the line keeps incident_id null, and the run counts it (summary late_links).
        lateLinks++;
        memberships.push(m);
        continue;
      }
      l.incident = m.incident_id;
      l.due = null;
      undecided.delete(m.alert_id);
      memberships.push(m);
    }
    for (const a of o.alerts) {
      alerts.push(a);
      queue.push({ alert: a, incident: null, due: null });
    }
    for (const u of o.updates) updates.push(u);
    decisions += o.decisions.length;
    if (o.decisions.length > 0) for (const g of governedActions(o, proposed)) actions.push(g);
    for (const d of o.decisions) proposed.delete(d.action_id);
    if (options.keepDecisions === true) {
      for (const d of o.decisions) kept.decisions.push(d);
      for (const a of o.actions) kept.actions.push(a);
    }
  };
  return {
    ownsAlertLines: true,
    onOutput(input, out) {
      for (const a of out.alerts) {
        if (!INCIDENT_NOTIFY_RULES.has(a.rule)) {
          queue.push({ alert: a, incident: null, due: null });
          continue;
        }
        const l: Line = { alert: a, incident: null, due: a.detected_at + (EPISODE_RULES.has(a.rule) ? window : 2 * window) };
        queue.push(l);
        undecided.set(a.alert_id, l);
      }
      records.length = 0;
      const s = tracker.seen(0, input.terminal_id, input.merchant_id, input.received_time);
      if (s !== null) records.push(s);
      stageRecordsOf(0, out, records);
      for (const r of records) if (r.type === 'action') proposed.set(r.action.action_id, r.action);
      const published = clock;
      if (input.received_time > clock) clock = input.received_time;
      tracker.closes(0, clock, published, records);
      records.push({ type: 'watermark', partition: 0, time: clock });
      collect(core.apply(records));
      release(core.frontier());
    },
    end() {
      collect(core.flush());
      release(Infinity);
    },
    take() {
      return { alerts: alerts.splice(0), updates: updates.splice(0), alertLines: lines.splice(0) };
    },
    takeActions() {
      const r = actions;
      actions = [];
      return r;
    },
    takeMemberships() {
      const r = memberships;
      memberships = [];
      return r;
    },
    takeDecisions() {
      const r = kept;
      kept = { decisions: [], actions: [] };
      return r;
    },
    decisions: () => decisions,
    lateLinks: () => lateLinks,
  };
}
