// Deterministic ids. node:crypto's hash is pure computation (no I/O, no clock), so the engine stays
// pure; SHA-256 rather than a fast non-cryptographic hash because alert ids key downstream dedup
// (ClickHouse ReplacingMergeTree) and event ids come from terminals: a crafted collision must not be
// able to hide an alert.
import { createHash } from 'node:crypto';

const hex128 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 32);

/** Id of an alert: rule, version and the sorted evidence event ids; the same evidence always gives the same id. */
export function alertId(rule: string, version: number, evidence: readonly string[]): string {
  const sorted = [...evidence].sort();
  return hex128(JSON.stringify([rule, version, sorted]));
}

/** Id of an action: its alert and kind (an alert has at most one action of each kind). */
export function actionId(alertId: string, kind: string): string {
  return hex128(JSON.stringify([alertId, kind]));
}
