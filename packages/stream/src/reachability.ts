// Can the dependencies be reached at all? Asked once before a command or a service starts, so an
// absent Kafka or registry is ONE line within seconds (which one, where, how to start it) instead
// of kafkajs retrying for half a minute and logging every attempt. A TCP connect says nothing about
// the protocol; that is on purpose: this check is about "nothing listens there", the clients report
// everything else with their own errors.
import { connect } from 'node:net';
import { DependencyUnavailableError, LOCAL_STACK_HINT, RegistryUnavailableError } from './errors.js';
import type { RegistryClient } from './registry/client.js';

/** How long one probe waits (a closed port answers at once; a dropped SYN needs the timeout). */
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

/** At least one bootstrap broker accepts a connection (kafkajs needs only one to find the rest). */
export async function checkKafkaReachable(brokers: readonly string[], timeoutMs = PROBE_TIMEOUT_MS): Promise<void> {
  const results = await Promise.allSettled(brokers.map((b) => probeTcp(b, timeoutMs)));
  if (results.some((r) => r.status === 'fulfilled')) return;
  const first = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  throw new DependencyUnavailableError('Kafka', brokers.join(','), reasonOf(first?.reason), LOCAL_STACK_HINT, { cause: first?.reason });
}

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

/** Both, probed at the same time; the first missing one (Kafka before the registry) is the error. */
export async function checkStreamDependencies(o: { brokers: readonly string[]; registry?: RegistryClient; timeoutMs?: number }): Promise<void> {
  const checks = [checkKafkaReachable(o.brokers, o.timeoutMs)];
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
