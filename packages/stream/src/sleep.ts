// One wait for the runtime's backoffs (processor retries, sink flush retries): it can be cut short
// by an AbortSignal, so a stop or a revoked partition does not sit out a long backoff.

/** Resolves after ms, or at once when the signal aborts (it never rejects). */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
