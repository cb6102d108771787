// The rules document: its version, engine settings, each rule's parameters (schemas and defaults live
// in the rule folders, listed by rules/registry.ts), per-merchant and per-terminal overrides, the
// rule -> action policy, and shadow instances. Validated once at load with zod; every problem names
// its key path.
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { ActionKindValues, type ActionKind, type TargetType } from '@tillwatch/schemas';
import { DAY, HOUR, MIN, bool, duration, mode, num, oneOf, record, section, severity, show, toIssues, type ConfigIssue } from './fields.js';
import { RULES, RULE_BY_ID, type RuleId, type RulesSection } from './rules/registry.js';
import type { PolicyAction, RuleCommon } from './rules/types.js';

export { RULE_IDS, RULE_VERSIONS, type RuleId, type RulesSection } from './rules/registry.js';
export type { PolicyAction, RuleCommon, RuleMode } from './rules/types.js';
export type { ConfigIssue } from './fields.js';
export type { DuplicateChargeConfig } from './rules/duplicate_charge/index.js';
export type { AbnormalAmountConfig } from './rules/abnormal_amount/index.js';
export type { SyncLagConfig } from './rules/sync_lag/index.js';
export type { SequenceGapConfig } from './rules/sequence_gap/index.js';
export type { RefundWithoutSaleConfig } from './rules/refund_without_sale/index.js';
export type { RefundExceedsSaleConfig } from './rules/refund_exceeds_sale/index.js';
export type { TerminalOfflineConfig } from './rules/terminal_offline/index.js';
export type { UploadBacklogConfig } from './rules/upload_backlog/index.js';

export type RuleOverrides = { [K in RuleId]?: Partial<RulesSection[K]> };
/** rule id -> the fields an additional shadow instance of that rule changes (its base is the rules section). */
export type ShadowSection = { [K in RuleId]?: Partial<Omit<RulesSection[K], 'mode'>> };

export interface EngineSettings {
  /** Events later than this (clock - event_time) are not matched as duplicates; sale legs are kept this long plus the window, ms. */
  allowed_lateness: number;
  /** How long a sale stays matchable by refunds (and refunds by a late sale), ms. */
  refund_lookback: number;
  /** A terminal silent (received time) this long is forgotten: median sample, sequence and lag state, ms. */
  terminal_idle_ttl: number;
  /** An event_time more than this after its received_time is rejected as ClockSkew (detector DLQ, backtest rejects), ms. */
  max_clock_skew: number;
}

/** The second stage (packages/stage): fleet incidents. See packages/stage/README.md. */
export interface SyncIncidentConfig {
  enabled: boolean;
  /** Starts (sync_lag episodes, terminal_offline) of this many distinct terminals within `window` open an incident... */
  min_terminals: number;
  /** ...or this share of the active terminals, whichever is larger (0..1). */
  min_share: number;
  /** Received time within which the starts must fall, ms. */
  window: number;
  /** A terminal is active when it sent anything within this long (received time), ms. */
  active_within: number;
  /** The incident closes this long after its last terminal recovered and none entered, ms. */
  quiet: number;
}

/** The second stage: the action governor. See packages/stage/README.md. */
export interface GovernorConfig {
  /** While a fleet incident is open, per-terminal NOTIFY_MERCHANT of its terminals is suppressed. */
  suppress_during_incident: boolean;
  /** FREEZE_TERMINAL + FREEZE_CARD issued fleet-wide per freeze_window, at most. */
  max_freezes: number;
  /** ... and per merchant per freeze_window. */
  max_freezes_per_merchant: number;
  /** The circuit breaker's window (tumbling, aligned to the epoch), ms. */
  freeze_window: number;
}

export interface StageConfig {
  sync_incident: SyncIncidentConfig;
  governor: GovernorConfig;
}

export interface RulesConfig {
  /** The rules document's version (a positive integer); every alert carries it as rules_version. */
  version: number;
  engine: EngineSettings;
  /** The second stage (fleet incidents, action governor); not run by the engine. */
  stage: StageConfig;
  rules: RulesSection;
  overrides: { merchants: Record<string, RuleOverrides>; terminals: Record<string, RuleOverrides> };
  policy: Record<RuleId, PolicyAction[]>;
  shadow: ShadowSection;
}

export function defaultRulesConfig(): RulesConfig {
  const rules = {} as Record<string, unknown>;
  const policy = {} as Record<string, PolicyAction[]>;
  for (const r of RULES) {
    rules[r.id] = { ...r.defaults };
    policy[r.id] = r.policy.map((a) => ({ ...a }));
  }
  return {
    version: 1,
    engine: { allowed_lateness: 24 * HOUR, refund_lookback: 8 * DAY, terminal_idle_ttl: 30 * DAY, max_clock_skew: HOUR },
    stage: defaultStageConfig(),
    rules: rules as unknown as RulesSection,
    overrides: { merchants: {}, terminals: {} },
    policy: policy as Record<RuleId, PolicyAction[]>,
    shadow: {},
  };
}

export function defaultStageConfig(): StageConfig {
  return {
    sync_incident: { enabled: true, min_terminals: 10, min_share: 0.05, window: 15 * MIN, active_within: DAY, quiet: 30 * MIN },
    governor: { suppress_during_incident: true, max_freezes: 20, max_freezes_per_merchant: 3, freeze_window: HOUR },
  };
}

/** What each action kind acts on; fixed, so the policy only names kinds. */
export const ACTION_TARGETS: Readonly<Record<ActionKind, TargetType>> = {
  FREEZE_TERMINAL: 'TERMINAL',
  FREEZE_CARD: 'CARD',
  HOLD_SETTLEMENT: 'MERCHANT',
  REVIEW_REFUND: 'TRANSACTION',
  NOTIFY_MERCHANT: 'MERCHANT',
  NOTIFY_ACQUIRER: 'ACQUIRER',
};

/** A rules document that does not validate; `issues` lists every problem, each with its key path. */
export class RulesConfigError extends Error {
  override readonly name = 'RulesConfigError';
  constructor(readonly issues: ConfigIssue[]) {
    super(
      issues.length === 1
        ? `${issues[0]!.path}: ${issues[0]!.problem}`
        : `${issues.length} problems in the rules config:\n${issues.map((i) => `  - ${i.path}: ${i.problem}`).join('\n')}`,
    );
  }
  get path(): string {
    return this.issues[0]?.path ?? '';
  }
}

export interface ParseRulesOptions {
  /**
   * Accept a refund_after_deadline deadline equal to engine.refund_lookback (refused since 2026-12-07:
   * the rule can never fire then). Only for replaying versions accepted before (pos.rules.v1): refusing
   * them now would silently put an older version back in force.
   */
  acceptDeadlineAtLookback?: boolean;
}

/** Parses a rules document (YAML or JSON text), validates it and fills defaults. */
export function loadRulesConfig(text: string, format: 'yaml' | 'json', options: ParseRulesOptions = {}): RulesConfig {
  let obj: unknown;
  try {
    obj = format === 'json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new RulesConfigError([{ path: '(file)', problem: `not valid ${format.toUpperCase()}: ${(e as Error).message.split('\n')[0]}` }]);
  }
  return parseRulesConfig(obj, options);
}

// ------------------------------------------------------------------ the document schema

type Level = 'base' | 'merchant' | 'terminal' | 'shadow';

/** A rule's fields at one level: common fields + the rule's own, merchant-only fields refused per terminal, no mode in shadow. */
function ruleFields(id: RuleId, level: Level) {
  const def = RULE_BY_ID[id];
  const shape: Record<string, z.ZodType> = { enabled: bool(), severity: severity() };
  if (level !== 'shadow') shape.mode = mode();
  for (const [k, s] of Object.entries(def.fields as Record<string, z.ZodType>)) {
    const why = (def.merchantOnly as Record<string, string> | undefined)?.[k];
    shape[k] =
      level === 'terminal' && why !== undefined
        ? z.unknown().superRefine((_v, ctx) => ctx.addIssue({ code: 'custom', message: `cannot be set per terminal (${why}); set it per merchant` }))
        : s;
  }
  return section(shape);
}

const rulesSection = (level: Level) => section(Object.fromEntries(RULES.map((r) => [r.id, ruleFields(r.id, level)])));

const policyObject = section({ kind: oneOf(ActionKindValues), expires_after: duration(1).nullable() });

function policyList(id: RuleId) {
  const def = RULE_BY_ID[id];
  return z
    .union([z.null(), z.array(z.unknown())], {
      error: (iss) => `expected a list of actions (e.g. [NOTIFY_MERCHANT] or [{kind: FREEZE_TERMINAL, expires_after: 24h}]), got ${show(iss.input)}`,
    })
    .transform((v, ctx) => {
      const list: PolicyAction[] = [];
      (v ?? []).forEach((item, i) => {
        // Each item is parsed on its own so that an object item reports `[i].kind` and a bare one `[i]`.
        const isObj = typeof item === 'object' && item !== null && !Array.isArray(item);
        const r = (isObj ? policyObject : oneOf(ActionKindValues)).safeParse(item);
        if (!r.success) {
          for (const iss of r.error.issues) {
            if (iss.code === 'unrecognized_keys') for (const k of iss.keys) ctx.addIssue({ code: 'custom', message: iss.message, path: [i, k] });
            else ctx.addIssue({ code: 'custom', message: iss.message, path: [i, ...iss.path] });
          }
          return;
        }
        const val = r.data as ActionKind | { kind?: ActionKind; expires_after?: number | null };
        const kind = typeof val === 'string' ? val : val.kind;
        if (kind === undefined) return void ctx.addIssue({ code: 'custom', message: `expected one of ${ActionKindValues.join(', ')}, got nothing`, path: [i, 'kind'] });
        const expires = typeof val === 'string' ? null : (val.expires_after ?? null);
        const target = ACTION_TARGETS[kind];
        const fail = (message: string): void => ctx.addIssue({ code: 'custom', message, path: [i] });
        if (target === 'CARD' && !def.alertHas.card) return fail(`${kind} needs a card, and ${id} alerts have none`);
        if (target === 'TRANSACTION' && !def.alertHas.transaction) return fail(`${kind} needs a transaction, and ${id} alerts are about a terminal, not one transaction`);
        if (list.some((a) => a.kind === kind)) return fail(`${kind} is listed twice`);
        list.push({ kind, expires_after: expires });
      });
      return list;
    });
}

const documentSchema = section({
  version: num(1, Infinity, true),
  engine: section({ allowed_lateness: duration(1), refund_lookback: duration(1), terminal_idle_ttl: duration(1), max_clock_skew: duration(0) }),
  rules: rulesSection('base'),
  overrides: section({ merchants: record(rulesSection('merchant')), terminals: record(rulesSection('terminal')) }),
  policy: section(Object.fromEntries(RULES.map((r) => [r.id, policyList(r.id)]))),
  shadow: rulesSection('shadow'),
  stage: section({
    sync_incident: section({ enabled: bool(), min_terminals: num(1, Infinity, true), min_share: num(0, 1), window: duration(1), active_within: duration(1), quiet: duration(1) }),
    governor: section({ suppress_during_incident: bool(), max_freezes: num(0, Infinity, true), max_freezes_per_merchant: num(0, Infinity, true), freeze_window: duration(1) }),
  }),
});

/** Copies own enumerable entries into a fresh object with defineProperty semantics (ids like "__proto__" stay plain keys). */
const own = <T>(entries: Iterable<[string, T]>): Record<string, T> => Object.fromEntries(entries);
const dropUndefined = (o: object | undefined): Record<string, unknown> => own(Object.entries(o ?? {}).filter(([, v]) => v !== undefined));

/**
 * Overrides keyed by ids from the data, rebuilt from the raw input's own keys (zod's record output
 * would turn an id such as "__proto__" into a prototype); the input has already been validated.
 */
function overridesOf(raw: unknown, level: 'merchant' | 'terminal'): Record<string, RuleOverrides> {
  if (typeof raw !== 'object' || raw === null) return {};
  const schema = rulesSection(level);
  return own(
    Object.keys(raw).map((id) => {
      const rules = schema.parse(Object.getOwnPropertyDescriptor(raw, id)!.value) as Record<string, object | undefined>;
      const o: Record<string, unknown> = {};
      for (const r of RULES) {
        const f = rules[r.id];
        if (f !== undefined) o[r.id] = dropUndefined(f);
      }
      return [id, o as RuleOverrides];
    }),
  );
}

/**
 * Validates a decoded rules document (any shape) and returns a complete config, defaults filled.
 * `null`/`undefined` (an empty file) means all defaults. Throws RulesConfigError listing every problem.
 * Idempotent: parseRulesConfig(parseRulesConfig(x)) deep-equals parseRulesConfig(x).
 */
export function parseRulesConfig(obj: unknown, options: ParseRulesOptions = {}): RulesConfig {
  const r = documentSchema.safeParse(obj);
  if (!r.success) {
    // Every problem at once: the cross-field checks also run on the document without its invalid
    // fields (each takes its default), so a bad value does not hide a bad combination elsewhere.
    // Only when no refused field is an input of those checks: a default standing in for it would make
    // up a problem the user did not write.
    const issues = toIssues(r.error);
    const pruned = r.error.issues.some(feedsCrossChecks) ? undefined : withoutPaths(obj, r.error.issues);
    const again = pruned === undefined ? undefined : documentSchema.safeParse(pruned);
    if (again?.success) {
      const reported = new Set(issues.map((i) => i.path));
      for (const x of crossFieldIssues(assemble(pruned, again.data), options)) if (!reported.has(x.path)) issues.push(x);
    }
    throw new RulesConfigError(issues);
  }
  const config = assemble(obj, r.data);
  const issues = crossFieldIssues(config, options);
  if (issues.length > 0) throw new RulesConfigError(issues);
  return config;
}

/**
 * A copy of a decoded document without the fields zod refused (unknown keys included), or undefined
 * when the document itself is refused (not a mapping). Only plain data comes here (YAML or JSON).
 */
function withoutPaths(obj: unknown, refused: readonly z.ZodIssue[]): unknown {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return undefined;
  let copy: Record<string, unknown>;
  try {
    copy = structuredClone(obj) as Record<string, unknown>;
  } catch {
    return undefined; // not plain data (a caller's object with functions): the field problems alone
  }
  for (const iss of refused) {
    const path = iss.code === 'unrecognized_keys' ? iss.keys.map((k) => [...iss.path, k]) : [iss.path];
    for (const p of path) {
      if (p.length === 0) return undefined;
      let at: unknown = copy;
      for (let i = 0; i < p.length - 1 && typeof at === 'object' && at !== null; i++) at = (at as Record<PropertyKey, unknown>)[p[i]!];
      if (typeof at === 'object' && at !== null) delete (at as Record<PropertyKey, unknown>)[p[p.length - 1]!];
    }
  }
  return copy;
}

/** Fields the cross-field checks read (under engine, rules, overrides or shadow). */
const CROSS_INPUTS = new Set<PropertyKey>(['terminal_idle_ttl', 'refund_lookback', 'allowed_lateness', 'timeout', 'window', 'deadline']);

/** A refused field (or a refused section that may hold one) that the cross-field checks read. */
function feedsCrossChecks(iss: z.ZodIssue): boolean {
  if (iss.code === 'unrecognized_keys') return iss.keys.some((k) => CROSS_INPUTS.has(k));
  const p = iss.path;
  if (p.length === 0 || CROSS_INPUTS.has(p[p.length - 1]!)) return true;
  // A whole section: engine, a rule's fields, an override's or the shadow section's.
  return p[0] === 'overrides' ? p.length <= 4 : p.length <= 2;
}

/** The complete config of a document that passed the schema (`parsed`: zod's output for `obj`), defaults filled. */
function assemble(obj: unknown, data: unknown): RulesConfig {
  // Sections left out parse as undefined.
  const parsed = data as {
    version?: number;
    engine?: Partial<EngineSettings>;
    stage?: { sync_incident?: Partial<SyncIncidentConfig>; governor?: Partial<GovernorConfig> };
    rules?: Record<string, object | undefined>;
    policy?: Record<string, PolicyAction[] | undefined>;
    shadow?: Record<string, object | undefined>;
  };
  const doc = { version: parsed.version, engine: parsed.engine ?? {}, rules: parsed.rules ?? {}, policy: parsed.policy ?? {}, shadow: parsed.shadow ?? {} };
  const d = defaultRulesConfig();
  const rawOverrides = (obj as { overrides?: { merchants?: unknown; terminals?: unknown } | null } | null | undefined)?.overrides ?? {};
  const config: RulesConfig = {
    version: doc.version ?? 1,
    engine: { ...d.engine, ...(dropUndefined(doc.engine) as Partial<EngineSettings>) },
    stage: {
      sync_incident: { ...d.stage.sync_incident, ...(dropUndefined(parsed.stage?.sync_incident) as Partial<SyncIncidentConfig>) },
      governor: { ...d.stage.governor, ...(dropUndefined(parsed.stage?.governor) as Partial<GovernorConfig>) },
    },
    rules: d.rules,
    overrides: { merchants: overridesOf(rawOverrides.merchants, 'merchant'), terminals: overridesOf(rawOverrides.terminals, 'terminal') },
    policy: d.policy,
    shadow: {},
  };
  const shadow: Record<string, unknown> = {};
  for (const rule of RULES) {
    const f = doc.rules[rule.id];
    if (f !== undefined) Object.assign(config.rules[rule.id], dropUndefined(f));
    const p = doc.policy[rule.id];
    if (p !== undefined) config.policy[rule.id] = p;
    const s = doc.shadow[rule.id];
    if (s !== undefined) shadow[rule.id] = dropUndefined(s);
  }
  config.shadow = shadow as ShadowSection;
  return config;
}

/** Problems between fields that are each valid alone. */
function crossFieldIssues(config: RulesConfig, options: ParseRulesOptions): ConfigIssue[] {
  // A forgotten terminal must not take pending state with it.
  const issues: ConfigIssue[] = [];
  const { engine, rules, overrides } = config;
  const levels = [...Object.values(overrides.merchants), ...Object.values(overrides.terminals), config.shadow as RuleOverrides];
  const longestTimeout = Math.max(rules.sequence_gap.timeout, ...levels.map((o) => o.sequence_gap?.timeout ?? 0));
  if (engine.terminal_idle_ttl <= longestTimeout) {
    issues.push({ path: 'engine.terminal_idle_ttl', problem: `must be longer than the longest sequence_gap timeout (${longestTimeout} ms), got ${engine.terminal_idle_ttl} ms` });
  }
  // One record serves both duplicate legs and refund matching. A duplicate is detected up to
  // allowed_lateness + window after its first leg's event time; a refund, void or reversal of a leg made
  // right then must still be within the lookback of the leg (event time) to resolve the alert. (The row
  // itself is held lookback + allowed_lateness of clock, so it also outlives the duplicate horizon.)
  const longestWindow = Math.max(rules.duplicate_charge.window, ...[...Object.values(overrides.merchants), config.shadow as RuleOverrides].map((o) => o.duplicate_charge?.window ?? 0));
  if (engine.refund_lookback < engine.allowed_lateness + longestWindow) {
    issues.push({ path: 'engine.refund_lookback', problem: `must be at least allowed_lateness + the longest duplicate_charge window (${engine.allowed_lateness + longestWindow} ms), got ${engine.refund_lookback} ms` });
  }
  // refund_after_deadline needs the sale: with a deadline as long as the lookback or longer, a refund
  // past the deadline is also more than the lookback after its sale (event time), so it does not match
  // the sale and is refund_without_sale instead; the rule could never fire.
  const deadlines: [string, number | undefined][] = [
    ['rules.refund_after_deadline.deadline', rules.refund_after_deadline.deadline],
    ['shadow.refund_after_deadline.deadline', config.shadow.refund_after_deadline?.deadline],
    ...Object.entries(overrides.merchants).map(([k, o]): [string, number | undefined] => [`overrides.merchants.${k}.refund_after_deadline.deadline`, o.refund_after_deadline?.deadline]),
    ...Object.entries(overrides.terminals).map(([k, o]): [string, number | undefined] => [`overrides.terminals.${k}.refund_after_deadline.deadline`, o.refund_after_deadline?.deadline]),
  ];
  for (const [path, d] of deadlines) {
    if (d !== undefined && (d > engine.refund_lookback || (d === engine.refund_lookback && options.acceptDeadlineAtLookback !== true))) issues.push({ path, problem: `must be shorter than engine.refund_lookback (${engine.refund_lookback} ms), got ${d} ms` });
  }
  return issues;
}

/** The effective parameters of every rule for one terminal: base < merchant override < terminal override. */
export type ResolvedRules = RulesSection;

/** Active parameters (variant 0) of every rule for a merchant and terminal. */
export function resolveRules(config: RulesConfig, merchantId: string, terminalId: string | null): ResolvedRules {
  return resolveVariant(config, 0, merchantId, terminalId);
}

/**
 * Parameters of one variant: 0 = the rules section, 1 = the shadow instances (rules section with the
 * shadow section's fields on top, mode shadow). Overrides apply to both, on top.
 */
export function resolveVariant(config: RulesConfig, variant: 0 | 1, merchantId: string, terminalId: string | null): ResolvedRules {
  // hasOwn: ids come from the data, and "constructor" or "__proto__" must not find Object.prototype.
  const m = Object.hasOwn(config.overrides.merchants, merchantId) ? config.overrides.merchants[merchantId] : undefined;
  const t = terminalId !== null && Object.hasOwn(config.overrides.terminals, terminalId) ? config.overrides.terminals[terminalId] : undefined;
  if (!m && !t && variant === 0) return config.rules;
  const out = {} as Record<RuleId, unknown>;
  for (const { id } of RULES) {
    const shadow: Partial<RuleCommon> | undefined = variant === 1 ? { ...config.shadow[id], mode: 'shadow' } : undefined;
    out[id] = { ...config.rules[id], ...shadow, ...m?.[id], ...t?.[id], ...(shadow ? { mode: 'shadow' } : undefined) };
  }
  return out as unknown as ResolvedRules;
}
