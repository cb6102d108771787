// The queue: alerts newest first (open ones unless the filters say otherwise), new ones arriving
// live over /stream/alerts with a visible count, filters in the URL, j/k/Enter/a/r/f.
import { h, replace } from '../dom.js';
import { SEVERITIES, STATUSES, filterProblem, filtersToApiQuery, filtersToSearch, filtersToStreamQuery, matchesFilters, parseFilters, ruleChoices } from '../filters.js';
import { TRIAGE, alertHref, canTriage, errorBox, merchantLink, severityBadge, shortTimeEl, statusBadge, terminalLink, triageDialog } from '../ui.js';

const MAX_ROWS = 500;

/**
 * The registered rule ids (GET /rules/ids), fetched once per page load; null until then, and again
 * after a failure (the next view retries; meanwhile the filter offers the rules it has seen).
 * @type {Promise<string[]> | null}
 */
let registeredRules = null;

/** @param {import('../ui.js').ViewContext} ctx */
function loadRegisteredRules(ctx) {
  registeredRules ??= /** @type {Promise<{ rules: string[] }>} */ (ctx.api.get('/rules/ids')).then(
    (r) => r.rules,
    (e) => {
      registeredRules = null;
      throw e;
    },
  );
  return registeredRules;
}

/** The API's list order: detected_at, then alert_id, descending. */
const byListOrder = (/** @type {import('../types.js').Alert} */ a, /** @type {import('../types.js').Alert} */ b) => b.detected_at - a.detected_at || (a.alert_id < b.alert_id ? 1 : a.alert_id > b.alert_id ? -1 : 0);

/**
 * @param {import('../ui.js').ViewContext} ctx
 * @param {{ search: string, navigate: (url: string) => void }} o
 */
export function queueView(ctx, o) {
  const filters = parseFilters(o.search);
  const triage = canTriage(ctx.principal.role);
  /** @type {import('../types.js').Alert[]} */
  let items = [];
  let nextCursor = /** @type {string | null} */ (null);
  let selected = /** @type {string | null} */ (null);
  const fresh = new Set();
  let arrivals = 0;
  let loaded = false;
  /** Alerts that arrived live before the first page was in. */
  const early = /** @type {import('../types.js').Alert[]} */ ([]);

  ctx.setTitle('Alert queue');

  // ---- filters form
  /**
   * @param {string} name
   * @param {string} label
   * @param {string[]} values
   * @param {string[]} current
   * @param {string} anyLabel
   */
  const selectField = (name, label, values, current, anyLabel) =>
    h('div', { class: 'field' }, h('label', { for: `f-${name}` }, label), h('select', { id: `f-${name}`, name }, selectOptions(values, current, anyLabel)));
  /**
   * @param {string[]} values
   * @param {string[]} current
   * @param {string} anyLabel
   */
  const selectOptions = (values, current, anyLabel) => {
    const joined = current.join(',');
    const options = [h('option', { value: '' }, anyLabel), ...values.map((v) => h('option', { value: v, selected: joined === v }, v.replace('_', ' ')))];
    if (current.length > 0 && !values.includes(joined)) options.push(h('option', { value: joined, selected: true }, current.join(', ')));
    return options;
  };
  /**
   * @param {string} name
   * @param {string} label
   * @param {string} value
   * @param {string} [type]
   */
  const input = (name, label, value, type = 'text') =>
    h('div', { class: 'field' }, h('label', { for: `f-${name}` }, label), h('input', { id: `f-${name}`, name, type, value, autocomplete: 'off', spellcheck: 'false', ...(type === 'text' ? { placeholder: 'any' } : {}) }));
  const localInput = (/** @type {string | null} */ iso) => (iso ? iso.slice(0, 16) : '');
  // The rule filter: the registered rules once GET /rules/ids answers, the stage's, and the rules of
  // alerts this view shows (so an alert of a rule the API did not list still joins the list).
  /** @type {string[] | null} */
  let registered = null;
  const seenRules = new Set(/** @type {string[]} */ ([]));
  let rules = ruleChoices(registered, seenRules, filters.rule);
  const ruleField = selectField('rule', 'Rule', rules, filters.rule, 'Any rule');
  const ruleSelect = /** @type {HTMLSelectElement} */ (ruleField.querySelector('select'));
  function refreshRules() {
    const next = ruleChoices(registered, seenRules, filters.rule);
    if (next.join(',') === rules.join(',')) return;
    rules = next;
    replace(ruleSelect, selectOptions(rules, filters.rule, 'Any rule'));
  }
  loadRegisteredRules(ctx).then(
    (ids) => {
      if (ctx.signal.aborted) return;
      registered = ids;
      refreshRules();
    },
    () => undefined, // an older API without the route, or a network error: the seen rules remain
  );
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filters' },
    ruleField,
    selectField('severity', 'Severity', SEVERITIES, filters.severity, 'Any severity'),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'f-status' }, 'Status'),
      h(
        'select',
        { id: 'f-status', name: 'status' },
        h('option', { value: 'any', selected: filters.status.length === 0 }, 'Any status'),
        STATUSES.map((s) => h('option', { value: s, selected: filters.status.length === 1 && filters.status[0] === s }, s.replace('_', ' '))),
        filters.status.length > 1 ? h('option', { value: filters.status.join(','), selected: true }, filters.status.join(', ')) : null,
      ),
    ),
    input('merchant', 'Merchant', filters.merchant.join(',')),
    input('terminal', 'Terminal', filters.terminal.join(',')),
    input('from', 'From (UTC)', localInput(filters.from), 'datetime-local'),
    input('to', 'To (UTC)', localInput(filters.to), 'datetime-local'),
    h('div', { class: 'field buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Apply'), h('button', { type: 'button', onclick: () => o.navigate('/console/') }, 'Reset')),
    problem,
  );
  const apply = () => {
    const data = new FormData(form);
    const list = (/** @type {string} */ k) => String(data.get(k) ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const time = (/** @type {string} */ k) => {
      const v = String(data.get(k) ?? '');
      return v ? `${v.length === 16 ? `${v}:00` : v}Z` : null;
    };
    const status = String(data.get('status') ?? '');
    const next = { rule: list('rule'), severity: list('severity'), status: status === 'any' ? [] : list('status'), merchant: list('merchant'), terminal: list('terminal'), from: time('from'), to: time('to') };
    const bad = filterProblem(next);
    if (bad) {
      problem.hidden = false;
      replace(problem, bad);
      return;
    }
    o.navigate(`/console/${filtersToSearch(next)}`);
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    apply();
  });
  // Choosing in a list applies at once; typed fields apply on Enter or Apply.
  for (const s of form.querySelectorAll('select')) s.addEventListener('change', apply);

  // ---- live bar, table, more
  const arrivalsText = h('span', { id: 'arrivals-count' }, '');
  const seenButton = h('button', { type: 'button', hidden: true, onclick: () => markSeen() }, 'Mark as seen');
  const conn = h('span', { class: 'conn', id: 'conn' }, 'connecting…');
  const bar = h('div', { class: 'queue-bar' }, h('p', { role: 'status', 'aria-live': 'polite', class: 'arrivals' }, arrivalsText), seenButton, conn);
  const tbody = h('tbody', { id: 'queue-rows' });
  const empty = h('p', { class: 'muted', hidden: true, id: 'queue-empty' }, 'No alerts match these filters. New ones appear here as they are detected.');
  const status = h('div', { 'aria-live': 'polite' });
  const more = h('button', { type: 'button', hidden: true, onclick: () => void loadMore() }, 'Load older alerts');
  const table = h(
    'table',
    { class: 'data queue', 'aria-describedby': 'queue-keys' },
    h('caption', { class: 'visually-hidden' }, 'Alerts, newest first'),
    h('thead', null, h('tr', null, ['Detected (UTC)', 'Severity', 'Rule', 'Summary', 'Merchant', 'Terminal', 'Status'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody,
  );
  const keys = h('p', { id: 'queue-keys', class: 'muted keys' }, 'Keys: ', h('kbd', null, 'j'), ' / ', h('kbd', null, 'k'), ' next / previous, ', h('kbd', null, 'Enter'), ' open', triage ? [', ', h('kbd', null, 'a'), ' acknowledge, ', h('kbd', null, 'r'), ' resolve, ', h('kbd', null, 'f'), ' false positive'] : null, '.');

  // On a phone the filters fold away (a summary says which are set); on a desktop they stay open.
  const active = [...filters.rule, ...filters.severity, ...filters.merchant, ...filters.terminal, filters.from ? 'from' : '', filters.to ? 'to' : ''].filter(Boolean).length;
  const folding = h('details', { class: 'filter-box', open: window.matchMedia('(min-width: 721px)').matches || active > 0 }, h('summary', null, `Filters${active ? ` (${active} set)` : ''} · status: ${filters.status.length ? filters.status.join(', ').replace(/_/g, ' ') : 'any'}`), form);
  replace(ctx.main, h('h1', null, 'Alert queue'), folding, bar, keys, status, h('div', { class: 'table-wrap' }, table), empty, more);

  function updateArrivals() {
    replace(arrivalsText, arrivals === 0 ? 'No new alerts since you opened this view.' : `${arrivals} new ${arrivals === 1 ? 'alert' : 'alerts'} since you opened this view`);
    seenButton.hidden = arrivals === 0;
    document.title = `${arrivals ? `(${arrivals}) ` : ''}Alert queue · Tillwatch`;
  }
  function markSeen() {
    arrivals = 0;
    fresh.clear();
    updateArrivals();
    renderRows();
  }

  function renderRows() {
    const focusedInside = tbody.contains(document.activeElement);
    for (const a of items) seenRules.add(a.rule);
    refreshRules();
    replace(
      tbody,
      items.map((a) =>
        h(
          'tr',
          { 'data-id': a.alert_id, class: `${fresh.has(a.alert_id) ? 'new' : ''}${a.alert_id === selected ? ' selected' : ''}`, 'aria-current': a.alert_id === selected ? 'true' : null },
          h('td', { 'data-label': 'Detected' }, shortTimeEl(a.detected_at), fresh.has(a.alert_id) ? h('span', { class: 'badge new-badge' }, 'new') : null),
          h('td', { 'data-label': 'Severity' }, severityBadge(a.severity)),
          h('td', { 'data-label': 'Rule' }, a.rule),
          h('td', { 'data-label': 'Summary', class: 'summary' }, h('a', { href: alertHref(a.alert_id), class: 'row-link', onfocus: () => select(a.alert_id, false) }, a.summary)),
          h('td', { 'data-label': 'Merchant' }, merchantLink(a.merchant_id)),
          h('td', { 'data-label': 'Terminal' }, terminalLink(a.terminal_id)),
          h('td', { 'data-label': 'Status' }, statusBadge(a.status)),
        ),
      ),
    );
    empty.hidden = !loaded || items.length > 0;
    if (focusedInside) focusSelected();
  }

  /**
   * @param {string} id
   * @param {boolean} focus
   */
  function select(id, focus) {
    if (selected === id && !focus) return;
    selected = id;
    for (const tr of tbody.querySelectorAll('tr')) {
      const on = tr.getAttribute('data-id') === id;
      tr.classList.toggle('selected', on);
      if (on) tr.setAttribute('aria-current', 'true');
      else tr.removeAttribute('aria-current');
    }
    if (focus) focusSelected();
  }
  function focusSelected() {
    const row = [...tbody.querySelectorAll('tr')].find((tr) => tr.getAttribute('data-id') === selected);
    const link = row?.querySelector('a.row-link');
    if (link instanceof HTMLElement) {
      link.focus();
      row?.scrollIntoView({ block: 'nearest' });
    }
  }

  /** @param {import('../types.js').Alert[]} page */
  function merge(page) {
    const known = new Set(items.map((a) => a.alert_id));
    for (const a of page) if (!known.has(a.alert_id)) items.push(a);
  }

  async function loadFirst() {
    const bad = filterProblem(filters);
    if (bad) {
      replace(status, errorBox(new Error(bad)));
      loaded = true;
      renderRows();
      return;
    }
    try {
      /** @type {import('../types.js').AlertPage} */
      const page = await ctx.api.get(`/alerts?${filtersToApiQuery(filters)}`, ctx.signal);
      const liveFirst = items;
      items = [];
      merge(liveFirst);
      merge(page.items);
      // Alerts this tab saw live that the store may not have yet, where the page would hold them.
      const oldest = page.next_cursor === null ? -Infinity : (page.items[page.items.length - 1]?.detected_at ?? Infinity);
      merge([...ctx.recent.values()].filter((a) => a.detected_at >= oldest && matchesFilters(a, filters)));
      items.sort(byListOrder);
      nextCursor = page.next_cursor;
      loaded = true;
      selected ??= items[0]?.alert_id ?? null;
      replace(status);
    } catch (e) {
      if (ctx.signal.aborted) return;
      replace(status, errorBox(e));
    }
    more.hidden = nextCursor === null;
    renderRows();
    for (const a of early.splice(0)) arrive(a);
  }

  async function loadMore() {
    if (!nextCursor) return;
    try {
      /** @type {import('../types.js').AlertPage} */
      const page = await ctx.api.get(`/alerts?${filtersToApiQuery(filters, { cursor: nextCursor })}`, ctx.signal);
      merge(page.items);
      items.sort(byListOrder);
      nextCursor = page.next_cursor;
    } catch (e) {
      replace(status, errorBox(e));
    }
    more.hidden = nextCursor === null;
    renderRows();
  }

  /** @param {import('../types.js').Alert} a */
  function remember(a) {
    ctx.recent.delete(a.alert_id);
    ctx.recent.set(a.alert_id, a);
    if (ctx.recent.size > MAX_ROWS) ctx.recent.delete(/** @type {string} */ (ctx.recent.keys().next().value));
  }

  /** @param {import('../types.js').Alert} a */
  function arrive(a) {
    if (!loaded) {
      early.push(a);
      return;
    }
    if (!matchesFilters(a, filters) || items.some((x) => x.alert_id === a.alert_id)) return;
    // In list order (newest detected_at first, as the API lists): a late alert lands where it belongs.
    const at = items.findIndex((x) => x.detected_at < a.detected_at || (x.detected_at === a.detected_at && x.alert_id < a.alert_id));
    items.splice(at < 0 ? items.length : at, 0, a);
    if (items.length > MAX_ROWS) items.length = MAX_ROWS;
    fresh.add(a.alert_id);
    arrivals++;
    selected ??= a.alert_id;
    updateArrivals();
    renderRows();
  }

  updateArrivals();
  void loadFirst();
  // Only a list that can hold new (open) alerts follows the stream.
  if (filters.status.length === 0 || filters.status.includes('open')) {
    void ctx.api.stream(`/stream/alerts?${filtersToStreamQuery(filters)}`, {
      signal: ctx.signal,
      onEvent: (e) => {
        if (e.event !== 'alert') return;
        try {
          const a = /** @type {import('../types.js').Alert} */ (JSON.parse(e.data));
          remember(a);
          arrive(a);
        } catch {
          /* not an alert: ignore */
        }
      },
      onState: (s) => {
        replace(conn, s === 'live' ? '● live' : s === 'reconnecting' ? 'reconnecting…' : s === 'connecting' ? 'connecting…' : 'not live');
        conn.className = `conn conn-${s}`;
      },
      // The API does not replay what was missed while disconnected: reload the first page.
      onOpen: (reconnected) => {
        if (reconnected) {
          const before = new Set(items.map((a) => a.alert_id));
          void ctx.api.get(`/alerts?${filtersToApiQuery(filters)}`, ctx.signal).then((/** @type {any} */ page) => {
            for (const a of /** @type {import('../types.js').AlertPage} */ (page).items.slice().reverse()) if (!before.has(a.alert_id)) arrive(a);
          }, () => undefined);
        }
      },
    });
  } else {
    replace(conn, 'not live (status filter excludes new alerts)');
  }

  /** @param {typeof TRIAGE[number]} action */
  async function triageSelected(action) {
    const a = items.find((x) => x.alert_id === selected);
    if (!a) return;
    const r = await triageDialog(ctx, a, action);
    if (!r) {
      focusSelected();
      return;
    }
    const updated = { ...a, status: r.entry.status, status_by: r.entry.actor, status_at: r.entry.at };
    if (ctx.recent.has(a.alert_id)) ctx.recent.set(a.alert_id, updated);
    const i = items.indexOf(a);
    if (matchesFilters(updated, filters)) items[i] = updated;
    else {
      items.splice(i, 1);
      selected = items[Math.min(i, items.length - 1)]?.alert_id ?? null;
    }
    fresh.delete(a.alert_id);
    renderRows();
    focusSelected();
  }

  return {
    /** @param {KeyboardEvent} ev */
    onKey(ev) {
      const i = items.findIndex((x) => x.alert_id === selected);
      if (ev.key === 'j' || ev.key === 'k') {
        const next = items[Math.max(0, Math.min(items.length - 1, i + (ev.key === 'j' ? 1 : -1)))];
        if (next) select(next.alert_id, true);
        return true;
      }
      // Enter opens the selected alert only when nothing else has the focus (a focused row link
      // opens itself; a focused button or summary keeps its own meaning).
      const idle = document.activeElement === null || document.activeElement === document.body || document.activeElement === ctx.main;
      if (ev.key === 'Enter' && i >= 0 && idle) {
        o.navigate(alertHref(/** @type {string} */ (selected)));
        return true;
      }
      const action = TRIAGE.find((t) => t.key === ev.key);
      if (action && triage && i >= 0) {
        void triageSelected(action);
        return true;
      }
      return false;
    },
  };
}
