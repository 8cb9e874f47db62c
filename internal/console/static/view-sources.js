// hookd console: sources and one source with its last handshakes.

import { h, badge, th, table, emptyRow, muted, orDash, timeEl, fmtBytes, qs } from './ui.js';
import { api, apiAll, rows, showError } from './api.js';

// ---- view: sources -------------------------------------------------------

export function viewSources(ctx) {
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

export function viewSource(ctx, name) {
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
