// tillwatch api: the alert API, configured by environment variables.
import { parseCommand, type CommandSpec } from '../lib/args.js';
import { CLICKHOUSE_ENV, envNotes } from '../lib/env-help.js';

export const spec = {
  name: 'api',
  summary: 'Runs the alert API (alerts, triage, terminals, rules, live stream; OpenAPI docs at /docs) over ClickHouse.',
  options: {},
  notes: envNotes(CLICKHOUSE_ENV, [
    '  HTTP_HOST, HTTP_PORT   where the API listens (default 127.0.0.1:8080)',
    '  API_KEYS               key:role:name[,...] (keys of 16+ characters); unset in development = a generated admin key, printed',
    '  LOG_LEVEL              trace | debug | info | warn | error | fatal | silent (default info)',
    '  API_RATE_LIMIT_MAX, API_RATE_LIMIT_WINDOW_MS, NODE_ENV, TILLWATCH_ENV   see services/api/README.md',
  ]),
} satisfies CommandSpec;

export async function run(argv: string[]): Promise<number> {
  parseCommand(spec, argv);
  const { runApiMain } = await import('@tillwatch/api');
  return runApiMain(process.env);
}
