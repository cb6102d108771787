// The API as the console calls it: same origin, the key in the x-api-key header (never in a URL),
// JSON in and out, the API's error messages shown as they are.
import { createSseParser } from './sse.js';

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * @param {{ getKey: () => string | null, onUnauthorized: () => void }} deps
 */
export function createApi({ getKey, onUnauthorized }) {
  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @param {AbortSignal} [signal]
   */
  async function call(method, path, body, signal) {
    const key = getKey();
    /** @type {Record<string, string>} */
    const headers = { accept: 'application/json' };
    if (key) headers['x-api-key'] = key;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, { method, headers, cache: 'no-store', credentials: 'omit', ...(body !== undefined ? { body: JSON.stringify(body) } : {}), ...(signal ? { signal } : {}) });
    const text = await res.text();
    /** @type {unknown} */
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      if (res.status === 401) onUnauthorized();
      const message = json && typeof json === 'object' && 'message' in json ? String(json.message) : `HTTP ${res.status}`;
      throw new ApiError(res.status, message);
    }
    return json;
  }

  return {
    /**
     * @template T
     * @param {string} path
     * @param {AbortSignal} [signal]
     * @returns {Promise<T>}
     */
    get: (path, signal) => /** @type {Promise<T>} */ (call('GET', path, undefined, signal)),
    /**
     * @template T
     * @param {string} path
     * @param {unknown} body
     * @returns {Promise<T>}
     */
    post: (path, body) => /** @type {Promise<T>} */ (call('POST', path, body)),

    /**
     * Follow an SSE stream until the signal aborts; reconnects after the server's retry delay
     * (an API restart, a proxy timeout). onState reports 'live' / 'reconnecting'; onOpen runs on
     * every (re)connection, so the caller can reload what it missed (the API does not replay).
     * @param {string} path
     * @param {{ signal: AbortSignal, onEvent: (e: import('./sse.js').SseEvent) => void, onState: (s: 'connecting' | 'live' | 'reconnecting' | 'closed') => void, onOpen?: (reconnected: boolean) => void }} o
     */
    async stream(path, o) {
      let retryMs = 5000;
      let opened = false;
      while (!o.signal.aborted) {
        o.onState(opened ? 'reconnecting' : 'connecting');
        try {
          const key = getKey();
          const res = await fetch(path, { headers: { accept: 'text/event-stream', ...(key ? { 'x-api-key': key } : {}) }, cache: 'no-store', credentials: 'omit', signal: o.signal });
          if (res.status === 401) {
            onUnauthorized();
            break;
          }
          if (!res.ok || !res.body) throw new ApiError(res.status, `stream answered HTTP ${res.status}`);
          o.onState('live');
          o.onOpen?.(opened);
          opened = true;
          const parser = createSseParser(o.onEvent, (ms) => {
            retryMs = Math.min(Math.max(ms, 1000), 60_000);
          });
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            parser.push(value);
          }
        } catch (e) {
          if (o.signal.aborted) break;
          void e;
        }
        if (o.signal.aborted) break;
        o.onState('reconnecting');
        await new Promise((resolve) => {
          const t = window.setTimeout(resolve, retryMs);
          o.signal.addEventListener('abort', () => {
            window.clearTimeout(t);
            resolve(undefined);
          });
        });
      }
      o.onState('closed');
    },
  };
}
