// One way to build a dead letter (schemas/avro/dead-letter.avsc) for every stage that gives up on a
// record: the detector's decode stage, the sink's write stage. The raw key and value travel with the
// reason and the source coordinates, so nothing is silently dropped and everything can be replayed.
import type { DeadLetter } from '@tillwatch/schemas';
import type { OutputMessage } from './processor/task.js';

/** The consumed record a dead letter is about. */
export interface DeadLetterSource {
  topic: string;
  partition: number;
  /** Kafka offset as kafkajs gives it (a decimal string). */
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
}

/** Why and where it failed. */
export interface DeadLetterFailure {
  /** Short stable class (DLQ record field and metric label), e.g. UndecodableRecord, ClickHouseRejected. */
  errorClass: string;
  /** Human-readable cause. */
  reason: string;
  /** `detector.decode`, `detector.validate`, `sink.decode`, `sink.write` (004_dead_letters.sql). */
  stage: string;
}

export function toDeadLetter(source: DeadLetterSource, failure: DeadLetterFailure, failedAt: number): DeadLetter {
  return {
    reason: failure.reason,
    error_class: failure.errorClass,
    stage: failure.stage,
    source_topic: source.topic,
    source_partition: source.partition,
    source_offset: Number(source.offset),
    key: source.key,
    value: source.value,
    failed_at: failedAt,
  };
}

/** DLQ message key: the source coordinates (the same a dead_letters row is deduplicated on, with the stage). */
export const deadLetterKey = (source: Pick<DeadLetterSource, 'topic' | 'partition' | 'offset'>): string => `${source.topic}/${source.partition}/${source.offset}`;

/** A ready-to-send message for the DLQ topic; `encode` is the topic's Avro serde (through the registry). */
export function deadLetterMessage(dlqTopic: string, encode: (d: DeadLetter) => Buffer, source: DeadLetterSource, failure: DeadLetterFailure, failedAt: number): OutputMessage {
  return { topic: dlqTopic, key: deadLetterKey(source), value: encode(toDeadLetter(source, failure, failedAt)) };
}
