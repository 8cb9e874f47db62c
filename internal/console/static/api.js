// hookd console: the admin API client, the session (sign in and out, the
// CSRF token) and the error bar and flash message.
//
// Signing in exchanges the admin token for a session cookie (HttpOnly, so
// no script reads it); the token itself is kept nowhere. The session's
// CSRF token is held in memory and sent in X-CSRF-Token with every request
// that changes something.

import { $ } from './ui.js';

// OLD_TOKEN_KEY is where earlier versions kept the token; it is removed.
const OLD_TOKEN_KEY = 'hookd.console.token';

// onUnauthorized runs when the API answers 401, before the sign-in panel
// opens (the router stops the current view's timers with it).
let onUnauthorized = () => {};

export function setOnUnauthorized(f) { onUnauthorized = f; }

// apiAll reads every page of a listing (sources, destinations,
// subscriptions), following next_cursor, as one page.
export async function apiAll(path) {
  const all = [];
  let cursor = null;
  for (let pages = 0; pages < 100; pages++) {
    const res = await api(path + '?limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    all.push(...rows(res));
    if (!res || !res.next_cursor || res.next_cursor === cursor) break;
    cursor = res.next_cursor;
  }
  return { data: all, next_cursor: null };
}

export function rows(res) {
  if (Array.isArray(res)) return res;
  if (res && Array.isArray(res.data)) return res.data;
  return [];
}

// ---- token, error bar, flash -------------------------------------------

// csrf is the session's CSRF token; empty while signed out.
let csrf = '';

export function signedIn() { return !!csrf; }

export function setSession(token) {
  csrf = token || '';
  updateAuthStatus();
}

export function updateAuthStatus() {
  const has = signedIn();
  $('auth-label').textContent = has ? 'Signed in' : 'Signed out';
  $('auth-change').textContent = has ? 'Sign in again' : 'Sign in';
  $('auth-forget').hidden = !has;
}

// sessionCall calls /api/v1/session; it resolves to the fetch answer.
export async function sessionCall(method, body) {
  const init = { method, headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' };
  if (csrf && method === 'DELETE') init.headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return fetch('/api/v1/session', init);
}

// sessionAnswer reads a session answer's CSRF token, or the error's message.
export async function sessionAnswer(res) {
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.ok && data && typeof data.csrf_token === 'string') return { token: data.csrf_token };
  const apiErr = data && data.error ? data.error : null;
  return { message: apiErr && apiErr.message ? String(apiErr.message) : 'HTTP ' + res.status };
}

// signIn exchanges an admin token for a session cookie. It resolves to
// { refused, kept }: refused says why the sign-in failed ('' when it
// worked); kept, when signing in again, why the previous session could not
// be ended ('' when it was, or there was none). Signing in again ends the
// previous session first: the new cookie replaces it in the browser, and
// left alone it would stay valid on the server until it expires. A failure
// to end it does not stop the sign-in; it is said.
export async function signIn(token) {
  const again = signedIn();
  let kept = '';
  if (again) {
    kept = await endSession();
    if (!kept) setSession('');
  }
  const note = !again ? '' : kept ? ' The previous session could not be ended (' + kept + ') and stays signed in.'
    : ' The previous session was ended.';
  let res;
  try { res = await sessionCall('POST', { token }); } catch (e) {
    return { refused: 'Network error signing in: ' + (e && e.message ? e.message : e) + '.' + note, kept };
  }
  const a = await sessionAnswer(res);
  if (!a.token) return { refused: 'Sign-in refused: ' + a.message + '.' + note, kept };
  setSession(a.token);
  return { refused: '', kept };
}

// endSession ends the browser's session on the server. It resolves to ''
// once the server ended it (or no longer knows it: 401), else to why not.
// A 403 means the browser's session is another one than this tab knows
// (another tab signed in again): its CSRF token is read and the end tried
// once more.
async function endSession() {
  let res;
  try {
    res = await sessionCall('DELETE');
    if (res.status === 403) {
      const a = await sessionAnswer(await sessionCall('GET'));
      if (a.token) {
        csrf = a.token;
        res = await sessionCall('DELETE');
      }
    }
  } catch (e) {
    return 'network error: ' + (e && e.message ? e.message : e);
  }
  if (res.ok || res.status === 401) return '';
  return (await sessionAnswer(res)).message;
}

// resumeSession picks up a session this browser already has (another
// tab, a reload).
export async function resumeSession() {
  try { sessionStorage.removeItem(OLD_TOKEN_KEY); } catch (e) { /* no storage */ }
  try {
    const a = await sessionAnswer(await sessionCall('GET'));
    setSession(a.token || '');
  } catch (e) { setSession(''); }
}

// signOut ends the session on the server, for every tab (endSession). It
// resolves to '' once the server ended it, else to a message saying the
// session may still be active (this tab then stays signed in, so sign-out
// can be tried again).
export async function signOut() {
  const failed = await endSession();
  if (failed) return 'Sign-out failed: ' + failed + '. The session may still be active: try again.';
  setSession('');
  return '';
}

export function showAuth(message, bad) {
  $('auth').hidden = false;
  const m = $('auth-message');
  m.textContent = message || '';
  m.classList.toggle('bad', !!bad);
  $('auth-cancel').hidden = !signedIn() || !!bad;
  $('token-input').focus();
}

export function hideAuth() {
  $('auth').hidden = true;
  $('auth-message').textContent = '';
  $('token-input').value = '';
}

export function showError(err) {
  if (err && err.auth) return; // the token panel says it
  const msg = err && err.message ? err.message : String(err);
  $('error-text').textContent = msg;
  $('error-bar').hidden = false;
}

export function clearError() {
  $('error-bar').hidden = true;
  $('error-text').textContent = '';
}

let flashTimer = null;
export function flash(msg) {
  const f = $('flash');
  f.textContent = msg;
  f.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { f.hidden = true; }, 5000);
}

// ---- API ---------------------------------------------------------------

export class APIError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code || '';
    this.auth = status === 401;
  }
}

// api calls the admin API with the session cookie (and the CSRF token
// on anything but GET). It resolves to the decoded JSON answer, or
// rejects with an APIError carrying the API's error message. A 401 (or no
// session at all) opens the sign-in panel once; nothing retries on its
// own until the user signs in again.
export async function api(path, opts) {
  opts = opts || {};
  if (!signedIn()) {
    showAuth('Sign in with an admin API token to use the console.', false);
    throw new APIError('not signed in', 401, 'unauthenticated');
  }
  const init = { method: opts.method || 'GET', headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' };
  if (init.method !== 'GET') init.headers['X-CSRF-Token'] = csrf;
  if (opts.body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new APIError('Network error calling ' + path + ': ' + (e && e.message ? e.message : e), 0, 'network');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = null; }
  }
  if (!res.ok) {
    const apiErr = data && data.error ? data.error : null;
    const message = apiErr && apiErr.message ? String(apiErr.message) : 'HTTP ' + res.status + (res.statusText ? ' ' + res.statusText : '');
    const err = new APIError(message, res.status, apiErr && apiErr.code ? String(apiErr.code) : '');
    if (res.status === 401) {
      onUnauthorized();
      setSession('');
      showAuth('The API answered 401 (' + message + '). Sign in again with an admin token.', true);
    }
    throw err;
  }
  if (text && data === null) throw new APIError('The API answered with invalid JSON for ' + path, res.status, 'invalid_response');
  return data;
}

// ---- shared lookups ---------------------------------------------------

export async function sourceNames() {
  try { return rows(await apiAll('/api/v1/sources')).map((s) => String(s.name)); } catch (e) { return []; }
}

export async function destinationNames() {
  try { return rows(await apiAll('/api/v1/destinations')).map((d) => String(d.name)); } catch (e) { return []; }
}
