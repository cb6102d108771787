// Opaque pagination cursor: the sort key (detected_at ms, alert_id) of the last row of a page.
// Pages are "rows strictly after the cursor in (detected_at DESC, alert_id DESC) order", so a new
// alert (newer detected_at) never shifts later pages: no duplicates, no gaps while paging. An alert
// inserted late with an OLD detected_at shows up on the page where it belongs by time.

export interface Cursor {
  /** detected_at of the last row, epoch ms */
  t: number;
  /** alert_id of the last row (tie-breaker) */
  id: string;
}

export class CursorError extends Error {
  override name = 'CursorError';
}

const VERSION = 1;

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([VERSION, c.t, c.id]), 'utf8').toString('base64url');
}

export function decodeCursor(raw: string): Cursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw new CursorError('querystring.cursor is not a valid cursor: pass next_cursor from a previous page unchanged');
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 3 ||
    parsed[0] !== VERSION ||
    !Number.isSafeInteger(parsed[1]) ||
    typeof parsed[2] !== 'string' ||
    parsed[2].length === 0 ||
    parsed[2].length > 256
  ) {
    throw new CursorError('querystring.cursor is not a valid cursor: pass next_cursor from a previous page unchanged');
  }
  return { t: parsed[1] as number, id: parsed[2] };
}
