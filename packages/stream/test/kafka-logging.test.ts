// kafkajs's own logging goes through our logger, warn and above, once per repeat window, and the
// two warnings a user cannot act on (partitioner notice, idempotent retry limit) stay out of it.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { logLevel } from 'kafkajs';
import { kafkaConfig } from '@tillwatch/config';
import { createLogger } from '@tillwatch/telemetry';
import { KAFKA_LOG_DEDUPE_MS, createKafka, kafkaLogCreator } from '@tillwatch/stream';

function capture(level: 'warn' | 'debug' = 'warn') {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: createLogger({ service: 'test', level, destination: destination as unknown as NodeJS.WritableStream }) };
}

const entry = (level: logLevel, message: string, extra: Record<string, unknown> = {}) => ({
  namespace: 'Connection',
  level,
  label: 'ERROR',
  log: { timestamp: new Date().toISOString(), logger: 'kafkajs', message, ...extra },
});

describe('kafkajs logging', () => {
  it('logs a repeated connection error once per window, with the number of repeats', () => {
    const { lines, logger } = capture();
    let t = 0;
    const log = kafkaLogCreator(logger, () => t)(logLevel.WARN);
    for (let i = 0; i < 18; i++) log(entry(logLevel.ERROR, 'Connection error: connect ECONNREFUSED 127.0.0.1:1', { broker: '127.0.0.1:1' }));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ kafkajs: 'Connection', msg: 'Connection error: connect ECONNREFUSED 127.0.0.1:1', level: 50 });
    t += KAFKA_LOG_DEDUPE_MS;
    log(entry(logLevel.ERROR, 'Connection error: connect ECONNREFUSED 127.0.0.1:1', { broker: '127.0.0.1:1' }));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ repeated: 17 });
    // Another broker or message is another line.
    log(entry(logLevel.ERROR, 'Connection error: connect ECONNREFUSED 127.0.0.1:2', { broker: '127.0.0.1:2' }));
    expect(lines).toHaveLength(3);
  });

  it('keeps the warnings nobody can act on out of warn level', () => {
    const { lines, logger } = capture();
    const log = kafkaLogCreator(logger)(logLevel.WARN);
    log(entry(logLevel.WARN, 'Limiting retries for the idempotent producer may invalidate EoS guarantees'));
    log(entry(logLevel.WARN, 'KafkaJS v2.0.0 switched default partitioner. To retain ...'));
    expect(lines).toHaveLength(0);
  });

  it('creates idempotent producers without a warning (partitioner chosen, retry limit explained)', () => {
    const { lines, logger } = capture();
    const kafka = createKafka({ config: kafkaConfig({ KAFKA_BROKERS: '127.0.0.1:1' }), logger });
    for (let i = 0; i < 8; i++) kafka.producer({ idempotent: true, maxInFlightRequests: 1, transactionalId: `t.${i}`, retry: { retries: 12 } });
    kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    expect(lines.filter((l) => (l.level as number) >= 40)).toEqual([]);
  });
});
