// Rules as live data in a stream processor (the detector, the second stage): the rule set in force
// comes from pos.rules.v1 when the topic exists, else from TILLWATCH_RULES (or the defaults). A
// follower (its own reader: every instance reads every record, nothing is committed) folds the topic
// into a ledger; the processor's tasks read `current()` at each batch boundary and switch there
// (createRulesSwitch: state kept, no restart). A refused document (pushed directly to the topic,
// bypassing the CLI's and the API's validation) is logged as an error and counted; the last good
// version stays in force. Moved here from the detector so the stage follows the topic the same way.
import type { Kafka } from 'kafkajs';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { RulesConfig } from '@tillwatch/rules';
import type { RegistryClient } from '@tillwatch/stream';
import type { Logger } from '@tillwatch/telemetry';
import { createRulesFollower, rulesTopicExists, type RulesFollower } from './topic.js';

export function createRulesMetrics(registry: Registry) {
  return {
    version: new Gauge({ name: 'tillwatch_rules_version', help: 'Version of the rules document in force in this instance (detector, stage or sink)', registers: [registry] }),
    applied: new Counter({ name: 'tillwatch_rules_versions_applied_total', help: 'Rules versions this instance switched to (including the one read at start)', registers: [registry] }),
    rejected: new Counter({ name: 'tillwatch_rules_documents_rejected_total', help: 'Rules documents refused (invalid, stale version, undecodable); the version in force is kept', labelNames: ['reason'] as const, registers: [registry] }),
  };
}
export type RulesMetrics = ReturnType<typeof createRulesMetrics>;

export interface LiveRulesOptions {
  kafka: Kafka;
  registry: RegistryClient;
  /** pos.rules.v1 (under the TOPIC_PREFIX in use). */
  topic: string;
  /** In force until the topic holds a valid document, and for good when the topic does not exist. */
  fallback: RulesConfig;
  logger: Logger;
  metrics?: RulesMetrics;
  groupPrefix?: string;
}

export interface LiveRules {
  /** The rule set in force now (a new object when a new version arrives; compare by identity). */
  current(): RulesConfig;
  /** 'topic' when following pos.rules.v1, 'static' when it does not exist. */
  source(): 'topic' | 'static';
  stop(): Promise<void>;
}

/** Reads pos.rules.v1 to its end (the latest version before any processing), then follows it. */
export async function startLiveRules(o: LiveRulesOptions): Promise<LiveRules> {
  let current = o.fallback;
  o.metrics?.version.set(current.version);
  if (!(await rulesTopicExists(o.kafka, o.topic))) {
    o.logger.warn({ topic: o.topic, version: current.version }, 'rules topic not provisioned: the rules of TILLWATCH_RULES (or the defaults) stay in force');
    return { current: () => current, source: () => 'static', stop: async () => undefined };
  }
  const follower: RulesFollower = createRulesFollower({
    kafka: o.kafka,
    registry: o.registry,
    topic: o.topic,
    logger: o.logger,
    groupPrefix: o.groupPrefix ?? 'tillwatch-detector-rules',
    onOutcome: (outcome, caughtUp) => {
      if (outcome.kind === 'rejected') o.metrics?.rejected.inc({ reason: outcome.reason });
      else if (outcome.kind === 'applied') {
        current = outcome.active.config;
        o.metrics?.applied.inc();
        o.metrics?.version.set(current.version);
        if (caughtUp) o.logger.info({ version: current.version, pushed_by: outcome.active.entry.pushed_by }, 'new rules version: each task switches at its next batch');
      }
    },
  });
  await follower.start();
  const active = follower.active();
  if (active) o.logger.info({ version: active.config.version, pushed_by: active.entry.pushed_by, pushed_at: new Date(active.entry.pushed_at).toISOString() }, 'rules in force from the rules topic');
  else o.logger.info({ topic: o.topic, version: current.version }, 'rules topic holds no valid document yet: TILLWATCH_RULES (or the defaults) in force until one is pushed');
  return { current: () => current, source: () => 'topic', stop: () => follower.stop() };
}

/**
 * A task's switch to the rule set in force, at batch boundaries only. A batch (one Kafka transaction)
 * may reach the task in several calls (process/processMixed in chunks of 1,000 records, with the event
 * loop running between them, where a new version can arrive) and ends when its changes are taken. So
 * `sync()`, called before every process/processMixed/tick call and, in the detector, before each
 * record's input checks (DetectorTask.rulesForBatch: the batch's first decoded record pins it),
 * switches only at the first call of a batch: every output and every input check of one transaction
 * sees one rules version, and nothing before the switch saw the new one. `batchEnded()` marks the end
 * (takeChanges, restore). A batch that decoded records but took none (an aligned step waiting for its
 * other input) ends at the next step that commits or the next tick: the version stays pinned until
 * then. `apply` runs once per new version (compared by identity with the one the task was built with,
 * `initial`).
 */
export interface RulesSwitch {
  sync(): void;
  batchEnded(): void;
  /** The rule set the task applies (after the last sync). */
  applied(): RulesConfig;
}

export function createRulesSwitch(current: () => RulesConfig, apply: (config: RulesConfig) => void, initial: RulesConfig = current()): RulesSwitch {
  let applied = initial;
  let inBatch = false;
  return {
    sync() {
      if (inBatch) return;
      inBatch = true;
      const cfg = current();
      if (cfg === applied) return;
      apply(cfg);
      applied = cfg;
    },
    batchEnded() {
      inBatch = false;
    },
    applied: () => applied,
  };
}
