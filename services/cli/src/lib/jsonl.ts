// Streaming JSON-lines reader: yields { line number, parsed value or parse error }.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

export type JsonLine = { line: number; raw: string } & ({ value: unknown } | { error: string });

export async function* readJsonLines(path: string): AsyncGenerator<JsonLine> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let line = 0;
  for await (const raw of rl) {
    line++;
    if (raw.trim() === '') continue;
    try {
      yield { line, raw, value: JSON.parse(raw) as unknown };
    } catch (e) {
      yield { line, raw, error: `malformed JSON: ${(e as Error).message}` };
    }
  }
}
