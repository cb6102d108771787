// Runs events through an engine and collects everything it produced.
import type { Action, Alert, AlertUpdate, Heartbeat, RefundReason, Transaction } from '@tillwatch/schemas';
import { createChangelogView, createRuleEngine, isHeartbeat, type ChangelogValue, type EngineOutput, type RuleEngine, type RulesConfig } from '../../src/index.js';

export interface Collected {
  alerts: Alert[];
  actions: Action[];
  shadowAlerts: Alert[];
  updates: AlertUpdate[];
  refundReasons: RefundReason[];
}

export const collected = (): Collected => ({ alerts: [], actions: [], shadowAlerts: [], updates: [], refundReasons: [] });

export function collect(into: Collected, o: EngineOutput): Collected {
  into.alerts.push(...o.alerts);
  into.actions.push(...o.actions);
  into.shadowAlerts.push(...o.shadowAlerts);
  if (o.updates !== undefined) into.updates.push(...o.updates);
  if (o.refundReasons !== undefined) into.refundReasons.push(...o.refundReasons);
  return into;
}

/** One input through the engine: a heartbeat (it has a queue_depth) or a transaction. */
export const feed = (e: RuleEngine, x: Transaction | Heartbeat): EngineOutput => (isHeartbeat(x) ? e.onHeartbeat(x) : e.onTransaction(x));

export function runEvents(e: RuleEngine, events: readonly (Transaction | Heartbeat)[], into: Collected = collected()): Collected {
  for (const t of events) collect(into, feed(e, t));
  return into;
}

/**
 * The events through an engine that is replaced by a restored one before each event in `cuts`: the
 * engine's entity changelog (as JSON, the way it travels) is applied to a topic, a new engine with the
 * same config and the same clock restores from it and goes on. What a detector restart does. With
 * `ticks`, the clock is also advanced before event i to a point `ticks.get(i)` (0..1) of the way from
 * the clock to that event's received time (a live tick, never past the arrival); `end`: a last advance.
 */
export function runSplit(config: RulesConfig, events: readonly (Transaction | Heartbeat)[], cuts: ReadonlySet<number>, ticks: ReadonlyMap<number, number> = new Map(), end?: number): Collected {
  const topic = new Map<string, ChangelogValue>();
  let e = createRuleEngine(config);
  let view = createChangelogView(e);
  const out = collected();
  events.forEach((x, i) => {
    if (cuts.has(i)) {
      for (const [k, v] of JSON.parse(JSON.stringify(view.takeChanges())) as [string, ChangelogValue | null][]) {
        if (v === null) topic.delete(k);
        else topic.set(k, v);
      }
      const clock = e.clock();
      e = createRuleEngine(config);
      view = createChangelogView(e);
      e.setClock(clock);
      view.restore(topic);
    }
    const f = ticks.get(i);
    if (f !== undefined) collect(out, e.advanceClock(Math.floor(e.clock() + f * Math.max(0, x.received_time - e.clock()))));
    collect(out, feed(e, x));
  });
  if (end !== undefined) collect(out, e.advanceClock(end));
  return out;
}

/** runSplit with one restore, before event `cut`. */
export const runWithRestoreAt = (config: RulesConfig, events: readonly (Transaction | Heartbeat)[], cut: number): Collected => runSplit(config, events, new Set([cut]));
