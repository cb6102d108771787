// A backtest's clock is the whole input's received time; a detector's is per partition. A
// heartbeat at time `at` on every partition ends each partition's clock there, so timers due by
// then fire in both (as heartbeats keep quiet partitions' clocks moving in production). Send it
// only after the input is processed: processed earlier, it would move a clock past timers that a
// later transaction could still cancel.
import type { Kafka } from 'kafkajs';
import { AvroSchemas, valueSubject, type Heartbeat } from '@tillwatch/schemas';
import { createAvroSerde, type RegistryClient } from '@tillwatch/stream';

export const STREAM_CLOCK_TERMINAL = '__stream_clock__';

export async function closeStreamTime(kafka: Kafka, registry: RegistryClient, heartbeatTopic: string, at: number): Promise<void> {
  const serde = createAvroSerde<Heartbeat>(registry, valueSubject(heartbeatTopic), AvroSchemas.heartbeat);
  await serde.init();
  const admin = kafka.admin();
  await admin.connect();
  const partitions = await admin.fetchTopicOffsets(heartbeatTopic).finally(() => admin.disconnect());
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const value = serde.encode({ terminal_id: STREAM_CLOCK_TERMINAL, merchant_id: STREAM_CLOCK_TERMINAL, last_seq: 0, queue_depth: 0, event_time: at, received_time: at });
    await producer.send({ topic: heartbeatTopic, messages: partitions.map(({ partition }) => ({ key: STREAM_CLOCK_TERMINAL, value, partition })) });
  } finally {
    await producer.disconnect();
  }
}
