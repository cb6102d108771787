// The terminal page and the merchant page: recent alerts, sync lag over time, open gaps.
import { h, replace } from '../dom.js';
import { formatDuration } from '../format.js';
import { lagSparkline } from '../sparkline.js';
import { alertHref, alertTable, dl, errorBox, merchantLink, section, shortTimeEl, terminalLink, timeEl, txnTable } from '../ui.js';

/**
 * @param {import('../types.js').Gap[]} gaps
 */
function gapList(gaps) {
  if (gaps.length === 0) return h('p', { class: 'muted' }, 'No open sequence gaps.');
  return h(
    'ul',
    { class: 'gaps' },
    gaps.map((g) => h('li', null, h('strong', null, g.missing_from === g.missing_to ? `seq ${g.missing_from}` : `seq ${g.missing_from}–${g.missing_to}`), ' missing · ', shortTimeEl(g.detected_at), ' · ', h('a', { href: alertHref(g.alert_id) }, g.summary))),
  );
}

/** @param {import('../types.js').Alert[]} alerts */
const gapsOf = (alerts) => alerts.map((a) => ({ alert_id: a.alert_id, missing_from: a.details['missing_from'] ?? null, missing_to: a.details['missing_to'] ?? null, detected_at: a.detected_at, summary: a.summary }));

/**
 * @param {import('../ui.js').ViewContext} ctx
 * @param {{ id: string }} o
 */
export function terminalView(ctx, o) {
  ctx.setTitle(`Terminal ${o.id}`);
  replace(ctx.main, h('h1', null, 'Terminal ', h('code', null, o.id)), h('p', { class: 'muted' }, 'Loading…'));
  const id = encodeURIComponent(o.id);
  void (async () => {
    const [t, lag, recent] = await Promise.allSettled([
      ctx.api.get(`/terminals/${id}?recent=30`, ctx.signal),
      ctx.api.get(`/terminals/${id}/sync-lag?minutes=120`, ctx.signal),
      ctx.api.get(`/alerts?terminal=${id}&limit=20`, ctx.signal),
    ]);
    if (ctx.signal.aborted) return;
    if (t.status === 'rejected') {
      replace(ctx.main, h('h1', null, 'Terminal ', h('code', null, o.id)), errorBox(t.reason));
      return;
    }
    const v = /** @type {import('../types.js').TerminalView} */ (t.value);
    replace(
      ctx.main,
      h('p', { class: 'crumbs' }, h('a', { href: '/console/' }, 'Queue'), ' › ', merchantLink(v.merchant_id), ' › terminal'),
      h('h1', null, 'Terminal ', h('code', null, v.terminal_id)),
      h(
        'div',
        { class: 'grid2' },
        section(
          'Health',
          dl([
            ['Merchant', merchantLink(v.merchant_id)],
            ['Last seen', timeEl(v.last_seen)],
            ['Last made at the till', timeEl(v.last_event_time)],
            ['Last sequence number', v.last_seq === null ? '–' : String(v.last_seq)],
            ['Transactions stored', String(v.transactions)],
            ['Sync lag (latest)', formatDuration(v.sync_lag.last_ms)],
            [`Sync lag, last ${v.sync_lag.window_minutes} min`, `p50 ${formatDuration(v.sync_lag.p50_ms)} · p90 ${formatDuration(v.sync_lag.p90_ms)} · p99 ${formatDuration(v.sync_lag.p99_ms)} · max ${formatDuration(v.sync_lag.max_ms)}`],
          ]),
        ),
        section('Sync lag over time', lag.status === 'fulfilled' ? lagSparkline(/** @type {import('../types.js').TerminalLag} */ (lag.value).sync_lag, { label: `Sync lag of terminal ${v.terminal_id}`, width: 480, height: 96 }) : errorBox(lag.reason)),
      ),
      section('Open gaps', gapList(v.open_gaps)),
      section('Open alerts', alertTable(v.open_alerts, 'Open alerts of the terminal')),
      section('Recent alerts', recent.status === 'fulfilled' ? alertTable(/** @type {import('../types.js').AlertPage} */ (recent.value).items, 'Recent alerts of the terminal') : errorBox(recent.reason)),
      section('Recent transactions', txnTable(v.recent_transactions, 'Recent transactions of the terminal')),
    );
  })();
  return { onKey: () => false };
}

/**
 * @param {import('../ui.js').ViewContext} ctx
 * @param {{ id: string }} o
 */
export function merchantView(ctx, o) {
  ctx.setTitle(`Merchant ${o.id}`);
  replace(ctx.main, h('h1', null, 'Merchant ', h('code', null, o.id)), h('p', { class: 'muted' }, 'Loading…'));
  const id = encodeURIComponent(o.id);
  void (async () => {
    const [m, recent, gaps] = await Promise.allSettled([
      ctx.api.get(`/merchants/${id}?minutes=120`, ctx.signal),
      ctx.api.get(`/alerts?merchant=${id}&limit=20`, ctx.signal),
      ctx.api.get(`/alerts?merchant=${id}&rule=sequence_gap&status=open&limit=100`, ctx.signal),
    ]);
    if (ctx.signal.aborted) return;
    if (m.status === 'rejected') {
      replace(ctx.main, h('h1', null, 'Merchant ', h('code', null, o.id)), errorBox(m.reason));
      return;
    }
    const v = /** @type {import('../types.js').MerchantView} */ (m.value);
    replace(
      ctx.main,
      h('p', { class: 'crumbs' }, h('a', { href: '/console/' }, 'Queue'), ' › merchant'),
      h('h1', null, 'Merchant ', h('code', null, v.merchant_id)),
      h(
        'div',
        { class: 'grid2' },
        section('Overview', dl([['Terminals', String(v.terminals.length)], ['Transactions stored', String(v.transactions)], ['Last seen', timeEl(v.last_seen)]])),
        section('Sync lag over time', lagSparkline(v.sync_lag, { label: `Sync lag of merchant ${v.merchant_id}`, width: 480, height: 96 })),
      ),
      section('Open gaps', gaps.status === 'fulfilled' ? gapList(gapsOf(/** @type {import('../types.js').AlertPage} */ (gaps.value).items)) : errorBox(gaps.reason)),
      section('Recent alerts', recent.status === 'fulfilled' ? alertTable(/** @type {import('../types.js').AlertPage} */ (recent.value).items, 'Recent alerts of the merchant') : errorBox(recent.reason)),
      section(
        'Terminals',
        v.terminals.length === 0
          ? h('p', { class: 'muted' }, 'No transactions stored.')
          : h(
              'div',
              { class: 'table-wrap' },
              h(
                'table',
                { class: 'data' },
                h('caption', { class: 'visually-hidden' }, 'Terminals of the merchant'),
                h('thead', null, h('tr', null, ['Terminal', 'Last seen (UTC)', 'Lag of last', 'Last seq', 'Transactions'].map((c) => h('th', { scope: 'col' }, c)))),
                h(
                  'tbody',
                  null,
                  v.terminals.map((t) =>
                    h(
                      'tr',
                      null,
                      h('td', { 'data-label': 'Terminal' }, terminalLink(t.terminal_id)),
                      h('td', { 'data-label': 'Last seen' }, shortTimeEl(t.last_seen)),
                      h('td', { 'data-label': 'Lag of last' }, formatDuration(t.last_seen - t.last_event_time)),
                      h('td', { 'data-label': 'Last seq', class: 'num' }, String(t.last_seq)),
                      h('td', { 'data-label': 'Transactions', class: 'num' }, String(t.transactions)),
                    ),
                  ),
                ),
              ),
            ),
      ),
    );
  })();
  return { onKey: () => false };
}
