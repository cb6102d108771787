// The contract between the transactional processor (Kafka plumbing) and the work it runs per
// partition (the detector's rule engine). A Task owns the state of one partition number across
// all co-partitioned input topics.

export interface DecodedRecord<T = unknown> {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: T;
}

export interface OutputMessage {
  topic: string;
  key: string | Buffer | null;
  value: Buffer | null;
  /** Explicit partition; default: the key's hash (murmur2, Java-compatible). */
  partition?: number;
}

export interface TaskResult {
  messages: OutputMessage[];
  /** Called once the transaction holding these messages has committed (metrics, live views). */
  committed?: () => void;
}

export interface Task {
  /** Load committed state (latest value per changelog key). Called once, before any batch. */
  restore(entries: Map<string, Buffer>): void;
  /**
   * Processes decoded records of one topic-partition batch (arrival order). The processor may
   * split a fetched batch into several calls (1,000 records each), committed in one transaction
   * with the changes taken after the last of them.
   */
  process(topic: string, records: DecodedRecord[], wallMs: number): TaskResult;
  /**
   * Optional, used under `alignInputs`: records of any of the task's input topics (each names its
   * own), in the order to apply them; the same as process() called once per run of one topic.
   */
  processMixed?(records: DecodedRecord[], wallMs: number): TaskResult;
  /** Wall-clock tick: timers that must fire while a partition is quiet. */
  tick(wallMs: number): TaskResult;
  /** Changelog writes since the last call; null = tombstone. */
  takeChanges(): Array<[key: string, value: Buffer | null]>;
}

export interface InputTopic {
  topic: string;
  /** Fetches whatever the decoder needs for these values (writer schemas); may throw retriable errors. */
  prefetch?(values: (Buffer | null)[]): Promise<void>;
  /**
   * Decodes and validates one value of the given partition (the task's: a check may depend on what
   * that task applies, e.g. the rules version of its batch); throws PoisonRecordError for records
   * that can never be processed.
   */
  decode(value: Buffer | null, partition: number): unknown;
  /** Record time of a decoded value (e.g. received_time): the order of inputs under `alignInputs`. */
  time?(value: unknown): number;
}
