// tillwatch simulate --terminals N --rate R [--seconds S] [--seed X] [--anomaly-rate P]
import { parseArgs } from 'node:util';
import { createContext } from '../lib/context.js';
import { startSimulator } from '../lib/simulator.js';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      terminals: { type: 'string', default: '1000' },
      rate: { type: 'string', default: '200' },
      seconds: { type: 'string' },
      seed: { type: 'string', default: '42' },
      'anomaly-rate': { type: 'string', default: '0.005' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.error('usage: tillwatch simulate --terminals N --rate EVENTS_PER_S [--seconds S] [--seed X] [--anomaly-rate P]');
    return 0;
  }
  const num = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number >= ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  const ctx = createContext(process.env, 'simulator');
  const rate = num('rate', values.rate, 1);
  const { sim, fleet, stop: stopSim } = await startSimulator(ctx, {
    terminals: num('terminals', values.terminals, 1),
    seed: num('seed', values.seed, 0),
    anomalyRate: num('anomaly-rate', values['anomaly-rate'], 0),
    // Sync outages as they happen: heartbeats with growing upload queues, then the backlog draining.
    outages: true,
    rate,
    ...(values.seconds ? { maxEvents: Math.round(num('seconds', values.seconds, 1) * rate) } : {}),
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
