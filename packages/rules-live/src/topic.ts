// The Kafka side of pos.rules.v1: a follower (every instance reads everything, its own
// non-transactional reader, no committed offsets), a one-shot read, and the publisher behind
// `tillwatch rules push` and `PUT /rules`.
import { createHash, randomUUID } from 'node:crypto';
import { Partitioners, type Consumer, type Kafka } from 'kafkajs';
import { AvroSchemas, valueSubject, type RulesDocument, type RulesFormat } from '@tillwatch/schemas';
import { createAvroSerde, type AvroSerde, type RegistryClient } from '@tillwatch/stream';
import type { Logger } from '@tillwatch/telemetry';
import { RulesLedger, RulesVersionError, validateRulesDocument, type ActiveRules, type LedgerOutcome } from './ledger.js';

export interface RulesTopicOptions {
  kafka: Kafka;
  registry: RegistryClient;
  /** pos.rules.v1 under the TOPIC_PREFIX in use. */
  topic: string;
  logger: Logger;
}

export interface RulesFollowerOptions extends RulesTopicOptions {
  /** Consumer group id prefix; a random suffix makes the group private to this instance. */
  groupPrefix?: string;
  /** Every record folded, after the ledger applied it (a new version, a refusal, a duplicate). */
  onOutcome?: (outcome: LedgerOutcome, caughtUp: boolean) => void;
  /** How long start() waits to reach the end of the topic as it was at start. Default 60 s. */
  startTimeoutMs?: number;
}

export interface RulesFollower {
  readonly ledger: RulesLedger;
  /** Reads the topic up to its end as of the call (the latest version before processing), then keeps following. */
  start(): Promise<void>;
  stop(): Promise<void>;
  active(): ActiveRules | null;
}

const rulesSerde = (registry: RegistryClient, topic: string): AvroSerde<RulesDocument> => createAvroSerde<RulesDocument>(registry, valueSubject(topic), AvroSchemas.rulesDocument);

/** True when the topic exists (a pipeline provisioned before live rules has none: TILLWATCH_RULES applies). */
export async function rulesTopicExists(kafka: Kafka, topic: string): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.listTopics()).includes(topic);
  } finally {
    await admin.disconnect();
  }
}

export function createRulesFollower(o: RulesFollowerOptions): RulesFollower {
  const ledger = new RulesLedger();
  const serde = rulesSerde(o.registry, o.topic);
  let consumer: Consumer | undefined;
  let caughtUp = false;

  const fold = (offset: string, value: Buffer | null): void => {
    let outcome: LedgerOutcome;
    if (value === null) outcome = ledger.reject(offset, 'tombstone (null value): a version is never deleted');
    else {
      let rec: RulesDocument | undefined;
      let problem = '';
      try {
        rec = serde.decode(value);
      } catch (e) {
        problem = `not a RulesDocument record: ${(e as Error).message}`;
      }
      outcome = rec ? ledger.apply(rec, offset) : ledger.reject(offset, problem);
    }
    if (outcome.kind === 'rejected') {
      o.logger.error({ topic: o.topic, offset, version: outcome.entry.version, reason: outcome.reason, problems: outcome.entry.problems }, 'rules document refused; the version in force is kept');
    } else if (outcome.kind === 'applied') {
      o.logger.info({ topic: o.topic, offset, version: outcome.active.config.version, pushed_by: outcome.active.entry.pushed_by }, 'rules version read');
    }
    o.onOutcome?.(outcome, caughtUp);
  };

  return {
    ledger,
    active: () => ledger.active(),
    async start() {
      const admin = o.kafka.admin();
      await admin.connect();
      const ends = await admin.fetchTopicOffsets(o.topic).finally(() => admin.disconnect());
      // The end as of now: what must be read before the caller processes anything.
      const target = new Map(ends.filter((e) => BigInt(e.high) > BigInt(e.low)).map((e) => [e.partition, BigInt(e.high)]));
      let resolveCaughtUp!: () => void;
      const reached = new Promise<void>((r) => (resolveCaughtUp = r));
      const check = () => {
        if (!caughtUp && target.size === 0) {
          caughtUp = true;
          resolveCaughtUp();
        }
      };
      check();
      consumer = o.kafka.consumer({ groupId: `${o.groupPrefix ?? 'tillwatch-rules'}.${randomUUID()}`, maxWaitTimeInMs: 250, readUncommitted: false, retry: { retries: 8 } });
      await consumer.connect();
      await consumer.subscribe({ topic: o.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
          // Writer schemas first (a registry outage throws: kafkajs fetches the batch again).
          await serde.prefetch(batch.messages.map((m) => m.value));
          for (const m of batch.messages) {
            fold(m.offset, m.value);
            resolveOffset(m.offset);
            const end = target.get(batch.partition);
            if (end !== undefined && BigInt(m.offset) + 1n >= end) target.delete(batch.partition);
          }
          check();
          await heartbeat();
        },
      });
      const timeoutMs = o.startTimeoutMs ?? 60_000;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`rules: did not read ${o.topic} to its end within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        await Promise.race([reached, timeout]);
      } catch (e) {
        await consumer.disconnect().catch(() => undefined);
        throw e;
      } finally {
        clearTimeout(timer);
      }
    },
    async stop() {
      await consumer?.disconnect();
      consumer = undefined;
    },
  };
}

/** Reads the whole topic once (CLI `rules show` / `rules history`, `rules push`'s version check). */
export async function readRulesLedger(o: RulesTopicOptions): Promise<RulesLedger> {
  // Refusals are shown by the caller (history), not logged as errors.
  const quiet = o.logger.child({}, { level: 'fatal' });
  const f = createRulesFollower({ ...o, logger: quiet, groupPrefix: 'tillwatch-rules-read' });
  await f.start();
  await f.stop();
  return f.ledger;
}

export interface PushRequest {
  text: string;
  format: RulesFormat;
  pushedBy: string;
  via: 'cli' | 'api';
  comment?: string | null;
  /** Wall clock, epoch ms (injected for tests). */
  now?: number;
}

export interface PushResult {
  version: number;
  previousVersion: number | null;
  offset: string;
  record: RulesDocument;
}

/**
 * Validates (RulesConfigError with every problem), checks the version is greater than the one in force
 * (RulesVersionError), then publishes (acks=all, idempotent). Two concurrent pushes of the same version
 * can both pass the check; the ledger then keeps the first one and refuses the second (documented).
 */
export async function pushRulesDocument(o: RulesTopicOptions, req: PushRequest): Promise<PushResult> {
  const config = validateRulesDocument(req.text, req.format);
  const ledger = await readRulesLedger(o);
  const active = ledger.active();
  if (active && config.version <= active.config.version) throw new RulesVersionError(config.version, active.config.version);
  const record: RulesDocument = {
    version: config.version,
    format: req.format,
    document: req.text,
    pushed_by: req.pushedBy,
    pushed_at: req.now ?? Date.now(),
    via: req.via,
    comment: req.comment ?? null,
  };
  const serde = rulesSerde(o.registry, o.topic);
  await serde.init();
  const producer = o.kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    const value = serde.encode(record);
    const [meta] = await producer.send({ topic: o.topic, acks: -1, messages: [{ key: rulesRecordKey(record.version, value), value }] });
    return { version: record.version, previousVersion: active?.config.version ?? null, offset: meta?.baseOffset ?? '', record };
  } finally {
    await producer.disconnect();
  }
}

/**
 * The key of a pushed record: its version and a digest of its bytes (`4:1f0c…`). Compaction keeps
 * the last record per key, so with the version alone a record written straight to the topic under a
 * good version's key (say a broken document as "4") would, once compacted away, leave detectors that
 * start later on an older version. With the digest, only an identical record shares a key: compaction
 * removes nothing but exact copies, and every pushed record stays in the history.
 */
export function rulesRecordKey(version: number, value: Buffer): string {
  return `${version}:${createHash('sha256').update(value).digest('hex').slice(0, 16)}`;
}

/** Writes a raw record to the topic, bypassing every check (tests: a bad document pushed directly). */
export async function publishRawRulesRecord(o: Omit<RulesTopicOptions, 'logger'>, key: string, value: RulesDocument | Buffer): Promise<void> {
  const serde = rulesSerde(o.registry, o.topic);
  if (!Buffer.isBuffer(value)) await serde.init();
  const producer = o.kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    await producer.send({ topic: o.topic, acks: -1, messages: [{ key, value: Buffer.isBuffer(value) ? value : serde.encode(value) }] });
  } finally {
    await producer.disconnect();
  }
}
