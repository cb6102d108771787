// tillwatch stage: the second pipeline stage (fleet incidents, action governor), configured by environment variables.
import { parseCommand, type CommandSpec } from '../lib/args.js';
import { KAFKA_ENV, SERVICE_ENV, envNotes } from '../lib/env-help.js';

export const spec = {
  name: 'stage',
  summary: "Runs the second stage: reads the detector partitions' internal topic (tillwatch.stage2.input.v1), opens and closes fleet sync incidents, governs the proposed actions (suppress, cap freezes) and publishes alerts, actions, decisions and incident memberships exactly once. Follows the rules topic (pos.rules.v1) as the detector does. /metrics /healthz /readyz on HTTP_PORT (default 9467).",
  options: {},
  notes: [
    ...envNotes(KAFKA_ENV, SERVICE_ENV, [
      '  STAGE_GROUP_ID         consumer group (default tillwatch-stage, under TOPIC_PREFIX)',
      '  TILLWATCH_RULES        rules file, YAML or JSON: its stage section, in force while pos.rules.v1 holds no valid document (default: the built-in rules)',
    ]),
    'Exit: 0 after SIGTERM/SIGINT (batch in flight committed); 1 on a fatal error or a stop past SHUTDOWN_TIMEOUT_MS.',
  ],
} satisfies CommandSpec;

export async function run(argv: string[]): Promise<number> {
  parseCommand(spec, argv);
  const { runStageMain } = await import('@tillwatch/stage-service');
  return runStageMain(process.env);
}
