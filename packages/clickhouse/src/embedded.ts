// Embedded ClickHouse: chDB (libchdb in-process) plugged into @clickhouse/client as its Connection.
// Everything chDB-specific lives here; above the factory the interface is the same as over HTTP.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ClickHouseClientConfigOptions } from '@clickhouse/client';
import type { createChdbConnection } from 'chdb/connection';
import { EmbeddedPathConflictError } from './errors.js';

type ChdbConnectionModule = { createChdbConnection: typeof createChdbConnection };
type ChdbRootModule = { drainPending(): Promise<void> };

/** The Connection contract the client accepts (not exported by name from @clickhouse/client on purpose). */
export type InjectedConnection = NonNullable<ClickHouseClientConfigOptions['connection']>;

// Loaded lazily and synchronously: an HTTP-only deployment never loads the native library, and the
// factory stays synchronous. chdb ships CommonJS, so require() is the natural way to load it here.
const require = createRequire(import.meta.url);

// The one module-level state in this package, on purpose: libchdb binds ONE data directory per
// process (a second path throws inside the addon; after a close it needs drainPending()). That is
// a property of the process, so the guard has to be process-wide too. Same path may be opened
// several times (connections coexist by design); a different one is refused with a clear message.
const openPaths = new Map<string, number>();

export interface EmbeddedHandle {
  readonly path: string;
  readonly connection: InjectedConnection;
  release(): Promise<void>;
}

/** Open (or share) the embedded data directory at `path`. Throws EmbeddedPathConflictError on a second path. */
export function openEmbedded(path: string): EmbeddedHandle {
  const absolute = path === ':memory:' ? path : resolve(path);
  for (const [open, refs] of openPaths) {
    if (refs > 0 && open !== absolute) throw new EmbeddedPathConflictError(open, absolute);
  }
  if (absolute !== ':memory:') mkdirSync(absolute, { recursive: true });
  const { createChdbConnection } = require('chdb/connection') as ChdbConnectionModule;
  const raw = createChdbConnection({ path: absolute });
  openPaths.set(absolute, (openPaths.get(absolute) ?? 0) + 1);
  let released = false;
  return {
    path: absolute,
    // chdb types its Connection with @clickhouse/client-common 1.23.0, the client bundles its own
    // (1.23.1) copy whose ClickHouseSettings differ slightly; same runtime contract.
    connection: withSettingsReset(raw as unknown as InjectedConnection),
    async release() {
      if (released) return;
      released = true;
      const refs = (openPaths.get(absolute) ?? 1) - 1;
      if (refs <= 0) {
        openPaths.delete(absolute);
        // close() may return while the engine still finishes work on the connection; the next
        // Session at a different path is refused until it is really gone (chdb README).
        const { drainPending } = require('chdb') as ChdbRootModule;
        await drainPending();
      } else {
        openPaths.set(absolute, refs);
      }
    },
  };
}

/** Paths currently open in this process (for diagnostics and tests). */
export function openEmbeddedPaths(): string[] {
  return [...openPaths.keys()];
}

// Settings chdb/connection drops because they only exist in the HTTP server layer (copied from
// chdb/dist/connection/chdb-connection.js). They are never SET, so they must never be reset either.
const HTTP_ONLY_SETTINGS = new Set([
  'wait_end_of_query',
  'send_progress_in_http_headers',
  'http_response_buffer_size',
  'http_headers_progress_interval_ms',
  'http_send_progress_interval_ms',
  'enable_http_compression',
  'http_zlib_compression_level',
  'http_response_compression_method',
  'http_native_compression_disable_checksumming_on_decompress',
  'default_format',
]);

/**
 * chDB quirk: the connection applies a call's `clickhouse_settings` as `SET k = v; <query>` on
 * ONE long-lived session, so a per-query setting silently sticks to every later call on that
 * connection (over HTTP it applies to that request only). That is dangerous for
 * `insert_deduplication_token`: a stale token makes ClickHouse drop the next, different batch as
 * a "duplicate". Workaround: remember every setting a call touched, and prefix the next call that
 * does not set it itself with `SET k = DEFAULT`, so each call sees exactly the settings it asked
 * for. The engine already runs one call at a time per connection (200 concurrent calls each read
 * back their own setting), but not necessarily in the order they were issued, so calls are queued
 * here: each one is prepared from the settings state its predecessor left. No throughput is lost,
 * and results are buffered by chDB before a call resolves, so a queued call never waits on a reader.
 */
export function withSettingsReset(inner: InjectedConnection): InjectedConnection {
  const touched = new Set<string>();
  type Params = { query: string; clickhouse_settings?: Record<string, unknown> };

  const prepare = <P extends Params>(params: P): { params: P; keys: string[]; resets: string[] } => {
    const keys = Object.entries(params.clickhouse_settings ?? {})
      .filter(([k, v]) => v !== undefined && /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && !HTTP_ONLY_SETTINGS.has(k))
      .map(([k]) => k);
    const resets = [...touched].filter((k) => !keys.includes(k));
    if (resets.length === 0) return { params, keys, resets };
    const prefix = resets.map((k) => `SET ${k} = DEFAULT; `).join('');
    return { params: { ...params, query: prefix + params.query }, keys, resets };
  };

  let tail: Promise<unknown> = Promise.resolve();
  const run = <P extends Params, R>(params: P, call: (p: P) => Promise<R>): Promise<R> => {
    const next = tail.then(
      () => runNow(params, call),
      () => runNow(params, call),
    );
    tail = next.catch(() => undefined);
    return next;
  };

  const runNow = async <P extends Params, R>(params: P, call: (p: P) => Promise<R>): Promise<R> => {
    const prepared = prepare(params);
    try {
      const result = await call(prepared.params);
      for (const k of prepared.resets) touched.delete(k);
      for (const k of prepared.keys) touched.add(k);
      return result;
    } catch (e) {
      // A failed statement may still have applied the SETs before it, so remember them too —
      // except a setting the engine does not know (UNKNOWN_SETTING, code 115): `SET it = DEFAULT`
      // would then fail every later call.
      const err = e as { code?: unknown; message?: unknown };
      const unknown = String(err.code) === '115' && typeof err.message === 'string' ? err.message : '';
      for (const k of prepared.keys) if (!unknown.includes(`'${k}'`)) touched.add(k);
      throw e;
    }
  };

  return {
    query: (p) => run(p, (q) => inner.query(q)),
    exec: (p) => run(p, (q) => inner.exec(q)),
    command: (p) => run(p, (q) => inner.command(q)),
    insert: (p) => run(p, (q) => inner.insert(q)),
    ping: (p) => inner.ping(p),
    close: () => inner.close(),
  };
}
