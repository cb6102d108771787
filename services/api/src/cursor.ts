// Pagination cursor: the sort key (detected_at ms, alert_id) of the last row of a page.
// Pages are "rows strictly after the cursor in (detected_at DESC, alert_id DESC) order", so a new
// alert (newer detected_at) never shifts later pages: no duplicates, no gaps while paging. An alert
// inserted late with an OLD detected_at shows up on the page where it belongs by time.
//
// Format `<detected_at in base 36>.<base64url(alert_id)>`, described exactly by CURSOR_PATTERN: every
// string the schema accepts is a position in the list order (any bytes are a valid alert_id to
// compare with), so a schema-valid cursor is never refused (the contract Schemathesis checks), and
// a refused one is always a 400 from the schema. Base 36, not decimal: 13 decimal digits of epoch ms
// can pass the Luhn check and would be masked as a card number in the response. Clients should
// still treat it as opaque.

export interface Cursor {
  /** detected_at of the last row, epoch ms */
  t: number;
  /** alert_id of the last row (tie-breaker) */
  id: string;
}

export class CursorError extends Error {
  override name = 'CursorError';
}

/** 10 base-36 digits stay below 2^53; 344 base64url characters hold 256 bytes of alert_id. */
export const CURSOR_PATTERN = '^[0-9a-z]{1,10}\\.[A-Za-z0-9_-]{1,344}$';
const CURSOR_RE = new RegExp(CURSOR_PATTERN);

export function encodeCursor(c: Cursor): string {
  return `${c.t.toString(36)}.${Buffer.from(c.id, 'utf8').toString('base64url')}`;
}

export function decodeCursor(raw: string): Cursor {
  if (!CURSOR_RE.test(raw)) throw new CursorError('querystring.cursor is not a valid cursor: pass next_cursor from a previous page unchanged');
  const dot = raw.indexOf('.');
  return { t: parseInt(raw.slice(0, dot), 36), id: Buffer.from(raw.slice(dot + 1), 'base64url').toString('utf8') };
}
