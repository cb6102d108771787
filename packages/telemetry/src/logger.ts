// Structured JSON logs (pino). A redaction list keeps card data out of logs even if a record is
// logged whole by mistake: only tokens exist in the contract, but a PAN must never reach a log.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  service: string;
  level?: LevelWithSilent;
  /** Destination stream (tests pass a buffer); default stdout. */
  destination?: NodeJS.WritableStream;
}

const REDACT = ['pan', '*.pan', 'card_number', '*.card_number', 'password', '*.password', 'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization', 'req.headers["x-api-key"]'];

export function createLogger({ service, level = 'info', destination }: LoggerOptions): Logger {
  const opts = { name: service, level, redact: { paths: REDACT, censor: '[redacted]' }, base: { service } };
  return destination ? pino(opts, destination as unknown as pino.DestinationStream) : pino(opts);
}
