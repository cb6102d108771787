// The simulator wired to Kafka through the registry: used by `tillwatch simulate` and `npm start`.
import { AvroSchemas, valueSubject, type Heartbeat, type Transaction } from '@tillwatch/schemas';
import { createFleet, createSimulator, type Fleet, type FleetOptions, type Simulator } from '@tillwatch/simulator';
import { createAvroSerde } from '@tillwatch/stream';
import type { Context } from './context.js';

export interface RunningSimulator {
  sim: Simulator;
  fleet: Fleet;
  /** Stops sending, waits for what is in flight, disconnects the producer. */
  stop(): Promise<void>;
}

/** Builds the fleet, connects a producer and starts sending at `rate` events/s. */
export async function startSimulator(ctx: Context, o: FleetOptions & { rate: number; maxEvents?: number }): Promise<RunningSimulator> {
  const txnSerde = createAvroSerde<Transaction>(ctx.registry, valueSubject(ctx.topics.transactions), AvroSchemas.transaction);
  const hbSerde = createAvroSerde<Heartbeat>(ctx.registry, valueSubject(ctx.topics.heartbeats), AvroSchemas.heartbeat);
  await Promise.all([txnSerde.init(), hbSerde.init()]);
  const producer = ctx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const fleet = createFleet(o);
  const sim = createSimulator({
    producer,
    fleet,
    rate: o.rate,
    encodeTransaction: (t) => txnSerde.encode(t),
    encodeHeartbeat: (h) => hbSerde.encode(h),
    topics: { transactions: ctx.topics.transactions, heartbeats: ctx.topics.heartbeats },
    logger: ctx.logger,
    ...(o.maxEvents !== undefined ? { maxEvents: o.maxEvents } : {}),
  });
  sim.start();
  return {
    sim,
    fleet,
    async stop() {
      await sim.stop();
      await producer.disconnect();
    },
  };
}
