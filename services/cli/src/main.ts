// The `tillwatch` command. Each sub-command lives in commands/<name>.ts and is loaded on demand,
// so `tillwatch backtest` never pays for kafkajs or chDB.
import { ConfigError, ConfigErrors } from '@tillwatch/config';

interface Command {
  summary: string;
  load: () => Promise<{ run(argv: string[]): Promise<number> }>;
}

const commands: Record<string, Command> = {
  start: { summary: 'run the whole pipeline on the local stack (stack, provisioning, services, simulator)', load: () => import('./commands/start.js') },
  stack: { summary: 'local stack: up | down | status (Kafka, schema registry, embedded ClickHouse)', load: () => import('./commands/stack.js') },
  provision: { summary: 'create topics, register schemas, migrate ClickHouse (safe to rerun)', load: () => import('./commands/provision.js') },
  produce: { summary: 'publish a JSON-lines file of transactions to Kafka: --events FILE', load: () => import('./commands/produce.js') },
  simulate: { summary: 'produce simulated fleet traffic with injected anomalies: --terminals N --rate R', load: () => import('./commands/simulate.js') },
  detector: { summary: 'run the detector service (configured by environment variables)', load: () => import('./commands/detector.js') },
  sink: { summary: 'run the ClickHouse sink service (configured by environment variables)', load: () => import('./commands/sink.js') },
  replay: { summary: 'end-to-end check: publish a file, detect, read alerts back: --events FILE --out FILE', load: () => import('./commands/replay.js') },
  api: { summary: 'run the alert API (configured by environment variables; API_KEYS for production keys)', load: () => import('./commands/api.js') },
  rules: { summary: 'rules as live data on pos.rules.v1: validate FILE | push FILE | show | history', load: () => import('./commands/rules.js') },
  backtest: { summary: 'run the rule engine over a JSON-lines file: --events FILE --out FILE [--config FILE]', load: () => import('./commands/backtest.js') },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'usage: tillwatch <command> [options]',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Configuration comes from environment variables (see README: KAFKA_BROKERS, SCHEMA_REGISTRY_URL, CLICKHOUSE_URL, ...).',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`tillwatch: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  return (await cmd.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // Fatal errors end here: one clear line (plus the cause chain), non-zero exit.
    if (err instanceof ConfigError || err instanceof ConfigErrors) console.error(`tillwatch: configuration error: ${err.message}`);
    else if (err instanceof Error) {
      console.error(`tillwatch: ${err.name === 'Error' ? '' : `${err.name}: `}${err.message}`);
      if (process.env.TILLWATCH_DEBUG) console.error(err.stack);
    } else console.error('tillwatch:', err);
    process.exitCode = 1;
  },
);
