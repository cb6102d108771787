// tillwatch simulate --terminals N --rate R [--seconds S] [--seed X] [--anomaly-rate P]
import { numberOption, parseCommand, type CommandSpec } from '../lib/args.js';
import { checkReachable, checkTopicsExist, createContext } from '../lib/context.js';
import { KAFKA_ENV, envNotes } from '../lib/env-help.js';
import { startSimulator } from '../lib/simulator.js';

export const spec = {
  name: 'simulate',
  summary: 'Produces simulated fleet traffic (transactions and heartbeats) with injected anomalies until Ctrl-C or --seconds.',
  options: {
    terminals: { type: 'string', value: 'N', default: '1000', description: 'terminals in the simulated fleet' },
    rate: { type: 'string', value: 'EVENTS_PER_S', default: '200', description: 'transactions per second' },
    seconds: { type: 'string', value: 'S', description: 'stop after S seconds worth of events (default: until Ctrl-C)' },
    seed: { type: 'string', value: 'X', default: '42', description: 'random seed (the same seed gives the same fleet)' },
    'anomaly-rate': { type: 'string', value: 'P', default: '0.005', description: 'share of transactions that start an injected anomaly (0..1)' },
  },
  notes: envNotes(KAFKA_ENV),
} satisfies CommandSpec;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommand(spec, argv);
  const num = (name: keyof typeof spec.options & string, v: string, min: number) => numberOption(spec, name, v, { min });
  const terminals = num('terminals', values.terminals!, 1);
  const seed = num('seed', values.seed!, 0);
  const anomalyRate = num('anomaly-rate', values['anomaly-rate']!, 0);
  const seconds = values.seconds ? num('seconds', values.seconds, 1) : undefined;
  const rate = num('rate', values.rate!, 1);
  const ctx = createContext(process.env, 'simulator');
  await checkReachable(ctx);
  await checkTopicsExist(ctx, [ctx.topics.transactions, ctx.topics.heartbeats]);
  const { sim, fleet, stop: stopSim } = await startSimulator(ctx, {
    terminals,
    seed,
    anomalyRate,
    // Sync outages as they happen: heartbeats with growing upload queues, then the backlog draining.
    outages: true,
    rate,
    ...(seconds !== undefined ? { maxEvents: Math.round(seconds * rate) } : {}),
  });
  console.error(`simulating ${fleet.terminalCount} terminals at ${rate} events/s (Ctrl-C to stop)`);
  const report = setInterval(() => console.error(`sent ${sim.sent()} events; injected ${JSON.stringify(fleet.stats)}`), 5000);
  const stop = () => void sim.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await sim.done();
  clearInterval(report);
  await stopSim();
  console.log(`sent ${sim.sent()} events; injected ${JSON.stringify(fleet.stats)}`);
  return 0;
}
