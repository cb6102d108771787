// `npm start` / `tillwatch start`: the whole pipeline on the local stack in one command —
// stack, provisioning, detector, sink (embedded ClickHouse), API, and the simulator feeding it —
// with live alerts and counters in the terminal. Ctrl-C stops everything cleanly.
import { clickhouseConfig, kafkaConfig, parseAll, registryConfig, serviceConfig } from '@tillwatch/config';
import { loadRules } from '@tillwatch/detector';
import { numberOption, parseCommand, type CommandSpec } from '../lib/args.js';
import { checkReachable, createContext } from '../lib/context.js';
import { CLICKHOUSE_ENV, KAFKA_ENV, envNotes } from '../lib/env-help.js';
import { openClickHouse } from '../lib/clickhouse.js';
import { createLiveConsole } from '../lib/live-console.js';
import { startPipeline } from '../lib/pipeline.js';
import { provisionAll } from '../lib/provision.js';
import { startSimulator, type RunningSimulator } from '../lib/simulator.js';
import { clickhouseStatusLine, formatStatus, localStack, usesLocalStack } from '../lib/stack.js';

export const spec = {
  name: 'start',
  summary: 'Runs the whole pipeline on the local stack in one process: starts the stack (unless KAFKA_BROKERS / SCHEMA_REGISTRY_URL point elsewhere), provisions, runs detector, sink (embedded ClickHouse unless CLICKHOUSE_URL), the API and the simulator, and prints live alerts. Ctrl-C stops everything.',
  options: {
    terminals: { type: 'string', value: 'N', default: '500', description: 'terminals the simulator drives' },
    rate: { type: 'string', value: 'EVENTS_PER_S', default: '200', description: 'simulated transactions per second' },
    'anomaly-rate': { type: 'string', value: 'P', default: '0.01', description: 'share of simulated transactions that start an injected anomaly (0..1)' },
    'no-simulator': { type: 'boolean', description: 'run the pipeline without simulated traffic (feed it with `tillwatch produce`)' },
    'keep-stack': { type: 'boolean', description: 'leave the local stack running on exit (it is stopped when this command started it)' },
    seconds: { type: 'string', value: 'S', description: 'stop by itself after S seconds (default: until Ctrl-C)' },
  },
  notes: envNotes(KAFKA_ENV, CLICKHOUSE_ENV, [
    '  HTTP_PORT              the API\'s port (default 8080); detector and sink metrics on 9464 and 9465',
    '  TILLWATCH_RULES        rules file, YAML or JSON (default: the built-in rules)',
    '  LOG_LEVEL              log level of the services (default warn)',
  ]),
} satisfies CommandSpec;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommand(spec, argv);
  const terminals = numberOption(spec, 'terminals', values.terminals, { min: 1, integer: true });
  const rate = numberOption(spec, 'rate', values.rate, { min: 1 });
  const anomalyRate = numberOption(spec, 'anomaly-rate', values['anomaly-rate'], { min: 0 });
  const seconds = values.seconds !== undefined ? numberOption(spec, 'seconds', values.seconds, { min: 1 }) : undefined;
  const env = process.env;
  // Every wrong variable at once, before the stack is started.
  const { svc } = parseAll({ svc: (e) => serviceConfig(e, { httpPort: 8080 }), kafka: kafkaConfig, registry: registryConfig, clickhouse: clickhouseConfig }, env);
  const startedStack = usesLocalStack(env);
  const stack = localStack();
  if (startedStack) {
    console.error('starting the local stack (first run fetches Kafka and Apicurio from Maven Central)...');
    const up = await stack.up();
    console.error(formatStatus(await stack.status()));
    console.error(`stack ready in ${(up.elapsedMs / 1000).toFixed(1)} s`);
  }
  console.error(await clickhouseStatusLine(env));

  const ctx = createContext({ ...env, LOG_LEVEL: env.LOG_LEVEL ?? 'warn' }, 'start');
  const ch = openClickHouse(env);
  await checkReachable(ctx, { clickhouse: { ch, url: clickhouseConfig(env).url } });
  const report = await provisionAll(ctx, ch);
  console.error(`provisioned: ${report.topicsCreated.length} topics created, ${Object.keys(report.subjects).length} schemas registered, ${report.migrationsApplied.length} migrations applied`);

  const live = createLiveConsole();
  let fatal: Error | undefined;
  let stopNow: (() => void) | undefined;
  const pipeline = await startPipeline({
    ctx,
    ch,
    rules: loadRules(svc.rulesFile),
    api: { port: Number(env.HTTP_PORT ?? 8080) },
    opsPorts: { detector: 9464, sink: 9465 },
    onAlerts: (alerts) => live.alerts(alerts),
    // A fatal error in either service stops the whole pipeline with exit 1 and its message.
    onFatal: (service, e) => {
      fatal ??= e;
      console.error(`\ntillwatch start: the ${service} cannot continue: ${e.message}`);
      stopNow?.();
    },
  });
  const { detector, sink, api } = pipeline;
  for (const url of Object.values(pipeline.opsUrls)) console.error(`metrics: ${url}/metrics`);
  console.error(`alert API: ${api.url}  (docs ${api.url}/docs)`);
  if (api.devKey) console.error(`development API key (admin): ${api.devKey}   e.g. curl -H 'x-api-key: ${api.devKey}' ${api.url}/alerts`);

  let simulator: RunningSimulator | undefined;
  if (!values['no-simulator']) {
    simulator = await startSimulator(ctx, { terminals, seed: Date.now() % 1e9, anomalyRate, rate });
    console.error(`simulator: ${simulator.fleet.terminalCount} terminals at ${values.rate} events/s with injected anomalies`);
  }
  console.error('live alerts (Ctrl-C to stop):');

  const counterTimer = setInterval(() => {
    live.counters({ sent: simulator?.sim.sent() ?? 0, partitions: detector.assignedPartitions().length, sink_pending: sink.pending() });
  }, 5000);

  let runFor: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    stopNow = resolve;
    if (fatal) resolve();
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    if (seconds !== undefined) runFor = setTimeout(resolve, seconds * 1000);
  });
  // Stopped early (fatal error, signal): a pending --seconds timer would keep the process alive.
  clearTimeout(runFor);
  console.error('\nstopping: simulator, detector (commits its batch), sink (flushes), ClickHouse...');
  clearInterval(counterTimer);
  await simulator?.stop();
  await pipeline.stop();
  await ch.close();
  if (startedStack && !values['keep-stack']) {
    await stack.down();
    console.error('local stack stopped (use --keep-stack to leave it running)');
  }
  return fatal ? 1 : 0;
}
