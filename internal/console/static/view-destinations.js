// hookd console: destinations (with their health) and subscriptions.

import { h, badge, th, table, emptyRow, muted, orDash, fmtTime, fmtNum, qs } from './ui.js';
import { api, apiAll, rows, showError, flash } from './api.js';
import { statsPanel } from './stats.js';
import { route } from './router.js';

export function viewDestinations(ctx) {
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
      h('td', { class: 'nowrap' }, h('a', { href: '#/failed' + qs({ destination: d.name }) }, 'failed queue'), ' · ', h('a', { href: '#/test-event' + qs({ destination: d.name }) }, 'send test')),
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
