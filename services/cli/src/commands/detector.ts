// tillwatch detector: the detector service, configured by environment variables.
import { parseCommand, type CommandSpec } from '../lib/args.js';
import { KAFKA_ENV, SERVICE_ENV, envNotes } from '../lib/env-help.js';

export const spec = {
  name: 'detector',
  summary: 'Runs the detector: consumes transactions and heartbeats, runs the rules, publishes alerts, actions and dead letters exactly once. /metrics /healthz /readyz on HTTP_PORT (default 9464).',
  options: {},
  notes: [
    ...envNotes(KAFKA_ENV, SERVICE_ENV, [
      '  DETECTOR_GROUP_ID      consumer group (default tillwatch-detector, under TOPIC_PREFIX)',
      '  TILLWATCH_RULES        rules file, YAML or JSON (default: the built-in rules)',
      '  DETECTOR_WALL_CLOCK_TIMERS   quiet partitions\' clocks follow wall time (default true)',
      '  DETECTOR_STAGE         propose actions to the second stage (tillwatch stage) instead of publishing them (default true)',
      '  DETECTOR_STAGE_GRACE_MS   how far a quiet partition\'s stage watermark trails its clock: a record delayed longer reaches the stage late; a quiet partition holds the stage back this long (default 5000)',
      '  DETECTOR_CHANGELOG_FORMAT     changelog value format written: 2 (default) or 1, for a rolling upgrade from a version that reads only 1',
      '  DETECTOR_SESSION_TIMEOUT_MS   consumer group session: a killed detector\'s partitions wait this long before moving (default 10000; the broker allows 6000 to 1800000 by default)',
    ]),
    'Exit: 0 after SIGTERM/SIGINT (batch in flight committed); 1 on a fatal error (at start: Kafka or the registry unreachable; /healthz answers 503 from that moment) or a stop past SHUTDOWN_TIMEOUT_MS.',
  ],
} satisfies CommandSpec;

export async function run(argv: string[]): Promise<number> {
  parseCommand(spec, argv);
  const { runDetectorMain } = await import('@tillwatch/detector');
  return runDetectorMain(process.env);
}
