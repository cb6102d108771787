// Consumer lag measured from the outside, on a timer: the group's committed offsets against the
// partitions' end offsets, for the partitions this process owns. A lag read from a batch
// (batch.offsetLag()) only moves when a batch arrives and is committed, so a consumer that has
// stalled (a batch failing again and again, a stuck flush, a paused partition) keeps showing the
// last good value; here the end offset keeps moving while the committed offset does not, and the
// gauge grows. Labels of partitions this process no longer owns are removed (at once when the
// owner reports a new assignment, and at every poll), so a rebalance leaves no frozen series.
//
// Lag = end offset - committed offset (0 if the group committed nothing yet: end - start of log,
// since every Tillwatch consumer starts from the beginning). On a topic written transactionally,
// each commit marker takes an offset too, so a fully caught-up partition may show a lag of 1.
import type { Admin } from 'kafkajs';
import type { Logger } from '@tillwatch/telemetry';

export interface LagLabels {
  topic: string;
  partition: string;
}

/** The part of a prom-client Gauge the monitor uses. */
export interface LagGauge {
  set(labels: LagLabels, value: number): void;
  remove(labels: LagLabels): void;
}

export interface ConsumerLagMonitorOptions {
  admin: Pick<Admin, 'fetchOffsets' | 'fetchTopicOffsets'>;
  groupId: string;
  /** The partitions this process owns now, per topic. */
  owned(): ReadonlyMap<string, readonly number[]>;
  gauge: LagGauge;
  /** The group's committed offset per owned partition (same labels): its not moving is a stall. */
  committedGauge?: LagGauge;
  logger: Logger;
  /** Poll interval (default 10 s). */
  intervalMs?: number;
}

export interface ConsumerLagMonitor {
  /** Polls now and then every intervalMs. */
  start(): void;
  /** Stops the timer; resolves when a poll in flight has ended (before the admin client disconnects). */
  stop(): Promise<void>;
  /** Drops the labels of partitions no longer owned at once, then polls (call after a rebalance). */
  refresh(): void;
  /** One poll (tests await it). */
  poll(): Promise<void>;
}

export const DEFAULT_LAG_INTERVAL_MS = 10_000;

/** Lag of one partition (pure): end - committed, or end - start when nothing was committed. */
export function partitionLag(end: bigint, start: bigint, committed: bigint | undefined): number {
  const from = committed === undefined || committed < 0n ? start : committed;
  const lag = end - from;
  return lag > 0n ? Number(lag) : 0;
}

const key = (topic: string, partition: number | string) => `${topic}\u0000${partition}`;

export function createConsumerLagMonitor(o: ConsumerLagMonitorOptions): ConsumerLagMonitor {
  const intervalMs = o.intervalMs ?? DEFAULT_LAG_INTERVAL_MS;
  /** Labels this monitor has set and not removed. */
  const shown = new Map<string, LagLabels>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let failing = false;
  let stopped = false;

  const ownedKeys = (owned: ReadonlyMap<string, readonly number[]>) => {
    const keys = new Set<string>();
    for (const [topic, ps] of owned) for (const p of ps) keys.add(key(topic, p));
    return keys;
  };

  function prune(keep: Set<string>): void {
    for (const [k, labels] of shown) {
      if (keep.has(k)) continue;
      o.gauge.remove(labels);
      o.committedGauge?.remove(labels);
      shown.delete(k);
    }
  }

  async function pollOnce(): Promise<void> {
    const owned = o.owned();
    prune(ownedKeys(owned));
    const topics = [...owned].filter(([, ps]) => ps.length > 0).map(([t]) => t);
    if (topics.length === 0) return;
    try {
      const committed = await o.admin.fetchOffsets({ groupId: o.groupId, topics });
      const ends = await Promise.all(topics.map(async (t) => [t, await o.admin.fetchTopicOffsets(t)] as const));
      if (stopped) return;
      // Ownership may have changed while the requests were in flight: only owned partitions are set.
      const now = ownedKeys(o.owned());
      prune(now);
      const committedBy = new Map<string, bigint>();
      for (const t of committed) for (const p of t.partitions) committedBy.set(key(t.topic, p.partition), BigInt(p.offset));
      for (const [topic, offsets] of ends) {
        for (const p of offsets) {
          const k = key(topic, p.partition);
          if (!now.has(k)) continue;
          const labels = { topic, partition: String(p.partition) };
          const committedAt = committedBy.get(k);
          o.gauge.set(labels, partitionLag(BigInt(p.high), BigInt(p.low), committedAt));
          // Nothing committed yet: the consumer starts at the start of the log.
          o.committedGauge?.set(labels, Number(committedAt !== undefined && committedAt >= 0n ? committedAt : BigInt(p.low)));
          shown.set(k, labels);
        }
      }
      if (failing) o.logger.info({ groupId: o.groupId }, 'consumer lag measured again');
      failing = false;
    } catch (err) {
      if (stopped) return;
      // The gauge keeps its last values; one line per outage, not one per poll.
      if (!failing) o.logger.warn({ err, groupId: o.groupId }, 'could not measure consumer lag (broker unavailable?); retrying every poll');
      failing = true;
    }
  }

  /** One poll at a time; a request while one runs schedules one more after it. */
  function poll(): Promise<void> {
    if (stopped) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    running = pollOnce().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        void poll();
      }
    });
    return running;
  }

  return {
    start() {
      if (timer) return;
      stopped = false;
      void poll();
      timer = setInterval(() => void poll(), intervalMs);
      timer.unref();
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      again = false;
      await running;
    },
    refresh() {
      prune(ownedKeys(o.owned()));
      if (timer) void poll();
    },
    poll,
  };
}
