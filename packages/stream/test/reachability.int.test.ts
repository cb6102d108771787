// The Kafka probe against the real local broker: a healthy one passes; one that answers but refuses
// the client's settings (a SASL mechanism the plaintext broker does not offer) is reported as a
// refusal naming the settings to check, not as a stack to start.
import { describe, expect, it } from 'vitest';
import { checkKafkaReachable, DependencyRefusedError } from '@tillwatch/stream';

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

describe('Kafka probe, real broker', () => {
  it('passes against the running broker', async () => {
    await expect(checkKafkaReachable({ brokers })).resolves.toBeUndefined();
  });

  it('a broker that refuses the client is a refusal with the settings to check, within seconds', async () => {
    const t0 = performance.now();
    const e = await checkKafkaReachable({ brokers, saslMechanism: 'scram-sha-256', saslUsername: 'u', saslPassword: 'p' }).catch((x: unknown) => x);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(e).toBeInstanceOf(DependencyRefusedError);
    expect((e as Error).message).toMatch(/^Kafka at .+ answered but refused this client \(.+\); check KAFKA_SSL, KAFKA_SASL_MECHANISM/);
    expect((e as Error).message).not.toMatch(/stack up/);
  });
});
