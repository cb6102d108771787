// tillwatch sink: the ClickHouse sink service, configured by environment variables.
import { parseCommand, type CommandSpec } from '../lib/args.js';
import { CLICKHOUSE_ENV, KAFKA_ENV, SERVICE_ENV, envNotes } from '../lib/env-help.js';

export const spec = {
  name: 'sink',
  summary: 'Runs the sink: writes transactions, alerts, actions and dead letters to ClickHouse (migrating it first), committing offsets only after the rows are written. /metrics /healthz /readyz on HTTP_PORT (default 9465).',
  options: {},
  notes: [
    ...envNotes(KAFKA_ENV, CLICKHOUSE_ENV, SERVICE_ENV, ['  SINK_GROUP_ID          consumer group (default tillwatch-sink, under TOPIC_PREFIX)']),
    'Exit: 0 after SIGTERM/SIGINT (buffered rows written and committed); 1 on a fatal error (at start: ClickHouse, Kafka or the registry unreachable; /healthz answers 503 from that moment) or a stop past SHUTDOWN_TIMEOUT_MS.',
  ],
} satisfies CommandSpec;

export async function run(argv: string[]): Promise<number> {
  parseCommand(spec, argv);
  const { runSinkMain } = await import('@tillwatch/sink');
  return runSinkMain(process.env);
}
