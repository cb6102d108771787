// Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary body.
// Decoding resolves the writer's schema (any registered version) to our reader schema, so events
// written with a newer compatible version (an added optional field) decode as our contract.
// Times stay numbers (epoch ms): no avsc logical-type implementations are registered, which is
// the single place that decision is made.
import avro from 'avsc';
import { UndecodableRecordError, UnknownSchemaIdError, InvalidRecordError } from '../errors.js';
import type { RegistryClient } from './client.js';

const MAGIC = 0;
const UNKNOWN_RETRY_MS = 30_000;

export interface AvroSerde<T> {
  /** Registers the reader schema under the subject (idempotent) and learns its id for encoding. */
  init(): Promise<number>;
  encode(value: T): Buffer;
  /** Fetches every writer schema referenced by these buffers; call before decode() of a batch. */
  prefetch(buffers: Iterable<Buffer | null>): Promise<void>;
  /** Synchronous after prefetch: throws UndecodableRecordError, UnknownSchemaIdError or InvalidRecordError. */
  decode(buffer: Buffer | null): T;
  readonly subject: string;
  schemaId(): number;
}

export function schemaIdOf(buf: Buffer): number | undefined {
  if (buf.length < 5 || buf[0] !== MAGIC) return undefined;
  return buf.readUInt32BE(1);
}

export function createAvroSerde<T>(registry: RegistryClient, subject: string, readerSchema: object): AvroSerde<T> {
  const reader = avro.Type.forSchema(readerSchema as avro.Schema);
  const readerFingerprint = reader.fingerprint('sha256').toString('hex');
  let ownId = -1;
  // id -> decoder (identity when the writer schema equals ours), or the poison error for that id.
  const decoders = new Map<number, ((body: Buffer) => T) | UnknownSchemaIdError | InvalidRecordError>();
  decoders.set(-1, new InvalidRecordError('not initialised'));
  const unknownSince = new Map<number, number>();

  const learn = async (id: number): Promise<void> => {
    const known = decoders.get(id);
    // An id the registry did not know is asked again after a while: a producer may have raced a
    // registry replica. Until then its records are poison.
    if (known !== undefined && !(known instanceof UnknownSchemaIdError && Date.now() - (unknownSince.get(id) ?? 0) > UNKNOWN_RETRY_MS)) return;
    let writerSchema: object;
    try {
      writerSchema = await registry.getSchemaById(id);
    } catch (e) {
      if (e instanceof UnknownSchemaIdError) {
        decoders.set(id, e);
        unknownSince.set(id, Date.now());
        return;
      }
      throw e; // retriable: registry down
    }
    unknownSince.delete(id);
    let writer: avro.Type;
    try {
      writer = avro.Type.forSchema(writerSchema as avro.Schema);
    } catch (cause) {
      // The id names something that is not an Avro schema we can parse (registries share ids
      // across artifact types): its records are poison, not a reason to stop.
      decoders.set(id, new InvalidRecordError(`schema id ${id} is not a readable Avro schema: ${(cause as Error).message}`, { cause }));
      return;
    }
    if (writer.fingerprint('sha256').toString('hex') === readerFingerprint) {
      decoders.set(id, (body) => reader.fromBuffer(body) as T);
      return;
    }
    try {
      const resolver = reader.createResolver(writer);
      decoders.set(id, (body) => reader.fromBuffer(body, resolver) as T);
    } catch (cause) {
      decoders.set(id, new InvalidRecordError(`writer schema id ${id} cannot be read as ${subject}: ${(cause as Error).message}`, { cause }));
    }
  };

  return {
    subject,
    schemaId: () => ownId,
    async init() {
      ownId = await registry.register(subject, readerSchema);
      decoders.set(ownId, (body) => reader.fromBuffer(body) as T);
      return ownId;
    },
    encode(value) {
      if (ownId < 0) throw new Error(`serde for ${subject} used before init()`);
      const body = reader.toBuffer(value);
      const out = Buffer.allocUnsafe(5 + body.length);
      out[0] = MAGIC;
      out.writeUInt32BE(ownId, 1);
      body.copy(out, 5);
      return out;
    },
    async prefetch(buffers) {
      const ids = new Set<number>();
      for (const b of buffers) {
        if (!b) continue;
        const id = schemaIdOf(b);
        if (id !== undefined && (!decoders.has(id) || decoders.get(id) instanceof UnknownSchemaIdError)) ids.add(id);
      }
      await Promise.all([...ids].map(learn));
    },
    decode(buffer) {
      if (!buffer || buffer.length === 0) throw new UndecodableRecordError('empty value (null or zero bytes)');
      const id = schemaIdOf(buffer);
      if (id === undefined) throw new UndecodableRecordError(`not in Confluent wire format (magic byte ${buffer[0] ?? 'none'}, length ${buffer.length})`);
      const d = decoders.get(id);
      // A programming error, not a poison record: the batch was not prefetched.
      if (d === undefined) throw new Error(`schema id ${id} of ${subject} was not prefetched before decode()`);
      if (d instanceof Error) throw d;
      try {
        return d(buffer.subarray(5));
      } catch (cause) {
        throw new UndecodableRecordError(`Avro body does not decode with schema id ${id}: ${(cause as Error).message}`, { cause });
      }
    },
  };
}
