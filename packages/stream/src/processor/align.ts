// Time-aligned inputs (opt-in, `alignInputs`): within one task, the co-partitioned input topics are
// processed in record-time order across topics, as Kafka Streams chooses among a task's partitions
// by timestamp. kafkajs hands whole fetched batches per topic-partition, in no time order across
// topics: during a catch-up (restart after downtime, a replay) a batch of one topic may cover many
// minutes before the other topic's records of the same minutes are read. So each batch of input X
// is processed only up to a bound, the earliest time another input Y may still deliver:
//
//   bound(X) = min over Y != X of: +Infinity if Y is caught up (its next offset reached the last
//   high watermark seen), else head(Y) (the time of Y's next record, known when Y stopped early),
//   else lastProcessed(Y), else -Infinity (Y not read since the task started and not caught up).
//
// A batch stops at its first record with time > bound; it records head(X) = that time, so the
// other input can go on up to it. No deadlock: an input that is not caught up has records to
// deliver; once both heads are known, the input with the earlier head (ties: both, `<=`) passes
// at least that record. A caught-up input never blocks another (a live input with lag 0, or an
// empty topic). Pure state here; the processor (transactional-processor.ts) owns the Kafka side.
//
// Records fetched past the bound are not fetched again: each input keeps them in an InputBuffer
// (records fetched and not yet committed, offsets ascending), and a task's step merges its buffers
// by time (aligned-step.ts) into ONE transaction that commits every input's offset at its first
// record not taken. Stopping a batch and fetching its rest again cost a fetch, a decode of the
// whole rest and a transaction per switch between the topics: during a catch-up of interleaved
// topics about 3x the CPU per event. With buffers, head(X) is the time of X's first buffered
// record and caughtUp(X) means "nothing buffered and fetched to the high watermark".

/** What a task knows about one input topic's position. */
export interface InputPosition {
  /** Time of the next unprocessed record, known when a batch stopped before it. */
  head: number | undefined;
  /** Time of the last processed record (since the task was built). */
  last: number | undefined;
  /** The next offset to process had reached the partition's high watermark when last seen. */
  caughtUp: boolean;
}

export type TaskPositions = Map<string, InputPosition>;

export function newPositions(topics: readonly string[], caughtUp: (topic: string) => boolean): TaskPositions {
  return new Map(topics.map((t) => [t, { head: undefined, last: undefined, caughtUp: caughtUp(t) }]));
}

/** The latest time input `topic` may process now without overtaking another input. */
export function alignBound(positions: TaskPositions, topic: string): number {
  let bound = Number.POSITIVE_INFINITY;
  for (const [t, p] of positions) {
    if (t === topic || p.caughtUp) continue;
    const at = p.head ?? p.last ?? Number.NEGATIVE_INFINITY;
    if (at < bound) bound = at;
  }
  return bound;
}

/** Caught up when the next offset to fetch is at (or past) the high watermark. */
export function isCaughtUp(nextOffset: bigint, highWatermark: bigint): boolean {
  return nextOffset >= highWatermark;
}

/** Records of one input fetched and not yet committed (alignInputs keeps them rather than fetch them again). */
export interface InputBuffer<M> {
  /** Fetched records; those from index `start` on are pending (not committed yet). */
  records: M[];
  start: number;
  /** Highest offset taken in: records at or below it, fetched again (after a rebalance kafkajs fetches from the committed offset), are skipped. */
  through: bigint;
  /** The last batch taken in reached the partition's high watermark. */
  fetchedToEnd: boolean;
  /** Highest offset whose pending record is a copy of its own (detachPending). */
  detachedThrough: bigint;
}

export function newInputBuffer<M>(fetchedToEnd: boolean): InputBuffer<M> {
  return { records: [], start: 0, through: -1n, fetchedToEnd, detachedThrough: -1n };
}

/**
 * Replaces the pending records not copied yet by `copy(record)`. kafkajs hands out keys and values
 * as slices of the whole fetch response, so one record kept waiting would keep that response (up
 * to maxBytes, other partitions' records included) in memory; a copy keeps its own bytes only.
 * The processor calls it before a new fetch's records are appended and on every tick: records
 * taken before their input's next fetch and the next tick are never copied, and no response is kept
 * alive by waiting records for longer than a tick interval.
 */
export function detachPending<M extends { offset: string }>(b: InputBuffer<M>, copy: (m: M) => M): void {
  const n = b.records.length;
  if (n === b.start || BigInt(b.records[n - 1]!.offset) <= b.detachedThrough) return;
  // A new array: the first one may be the fetched batch's own (appendRecords).
  const pending = b.records.slice(b.start);
  for (let i = pending.length - 1; i >= 0 && BigInt(pending[i]!.offset) > b.detachedThrough; i--) pending[i] = copy(pending[i]!);
  b.records = pending;
  b.start = 0;
  b.detachedThrough = BigInt(pending[pending.length - 1]!.offset);
}

/** Pending records of a buffer. */
export const pendingCount = (b: InputBuffer<unknown>): number => b.records.length - b.start;

/** The records of a fetched batch not buffered yet (kafkajs fetches from the committed offset again after a rebalance). */
export function freshRecords<M extends { offset: string }>(b: InputBuffer<M>, records: M[]): M[] {
  if (records.length === 0 || BigInt(records[0]!.offset) > b.through) return records;
  return records.filter((m) => BigInt(m.offset) > b.through);
}

/** Appends fresh records (freshRecords) after the pending ones; the array given is not changed later. */
export function appendRecords<M extends { offset: string }>(b: InputBuffer<M>, fresh: M[]): void {
  if (fresh.length === 0) return;
  b.records = pendingCount(b) === 0 ? fresh : b.records.slice(b.start).concat(fresh);
  b.start = 0;
  b.through = BigInt(fresh[fresh.length - 1]!.offset);
}

/** Drops the records before `index` (they were committed). */
export function dropBefore<M>(b: InputBuffer<M>, index: number): void {
  b.start = index;
  if (b.start === b.records.length) {
    b.records = [];
    b.start = 0;
  } else if (b.start > 4096 && b.start * 2 > b.records.length) {
    b.records = b.records.slice(b.start);
    b.start = 0;
  }
}

/**
 * The input whose head goes next: the earliest head among the inputs that have one (ties: the
 * first in the positions' order), if it is within its alignBound; undefined when every input
 * must wait for a fetch. Heads are the positions' `head` fields.
 */
export function nextInput(positions: TaskPositions): string | undefined {
  let best: string | undefined;
  let bestAt = Number.POSITIVE_INFINITY;
  for (const [t, p] of positions) {
    if (p.head !== undefined && (best === undefined || p.head < bestAt)) {
      best = t;
      bestAt = p.head;
    }
  }
  if (best === undefined || bestAt > alignBound(positions, best)) return undefined;
  return best;
}
