// Entry point: sign-in (key from a #key= fragment or typed in, kept in sessionStorage), the router
// over /console/... (History API; the server answers every console path with index.html), the
// header, and the keyboard.
import { ApiError, createApi } from './api.js';
import { byId, h, replace } from './dom.js';
import { adoptKeyFromFragment, clearKey, getKey, setKey } from './session.js';
import { queueView } from './views/queue.js';
import { alertView } from './views/alert.js';
import { merchantView, terminalView } from './views/entity.js';

const main = byId('main');
const who = byId('who');
const announcer = byId('announcer');

adoptKeyFromFragment();

const api = createApi({
  getKey,
  onUnauthorized: () => {
    clearKey();
    principal = null;
    showLogin('Your key was not accepted (expired or revoked?). Sign in again.');
  },
});

/** @type {import('./types.js').Principal | null} */
let principal = null;
/** @type {Map<string, import('./types.js').Alert>} */
const recent = new Map();
/** @type {AbortController | null} */
let viewAbort = null;
/** @type {{ onKey: (ev: KeyboardEvent) => boolean } | null} */
let view = null;

/** @param {string} message */
function announce(message) {
  replace(announcer, message);
}

/** @param {string} title */
function setTitle(title) {
  document.title = `${title} · Tillwatch`;
}

/** @param {string} url */
function navigate(url) {
  window.history.pushState(null, '', url);
  void route();
}

function renderWho() {
  if (!principal) {
    replace(who);
    return;
  }
  replace(
    who,
    h('span', { id: 'principal' }, principal.name, ' · ', h('span', { class: 'role' }, principal.role)),
    h(
      'button',
      {
        type: 'button',
        onclick: () => {
          clearKey();
          principal = null;
          showLogin('Signed out.');
        },
      },
      'Sign out',
    ),
  );
}

/** @param {string} [message] */
function showLogin(message) {
  viewAbort?.abort();
  view = null;
  renderWho();
  setTitle('Sign in');
  const input = h('input', { id: 'api-key', name: 'key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const problem = h('p', { class: 'error', role: 'alert', hidden: !message });
  if (message) replace(problem, message);
  const form = h(
    'form',
    { class: 'login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Sign in'),
    h('p', null, 'Use your Tillwatch API key. It stays in this browser tab (sessionStorage) and is sent only to this API, in a header.'),
    h('label', { for: 'api-key' }, 'API key'),
    input,
    problem,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    setKey(key);
    void start().catch((e) => {
      clearKey();
      showLogin(e instanceof ApiError && e.status === 401 ? 'That key was not accepted.' : String(e instanceof Error ? e.message : e));
    });
  });
  replace(main, form);
  input.focus();
}

async function start() {
  principal = await api.get('/whoami');
  renderWho();
  await route();
}

async function route() {
  if (!principal) return;
  viewAbort?.abort();
  viewAbort = new AbortController();
  const ctx = { api, principal, main, signal: viewAbort.signal, setTitle, announce, recent };
  const path = window.location.pathname;
  const m = /^\/console\/(alerts|terminals|merchants)\/([^/]+)$/.exec(path);
  let id = '';
  try {
    id = m?.[2] ? decodeURIComponent(m[2]) : '';
  } catch {
    id = '';
  }
  if (m?.[1] === 'alerts') view = alertView(ctx, { id });
  else if (m?.[1] === 'terminals') view = terminalView(ctx, { id });
  else if (m?.[1] === 'merchants') view = merchantView(ctx, { id });
  else view = queueView(ctx, { search: window.location.search, navigate });
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

// Links inside the console navigate without reloading (and keep the SSE stream logic per view).
document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target instanceof Element ? ev.target.closest('a') : null;
  if (!a || a.origin !== window.location.origin || !a.pathname.startsWith('/console/') || a.hasAttribute('download') || a.target) return;
  ev.preventDefault();
  navigate(a.pathname + a.search);
});
window.addEventListener('popstate', () => void route());

document.addEventListener('keydown', (ev) => {
  if (ev.metaKey || ev.ctrlKey || ev.altKey || ev.isComposing) return;
  const t = ev.target;
  if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement || (t instanceof HTMLElement && t.isContentEditable)) return;
  if (document.querySelector('dialog[open]')) return;
  if (view?.onKey(ev)) ev.preventDefault();
});

if (getKey()) {
  start().catch((e) => {
    if (!(e instanceof ApiError && e.status === 401)) showLogin(e instanceof Error ? e.message : String(e));
  });
} else {
  showLogin();
}
