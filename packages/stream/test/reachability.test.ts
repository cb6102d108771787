// The Kafka probe speaks Kafka: a port that accepts TCP but is no broker (an HTTP server such as the
// registry, a peer that never answers, a TLS listener spoken to in plain text) fails the probe
// within its timeout with the one-line DependencyUnavailableError, instead of passing and leaving
// kafkajs to retry for 20-30 s. Fake servers on loopback; no broker needed.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DependencyUnavailableError, LOCAL_STACK_HINT, checkKafkaReachable } from '../src/index.js';

const servers: (Server | HttpServer)[] = [];
const sockets: Socket[] = [];

async function listen<S extends Server | HttpServer>(server: S): Promise<string> {
  servers.push(server);
  server.on('connection', (s: Socket) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

async function probeError(brokers: string[], timeoutMs: number): Promise<{ error: unknown; ms: number }> {
  const t0 = Date.now();
  try {
    await checkKafkaReachable({ brokers }, timeoutMs);
    return { error: undefined, ms: Date.now() - t0 };
  } catch (error) {
    return { error, ms: Date.now() - t0 };
  }
}

describe('checkKafkaReachable', () => {
  it('an HTTP server on the port (e.g. the registry) is not a broker: one line naming Kafka, the address and the hint, at once', async () => {
    const address = await listen(createHttpServer((_, res) => res.end('{}')));
    const { error, ms } = await probeError([address], 3_000);
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    const e = error as DependencyUnavailableError;
    expect(e.dependency).toBe('Kafka');
    expect(e.address).toBe(address);
    expect(e.message).toMatch(new RegExp(`^Kafka is unreachable at ${address} \\(the port is open, but no Kafka broker answered: .+\\); ${LOCAL_STACK_HINT.replace(/[`]/g, '.')}$`));
    expect(e.message).not.toContain('\n');
    expect(ms).toBeLessThan(3_000);
  });

  it('a peer that accepts and never answers fails within the timeout (all steps together)', async () => {
    const address = await listen(createServer(() => undefined));
    const { error, ms } = await probeError([address], 500);
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect((error as Error).message).toContain(`Kafka is unreachable at ${address} (the port is open, but no Kafka broker answered: `);
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(2_000);
  });

  it('a peer that accepts and closes at once fails at once', async () => {
    const address = await listen(createServer((s) => s.destroy()));
    const { error } = await probeError([address], 3_000);
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect((error as Error).message).toContain('the port is open, but no Kafka broker answered');
  });

  it('a closed port keeps the socket\'s own reason', async () => {
    const address = await listen(createServer());
    await new Promise<void>((r) => servers.pop()!.close(() => r()));
    const { error } = await probeError([address], 3_000);
    expect((error as Error).message).toBe(`Kafka is unreachable at ${address} (connect ECONNREFUSED ${address}); ${LOCAL_STACK_HINT}`);
  });

  it('a plain list of brokers is still accepted, and every one of them is named', async () => {
    const a = await listen(createServer((s) => s.destroy()));
    const b = await listen(createServer((s) => s.destroy()));
    const { error } = await probeError([a, b], 3_000);
    expect((error as DependencyUnavailableError).address).toBe(`${a},${b}`);
    await expect(checkKafkaReachable([a], 3_000)).rejects.toBeInstanceOf(DependencyUnavailableError);
  });
});
