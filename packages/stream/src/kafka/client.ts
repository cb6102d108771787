// kafkajs client factory from the environment configuration, logging through pino.
import { Kafka, logLevel, type KafkaConfig as KafkaJsConfig, type logCreator, type SASLOptions } from 'kafkajs';
import type { KafkaConfig } from '@tillwatch/config';
import type { Logger } from '@tillwatch/telemetry';
import { assertKafkajsPatched } from './kafkajs-patches.js';

const toPino: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

// kafkajs logs routine traffic at ERROR: heartbeats answered "rebalancing" while a member joins or
// leaves, and CONCURRENT_TRANSACTIONS while the broker still writes the previous transaction's
// markers (retried at once). Those are normal and logged at debug.
const ROUTINE = /group is rebalancing|rejoin is needed|not the correct coordinator|concurrent operation on the same transaction/i;

export function kafkaLogCreator(logger: Logger): logCreator {
  return () => ({ level, log }) => {
    const { message, ...extra } = log;
    const routine = ROUTINE.test(String(extra.error ?? '')) || ROUTINE.test(message);
    logger[routine ? 'debug' : (toPino[level] ?? 'info')]({ kafkajs: log.namespace ?? extra.logger, ...extra }, message);
  };
}

export interface CreateKafkaOptions {
  config: KafkaConfig;
  logger: Logger;
  clientId?: string;
}

export function createKafka({ config, logger, clientId }: CreateKafkaOptions): Kafka {
  // Fails fast with a clear message when kafkajs lacks the install-time patch (kafkajs-patches.ts).
  assertKafkajsPatched();
  let sasl: SASLOptions | undefined;
  if (config.saslMechanism) {
    sasl = { mechanism: config.saslMechanism, username: config.saslUsername ?? '', password: config.saslPassword ?? '' } as SASLOptions;
  }
  const kc: KafkaJsConfig = {
    clientId: clientId ?? config.clientId,
    brokers: config.brokers,
    ssl: config.ssl,
    ...(sasl ? { sasl } : {}),
    connectionTimeout: 5_000,
    requestTimeout: 30_000,
    // kafkajs logs a lot at INFO during rebalances; WARN and above reach our logs.
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(logger),
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 10_000 },
  };
  return new Kafka(kc);
}
