// Heartbeats (pos.heartbeats.v1) into the rule engine: validated like transactions (a record that
// breaks the contract goes to the DLQ, as the backtest rejects the same line), then applied through
// engine.onHeartbeat in the partition's task, inside the same Kafka transaction as its outputs and
// offsets. Heartbeats are keyed by merchant_id like transactions (co-partitioned), so one task sees
// both streams of its merchants.
import { InvalidValueError, validateHeartbeat, type Heartbeat } from '@tillwatch/schemas';
import type { EngineOutput, RuleEngine } from '@tillwatch/rules';
import { InvalidRecordError } from '@tillwatch/stream';
import { STREAM_CLOCK_TERMINAL } from './stream-clock.js';

/** Validates a decoded heartbeat (contract rules Avro cannot express); poison -> InvalidRecordError (DLQ). */
export function validateHeartbeatRecord(raw: Heartbeat, o: { maxClockSkewMs: number }): Heartbeat {
  try {
    return validateHeartbeat(raw, o);
  } catch (e) {
    if (e instanceof InvalidValueError) throw new InvalidRecordError(`heartbeat: ${e.message}`, { cause: e, errorClass: e.errorClass, stage: 'validate' });
    throw e;
  }
}

/**
 * One heartbeat through the engine. The stream-clock heartbeat (closeStreamTime: replay and tests end
 * a partition's clock with it) only moves the clock: it is no terminal, so no rule may watch it.
 */
export function applyHeartbeat(engine: RuleEngine, h: Heartbeat): EngineOutput {
  if (h.terminal_id === STREAM_CLOCK_TERMINAL) return engine.advanceClock(h.received_time);
  return engine.onHeartbeat(h);
}
