// The `tillwatch` command. Each sub-command lives in commands/<name>.ts and is loaded on demand,
// so `tillwatch backtest` never pays for kafkajs or chDB. bin/tillwatch.js calls runMain().
//
// Exit codes: 0 done; 1 failed (a fatal error, one line on stderr); 2 wrong command line (the
// usage is printed); other codes are documented by the command (stack status: 3 = not healthy).
import { readFileSync } from 'node:fs';
import { ConfigError, ConfigErrors } from '@tillwatch/config';
import { HelpRequested, UsageError, formatUsageLine, isParseArgsError } from './lib/args.js';

interface Command {
  summary: string;
  load: () => Promise<{ run(argv: string[]): Promise<number> }>;
}

export const commands: Record<string, Command> = {
  start: { summary: 'run the whole pipeline on the local stack (stack, provisioning, services, simulator)', load: () => import('./commands/start.js') },
  stack: { summary: 'local stack: up | down | status | fetch (Kafka, schema registry, embedded ClickHouse)', load: () => import('./commands/stack.js') },
  provision: { summary: 'create topics, register schemas, migrate ClickHouse (safe to rerun)', load: () => import('./commands/provision.js') },
  produce: { summary: 'publish a JSON-lines file of transactions to Kafka: --events FILE', load: () => import('./commands/produce.js') },
  simulate: { summary: 'produce simulated fleet traffic with injected anomalies: --terminals N --rate R', load: () => import('./commands/simulate.js') },
  detector: { summary: 'run the detector service (configured by environment variables)', load: () => import('./commands/detector.js') },
  sink: { summary: 'run the ClickHouse sink service (configured by environment variables)', load: () => import('./commands/sink.js') },
  stage: { summary: 'run the second stage: fleet incidents and the action governor (configured by environment variables)', load: () => import('./commands/stage.js') },
  replay: { summary: 'end-to-end check: publish a file, detect, read alerts back: --events FILE --out FILE', load: () => import('./commands/replay.js') },
  api: { summary: 'run the alert API (configured by environment variables; API_KEYS for production keys)', load: () => import('./commands/api.js') },
  rules: { summary: 'rules as live data on pos.rules.v1: validate FILE | push FILE | show | history', load: () => import('./commands/rules.js') },
  backtest: { summary: 'run the rule engine over a JSON-lines file: --events FILE --out FILE [--config FILE]', load: () => import('./commands/backtest.js') },
};

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'usage: tillwatch <command> [options]',
    '       tillwatch <command> --help     that command\'s options',
    '       tillwatch --version',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Configuration comes from environment variables (see README: KAFKA_BROKERS, SCHEMA_REGISTRY_URL, CLICKHOUSE_URL, ...).',
    'Exit codes: 0 done, 1 failed, 2 wrong command line.',
  ].join('\n');
}

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

const stdio: Io = { out: (t) => console.log(t), err: (t) => console.error(t) };

/** Runs one command line and returns its exit code; fatal errors are printed as one line (plus causes). */
export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    io.out(`tillwatch ${version()}`);
    return 0;
  }
  if (name === 'help' && rest[0] && commands[rest[0]]) return main([rest[0], '--help'], io);
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    if (name) io.out(usage());
    else io.err(usage());
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    io.err(`tillwatch: ${name.startsWith('-') ? `unknown option "${name}"` : `unknown command "${name}"`}\n\n${usage()}`);
    return 2;
  }
  try {
    return await (await cmd.load()).run(rest);
  } catch (err) {
    if (err instanceof HelpRequested) {
      io.out(err.text);
      return 0;
    }
    if (err instanceof UsageError) {
      io.err(`tillwatch ${name}: ${err.message}\n${err.spec ? formatUsageLine(err.spec) : ''}\n(tillwatch ${name} --help describes every option)`);
      return 2;
    }
    // A command that parses its own arguments (parseArgs, strict) and met an unknown option.
    if (isParseArgsError(err)) {
      io.err(`tillwatch ${name}: ${err.message.split('\n')[0]}\n(tillwatch ${name} --help describes every option)`);
      return 2;
    }
    printFatal(err, io);
    return 1;
  }
}

function printFatal(err: unknown, io: Io): void {
  if (err instanceof ConfigError || err instanceof ConfigErrors) io.err(`tillwatch: configuration error: ${err.message}`);
  else if (err instanceof Error) {
    io.err(`tillwatch: ${err.name === 'Error' ? '' : `${err.name}: `}${err.message}`);
    if (process.env.TILLWATCH_DEBUG) io.err(String(err.stack));
  } else io.err(`tillwatch: ${String(err)}`);
}

/** How long a finished command may keep the process alive (stdout draining) before it exits anyway. */
export const EXIT_GRACE_MS = 1_000;

/**
 * Ends the process with `code` once the command returned. A command that returned has finished its
 * work; a socket a client library left open (seen: a kafkajs connection after a broker restart)
 * must not keep the process alive, so after a short grace (for stdout to drain) it exits anyway.
 */
export function exitWhenDone(code: number, graceMs = EXIT_GRACE_MS): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), graceMs).unref();
}

/** The process entry (bin/tillwatch.js). */
export async function runMain(argv: string[]): Promise<void> {
  let code: number;
  try {
    code = await main(argv);
  } catch (err) {
    printFatal(err, stdio);
    code = 1;
  }
  exitWhenDone(code);
}
