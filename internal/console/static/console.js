// hookd web console: a single-page app over the admin API (/api/v1).
//
// Everything the API returns is rendered with DOM building and textContent
// only: event bodies, headers and most other strings are attacker-controlled
// (they come from whoever posts webhooks), so no API data is ever parsed as
// HTML. Signing in exchanges the admin token for a session cookie
// (HttpOnly, so no script reads it); the token itself is kept nowhere. The
// session's CSRF token is held in memory and sent in X-CSRF-Token with
// every request that changes something.
'use strict';

(function () {
  // OLD_TOKEN_KEY is where earlier versions kept the token; it is removed.
  const OLD_TOKEN_KEY = 'hookd.console.token';
  const STATUSES = ['pending', 'delivering', 'succeeded', 'retrying', 'failed', 'cancelled'];
  const RETRYABLE = new Set(['failed', 'succeeded', 'cancelled']);
  const BADGE_CLASSES = new Set(STATUSES.concat(['ok', 'bad', 'info', 'stale', 'running', 'done',
    'enabled', 'disabled', 'active', 'inactive']));
  const TAIL_MS = 2000;
  const REPLAY_POLL_MS = 1000;

  // ---- small DOM helpers -------------------------------------------------

  const $ = (id) => document.getElementById(id);

  // h builds an element. attrs: class, text, on<event> handlers, value
  // (set as a property, after children, so a <select> can pick its option),
  // anything else via setAttribute. Children: nodes, strings (as text
  // nodes), arrays, or null/undefined/false (skipped).
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    let value;
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = String(v);
        else if (k === 'value') value = v;
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (v === true) el.setAttribute(k, '');
        else el.setAttribute(k, String(v));
      }
    }
    add(el, children);
    if (value !== undefined) el.value = String(value);
    return el;
  }

  function add(el, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) add(el, c);
      else if (c instanceof Node) el.appendChild(c);
      else el.appendChild(document.createTextNode(String(c)));
    }
  }

  function badge(text, kind) {
    const k = kind || text;
    return h('span', { class: 'badge' + (BADGE_CLASSES.has(k) ? ' ' + k : '') }, text);
  }

  function th(label, cls) { return h('th', cls ? { class: cls } : null, label); }

  function table(headers, tbody) {
    return h('div', { class: 'table-wrap' },
      h('table', null, h('thead', null, h('tr', null, headers)), tbody));
  }

  function emptyRow(cols, text) {
    return h('tr', { class: 'empty-row' }, h('td', { class: 'empty', colspan: cols }, text));
  }

  function muted(text) { return h('span', { class: 'muted' }, text); }

  function orDash(v) { return v === null || v === undefined || v === '' ? muted('—') : String(v); }

  // ---- formatting --------------------------------------------------------

  function pad(n, w) { return String(n).padStart(w || 2, '0'); }

  function fmtTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  function fmtRel(iso) {
    if (!iso) return '';
    const t = new Date(iso).getTime();
    if (isNaN(t)) return '';
    let s = Math.round((t - Date.now()) / 1000);
    const future = s > 0;
    s = Math.abs(s);
    let txt;
    if (s < 60) txt = s + 's';
    else if (s < 3600) txt = Math.round(s / 60) + 'm';
    else if (s < 86400) txt = Math.round(s / 3600) + 'h';
    else txt = Math.round(s / 86400) + 'd';
    return future ? 'in ' + txt : txt + ' ago';
  }

  function timeEl(iso, withRel) {
    const text = fmtTime(iso) + (withRel && iso ? ' (' + fmtRel(iso) + ')' : '');
    return h('span', { title: iso || null, class: 'nowrap' }, text);
  }

  function timeCell(iso) { return h('td', { class: 'nowrap', title: iso || null }, fmtTime(iso)); }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 1000) return Math.round(ms) + ' ms';
    return (ms / 1000).toFixed(2) + ' s';
  }

  function fmtBytes(n) {
    if (n === null || n === undefined || n === '') return '—';
    n = Number(n);
    if (!isFinite(n) || n <= 0) return String(n);
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1 && n % 1024 === 0) { n /= 1024; i++; }
    return n + ' ' + units[i];
  }

  function fmtNum(n) { return n === null || n === undefined ? '—' : Number(n).toLocaleString(); }

  // prettyJSON re-indents JSON text that is known to be valid without
  // parsing its values, so big numbers and string escapes stay exactly as
  // received (JSON.parse would round 12345678901234567890).
  function prettyJSON(src) {
    const out = [];
    let indent = 0;
    let inStr = false;
    let esc = false;
    const nl = () => '\n' + '  '.repeat(Math.max(indent, 0));
    for (let i = 0; i < src.length; i++) {
      const c = src[i];
      if (inStr) {
        out.push(c);
        if (esc) esc = false;
        else if (c === '\\') esc = true;
        else if (c === '"') inStr = false;
        continue;
      }
      switch (c) {
        case '"': inStr = true; out.push(c); break;
        case '{': case '[': {
          const close = c === '{' ? '}' : ']';
          let j = i + 1;
          while (j < src.length && ' \t\n\r'.includes(src[j])) j++;
          if (src[j] === close) { out.push(c + close); i = j; } else { indent++; out.push(c + nl()); }
          break;
        }
        case '}': case ']': indent--; out.push(nl() + c); break;
        case ',': out.push(',' + nl()); break;
        case ':': out.push(': '); break;
        case ' ': case '\t': case '\n': case '\r': break;
        default: out.push(c);
      }
    }
    return out.join('');
  }

  function qs(params) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
    }
    const s = p.toString();
    return s ? '?' + s : '';
  }

  // apiAll reads every page of a listing (sources, destinations,
  // subscriptions), following next_cursor, as one page.
  async function apiAll(path) {
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

  function rows(res) {
    if (Array.isArray(res)) return res;
    if (res && Array.isArray(res.data)) return res.data;
    return [];
  }

  // ---- token, error bar, flash -------------------------------------------

  // csrf is the session's CSRF token; empty while signed out.
  let csrf = '';

  function signedIn() { return !!csrf; }

  function setSession(token) {
    csrf = token || '';
    updateAuthStatus();
  }

  function updateAuthStatus() {
    const has = signedIn();
    $('auth-label').textContent = has ? 'Signed in' : 'Signed out';
    $('auth-change').textContent = has ? 'Sign in again' : 'Sign in';
    $('auth-forget').hidden = !has;
  }

  // sessionCall calls /api/v1/session; it resolves to the fetch answer.
  async function sessionCall(method, body) {
    const init = { method, headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' };
    if (csrf && method === 'DELETE') init.headers['X-CSRF-Token'] = csrf;
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch('/api/v1/session', init);
  }

  // sessionAnswer reads a session answer's CSRF token, or the error's message.
  async function sessionAnswer(res) {
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.ok && data && typeof data.csrf_token === 'string') return { token: data.csrf_token };
    const apiErr = data && data.error ? data.error : null;
    return { message: apiErr && apiErr.message ? String(apiErr.message) : 'HTTP ' + res.status };
  }

  // signIn exchanges an admin token for a session cookie.
  async function signIn(token) {
    let res;
    try { res = await sessionCall('POST', { token }); } catch (e) {
      return 'Network error signing in: ' + (e && e.message ? e.message : e);
    }
    const a = await sessionAnswer(res);
    if (!a.token) return 'Sign-in refused: ' + a.message;
    setSession(a.token);
    return '';
  }

  // resumeSession picks up a session this browser already has (another
  // tab, a reload).
  async function resumeSession() {
    try { sessionStorage.removeItem(OLD_TOKEN_KEY); } catch (e) { /* no storage */ }
    try {
      const a = await sessionAnswer(await sessionCall('GET'));
      setSession(a.token || '');
    } catch (e) { setSession(''); }
  }

  // signOut ends the session on the server, for every tab.
  async function signOut() {
    try { await sessionCall('DELETE'); } catch (e) { /* the cookie is cleared below anyway */ }
    setSession('');
  }

  function showAuth(message, bad) {
    $('auth').hidden = false;
    const m = $('auth-message');
    m.textContent = message || '';
    m.classList.toggle('bad', !!bad);
    $('auth-cancel').hidden = !signedIn() || !!bad;
    $('token-input').focus();
  }

  function hideAuth() {
    $('auth').hidden = true;
    $('auth-message').textContent = '';
    $('token-input').value = '';
  }

  function showError(err) {
    if (err && err.auth) return; // the token panel says it
    const msg = err && err.message ? err.message : String(err);
    $('error-text').textContent = msg;
    $('error-bar').hidden = false;
  }

  function clearError() {
    $('error-bar').hidden = true;
    $('error-text').textContent = '';
  }

  let flashTimer = null;
  function flash(msg) {
    const f = $('flash');
    f.textContent = msg;
    f.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { f.hidden = true; }, 5000);
  }

  // ---- API ---------------------------------------------------------------

  class APIError extends Error {
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
  async function api(path, opts) {
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
        stopView();
        setSession('');
        showAuth('The API answered 401 (' + message + '). Sign in again with an admin token.', true);
      }
      throw err;
    }
    if (text && data === null) throw new APIError('The API answered with invalid JSON for ' + path, res.status, 'invalid_response');
    return data;
  }

  // ---- router --------------------------------------------------------------

  let gen = 0;           // render generation: async work checks it is still current
  let leaveHooks = [];   // run when the current view is left (timers)
  let lastEventsHash = '#/events';

  function stopView() {
    gen++;
    const hooks = leaveHooks;
    leaveHooks = [];
    for (const f of hooks) { try { f(); } catch (e) { /* ignore */ } }
  }

  function parseHash() {
    const raw = location.hash.replace(/^#/, '');
    const q = raw.indexOf('?');
    const path = q >= 0 ? raw.slice(0, q) : raw;
    const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
    return { parts: path.split('/').filter(Boolean), params };
  }

  function navigate(hash, replace) {
    if (replace) {
      history.replaceState(null, '', hash);
      route();
    } else {
      location.hash = hash;
    }
  }

  function route() {
    stopView();
    const { parts, params } = parseHash();
    const section = parts[0] || '';
    for (const a of document.querySelectorAll('#nav a')) {
      a.classList.toggle('active', a.dataset.view === section);
    }
    const view = $('view');
    view.replaceChildren();
    const my = gen;
    const ctx = {
      view,
      params,
      alive: () => my === gen,
      onLeave: (f) => { leaveHooks.push(f); },
    };
    if (!signedIn()) {
      showAuth('Sign in with an admin API token to use the console.', false);
      view.append(h('p', { class: 'empty' }, 'Signed out.'));
      return;
    }
    switch (section) {
      case 'events':
        if (parts.length > 1) {
          let id = parts.slice(1).join('/');
          try { id = decodeURIComponent(id); } catch (e) { /* keep raw */ }
          viewEvent(ctx, id);
        } else {
          viewEvents(ctx);
        }
        break;
      case 'failed': viewFailed(ctx); break;
      case 'destinations': viewDestinations(ctx); break;
      case 'sources':
        if (parts.length > 1) {
          let name = parts.slice(1).join('/');
          try { name = decodeURIComponent(name); } catch (e) { /* keep raw */ }
          viewSource(ctx, name);
        } else {
          viewSources(ctx);
        }
        break;
      default: location.replace('#/events');
    }
  }

  // ---- shared lookups ---------------------------------------------------

  async function sourceNames() {
    try { return rows(await apiAll('/api/v1/sources')).map((s) => String(s.name)); } catch (e) { return []; }
  }

  async function destinationNames() {
    try { return rows(await apiAll('/api/v1/destinations')).map((d) => String(d.name)); } catch (e) { return []; }
  }

  function fillSelect(sel, names, current) {
    const set = new Set(names);
    if (current && !set.has(current)) names = names.concat([current]);
    for (const n of names) sel.append(h('option', { value: n }, n));
    sel.value = current || '';
  }

  // ---- retry button --------------------------------------------------------

  function retryButton(d, after) {
    if (!RETRYABLE.has(d.status)) return null;
    const b = h('button', { type: 'button', class: 'small' }, 'Retry');
    b.addEventListener('click', async (e) => {
      e.stopPropagation();
      if (d.status === 'succeeded' && !confirm('This delivery to ' + d.destination + ' already succeeded. Send it again?')) return;
      b.disabled = true;
      b.textContent = 'Retrying…';
      try {
        const res = await api('/api/v1/deliveries/' + encodeURIComponent(d.id) + '/retry', { method: 'POST' });
        flash('Retry queued: delivery ' + d.id + ' to ' + d.destination + '.');
        if (after) after(res || d, b);
      } catch (err) {
        showError(err);
        b.disabled = false;
        b.textContent = 'Retry';
      }
    });
    return b;
  }

  // cancelButton takes a failed delivery out of the failed queue.
  function cancelButton(d, after) {
    if (d.status !== 'failed') return null;
    const b = h('button', { type: 'button', class: 'small' }, 'Cancel');
    b.addEventListener('click', async (e) => {
      e.stopPropagation();
      if (!confirm('Cancel the delivery of ' + d.event_id + ' to ' + d.destination + '? It leaves the failed queue and is not sent again unless retried.')) return;
      b.disabled = true;
      b.textContent = 'Cancelling…';
      try {
        const res = await api('/api/v1/deliveries/' + encodeURIComponent(d.id) + '/cancel', { method: 'POST' });
        flash('Cancelled: delivery ' + d.id + ' to ' + d.destination + '.');
        if (after) after(res || d, b);
      } catch (err) {
        showError(err);
        b.disabled = false;
        b.textContent = 'Cancel';
      }
    });
    return b;
  }

  // ---- view: events --------------------------------------------------------

  let tailOn = false; // remembered while the tab lives

  function viewEvents(ctx) {
    const p = ctx.params;
    const f = { source: p.get('source') || '', type: p.get('type') || '', status: p.get('status') || '' };
    lastEventsHash = '#/events' + qs(f);

    const sourceSel = h('select', { name: 'source' }, h('option', { value: '' }, 'all sources'));
    fillSelect(sourceSel, [], f.source);
    const typeIn = h('input', { type: 'text', name: 'type', placeholder: 'any type', value: f.type, size: 18 });
    const statusSel = h('select', { name: 'status', value: f.status },
      h('option', { value: '' }, 'any'), STATUSES.map((s) => h('option', { value: s }, s)));
    const tailBtn = h('button', { type: 'button', class: 'toggle', 'aria-pressed': 'false' }, 'Live tail');
    const form = h('form', { class: 'toolbar', role: 'search' },
      h('label', null, 'Source', sourceSel),
      h('label', null, 'Type', typeIn),
      h('label', null, 'Delivery status', statusSel),
      h('button', { type: 'submit', class: 'primary' }, 'Filter'),
      h('button', { type: 'button', onclick: () => navigate('#/events', true) }, 'Clear'),
      h('span', { class: 'spacer' }),
      tailBtn);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      navigate('#/events' + qs({ source: sourceSel.value, type: typeIn.value.trim(), status: statusSel.value }), true);
    });
    sourceSel.addEventListener('change', () => form.requestSubmit());
    statusSel.addEventListener('change', () => form.requestSubmit());

    const tbody = h('tbody');
    const COLS = 7;
    const statusLine = h('div', { class: 'status-line' });
    const moreBtn = h('button', { type: 'button' }, 'Load more');
    const moreWrap = h('div', { class: 'more', hidden: true }, moreBtn);
    ctx.view.append(h('h1', null, 'Events'), form, statusLine,
      table([th('Received'), th('Source'), th('Type'), th('External ID'), th('Key'), th('Event ID'), th('')], tbody),
      moreWrap);

    sourceNames().then((names) => {
      if (!ctx.alive()) return;
      sourceSel.replaceChildren(h('option', { value: '' }, 'all sources'));
      fillSelect(sourceSel, names, f.source);
    });

    const shown = new Set();
    let cursor = null;
    let loaded = false;

    function eventRow(ev, isNew) {
      const href = '#/events/' + encodeURIComponent(ev.id);
      const tr = h('tr', { class: 'clickable' + (isNew ? ' new' : '') },
        timeCell(ev.received_at),
        h('td', null, orDash(ev.source)),
        h('td', { class: 'wrap' }, orDash(ev.type)),
        h('td', { class: 'mono wrap' }, orDash(ev.external_id)),
        h('td', { class: 'mono wrap' }, orDash(ev.key)),
        h('td', { class: 'mono nowrap' }, h('a', { href }, String(ev.id))),
        h('td', null, ev.stale ? badge('stale') : null));
      tr.addEventListener('click', (e) => {
        if (e.target.closest('a, button')) return;
        const sel = window.getSelection();
        if (sel && sel.toString()) return; // let people copy text
        location.hash = href;
      });
      return tr;
    }

    function syncEmpty() {
      const empty = tbody.querySelector('tr.empty-row');
      if (shown.size === 0 && !empty) tbody.append(emptyRow(COLS, 'No events' + (f.source || f.type || f.status ? ' match these filters.' : ' yet.')));
      if (shown.size > 0 && empty) empty.remove();
    }

    function listPath(after) {
      return '/api/v1/events' + qs({ limit: 50, body: 'false', source: f.source, type: f.type, status: f.status, cursor: after });
    }

    async function loadPage(after) {
      moreBtn.disabled = true;
      try {
        const res = await api(listPath(after));
        if (!ctx.alive()) return;
        const frag = document.createDocumentFragment();
        for (const ev of rows(res)) {
          if (shown.has(ev.id)) continue;
          shown.add(ev.id);
          frag.append(eventRow(ev, false));
        }
        tbody.append(frag);
        cursor = res && res.next_cursor ? res.next_cursor : null;
        moreWrap.hidden = !cursor;
        syncEmpty();
      } catch (e) {
        if (ctx.alive()) showError(e);
      } finally {
        moreBtn.disabled = false;
        loaded = true;
      }
    }
    moreBtn.addEventListener('click', () => { if (cursor) loadPage(cursor); });

    // Live tail: poll the newest page every 2 s and prepend the events not
    // shown yet. One poll at a time (setTimeout chain, not setInterval).
    let tailTimer = null;
    ctx.onLeave(() => clearTimeout(tailTimer));

    function setTail(on) {
      tailOn = on;
      tailBtn.classList.toggle('on', on);
      tailBtn.setAttribute('aria-pressed', on ? 'true' : 'false');
      tailBtn.textContent = on ? '● Live tail on' : 'Live tail';
      clearTimeout(tailTimer);
      if (on) schedule(0);
      else statusLine.textContent = '';
    }

    function schedule(ms) {
      clearTimeout(tailTimer);
      tailTimer = setTimeout(poll, ms);
    }

    async function poll() {
      if (!ctx.alive() || !tailOn) return;
      if (document.hidden || !loaded) { schedule(TAIL_MS); return; }
      try {
        const res = await api(listPath(''));
        if (!ctx.alive() || !tailOn) return;
        const page = rows(res);
        const fresh = page.filter((ev) => !shown.has(ev.id));
        if (fresh.length) {
          const hadRows = shown.size > 0;
          const frag = document.createDocumentFragment();
          for (const ev of fresh) {
            shown.add(ev.id);
            frag.append(eventRow(ev, true));
          }
          tbody.prepend(frag);
          syncEmpty();
          if (hadRows && fresh.length === page.length && res && res.next_cursor) {
            statusLine.replaceChildren(h('span', { class: 'warn' },
              'More than ' + page.length + ' events arrived between two polls; some may be missing here. Reload to see them all.'));
            schedule(TAIL_MS);
            return;
          }
        }
        statusLine.textContent = 'Live tail: checked at ' + fmtTime(new Date().toISOString()) +
          (fresh.length ? ', ' + fresh.length + ' new' : '') + '.';
      } catch (e) {
        if (!ctx.alive()) return;
        if (e.auth) return; // stopped; resumes when a token is given
        showError(e);
      }
      if (ctx.alive() && tailOn) schedule(TAIL_MS);
    }

    tailBtn.addEventListener('click', () => setTail(!tailOn));
    loadPage('').then(() => { if (ctx.alive() && tailOn) setTail(true); });
  }

  // ---- view: event detail ----------------------------------------------

  function viewEvent(ctx, id) {
    const back = h('a', { href: lastEventsHash }, '← Events');
    const refresh = h('button', { type: 'button' }, 'Refresh');
    const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    ctx.view.append(h('div', { class: 'toolbar' }, back, h('span', { class: 'spacer' }), refresh),
      h('h1', null, 'Event ', h('span', { class: 'mono' }, id)), body);

    async function load() {
      refresh.disabled = true;
      try {
        const ev = await api('/api/v1/events/' + encodeURIComponent(id));
        if (!ctx.alive()) return;
        body.replaceChildren(renderEvent(ev, load));
      } catch (e) {
        if (!ctx.alive()) return;
        if (!body.firstChild || body.querySelector('p.muted')) {
          body.replaceChildren(h('p', { class: 'empty' }, 'Could not load this event.'));
        }
        showError(e);
      } finally {
        refresh.disabled = false;
      }
    }
    refresh.addEventListener('click', load);
    load();
  }

  function renderEvent(ev, reload) {
    const meta = h('dl', { class: 'meta' });
    const item = (k, v) => meta.append(h('dt', null, k), h('dd', null, v));
    item('ID', h('span', { class: 'mono' }, String(ev.id)));
    item('Source', h('a', { href: '#/events' + qs({ source: ev.source }) }, String(ev.source)));
    item('Type', orDash(ev.type));
    item('External ID', ev.external_id ? h('span', { class: 'mono' }, String(ev.external_id)) : orDash(null));
    item('Key', ev.key ? h('span', { class: 'mono' }, String(ev.key)) : orDash(null));
    item('Occurred at', ev.occurred_at ? timeEl(ev.occurred_at, true) : orDash(null));
    item('Received at', timeEl(ev.received_at, true));
    item('Request ID', ev.request_id ? h('span', { class: 'mono' }, String(ev.request_id)) : orDash(null));
    item('Stale', ev.stale ? badge('stale') : 'no');
    item('Content type', orDash(ev.content_type));

    // Headers: an object of string lists, shown sorted by name.
    const hdrs = ev.headers && typeof ev.headers === 'object' ? ev.headers : {};
    const names = Object.keys(hdrs).sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
    const hbody = h('tbody');
    for (const n of names) {
      const vals = Array.isArray(hdrs[n]) ? hdrs[n] : [hdrs[n]];
      for (const v of vals) hbody.append(h('tr', null, h('td', null, n), h('td', null, String(v))));
    }
    if (!names.length) hbody.append(emptyRow(2, 'No headers stored.'));
    const headersEl = h('div', { class: 'table-wrap headers' }, h('table', null, hbody));

    const deliveries = Array.isArray(ev.deliveries) ? ev.deliveries : [];
    const timeline = h('div');
    if (!deliveries.length) timeline.append(h('p', { class: 'panel muted' }, 'No deliveries: no subscription matched this event.'));
    for (const d of deliveries) timeline.append(deliveryCard(d, reload));

    return h('div', null,
      h('div', { class: 'grid2' },
        h('section', null, h('h2', null, 'Metadata'), h('div', { class: 'panel' }, meta)),
        h('section', null, h('h2', null, 'Headers'), headersEl)),
      h('section', null, h('h2', null, 'Body'), bodyBlock(ev)),
      h('section', null, h('h2', null, 'Delivery timeline (' + deliveries.length + ')'), timeline));
  }

  function bodyBlock(ev) {
    if (typeof ev.body === 'string') {
      if (ev.body === '') return h('p', { class: 'muted' }, '(empty body)');
      let text = ev.body;
      let label = null;
      try {
        JSON.parse(text);
        text = prettyJSON(text);
        label = 'JSON, pretty-printed';
      } catch (e) { /* not JSON: raw text */ }
      return h('div', null, label ? h('p', { class: 'muted small' }, label) : null, h('pre', { class: 'body' }, text));
    }
    if (typeof ev.body_base64 === 'string') {
      let size = '';
      try { size = ' (' + atob(ev.body_base64).length + ' bytes)'; } catch (e) { /* ignore */ }
      return h('div', null,
        h('p', { class: 'note' }, 'The body is not valid UTF-8; it is shown base64-encoded' + size + '.'),
        h('pre', { class: 'body' }, ev.body_base64));
    }
    return h('p', { class: 'muted' }, 'No body stored.');
  }

  function deliveryCard(d, reload) {
    const head = h('div', { class: 'delivery-head' },
      badge(String(d.status)),
      h('h3', null, String(d.destination)),
      h('span', { class: 'mono small muted' }, String(d.id)),
      h('span', { class: 'spacer' }),
      retryButton(d, () => setTimeout(reload, 500)));

    const metaItems = [
      'attempts: ' + (d.attempt_count ?? 0),
      d.subscription_id ? 'subscription: ' + d.subscription_id : null,
      'created: ' + fmtTime(d.created_at),
      'updated: ' + fmtTime(d.updated_at),
      d.last_attempt_at ? 'last attempt: ' + fmtTime(d.last_attempt_at) : null,
      d.next_attempt_at ? 'next attempt: ' + fmtTime(d.next_attempt_at) + ' (' + fmtRel(d.next_attempt_at) + ')' : null,
      d.last_status_code ? 'last status: ' + d.last_status_code : null,
    ].filter(Boolean).map((t) => h('span', null, t));

    const attempts = Array.isArray(d.attempts) ? d.attempts.slice().sort((a, b) => (a.number || 0) - (b.number || 0)) : [];
    const list = h('ol', { class: 'timeline' });
    for (const a of attempts) {
      const code = a.status_code;
      const ok = code >= 200 && code < 300 && !a.error;
      list.append(h('li', { class: ok ? 'ok' : 'bad' },
        h('div', { class: 'attempt-line' },
          h('strong', null, 'Attempt ' + a.number),
          timeEl(a.started_at),
          h('span', { class: 'muted' }, fmtMs(a.duration_ms)),
          code ? badge(String(code), ok ? 'ok' : 'bad') : badge('no response', 'bad'),
          a.error ? h('span', { class: 'err' }, String(a.error)) : null),
        a.response_excerpt ? h('pre', { class: 'excerpt' }, String(a.response_excerpt)) : null));
    }
    if (!attempts.length) list.append(h('li', null, muted('No attempts yet.')));

    return h('div', { class: 'panel delivery' },
      head,
      h('div', { class: 'delivery-meta' }, metaItems),
      d.reason ? h('p', { class: 'delivery-meta' }, 'reason: ' + d.reason) : null,
      d.last_error ? h('p', { class: 'delivery-error' }, String(d.last_error)) : null,
      list);
  }

  // ---- view: failed queue --------------------------------------------------

  let activeReplay = null; // the replay job being followed, across visits

  function viewFailed(ctx) {
    const dest = ctx.params.get('destination') || '';
    const destSel = h('select', { name: 'destination' }, h('option', { value: '' }, 'all destinations'));
    fillSelect(destSel, [], dest);
    destSel.addEventListener('change', () => navigate('#/failed' + qs({ destination: destSel.value }), true));
    const replayBtn = h('button', { type: 'button', class: 'danger' }, dest ? 'Replay all failed to ' + dest : 'Replay all failed');
    const refresh = h('button', { type: 'button', onclick: () => route() }, 'Refresh');
    const replayBox = h('div', { class: 'replay panel', hidden: true });
    const tbody = h('tbody');
    const COLS = 7;
    const moreBtn = h('button', { type: 'button' }, 'Load more');
    const moreWrap = h('div', { class: 'more', hidden: true }, moreBtn);

    ctx.view.append(h('h1', null, 'Failed queue'),
      h('div', { class: 'toolbar' }, h('label', null, 'Destination', destSel), refresh, h('span', { class: 'spacer' }), replayBtn),
      replayBox,
      table([th('Updated'), th('Destination'), th('Event'), th('Attempts', 'num'), th('Last status'), th('Last error'), th('')], tbody),
      moreWrap);

    destinationNames().then((names) => {
      if (!ctx.alive()) return;
      destSel.replaceChildren(h('option', { value: '' }, 'all destinations'));
      fillSelect(destSel, names, dest);
    });

    let cursor = null;
    let count = 0;

    function row(d) {
      const action = h('td', { class: 'nowrap' });
      action.append(retryButton(d, (res) => {
        action.replaceChildren(badge(String(res.status || 'pending')), ' ', muted('queued'));
      }) || '', ' ', cancelButton(d, (res) => {
        action.replaceChildren(badge(String(res.status || 'cancelled')));
      }) || '');
      return h('tr', null,
        timeCell(d.updated_at),
        h('td', null, String(d.destination)),
        h('td', { class: 'mono nowrap' }, h('a', { href: '#/events/' + encodeURIComponent(d.event_id) }, String(d.event_id))),
        h('td', { class: 'num' }, fmtNum(d.attempt_count)),
        h('td', null, d.last_status_code ? String(d.last_status_code) : muted('—')),
        h('td', { class: 'wrap' },
          d.last_error ? String(d.last_error) : muted('—'),
          d.reason ? h('div', { class: 'muted small' }, 'reason: ' + d.reason) : null),
        action);
    }

    async function loadPage(after) {
      moreBtn.disabled = true;
      try {
        const res = await api('/api/v1/deliveries' + qs({ status: 'failed', destination: dest, limit: 50, cursor: after }));
        if (!ctx.alive()) return;
        const list = rows(res);
        if (!after) tbody.replaceChildren();
        for (const d of list) tbody.append(row(d));
        count += list.length;
        if (!count) tbody.append(emptyRow(COLS, 'The failed queue is empty.'));
        cursor = res && res.next_cursor ? res.next_cursor : null;
        moreWrap.hidden = !cursor;
      } catch (e) {
        if (ctx.alive()) showError(e);
      } finally {
        moreBtn.disabled = false;
      }
    }
    moreBtn.addEventListener('click', () => { if (cursor) loadPage(cursor); });

    // Replay: start a job, then poll its progress until it is no longer running.
    let pollTimer = null;
    ctx.onLeave(() => clearTimeout(pollTimer));

    function showReplay(job) {
      replayBox.hidden = false;
      const total = Number(job.total) || 0;
      const done = Number(job.done) || 0;
      const state = String(job.state || '');
      const prog = h('progress', { max: Math.max(total, 1) });
      prog.value = total ? done : (state === 'running' ? 0 : 1);
      if (state === 'running' && !total) prog.removeAttribute('value'); // indeterminate
      replayBox.replaceChildren();
      add(replayBox, [
        h('strong', null, 'Replay'),
        h('span', { class: 'mono small' }, String(job.id)),
        badge(state, state === 'done' ? 'ok' : state === 'failed' ? 'bad' : state),
        prog,
        h('span', null, done + ' / ' + total + ' done'),
        h('span', { class: 'muted' }, fmtNum(job.queued ?? 0) + ' queued'),
        job.error ? h('span', { class: 'delivery-error' }, String(job.error)) : null]);
    }

    async function pollReplay() {
      if (!ctx.alive() || !activeReplay) return;
      try {
        const job = await api('/api/v1/replays/' + encodeURIComponent(activeReplay.id));
        if (!ctx.alive()) return;
        showReplay(job);
        if (job.state === 'running') {
          pollTimer = setTimeout(pollReplay, REPLAY_POLL_MS);
          return;
        }
        activeReplay = null;
        replayBtn.disabled = false;
        flash('Replay ' + job.id + ' ' + job.state + ': ' + (job.queued ?? 0) + ' deliveries queued.');
        count = 0;
        loadPage('');
      } catch (e) {
        if (!ctx.alive()) return;
        replayBtn.disabled = false;
        if (e.auth) return;
        if (e.status === 404) activeReplay = null; // the job is gone (e.g. restart)
        showError(e);
      }
    }

    replayBtn.addEventListener('click', async () => {
      const what = dest ? 'all failed deliveries to ' + dest : 'all failed deliveries';
      if (!confirm('Replay ' + what + '? Each one is queued for a new attempt.')) return;
      replayBtn.disabled = true;
      try {
        const body = { status: 'failed' };
        if (dest) body.destination = dest;
        const job = await api('/api/v1/replays', { method: 'POST', body });
        activeReplay = { id: job.id };
        if (!ctx.alive()) return;
        showReplay(job);
        pollTimer = setTimeout(pollReplay, REPLAY_POLL_MS);
      } catch (e) {
        replayBtn.disabled = false;
        showError(e);
      }
    });

    loadPage('');
    if (activeReplay) {
      replayBtn.disabled = true;
      pollReplay();
    }
  }

  // ---- stats charts (GET /api/v1/stats) ------------------------------------

  // The SVG namespace name (an identifier, never fetched), split so that
  // the script holds no absolute URL (console_test.go checks none).
  const SVG_NS = 'http:' + '//www.w3.org/2000/svg';

  // svg builds an SVG element; attrs are set with setAttribute (presentation
  // attributes and classes only: the CSP forbids inline styles).
  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    for (const c of children) if (c) el.appendChild(c);
    return el;
  }

  // barChart draws stacked bars, one per point: layers is a list of
  // {cls, label, values} (values: one number per point), drawn bottom up in
  // the class cls (console.css colours it). start and step (seconds) date
  // each bar's tooltip.
  function barChart(title, layers, start, step) {
    const n = layers.length ? layers[0].values.length : 0;
    const W = 600, H = 80;
    const totals = Array.from({ length: n }, (_, i) => layers.reduce((t, l) => t + (Number(l.values[i]) || 0), 0));
    const top = Math.max(1, ...totals);
    const bw = n ? W / n : W;
    const g = svg('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img', 'aria-label': title });
    g.appendChild(svg('rect', { class: 'chart-bg', x: 0, y: 0, width: W, height: H }));
    const t0 = Date.parse(start);
    for (let i = 0; i < n; i++) {
      let y = H;
      const tip = [fmtTime(new Date(t0 + i * step * 1000).toISOString())]
        .concat(layers.map((l) => l.label + ' ' + (Number(l.values[i]) || 0))).join(', ');
      for (const l of layers) {
        const v = Number(l.values[i]) || 0;
        if (!v) continue;
        const bh = (v / top) * (H - 2);
        y -= bh;
        const r = svg('rect', { class: l.cls, x: (i * bw).toFixed(2), y: y.toFixed(2), width: Math.max(bw - 1, 0.5).toFixed(2), height: bh.toFixed(2) });
        r.appendChild(svg('title'));
        r.lastChild.textContent = tip;
        g.appendChild(r);
      }
    }
    return h('figure', { class: 'chart-box' }, h('figcaption', null, title, ' ', muted('(max ' + fmtNum(top) + ' per bar)')), g);
  }

  // statsPanel loads GET /api/v1/stats for win (1h, 1d or 1w) and draws
  // a chart per destination (attempts by outcome, with the highest p50
  // and p99 estimates of the window) and per source (events stored).
  function statsPanel(ctx, win) {
    const box = h('section', { class: 'stats' }, h('h2', null, 'Last ' + ({ '1h': 'hour', '1d': 'day', '1w': 'week' }[win] || win)), muted('Loading…'));
    api('/api/v1/stats' + qs({ window: win })).then((st) => {
      if (!ctx.alive()) return;
      const charts = [];
      for (const d of st.destinations || []) {
        const lat = (d.p50_ms || []).filter((v) => v !== null);
        const p99 = (d.p99_ms || []).filter((v) => v !== null);
        const note = lat.length ? ' — p50 ≤ ' + fmtMs(Math.max(...lat)) + ', p99 ≤ ' + fmtMs(Math.max(...p99)) : '';
        charts.push(barChart('Destination ' + d.destination + note, [
          { cls: 'chart-succeeded', label: 'succeeded', values: d.succeeded },
          { cls: 'chart-retried', label: 'retried', values: d.retried },
          { cls: 'chart-failed', label: 'failed', values: d.failed }], st.start, st.step_seconds));
      }
      for (const s of st.sources || []) {
        charts.push(barChart('Source ' + s.source + ' (events)', [{ cls: 'chart-events', label: 'events', values: s.events }], st.start, st.step_seconds));
      }
      box.replaceChildren(box.firstChild, ...(charts.length ? charts : [muted('Nothing counted in this window.')]));
    }, (e) => {
      if (!ctx.alive()) return;
      box.replaceChildren(box.firstChild, muted('Could not load stats.'));
      showError(e);
    });
    return box;
  }

  // ---- view: destinations and subscriptions ------------------------------

  function viewDestinations(ctx) {
    const refresh = h('button', { type: 'button', onclick: () => route() }, 'Refresh');
    const dbody = h('tbody', null, emptyRow(15, 'Loading…'));
    const sbody = h('tbody', null, emptyRow(6, 'Loading…'));
    ctx.view.append(
      h('div', { class: 'toolbar' }, h('h1', null, 'Destinations'), h('span', { class: 'spacer' }), refresh),
      table([th('Name'), th('Type'), th('Origin'), th('State'), th('Ordering'), th('Concurrency', 'num'), th('Retry policy'),
        th('Queued', 'num'), th('In flight', 'num'), th('Attempts', 'num'), th('Succeeded', 'num'), th('Failed', 'num'),
        th('Retried', 'num'), th(''), th('')], dbody),
      h('h2', null, 'Subscriptions'),
      table([th('ID'), th('Source'), th('Destination'), th('Events'), th('Active'), th('Origin')], sbody));
    ctx.view.append(statsPanel(ctx, '1h'));

    function enableButton(d) {
      const b = h('button', { type: 'button', class: 'small primary' }, 'Enable');
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          await api('/api/v1/destinations/' + encodeURIComponent(d.name) + '/enable', { method: 'POST' });
          flash('Destination ' + d.name + ' enabled.');
          if (ctx.alive()) route();
        } catch (e) {
          showError(e);
          b.disabled = false;
        }
      });
      return b;
    }

    function destRow(d) {
      const state = h('td', null, d.disabled ? badge('disabled') : badge('enabled'));
      if (d.disabled) {
        if (d.disabled_reason) state.append(h('div', { class: 'small' }, String(d.disabled_reason)));
        if (d.disabled_at) state.append(h('div', { class: 'muted small', title: d.disabled_at }, 'since ' + fmtTime(d.disabled_at)));
      }
      return h('tr', null,
        h('td', null, h('strong', null, String(d.name))),
        h('td', null, orDash(d.type)),
        h('td', null, orDash(d.origin)),
        state,
        h('td', null, orDash(d.ordering)),
        h('td', { class: 'num' }, fmtNum(d.concurrency)),
        h('td', null, orDash(d.retry_policy)),
        h('td', { class: 'num' }, fmtNum(d.in_memory)),
        h('td', { class: 'num' }, fmtNum(d.in_flight)),
        h('td', { class: 'num' }, fmtNum(d.attempts)),
        h('td', { class: 'num' }, fmtNum(d.succeeded)),
        h('td', { class: 'num' }, fmtNum(d.failed)),
        h('td', { class: 'num' }, fmtNum(d.retried)),
        h('td', { class: 'nowrap' }, h('a', { href: '#/failed' + qs({ destination: d.name }) }, 'failed queue')),
        h('td', null, d.disabled ? enableButton(d) : null));
    }

    function subRow(s) {
      const events = Array.isArray(s.events) && s.events.length ? s.events.join(', ') : null;
      return h('tr', null,
        h('td', { class: 'mono' }, String(s.id)),
        h('td', null, orDash(s.source)),
        h('td', null, orDash(s.destination)),
        h('td', { class: 'wrap' }, events === null ? muted('all') : events),
        h('td', null, s.active ? badge('active') : badge('inactive')),
        h('td', null, orDash(s.origin)));
    }

    Promise.allSettled([apiAll('/api/v1/destinations'), apiAll('/api/v1/subscriptions')]).then(([dr, sr]) => {
      if (!ctx.alive()) return;
      if (dr.status === 'fulfilled') {
        const list = rows(dr.value);
        dbody.replaceChildren(...list.map(destRow));
        if (!list.length) dbody.append(emptyRow(15, 'No destinations configured.'));
      } else {
        dbody.replaceChildren(emptyRow(15, 'Could not load destinations.'));
        showError(dr.reason);
      }
      if (sr.status === 'fulfilled') {
        const list = rows(sr.value);
        sbody.replaceChildren(...list.map(subRow));
        if (!list.length) sbody.append(emptyRow(6, 'No subscriptions.'));
      } else {
        sbody.replaceChildren(emptyRow(6, 'Could not load subscriptions.'));
        if (dr.status === 'fulfilled') showError(sr.reason);
      }
    });
  }

  // ---- view: sources -------------------------------------------------------

  function viewSources(ctx) {
    const tbody = h('tbody', null, emptyRow(7, 'Loading…'));
    ctx.view.append(h('h1', null, 'Sources'),
      table([th('Name'), th('Origin'), th('Ingest path'), th('Verification'), th('Dedupe window'), th('Max body', 'num'), th('')], tbody));
    apiAll('/api/v1/sources').then((res) => {
      if (!ctx.alive()) return;
      const list = rows(res);
      tbody.replaceChildren(...list.map((s) => h('tr', null,
        h('td', null, h('a', { href: '#/sources/' + encodeURIComponent(String(s.name)) }, h('strong', null, String(s.name)))),
        h('td', null, s.origin === 'api' ? 'API' : muted('config file')),
        h('td', { class: 'mono' }, orDash(s.path)),
        h('td', null, Array.isArray(s.verify) && s.verify.length ? s.verify.join(', ') : muted('none')),
        h('td', null, orDash(s.dedupe_window)),
        h('td', { class: 'num' }, fmtBytes(s.max_body)),
        h('td', { class: 'nowrap' }, h('a', { href: '#/events' + qs({ source: s.name }) }, 'events')))));
      if (!list.length) tbody.append(emptyRow(7, 'No sources configured.'));
    }, (e) => {
      if (!ctx.alive()) return;
      tbody.replaceChildren(emptyRow(7, 'Could not load sources.'));
      showError(e);
    });
  }

  // ---- view: one source ---------------------------------------------------
  //
  // A source with its last handshake: the provider's verification request
  // hookd answered (or refused) and did not store as an event.

  function viewSource(ctx, name) {
    const back = h('a', { href: '#/sources' }, '← Sources');
    const refresh = h('button', { type: 'button' }, 'Refresh');
    const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    ctx.view.append(h('div', { class: 'toolbar' }, back, h('span', { class: 'spacer' }), refresh),
      h('h1', null, 'Source ', h('span', { class: 'mono' }, name)), body);

    async function load() {
      refresh.disabled = true;
      try {
        const s = await api('/api/v1/sources/' + encodeURIComponent(name));
        if (!ctx.alive()) return;
        body.replaceChildren(renderSource(s));
      } catch (e) {
        if (!ctx.alive()) return;
        body.replaceChildren(h('p', { class: 'empty' }, 'Could not load this source.'));
        showError(e);
      } finally {
        refresh.disabled = false;
      }
    }
    refresh.addEventListener('click', load);
    load();
  }

  function renderSource(s) {
    const meta = h('dl', { class: 'meta' });
    const item = (k, v) => meta.append(h('dt', null, k), h('dd', null, v));
    item('Name', h('span', { class: 'mono' }, String(s.name)));
    item('Origin', s.origin === 'api' ? 'API' : 'config file');
    item('Ingest path', h('span', { class: 'mono' }, String(s.path)));
    item('Verification', Array.isArray(s.verify) && s.verify.length ? s.verify.join(', ') : muted('none'));
    item('Dedupe window', orDash(s.dedupe_window));
    item('Max body', fmtBytes(s.max_body));
    item('Events', h('a', { href: '#/events' + qs({ source: s.name }) }, 'events of this source'));

    // The last answered and the last refused handshake are kept apart:
    // anyone can send a handshake that is refused.
    const handshake = (hs, refused) => {
      const hsMeta = h('dl', { class: 'meta' });
      const hsItem = (k, v) => hsMeta.append(h('dt', null, k), h('dd', null, v));
      hsItem('Kind', h('span', { class: 'mono' }, String(hs.kind)));
      hsItem('Outcome', refused ? badge('refused', 'failed') : badge('answered', 'succeeded'));
      hsItem('Status', String(hs.status));
      hsItem('At', timeEl(hs.at, true));
      if (hs.error) hsItem('Error', String(hs.error));
      return h('div', { class: 'panel' }, hsMeta);
    };
    const asObject = (v) => (v && typeof v === 'object' ? v : null);
    const answered = asObject(s.last_handshake);
    const refused = asObject(s.last_refused_handshake);
    return h('div', null,
      h('section', null, h('h2', null, 'Source'), h('div', { class: 'panel' }, meta)),
      h('section', null, h('h2', null, 'Last answered handshake'),
        answered ? handshake(answered, false)
          : h('p', { class: 'empty' }, 'No handshake answered yet. Handshakes are answered and not stored as events.')),
      h('section', null, h('h2', null, 'Last refused handshake'),
        refused ? handshake(refused, true)
          : h('p', { class: 'empty' }, 'No handshake refused.')));
  }

  // ---- start -----------------------------------------------------------------

  function init() {
    $('token-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const t = $('token-input').value.trim().replace(/^Bearer\s+/i, '');
      $('token-input').value = '';
      if (!t) {
        showAuth('The token is empty.', true);
        return;
      }
      const refused = await signIn(t);
      if (refused) {
        showAuth(refused, true);
        return;
      }
      hideAuth();
      clearError();
      route();
    });
    $('auth-cancel').addEventListener('click', hideAuth);
    $('auth-change').addEventListener('click', () => showAuth('', false));
    $('auth-forget').addEventListener('click', async () => {
      stopView();
      await signOut();
      clearError();
      $('view').replaceChildren(h('p', { class: 'empty' }, 'Signed out.'));
      showAuth('Signed out. Sign in with an admin token to continue.', false);
    });
    $('error-close').addEventListener('click', clearError);
    window.addEventListener('hashchange', () => { clearError(); route(); });
    updateAuthStatus();
    if (!location.hash) history.replaceState(null, '', '#/events');
    resumeSession().then(route);
  }

  init();
})();
