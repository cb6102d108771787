// One alert: summary (money formatted), the evidence side by side (a duplicate's two legs with the
// minutes between them; a refund's sale -> refund chain), the terminal's recent transactions and
// sync-lag sparkline, the actions and their fate, the full history, and triage for analysts.
import { h, replace } from '../dom.js';
import { formatDetail, formatDuration, formatMoney, minutesBetween } from '../format.js';
import { lagSparkline } from '../sparkline.js';
import { TRIAGE, canTriage, dl, errorBox, merchantLink, section, severityBadge, statusBadge, terminalLink, timeEl, triageDialog, txnCard, txnTable } from '../ui.js';

/**
 * @param {import('../ui.js').ViewContext} ctx
 * @param {{ id: string }} o
 */
export function alertView(ctx, o) {
  const triage = canTriage(ctx.principal.role);
  /** @type {import('../types.js').Alert | null} */
  let current = null;
  ctx.setTitle('Alert');
  replace(ctx.main, h('h1', null, 'Alert'), h('p', { class: 'muted' }, 'Loading…'));

  const path = `/alerts/${encodeURIComponent(o.id)}`;

  let attempts = 0;
  async function load() {
    /** @type {import('../types.js').AlertDetail} */
    let detail;
    try {
      detail = await ctx.api.get(path, ctx.signal);
    } catch (e) {
      if (ctx.signal.aborted) return;
      const retry = h('button', { type: 'button', onclick: () => void load() }, 'Try again');
      const status = e && typeof e === 'object' && 'status' in e ? e.status : 0;
      // A live alert reaches the browser (from the detector) before the sink has stored it.
      if (status === 404 && ++attempts <= 30) {
        // Meanwhile, what the live feed said about it (if this tab saw it arrive).
        const live = ctx.recent.get(o.id);
        replace(
          ctx.main,
          live
            ? [
                h('h1', null, h('span', { class: 'rule' }, `${live.rule}@${live.rule_version}`), ' ', severityBadge(live.severity), ' ', statusBadge(live.status)),
                h('p', { class: 'summary-text' }, live.summary),
                dl([['Detected', timeEl(live.detected_at)], ['Merchant', merchantLink(live.merchant_id)], ['Terminal', terminalLink(live.terminal_id)]]),
              ]
            : h('h1', null, 'Alert'),
          h('p', { class: 'muted', role: 'status' }, 'Waiting for the alert and its evidence to be stored (the sink writes in batches)…'),
        );
        window.setTimeout(() => void (ctx.signal.aborted ? undefined : load()), 1000);
        return;
      }
      replace(ctx.main, h('h1', null, 'Alert'), errorBox(e), retry);
      return;
    }
    const a = detail.alert;
    current = a;
    // Keep the live cache's copy in step (the queue merges it in while the store catches up).
    if (ctx.recent.has(a.alert_id)) ctx.recent.set(a.alert_id, a);
    ctx.setTitle(`${a.rule} · ${a.terminal_id}`);
    const [history, related, terminal, lag] = await Promise.allSettled([
      ctx.api.get(`${path}/history`, ctx.signal),
      ctx.api.get(`${path}/related`, ctx.signal),
      ctx.api.get(`/terminals/${encodeURIComponent(a.terminal_id)}?recent=20`, ctx.signal),
      ctx.api.get(`/terminals/${encodeURIComponent(a.terminal_id)}/sync-lag?minutes=60`, ctx.signal),
    ]);
    if (ctx.signal.aborted) return;
    // The alert's own money when it carries it (alerts since issue 11), else what its details and evidence say.
    const currency = a.currency ?? detail.evidence[0]?.currency;
    const amount = a.currency ? a.amount_minor : (a.details['amount_minor'] ?? a.details['refund_amount_minor'] ?? a.details['sale_amount_minor']);

    const header = h(
      'header',
      { class: 'alert-head' },
      h('p', { class: 'crumbs' }, h('a', { href: '/console/' }, 'Queue'), ' › ', a.rule),
      h('h1', null, h('span', { class: 'rule' }, `${a.rule}@${a.rule_version}`), ' ', severityBadge(a.severity), ' ', statusBadge(a.status)),
      h('p', { class: 'summary-text' }, a.summary),
    );
    const summary = section(
      'Summary',
      dl([
        ...(amount !== undefined && amount !== null && currency ? /** @type {[string, import('../dom.js').Child][]} */ ([['Amount', h('strong', { class: 'amount' }, formatMoney(amount, currency))]]) : []),
        ['Detected', timeEl(a.detected_at)],
        ['Evidence window', [timeEl(a.window_start), ' – ', timeEl(a.window_end)]],
        ['Merchant', merchantLink(a.merchant_id)],
        ['Terminal', terminalLink(a.terminal_id)],
        ['Card', a.card_token === null ? '–' : h('code', null, a.card_token)],
        ['Status', [statusBadge(a.status), a.status_by ? ` by ${a.status_by}` : '', a.status_at ? [' at ', timeEl(a.status_at)] : '']],
        ['Alert id', h('code', null, a.alert_id)],
        ['Rules version', a.rules_version > 0 ? String(a.rules_version) : '– (fired before rules had versions)'],
      ]),
      h('h3', null, 'Details'),
      dl(Object.entries(a.details).map(([k, v]) => [k.replace(/_(ms|minor)$/, '').replace(/_/g, ' '), formatDetail(k, v, currency)])),
    );

    const actions = triage
      ? h(
          'div',
          { class: 'triage-buttons', role: 'group', 'aria-label': 'Triage' },
          TRIAGE.map((t) => h('button', { type: 'button', class: t.status === 'acknowledged' ? 'primary' : '', 'data-triage': t.path, 'aria-keyshortcuts': t.key, onclick: () => void doTriage(t) }, t.label, h('kbd', { 'aria-hidden': 'true' }, t.key))),
        )
      : h('p', { class: 'muted', id: 'viewer-note' }, `Signed in as ${ctx.principal.role}: triage needs the analyst role.`);

    replace(
      ctx.main,
      header,
      actions,
      evidenceSection(a, detail, related),
      h('div', { class: 'grid2' }, summary, historySection(a, history)),
      actionsSection(detail.actions),
      terminalSection(a, detail, terminal, lag),
    );
  }

  /** @param {typeof TRIAGE[number]} t */
  async function doTriage(t) {
    if (!current) return;
    const r = await triageDialog(ctx, current, t);
    if (r) await load();
    document.querySelector(`[data-triage="${t.path}"]`)?.closest('div')?.querySelector('button')?.focus();
  }

  void load();
  return {
    /** @param {KeyboardEvent} ev */
    onKey(ev) {
      const t = TRIAGE.find((x) => x.key === ev.key);
      if (t && triage && current) {
        void doTriage(t);
        return true;
      }
      return false;
    },
  };
}

/**
 * @param {import('../types.js').Alert} a
 * @param {PromiseSettledResult<unknown>} history
 */
function historySection(a, history) {
  if (history.status === 'rejected') return section('History', errorBox(history.reason));
  const h0 = /** @type {import('../types.js').History} */ (history.value);
  const entries = [
    h('li', { class: 'auto' }, h('p', null, h('strong', null, 'detected'), ' by the rule engine (', `${a.rule}@${a.rule_version}`, ') · ', timeEl(a.detected_at))),
    ...h0.entries.map((e) =>
      e.source === 'update'
        ? // An alert update (pos.alerts.updates.v1): resolved by events or closed by its rule, at the stream clock.
          h(
            'li',
            { class: 'auto' },
            h('p', null, statusBadge(e.status), ' ', h('strong', null, (e.resolution ?? '').replace(/_/g, ' ')), ' by the rule engine · ', timeEl(e.at)),
            h('p', { class: 'note' }, e.note),
            e.resolved_by_event_ids?.length ? h('p', { class: 'muted' }, `by events ${e.resolved_by_event_ids.join(', ')}`) : null,
          )
        : h('li', null, h('p', null, statusBadge(e.status), ' by ', h('strong', null, e.actor), ' · ', timeEl(e.at)), h('p', { class: 'note' }, e.note)),
    ),
  ];
  return section('History', h('ol', { class: 'history', id: 'history' }, entries), h('p', { class: 'muted' }, 'Automatic entries: the detection and alert updates (auto-resolutions, episode ends).'));
}

/**
 * @param {import('../types.js').Alert} a
 * @param {import('../types.js').AlertDetail} detail
 * @param {PromiseSettledResult<unknown>} related
 */
function evidenceSection(a, detail, related) {
  const ev = [...detail.evidence].sort((x, y) => x.event_time - y.event_time);
  const evIds = new Set(ev.map((t) => t.event_id));
  const notStored = detail.missing_evidence.length ? h('p', { class: 'error' }, `Evidence not stored (or expired): ${detail.missing_evidence.join(', ')}`) : null;
  const heartbeats = detail.heartbeat_evidence.length
    ? h('p', { class: 'muted' }, `${detail.heartbeat_evidence.length === 1 ? 'One heartbeat' : `${detail.heartbeat_evidence.length} heartbeats`} of the terminal also count as evidence (heartbeats are not stored): ${detail.heartbeat_evidence.join(', ')}`)
    : null;
  const missing = notStored || heartbeats ? h('div', null, notStored, heartbeats) : null;

  if (a.rule === 'duplicate_charge' && ev.length >= 2) {
    const [first, second] = /** @type {[import('../types.js').Transaction, import('../types.js').Transaction]} */ (ev);
    const sameTerminal = first.terminal_id === second.terminal_id;
    return section(
      'Evidence: the two charges',
      h(
        'div',
        { class: 'side-by-side' },
        txnCard(first, { title: 'First charge', evidence: true }),
        h('div', { class: 'between', 'aria-label': 'Between the two charges' }, h('strong', null, minutesBetween(first.event_time, second.event_time)), h('span', null, 'apart at the till'), h('span', null, sameTerminal ? 'same terminal' : 'different terminals')),
        txnCard(second, { title: 'Second charge', evidence: true }),
      ),
      missing,
    );
  }

  if (a.rule.startsWith('refund') && related.status === 'fulfilled') {
    const rel = /** @type {import('../types.js').Related} */ (related.value).transactions;
    const refunds = ev.filter((t) => t.original_txn_id !== null);
    const saleIds = [...new Set(refunds.map((t) => /** @type {string} */ (t.original_txn_id)))];
    const chains = saleIds.map((sid) => {
      const sale = rel.find((t) => t.txn_id === sid && t.kind === 'SALE');
      const children = rel.filter((t) => t.original_txn_id === sid).sort((x, y) => x.event_time - y.event_time);
      let running = 0;
      return h(
        'ol',
        { class: 'chain', 'aria-label': `Sale ${sid} and its refunds` },
        h('li', null, sale ? txnCard(sale, { title: 'Sale' }) : h('article', { class: 'txn missing' }, h('h3', null, 'Sale'), h('p', null, 'No sale ', h('code', null, sid), ' stored at this merchant.'))),
        children.map((t) => {
          if (t.status === 'APPROVED' && t.kind === 'REFUND') running += t.amount_minor;
          return h(
            'li',
            null,
            txnCard(t, { title: t.kind === 'REFUND' ? 'Refund' : t.kind.toLowerCase(), evidence: evIds.has(t.event_id) }),
            sale && t.kind === 'REFUND' ? h('p', { class: running > sale.amount_minor ? 'over' : 'muted' }, `Refunded so far: ${formatMoney(running, t.currency)} of ${formatMoney(sale.amount_minor, sale.currency)}`) : null,
          );
        }),
      );
    });
    const others = ev.filter((t) => t.original_txn_id === null);
    return section('Evidence: sale → refund chain', chains, others.length ? h('div', { class: 'side-by-side' }, others.map((t, i) => txnCard(t, { title: `Evidence ${i + 1}`, evidence: true }))) : null, missing);
  }

  return section('Evidence', ev.length ? h('div', { class: 'side-by-side' }, ev.map((t, i) => txnCard(t, { title: ev.length === 1 ? 'Transaction' : `Transaction ${i + 1}`, evidence: true }))) : h('p', { class: 'muted' }, 'No evidence transactions.'), missing);
}

/** @param {import('../types.js').Action[]} actions */
function actionsSection(actions) {
  if (actions.length === 0) return section('Actions', h('p', { class: 'muted' }, 'No actions were issued for this alert.'));
  const now = Date.now();
  return section(
    'Actions',
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'data' },
        h('caption', { class: 'visually-hidden' }, 'Actions issued for this alert and their fate'),
        h('thead', null, h('tr', null, ['Action', 'Target', 'Issued (UTC)', 'Fate'].map((c) => h('th', { scope: 'col' }, c)))),
        h(
          'tbody',
          null,
          actions.map((x) =>
            h(
              'tr',
              null,
              h('td', { 'data-label': 'Action' }, x.kind),
              h('td', { 'data-label': 'Target' }, `${x.target_type} `, h('code', null, x.target_id)),
              h('td', { 'data-label': 'Issued' }, timeEl(x.issued_at)),
              h('td', { 'data-label': 'Fate' }, x.expires_at === null ? 'issued, no expiry' : x.expires_at > now ? ['in force until ', timeEl(x.expires_at)] : ['expired ', timeEl(x.expires_at)]),
            ),
          ),
        ),
      ),
    ),
  );
}

/**
 * @param {import('../types.js').Alert} a
 * @param {import('../types.js').AlertDetail} detail
 * @param {PromiseSettledResult<unknown>} terminal
 * @param {PromiseSettledResult<unknown>} lag
 */
function terminalSection(a, detail, terminal, lag) {
  const title = `Terminal ${a.terminal_id}`;
  if (terminal.status === 'rejected') return section(title, errorBox(terminal.reason));
  const t = /** @type {import('../types.js').TerminalView} */ (terminal.value);
  return section(
    title,
    h('p', null, h('a', { href: `/console/terminals/${encodeURIComponent(a.terminal_id)}` }, 'Terminal page'), ` · last seen `, timeEl(t.last_seen), ` · sync lag p90 ${formatDuration(t.sync_lag.p90_ms)}, max ${formatDuration(t.sync_lag.max_ms)} (last ${t.sync_lag.window_minutes} min)`),
    lag.status === 'fulfilled' ? lagSparkline(/** @type {import('../types.js').TerminalLag} */ (lag.value).sync_lag, { label: `Sync lag of terminal ${a.terminal_id}` }) : errorBox(lag.reason),
    h('h3', null, 'Recent transactions'),
    txnTable(t.recent_transactions, `Recent transactions of terminal ${a.terminal_id}`, new Set(detail.evidence.map((x) => x.event_id))),
  );
}
