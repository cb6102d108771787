// The live alert feed is a PORT: the API only needs `subscribe`. In production the lead wires a
// Kafka consumer of pos.alerts.v1 to it; createPollingAlertFeed is the fallback that reads new rows
// from ClickHouse, and createMemoryAlertFeed serves tests and in-process wiring.
import { mapClickHouseError, type ClickHouse } from '@tillwatch/clickhouse';
import type { Alert } from '@tillwatch/schemas';
import type { Logger } from '@tillwatch/telemetry';
import { createAlertTail } from './read-model/alert-tail.js';

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
  /** Rows per query; a poll reads as many pages as it needs to catch up. Default 5000. */
  batchSize?: number;
}

export interface PollingAlertFeed extends AlertFeed {
  /** Stop polling and drop every listener. */
  close(): Promise<void>;
  /** Run one poll now (tests). */
  pollOnce(): Promise<number>;
}

/**
 * Polls `alerts` for rows ingested since the feed started, while at least one listener is
 * subscribed (read-model/alert-tail.ts: overlap, keyset paging, replayed copies hidden).
 */
export function createPollingAlertFeed(options: PollingAlertFeedOptions): PollingAlertFeed {
  const { ch, intervalMs, logger, overlapMs = 5000, batchSize = 5000 } = options;
  const fan = createFanout((e) => logger?.warn({ err: e }, 'alert feed listener threw'));
  const tail = createAlertTail({ ch, overlapMs, batchSize });
  let started = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let closed = false;

  async function poll(): Promise<number> {
    if (!started) {
      await tail.start();
      started = true;
      return 0;
    }
    const alerts = await tail.poll();
    for (const a of alerts) fan.emit(a);
    return alerts.length;
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
      if (!started) void runPoll().then(schedule);
      else schedule();
      return () => {
        fan.listeners.delete(listener);
        if (fan.listeners.size === 0) {
          if (timer) clearTimeout(timer);
          timer = undefined;
          // Idle: the next subscriber starts from "now", not from a backlog nobody was listening to.
          started = false;
          tail.reset();
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
