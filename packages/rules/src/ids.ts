// Deterministic ids. node:crypto's hash is pure computation (no I/O, no clock), so the engine stays
// pure; SHA-256 rather than a fast non-cryptographic hash because alert ids key downstream dedup
// (ClickHouse ReplacingMergeTree) and event ids come from terminals: a crafted collision must not be
// able to hide an alert.
import { hash } from 'node:crypto';

// The one-shot hash (no Hash object per id: half the time of createHash().update().digest()); the same
// digest (a string is hashed as UTF-8 either way).
const hex128 = (s: string): string => hash('sha256', s, 'hex').slice(0, 32);

/** Id of an alert: rule, version and the sorted evidence event ids; the same evidence always gives the same id. */
export function alertId(rule: string, version: number, evidence: readonly string[]): string {
  const sorted = [...evidence].sort();
  return hex128(JSON.stringify([rule, version, sorted]));
}

/** Id of an action: its alert and kind (an alert has at most one action of each kind). */
export function actionId(alertId: string, kind: string): string {
  return hex128(JSON.stringify([alertId, kind]));
}

/**
 * Evidence id of a heartbeat (the heartbeat contract has no event id): `hb-` and 128 bits of SHA-256
 * over what the terminal sent (merchant, terminal, event_time, last_seq, queue_depth). The same
 * heartbeat redelivered gives the same id, in live and backtest, so alerts with heartbeat evidence
 * keep deterministic ids. Computed only when a heartbeat becomes evidence.
 */
export function heartbeatEventId(h: { merchant_id: string; terminal_id: string; event_time: number; last_seq: number; queue_depth: number }): string {
  return `hb-${hex128(JSON.stringify(['heartbeat', h.merchant_id, h.terminal_id, h.event_time, h.last_seq, h.queue_depth]))}`;
}

const HEARTBEAT_EVIDENCE = /^hb-[0-9a-f]{32}$/;

/** True for an evidence id made by heartbeatEventId (heartbeats are evidence but not transactions, and are not stored). */
export function isHeartbeatEventId(id: string): boolean {
  return HEARTBEAT_EVIDENCE.test(id);
}
