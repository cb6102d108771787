// The pure part of "rules as live data": what a sequence of pos.rules.v1 records means. Every reader
// (each detector instance, the CLI, the API) folds the same records in the same (offset) order, so
// they all agree on the version in force without talking to each other.
//
// Rules of the fold:
//   - a record whose document does not validate, whose `version` field differs from the document's
//     own `version:`, or that cannot be decoded at all, is REJECTED (kept in the history, never applied);
//   - a valid record whose version is not greater than the version in force is REJECTED as stale
//     (the CLI and the API refuse such a push; only a direct write to the topic gets here), except an
//     identical re-publication of the version in force, which is a no-op;
//   - otherwise it becomes the version in force.
// The topic is keyed by version and a digest of the record (topic.ts, rulesRecordKey), so compaction
// only ever removes an exact copy of a record; every version stays in the history, and a bad record
// written straight to the topic by accident cannot take a good version's place once the topic is
// compacted (one that copies a good record's key on purpose can: topic ACLs guard against that).
import { loadRulesConfig, RulesConfigError, type ConfigIssue, type ParseRulesOptions, type RulesConfig } from '@tillwatch/rules';
import type { RulesDocument, RulesFormat } from '@tillwatch/schemas';
import { parse as parseYaml } from 'yaml';

export type RulesEntryStatus = 'active' | 'superseded' | 'rejected' | 'duplicate';

export interface RulesHistoryEntry {
  /** The record's version (0 when the record could not be decoded). */
  version: number;
  pushed_by: string;
  /** Epoch ms (pusher's wall clock). */
  pushed_at: number;
  via: string;
  comment: string | null;
  format: RulesFormat | null;
  /** Kafka offset in pos.rules.v1 (a string, as kafkajs gives it). */
  offset: string;
  status: RulesEntryStatus;
  /** Why it was rejected (every validation problem); empty otherwise. */
  problems: ConfigIssue[];
}

export interface ActiveRules {
  config: RulesConfig;
  entry: RulesHistoryEntry;
  /** The document as pushed (what `GET /rules` returns and `tillwatch rules show --document` prints). */
  document: string;
}

export type LedgerOutcome =
  | { kind: 'applied'; active: ActiveRules }
  | { kind: 'rejected'; entry: RulesHistoryEntry; reason: 'invalid' | 'stale' | 'undecodable' }
  | { kind: 'duplicate'; entry: RulesHistoryEntry };

/** `.json` is JSON, anything else YAML (as TILLWATCH_RULES and `tillwatch backtest --config`). */
export function formatOfPath(path: string): RulesFormat {
  return /\.json$/i.test(path) ? 'json' : 'yaml';
}

/**
 * Validates a rules document (the checks of `tillwatch rules validate`, `rules push` and `PUT /rules`).
 * Returns the config, or throws RulesConfigError listing every problem.
 */
export function validateRulesDocument(text: string, format: RulesFormat, options: ParseRulesOptions = {}): RulesConfig {
  let config: RulesConfig | undefined;
  const issues: ConfigIssue[] = [];
  try {
    config = loadRulesConfig(text, format, options);
  } catch (e) {
    if (!(e instanceof RulesConfigError)) throw e;
    issues.push(...e.issues);
  }
  let raw: unknown;
  try {
    raw = format === 'json' ? JSON.parse(text) : parseYaml(text);
  } catch {
    raw = undefined; // already reported by loadRulesConfig
  }
  // Without it the document would be version 1 by default: a live document must say which it is.
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && (raw as Record<string, unknown>).version === undefined) {
    issues.push({ path: 'version', problem: 'a pushed rules document must declare its version (version: N, a positive integer)' });
  } else if (raw === null || raw === undefined) {
    if (!issues.some((i) => i.path === '(file)')) issues.push({ path: 'version', problem: 'the document is empty; a pushed rules document must declare its version' });
  }
  if (issues.length > 0 || !config) throw new RulesConfigError(issues);
  return config;
}

/** Checks one record: the config it carries, or every problem with it. */
export function checkRecord(rec: RulesDocument): { ok: true; config: RulesConfig } | { ok: false; issues: ConfigIssue[] } {
  let config: RulesConfig;
  try {
    // A record on the topic was validated when it was pushed: checks added since (today, a deadline
    // equal to the lookback) must not reject it on replay and silently put an older version in force.
    config = validateRulesDocument(rec.document, rec.format, { acceptDeadlineAtLookback: true });
  } catch (e) {
    if (e instanceof RulesConfigError) return { ok: false, issues: e.issues };
    throw e;
  }
  if (!Number.isInteger(rec.version) || rec.version < 1) return { ok: false, issues: [{ path: '(record).version', problem: `expected a positive integer, got ${rec.version}` }] };
  if (config.version !== rec.version) return { ok: false, issues: [{ path: 'version', problem: `the record is version ${rec.version} but its document says version ${config.version}` }] };
  return { ok: true, config };
}

export class RulesLedger {
  private readonly entries: RulesHistoryEntry[] = [];
  private current: ActiveRules | null = null;

  /** The version in force, or null when no valid document was read. */
  active(): ActiveRules | null {
    return this.current;
  }

  /** Every record read, oldest first. */
  history(): RulesHistoryEntry[] {
    return this.entries.map((e) => ({ ...e, problems: [...e.problems] }));
  }

  /** Folds one decoded record (offset order). */
  apply(rec: RulesDocument, offset: string): LedgerOutcome {
    const entry: RulesHistoryEntry = {
      version: rec.version,
      pushed_by: rec.pushed_by,
      pushed_at: rec.pushed_at,
      via: rec.via,
      comment: rec.comment,
      format: rec.format,
      offset,
      status: 'rejected',
      problems: [],
    };
    this.entries.push(entry);
    const checked = checkRecord(rec);
    if (!checked.ok) {
      entry.problems = checked.issues;
      return { kind: 'rejected', entry, reason: 'invalid' };
    }
    const cur = this.current;
    if (cur && rec.version <= cur.config.version) {
      if (rec.version === cur.config.version && rec.document === cur.document) {
        entry.status = 'duplicate';
        return { kind: 'duplicate', entry };
      }
      entry.problems = [{ path: 'version', problem: `version ${rec.version} is not greater than the version in force (${cur.config.version})` }];
      return { kind: 'rejected', entry, reason: 'stale' };
    }
    if (cur) cur.entry.status = 'superseded';
    entry.status = 'active';
    this.current = { config: checked.config, entry, document: rec.document };
    return { kind: 'applied', active: this.current };
  }

  /** A record that could not be decoded (not Avro, unknown schema, tombstone): kept in the history as rejected. */
  reject(offset: string, problem: string): LedgerOutcome {
    const entry: RulesHistoryEntry = { version: 0, pushed_by: '', pushed_at: 0, via: '', comment: null, format: null, offset, status: 'rejected', problems: [{ path: '(record)', problem }] };
    this.entries.push(entry);
    return { kind: 'rejected', entry, reason: 'undecodable' };
  }
}

/** Refused push: its version is not greater than the version in force. */
export class RulesVersionError extends Error {
  override readonly name = 'RulesVersionError';
  constructor(
    readonly version: number,
    readonly activeVersion: number,
  ) {
    super(`version ${version} is not greater than the version in force (${activeVersion}); set version: ${activeVersion + 1} or higher`);
  }
}

/** One line per problem, as the CLI prints them and the API returns them. */
export const formatIssues = (issues: readonly ConfigIssue[]): string => issues.map((i) => `  - ${i.path}: ${i.problem}`).join('\n');
