// Every command declares its options once, with a description each: the same declaration parses
// argv (node:util parseArgs, strict) and prints `--help`. A wrong command line is a UsageError
// (usage printed, exit 2); `--help`/`-h` is HelpRequested (usage on stdout, exit 0) and nothing
// else runs, so `tillwatch api --help` never starts the API.
import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Placeholder in the usage line, e.g. FILE, N. */
  value?: string;
  default?: string;
  required?: boolean;
  description: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Positional arguments in the usage line, e.g. `up | down | status | fetch`. */
  positionals?: { usage: string; description: string[] };
  options: Record<string, OptionSpec>;
  /** Extra paragraphs: environment variables, exit codes, examples. */
  notes?: string[];
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(readonly spec: CommandSpec | undefined, message: string) {
    super(message);
  }
}

export class HelpRequested extends Error {
  override readonly name = 'HelpRequested';
  constructor(readonly text: string) {
    super('help requested');
  }
}

const HELP: OptionSpec = { type: 'boolean', short: 'h', description: 'print this help and exit' };

function optionLabel(name: string, o: OptionSpec): string {
  const long = `--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
  return o.short ? `-${o.short}, ${long}` : `    ${long}`;
}

export function formatUsageLine(spec: CommandSpec): string {
  const parts = [`tillwatch ${spec.name}`];
  if (spec.positionals) parts.push(spec.positionals.usage);
  for (const [name, o] of Object.entries(spec.options)) {
    const flag = `--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    parts.push(o.required ? flag : `[${flag}]`);
  }
  return `usage: ${parts.join(' ')}`;
}

export function formatHelp(spec: CommandSpec): string {
  const options = { ...spec.options, help: HELP };
  const labels = Object.entries(options).map(([n, o]) => [optionLabel(n, o), o] as const);
  const width = Math.max(...labels.map(([l]) => l.length));
  const lines = [formatUsageLine(spec), '', spec.summary, ''];
  if (spec.positionals) lines.push(...spec.positionals.description, '');
  lines.push('options:');
  for (const [label, o] of labels) {
    const extra = [o.required ? 'required' : '', o.default !== undefined ? `default ${o.default}` : ''].filter(Boolean).join(', ');
    lines.push(`  ${label.padEnd(width)}  ${o.description}${extra ? ` (${extra})` : ''}`);
  }
  if (spec.notes?.length) lines.push('', ...spec.notes);
  return lines.join('\n');
}

type Values<S extends CommandSpec> = {
  [K in keyof S['options']]: S['options'][K]['type'] extends 'boolean' ? boolean : S['options'][K] extends { default: string } | { required: true } ? string : string | undefined;
};

/** Parses argv against the spec: values, or throws HelpRequested / UsageError. */
export function parseCommand<S extends CommandSpec>(spec: S, argv: string[]): { values: Values<S>; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; default?: string | boolean }> = {};
  for (const [name, o] of Object.entries({ ...spec.options, help: HELP })) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.type === 'boolean' ? { default: false } : o.default !== undefined ? { default: o.default } : {}) };
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: spec.positionals !== undefined });
  } catch (e) {
    // parseArgs throws TypeError with codes ERR_PARSE_ARGS_UNKNOWN_OPTION, _INVALID_OPTION_VALUE, _UNEXPECTED_POSITIONAL.
    if (isParseArgsError(e)) {
      if (argv.includes('--help') || argv.includes('-h')) throw new HelpRequested(formatHelp(spec));
      throw new UsageError(spec, e.message.split('\n')[0]!);
    }
    throw e;
  }
  if (parsed.values.help) throw new HelpRequested(formatHelp(spec));
  for (const [name, o] of Object.entries(spec.options)) {
    if (o.required && (parsed.values[name] === undefined || parsed.values[name] === '')) throw new UsageError(spec, `--${name} is required`);
  }
  return { values: parsed.values as Values<S>, positionals: parsed.positionals };
}

export function isParseArgsError(e: unknown): e is TypeError & { code: string } {
  const code = (e as { code?: unknown } | undefined)?.code;
  return e instanceof TypeError && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

/** A numeric option: a finite number >= min (an integer when asked), or a UsageError naming it. */
export function numberOption(spec: CommandSpec, name: string, raw: string, o: { min: number; integer?: boolean }): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < o.min || (o.integer && !Number.isInteger(n))) {
    throw new UsageError(spec, `--${name}: expected ${o.integer ? 'an integer' : 'a number'} >= ${o.min}, got ${JSON.stringify(raw)}`);
  }
  return n;
}
