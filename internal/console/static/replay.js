// hookd console: bulk replay (POST /api/v1/replays) with its progress
// (GET /api/v1/replays/{id}), shared by the failed queue and the events
// view's "Replay matching…".
//
// bulkReplay builds the button (#bulk-replay), the confirm panel (with
// #bulk-replay-confirm) and the progress box (#replay-progress, whose
// data-done and data-total attributes follow the job). A job being
// followed is remembered per view key across visits, so leaving the view
// and coming back picks its progress up again.

import { h, add, badge, fmtNum, fmtTime } from './ui.js';
import { api, showError, flash } from './api.js';

const POLL_MS = 1000;

const following = new Map(); // view key -> replay id being followed

// The delivery statuses a replay filter takes (not delivering: those are
// being attempted).
export const REPLAY_STATUSES = new Set(['failed', 'succeeded', 'retrying', 'pending', 'cancelled']);

// filterWords says a replay's filter in one line (key value, …).
function filterWords(f) {
  if (!f || typeof f !== 'object') return '';
  const parts = Object.entries(f).filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => k + ' ' + (k === 'since' || k === 'until' ? fmtTime(String(v)) : String(v)));
  return parts.length ? 'filter: ' + parts.join(', ') : 'no filter: every event';
}

// bulkReplay returns {button, panel}: the caller places them. opts:
//   key       the view's key in the remembered jobs
//   label     the button's text
//   filter    () => the ReplayFilter to send, or a string saying why the
//             current view cannot be replayed (the button is disabled)
//   describe  (filter) => the sentence the confirm panel asks
//   done      (job) => runs when a followed job ends
export function bulkReplay(ctx, opts) {
  const button = h('button', { type: 'button', id: 'bulk-replay', class: 'danger' }, opts.label);
  const panel = h('div', { class: 'replay-box', hidden: true });
  let timer = null;
  let failures = 0; // polls failed in a row
  ctx.onLeave(() => clearTimeout(timer));

  // refuse disables the button, saying why, when the view's filters
  // cannot be replayed.
  const refuse = () => {
    const f = opts.filter();
    if (typeof f === 'string') {
      button.disabled = true;
      button.title = f;
      if (!following.has(opts.key)) {
        panel.hidden = false;
        panel.replaceChildren(h('p', { id: 'bulk-replay-note', class: 'muted small' }, opts.label + ' is off: ' + f));
      }
    }
    return f;
  };
  refuse();

  function showConfirm() {
    const f = refuse();
    if (typeof f === 'string') return;
    const confirmBtn = h('button', { type: 'button', id: 'bulk-replay-confirm', class: 'danger' }, 'Start replay');
    const cancel = h('button', { type: 'button' }, 'Cancel');
    panel.hidden = false;
    panel.replaceChildren(h('div', { class: 'panel replay-confirm' },
      h('p', null, opts.describe(f)),
      h('p', { class: 'muted small' }, 'The replay runs on the server; its progress shows here.'),
      h('div', { class: 'toolbar' }, confirmBtn, cancel)));
    cancel.addEventListener('click', () => { panel.hidden = true; panel.replaceChildren(); });
    confirmBtn.addEventListener('click', async () => {
      confirmBtn.disabled = true;
      cancel.disabled = true;
      button.disabled = true;
      try {
        const job = await api('/api/v1/replays', { method: 'POST', body: f });
        following.set(opts.key, String(job.id));
        if (!ctx.alive()) return;
        show(job);
        timer = setTimeout(poll, POLL_MS);
      } catch (e) {
        if (!ctx.alive()) return;
        confirmBtn.disabled = false;
        cancel.disabled = false;
        button.disabled = false;
        panel.firstChild.append(h('p', { class: 'field-error', role: 'alert' }, 'The replay was refused: ' + e.message));
      }
    });
  }

  function show(job) {
    panel.hidden = false;
    const total = Math.max(0, Number(job.total) || 0);
    const done = Math.max(0, Number(job.done) || 0);
    const state = String(job.state || '');
    const prog = h('progress', { max: Math.max(total, 1) });
    if (state === 'running' && !total) prog.removeAttribute('value'); // indeterminate
    else prog.value = total ? Math.min(done, total) : 1;
    const box = h('div', { id: 'replay-progress', class: 'panel replay', 'data-done': done, 'data-total': total,
      'data-state': state, role: 'status' });
    add(box, [
      h('strong', null, 'Replay'),
      h('span', { class: 'mono small' }, String(job.id)),
      badge(state, state === 'done' ? 'ok' : state === 'failed' ? 'bad' : state),
      prog,
      h('span', { class: 'replay-count' }, fmtNum(done) + ' / ' + fmtNum(total) + ' done'),
      h('span', { class: 'muted' }, fmtNum(job.queued ?? 0) + ' deliveries queued'),
      h('span', { class: 'muted small' }, filterWords(job.filter)),
      job.error ? h('span', { class: 'delivery-error' }, String(job.error)) : null]);
    panel.replaceChildren(box);
  }

  async function poll() {
    const id = following.get(opts.key);
    if (!ctx.alive() || !id) return;
    try {
      const job = await api('/api/v1/replays/' + encodeURIComponent(id));
      if (!ctx.alive()) return;
      failures = 0;
      show(job);
      if (job.state === 'running') {
        timer = setTimeout(poll, POLL_MS);
        return;
      }
      following.delete(opts.key);
      button.disabled = typeof opts.filter() === 'string';
      flash('Replay ' + job.id + ' ' + job.state + ': ' + (job.queued ?? 0) + ' deliveries queued.');
      if (opts.done) opts.done(job);
    } catch (e) {
      if (!ctx.alive()) return;
      if (e.auth) {
        button.disabled = typeof opts.filter() === 'string';
        return;
      }
      if (e.status === 404) {
        // The server no longer knows the job (hookd restarted): the
        // progress shown would stay "running" for ever.
        following.delete(opts.key);
        button.disabled = typeof opts.filter() === 'string';
        panel.hidden = false;
        panel.replaceChildren(h('div', { id: 'replay-progress', class: 'panel replay', 'data-state': 'gone', role: 'status' },
          h('strong', null, 'Replay'), ' ', h('span', { class: 'mono small' }, id), ' ',
          badge('unknown', 'stale'), ' ',
          h('span', { class: 'muted' }, 'hookd no longer knows this replay (it restarted?): its progress cannot be shown. ' +
            'Deliveries it queued go on; the failed queue and the events show them.')));
        return;
      }
      // Anything else (a network error, a 5xx) may pass: keep following,
      // less often, and say so.
      showError(new Error('Following replay ' + id + ': ' + e.message + ' (trying again)'));
      failures++;
      timer = setTimeout(poll, Math.min(POLL_MS * 2 ** failures, 30000));
    }
  }

  button.addEventListener('click', showConfirm);
  if (following.has(opts.key)) {
    button.disabled = true;
    poll();
  }
  return { button, panel };
}
