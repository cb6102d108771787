// Apicurio Registry's Confluent-compatible API, as the stack configures it, behaves like Confluent
// Schema Registry for what @kafkajs/confluent-schema-registry and our provisioning do.
// Assumes the stack is up; SCHEMA_REGISTRY_URL overrides http://127.0.0.1:8081/apis/ccompat/v7.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';

const base = (process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7').replace(/\/$/, '');
const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

interface Reply {
  status: number;
  body: unknown;
}

async function call(method: string, path: string, body?: unknown): Promise<Reply> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': CONTENT_TYPE },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

function subject(): string {
  return `local-stack-test-${randomUUID().slice(0, 8)}-value`;
}

/** A record schema with a per-test name, so content ids never collide across tests. */
function txnSchema(name: string, extraFields: unknown[] = []): string {
  return JSON.stringify({
    type: 'record',
    name,
    namespace: 'dev.tillwatch.test',
    fields: [
      { name: 'event_id', type: 'string' },
      { name: 'amount_minor', type: 'long' },
      ...extraFields,
    ],
  });
}

function recordName(): string {
  return `Txn_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
}

describe('registry ccompat API (/apis/ccompat/v7)', () => {
  it('registers a schema, returns {id}, and serves it by id', async () => {
    const s = subject();
    const schema = txnSchema(recordName());
    const registered = await call('POST', `/subjects/${s}/versions`, { schema });
    expect(registered.status).toBe(200);
    const { id } = registered.body as { id: number };
    expect(Number.isInteger(id)).toBe(true);

    const byId = await call('GET', `/schemas/ids/${id}`);
    expect(byId.status).toBe(200);
    expect(JSON.parse((byId.body as { schema: string }).schema)).toEqual(JSON.parse(schema));

    // Registering the same schema again is idempotent: same id, no new version.
    const again = await call('POST', `/subjects/${s}/versions`, { schema });
    expect(again.body).toEqual({ id });
    expect((await call('GET', `/subjects/${s}/versions`)).body).toEqual([1]);

    // Lookup of a schema under a subject (what getRegistryIdBySchema does).
    const lookup = await call('POST', `/subjects/${s}`, { schema });
    expect(lookup.status).toBe(200);
    expect(lookup.body).toMatchObject({ subject: s, version: 1, id });

    const latest = await call('GET', `/subjects/${s}/versions/latest`);
    expect(latest.body).toMatchObject({ subject: s, version: 1, id });
  });

  it('gives one id to one schema across subjects (content ids, as Confluent)', async () => {
    const schema = txnSchema(recordName());
    const a = await call('POST', `/subjects/${subject()}/versions`, { schema });
    const b = await call('POST', `/subjects/${subject()}/versions`, { schema });
    expect(a.status).toBe(200);
    expect(b.body).toEqual(a.body);
  });

  it('matches a reformatted copy of a registered schema (canonical lookup)', async () => {
    const s = subject();
    const name = recordName();
    const schema = txnSchema(name);
    const { id } = (await call('POST', `/subjects/${s}/versions`, { schema })).body as { id: number };
    const reformatted = JSON.stringify(JSON.parse(schema), null, 2);
    expect((await call('POST', `/subjects/${s}/versions`, { schema: reformatted })).body).toEqual({ id });
  });

  it('defaults to BACKWARD compatibility, like Confluent', async () => {
    expect((await call('GET', '/config')).body).toEqual({ compatibilityLevel: 'BACKWARD' });
    const s = subject();
    await call('POST', `/subjects/${s}/versions`, { schema: txnSchema(recordName()) });
    // What @kafkajs/confluent-schema-registry's register() reads and compares with its default.
    expect((await call('GET', `/config/${s}`)).body).toEqual({ compatibilityLevel: 'BACKWARD' });
  });

  it('rejects an incompatible version with 409 once the subject is BACKWARD', async () => {
    const s = subject();
    const name = recordName();
    const v1 = await call('POST', `/subjects/${s}/versions`, { schema: txnSchema(name) });
    expect(v1.status).toBe(200);

    const config = await call('PUT', `/config/${s}`, { compatibility: 'BACKWARD' });
    expect(config.status).toBe(200);
    expect(config.body).toMatchObject({ compatibility: 'BACKWARD' });
    expect((await call('GET', `/config/${s}`)).body).toEqual({ compatibilityLevel: 'BACKWARD' });

    // A new required field (no default): a v2 reader cannot read v1 data.
    const breaking = txnSchema(name, [{ name: 'terminal_id', type: 'string' }]);
    const check = await call('POST', `/compatibility/subjects/${s}/versions/latest`, { schema: breaking });
    expect(check.status).toBe(200);
    expect(check.body).toMatchObject({ is_compatible: false });

    const rejected = await call('POST', `/subjects/${s}/versions`, { schema: breaking });
    expect(rejected.status).toBe(409);
    expect(rejected.body).toMatchObject({ error_code: 409 });

    // The same field as an optional with a default is a compatible evolution.
    const evolving = txnSchema(name, [{ name: 'terminal_id', type: ['null', 'string'], default: null }]);
    const ok = await call('POST', `/compatibility/subjects/${s}/versions/latest`, { schema: evolving });
    expect(ok.body).toMatchObject({ is_compatible: true });
    const v2 = await call('POST', `/subjects/${s}/versions`, { schema: evolving });
    expect(v2.status).toBe(200);
    expect((await call('GET', `/subjects/${s}/versions`)).body).toEqual([1, 2]);
  });

  it('answers Confluent error codes for unknown subjects and ids', async () => {
    const missingSubject = await call('GET', `/subjects/${subject()}/versions/latest`);
    expect(missingSubject.status).toBe(404);
    expect(missingSubject.body).toMatchObject({ error_code: 40401 });

    const missingId = await call('GET', '/schemas/ids/2147483000');
    expect(missingId.status).toBe(404);
    expect(missingId.body).toMatchObject({ error_code: 40403 });
  });

  it('deletes a subject (soft, then permanent)', async () => {
    const s = subject();
    await call('POST', `/subjects/${s}/versions`, { schema: txnSchema(recordName()) });
    expect((await call('DELETE', `/subjects/${s}`)).body).toEqual([1]);
    expect((await call('DELETE', `/subjects/${s}?permanent=true`)).body).toEqual([1]);
    expect(((await call('GET', '/subjects')).body as string[]).includes(s)).toBe(false);
  });
});
