// Server-sent events over fetch(). EventSource cannot send a header, and the API key must not go
// into a URL (it would reach the server's logs), so the stream is read with fetch() and a header,
// and parsed here by the rules of https://html.spec.whatwg.org/multipage/server-sent-events.html
// (fields, comments, CR/LF/CRLF line ends, multi-line data, retry). The parser is pure.

/**
 * @typedef {object} SseEvent
 * @property {string} event
 * @property {string} data
 * @property {string} id
 */

/**
 * @param {(e: SseEvent) => void} onEvent
 * @param {(ms: number) => void} [onRetry]
 */
export function createSseParser(onEvent, onRetry) {
  let buffer = '';
  let data = /** @type {string[]} */ ([]);
  let event = '';
  let lastId = '';
  let pendingCR = false;

  /** @param {string} line */
  const line = (line) => {
    if (line === '') {
      if (data.length > 0) onEvent({ event: event || 'message', data: data.join('\n'), id: lastId });
      data = [];
      event = '';
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id' && !value.includes('\0')) lastId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) onRetry?.(Number(value));
  };

  return {
    /** @param {string} chunk */
    push(chunk) {
      let text = chunk;
      // A CR at the end of the previous chunk and an LF at the start of this one are one line end.
      if (pendingCR && text.startsWith('\n')) text = text.slice(1);
      pendingCR = false;
      buffer += text;
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const c = buffer[i];
        if (c !== '\n' && c !== '\r') continue;
        line(buffer.slice(start, i));
        if (c === '\r') {
          if (i + 1 === buffer.length) pendingCR = true;
          else if (buffer[i + 1] === '\n') i++;
        }
        start = i + 1;
      }
      buffer = buffer.slice(start);
    },
  };
}
