// Publishes a simulated fleet's traffic to Kafka at a steady rate, keyed by merchant_id.
import type { Producer } from 'kafkajs';
import type { Heartbeat, Transaction } from '@tillwatch/schemas';
import type { Logger } from '@tillwatch/telemetry';
import type { Fleet } from './fleet.js';

export interface SimulatorOptions {
  producer: Producer;
  fleet: Fleet;
  encodeTransaction(t: Transaction): Buffer;
  encodeHeartbeat(h: Heartbeat): Buffer;
  topics: { transactions: string; heartbeats: string };
  /** Target events per second. */
  rate: number;
  /** Heartbeat cadence per terminal. Default 60 s. */
  heartbeatIntervalMs?: number;
  logger: Logger;
  now?: () => number;
  /** Stop after this many events (default: run until stop()). */
  maxEvents?: number;
}

export interface Simulator {
  start(): void;
  stop(): Promise<void>;
  readonly sent: () => number;
  /** Resolves when maxEvents have been sent (or stop() was called). */
  done(): Promise<void>;
}

export function createSimulator(o: SimulatorOptions): Simulator {
  const now = o.now ?? Date.now;
  const TICK = 50;
  let timer: NodeJS.Timeout | undefined;
  let hbTimer: NodeJS.Timeout | undefined;
  let sent = 0;
  let debt = 0;
  let inFlight: Promise<unknown> = Promise.resolve();
  let resolveDone!: () => void;
  const finished = new Promise<void>((r) => (resolveDone = r));

  const tick = () => {
    debt += (o.rate * TICK) / 1000;
    const batch: Transaction[] = [];
    while (debt >= 1 && (o.maxEvents === undefined || sent + batch.length < o.maxEvents)) {
      const t = now();
      for (const e of o.fleet.next(t)) batch.push(e);
      debt -= 1;
    }
    if (batch.length === 0) return;
    sent += batch.length;
    const messages = batch.map((e) => ({ key: e.merchant_id, value: o.encodeTransaction(e) }));
    inFlight = inFlight
      .then(() => o.producer.send({ topic: o.topics.transactions, messages, acks: -1 }))
      .catch((err: unknown) => o.logger.warn({ err }, 'simulator send failed'));
    if (o.maxEvents !== undefined && sent >= o.maxEvents) {
      void inFlight.then(() => resolveDone());
      if (timer) clearInterval(timer);
      if (hbTimer) clearInterval(hbTimer);
    }
  };

  return {
    sent: () => sent,
    done: () => finished,
    start() {
      timer = setInterval(tick, TICK);
      hbTimer = setInterval(() => {
        const hbs = o.fleet.heartbeats(now());
        if (hbs.length === 0) return;
        inFlight = inFlight
          .then(() => o.producer.send({ topic: o.topics.heartbeats, messages: hbs.map((h) => ({ key: h.merchant_id, value: o.encodeHeartbeat(h) })) }))
          .catch((err: unknown) => o.logger.warn({ err }, 'heartbeat send failed'));
      }, o.heartbeatIntervalMs ?? 60_000);
    },
    async stop() {
      if (timer) clearInterval(timer);
      if (hbTimer) clearInterval(hbTimer);
      await inFlight;
      resolveDone();
    },
  };
}
