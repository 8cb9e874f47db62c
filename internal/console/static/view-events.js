// hookd console: the events list (find: filters kept in the hash, live
// tail, replay of what matches) and one event's detail with its delivery
// timeline and a replay to chosen destinations.

import { STATUSES, h, badge, th, table, emptyRow, muted, orDash, fmtTime, fmtRel, timeEl, timeCell, fmtMs,
  prettyJSON, qs, fillSelect, pad } from './ui.js';
import { api, rows, showError, flash, sourceNames, destinationNames } from './api.js';
import { retryButton } from './actions.js';
import { bulkReplay, REPLAY_STATUSES } from './replay.js';
import { route } from './router.js';

const TAIL_MS = 2000;

let lastEventsHash = '#/events';

// ---- view: events --------------------------------------------------------

// The filters of the events view, all kept in the hash's query
// (#/events?type=order.*&q=…) so a filtered view is a link.
const FILTERS = ['since', 'until', 'type', 'status', 'source', 'destination', 'q'];

// QUICK are the quick time ranges: since=1h in the hash means "received
// in the last hour" whenever the link is opened.
const QUICK = { '1h': ['Last hour', 3600e3], '1d': ['Last day', 86400e3], '1w': ['Last week', 7 * 86400e3] };

const Q_MAX_BYTES = 256;

// apiTime turns a time filter of the hash into the API's RFC 3339: a
// quick range counts back from now; anything else is passed as given
// (the API refuses what is not RFC 3339, and the error shows).
function apiTime(v) {
  if (!v) return '';
  if (QUICK[v]) return new Date(Date.now() - QUICK[v][1]).toISOString();
  return v;
}

// localInput formats a time for a datetime-local input (local time, to
// the minute); '' when it is not a time.
function localInput(v) {
  const d = new Date(QUICK[v] ? apiTime(v) : v);
  if (!v || isNaN(d.getTime())) return '';
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
}

// describeFilters says in words what the filters select.
function describeFilters(f) {
  const parts = [];
  if (f.source) parts.push('source ' + f.source);
  if (f.type) parts.push('type ' + f.type);
  if (f.since && QUICK[f.since]) parts.push('received in the ' + QUICK[f.since][0].toLowerCase());
  else if (f.since) parts.push('received from ' + fmtTime(f.since));
  if (f.until) parts.push('received before ' + fmtTime(f.until));
  return parts.join(', ');
}

let tailOn = false; // remembered while the tab lives

export function viewEvents(ctx) {
  const p = ctx.params;
  const f = {};
  for (const k of FILTERS) f[k] = (p.get(k) || '').trim();
  const filtered = FILTERS.some((k) => f[k]);
  lastEventsHash = '#/events' + qs(f);

  const sinceInit = localInput(f.since);
  const untilInit = localInput(f.until);
  const sinceIn = h('input', { type: 'datetime-local', name: 'since', value: sinceInit, 'aria-label': 'Received from' });
  const untilIn = h('input', { type: 'datetime-local', name: 'until', value: untilInit, 'aria-label': 'Received before' });
  const quick = Object.entries(QUICK).map(([k, [label]]) => h('button', {
    type: 'button', class: 'small quick' + (f.since === k && !f.until ? ' on' : ''), 'data-range': k,
    'aria-pressed': f.since === k && !f.until ? 'true' : 'false',
    onclick: () => go(Object.assign({}, f, { since: k, until: '' })),
  }, label));
  const typeIn = h('input', { type: 'text', name: 'type', placeholder: 'order.created or order.*', value: f.type, size: 18,
    maxlength: 256, spellcheck: 'false' });
  const statusSel = h('select', { name: 'status', value: f.status },
    h('option', { value: '' }, 'any'), STATUSES.map((s) => h('option', { value: s }, s)));
  const sourceSel = h('select', { name: 'source' }, h('option', { value: '' }, 'all sources'));
  fillSelect(sourceSel, [], f.source);
  const destSel = h('select', { name: 'destination' }, h('option', { value: '' }, 'all destinations'));
  fillSelect(destSel, [], f.destination);
  const qIn = h('input', { type: 'search', name: 'q', placeholder: 'text in the body', value: f.q, size: 18, maxlength: 256,
    spellcheck: 'false' });
  const filterError = h('p', { id: 'filter-error', class: 'field-error', role: 'alert', hidden: true });
  const tailBtn = h('button', { type: 'button', id: 'live-tail', class: 'toggle', 'aria-pressed': 'false' }, 'Live tail');

  const form = h('form', { id: 'filter-form', class: 'filter-bar panel', role: 'search', novalidate: true },
    h('div', { class: 'filter-row' },
      h('label', null, 'From', sinceIn),
      h('label', null, 'To', untilIn),
      h('span', { class: 'quick-picks', role: 'group', 'aria-label': 'Quick time ranges' }, quick)),
    h('div', { class: 'filter-row' },
      h('label', null, 'Type', typeIn),
      h('label', null, 'Delivery status', statusSel),
      h('label', null, 'Source', sourceSel),
      h('label', null, 'Destination', destSel),
      h('label', null, 'Body contains', qIn)),
    h('div', { class: 'filter-row' },
      h('button', { type: 'submit', id: 'filter-apply', class: 'primary' }, 'Apply filters'),
      h('button', { type: 'button', id: 'filter-clear', onclick: () => go({}) }, 'Clear'),
      h('span', { class: 'spacer' }),
      tailBtn),
    filterError);

  function setFilterError(msg) {
    filterError.textContent = msg || '';
    filterError.hidden = !msg;
  }

  // go shows the events of filters g: a new history entry, so Back
  // returns to the previous filters.
  function go(g) {
    const hash = '#/events' + qs(g);
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    // An untouched time keeps its value of the hash (a quick range stays
    // relative, seconds are kept); an edited one is sent as UTC.
    const time = (input, init, old) => {
      if (input.value === init) return old;
      if (!input.value) return '';
      const d = new Date(input.value);
      return isNaN(d.getTime()) ? null : d.toISOString();
    };
    const g = {
      since: time(sinceIn, sinceInit, f.since),
      until: time(untilIn, untilInit, f.until),
      type: typeIn.value.trim(),
      status: statusSel.value,
      source: sourceSel.value,
      destination: destSel.value,
      q: qIn.value,
    };
    if (g.since === null || g.until === null) {
      setFilterError('The time is not a valid date and time.');
      return;
    }
    if (g.since && g.until && Date.parse(apiTime(g.since)) >= Date.parse(apiTime(g.until))) {
      setFilterError('"From" must be before "To".');
      (g.since === f.since ? untilIn : sinceIn).focus();
      return;
    }
    if (new TextEncoder().encode(g.q).length > Q_MAX_BYTES) {
      setFilterError('The body search is at most ' + Q_MAX_BYTES + ' bytes.');
      qIn.focus();
      return;
    }
    if (/\s/.test(g.type)) {
      setFilterError('A type or pattern has no spaces (e.g. order.created, order.*, *.created).');
      typeIn.focus();
      return;
    }
    setFilterError('');
    go(g);
  });
  for (const sel of [sourceSel, statusSel, destSel]) sel.addEventListener('change', () => form.requestSubmit());

  // Replay matching…: the current filters as a bulk replay (replay.js).
  const replay = bulkReplay(ctx, {
    key: 'events',
    label: 'Replay matching…',
    filter: () => {
      if (f.q) return 'A bulk replay cannot search bodies: clear "Body contains" to replay by the other filters.';
      if (f.status && !REPLAY_STATUSES.has(f.status)) return 'Deliveries being attempted (' + f.status + ') cannot be replayed: pick another status.';
      const body = {};
      for (const k of ['source', 'type', 'status', 'destination']) if (f[k]) body[k] = f[k];
      if (f.since) body.since = apiTime(f.since);
      if (f.until) body.until = apiTime(f.until);
      return body;
    },
    describe: () => {
      const what = describeFilters(f);
      if (f.status) {
        return 'Queue again every ' + f.status + ' delivery' + (f.destination ? ' to ' + f.destination : '') +
          ' of the events ' + (what ? 'matching: ' + what : 'stored (no other filter)') + '?';
      }
      return 'Route again ' + (what ? 'every event matching: ' + what : 'EVERY stored event (no filter is set)') +
        ', to ' + (f.destination ? 'destination ' + f.destination + ' only' : 'the subscriptions as they are now') +
        '? Deliveries that succeeded are sent again.';
    },
  });

  const tbody = h('tbody');
  const COLS = 7;
  const statusLine = h('div', { class: 'status-line' });
  const moreBtn = h('button', { type: 'button' }, 'Load more');
  const moreWrap = h('div', { class: 'more', hidden: true }, moreBtn);
  const tableEl = table([th('Received'), th('Source'), th('Type'), th('External ID'), th('Key'), th('Event ID'), th('')], tbody);
  tableEl.querySelector('table').id = 'events-table';
  ctx.view.append(
    h('div', { class: 'toolbar' }, h('h1', null, 'Events'), h('span', { class: 'spacer' }), replay.button),
    form, replay.panel, statusLine, tableEl, moreWrap);

  sourceNames().then((names) => {
    if (!ctx.alive()) return;
    sourceSel.replaceChildren(h('option', { value: '' }, 'all sources'));
    fillSelect(sourceSel, names, f.source);
  });
  destinationNames().then((names) => {
    if (!ctx.alive()) return;
    destSel.replaceChildren(h('option', { value: '' }, 'all destinations'));
    fillSelect(destSel, names, f.destination);
  });

  const shown = new Set();
  let cursor = null;
  let loaded = false;

  function eventRow(ev, isNew) {
    const href = '#/events/' + encodeURIComponent(ev.id);
    const tr = h('tr', { class: 'clickable' + (isNew ? ' new' : ''), 'data-event-id': String(ev.id),
      'data-received': String(ev.received_at || '') },
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

  function syncEmpty(scanning) {
    const empty = tbody.querySelector('tr.empty-row');
    if (empty) empty.remove();
    if (shown.size === 0) {
      tbody.append(emptyRow(COLS, scanning ? 'No match in the events searched so far: Load more searches older ones.'
        : 'No events' + (filtered ? ' match these filters.' : ' yet.')));
    }
  }

  function listQuery(after) {
    return { limit: 50, body: 'false', source: f.source, type: f.type, status: f.status, destination: f.destination,
      q: f.q, since: apiTime(f.since), until: apiTime(f.until), cursor: after };
  }

  // apiFailed shows an error of the listing: a refused filter (400) next
  // to the filter bar, anything else in the error bar.
  function apiFailed(e) {
    if (e.status === 400) setFilterError('The filters were refused: ' + e.message);
    else showError(e);
  }

  async function loadPage(after) {
    moreBtn.disabled = true;
    try {
      const res = await api('/api/v1/events' + qs(listQuery(after)));
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
      moreBtn.textContent = f.q ? 'Search older events' : 'Load more';
      syncEmpty(!!cursor && !!f.q);
    } catch (e) {
      if (!ctx.alive()) return;
      if (!tbody.firstChild) tbody.append(emptyRow(COLS, 'Could not list the events.'));
      apiFailed(e);
    } finally {
      moreBtn.disabled = false;
      loaded = true;
    }
  }
  moreBtn.addEventListener('click', () => { if (cursor) loadPage(cursor); });

  // insertNew puts a new row in received order (newest first): a status
  // filter can match an older event once a delivery of it changes.
  function insertNew(tr, ev) {
    const at = String(ev.received_at || '');
    for (const row of tbody.querySelectorAll('tr[data-received]')) {
      if (Date.parse(row.dataset.received) < Date.parse(at)) {
        tbody.insertBefore(tr, row);
        return;
      }
    }
    tbody.append(tr);
  }

  // Live tail: poll the newest page (with the filters) every 2 s and add
  // the events not shown yet. One poll at a time (a setTimeout chain).
  // An end time (until) is a fixed window: nothing new can enter it.
  const tailRefused = f.until ? 'Live tail is off while an end time ("To") is set: events received from now on are after it.' : '';
  let tailTimer = null;
  ctx.onLeave(() => clearTimeout(tailTimer));
  if (tailRefused) {
    tailBtn.disabled = true;
    tailBtn.title = tailRefused;
  }

  function setTail(on) {
    if (tailRefused) on = false;
    else tailOn = on;
    tailBtn.classList.toggle('on', on);
    tailBtn.setAttribute('aria-pressed', on ? 'true' : 'false');
    tailBtn.textContent = on ? '● Live tail on' : 'Live tail';
    clearTimeout(tailTimer);
    if (on) schedule(0);
    else statusLine.textContent = tailRefused && tailOn ? tailRefused : '';
  }

  function schedule(ms) {
    clearTimeout(tailTimer);
    tailTimer = setTimeout(poll, ms);
  }

  async function poll() {
    if (!ctx.alive() || !tailOn) return;
    if (document.hidden || !loaded) { schedule(TAIL_MS); return; }
    try {
      const res = await api('/api/v1/events' + qs(listQuery('')));
      if (!ctx.alive() || !tailOn) return;
      const page = rows(res);
      const fresh = page.filter((ev) => !shown.has(ev.id));
      if (fresh.length) {
        const hadRows = shown.size > 0;
        for (const ev of fresh.slice().reverse()) {
          shown.add(ev.id);
          insertNew(eventRow(ev, true), ev);
        }
        syncEmpty(false);
        if (hadRows && fresh.length === page.length && res && res.next_cursor) {
          statusLine.replaceChildren(h('span', { class: 'warn' },
            'More than ' + page.length + ' events arrived between two polls; some may be missing here. Reload to see them all.'));
          schedule(TAIL_MS);
          return;
        }
      }
      statusLine.textContent = 'Live tail' + (filtered ? ' (with these filters)' : '') + ': checked at ' +
        fmtTime(new Date().toISOString()) + (fresh.length ? ', ' + fresh.length + ' new' : '') + '.';
    } catch (e) {
      if (!ctx.alive()) return;
      if (e.auth) return; // stopped; resumes when a token is given
      apiFailed(e);
      if (e.status === 400) { setTail(false); return; }
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
  const replayBtn = h('button', { type: 'button', id: 'replay-event', disabled: true }, 'Replay…');
  const replayBox = h('div', { class: 'replay-box' });
  const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  ctx.view.append(h('div', { class: 'toolbar' }, back, h('span', { class: 'spacer' }), replayBtn, refresh),
    h('h1', null, 'Event ', h('span', { class: 'mono' }, id)), replayBox, body);

  let ev = null;
  async function load() {
    refresh.disabled = true;
    try {
      ev = await api('/api/v1/events/' + encodeURIComponent(id));
      if (!ctx.alive()) return;
      body.replaceChildren(renderEvent(ev, load));
      replayBtn.disabled = false;
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
  replayBtn.addEventListener('click', () => { if (ev) replayPicker(ctx, ev, replayBox, load); });
  load();
}

// replayPicker opens, in box, the destinations to send the event to
// again: a checkbox each, ticked for those it was delivered to. On
// confirm it POSTs /api/v1/events/{id}/replay and shows the deliveries
// the answer holds, then reloads the timeline.
function replayPicker(ctx, ev, box, reload) {
  const delivered = new Set((Array.isArray(ev.deliveries) ? ev.deliveries : []).map((d) => String(d.destination)));
  const list = h('div', { class: 'checks' }, muted('Loading destinations…'));
  const err = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const confirmBtn = h('button', { type: 'button', id: 'replay-confirm', class: 'primary', disabled: true }, 'Replay');
  const cancel = h('button', { type: 'button', onclick: () => box.replaceChildren() }, 'Cancel');
  const result = h('div');
  const form = h('fieldset', { id: 'replay-picker', class: 'panel picker' },
    h('legend', null, 'Send this event again to'),
    list,
    h('p', { class: 'muted small' }, 'A destination needs a subscription (any) to take a replay; the event need not match it now.'),
    err,
    h('div', { class: 'toolbar' }, confirmBtn, cancel),
    result);
  box.replaceChildren(form);

  destinationNames().then((names) => {
    if (!ctx.alive()) return;
    const all = Array.from(new Set(names.concat(Array.from(delivered)))).sort();
    list.replaceChildren(...all.map((n) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'replay-destination', value: n, checked: delivered.has(n) }),
      ' ', n, delivered.has(n) ? muted(' (delivered before)') : null)));
    if (!all.length) list.replaceChildren(muted('No destinations are configured.'));
    confirmBtn.disabled = !all.length;
  });

  confirmBtn.addEventListener('click', async () => {
    const picked = Array.from(list.querySelectorAll('input[name="replay-destination"]:checked')).map((c) => c.value);
    if (!picked.length) {
      err.textContent = 'Pick at least one destination.';
      err.hidden = false;
      return;
    }
    if (picked.length > 100) {
      err.textContent = 'At most 100 destinations at once.';
      err.hidden = false;
      return;
    }
    err.hidden = true;
    confirmBtn.disabled = true;
    try {
      const res = await api('/api/v1/events/' + encodeURIComponent(ev.id) + '/replay', { method: 'POST', body: { destinations: picked } });
      if (!ctx.alive()) return;
      const ds = rows(res);
      result.replaceChildren(h('div', { id: 'replay-result', class: 'replay-result' },
        h('strong', null, 'Queued ' + ds.length + (ds.length === 1 ? ' delivery' : ' deliveries') + ':'),
        h('ul', null, ds.map((d) => h('li', { 'data-delivery-id': String(d.id), 'data-destination': String(d.destination) },
          // A replayed delivery is pending, or already claimed by the
          // dispatcher: either way it is queued.
          badge(d.status === 'pending' || d.status === 'delivering' ? 'queued' : String(d.status), d.status === 'pending' || d.status === 'delivering' ? 'info' : undefined), ' ',
          h('strong', null, String(d.destination)), ' ',
          h('span', { class: 'mono small muted' }, String(d.id)))))));
      flash('Replay queued: ' + picked.join(', ') + '.');
      confirmBtn.hidden = true;
      cancel.textContent = 'Close';
      setTimeout(() => { if (ctx.alive()) reload(); }, 1000);
    } catch (e) {
      if (!ctx.alive()) return;
      err.textContent = 'The replay was refused: ' + e.message;
      err.hidden = false;
    } finally {
      confirmBtn.disabled = false;
    }
  });
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
  if (!attempts.length && !d.attempt_count) list.append(h('li', null, muted('No attempts yet.')));
  // The attempt log keeps failed attempts and the last one; a success
  // before a replay lives on only in the delivery's count.
  const unseen = (d.attempt_count || 0) - attempts.length;
  if (unseen > 0) {
    list.prepend(h('li', { class: 'unseen' }, muted(unseen + (unseen === 1 ? ' earlier attempt' : ' earlier attempts') +
      ' not shown: the log keeps failed attempts and the last one.')));
  }

  return h('div', { class: 'panel delivery' },
    head,
    h('div', { class: 'delivery-meta' }, metaItems),
    d.reason ? h('p', { class: 'delivery-meta' }, 'reason: ' + d.reason) : null,
    d.last_error ? h('p', { class: 'delivery-error' }, String(d.last_error)) : null,
    list);
}
