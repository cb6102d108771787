// Streaming JSON-lines reader: yields { line number, parsed value or parse error }.
import { constants, createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
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

/** The input file exists, is a file and is readable; otherwise an error naming it (before any connection is made). */
export async function assertReadableFile(path: string): Promise<void> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new Error(`${path} is not a file`);
    await access(path, constants.R_OK);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') throw new Error(`events file ${path} does not exist`, { cause: e });
    if (code === 'EACCES') throw new Error(`events file ${path} is not readable`, { cause: e });
    throw e;
  }
}
