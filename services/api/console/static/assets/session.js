// The API key lives in sessionStorage (this tab only, gone when it closes): never a cookie (it would
// ride along on every request, CSRF), never a URL that reaches the server. `npm start` prints a
// link with the key in the fragment (#key=...), which browsers never send; the page reads it and
// removes it from the address bar and the history entry at once.

const STORAGE_KEY = 'tillwatch.apiKey';

/** Read a #key=... fragment, keep the key, and erase the fragment. */
export function adoptKeyFromFragment() {
  const m = /^#key=([^&]+)/.exec(window.location.hash);
  if (!m || m[1] === undefined) return false;
  let key;
  try {
    key = decodeURIComponent(m[1]);
  } catch {
    key = '';
  }
  window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search);
  if (!key) return false;
  setKey(key);
  return true;
}

/** @returns {string | null} */
export function getKey() {
  try {
    return window.sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/** @param {string} key */
export function setKey(key) {
  window.sessionStorage.setItem(STORAGE_KEY, key);
}

export function clearKey() {
  window.sessionStorage.removeItem(STORAGE_KEY);
}
