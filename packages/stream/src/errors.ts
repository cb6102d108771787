// The three error classes of the pipeline (DESIGN.md, "Errors have classes"):
// - RetriableError: the world is temporarily broken (broker, registry, ClickHouse down). Back off,
//   keep offsets, try again. Never advances past the record.
// - FatalError: our configuration or environment is wrong. Exit non-zero with the message.
// - PoisonRecordError: this record can never be processed. Send it to the DLQ with the reason and
//   its coordinates, then move on. Never silently dropped.

export abstract class TillwatchError extends Error {
  abstract readonly kind: 'retriable' | 'fatal' | 'poison';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class RetriableError extends TillwatchError {
  override name = 'RetriableError';
  readonly kind = 'retriable' as const;
}

export class FatalError extends TillwatchError {
  override name = 'FatalError';
  readonly kind = 'fatal' as const;
}

/**
 * Where a poison record was refused, the second half of the DLQ `stage` (`detector.decode`,
 * `detector.validate`, as schemas/clickhouse/004_dead_letters.sql documents): decode = the bytes are
 * not a record of the contract (not Avro, unknown schema id); validate = a record whose values
 * break the contract (negative amount, PAN-like token, times out of bounds, clock skew).
 */
export type PoisonStage = 'decode' | 'validate';

export class PoisonRecordError extends TillwatchError {
  override name = 'PoisonRecordError';
  readonly kind = 'poison' as const;
  readonly stage: PoisonStage;
  /** Short stable class for the DLQ record and the metric label. */
  constructor(readonly errorClass: string, message: string, options?: { cause?: unknown; stage?: PoisonStage }) {
    super(message, options);
    this.stage = options?.stage ?? 'decode';
  }
}

export class UndecodableRecordError extends PoisonRecordError {
  override name = 'UndecodableRecordError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('UndecodableRecord', message, options);
  }
}

export class UnknownSchemaIdError extends PoisonRecordError {
  override name = 'UnknownSchemaIdError';
  constructor(readonly schemaId: number) {
    super('UnknownSchemaId', `schema id ${schemaId} is not known to the registry`);
  }
}

/** A record the consumer cannot use: error class InvalidValue unless given (e.g. ClockSkew). */
export class InvalidRecordError extends PoisonRecordError {
  override name = 'InvalidRecordError';
  constructor(message: string, options?: { cause?: unknown; errorClass?: string; stage?: PoisonStage }) {
    super(options?.errorClass ?? 'InvalidValue', message, options);
  }
}

export class RegistryUnavailableError extends RetriableError {
  override name = 'RegistryUnavailableError';
}

export class SchemaIncompatibleError extends FatalError {
  override name = 'SchemaIncompatibleError';
  constructor(readonly subject: string, detail: string) {
    super(`schema for subject ${subject} is incompatible with the registered versions (${detail})`);
  }
}

export const isRetriable = (e: unknown): e is RetriableError => e instanceof RetriableError;
export const isPoison = (e: unknown): e is PoisonRecordError => e instanceof PoisonRecordError;

/** How to start Kafka and the registry on this machine (the local stack). */
export const LOCAL_STACK_HINT = 'start it locally with `npx tillwatch stack up`';

/**
 * A dependency (Kafka, the schema registry, ClickHouse) cannot be reached at all. Fatal for a
 * command or a starting service: its message is the one line a user reads, naming the dependency,
 * its address and how to start it locally.
 */
export class DependencyUnavailableError extends FatalError {
  override name = 'DependencyUnavailableError';
  constructor(readonly dependency: 'Kafka' | 'schema registry' | 'ClickHouse', readonly address: string, detail: string, readonly hint: string, options?: { cause?: unknown }) {
    super(`${dependency} is unreachable at ${address} (${detail}); ${hint}`, options);
  }
}

/** The dependency answered, but refused this client (credentials, SASL mechanism, TLS): not a stack to start. */
export class DependencyRefusedError extends FatalError {
  override name = 'DependencyRefusedError';
  constructor(readonly dependency: 'Kafka', readonly address: string, detail: string, readonly hint: string, options?: { cause?: unknown }) {
    super(`${dependency} at ${address} answered but refused this client (${detail}); ${hint}`, options);
  }
}

/** A topic the command needs was never created. */
export class TopicMissingError extends FatalError {
  override name = 'TopicMissingError';
  constructor(readonly topic: string, brokers: string) {
    super(`topic ${topic} does not exist on Kafka at ${brokers}; create the topics with \`npx tillwatch provision\``);
  }
}
