// Pieces shared by the views: badges, links, tables, transaction cards, the triage dialog.
import { h, replace } from './dom.js';
import { formatDuration, formatMoney, formatShortTime, formatTime } from './format.js';

/**
 * @typedef {object} ViewContext
 * @property {ReturnType<typeof import('./api.js').createApi>} api
 * @property {import('./types.js').Principal} principal
 * @property {HTMLElement} main
 * @property {AbortSignal} signal aborted when the user leaves the view
 * @property {(title: string) => void} setTitle
 * @property {(message: string) => void} announce polite screen-reader message
 * @property {Map<string, import('./types.js').Alert>} recent alerts seen live in this tab (newest last):
 *   the detector's feed reaches the page before the sink has stored an alert, so a view opened
 *   right after it arrived merges them in instead of losing them
 */

/** @param {import('./types.js').Role} role */
export const canTriage = (role) => role === 'analyst' || role === 'admin';

export const TRIAGE = /** @type {const} */ ([
  { key: 'a', path: 'ack', status: 'acknowledged', label: 'Acknowledge' },
  { key: 'r', path: 'resolve', status: 'resolved', label: 'Resolve' },
  { key: 'f', path: 'false-positive', status: 'false_positive', label: 'False positive' },
]);

/** @param {string} severity */
export const severityBadge = (severity) => h('span', { class: `badge sev-${severity}` }, severity);
/** @param {string} status */
export const statusBadge = (status) => h('span', { class: `badge st-${status}` }, status.replace('_', ' '));

/** @param {number | null} ms */
export const timeEl = (ms) => h('time', ms === null ? null : { datetime: new Date(ms).toISOString() }, formatTime(ms));
/** @param {number} ms */
export const shortTimeEl = (ms) => h('time', { datetime: new Date(ms).toISOString() }, formatShortTime(ms));

/** @param {string} id */
export const alertHref = (id) => `/console/alerts/${encodeURIComponent(id)}`;
/** @param {string} id */
export const terminalHref = (id) => `/console/terminals/${encodeURIComponent(id)}`;
/** @param {string} id */
export const merchantHref = (id) => `/console/merchants/${encodeURIComponent(id)}`;

/** @param {string} id */
export const terminalLink = (id) => h('a', { href: terminalHref(id) }, id);
/** @param {string} id */
export const merchantLink = (id) => h('a', { href: merchantHref(id) }, id);

/**
 * @param {string} title
 * @param {...(import('./dom.js').Child)} children
 */
export function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

/** @param {unknown} e */
export function errorBox(e) {
  const status = e && typeof e === 'object' && 'status' in e ? Number(e.status) : 0;
  const message = e instanceof Error ? e.message : String(e);
  const hint = status === 403 ? ' (your role may not do this)' : status === 0 ? ' (is the API running?)' : '';
  return h('p', { class: 'error', role: 'alert' }, `${message}${hint}`);
}

/**
 * Key/value list.
 * @param {[string, import('./dom.js').Child][]} rows
 */
export function dl(rows) {
  return h('dl', { class: 'kv' }, rows.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

/**
 * A transaction as a card (evidence side by side).
 * @param {import('./types.js').Transaction} t
 * @param {{ title: string, evidence?: boolean }} o
 */
export function txnCard(t, o) {
  return h(
    'article',
    { class: `txn${o.evidence ? ' evidence' : ''}`, 'aria-label': `${o.title}: ${t.kind} ${t.txn_id}` },
    h('h3', null, o.title, o.evidence ? h('span', { class: 'badge ev' }, 'evidence') : null),
    h('p', { class: 'amount' }, formatMoney(t.amount_minor, t.currency)),
    dl([
      ['Transaction', h('code', null, t.txn_id)],
      ['Kind / status', `${t.kind} · ${t.status}`],
      ['Made at the till', timeEl(t.event_time)],
      ['Reached the platform', [timeEl(t.received_time), ` (lag ${formatDuration(t.received_time - t.event_time)})`]],
      ['Terminal', [terminalLink(t.terminal_id), ` · seq ${t.terminal_seq}`]],
      ['Card', h('code', null, t.card_token)],
      ...(t.original_txn_id !== null ? /** @type {[string, import('./dom.js').Child][]} */ ([['Original sale', h('code', null, t.original_txn_id)]]) : []),
    ]),
  );
}

/**
 * Transactions as a table (terminal's recent transactions).
 * @param {import('./types.js').Transaction[]} txs
 * @param {string} caption
 * @param {Set<string>} [highlight] event ids to mark as evidence
 */
export function txnTable(txs, caption, highlight = new Set()) {
  if (txs.length === 0) return h('p', { class: 'muted' }, 'No transactions stored.');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'data' },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', null, h('tr', null, ['Received (UTC)', 'Made (UTC)', 'Lag', 'Seq', 'Kind', 'Status', 'Amount', 'Card', 'Transaction'].map((c) => h('th', { scope: 'col' }, c)))),
      h(
        'tbody',
        null,
        txs.map((t) =>
          h(
            'tr',
            { class: highlight.has(t.event_id) ? 'hl' : null },
            h('td', { 'data-label': 'Received' }, shortTimeEl(t.received_time)),
            h('td', { 'data-label': 'Made' }, shortTimeEl(t.event_time)),
            h('td', { 'data-label': 'Lag' }, formatDuration(t.received_time - t.event_time)),
            h('td', { 'data-label': 'Seq' }, String(t.terminal_seq)),
            h('td', { 'data-label': 'Kind' }, t.kind),
            h('td', { 'data-label': 'Status' }, t.status),
            h('td', { 'data-label': 'Amount', class: 'num' }, formatMoney(t.amount_minor, t.currency)),
            h('td', { 'data-label': 'Card' }, h('code', null, t.card_token)),
            h('td', { 'data-label': 'Transaction' }, h('code', null, t.txn_id), highlight.has(t.event_id) ? h('span', { class: 'badge ev' }, 'evidence') : null),
          ),
        ),
      ),
    ),
  );
}

/**
 * Alerts as a compact table (terminal and merchant pages).
 * @param {import('./types.js').Alert[]} alerts
 * @param {string} caption
 */
export function alertTable(alerts, caption) {
  if (alerts.length === 0) return h('p', { class: 'muted' }, 'None.');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'data' },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', null, h('tr', null, ['Detected (UTC)', 'Severity', 'Rule', 'Summary', 'Terminal', 'Status'].map((c) => h('th', { scope: 'col' }, c)))),
      h(
        'tbody',
        null,
        alerts.map((a) =>
          h(
            'tr',
            null,
            h('td', { 'data-label': 'Detected' }, shortTimeEl(a.detected_at)),
            h('td', { 'data-label': 'Severity' }, severityBadge(a.severity)),
            h('td', { 'data-label': 'Rule' }, a.rule),
            h('td', { 'data-label': 'Summary', class: 'summary' }, h('a', { href: alertHref(a.alert_id) }, a.summary)),
            h('td', { 'data-label': 'Terminal' }, terminalLink(a.terminal_id)),
            h('td', { 'data-label': 'Status' }, statusBadge(a.status)),
          ),
        ),
      ),
    ),
  );
}

/**
 * The note dialog of a triage action; resolves with the API's answer, or null when cancelled.
 * @param {ViewContext} ctx
 * @param {import('./types.js').Alert} alert
 * @param {typeof TRIAGE[number]} action
 * @returns {Promise<{ alert_id: string, previous_status: string, entry: import('./types.js').TriageEntry } | null>}
 */
export function triageDialog(ctx, alert, action) {
  return new Promise((resolve) => {
    const input = h('input', { id: 'triage-note', name: 'note', type: 'text', required: true, maxlength: 2000, autocomplete: 'off', 'aria-describedby': 'triage-help' });
    const problem = h('p', { class: 'error', role: 'alert', hidden: true });
    const submit = h('button', { type: 'submit', class: 'primary' }, action.label);
    const dialog = h(
      'dialog',
      { class: 'triage', 'aria-labelledby': 'triage-title' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'triage-title' }, `${action.label}: `, h('span', { class: 'dialog-alert' }, alert.summary)),
        h('label', { for: 'triage-note' }, 'Note (kept in the audit trail)'),
        input,
        h('p', { id: 'triage-help', class: 'muted' }, 'Why? Refer to cards by their token; a card number is refused.'),
        problem,
        h('div', { class: 'buttons' }, h('button', { type: 'button', value: 'cancel', onclick: () => dialog.close() }, 'Cancel'), submit),
      ),
    );
    let answered = /** @type {Awaited<ReturnType<typeof triageDialog>>} */ (null);
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(answered);
    });
    dialog.querySelector('form')?.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const note = input.value.trim();
      if (!note) {
        problem.hidden = false;
        replace(problem, 'A note is required.');
        input.focus();
        return;
      }
      submit.disabled = true;
      ctx.api.post(`/alerts/${encodeURIComponent(alert.alert_id)}/${action.path}`, { note }).then(
        (r) => {
          answered = /** @type {NonNullable<typeof answered>} */ (r);
          ctx.announce(`Alert ${action.status.replace('_', ' ')}.`);
          dialog.close();
        },
        (e) => {
          submit.disabled = false;
          problem.hidden = false;
          replace(problem, e instanceof Error ? e.message : String(e));
        },
      );
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    input.focus();
  });
}
