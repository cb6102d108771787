// tillwatch simulate --terminals N --rate R [--seconds S] [--seed X] [--anomaly-rate P]
import { parseArgs } from 'node:util';
import { AvroSchemas, valueSubject, type Heartbeat, type Transaction } from '@tillwatch/schemas';
import { createAvroSerde } from '@tillwatch/stream';
import { createFleet, createSimulator } from '@tillwatch/simulator';
import { createContext } from '../lib/context.js';

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
  const txnSerde = createAvroSerde<Transaction>(ctx.registry, valueSubject(ctx.topics.transactions), AvroSchemas.transaction);
  const hbSerde = createAvroSerde<Heartbeat>(ctx.registry, valueSubject(ctx.topics.heartbeats), AvroSchemas.heartbeat);
  await Promise.all([txnSerde.init(), hbSerde.init()]);
  const producer = ctx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const fleet = createFleet({ terminals: num('terminals', values.terminals, 1), seed: num('seed', values.seed, 0), anomalyRate: num('anomaly-rate', values['anomaly-rate'], 0) });
  const rate = num('rate', values.rate, 1);
  const sim = createSimulator({
    producer,
    fleet,
    rate,
    encodeTransaction: (t) => txnSerde.encode(t),
    encodeHeartbeat: (h) => hbSerde.encode(h),
    topics: { transactions: ctx.topics.transactions, heartbeats: ctx.topics.heartbeats },
    logger: ctx.logger,
    ...(values.seconds ? { maxEvents: Math.round(num('seconds', values.seconds, 1) * rate) } : {}),
  });
  console.error(`simulating ${fleet.terminalCount} terminals at ${rate} events/s (Ctrl-C to stop)`);
  sim.start();
  const report = setInterval(() => console.error(`sent ${sim.sent()} events; injected ${JSON.stringify(fleet.stats)}`), 5000);
  const stop = () => void sim.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await sim.done();
  clearInterval(report);
  await producer.disconnect();
  console.log(`sent ${sim.sent()} events; injected ${JSON.stringify(fleet.stats)}`);
  return 0;
}
