// The life of a service process (detector, sink): start, run until a signal or a fatal error, stop
// within a deadline. Fail fast and loud:
// - a fatal error at start (a dependency unreachable, a schema refused) or at run time (onFatal)
//   prints one line, turns /healthz unhealthy at once (a liveness probe sees the process is dying,
//   not a green process that never gets ready), stops, and resolves with exit code 1;
// - a stop (SIGTERM, SIGINT, fatal) that does not finish within the deadline is abandoned: the
//   promise resolves anyway, non-zero (work was left), and the owner exits the process.
import type { Logger } from '@tillwatch/telemetry';

export interface ServiceLifecycleOptions {
  /** e.g. `detector`: prefixes the one-line messages (`tillwatch detector: fatal: ...`). */
  service: string;
  logger: Logger;
  /** How long stop + close may take before the process gives up on them. */
  shutdownTimeoutMs: number;
  /** Where the one-line messages go (stderr). */
  print?: (line: string) => void;
  /** Test seam: the process object whose signals end the run. */
  signals?: Pick<NodeJS.Process, 'once' | 'off'>;
}

/**
 * After a fatal error the stop only tidies up (leave the group, close clients): the work cannot go
 * on anyway. It gets at most this long, so a fatal error ends the process within 10 s.
 */
export const FATAL_STOP_TIMEOUT_MS = 8_000;

export interface ServiceHooks {
  /** Connects and starts the work; a rejection is a fatal start-up error. */
  start(): Promise<void>;
  /** Stops the work (finishes the batch in flight, flushes, leaves the group). */
  stop(): Promise<void>;
  /** Closes what is left (ops server, ClickHouse handle), after stop. */
  close?(): Promise<void>;
}

export interface ServiceLifecycle {
  /** Liveness: false from the moment the process decided to die. */
  healthy(): boolean;
  /** A fatal error at run time (the services' onFatal): stop and exit 1. */
  fail(error: Error): void;
  /** Starts and resolves with the exit code once stopped (or the deadline passed). */
  run(hooks: ServiceHooks): Promise<number>;
}

export function createServiceLifecycle(o: ServiceLifecycleOptions): ServiceLifecycle {
  const print = o.print ?? ((line: string) => console.error(line));
  const signals = o.signals ?? process;
  let dying = false;
  let pendingFatal: Error | undefined;
  let onFail: ((e: Error) => void) | undefined;

  return {
    healthy: () => !dying,
    fail(error) {
      if (dying) return;
      dying = true;
      if (onFail) onFail(error);
      else pendingFatal = error;
    },
    run(hooks) {
      return new Promise<number>((resolve) => {
        let finishing = false;
        const finish = (code: number) => {
          if (finishing) return;
          finishing = true;
          signals.off('SIGTERM', onSignal);
          signals.off('SIGINT', onSignal);
          const timeoutMs = code === 0 ? o.shutdownTimeoutMs : Math.min(o.shutdownTimeoutMs, FATAL_STOP_TIMEOUT_MS);
          const deadline = setTimeout(() => {
            o.logger.error({ timeoutMs }, 'stop did not finish in time: exiting anyway');
            print(`tillwatch ${o.service}: stop did not finish within ${timeoutMs / 1000} s${code === 0 ? ' (SHUTDOWN_TIMEOUT_MS)' : ''}; exiting with work left`);
            resolve(code === 0 ? 1 : code);
          }, timeoutMs);
          void (async () => {
            let result = code;
            try {
              await hooks.stop();
            } catch (err) {
              o.logger.error({ err }, `${o.service} stop failed`);
              result = 1;
            }
            try {
              await hooks.close?.();
            } catch (err) {
              o.logger.error({ err }, `${o.service} close failed`);
              result = 1;
            }
            clearTimeout(deadline);
            resolve(result);
          })();
        };
        const onSignal = (signal: NodeJS.Signals) => {
          o.logger.info({ signal }, `stopping ${o.service}`);
          finish(0);
        };
        onFail = (e) => {
          o.logger.fatal({ err: e }, `${o.service} cannot continue`);
          print(`tillwatch ${o.service}: fatal: ${e.message}`);
          finish(1);
        };
        signals.once('SIGTERM', onSignal);
        signals.once('SIGINT', onSignal);
        if (pendingFatal) {
          onFail(pendingFatal);
          return;
        }
        hooks.start().then(
          () => undefined,
          (e: unknown) => {
            const err = e instanceof Error ? e : new Error(String(e));
            if (!dying) {
              dying = true;
              onFail!(err);
            }
          },
        );
      });
    },
  };
}
