// Rules configuration: thresholds, per-merchant and per-terminal overrides, enable/disable,
// severity and the rule -> action policy. Validated once at load; every problem names its key path.
import { parse as parseYaml } from 'yaml';
import { ActionKindValues, SeverityValues, type ActionKind, type Severity, type TargetType } from '@tillwatch/schemas';

export const RULE_IDS = ['duplicate_charge', 'abnormal_amount', 'sync_lag', 'sequence_gap', 'refund_without_sale', 'refund_exceeds_sale'] as const;
export type RuleId = (typeof RULE_IDS)[number];

/** Version of each rule's logic; part of every alert (`duplicate_charge@1`) and of its id. Bump on a semantic change. */
export const RULE_VERSIONS: Readonly<Record<RuleId, number>> = {
  duplicate_charge: 1,
  abnormal_amount: 1,
  sync_lag: 1,
  sequence_gap: 1,
  refund_without_sale: 1,
  refund_exceeds_sale: 1,
};

export interface RuleCommon {
  enabled: boolean;
  severity: Severity;
  /** SHIM: shadow = evaluated, alerts go to EngineOutput.shadowAlerts, no actions. Absent = active. */
  mode?: 'active' | 'shadow';
}
export interface DuplicateChargeConfig extends RuleCommon {
  /** Max event-time distance between the two legs, ms. */
  window: number;
}
export interface AbnormalAmountConfig extends RuleCommon {
  /** Fires at amount >= ratio x median; at least 3 so ordinary variation (up to 3x) never fires. */
  ratio: number;
  /** Approved sales the terminal must have made before one is judged (warm-up). */
  min_sales: number;
  /** The median is taken over the terminal's last `sample_size` approved sales (by arrival). */
  sample_size: number;
}
export interface SyncLagConfig extends RuleCommon {
  /** received_time - event_time above this is late, ms. */
  threshold: number;
}
export interface SequenceGapConfig extends RuleCommon {
  /** A missing terminal_seq fires this long (received time) after a higher one arrived, ms. */
  timeout: number;
}
export type RefundWithoutSaleConfig = RuleCommon;
export type RefundExceedsSaleConfig = RuleCommon;

export interface RulesSection {
  duplicate_charge: DuplicateChargeConfig;
  abnormal_amount: AbnormalAmountConfig;
  sync_lag: SyncLagConfig;
  sequence_gap: SequenceGapConfig;
  refund_without_sale: RefundWithoutSaleConfig;
  refund_exceeds_sale: RefundExceedsSaleConfig;
}

export type RuleOverrides = { [K in RuleId]?: Partial<RulesSection[K]> };

export interface EngineSettings {
  /** Events later than this (clock - event_time) are not matched as duplicates; sale legs are kept this long plus the window, ms. */
  allowed_lateness: number;
  /** How long a sale stays matchable by refunds (and refunds by a late sale), ms. */
  refund_lookback: number;
  /** A terminal silent (received time) this long is forgotten: median sample, sequence and lag state, ms. */
  terminal_idle_ttl: number;
}

export interface PolicyAction {
  kind: ActionKind;
  /** The action's expires_at = issued_at + expires_after; null = no expiry. */
  expires_after: number | null;
}

export interface RulesConfig {
  /** Version of the rules document, a positive integer. */
  version: number;
  engine: EngineSettings;
  rules: RulesSection;
  overrides: { merchants: Record<string, RuleOverrides>; terminals: Record<string, RuleOverrides> };
  policy: Record<RuleId, PolicyAction[]>;
}

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

export function defaultRulesConfig(): RulesConfig {
  return {
    version: 1,
    engine: { allowed_lateness: 24 * HOUR, refund_lookback: 7 * DAY, terminal_idle_ttl: 30 * DAY },
    rules: {
      duplicate_charge: { enabled: true, severity: 'high', window: 10 * MIN },
      abnormal_amount: { enabled: true, severity: 'medium', ratio: 10, min_sales: 20, sample_size: 101 },
      sync_lag: { enabled: true, severity: 'low', threshold: 15 * MIN },
      sequence_gap: { enabled: true, severity: 'medium', timeout: 30 * MIN },
      refund_without_sale: { enabled: true, severity: 'high' },
      refund_exceeds_sale: { enabled: true, severity: 'critical' },
    },
    overrides: { merchants: {}, terminals: {} },
    policy: {
      duplicate_charge: [
        { kind: 'REVIEW_REFUND', expires_after: null },
        { kind: 'NOTIFY_MERCHANT', expires_after: null },
      ],
      abnormal_amount: [],
      sync_lag: [{ kind: 'NOTIFY_MERCHANT', expires_after: null }],
      sequence_gap: [{ kind: 'NOTIFY_MERCHANT', expires_after: null }],
      refund_without_sale: [
        { kind: 'FREEZE_TERMINAL', expires_after: 24 * HOUR },
        { kind: 'NOTIFY_ACQUIRER', expires_after: null },
      ],
      refund_exceeds_sale: [
        { kind: 'FREEZE_TERMINAL', expires_after: 24 * HOUR },
        { kind: 'NOTIFY_ACQUIRER', expires_after: null },
      ],
    },
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

/** Rules whose alerts have no card (terminal-level problems): a CARD action cannot target them. */
const RULES_WITHOUT_CARD: ReadonlySet<RuleId> = new Set(['sync_lag', 'sequence_gap']);
/** Rules whose alerts are about no single transaction: a TRANSACTION action cannot target them. */
const RULES_WITHOUT_TXN: ReadonlySet<RuleId> = new Set(['sync_lag', 'sequence_gap']);

export interface ConfigIssue {
  path: string;
  problem: string;
}

/** A rules file that does not validate; `issues` lists every problem, each with its key path. */
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

/** Parses a rules file (YAML or JSON text), validates it and fills defaults. */
export function loadRulesConfig(text: string, format: 'yaml' | 'json'): RulesConfig {
  let obj: unknown;
  try {
    obj = format === 'json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new RulesConfigError([{ path: '(file)', problem: `not valid ${format.toUpperCase()}: ${(e as Error).message.split('\n')[0]}` }]);
  }
  return parseRulesConfig(obj);
}

const show = (v: unknown): string => {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: MIN, h: HOUR, d: DAY };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Collects issues while walking the raw object; readers return undefined after recording a problem. */
class Checker {
  readonly issues: ConfigIssue[] = [];
  fail(path: string, problem: string): undefined {
    this.issues.push({ path, problem });
    return undefined;
  }
  obj(v: unknown, path: string): Obj | undefined {
    if (v === undefined || v === null) return {};
    return isObj(v) ? v : this.fail(path, `expected a mapping, got ${show(v)}`);
  }
  known(o: Obj, path: string, keys: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (!keys.includes(k)) this.fail(path ? `${path}.${k}` : k, `unknown key (expected one of ${keys.join(', ')})`);
    }
  }
  bool(v: unknown, path: string): boolean | undefined {
    return typeof v === 'boolean' ? v : this.fail(path, `expected true or false, got ${show(v)}`);
  }
  num(v: unknown, path: string, min: number, max = Infinity, integer = false): number | undefined {
    const ok = typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max && (!integer || Number.isInteger(v));
    if (ok) return v;
    const what = integer ? 'an integer' : 'a number';
    const range = max === Infinity ? `>= ${min}` : `between ${min} and ${max}`;
    return this.fail(path, `expected ${what} ${range}, got ${show(v)}`);
  }
  /** A duration: milliseconds as a number, or a string such as 500ms, 90s, 10m, 24h, 7d. */
  duration(v: unknown, path: string, minMs: number): number | undefined {
    let ms: number | undefined;
    if (typeof v === 'number' && Number.isFinite(v)) ms = v;
    else if (typeof v === 'string') {
      const m = DURATION.exec(v.trim());
      if (m) ms = Number(m[1]) * UNIT_MS[m[2]!]!;
    }
    if (ms === undefined || !Number.isInteger(ms)) return this.fail(path, `expected a duration (milliseconds, or a string like 90s, 10m, 24h, 7d), got ${show(v)}`);
    if (ms < minMs) return this.fail(path, `expected a duration of at least ${minMs} ms, got ${show(v)}`);
    return ms;
  }
  oneOf<T extends string>(v: unknown, path: string, values: readonly T[]): T | undefined {
    return (values as readonly unknown[]).includes(v) ? (v as T) : this.fail(path, `expected one of ${values.join(', ')}, got ${show(v)}`);
  }
}

type FieldReader = (c: Checker, v: unknown, path: string) => unknown;
const FIELD_READERS: Record<RuleId, Record<string, FieldReader>> = (() => {
  const common: Record<string, FieldReader> = {
    enabled: (c, v, p) => c.bool(v, p),
    severity: (c, v, p) => c.oneOf(v, p, SeverityValues),
    mode: (c, v, p) => c.oneOf(v, p, ['active', 'shadow'] as const),
  };
  return {
    duplicate_charge: { ...common, window: (c, v, p) => c.duration(v, p, 1) },
    abnormal_amount: {
      ...common,
      ratio: (c, v, p) => c.num(v, p, 3),
      min_sales: (c, v, p) => c.num(v, p, 1, 1_000_000, true),
      sample_size: (c, v, p) => c.num(v, p, 1, 10_001, true),
    },
    sync_lag: { ...common, threshold: (c, v, p) => c.duration(v, p, 1) },
    sequence_gap: { ...common, timeout: (c, v, p) => c.duration(v, p, 1) },
    refund_without_sale: { ...common },
    refund_exceeds_sale: { ...common },
  };
})();

/** Fields that make no sense per terminal (the duplicate window pairs sales across terminals). */
const MERCHANT_ONLY_FIELDS: Partial<Record<RuleId, readonly string[]>> = { duplicate_charge: ['window'] };

function readRuleFields(c: Checker, raw: unknown, path: string, rule: RuleId, level: 'base' | 'merchant' | 'terminal'): Obj | undefined {
  const o = c.obj(raw, path);
  if (!o) return undefined;
  const readers = FIELD_READERS[rule];
  c.known(o, path, Object.keys(readers));
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) {
    const reader = readers[k];
    if (!reader) continue;
    if (level === 'terminal' && MERCHANT_ONLY_FIELDS[rule]?.includes(k)) {
      c.fail(`${path}.${k}`, 'cannot be set per terminal (it pairs sales across the terminals of a merchant); set it per merchant');
      continue;
    }
    const val = reader(c, v, `${path}.${k}`);
    if (val !== undefined) out[k] = val;
  }
  return out;
}

function readOverrides(c: Checker, raw: unknown, path: string, level: 'merchant' | 'terminal'): Record<string, RuleOverrides> {
  const o = c.obj(raw, path);
  const entries: [string, RuleOverrides][] = [];
  if (!o) return {};
  for (const [id, v] of Object.entries(o)) {
    const p = `${path}.${id}`;
    const ro = c.obj(v, p);
    if (!ro) continue;
    c.known(ro, p, RULE_IDS);
    const res: Obj = {};
    for (const rule of RULE_IDS) {
      if (ro[rule] === undefined) continue;
      const f = readRuleFields(c, ro[rule], `${p}.${rule}`, rule, level);
      if (f) res[rule] = f;
    }
    entries.push([id, res as RuleOverrides]);
  }
  // fromEntries defines own properties, so an id such as "__proto__" stays an ordinary key.
  return Object.fromEntries(entries);
}

function readPolicy(c: Checker, raw: unknown, defaults: RulesConfig['policy']): RulesConfig['policy'] {
  const out = { ...defaults };
  const o = c.obj(raw, 'policy');
  if (!o) return out;
  c.known(o, 'policy', RULE_IDS);
  for (const rule of RULE_IDS) {
    const v = o[rule];
    if (v === undefined) continue;
    const path = `policy.${rule}`;
    if (v === null) {
      out[rule] = [];
      continue;
    }
    if (!Array.isArray(v)) {
      c.fail(path, `expected a list of actions (e.g. [NOTIFY_MERCHANT] or [{kind: FREEZE_TERMINAL, expires_after: 24h}]), got ${show(v)}`);
      continue;
    }
    const list: PolicyAction[] = [];
    v.forEach((item: unknown, i) => {
      const p = `${path}[${i}]`;
      let kindRaw: unknown = item;
      let expires: number | null = null;
      if (isObj(item)) {
        c.known(item, p, ['kind', 'expires_after']);
        kindRaw = item.kind;
        if (item.expires_after !== undefined && item.expires_after !== null) expires = c.duration(item.expires_after, `${p}.expires_after`, 1) ?? null;
      }
      const kind = c.oneOf(kindRaw, isObj(item) ? `${p}.kind` : p, ActionKindValues);
      if (!kind) return;
      const target = ACTION_TARGETS[kind];
      if (target === 'CARD' && RULES_WITHOUT_CARD.has(rule)) return void c.fail(p, `${kind} needs a card, and ${rule} alerts have none`);
      if (target === 'TRANSACTION' && RULES_WITHOUT_TXN.has(rule)) return void c.fail(p, `${kind} needs a transaction, and ${rule} alerts are about a terminal, not one transaction`);
      if (list.some((a) => a.kind === kind)) return void c.fail(p, `${kind} is listed twice`);
      list.push({ kind, expires_after: expires });
    });
    out[rule] = list;
  }
  return out;
}

/**
 * Validates a decoded rules file (any shape) and returns a complete config, defaults filled.
 * `null`/`undefined` (an empty file) means all defaults. Throws RulesConfigError listing every problem.
 * Idempotent: parseRulesConfig(parseRulesConfig(x)) deep-equals parseRulesConfig(x).
 */
export function parseRulesConfig(obj: unknown): RulesConfig {
  const c = new Checker();
  const d = defaultRulesConfig();
  const root = c.obj(obj, '(root)');
  if (!root) throw new RulesConfigError(c.issues);
  c.known(root, '', ['version', 'engine', 'rules', 'overrides', 'policy']);
  const version = root.version === undefined ? 1 : c.num(root.version, 'version', 1, 2_147_483_647, true) ?? 1;

  const engine = { ...d.engine };
  const eo = c.obj(root.engine, 'engine');
  if (eo) {
    c.known(eo, 'engine', Object.keys(engine));
    for (const k of Object.keys(engine) as (keyof EngineSettings)[]) {
      if (eo[k] === undefined) continue;
      const v = c.duration(eo[k], `engine.${k}`, 1);
      if (v !== undefined) engine[k] = v;
    }
  }

  const rules = d.rules;
  const ro = c.obj(root.rules, 'rules');
  if (ro) {
    c.known(ro, 'rules', RULE_IDS);
    for (const rule of RULE_IDS) {
      if (ro[rule] === undefined) continue;
      const f = readRuleFields(c, ro[rule], `rules.${rule}`, rule, 'base');
      if (f) Object.assign(rules[rule], f);
    }
  }

  const overrides = { merchants: {} as Record<string, RuleOverrides>, terminals: {} as Record<string, RuleOverrides> };
  const oo = c.obj(root.overrides, 'overrides');
  if (oo) {
    c.known(oo, 'overrides', ['merchants', 'terminals']);
    overrides.merchants = readOverrides(c, oo.merchants, 'overrides.merchants', 'merchant');
    overrides.terminals = readOverrides(c, oo.terminals, 'overrides.terminals', 'terminal');
  }

  const policy = readPolicy(c, root.policy, d.policy);

  // Cross-field checks: a forgotten terminal must not take pending state with it.
  const longestTimeout = Math.max(
    rules.sequence_gap.timeout,
    ...Object.values(overrides.merchants).map((o) => o.sequence_gap?.timeout ?? 0),
    ...Object.values(overrides.terminals).map((o) => o.sequence_gap?.timeout ?? 0),
  );
  if (c.issues.length === 0 && engine.terminal_idle_ttl <= longestTimeout) {
    c.fail('engine.terminal_idle_ttl', `must be longer than the longest sequence_gap timeout (${longestTimeout} ms), got ${engine.terminal_idle_ttl} ms`);
  }
  // One record serves both duplicate legs and refund matching: it must outlive the duplicate horizon.
  const longestWindow = Math.max(rules.duplicate_charge.window, ...Object.values(overrides.merchants).map((o) => o.duplicate_charge?.window ?? 0));
  if (c.issues.length === 0 && engine.refund_lookback < engine.allowed_lateness + longestWindow) {
    c.fail('engine.refund_lookback', `must be at least allowed_lateness + the longest duplicate_charge window (${engine.allowed_lateness + longestWindow} ms), got ${engine.refund_lookback} ms`);
  }
  if (c.issues.length > 0) throw new RulesConfigError(c.issues);
  return { version, engine, rules, overrides, policy };
}

/** The effective parameters of every rule for one terminal: base < merchant override < terminal override. */
export type ResolvedRules = RulesSection;

export function resolveRules(config: RulesConfig, merchantId: string, terminalId: string | null): ResolvedRules {
  // hasOwn: ids come from the data, and "constructor" or "__proto__" must not find Object.prototype.
  const m = Object.hasOwn(config.overrides.merchants, merchantId) ? config.overrides.merchants[merchantId] : undefined;
  const t = terminalId !== null && Object.hasOwn(config.overrides.terminals, terminalId) ? config.overrides.terminals[terminalId] : undefined;
  if (!m && !t) return config.rules;
  const out = {} as Record<RuleId, unknown>;
  for (const rule of RULE_IDS) out[rule] = { ...config.rules[rule], ...m?.[rule], ...t?.[rule] };
  return out as unknown as ResolvedRules;
}
