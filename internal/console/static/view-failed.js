// hookd console: the failed queue, with retry, cancel and bulk replay
// (replay.js).

import { h, badge, th, table, emptyRow, muted, timeCell, fmtNum, qs, fillSelect } from './ui.js';
import { api, rows, showError, destinationNames } from './api.js';
import { bulkReplay } from './replay.js';
import { retryButton, cancelButton } from './actions.js';
import { navigate, route } from './router.js';

// ---- view: failed queue --------------------------------------------------

export function viewFailed(ctx) {
  const dest = ctx.params.get('destination') || '';
  const destSel = h('select', { name: 'destination' }, h('option', { value: '' }, 'all destinations'));
  fillSelect(destSel, [], dest);
  destSel.addEventListener('change', () => navigate('#/failed' + qs({ destination: destSel.value }), true));
  const replay = bulkReplay(ctx, {
    key: 'failed',
    label: dest ? 'Replay all failed to ' + dest : 'Replay all failed',
    filter: () => (dest ? { status: 'failed', destination: dest } : { status: 'failed' }),
    describe: () => 'Replay ' + (dest ? 'every failed delivery to ' + dest : 'every failed delivery') +
      '? Each one is queued for a new attempt.',
    done: () => { count = 0; loadPage(''); },
  });
  const refresh = h('button', { type: 'button', onclick: () => route() }, 'Refresh');
  const tbody = h('tbody');
  const COLS = 7;
  const moreBtn = h('button', { type: 'button' }, 'Load more');
  const moreWrap = h('div', { class: 'more', hidden: true }, moreBtn);

  ctx.view.append(h('h1', null, 'Failed queue'),
    h('div', { class: 'toolbar' }, h('label', null, 'Destination', destSel), refresh, h('span', { class: 'spacer' }), replay.button),
    replay.panel,
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

  loadPage('');
}
