// zod building blocks for rules documents, with the error messages the analyst sees: every problem
// names its key path and what was expected (`rules.abnormal_amount.ratio: expected a number >= 3, got "x"`).
import { z } from 'zod';
import { SeverityValues } from '@tillwatch/schemas';

export const MIN = 60_000;
export const HOUR = 60 * MIN;
export const DAY = 24 * HOUR;

export const show = (v: unknown): string => {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

type Iss = { input?: unknown };
const msg =
  (f: (input: unknown) => string) =>
  (iss: Iss): string =>
    f(iss.input);

/** A number in [min, max] (an integer if asked). */
export function num(min: number, max = Infinity, integer = false): z.ZodType<number> {
  const what = integer ? 'an integer' : 'a number';
  const range = max === Infinity ? `>= ${min}` : `between ${min} and ${max}`;
  const error = msg((v) => `expected ${what} ${range}, got ${show(v)}`);
  let s = z.number({ error }).min(min, { error });
  if (max !== Infinity) s = s.max(max, { error });
  if (integer) s = s.int({ error });
  return s;
}

export const bool = (): z.ZodType<boolean> => z.boolean({ error: msg((v) => `expected true or false, got ${show(v)}`) });

export function oneOf<const T extends readonly [string, ...string[]]>(values: T): z.ZodType<T[number]> {
  return z.enum(values, { error: msg((v) => `expected one of ${values.join(', ')}, got ${show(v)}`) });
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: MIN, h: HOUR, d: DAY };
const DURATION_HELP = 'expected a duration (milliseconds, or a string like 90s, 10m, 24h, 7d)';

/** A duration: milliseconds as a number, or a string such as 500ms, 90s, 10m, 24h, 7d; at least minMs. */
export function duration(minMs = 1): z.ZodType<number, unknown> {
  return z.unknown().transform((v, ctx) => {
    let ms: number | undefined;
    if (typeof v === 'number' && Number.isFinite(v)) ms = v;
    else if (typeof v === 'string') {
      const m = DURATION.exec(v.trim());
      if (m) ms = Number(m[1]) * UNIT_MS[m[2]!]!;
    }
    if (ms === undefined || !Number.isInteger(ms)) {
      ctx.addIssue({ code: 'custom', message: `${DURATION_HELP}, got ${show(v)}` });
      return z.NEVER;
    }
    if (ms < minMs) {
      ctx.addIssue({ code: 'custom', message: `expected a duration of at least ${minMs} ms, got ${show(v)}` });
      return z.NEVER;
    }
    return ms;
  });
}

export const severity = () => oneOf(SeverityValues);
export const mode = () => oneOf(['active', 'shadow'] as const);

/**
 * A mapping with exactly these keys, all optional; null/undefined (an empty section) reads as {}.
 * Unknown keys are reported one by one (see toIssues).
 */
export function section<S extends z.ZodRawShape>(shape: S) {
  const keys = Object.keys(shape);
  const optional = Object.fromEntries(Object.entries(shape).map(([k, s]) => [k, (s as z.ZodType).optional()])) as unknown as { [K in keyof S]: z.ZodOptional<S[K]> };
  return z.preprocess(
    (v) => (v === null || v === undefined ? {} : v),
    z.strictObject(optional, {
      error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown key (expected one of ${keys.join(', ')})` : `expected a mapping, got ${show(iss.input)}`),
    }),
  );
}

/** A mapping from free keys (merchant ids, terminal ids) to values; null/undefined reads as {}. */
export function record<V extends z.ZodType>(value: V) {
  return z.preprocess(
    (v) => (v === null || v === undefined ? {} : v),
    z.record(z.string(), value, { error: (iss) => `expected a mapping, got ${show(iss.input)}` }),
  );
}

export interface ConfigIssue {
  path: string;
  problem: string;
}

/** zod issues as key-path problems, one per unknown key. */
export function toIssues(error: z.ZodError): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const iss of error.issues) {
    const path = fmtPath(iss.path);
    if (iss.code === 'unrecognized_keys') {
      for (const k of iss.keys) out.push({ path: path === '(root)' ? k : `${path}.${k}`, problem: iss.message });
    } else out.push({ path, problem: iss.message });
  }
  return out;
}

export function fmtPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else s += s === '' ? String(p) : `.${String(p)}`;
  }
  return s === '' ? '(root)' : s;
}
