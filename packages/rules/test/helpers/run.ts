// Runs events through an engine and collects everything it produced.
import type { Action, Alert, AlertUpdate, Heartbeat, RefundReason, Transaction } from '@tillwatch/schemas';
import { isHeartbeat, type EngineOutput, type RuleEngine } from '../../src/index.js';

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
