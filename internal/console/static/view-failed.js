// hookd console: the failed queue, with retry, cancel and bulk replay.

import { h, add, badge, th, table, emptyRow, muted, timeCell, fmtNum, qs, fillSelect } from './ui.js';
import { api, rows, showError, flash, destinationNames } from './api.js';
import { retryButton, cancelButton } from './actions.js';
import { navigate, route } from './router.js';

const REPLAY_POLL_MS = 1000;

// ---- view: failed queue --------------------------------------------------

let activeReplay = null; // the replay job being followed, across visits

export function viewFailed(ctx) {
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
