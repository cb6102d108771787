// One step of a task with aligned inputs (align.ts): the records its inputs have buffered are
// taken in time order across the inputs, as far as the bound allows, and become the outputs of
// ONE transaction that commits every input's offset at its first record not taken. Consecutive
// records of one input go to the task in runs (one process() call per run, at most `chunk`
// records). The buffers are not changed here: the caller drops the taken records once the
// transaction committed (`taken`); when it fails, they are still pending.
// A task with processMixed() takes the records of every input in one call per chunk (each record
// names its topic), in the same order: with inputs that interleave record by record (a heartbeat
// between two transactions), runs of one topic are one or two records long, and a process() call
// per run cost more than the records in it (issue 10's load check).
import type { KafkaMessage } from 'kafkajs';
import { isPoison, type PoisonRecordError } from '../errors.js';
import { nextInput, type InputBuffer, type TaskPositions } from './align.js';
import type { DecodedRecord, InputTopic, OutputMessage, Task } from './task.js';

export interface AlignedStepInput {
  task: Task;
  partition: number;
  inputs: ReadonlyMap<string, InputTopic>;
  buffers: ReadonlyMap<string, InputBuffer<KafkaMessage>>;
  /** Updated as records are taken (head, last, caughtUp); a failed step's task is restored, which resets them. */
  positions: TaskPositions;
  wallMs: number;
  /** Records per process() call, and between two yields to the event loop. */
  chunk: number;
  deadLetter(message: KafkaMessage, topic: string, error: PoisonRecordError): OutputMessage;
  /** Checked after each yield: true when the task was revoked meanwhile (the step is given up, nothing committed). */
  gone(): boolean;
}

export interface AlignedStep {
  /** The task's outputs and the dead letters (the caller adds the changelog writes). */
  messages: OutputMessage[];
  /** Per input with records taken: the offset to commit (its first record not taken). */
  offsets: Array<{ topic: string; offset: bigint }>;
  /** Per input with records taken: the buffer index of its first record not taken. */
  taken: Map<string, number>;
  /** Records given to the task, per input (poison records not counted). */
  decoded: Map<string, number>;
  /** The task's after-commit callbacks. */
  done: Array<() => void>;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Takes what the bound allows; undefined when nothing can be taken (or the task is gone). */
export async function alignedStep(s: AlignedStepInput): Promise<AlignedStep | undefined> {
  const cursor = new Map<string, number>();
  const heads = new Map<string, { message: KafkaMessage; value: unknown }>();
  const dead: OutputMessage[] = [];
  const decoded = new Map<string, number>();

  // The next non-poison record of `topic` becomes its head (poison ones on the way go to the DLQ).
  const fill = (topic: string): void => {
    const buffer = s.buffers.get(topic)!;
    const input = s.inputs.get(topic)!;
    const p = s.positions.get(topic)!;
    let i = cursor.get(topic)!;
    heads.delete(topic);
    p.head = undefined;
    for (; i < buffer.records.length; i++) {
      const m = buffer.records[i]!;
      let value: unknown;
      try {
        value = input.decode(m.value);
      } catch (e) {
        if (!isPoison(e)) throw e;
        dead.push(s.deadLetter(m, topic, e));
        continue;
      }
      heads.set(topic, { message: m, value });
      p.head = input.time!(value);
      break;
    }
    cursor.set(topic, i);
    p.caughtUp = p.head === undefined && buffer.fetchedToEnd;
  };
  for (const [topic, buffer] of s.buffers) {
    cursor.set(topic, buffer.start);
    fill(topic);
  }

  const messages: OutputMessage[] = [];
  const done: Array<() => void> = [];
  const mixed = s.task.processMixed !== undefined;
  let runTopic: string | undefined;
  let run: DecodedRecord[] = [];
  const flush = () => {
    if (run.length === 0) return;
    const result = mixed ? s.task.processMixed!(run, s.wallMs) : s.task.process(runTopic!, run, s.wallMs);
    for (const m of result.messages) messages.push(m);
    if (result.committed) done.push(result.committed);
    if (mixed) for (const r of run) decoded.set(r.topic, (decoded.get(r.topic) ?? 0) + 1);
    else decoded.set(runTopic!, (decoded.get(runTopic!) ?? 0) + run.length);
    run = [];
  };
  let sinceYield = 0;
  for (let topic = nextInput(s.positions); topic !== undefined; topic = nextInput(s.positions)) {
    if ((topic !== runTopic && !mixed) || run.length >= s.chunk) {
      flush();
      runTopic = topic;
    }
    const head = heads.get(topic)!;
    const p = s.positions.get(topic)!;
    run.push({ topic, partition: s.partition, offset: head.message.offset, key: head.message.key, value: head.value });
    p.last = p.head;
    cursor.set(topic, cursor.get(topic)! + 1);
    fill(topic);
    if (++sinceYield >= s.chunk) {
      flush();
      sinceYield = 0;
      // Between chunks the event loop runs the keep-alive timer (and other partitions' I/O).
      await yieldToLoop();
      if (s.gone()) return undefined;
    }
  }
  flush();

  const offsets: AlignedStep['offsets'] = [];
  const taken = new Map<string, number>();
  for (const [topic, buffer] of s.buffers) {
    const at = cursor.get(topic)!;
    if (at === buffer.start) continue;
    taken.set(topic, at);
    offsets.push({ topic, offset: at < buffer.records.length ? BigInt(buffer.records[at]!.offset) : buffer.through + 1n });
  }
  if (offsets.length === 0) return undefined;
  for (const m of dead) messages.push(m);
  return { messages, offsets, taken, decoded, done };
}
