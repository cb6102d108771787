// Can the dependencies be reached at all? Asked once before a command or a service starts, so an
// absent Kafka or registry is ONE line within seconds (which one, where, how to start it) instead
// of kafkajs retrying for half a minute and logging every attempt. Kafka is asked in its own
// protocol: something else listening on the port (the registry's port, a TLS listener spoken to in
// plain text, a broker still starting) opens a TCP connection but is not a broker the clients can
// use, and kafkajs would retry it for 20-30 s before failing with words that name neither Kafka nor
// the address.
import { connect } from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import type { KafkaConfig } from '@tillwatch/config';
import { DependencyRefusedError, DependencyUnavailableError, LOCAL_STACK_HINT, RegistryUnavailableError } from './errors.js';
import { kafkaJsSecurity } from './kafka/client.js';
import type { RegistryClient } from './registry/client.js';

/** How long one probe waits (a closed port answers at once; a dropped SYN or a silent peer needs the timeout). */
export const PROBE_TIMEOUT_MS = 3_000;
/** Resolves when a TCP connection to host:port opens; rejects with the socket error or a timeout. */
export function probeTcp(hostPort: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<void> {
  const i = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(hostPort.slice(i + 1));
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.end();
      socket.destroy();
      resolve();
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    });
  });
}

/** What the Kafka probe needs: the bootstrap brokers and how the clients connect (TLS, SASL). */
export type KafkaProbeConfig = Pick<KafkaConfig, 'brokers'> & Partial<Pick<KafkaConfig, 'ssl' | 'saslMechanism' | 'saslUsername' | 'saslPassword'>>;

/**
 * One bootstrap broker answers as a Kafka broker within timeoutMs (all steps together): a TCP
 * connect (the socket's own reason when nothing listens), then a kafkajs admin without retries
 * that connects (ApiVersions, SASL when configured, over TLS when configured) and asks for the
 * cluster's metadata. About 25 ms against a healthy local broker.
 */
export async function probeKafkaBroker(broker: string, config: Omit<KafkaProbeConfig, 'brokers'> = {}, timeoutMs = PROBE_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await probeTcp(broker, timeoutMs);
  const left = Math.max(1, deadline - Date.now());
  const kafka = new Kafka({
    clientId: 'tillwatch-probe',
    brokers: [broker],
    ...kafkaJsSecurity({ ssl: config.ssl ?? false, saslMechanism: config.saslMechanism, saslUsername: config.saslUsername, saslPassword: config.saslPassword }),
    connectionTimeout: left,
    authenticationTimeout: left,
    requestTimeout: left,
    enforceRequestTimeout: true,
    retry: { retries: 0 },
    // The failure is reported once, as the probe's error: kafkajs's own lines would repeat it.
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await admin.connect();
        await admin.describeCluster();
      })(),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), left))),
    ]);
  } catch (e) {
    // A SASL or protocol error is an answer: a broker is there and refused this client's settings.
    if (KAFKA_ANSWERED.has((e as Error)?.name)) throw new KafkaRefusedError(reasonOf(e), { cause: e });
    throw new KafkaHandshakeError(`the port is open, but no Kafka broker answered: ${reasonOf(e)}`, { cause: e });
  } finally {
    clearTimeout(timer);
    // Not awaited: a peer that never answered must not hold the caller past the deadline.
    void admin.disconnect().catch(() => undefined);
  }
}

/** Something accepted the TCP connection but did not answer as a Kafka broker; the message is the whole reason. */
class KafkaHandshakeError extends Error {
  override name = 'KafkaHandshakeError';
}

/** A broker answered with an error about this client (authentication, SASL state, an unsupported request). */
class KafkaRefusedError extends Error {
  override name = 'KafkaRefusedError';
}

/** kafkajs errors that carry a broker's answer (an error code, or a failed SASL exchange), not a missing broker. */
const KAFKA_ANSWERED = new Set(['KafkaJSSASLAuthenticationError', 'KafkaJSProtocolError']);

const CLIENT_SETTINGS_HINT = 'check KAFKA_SSL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD against the cluster';

/**
 * At least one bootstrap broker answers as a Kafka broker (kafkajs needs only one to find the
 * rest), or a DependencyUnavailableError naming Kafka, the brokers and how to start it. Pass the
 * Kafka configuration (not only the brokers) so the probe uses the clients' TLS and SASL.
 */
export async function checkKafkaReachable(kafka: KafkaProbeConfig | readonly string[], timeoutMs = PROBE_TIMEOUT_MS): Promise<void> {
  const config: KafkaProbeConfig = isBrokerList(kafka) ? { brokers: [...kafka] } : kafka;
  const results = await Promise.allSettled(config.brokers.map((b) => probeKafkaBroker(b, config, timeoutMs)));
  if (results.some((r) => r.status === 'fulfilled')) return;
  const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && r.reason instanceof KafkaRefusedError);
  if (refused) throw new DependencyRefusedError('Kafka', config.brokers.join(','), (refused.reason as Error).message, CLIENT_SETTINGS_HINT, { cause: refused.reason });
  const first = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const reason = first?.reason instanceof KafkaHandshakeError ? first.reason.message : reasonOf(first?.reason);
  throw new DependencyUnavailableError('Kafka', config.brokers.join(','), reason, LOCAL_STACK_HINT, { cause: first?.reason });
}

const isBrokerList = (k: KafkaProbeConfig | readonly string[]): k is readonly string[] => Array.isArray(k);

/** The registry answers its REST API within the timeout. */
export async function checkRegistryReachable(registry: RegistryClient, timeoutMs = PROBE_TIMEOUT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)));
  try {
    await Promise.race([registry.ping(), timeout]);
  } catch (e) {
    const cause = e instanceof RegistryUnavailableError && e.cause !== undefined ? e.cause : e;
    throw new DependencyUnavailableError('schema registry', registry.url, reasonOf(cause), LOCAL_STACK_HINT, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

/** How to get a ClickHouse on this machine: the embedded engine needs no server. */
export const CLICKHOUSE_HINT = 'unset CLICKHOUSE_URL to use the embedded engine (no server), or start that server';

/**
 * A ClickHouse server answers its ping (`SELECT 1` over HTTP) within the timeout, or one
 * DependencyUnavailableError line naming ClickHouse, the address and CLICKHOUSE_HINT. Used by every
 * process that opens a ClickHouse server (sink, API, commands) before it migrates or queries.
 */
export async function checkClickHouseReachable(ch: { ping(): Promise<unknown> }, address: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([ch.ping(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)))]);
  } catch (e) {
    throw new DependencyUnavailableError('ClickHouse', address, reasonOf(e), CLICKHOUSE_HINT, { cause: e });
  } finally {
    clearTimeout(timer);
  }
}

/** Both, probed at the same time; the first missing one (Kafka before the registry) is the error. */
export async function checkStreamDependencies(o: { kafka: KafkaProbeConfig; registry?: RegistryClient; timeoutMs?: number }): Promise<void> {
  const checks = [checkKafkaReachable(o.kafka, o.timeoutMs)];
  if (o.registry) checks.push(checkRegistryReachable(o.registry, o.timeoutMs));
  const results = await Promise.allSettled(checks);
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) throw failed[0]!.reason;
}

/** The most specific reason in an error chain: `connect ECONNREFUSED 127.0.0.1:1` rather than `fetch failed`. */
export function reasonOf(e: unknown): string {
  let best: string | undefined;
  let cur: unknown = e;
  for (let depth = 0; depth < 8 && cur; depth++) {
    const x = cur as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown[] };
    // The deepest error with a system code (ECONNREFUSED, ENOTFOUND, ...) is the socket's own words.
    if (typeof x.code === 'string' && /^E[A-Z]+$/.test(x.code)) best = typeof x.message === 'string' && x.message.includes(x.code) ? x.message : x.code;
    // AggregateError (happy-eyeballs connects to several addresses): the first one's reason.
    cur = Array.isArray(x.errors) && x.errors.length > 0 ? x.errors[0] : x.cause;
    if (best === undefined && cur === undefined && typeof x.message === 'string') best = x.message;
  }
  return best ?? (e instanceof Error ? e.message : String(e));
}
