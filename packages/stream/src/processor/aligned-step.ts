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
import type { InputBuffer, TaskPositions } from './align.js';
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
  // Per input, in the positions' order (nextInput's tie-break): arrays, not maps, on the per-record path.
  const topics = [...s.positions.keys()];
  const n = topics.length;
  const buffers = topics.map((t) => s.buffers.get(t)!);
  const inputs = topics.map((t) => s.inputs.get(t)!);
  const pos = topics.map((t) => s.positions.get(t)!);
  const cursor = buffers.map((b) => b.start);
  const headMessage: Array<KafkaMessage | undefined> = new Array<KafkaMessage | undefined>(n).fill(undefined);
  const headValue: unknown[] = new Array<unknown>(n).fill(undefined);
  const count = new Array<number>(n).fill(0);
  const dead: OutputMessage[] = [];

  // The next non-poison record of input k becomes its head (poison ones on the way go to the DLQ).
  const fill = (k: number): void => {
    const buffer = buffers[k]!;
    const input = inputs[k]!;
    const p = pos[k]!;
    const records = buffer.records;
    let i = cursor[k]!;
    headMessage[k] = undefined;
    headValue[k] = undefined;
    p.head = undefined;
    for (; i < records.length; i++) {
      const m = records[i]!;
      let value: unknown;
      try {
        value = input.decode(m.value, s.partition);
      } catch (e) {
        if (!isPoison(e)) throw e;
        dead.push(s.deadLetter(m, topics[k]!, e));
        continue;
      }
      headMessage[k] = m;
      headValue[k] = value;
      p.head = input.time!(value);
      break;
    }
    cursor[k] = i;
    p.caughtUp = p.head === undefined && buffer.fetchedToEnd;
  };
  for (let k = 0; k < n; k++) fill(k);

  // nextInput (align.ts) on the arrays: the earliest head (ties: the first input), if within its bound.
  const next = (): number => {
    let best = -1;
    let bestAt = Number.POSITIVE_INFINITY;
    for (let k = 0; k < n; k++) {
      const h = pos[k]!.head;
      if (h !== undefined && (best < 0 || h < bestAt)) {
        best = k;
        bestAt = h;
      }
    }
    if (best < 0) return -1;
    for (let k = 0; k < n; k++) {
      const p = pos[k]!;
      if (k === best || p.caughtUp) continue;
      if (bestAt > (p.head ?? p.last ?? Number.NEGATIVE_INFINITY)) return -1;
    }
    return best;
  };

  const messages: OutputMessage[] = [];
  const done: Array<() => void> = [];
  const mixed = s.task.processMixed !== undefined;
  let runInput = -1;
  let run: DecodedRecord[] = [];
  const flush = () => {
    if (run.length === 0) return;
    const result = mixed ? s.task.processMixed!(run, s.wallMs) : s.task.process(topics[runInput]!, run, s.wallMs);
    for (const m of result.messages) messages.push(m);
    if (result.committed) done.push(result.committed);
    run = [];
  };
  let sinceYield = 0;
  for (let k = next(); k >= 0; k = next()) {
    if ((k !== runInput && !mixed) || run.length >= s.chunk) flush();
    runInput = k;
    const m = headMessage[k]!;
    const p = pos[k]!;
    run.push({ topic: topics[k]!, partition: s.partition, offset: m.offset, key: m.key, value: headValue[k] });
    count[k]!++;
    p.last = p.head;
    cursor[k]!++;
    fill(k);
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
  const decoded = new Map<string, number>();
  for (let k = 0; k < n; k++) {
    const buffer = buffers[k]!;
    const at = cursor[k]!;
    if (count[k]! > 0) decoded.set(topics[k]!, count[k]!);
    if (at === buffer.start) continue;
    taken.set(topics[k]!, at);
    offsets.push({ topic: topics[k]!, offset: at < buffer.records.length ? BigInt(buffer.records[at]!.offset) : buffer.through + 1n });
  }
  if (offsets.length === 0) return undefined;
  for (const m of dead) messages.push(m);
  return { messages, offsets, taken, decoded, done };
}
