// Typed environment parsing that fails fast: a wrong value names the variable and what was expected.

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly variable: string, readonly expected: string, readonly got: string | undefined) {
    super(`${variable}: expected ${expected}, got ${got === undefined ? 'nothing (unset)' : JSON.stringify(got)}`);
  }
}

/** Aggregates every problem so one start-up shows all wrong variables at once. */
export class ConfigErrors extends Error {
  override readonly name = 'ConfigErrors';
  constructor(readonly errors: ConfigError[]) {
    super(`invalid configuration:\n${errors.map((e) => `  - ${e.message}`).join('\n')}`);
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

export interface Field<T> {
  /** What a correct value looks like, for the error message. */
  expected: string;
  parse(raw: string): T | undefined;
}

export const str = (expected = 'a non-empty string'): Field<string> => ({ expected, parse: (r) => (r.length > 0 ? r : undefined) });

export const int = (min: number, max: number): Field<number> => ({
  expected: `an integer between ${min} and ${max}`,
  parse: (r) => {
    if (!/^-?\d+$/.test(r.trim())) return undefined;
    const n = Number(r);
    return n >= min && n <= max ? n : undefined;
  },
});

export const port = (): Field<number> => ({ ...int(0, 65535), expected: 'a TCP port (0-65535)' });

export const bool = (): Field<boolean> => ({
  expected: 'true or false (also 1/0, yes/no)',
  parse: (r) => {
    const v = r.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(v)) return true;
    if (['false', '0', 'no', 'off'].includes(v)) return false;
    return undefined;
  },
});

export const oneOf = <T extends string>(values: readonly T[]): Field<T> => ({
  expected: `one of ${values.join(', ')}`,
  parse: (r) => (values as readonly string[]).includes(r) ? (r as T) : undefined,
});

export const url = (protocols: readonly string[] = ['http:', 'https:']): Field<string> => ({
  expected: `a URL (${protocols.join(' or ')}//host:port/...)`,
  parse: (r) => {
    try {
      const u = new URL(r);
      return protocols.includes(u.protocol) ? r.replace(/\/+$/, '') : undefined;
    } catch {
      return undefined;
    }
  },
});

/** Comma-separated host:port list, as Kafka's bootstrap.servers. */
export const hostPortList = (): Field<string[]> => ({
  expected: 'a comma-separated list of host:port (e.g. 127.0.0.1:9092,broker2:9092)',
  parse: (r) => {
    const parts = r.split(',').map((s) => s.trim()).filter(Boolean);
    if (parts.length === 0) return undefined;
    for (const p of parts) {
      const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(p);
      if (!m || Number(m[2]) > 65535 || Number(m[2]) === 0) return undefined;
    }
    return parts;
  },
});

type Spec = Record<string, { env: string; field: Field<unknown>; default?: unknown; optional?: boolean }>;
type Out<S extends Spec> = {
  [K in keyof S]: S[K]['field'] extends Field<infer T> ? (S[K] extends { default: unknown } ? T : S[K] extends { optional: true } ? T | undefined : T) : never;
};

/**
 * Parses every variable of the spec; collects all errors and throws them together.
 * An empty string counts as unset (so `FOO= cmd` falls back to the default).
 */
export function parseEnv<S extends Spec>(spec: S, env: Env): Out<S> {
  const out: Record<string, unknown> = {};
  const errors: ConfigError[] = [];
  for (const [key, def] of Object.entries(spec)) {
    const raw = env[def.env];
    if (raw === undefined || raw === '') {
      if ('default' in def) out[key] = def.default;
      else if (def.optional) out[key] = undefined;
      else errors.push(new ConfigError(def.env, def.field.expected, raw));
      continue;
    }
    const v = def.field.parse(raw);
    if (v === undefined) errors.push(new ConfigError(def.env, def.field.expected, raw));
    else out[key] = v;
  }
  throwConfigErrors(errors);
  return out as Out<S>;
}

/** Throws what `errors` holds: the one ConfigError itself, several as one ConfigErrors; nothing when empty. */
export function throwConfigErrors(errors: readonly ConfigError[]): void {
  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) throw new ConfigErrors([...errors]);
}

type Parsers = Record<string, (env: Env) => unknown>;

/**
 * Runs several groups' parsers (kafkaConfig, registryConfig, ...) and reports the wrong variables of
 * ALL groups at once: one start-up shows every mistake, instead of one group's per run.
 */
export function parseAll<P extends Parsers>(parsers: P, env: Env): { [K in keyof P]: ReturnType<P[K]> } {
  const out: Record<string, unknown> = {};
  const errors: ConfigError[] = [];
  for (const [key, parse] of Object.entries(parsers)) {
    try {
      out[key] = parse(env);
    } catch (e) {
      if (e instanceof ConfigErrors) errors.push(...e.errors);
      else if (e instanceof ConfigError) errors.push(e);
      else throw e;
    }
  }
  // The same variable read by two groups (e.g. HTTP_PORT) is reported once.
  const seen = new Set<string>();
  const unique = errors.filter((e) => (seen.has(e.variable) ? false : (seen.add(e.variable), true)));
  if (unique.length === 1) throw unique[0]!;
  if (unique.length > 1) throw new ConfigErrors(unique);
  return out as { [K in keyof P]: ReturnType<P[K]> };
}
