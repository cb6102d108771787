// API keys and roles. Keys come from API_KEYS (`key:role:name,key2:role:name`); only their SHA-256
// digests are kept in memory, and a presented key is compared against every digest with
// crypto.timingSafeEqual, so neither the comparison nor the position of a match leaks through timing.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '@tillwatch/config';

export const Roles = ['viewer', 'analyst', 'admin'] as const;
export type Role = (typeof Roles)[number];
/** Who may call a route: 'public' (no key: probes, metrics, docs) or the least role required. */
export type Access = 'public' | Role;

const RANK: Record<Role, number> = { viewer: 1, analyst: 2, admin: 3 };

/** viewer: read; analyst: read + triage; admin: everything. */
export function roleAllows(role: Role, access: Access): boolean {
  return access === 'public' || RANK[role] >= RANK[access];
}

export interface Principal {
  /** Key name from API_KEYS: the "who" of the triage audit trail. */
  name: string;
  role: Role;
}

export interface ApiKeyEntry extends Principal {
  key: string;
}

export interface Authenticator {
  /** The principal for a presented key, or undefined. Constant time in the key and in the entry count. */
  authenticate(presented: string): Principal | undefined;
  /** Configured principals (names and roles only; never keys). */
  readonly principals: readonly Principal[];
}

const KEY_PATTERN = /^[A-Za-z0-9._~+/=-]{16,256}$/;
/** The deploy templates' placeholder keys (deploy/k8s/secret.yaml): refused, never served. */
const PLACEHOLDER_KEY = /change[-_]?me/i;
const NAME_PATTERN = /^[A-Za-z0-9._@-]{1,64}$/;
const EXPECTED = 'a comma-separated list of key:role:name (key: 16-256 chars of [A-Za-z0-9._~+/=-], role: viewer, analyst or admin, name: [A-Za-z0-9._@-]{1,64})';

/** Show an entry in an error message without its secret. */
const redact = (entry: string): string => {
  const parts = entry.split(':');
  return parts.length >= 2 ? ['<key redacted>', ...parts.slice(1)].join(':') : '<redacted>';
};

/** Parse API_KEYS. Throws ConfigError naming the bad entry (with the key itself redacted). */
export function parseApiKeys(raw: string, variable = 'API_KEYS'): ApiKeyEntry[] {
  const entries = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (entries.length === 0) throw new ConfigError(variable, EXPECTED, '<empty>');
  const out: ApiKeyEntry[] = [];
  const seenNames = new Set<string>();
  const seenKeys = new Set<string>();
  entries.forEach((entry, i) => {
    const parts = entry.split(':');
    const where = `entry ${i + 1} (${redact(entry)})`;
    if (parts.length !== 3) throw new ConfigError(variable, `${EXPECTED}; ${where} does not have exactly three ':'-separated fields`, '<redacted>');
    const [key, role, name] = parts as [string, string, string];
    if (!KEY_PATTERN.test(key)) throw new ConfigError(variable, `${EXPECTED}; ${where} has a key that is too short or has other characters`, '<redacted>');
    // deploy/k8s/secret.yaml's placeholder has the right shape on purpose: applied unedited it would be a published admin key.
    if (PLACEHOLDER_KEY.test(key)) throw new ConfigError(variable, `a random key in place of the placeholder; ${where} still has the placeholder key of the deploy templates (CHANGE-ME...): replace it, e.g. with the output of \`openssl rand -base64 32\``, '<redacted>');
    if (!(Roles as readonly string[]).includes(role)) throw new ConfigError(variable, `${EXPECTED}; ${where} has unknown role ${JSON.stringify(role)}`, '<redacted>');
    if (!NAME_PATTERN.test(name)) throw new ConfigError(variable, `${EXPECTED}; ${where} has an invalid name`, '<redacted>');
    if (seenNames.has(name)) throw new ConfigError(variable, `${EXPECTED}; ${where} repeats the name ${JSON.stringify(name)}`, '<redacted>');
    if (seenKeys.has(key)) throw new ConfigError(variable, `${EXPECTED}; ${where} repeats a key already configured`, '<redacted>');
    seenNames.add(name);
    seenKeys.add(key);
    out.push({ key, role: role as Role, name });
  });
  return out;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export function createAuthenticator(entries: readonly ApiKeyEntry[]): Authenticator {
  // Only digests are kept; the entries (with keys) are not referenced after this.
  const table = entries.map((e) => ({ hash: digest(e.key), principal: Object.freeze({ name: e.name, role: e.role }) }));
  return {
    principals: table.map((t) => t.principal),
    authenticate(presented) {
      // Fixed-length digest of the presented key: timingSafeEqual needs equal lengths, and the
      // work does not depend on how long the presented key is or which entry (if any) matches.
      const h = digest(presented);
      let found: Principal | undefined;
      for (const t of table) {
        if (timingSafeEqual(h, t.hash) && found === undefined) found = t.principal;
      }
      return found;
    },
  };
}

/** A random admin key for development (`npm start` prints it). 32 random bytes, base64url. */
export function generateDevKey(): ApiKeyEntry {
  return { key: `twdev_${randomBytes(32).toString('base64url')}`, role: 'admin', name: 'dev' };
}

export type PresentedKey = { kind: 'missing' } | { kind: 'malformed'; reason: string } | { kind: 'key'; value: string };

/** The key from `x-api-key` or `Authorization: Bearer <key>`. Both present and different = malformed. */
export function extractKey(headers: Record<string, string | string[] | undefined>): PresentedKey {
  const xKey = headers['x-api-key'];
  const authz = headers['authorization'];
  if (Array.isArray(xKey) || Array.isArray(authz)) return { kind: 'malformed', reason: 'the credential header is repeated' };
  let bearer: string | undefined;
  if (authz !== undefined) {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authz);
    if (!m) return { kind: 'malformed', reason: 'Authorization header must be "Bearer <key>"' };
    bearer = m[1];
  }
  if (xKey !== undefined && bearer !== undefined && xKey !== bearer) return { kind: 'malformed', reason: 'x-api-key and Authorization carry different keys' };
  const value = bearer ?? xKey;
  if (value === undefined || value === '') return { kind: 'missing' };
  return { kind: 'key', value };
}
