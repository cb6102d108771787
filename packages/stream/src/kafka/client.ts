// kafkajs client factory from the environment configuration, logging through pino.
import { Kafka, Partitioners, logLevel, type ICustomPartitioner, type KafkaConfig as KafkaJsConfig, type logCreator, type ProducerConfig, type SASLOptions } from 'kafkajs';
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

// Warnings no user can act on, logged at debug:
// - "Limiting retries for the idempotent producer may invalidate EoS guarantees" (kafkajs warns for
//   every idempotent producer whose retries are below Number.MAX_SAFE_INTEGER). Safe here:
//   * the processor's transactional producers: a send that runs out of retries fails its
//     transaction, and every failed transaction is aborted (commit() in
//     processor/transactional-processor.ts calls txn.abort() on any error) and the producer is
//     replaced before the next one (a new InitProducerId bumps the epoch and resets the sequence
//     numbers, KIP-98). read_committed readers never see an aborted transaction's records, so no
//     duplicate and no gap becomes visible; the batch is re-processed from the committed offsets;
//   * the plain idempotent producers (`tillwatch produce`, the simulator): a send that runs out of
//     retries rejects, and the command fails with that error instead of silently re-sending.
//   Retrying forever instead would hang a command on a broker that is gone.
// - the v2 partitioner notice: every producer gets the partitioner explicitly (createKafka below).
const UNACTIONABLE = /^Limiting retries for the idempotent producer may invalidate EoS guarantees|^KafkaJS v2\.0\.0 switched default partitioner/;

/** The same kafkajs line (level, namespace, message, error) is logged once per window; repeats are counted. */
export const KAFKA_LOG_DEDUPE_MS = 30_000;

export function kafkaLogCreator(logger: Logger, now: () => number = Date.now): logCreator {
  const seen = new Map<string, { at: number; repeats: number }>();
  return () => ({ namespace, level, log }) => {
    // kafkajs adds its own timestamp and logger name: pino has both already.
    const { message, timestamp: _timestamp, logger: _logger, ...extra } = log;
    const source = namespace || 'kafkajs';
    const routine = ROUTINE.test(String(extra.error ?? '')) || ROUTINE.test(message) || UNACTIONABLE.test(message);
    const pinoLevel = routine ? 'debug' : (toPino[level] ?? 'info');
    if (pinoLevel === 'debug' || pinoLevel === 'info') {
      logger[pinoLevel]({ kafkajs: source, ...extra }, message);
      return;
    }
    // A broker that is down makes kafkajs log the same connection error for every retry of every
    // client: one line per window, with the number of repeats it stood for.
    const key = `${level}|${source}|${message}|${String(extra.error ?? '')}|${String(extra.broker ?? '')}`;
    const t = now();
    const s = seen.get(key);
    if (s && t - s.at < KAFKA_LOG_DEDUPE_MS) {
      s.repeats++;
      return;
    }
    const repeated = s?.repeats ?? 0;
    seen.set(key, { at: t, repeats: 0 });
    if (seen.size > 1000) for (const [k, v] of seen) if (t - v.at >= KAFKA_LOG_DEDUPE_MS) seen.delete(k);
    logger[pinoLevel]({ kafkajs: source, ...extra, ...(repeated > 0 ? { repeated } : {}) }, message);
  };
}

export interface CreateKafkaOptions {
  config: KafkaConfig;
  logger: Logger;
  /** What this client is (detector, sink, api-rules...): the client id is KAFKA_CLIENT_ID-<service>, so broker quotas and ACLs keyed on it apply. */
  service?: string;
}

/** TLS and SASL of the kafkajs client: the same for every client of a process, the reachability probe included. */
export function kafkaJsSecurity(config: Pick<KafkaConfig, 'ssl' | 'saslMechanism' | 'saslUsername' | 'saslPassword'>): Pick<KafkaJsConfig, 'ssl' | 'sasl'> {
  if (!config.saslMechanism) return { ssl: config.ssl };
  const sasl = { mechanism: config.saslMechanism, username: config.saslUsername ?? '', password: config.saslPassword ?? '' } as SASLOptions;
  return { ssl: config.ssl, sasl };
}

export function createKafka({ config, logger, service }: CreateKafkaOptions): Kafka {
  // Fails fast with a clear message when kafkajs lacks the install-time patch (kafkajs-patches.ts).
  assertKafkajsPatched();
  const kc: KafkaJsConfig = {
    clientId: service === undefined ? config.clientId : `${config.clientId}-${service}`,
    brokers: config.brokers,
    ...kafkaJsSecurity(config),
    connectionTimeout: 5_000,
    requestTimeout: 30_000,
    // kafkajs logs a lot at INFO during rebalances; WARN and above reach our logs.
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(logger),
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 10_000 },
  };
  const kafka = new Kafka(kc);
  // The partitioner chosen explicitly (kafkajs 2's default, the Java client's murmur2 on the key, so
  // keys land where Java producers put them): without it kafkajs prints its v2 migration notice.
  const producer = kafka.producer.bind(kafka);
  kafka.producer = (config?: ProducerConfig) => producer({ createPartitioner: explicitPartitionFirst, ...config });
  return kafka;
}

/**
 * kafkajs 2's default partitioner (murmur2 on the key, as the Java client; round robin without a
 * key), except that a message naming its partition takes it at once. kafkajs's version builds the
 * list of available partitions for every message before it looks at `message.partition` (an array
 * per produced record: 7 % of the bytes the detector allocated, `HEAP_PROFILE=1 npm run
 * load:throughput`, where every changelog record names its partition). Same result for every message.
 */
export const explicitPartitionFirst: ICustomPartitioner = () => {
  const byKey = Partitioners.DefaultPartitioner();
  return (args) => args.message.partition ?? byKey(args);
};
