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
