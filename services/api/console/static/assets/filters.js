// Pure: the queue's filters <-> the page URL's query string (so a view can be shared) <-> the
// API's query. The page URL uses the API's own parameter names; no status means "open".

/**
 * Rules outside the rules package's registry that alerts carry: the second stage's fleet incident.
 * The registered rules come from the API (GET /rules/ids), so a new rule needs no edit here.
 */
export const STAGE_RULES = ['sync_incident'];

/**
 * The rule filter's choices, sorted, each once: the registered rule ids (GET /rules/ids; null when
 * the API could not say), the stage's rules, the rules of alerts on the page, and those in the filter.
 * @param {readonly string[] | null} registered
 * @param {Iterable<string>} seen
 * @param {readonly string[]} filtered
 */
export function ruleChoices(registered, seen, filtered) {
  return [...new Set([...(registered ?? []), ...STAGE_RULES, ...seen, ...filtered])].sort();
}
export const SEVERITIES = ['critical', 'high', 'medium', 'low'];
export const STATUSES = ['open', 'acknowledged', 'resolved', 'false_positive', 'auto_resolved'];
/** The API's id pattern (schemas.ts): a filter value outside it would be a 400. */
export const ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

/**
 * @typedef {object} Filters
 * @property {string[]} rule
 * @property {string[]} severity
 * @property {string[]} status empty = any status
 * @property {string[]} merchant
 * @property {string[]} terminal
 * @property {string | null} from RFC 3339 (UTC)
 * @property {string | null} to RFC 3339 (UTC)
 */

/** @returns {Filters} */
export function defaultFilters() {
  return { rule: [], severity: [], status: ['open'], merchant: [], terminal: [], from: null, to: null };
}

/**
 * @param {string} search location.search
 * @returns {Filters}
 */
export function parseFilters(search) {
  const q = new URLSearchParams(search);
  const all = (/** @type {string} */ k) => q.getAll(k).map((v) => v.trim()).filter((v) => v.length > 0);
  const status = all('status');
  const time = (/** @type {string} */ k) => {
    const v = q.get(k);
    return v && !Number.isNaN(Date.parse(v)) ? new Date(Date.parse(v)).toISOString().replace('.000Z', 'Z') : null;
  };
  return {
    rule: all('rule'),
    severity: all('severity').filter((s) => SEVERITIES.includes(s)),
    // status=any: every status; no status parameter: the open queue.
    status: status.includes('any') ? [] : status.length ? status.filter((s) => STATUSES.includes(s)) : ['open'],
    merchant: all('merchant'),
    terminal: all('terminal'),
    from: time('from'),
    to: time('to'),
  };
}

/**
 * The page's query string for these filters ("" for the default open queue).
 * @param {Filters} f
 */
export function filtersToSearch(f) {
  const q = new URLSearchParams();
  for (const k of /** @type {const} */ (['rule', 'severity'])) for (const v of f[k]) q.append(k, v);
  if (f.status.length === 0) q.append('status', 'any');
  else if (!(f.status.length === 1 && f.status[0] === 'open')) for (const v of f.status) q.append('status', v);
  for (const k of /** @type {const} */ (['merchant', 'terminal'])) for (const v of f[k]) q.append(k, v);
  if (f.from) q.set('from', f.from);
  if (f.to) q.set('to', f.to);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * Query of GET /alerts for these filters.
 * @param {Filters} f
 * @param {{ limit?: number, cursor?: string | null }} [page]
 */
export function filtersToApiQuery(f, page = {}) {
  const q = new URLSearchParams();
  for (const k of /** @type {const} */ (['rule', 'severity', 'status', 'merchant', 'terminal'])) for (const v of f[k]) q.append(k, v);
  if (f.from) q.set('from', f.from);
  if (f.to) q.set('to', f.to);
  q.set('limit', String(page.limit ?? 50));
  if (page.cursor) q.set('cursor', page.cursor);
  return q.toString();
}

/**
 * Query of GET /stream/alerts: the stream filters by rule, severity, terminal and merchant.
 * @param {Filters} f
 */
export function filtersToStreamQuery(f) {
  const q = new URLSearchParams();
  for (const k of /** @type {const} */ (['rule', 'severity', 'merchant', 'terminal'])) for (const v of f[k]) q.append(k, v);
  return q.toString();
}

/**
 * Whether a live (new, hence open) alert belongs in the list these filters show.
 * @param {{ rule: string, severity: string, merchant_id: string, terminal_id: string, detected_at: number, status?: string }} a
 * @param {Filters} f
 */
export function matchesFilters(a, f) {
  const status = a.status ?? 'open';
  return (
    (f.rule.length === 0 || f.rule.includes(a.rule)) &&
    (f.severity.length === 0 || f.severity.includes(a.severity)) &&
    (f.status.length === 0 || f.status.includes(status)) &&
    (f.merchant.length === 0 || f.merchant.includes(a.merchant_id)) &&
    (f.terminal.length === 0 || f.terminal.includes(a.terminal_id)) &&
    (f.from === null || a.detected_at >= Date.parse(f.from)) &&
    (f.to === null || a.detected_at < Date.parse(f.to))
  );
}

/**
 * Values a filter must have to be sent (the API refuses ids outside its pattern with a 400).
 * @param {Filters} f
 * @returns {string | null} what is wrong, or null
 */
export function filterProblem(f) {
  for (const k of /** @type {const} */ (['merchant', 'terminal'])) {
    const bad = f[k].find((v) => !ID_PATTERN.test(v));
    if (bad !== undefined) return `${k} ids are letters, digits and . _ : @ - (at most 128)`;
  }
  if (f.from && f.to && Date.parse(f.from) >= Date.parse(f.to)) return '“from” must be earlier than “to”';
  return null;
}
