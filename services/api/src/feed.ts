// The live alert feed is a PORT: the API only needs `subscribe`. In production the lead wires a
// Kafka consumer of pos.alerts.v1 to it; createPollingAlertFeed is the fallback that reads new rows
// from ClickHouse, and createMemoryAlertFeed serves tests and in-process wiring.
import { ContractColumns, fromAlertRow, mapClickHouseError, type AlertRow, type ClickHouse } from '@tillwatch/clickhouse';
import type { Alert } from '@tillwatch/schemas';
import type { Logger } from '@tillwatch/telemetry';

export type AlertListener = (alert: Alert) => void;

export interface AlertFeed {
  /** Register a listener for alerts from now on; returns the unsubscribe function. */
  subscribe(listener: AlertListener): () => void;
}

/** Fan-out to listeners; a throwing listener is isolated (logged by the caller's onError). */
function createFanout(onError?: (e: unknown) => void) {
  const listeners = new Set<AlertListener>();
  return {
    listeners,
    emit(alert: Alert) {
      for (const l of [...listeners]) {
        try {
          l(alert);
        } catch (e) {
          onError?.(e);
        }
      }
    },
  };
}

export interface MemoryAlertFeed extends AlertFeed {
  publish(alert: Alert): void;
  readonly subscribers: number;
}

export function createMemoryAlertFeed(): MemoryAlertFeed {
  const fan = createFanout();
  return {
    subscribe(listener) {
      fan.listeners.add(listener);
      return () => void fan.listeners.delete(listener);
    },
    publish: (alert) => fan.emit(alert),
    get subscribers() {
      return fan.listeners.size;
    },
  };
}

export interface PollingAlertFeedOptions {
  ch: ClickHouse;
  /** How often to look for new rows. */
  intervalMs: number;
  logger?: Logger;
  /**
   * Rows are found by ingested_at (the platform's insert time, not detected_at, so late alerts are
   * seen too). An insert that started earlier can become visible after a later one, so each poll
   * looks back this far and skips ids already emitted. Default 5 s.
   */
  overlapMs?: number;
  /** Max rows per poll (the next poll continues). Default 5000. */
  batchSize?: number;
}

export interface PollingAlertFeed extends AlertFeed {
  /** Stop polling and drop every listener. */
  close(): Promise<void>;
  /** Run one poll now (tests). */
  pollOnce(): Promise<number>;
}

type Polled = Omit<AlertRow, 'details'> & { details: Record<string, number | null>; ingested_ms: number };

/**
 * Polls `alerts` for rows ingested since the feed started, while at least one listener is
 * subscribed. Emits each alert_id once per process lifetime window (a replayed copy of an alert
 * already emitted recently is not emitted again).
 */
export function createPollingAlertFeed(options: PollingAlertFeedOptions): PollingAlertFeed {
  const { ch, intervalMs, logger, overlapMs = 5000, batchSize = 5000 } = options;
  const fan = createFanout((e) => logger?.warn({ err: e }, 'alert feed listener threw'));
  const ALERTS = ch.table('alerts');
  /** ingested_at floor: ClickHouse's clock when polling started (rows before that are history). */
  let floor: number | undefined;
  let watermark = 0;
  /** alert_id -> ingested ms, for ids inside the overlap window; plus a bounded set of all recent ids. */
  const recent = new Map<string, number>();
  const emitted = new Set<string>();
  const EMITTED_MAX = 50_000;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let closed = false;

  async function poll(): Promise<number> {
    if (floor === undefined) {
      const rs = await ch.client.query({ query: 'SELECT toUnixTimestamp64Milli(now64(3)) AS now', format: 'JSONEachRow' });
      floor = ((await rs.json<{ now: number }>())[0]?.now ?? Date.now()) as number;
      watermark = floor;
      return 0;
    }
    const since = Math.max(floor, watermark - overlapMs);
    const rs = await ch.client.query({
      query: `SELECT ${ContractColumns.alerts}, toUnixTimestamp64Milli(ingested_at) AS ingested_ms FROM ${ALERTS}
              WHERE ingested_at >= fromUnixTimestamp64Milli({since:Int64}) ORDER BY ingested_at, alert_id LIMIT {n:UInt32}`,
      query_params: { since, n: batchSize },
      format: 'JSONEachRow',
    });
    const rows = await rs.json<Polled>();
    let count = 0;
    for (const r of rows) {
      if (r.ingested_ms > watermark) watermark = r.ingested_ms;
      if (recent.has(r.alert_id) || emitted.has(r.alert_id)) continue;
      recent.set(r.alert_id, r.ingested_ms);
      emitted.add(r.alert_id);
      if (emitted.size > EMITTED_MAX) emitted.delete(emitted.values().next().value as string);
      const { ingested_ms: _ingested, ...row } = r;
      fan.emit(fromAlertRow(row));
      count += 1;
    }
    for (const [id, at] of recent) if (at < watermark - overlapMs) recent.delete(id);
    return count;
  }

  const runPoll = (): Promise<number> => {
    running ??= poll()
      .catch((e: unknown) => {
        logger?.warn({ err: mapClickHouseError(e) }, 'alert feed poll failed; retrying');
        return 0;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  const schedule = () => {
    if (closed || timer || fan.listeners.size === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      void runPoll().then(schedule);
    }, intervalMs);
    timer.unref();
  };

  return {
    subscribe(listener) {
      if (closed) throw new Error('alert feed is closed');
      fan.listeners.add(listener);
      if (floor === undefined) void runPoll().then(schedule);
      else schedule();
      return () => {
        fan.listeners.delete(listener);
        if (fan.listeners.size === 0) {
          if (timer) clearTimeout(timer);
          timer = undefined;
          // Idle: the next subscriber starts from "now", not from a backlog nobody was listening to.
          floor = undefined;
          recent.clear();
        }
      };
    },
    pollOnce: runPoll,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      fan.listeners.clear();
      await running;
    },
  };
}
