// tillwatch api: the alert API, configured by environment variables.
import { parseCommand, type CommandSpec } from '../lib/args.js';
import { CLICKHOUSE_ENV, envNotes } from '../lib/env-help.js';

export const spec = {
  name: 'api',
  summary: 'Runs the alert API (alerts, triage, terminals, rules, live stream; OpenAPI docs at /docs) over ClickHouse.',
  options: {},
  notes: [
    ...envNotes(CLICKHOUSE_ENV, [
      '  HTTP_HOST, HTTP_PORT   where the API listens (default 127.0.0.1:8080)',
      '  API_OPS_PORT           /metrics /healthz /readyz (default 9466)',
      '  API_KEYS               key:role:name[,...] (keys of 16+ characters); unset in development = a generated admin key, printed',
      '  LOG_LEVEL              trace | debug | info | warn | error | fatal | silent (default info)',
      '  SHUTDOWN_TIMEOUT_MS    a stop taking longer is abandoned, exit 1 (default 25000)',
      '  KAFKA_BROKERS, SCHEMA_REGISTRY_URL, TOPIC_PREFIX   where the rules routes read pos.rules.v1 (503 within seconds when Kafka is not there)',
      '  API_RATE_LIMIT_MAX, API_RATE_LIMIT_WINDOW_MS, NODE_ENV, TILLWATCH_ENV   see services/api/README.md',
    ]),
    'Exit: 0 after SIGTERM/SIGINT; 1 on a fatal error at start (a ClickHouse server unreachable, a bad variable) or a stop past SHUTDOWN_TIMEOUT_MS.',
  ],
} satisfies CommandSpec;

export async function run(argv: string[]): Promise<number> {
  parseCommand(spec, argv);
  const { runApiMain } = await import('@tillwatch/api');
  return runApiMain(process.env);
}
