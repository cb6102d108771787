// A small client for the Confluent Schema Registry REST API (served by Apicurio at
// /apis/ccompat/v7, by Confluent and by Karapace alike). Written here rather than taken from
// @kafkajs/confluent-schema-registry because the serde needs sync decoding after a batch prefetch,
// writer→reader schema resolution, and our error classes (retriable vs poison vs fatal).
import { RegistryUnavailableError, SchemaIncompatibleError, UnknownSchemaIdError, FatalError } from '../errors.js';

export interface RegistryClientOptions {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  /** Per-request timeout. */
  timeoutMs?: number;
}

export type Compatibility = 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FORWARD_TRANSITIVE' | 'FULL' | 'FULL_TRANSITIVE' | 'NONE';

export interface RegistryClient {
  readonly url: string;
  /** Registers (or finds) the schema under the subject; returns its global id. */
  register(subject: string, schema: object): Promise<number>;
  getSchemaById(id: number): Promise<object>;
  setCompatibility(subject: string, level: Compatibility): Promise<void>;
  getCompatibility(subject: string): Promise<Compatibility | undefined>;
  /** True when the schema could be registered as the next version of the subject. */
  isCompatible(subject: string, schema: object): Promise<boolean>;
  latest(subject: string): Promise<{ id: number; version: number; schema: object } | undefined>;
  subjects(): Promise<string[]>;
  /** GET on the API root, for readiness checks. */
  ping(): Promise<void>;
}

const CT = 'application/vnd.schemaregistry.v1+json';

export function createRegistryClient(o: RegistryClientOptions): RegistryClient {
  const base = o.url.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'content-type': CT, accept: `${CT}, application/json` };
  if (o.username) headers.authorization = `Basic ${Buffer.from(`${o.username}:${o.password ?? ''}`).toString('base64')}`;
  const byId = new Map<number, Promise<object>>();

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(o.timeoutMs ?? 10_000),
      });
    } catch (cause) {
      throw new RegistryUnavailableError(`schema registry at ${base} unreachable (${method} ${path}): ${(cause as Error).message}`, { cause });
    }
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = { message: text };
    }
    if (res.status >= 500 || res.status === 429) {
      throw new RegistryUnavailableError(`schema registry ${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
    }
    return { status: res.status, json };
  }

  const message = (json: unknown): string => {
    const j = json as { message?: string; detail?: string; error_code?: number } | undefined;
    return j?.message ?? j?.detail ?? JSON.stringify(json);
  };

  return {
    url: base,
    async register(subject, schema) {
      const { status, json } = await call('POST', `/subjects/${encodeURIComponent(subject)}/versions`, { schema: JSON.stringify(schema) });
      if (status === 409) throw new SchemaIncompatibleError(subject, message(json));
      if (status !== 200) throw new FatalError(`registering a schema under ${subject} failed with ${status}: ${message(json)}`);
      const id = (json as { id?: number }).id;
      if (typeof id !== 'number') throw new FatalError(`registry answered without an id for ${subject}: ${JSON.stringify(json)}`);
      byId.set(id, Promise.resolve(schema));
      return id;
    },
    getSchemaById(id) {
      let p = byId.get(id);
      if (!p) {
        p = call('GET', `/schemas/ids/${id}`).then(({ status, json }) => {
          if (status === 404) throw new UnknownSchemaIdError(id);
          if (status !== 200) throw new RegistryUnavailableError(`GET /schemas/ids/${id} answered ${status}: ${message(json)}`);
          return JSON.parse((json as { schema: string }).schema) as object;
        });
        // Failed lookups are not cached: a retriable failure must be retried, an unknown id
        // may be registered later (e.g. a producer racing the registry replica).
        p.catch(() => byId.delete(id));
        byId.set(id, p);
      }
      return p;
    },
    async setCompatibility(subject, level) {
      const { status, json } = await call('PUT', `/config/${encodeURIComponent(subject)}`, { compatibility: level });
      if (status !== 200) throw new FatalError(`setting compatibility ${level} on ${subject} failed with ${status}: ${message(json)}`);
    },
    async getCompatibility(subject) {
      const { status, json } = await call('GET', `/config/${encodeURIComponent(subject)}`);
      if (status === 404) return undefined;
      const j = json as { compatibilityLevel?: Compatibility; compatibility?: Compatibility };
      return j.compatibilityLevel ?? j.compatibility;
    },
    async isCompatible(subject, schema) {
      const { status, json } = await call('POST', `/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest`, { schema: JSON.stringify(schema) });
      if (status === 404) return true; // no version yet: anything is compatible
      if (status === 409) return false;
      if (status !== 200) throw new FatalError(`compatibility check on ${subject} failed with ${status}: ${message(json)}`);
      return (json as { is_compatible?: boolean }).is_compatible === true;
    },
    async latest(subject) {
      const { status, json } = await call('GET', `/subjects/${encodeURIComponent(subject)}/versions/latest`);
      if (status === 404) return undefined;
      if (status !== 200) throw new FatalError(`GET latest of ${subject} failed with ${status}: ${message(json)}`);
      const j = json as { id: number; version: number; schema: string };
      return { id: j.id, version: j.version, schema: JSON.parse(j.schema) as object };
    },
    async subjects() {
      const { status, json } = await call('GET', '/subjects');
      if (status !== 200) throw new RegistryUnavailableError(`GET /subjects answered ${status}`);
      return json as string[];
    },
    async ping() {
      const { status } = await call('GET', '/subjects');
      if (status !== 200) throw new RegistryUnavailableError(`schema registry at ${base} not ready (GET /subjects answered ${status})`);
    },
  };
}
