// hookd console: the events list (filters, live tail) and one event's
// detail with its delivery timeline.

import { STATUSES, h, badge, th, table, emptyRow, muted, orDash, fmtTime, fmtRel, timeEl, timeCell, fmtMs,
  prettyJSON, qs, fillSelect } from './ui.js';
import { api, rows, showError, sourceNames } from './api.js';
import { retryButton } from './actions.js';
import { navigate } from './router.js';

const TAIL_MS = 2000;

let lastEventsHash = '#/events';

// ---- view: events --------------------------------------------------------

let tailOn = false; // remembered while the tab lives

export function viewEvents(ctx) {
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

export function viewEvent(ctx, id) {
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
