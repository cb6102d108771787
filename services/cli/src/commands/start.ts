// `npm start` / `tillwatch start`: the whole pipeline on the local stack in one command —
// stack, provisioning, detector, sink (embedded ClickHouse), API, and the simulator feeding it —
// with live alerts and counters in the terminal. On exit (Ctrl-C/SIGTERM, a fatal error, the end of
// `--seconds N`) it stops what it started, and only that: stack components that were already
// running (another command's) are left running, and it says which.
import { clickhouseConfig, kafkaConfig, parseAll, registryConfig, serviceConfig, type Env } from '@tillwatch/config';
import type { LocalStack } from '@tillwatch/local-stack';
import { loadRules } from '@tillwatch/detector';
import { numberOption, parseCommand, type CommandSpec } from '../lib/args.js';
import { checkReachable, createContext } from '../lib/context.js';
import { CLICKHOUSE_ENV, KAFKA_ENV, envNotes } from '../lib/env-help.js';
import { openClickHouse } from '../lib/clickhouse.js';
import { createLiveConsole } from '../lib/live-console.js';
import { startPipeline } from '../lib/pipeline.js';
import { provisionAll } from '../lib/provision.js';
import { startSimulator, type RunningSimulator } from '../lib/simulator.js';
import { acquireLocalStack, clickhouseStatusLine, formatStatus, localStack, usesLocalStack, type StackLease } from '../lib/stack.js';

/** What a test injects; `npm start` uses the defaults. */
export interface StartDeps {
  /** Default process.env. */
  env?: Env;
  /** The local stack to use (default: the repository's, when no KAFKA_BROKERS / SCHEMA_REGISTRY_URL is set). */
  stack?: LocalStack;
  /** Ops ports of the detector, the sink and the API's /metrics (default 9464, 9465, API_OPS_PORT). */
  opsPorts?: { detector: number; sink: number; api?: number; stage?: number };
}

export const spec = {
  name: 'start',
  summary: 'Runs the whole pipeline on the local stack in one process: starts the stack (unless KAFKA_BROKERS / SCHEMA_REGISTRY_URL point elsewhere), provisions, runs the detector, the second stage (fleet incidents, action governor), the sink (embedded ClickHouse unless CLICKHOUSE_URL), the API and the simulator, and prints live alerts. On exit (Ctrl-C, a fatal error, --seconds) it stops what it started, and only that.',
  options: {
    terminals: { type: 'string', value: 'N', default: '500', description: 'terminals the simulator drives' },
    rate: { type: 'string', value: 'EVENTS_PER_S', default: '200', description: 'simulated transactions per second' },
    'anomaly-rate': { type: 'string', value: 'P', default: '0.01', description: 'share of simulated transactions that start an injected anomaly (0..1)' },
    'no-simulator': { type: 'boolean', description: 'run the pipeline without simulated traffic (feed it with `tillwatch produce`)' },
    'keep-stack': { type: 'boolean', description: 'leave the stack components this command started running on exit (components that were already running are never stopped)' },
    seconds: { type: 'string', value: 'S', description: 'stop by itself after S seconds (default: until Ctrl-C)' },
  },
  notes: envNotes(KAFKA_ENV, CLICKHOUSE_ENV, [
    '  HTTP_PORT              the API\'s port (default 8080); /metrics of the detector 9464, sink 9465, API 9466, stage 9467',
    '  TILLWATCH_RULES        rules file, YAML or JSON (default: the built-in rules)',
    '  LOG_LEVEL              log level of the services (default warn)',
  ]),
} satisfies CommandSpec;

class StopRequested extends Error {
  constructor(readonly signal: string) {
    super(`stopped by ${signal} while starting`);
  }
}

export async function run(argv: string[], deps: StartDeps = {}): Promise<number> {
  const { values } = parseCommand(spec, argv);
  const terminals = numberOption(spec, 'terminals', values.terminals, { min: 1, integer: true });
  const rate = numberOption(spec, 'rate', values.rate, { min: 1 });
  const anomalyRate = numberOption(spec, 'anomaly-rate', values['anomaly-rate'], { min: 0 });
  const seconds = values.seconds !== undefined ? numberOption(spec, 'seconds', values.seconds, { min: 1 }) : undefined;
  const env = deps.env ?? process.env;
  // Every wrong variable at once, before the stack is started.
  const { svc } = parseAll({ svc: (e) => serviceConfig(e, { httpPort: 8080 }), kafka: kafkaConfig, registry: registryConfig, clickhouse: clickhouseConfig }, env);
  const stack = deps.stack ?? (usesLocalStack(env) ? localStack() : undefined);

  // Signals are ours from the first moment: a Ctrl-C while the stack or the services start must
  // still stop what was started so far (Node's default would exit and leave the JVMs running).
  let stopSignal: string | undefined;
  let wake: (() => void) | undefined;
  let lease: StackLease | undefined;
  const onSignal = (signal: string) => {
    if (stopSignal) {
      console.error(`\n${signal} again: exiting now${lease?.started.length ? ` (leaving ${lease.started.join(', ')} running: npx tillwatch stack down)` : ''}`);
      process.exit(130);
    }
    stopSignal = signal;
    wake?.();
  };
  const sigint = () => onSignal('SIGINT');
  const sigterm = () => onSignal('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);
  const checkpoint = () => {
    if (stopSignal) throw new StopRequested(stopSignal);
  };

  let ch: ReturnType<typeof openClickHouse> | undefined;
  let pipeline: Awaited<ReturnType<typeof startPipeline>> | undefined;
  let simulator: RunningSimulator | undefined;
  let counterTimer: NodeJS.Timeout | undefined;
  let runFor: NodeJS.Timeout | undefined;
  let fatal: Error | undefined;
  let thrown: unknown;
  try {
    let ctxEnv: Env = env;
    if (stack) {
      console.error('starting the local stack (first run fetches Kafka and Apicurio from Maven Central)...');
      lease = await acquireLocalStack(stack);
      console.error(formatStatus(await stack.status()));
      console.error(`local stack: ${lease.describe()}`);
      // The services talk to the stack this command manages.
      ctxEnv = { ...env, KAFKA_BROKERS: `127.0.0.1:${stack.config.kafka.port}`, SCHEMA_REGISTRY_URL: `http://127.0.0.1:${stack.config.registry.port}/apis/ccompat/v7` };
      checkpoint();
    }
    console.error(await clickhouseStatusLine(env));

    const ctx = createContext({ ...ctxEnv, LOG_LEVEL: env.LOG_LEVEL ?? 'warn' }, 'start');
    ch = openClickHouse(env);
    await checkReachable(ctx, { clickhouse: { ch, url: clickhouseConfig(env).url } });
    const report = await provisionAll(ctx, ch);
    console.error(`provisioned: ${report.topicsCreated.length} topics created, ${Object.keys(report.subjects).length} schemas registered, ${report.migrationsApplied.length} migrations applied`);
    checkpoint();

    const live = createLiveConsole();
    pipeline = await startPipeline({
      ctx,
      ch,
      rules: loadRules(svc.rulesFile),
      api: { port: Number(env.HTTP_PORT ?? 8080) },
      opsPorts: deps.opsPorts ?? { detector: 9464, sink: 9465, stage: 9467 },
      onAlerts: (alerts) => live.alerts(alerts),
      // A fatal error in either service stops the whole pipeline with exit 1 and its message.
      onFatal: (service, e) => {
        fatal ??= e;
        console.error(`\ntillwatch start: the ${service} cannot continue: ${e.message}`);
        wake?.();
      },
    });
    const { detector, sink, api } = pipeline;
    for (const [service, url] of Object.entries(pipeline.opsUrls)) console.error(`metrics (${service}): ${url}/metrics`);
    console.error(`alert API: ${api.url}  (docs ${api.url}/docs)`);
    // The key rides in the fragment, which the browser never sends; the page stores it and erases it.
    console.error(`console:   ${api.url}/console/${api.devKey ? `#key=${encodeURIComponent(api.devKey)}  (signs in with the development key)` : '  (sign in with an API key)'}`);
    if (api.devKey) console.error(`development API key (admin): ${api.devKey}   e.g. curl -H 'x-api-key: ${api.devKey}' ${api.url}/alerts`);
    checkpoint();

    if (!values['no-simulator']) {
      simulator = await startSimulator(ctx, { terminals, seed: Date.now() % 1e9, anomalyRate, rate, outages: true });
      console.error(`simulator: ${simulator.fleet.terminalCount} terminals at ${values.rate} events/s with injected anomalies`);
    }
    console.error('live alerts (Ctrl-C to stop):');

    const sim = simulator;
    counterTimer = setInterval(() => {
      live.counters({ sent: sim?.sim.sent() ?? 0, partitions: detector.assignedPartitions().length, sink_pending: sink.pending() });
    }, 5000);

    await new Promise<void>((resolve) => {
      wake = resolve;
      if (fatal || stopSignal) resolve();
      if (seconds !== undefined) runFor = setTimeout(resolve, seconds * 1000);
    });
  } catch (e) {
    // Thrown again after the clean-up below (the CLI prints it and exits 1); a stop request is not an error.
    if (!(e instanceof StopRequested)) thrown = e;
  } finally {
    // Every way out comes through here: signal, fatal error (at start or while running), --seconds.
    clearTimeout(runFor);
    clearInterval(counterTimer);
    console.error(`\nstopping${stopSignal ? ` (${stopSignal})` : ''}: what this command started...`);
    // A pipeline stop abandoned at its deadline may still be flushing into the embedded ClickHouse:
    // then ClickHouse is left open (the process exits right after) rather than closed under the sink.
    let pipelineStopped = true;
    const steps: [string, (() => Promise<void>) | undefined][] = [
      ['simulator', simulator ? () => simulator!.stop() : undefined],
      [
        'pipeline (detector commits its batch, sink flushes, API)',
        pipeline
          ? () =>
              pipeline!.stop().catch((e: unknown) => {
                pipelineStopped = false;
                throw e;
              })
          : undefined,
      ],
      [
        'ClickHouse',
        ch
          ? async () => {
              if (pipelineStopped) await ch!.close();
              else console.error('ClickHouse left open: the pipeline did not stop in time and may still write to it');
            }
          : undefined,
      ],
    ];
    for (const [what, stop] of steps) {
      if (!stop) continue;
      try {
        await stop();
      } catch (e) {
        fatal ??= e instanceof Error ? e : new Error(String(e));
        console.error(`stopping the ${what} failed: ${(e as Error).message}`);
      }
    }
    if (lease) {
      try {
        console.error(await lease.release({ keep: values['keep-stack'] }));
      } catch (e) {
        fatal ??= e instanceof Error ? e : new Error(String(e));
        console.error(`local stack: stopping failed: ${(e as Error).message}`);
      }
    }
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
  }
  if (thrown !== undefined) throw thrown;
  return fatal ? 1 : 0;
}
