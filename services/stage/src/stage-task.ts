// The stage task: the pure stage core (@tillwatch/stage) wired to Kafka records. One task (the input
// topic has one partition). Its state goes to the stage changelog as JSON values in the stream
// package's changelog encoding.
import type { Action, ActionDecision, Alert, AlertUpdate, IncidentMembership } from '@tillwatch/schemas';
import type { RulesConfig } from '@tillwatch/rules';
import { createStageCore, type StageOutput, type StageRecord } from '@tillwatch/stage';
import { createRulesSwitch } from '@tillwatch/rules-live';
import { decodeChangelogValue, encodeChangelogValueV1, type DecodedRecord, type OutputMessage, type Task, type TaskResult } from '@tillwatch/stream';
import type { StageMetrics } from './metrics.js';

export interface StageTopics {
  alerts: string;
  alertUpdates: string;
  freezeActions: string;
  notifyActions: string;
  actionDecisions: string;
  /** pos.incidents.members.v1: which per-terminal alerts belong to which incident. */
  incidentMembers: string;
}

export interface StageTaskOptions {
  /** Partitions of the detector's input (pos.transactions.v1): all must publish a watermark. */
  inputPartitions: number;
  /** The rule set the task starts with. */
  rules: RulesConfig;
  /**
   * The rule set in force (live rules, pos.rules.v1). Read at every batch boundary (process, tick):
   * a new version applies from the batch about to run (core.setConfig: state kept, records still
   * buffered are applied with it). Absent: `rules` stays.
   */
  currentRules?: () => RulesConfig;
  /** Called when this task switched rules (the new version). */
  onRulesApplied?: (version: number) => void;
  topics: StageTopics;
  encodeAlert(a: Alert): Buffer;
  encodeUpdate(u: AlertUpdate): Buffer;
  encodeAction(a: Action): Buffer;
  encodeDecision(d: ActionDecision): Buffer;
  encodeMembership(m: IncidentMembership): Buffer;
  metrics: StageMetrics;
  /** Called after commit with what was published (tests, logs). */
  onCommitted?: (out: StageOutput) => void;
}

const NOTIFY = new Set<string>(['NOTIFY_MERCHANT', 'NOTIFY_ACQUIRER']);

export function createStageTask(o: StageTaskOptions): Task {
  const core = createStageCore({ partitions: o.inputPartitions, config: o.rules });
  const { topics } = o;
  // The same switch as the detector's tasks (@tillwatch/rules-live): only at the first call of a
  // batch, so every output of one transaction is decided under one rules version.
  const rulesSwitch = o.currentRules
    ? createRulesSwitch(
        o.currentRules,
        (cfg) => {
          core.setConfig(cfg);
          o.onRulesApplied?.(cfg.version);
        },
        o.rules,
      )
    : undefined;

  const toResult = (out: StageOutput): TaskResult => {
    const st = core.stats();
    o.metrics.buffered.set(st.buffered);
    o.metrics.late.set(st.late);
    o.metrics.incidentOpen.set(st.incidentOpen ? 1 : 0);
    if (out.alerts.length === 0 && out.updates.length === 0 && out.actions.length === 0 && out.decisions.length === 0 && out.memberships.length === 0) return { messages: [] };
    const messages: OutputMessage[] = [];
    for (const a of out.alerts) messages.push({ topic: topics.alerts, key: a.merchant_id, value: o.encodeAlert(a) });
    for (const a of out.actions) messages.push({ topic: NOTIFY.has(a.kind) ? topics.notifyActions : topics.freezeActions, key: a.merchant_id, value: o.encodeAction(a) });
    for (const u of out.updates) messages.push({ topic: topics.alertUpdates, key: u.merchant_id, value: o.encodeUpdate(u) });
    for (const d of out.decisions) messages.push({ topic: topics.actionDecisions, key: d.merchant_id, value: o.encodeDecision(d) });
    // After the incident alert in the same transaction: a membership is never visible before its incident.
    for (const m of out.memberships) messages.push({ topic: topics.incidentMembers, key: m.merchant_id, value: o.encodeMembership(m) });
    return {
      messages,
      committed: () => {
        const wall = Date.now();
        for (const a of out.alerts) o.metrics.stageAlerts.inc({ rule: a.rule });
        for (const d of out.decisions) {
          o.metrics.decisions.inc({ decision: d.decision, kind: d.kind });
          o.metrics.eventToAction.observe(Math.max(0, wall - d.decided_at) / 1000);
        }
        o.onCommitted?.(out);
      },
    };
  };

  return {
    restore(entries) {
      core.restore([...entries].map(([k, v]): [string, unknown] => [k, decodeChangelogValue(v)]));
      rulesSwitch?.batchEnded();
    },
    process(_topic, records: DecodedRecord[]) {
      rulesSwitch?.sync();
      return toResult(core.apply(records.map((r) => r.value as StageRecord)));
    },
    tick() {
      rulesSwitch?.sync();
      return { messages: [] };
    },
    takeChanges() {
      rulesSwitch?.batchEnded();
      // A removed key is a real tombstone (null value), so compaction drops it. Values are written in
      // format 0x01: 0x02's dictionary holds the engine's field names, none of the stage's, and a
      // stage of the previous release reads 0x01 only (roll back without a new changelog topic).
      return core.takeChanges().map(([k, v]): [string, Buffer | null] => [k, v === null || v === undefined ? null : encodeChangelogValueV1(v)]);
    },
  };
}
