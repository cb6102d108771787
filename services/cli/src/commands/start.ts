// `npm start` / `tillwatch start`: the whole pipeline on the local stack in one command —
// stack, provisioning, detector, sink (embedded ClickHouse), API, and the simulator feeding it —
// with live alerts and counters in the terminal. Ctrl-C stops everything cleanly.
import { parseArgs } from 'node:util';
import { serviceConfig } from '@tillwatch/config';
import { loadRules } from '@tillwatch/detector';
import { createContext } from '../lib/context.js';
import { openClickHouse } from '../lib/clickhouse.js';
import { createLiveConsole } from '../lib/live-console.js';
import { startPipeline } from '../lib/pipeline.js';
import { provisionAll } from '../lib/provision.js';
import { startSimulator, type RunningSimulator } from '../lib/simulator.js';
import { clickhouseStatusLine, formatStatus, localStack, usesLocalStack } from '../lib/stack.js';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      terminals: { type: 'string', default: '500' },
      rate: { type: 'string', default: '200' },
      'anomaly-rate': { type: 'string', default: '0.01' },
      'no-simulator': { type: 'boolean', default: false },
      'keep-stack': { type: 'boolean', default: false },
      seconds: { type: 'string' },
    },
  });
  const env = process.env;
  const svc = serviceConfig(env, { httpPort: 8080 });
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
    simulator = await startSimulator(ctx, { terminals: Number(values.terminals), seed: Date.now() % 1e9, anomalyRate: Number(values['anomaly-rate']), rate: Number(values.rate), outages: true });
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
    if (values.seconds) runFor = setTimeout(resolve, Number(values.seconds) * 1000);
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
