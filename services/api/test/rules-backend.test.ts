// The Kafka rules backend with Kafka down: GET /rules answers 503 within seconds (a quick probe
// before the follower starts, not kafkajs's ~30 s of retries), and close() does not wait for a
// follower start still running (the API's shutdown has a deadline). Fake peers on loopback, no broker.
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClickHouse } from '@tillwatch/clickhouse';
import { createKafka, createRegistryClient, LOCAL_STACK_HINT } from '@tillwatch/stream';
import { kafkaConfig } from '@tillwatch/config';
import { createLogger } from '@tillwatch/telemetry';
import { auth, buildApp } from './fixtures.js';
import { closedPort } from '@tillwatch/stream/testing';
import { createKafkaRulesBackend, rulesBackendFromEnv, type KafkaRulesBackend } from '../src/routes/rules-backend.js';

const noClickHouse = { table: (n: string) => `test.${n}`, database: 'test' } as unknown as ClickHouse;
const logger = createLogger({ service: 'api-test', level: 'silent' });
const servers: Server[] = [];
const sockets: Socket[] = [];
const backends: KafkaRulesBackend[] = [];

async function listen(server: Server): Promise<number> {
  servers.push(server);
  server.on('connection', (s: Socket) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

afterEach(async () => {
  // Not awaited: the point of one test is that a start may still be running.
  for (const b of backends.splice(0)) void b.close().catch(() => undefined);
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

describe('Kafka rules backend, Kafka down', () => {
  it.each([
    ['nothing listens on the port', async () => closedPort()],
    ['the port accepts but never answers as Kafka', async () => listen(createServer(() => undefined))],
  ])('GET /rules answers 503 within seconds when %s, naming Kafka and its address', async (_, port) => {
    const brokers = `127.0.0.1:${await port()}`;
    const rules = rulesBackendFromEnv({ KAFKA_BROKERS: brokers, SCHEMA_REGISTRY_URL: 'http://127.0.0.1:1/apis/ccompat/v7' }, logger);
    backends.push(rules);
    const { app } = buildApp(noClickHouse, { rules });
    const t0 = Date.now();
    const res = await app.inject({ method: 'GET', url: '/rules', headers: auth('viewer') });
    const ms = Date.now() - t0;
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'RULES_UNAVAILABLE' });
    expect(res.json<{ message: string }>().message).toContain(`Kafka is unreachable at ${brokers} (`);
    expect(res.json<{ message: string }>().message).toContain(LOCAL_STACK_HINT);
    // The probe's 3 s plus slack for a loaded machine; before, kafkajs retried for ~30 s.
    expect(ms).toBeLessThan(6_000);
    await app.close();
  }, 20_000);

  it('close() does not wait for a follower start still running', async () => {
    const port = await listen(createServer(() => undefined));
    const config = kafkaConfig({ KAFKA_BROKERS: `127.0.0.1:${port}` });
    // No probe: the start hangs in kafkajs's retries against a peer that never answers.
    const rules = createKafkaRulesBackend({ kafka: createKafka({ config, logger }), registry: createRegistryClient({ url: 'http://127.0.0.1:1' }), topic: 'pos.rules.v1', logger });
    backends.push(rules);
    const pending = rules.ledger().catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await rules.close();
    expect(Date.now() - t0).toBeLessThan(1_000);
    void pending;
  }, 20_000);
});
