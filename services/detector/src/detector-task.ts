// One detector task = the rule engine of one partition number, wired to Kafka records.
// Input records arrive decoded and validated; outputs are encoded Avro messages; state changes
// go to the changelog in the stream package's binary changelog encoding (a format byte and
// MessagePack; values written as JSON before it still restore), versioned by the topic name.
import type { Action, Alert, AlertUpdate, Heartbeat, RefundReason, Transaction } from '@tillwatch/schemas';
import { ChangelogValueWriter, decodeChangelogValue, type DecodedRecord, type OutputMessage, type Task, type TaskResult } from '@tillwatch/stream';
import { FIELD_NAMES, createChangelogView, type ChangelogValue, type EngineOutput, type RuleEngine, type RulesConfig } from '@tillwatch/rules';
import type { DetectorMetrics } from '@tillwatch/telemetry';
import { createRulesSwitch } from '@tillwatch/rules-live';
import { ACTIVITY_BUCKET_MS } from '@tillwatch/stage';
import { applyHeartbeat } from './heartbeats.js';
import type { StageOutput } from './stage-output.js';

export const CLOCK_KEY = '__clock__';

export interface DetectorTopics {
  transactions: string;
  heartbeats: string;
  alerts: string;
  freezeActions: string;
  notifyActions: string;
  alertUpdates: string;
  refundReasons: string;
  /** Alerts of rules in shadow mode (same contract, no actions). */
  shadowAlerts: string;
}

const NOTIFY_KINDS = new Set<Action['kind']>(['NOTIFY_MERCHANT', 'NOTIFY_ACQUIRER']);

/** Notify kinds go to pos.actions.notify.v1; freeze, hold and review kinds to pos.actions.freeze.v1. */
export const isNotifyAction = (a: Action): boolean => NOTIFY_KINDS.has(a.kind);

export interface DetectorTaskOptions {
  partition: number;
  engine: RuleEngine;
  topics: DetectorTopics;
  encodeAlert(a: Alert): Buffer;
  /** Encodes for pos.alerts.shadow.v1 (its own subject); default encodeAlert. */
  encodeShadowAlert?(a: Alert): Buffer;
  /**
   * The rule set in force (live rules). Read at every batch boundary (the first process,
   * processMixed or tick call after takeChanges): when it is a new object, the engine swaps to it
   * before the batch (engine.setRules, state kept). Absent: the engine keeps the rules it was built with.
   */
  rules?: () => RulesConfig;
  /** Called when this task switched rules (partition, new version). */
  onRulesApplied?: (partition: number, version: number) => void;
  encodeAction(a: Action): Buffer;
  encodeUpdate(u: AlertUpdate): Buffer;
  encodeRefundReason(r: RefundReason): Buffer;
  metrics: DetectorMetrics;
  /** Advance the stream clock by wall time while the partition is quiet (live mode). */
  wallClockTimers: boolean;
  onAlerts?: (alerts: Alert[]) => void;
  /** The second stage (issue 10): actions are proposed to it, not published (stage-output.ts). */
  stage?: StageOutput;
  /**
   * Changelog value format written: 2 (default, dictionary keys) or 1 (the previous one, which
   * versions before issue 12's third pass read: for a rolling upgrade, until every instance reads 2).
   */
  changelogFormat?: 1 | 2;
}

const NONE: readonly never[] = Object.freeze([]);

function append<T>(to: T[], from: readonly T[]): void {
  for (let i = 0; i < from.length; i++) to.push(from[i]!);
}

/** A detector task; `rulesForBatch` pins (and returns) the rule set of the batch in progress, as the task's first call of a batch would. */
export interface DetectorTask extends Task {
  /**
   * The rule set this task applies to the batch in progress: read at the batch's first call (its
   * first decoded record: the input checks that depend on the rules, engine.max_clock_skew, use it),
   * so the checks and the engine of one transaction see one version. Without live rules: undefined.
   */
  rulesForBatch(): RulesConfig | undefined;
}

export function createDetectorTask(o: DetectorTaskOptions): DetectorTask {
  const { engine, topics } = o;
  // State changes are written as small entities (a terminal, a sale), not whole merchants.
  const changelog = createChangelogView(engine);
  const partitionLabel = String(o.partition);
  // Live clock = latest received time + wall time elapsed since it arrived (DESIGN.md, "Time").
  let lastReceived = 0;
  let wallAtLastReceived = 0;
  let lastEventTime = 0;
  let clockWritten = -1;
  // At a batch boundary (the first call of a batch, see createRulesSwitch): the engine swaps to a new
  // rules version, state kept; every alert of one transaction carries one rules_version.
  const rulesSwitch = o.rules
    ? createRulesSwitch(o.rules, (cfg) => {
        engine.setRules(cfg);
        o.onRulesApplied?.(o.partition, cfg.version);
      })
    : undefined;
  const encodeShadow = o.encodeShadowAlert ?? o.encodeAlert;
  // Changelog values written straight from the engine's state into their encoding (no snapshot objects).
  const valueWriter = new ChangelogValueWriter(FIELD_NAMES, o.changelogFormat === 1 ? 1 : 2);

  const toResult = (alerts: Alert[], actions: Action[], updates: readonly AlertUpdate[] = NONE, reasons: readonly RefundReason[] = NONE, shadow: readonly Alert[] = NONE, tickWall = -1): TaskResult => {
    const staged = o.stage?.messages(alerts, actions, updates, engine.clock(), lastReceived, tickWall >= 0, tickWall);
    if (alerts.length === 0 && actions.length === 0 && updates.length === 0 && reasons.length === 0 && shadow.length === 0 && !staged?.length) return { messages: [] };
    const messages: OutputMessage[] = staged ?? [];
    for (const a of alerts) messages.push({ topic: topics.alerts, key: a.merchant_id, value: o.encodeAlert(a) });
    // Shadow alerts: their own topic, in the same Kafka transaction; never an action.
    for (const a of shadow) messages.push({ topic: topics.shadowAlerts, key: a.merchant_id, value: encodeShadow(a) });
    if (!o.stage) for (const a of actions) messages.push({ topic: isNotifyAction(a) ? topics.notifyActions : topics.freezeActions, key: a.merchant_id, value: o.encodeAction(a) });
    // Same transaction as the alerts (keyed by merchant like them): an update is never visible
    // without the alert it updates having been published in the same or an earlier transaction.
    for (const u of updates) messages.push({ topic: topics.alertUpdates, key: u.merchant_id, value: o.encodeUpdate(u) });
    for (const r of reasons) messages.push({ topic: topics.refundReasons, key: r.merchant_id, value: o.encodeRefundReason(r) });
    return {
      messages,
      committed: () => {
        const wall = Date.now();
        for (const a of alerts) {
          o.metrics.ruleHits.inc({ rule: a.rule, severity: a.severity });
          o.metrics.decisionLatency.observe(Math.max(0, wall - a.detected_at) / 1000);
        }
        for (const a of actions) o.metrics.actions.inc({ kind: a.kind });
        o.onAlerts?.(alerts);
      },
    };
  };

  // Records of one topic (`topic`), or of either (each record's own topic), in the order to apply them.
  const run = (records: DecodedRecord[], topic: string | undefined, wallMs: number): TaskResult => {
    rulesSwitch?.sync();
    const alerts: Alert[] = [];
    const actions: Action[] = [];
    const updates: AlertUpdate[] = [];
    const reasons: RefundReason[] = [];
    const shadow: Alert[] = [];
    // Called for every input, and nearly every output is empty: indexed loops (a for-of allocated an
    // iterator per array per input: 4 % of the detector's allocated bytes, HEAP_PROFILE=1).
    const collect = (out: EngineOutput) => {
      append(alerts, out.alerts);
      append(actions, out.actions);
      if (out.updates) append(updates, out.updates);
      if (out.refundReasons) append(reasons, out.refundReasons);
      append(shadow, out.shadowAlerts);
    };
    const txTopic = topics.transactions;
    const hbTopic = topics.heartbeats;
    const values = records.map((r) => r.value as Transaction | Heartbeat);
    for (let i = 0; i < values.length; i++) {
      // A hint, no effect on results: the next 8 inputs' index loads issued together (packages/rules
      // README, bench); a heartbeat's terminal lookup is hinted like a transaction's.
      if ((i & 7) === 0) engine.prefetch(values, i, i + 8);
      const t = topic ?? records[i]!.topic;
      if (t === txTopic) {
        const x = values[i] as Transaction;
        collect(engine.onTransaction(x));
        o.stage?.seen(x.terminal_id, x.merchant_id, x.received_time);
        if (x.received_time >= lastReceived) {
          lastReceived = x.received_time;
          wallAtLastReceived = wallMs;
        }
        if (x.event_time > lastEventTime) lastEventTime = x.event_time;
      } else if (t === hbTopic) {
        // A heartbeat moves the partition's stream clock like any arrival does, and goes to the rules.
        const h = values[i] as Heartbeat;
        collect(applyHeartbeat(engine, h));
        o.stage?.seen(h.terminal_id, h.merchant_id, h.received_time);
        if (h.received_time >= lastReceived) {
          lastReceived = h.received_time;
          wallAtLastReceived = wallMs;
        }
      }
    }
    if (lastEventTime > 0) o.metrics.eventTimeLag.set({ partition: partitionLabel }, Math.max(0, engine.clock() - lastEventTime) / 1000);
    o.metrics.stateMerchants.set({ partition: partitionLabel }, engine.stats().merchants);
    return toResult(alerts, actions, updates, reasons, shadow);
  };

  return {
    rulesForBatch() {
      if (!rulesSwitch) return undefined;
      rulesSwitch.sync();
      return rulesSwitch.applied();
    },
    restore(entries) {
      const clock = entries.get(CLOCK_KEY);
      if (clock) engine.setClock(Number(clock.toString('utf8')));
      const entities: Array<[string, ChangelogValue]> = [];
      for (const [key, value] of entries) if (key !== CLOCK_KEY) entities.push([key, decodeChangelogValue(value) as ChangelogValue]);
      changelog.restore(entities);
      lastReceived = engine.clock();
      wallAtLastReceived = Date.now();
      clockWritten = lastReceived;
      rulesSwitch?.batchEnded(); // a restored task starts a batch afresh
      // The stage's activity closes of the hour in progress (and of the one before, if its close was
      // not published yet) come from the restored terminals, not from a tracker that starts empty.
      o.stage?.restored(engine.terminalsActiveSince((Math.floor(engine.clock() / ACTIVITY_BUCKET_MS) - 1) * ACTIVITY_BUCKET_MS));
    },
    process(topic, records: DecodedRecord[], wallMs) {
      return run(records, topic, wallMs);
    },
    // Aligned inputs: transactions and heartbeats interleaved in one call (each record names its topic).
    processMixed(records: DecodedRecord[], wallMs) {
      return run(records, undefined, wallMs);
    },
    tick(wallMs) {
      rulesSwitch?.sync();
      if (!o.wallClockTimers || lastReceived === 0) return o.stage ? toResult([], [], NONE, NONE, NONE, wallMs) : { messages: [] };
      const out = engine.advanceClock(lastReceived + Math.max(0, wallMs - wallAtLastReceived));
      return toResult(out.alerts, out.actions, out.updates, out.refundReasons, out.shadowAlerts, wallMs);
    },
    takeChanges() {
      rulesSwitch?.batchEnded();
      const changes: Array<[string, Buffer | null]> = [];
      changelog.writeChanges(valueWriter, changes);
      const clock = engine.clock();
      if (clock !== clockWritten) {
        changes.push([CLOCK_KEY, Buffer.from(String(clock))]);
        clockWritten = clock;
      }
      return changes;
    },
  };
}
