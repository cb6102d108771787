// The API's in-memory read model of alerts: GET /alerts and GET /alerts/:id answered from memory,
// ClickHouse stays the source of truth.
//
//   ClickHouse ──load (newest maxAlerts, keyset pages)──▶ index (alert-index.ts) + rows (row-arena.ts)
//              ──tail every pollMs: new alerts by ingested_at (alert-tail.ts), new triage rows by ingested_at
//   this API's own triage writes ──▶ applied at once (noteTriage)
//
// Why: embedded ClickHouse (chDB) runs one query at a time, 5-10 ms each for a page on 1M alerts,
// which caps the API far below 500 req/s once requests vary. Filtering, ordering and paging in
// memory cost microseconds; rows are kept compactly outside the JS heap (~190 B per alert).
//
// Exactness: the index answers only pages it holds completely (every alert detected since its
// horizon). While it loads, past its horizon (maxAlerts), or when a row is gone from the arena and
// ClickHouse fails, the caller falls back to the ClickHouse query path. Staleness: new alerts and
// triage by other replicas appear within one poll (API_FEED_POLL_MS, default 1 s), like the page
// cache's TTL.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { ClickHouse } from '@tillwatch/clickhouse';
import type { Alert } from '@tillwatch/schemas';
import type { Logger } from '@tillwatch/telemetry';
import { toAlertView, type AlertView } from '../alert-view.js';
import type { Cursor } from '../cursor.js';
import type { ApiMetrics } from '../metrics.js';
import type { AlertFilter, AlertPage } from '../store.js';
import { createAlertCodec } from './alert-codec.js';
import { createAlertIndex, indexBudgetBytes, type AlertIndex, type TriageState } from './alert-index.js';
import { createAlertTail } from './alert-tail.js';
import { createRowArena, type RowArena } from './row-arena.js';
import { createReadModelSource, type AlertKey, type ReadModelSource } from './source.js';

export interface AlertReadModelOptions {
  ch: ClickHouse;
  metrics: ApiMetrics;
  logger?: Logger;
  /** Alerts held at most (the newest); older reads go to ClickHouse. */
  maxAlerts: number;
  /** Bytes of the row arena (rows beyond it are read from ClickHouse when a page needs them). */
  rowBytes: number;
  /** Interval of the tail polls. */
  pollMs: number;
  /** Rows per load query. Default 20,000. */
  loadPageSize?: number;
  /** Wait before retrying a failed load. Default 5 s. */
  retryMs?: number;
  /** Look-back of the triage poll for rows that became visible late. Default 5 s. */
  overlapMs?: number;
  /**
   * Past this long without a successful poll the model stops answering (reads go to ClickHouse,
   * which answers fresh or 503) instead of serving an ever older picture. Default 30 s.
   */
  maxStalenessMs?: number;
  /** Wall clock (tests). */
  now?: () => number;
  /** Injected for tests; default: ClickHouse queries. */
  source?: ReadModelSource;
}

export type ReadModelState = 'idle' | 'loading' | 'ready' | 'closed';

export interface AlertReadModel {
  /** Begin the load in the background, then the polls. Resolves when the first load completes (or the model is closed). */
  start(): Promise<void>;
  readonly state: ReadModelState;
  /** The page from memory, or undefined when ClickHouse must answer (not loaded, beyond the horizon). */
  list(filter: AlertFilter, page: { limit: number; cursor?: Cursor | undefined }): Promise<AlertPage | undefined>;
  /** The alert from memory, or undefined when unknown here (ClickHouse must answer). */
  get(alertId: string): Promise<AlertView | undefined>;
  /** A triage this API stored: visible at once, without waiting for the next poll. */
  noteTriage(alertId: string, entry: TriageState): void;
  /** Poll new alerts and triage rows now (tests, and after a write that must show at once). */
  refresh(): Promise<void>;
  /** Counters for logs and the bench. */
  stats(): { state: ReadModelState; alerts: number; horizon: number | null; indexBytes: number; rowBytesUsed: number; rowBytes: number; budgetBytes: number; loadMs: number | null };
  close(): Promise<void>;
}

export function createAlertReadModel(options: AlertReadModelOptions): AlertReadModel {
  const { ch, metrics, logger, maxAlerts, rowBytes, pollMs, loadPageSize = 20_000, retryMs = 5000, overlapMs = 5000, maxStalenessMs = 30_000, now = Date.now } = options;
  const source = options.source ?? createReadModelSource(ch, metrics);
  const codec = createAlertCodec();
  // Every copy (re-fires carry another detected_at; the index sorts them out), and a first poll that
  // looks back past the load's start: an insert visible only after its load page was read is not lost.
  const tail = createAlertTail({ ch, overlapMs, rememberIds: 0, lookBackMs: overlapMs });
  let index: AlertIndex = createAlertIndex({ maxAlerts });
  /** What the model may hold: the index's bound for maxAlerts (ids of ~40 B) plus the row arena, a fixed allocation. */
  const budgetBytes = indexBudgetBytes(maxAlerts) + rowBytes;
  let arena: RowArena = createRowArena(rowBytes);
  let state: ReadModelState = 'idle';
  let triageWatermark = 0;
  let loadMs: number | null = null;
  /** Wall time up to which the model is known to be current: the load's start, then each successful poll's. */
  let currentAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let polling: Promise<void> | undefined;
  let started: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  // A function, not `state === 'closed'` inline: close() changes it while run() awaits.
  const closed = () => state === 'closed';

  const storeRow = (position: number, alert: Alert) => {
    const bytes = codec.encode(alert);
    if (bytes) index.setRowOffset(position, arena.write(bytes));
  };
  const add = (alert: Alert) => {
    const p = index.add(alert);
    if (p !== undefined) storeRow(p, alert);
  };
  const applyTriage = (r: { alert_id: string; status: TriageState['status']; actor: string; at: number; ingested: number }) => {
    index.triage(r.alert_id, { status: r.status, actor: r.actor, at: r.at });
    if (r.ingested > triageWatermark) triageWatermark = r.ingested;
  };
  const publishGauges = () => {
    metrics.readModelAlerts.set(index.size);
    metrics.readModelBytes.set({ part: 'index' }, index.approxBytes());
    metrics.readModelBytes.set({ part: 'rows' }, Math.min(arena.head, arena.capacity));
    metrics.readModelHorizon.set(Number.isFinite(index.horizon) ? index.horizon / 1000 : 0);
    metrics.readModelBytes.set({ part: 'budget' }, budgetBytes);
  };

  async function loadOnce(): Promise<void> {
    const t0 = performance.now();
    index = createAlertIndex({ maxAlerts });
    arena = createRowArena(rowBytes);
    tail.reset();
    // Order matters: pin the tails first, so whatever is stored while the load runs is either in a
    // load page or returned by the first poll (both, sometimes: the index drops the copy).
    const loadStarted = now();
    triageWatermark = await tail.start();
    const triage = await source.triageState();
    const cut = await source.keyAt(maxAlerts - 1);
    // Everything with detected_at > cut.t gets loaded; alerts at cut.t itself only partly.
    index.horizon = cut ? cut.t + 1 : Number.NEGATIVE_INFINITY;
    let bound: { from: AlertKey } | { after: AlertKey } | undefined = cut ? { from: cut } : undefined;
    for (;;) {
      const rows = await source.page(bound, loadPageSize);
      if (closed()) return;
      for (let i = 0; i < rows.length; i++) {
        add(rows[i]!);
        // Keep serving requests while a large load runs.
        if (i % 2000 === 1999) await yieldToLoop();
      }
      const last = rows[rows.length - 1];
      if (rows.length < loadPageSize || !last) break;
      bound = { after: { t: last.detected_at, id: last.alert_id } };
    }
    // Triage after the alerts: states of indexed alerts are kept with them; the rest (alerts past the
    // horizon, or stored during the load and due in the first poll) are pending, a bounded set
    // where the oldest go first, so apply them oldest first.
    triage.sort((a, b) => a.at - b.at);
    for (const r of triage) applyTriage(r);
    loadMs = performance.now() - t0;
    metrics.readModelLoad.set(loadMs / 1000);
    currentAt = loadStarted;
  }

  async function pollOnce(): Promise<void> {
    const started = now();
    const alerts = await tail.poll();
    for (const a of alerts) add(a);
    for (const r of await source.triageSince(triageWatermark - overlapMs)) applyTriage(r);
    currentAt = started;
    metrics.readModelLastPoll.set(started / 1000);
    publishGauges();
  }

  const poll = (): Promise<void> => {
    polling ??= pollOnce()
      .catch((e: unknown) => {
        logger?.warn({ err: e }, 'read model poll failed; retrying on the next tick');
      })
      .finally(() => {
        polling = undefined;
      });
    return polling;
  };

  const schedule = () => {
    if (closed()) return;
    timer = setTimeout(() => {
      timer = undefined;
      void poll().then(schedule);
    }, pollMs);
    timer.unref();
  };

  async function run(): Promise<void> {
    state = 'loading';
    metrics.readModelReady.set(0);
    for (;;) {
      try {
        await loadOnce();
        break;
      } catch (e) {
        if (closed()) return;
        logger?.warn({ err: e, retryInMs: retryMs }, 'read model load failed; GET /alerts reads ClickHouse meanwhile');
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, retryMs).unref();
        });
        wake = undefined;
      }
      if (closed()) return;
    }
    if (closed()) return;
    state = 'ready';
    metrics.readModelReady.set(1);
    publishGauges();
    logger?.info({ budgetMiB: Math.round(budgetBytes / 2 ** 20), alerts: index.size, horizon: Number.isFinite(index.horizon) ? new Date(index.horizon).toISOString() : 'all', loadMs: Math.round(loadMs ?? 0) }, 'alert read model loaded');
    // Catch up with what was stored during the load before the first interval.
    await poll();
    schedule();
  }

  const stale = () => now() - currentAt > maxStalenessMs;

  /** Rows of these positions: from the arena, or (gone from it) from ClickHouse and stored again. */
  async function views(positions: number[]): Promise<AlertView[] | undefined> {
    const out: (AlertView | undefined)[] = new Array<AlertView | undefined>(positions.length);
    const missing: { at: number; head: ReturnType<AlertIndex['get']>; key: AlertKey & { merchant: string } }[] = [];
    for (let i = 0; i < positions.length; i++) {
      const p = positions[i]!;
      const head = index.get(p);
      const off = index.rowOffset(p);
      const bytes = off >= 0 ? arena.read(off) : undefined;
      if (bytes) out[i] = toAlertView({ ...head, ...codec.decode(bytes) }, index.triageOf(head.alert_id));
      else missing.push({ at: i, head, key: { t: head.detected_at, id: head.alert_id, merchant: head.merchant_id } });
    }
    if (missing.length) {
      metrics.readModelRowFetches.inc(missing.length);
      const rows = new Map<string, Alert>();
      for (const r of await source.rows(missing.map((m) => m.key))) if (!rows.has(r.alert_id)) rows.set(r.alert_id, r);
      for (const m of missing) {
        const row = rows.get(m.key.id);
        // Gone from ClickHouse too (TTL): let the ClickHouse path answer the whole page.
        if (!row) return undefined;
        // Any copy gives the evidence fields; the sort key (detected_at) and the other indexed columns
        // are the index's, so the item sits where it was sorted and the cursor built from it holds.
        out[m.at] = toAlertView({ ...row, ...m.head }, index.triageOf(row.alert_id));
        // Positions may have moved during the await (a trim): look the alert up again.
        const p = index.position(row.alert_id);
        if (p !== undefined) storeRow(p, row);
      }
    }
    return out as AlertView[];
  }

  return {
    start() {
      started ??= run();
      return started;
    },
    get state() {
      return state;
    },
    async list(filter, { limit, cursor }) {
      if (state !== 'ready') {
        metrics.alertReads.inc({ source: 'clickhouse', reason: 'read_model_loading' });
        return undefined;
      }
      if (stale()) {
        metrics.alertReads.inc({ source: 'clickhouse', reason: 'read_model_stale' });
        return undefined;
      }
      const page = index.list(filter, cursor, limit);
      if (!page) {
        metrics.alertReads.inc({ source: 'clickhouse', reason: 'beyond_horizon' });
        return undefined;
      }
      const items = await views(page.positions);
      if (!items) {
        metrics.alertReads.inc({ source: 'clickhouse', reason: 'row_missing' });
        return undefined;
      }
      metrics.alertReads.inc({ source: 'memory', reason: 'list' });
      const last = items[items.length - 1];
      return { items, next: page.more && last ? { t: last.detected_at, id: last.alert_id } : null };
    },
    async get(alertId) {
      if (state !== 'ready' || stale()) return undefined;
      const p = index.position(alertId);
      if (p === undefined) return undefined;
      const one = await views([p]);
      if (one) metrics.alertReads.inc({ source: 'memory', reason: 'get' });
      return one?.[0];
    },
    noteTriage(alertId, entry) {
      index.triage(alertId, entry);
    },
    async refresh() {
      if (state !== 'ready') return;
      // A poll already running may have started before the caller's write: run one more after it.
      await polling;
      await poll();
    },
    stats() {
      return {
        state,
        alerts: index.size,
        horizon: Number.isFinite(index.horizon) ? index.horizon : null,
        indexBytes: index.approxBytes(),
        rowBytesUsed: Math.min(arena.head, arena.capacity),
        rowBytes: arena.capacity,
        budgetBytes,
        loadMs,
      };
    },
    async close() {
      state = 'closed';
      metrics.readModelReady.set(0);
      if (timer) clearTimeout(timer);
      timer = undefined;
      wake?.();
      await polling;
      await started;
    },
  };
}
