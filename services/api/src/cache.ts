// A short-lived page cache with request coalescing for GET /alerts. Why: a risk console fleet polls
// the same first pages (latest, per rule, open criticals...) many times a second, and each page is
// a ClickHouse query of several milliseconds (embedded chDB runs one query at a time per process).
// - Identical requests within `ttlMs` share one query (hit); identical requests while it runs wait
//   for it (coalesced).
// - After ttlMs and up to `staleMs` more, the cached page is still served at once (stale) while ONE
//   background query refreshes it: a polled view never waits for ClickHouse, and is at most about
//   ttlMs + one query old. Past that, the request waits for a fresh query (miss).
// - A triage write in this process invalidates everything, so an analyst sees their change at once
//   (other API replicas see it within their TTL). Live consoles get new alerts from /stream/alerts.

export type CacheResult = 'hit' | 'coalesced' | 'stale' | 'miss';

export interface PageCache<T> {
  get(key: string, load: () => Promise<T>): { value: Promise<T>; result: CacheResult };
  invalidate(): void;
  readonly size: number;
}

interface Entry<T> {
  /** When the load that produced (or is producing) value started. */
  at: number;
  /** This entry's TTL: ttlMs +-25% jitter, so pages loaded together do not all refresh together. */
  ttl: number;
  settled: boolean;
  refreshing: boolean;
  value: Promise<T>;
}

export function createPageCache<T>(options: { ttlMs: number; staleMs?: number; maxEntries?: number; now?: () => number; random?: () => number }): PageCache<T> {
  const { ttlMs, staleMs = 0, maxEntries = 2000, now = () => performance.now(), random = Math.random } = options;
  const entries = new Map<string, Entry<T>>();
  let generation = 0;

  const store = (key: string, entry: Entry<T>) => {
    entries.delete(key);
    entries.set(key, entry);
    // Map keeps insertion order: drop the oldest entries beyond the bound.
    while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
  };

  const start = (key: string, load: () => Promise<T>): Entry<T> => {
    const entry: Entry<T> = { at: now(), ttl: ttlMs * (0.75 + 0.5 * random()), settled: false, refreshing: false, value: load() };
    entry.value.then(
      () => {
        entry.settled = true;
      },
      () => {
        // Never cache a failure: the next request tries again.
        if (entries.get(key) === entry) entries.delete(key);
      },
    );
    return entry;
  };

  return {
    get size() {
      return entries.size;
    },
    get(key, load) {
      if (ttlMs <= 0) return { value: load(), result: 'miss' };
      const t = now();
      const hit = entries.get(key);
      if (hit && t - hit.at < hit.ttl) return { value: hit.value, result: hit.settled ? 'hit' : 'coalesced' };
      if (hit && hit.settled && t - hit.at < hit.ttl + staleMs) {
        if (!hit.refreshing) {
          hit.refreshing = true;
          const gen = generation;
          const next = start(key, load);
          next.value.then(
            () => {
              if (gen === generation) store(key, next);
            },
            () => {
              hit.refreshing = false; // keep serving the stale page; the next request retries
            },
          );
        }
        return { value: hit.value, result: 'stale' };
      }
      const entry = start(key, load);
      store(key, entry);
      return { value: entry.value, result: 'miss' };
    },
    invalidate() {
      generation += 1;
      entries.clear();
    },
  };
}
