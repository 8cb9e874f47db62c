// hookd console: subscriptions — the table under the destinations, and the
// form that creates or edits one (#/subscriptions/new,
// #/subscriptions/<id>/edit). A subscription routes one source's events
// (or every source's: *) of the given types to one destination.

import { h, badge, th, table, emptyRow, muted, orDash } from './ui.js';
import { api, showError, flash, sourceNames, destinationNames } from './api.js';
import { navigate } from './router.js';
import {
  field, checkbox, errorSlot, textInput, selectInput, clearErrors, setError, confirmStep, splitList, fillRows, save,
} from './forms.js';

const subPath = (id) => '/api/v1/subscriptions/' + encodeURIComponent(id);
const MAX_FILTER = 1 << 20;

// subscriptionsSection is the subscriptions table with its "New
// subscription" button.
export function subscriptionsSection(ctx) {
  const sbody = h('tbody', null, emptyRow(7, 'Loading…'));
  const box = h('section', { id: 'subscriptions' },
    h('div', { class: 'toolbar' }, h('h2', null, 'Subscriptions'), h('span', { class: 'spacer' }),
      h('a', { class: 'button primary', id: 'new-subscription', href: '#/subscriptions/new' }, 'New subscription')),
    table([th('ID'), th('Source'), th('Destination'), th('Events'), th('Active'), th('Origin'), th('')], sbody));

  function subRow(s) {
    const events = Array.isArray(s.events) && s.events.length ? s.events.join(', ') : null;
    return h('tr', { 'data-subscription': String(s.id) },
      h('td', { class: 'mono' }, String(s.id)),
      h('td', null, orDash(s.source)),
      h('td', null, orDash(s.destination)),
      h('td', { class: 'wrap' }, events === null ? muted('all') : events),
      h('td', null, s.active ? badge('active') : badge('inactive')),
      h('td', null, orDash(s.origin)),
      h('td', { class: 'nowrap' }, s.origin === 'api'
        ? h('a', { href: '#/subscriptions/' + encodeURIComponent(s.id) + '/edit', class: 'small' }, 'edit') : null));
  }

  fillRows(ctx, sbody, '/api/v1/subscriptions', subRow, 7, 'No subscriptions.', 'subscriptions');
  return box;
}

export function viewSubscriptions(ctx) {
  ctx.view.append(h('h1', null, 'Subscriptions'), subscriptionsSection(ctx));
}

// viewSubscriptionForm creates (id '') or edits a subscription.
export function viewSubscriptionForm(ctx, id) {
  const editing = !!id;
  ctx.view.append(h('div', { class: 'toolbar' }, h('a', { href: '#/destinations' }, '← Destinations and subscriptions')),
    h('h1', null, editing ? 'Edit subscription ' : 'New subscription', editing ? h('span', { class: 'mono' }, id) : null));
  const holder = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  ctx.view.append(holder);
  Promise.all([editing ? api(subPath(id)) : Promise.resolve(null), sourceNames(), destinationNames()]).then(([s, srcs, dests]) => {
    if (!ctx.alive()) return;
    if (s && s.origin !== 'api') {
      holder.replaceChildren(h('p', { class: 'empty' }, 'Subscription ' + id + ' is defined in the configuration file: change it there.'));
      return;
    }
    holder.replaceChildren(subscriptionForm(ctx, s, srcs, dests));
  }, (e) => {
    if (!ctx.alive()) return;
    holder.replaceChildren(h('p', { class: 'empty' }, 'Could not load this subscription.'));
    showError(e);
  });
}

function subscriptionForm(ctx, s, srcs, dests) {
  const cur = s || { source: '*', events: ['*'], active: true, skip_stale: false };
  const source = selectInput([['*', '* (every source)']].concat(srcs), cur.source || '*');
  const destination = selectInput([['', 'choose a destination']].concat(dests), cur.destination || '');
  const evs = Array.isArray(cur.events) ? cur.events.filter((e) => e !== '*') : [];
  const events = textInput(evs.join(', '), { placeholder: 'all events (or: order.*, invoice.paid)' });
  const filter = h('textarea', {
    rows: 5, spellcheck: 'false', class: 'mono', placeholder: 'no filter',
    value: cur.filter !== undefined && cur.filter !== null ? JSON.stringify(cur.filter, null, 2) : '',
  });
  // filter_expr and enrich have their own fields: a save replaces the
  // whole subscription, so a key left out of the form would be dropped.
  const filterExpr = h('textarea', { rows: 2, spellcheck: 'false', class: 'mono', placeholder: 'no expression',
    value: typeof cur.filter_expr === 'string' ? cur.filter_expr : '' });
  const enrich = h('textarea', { rows: 5, spellcheck: 'false', class: 'mono', placeholder: 'no enrichment',
    value: cur.enrich !== undefined && cur.enrich !== null ? JSON.stringify(cur.enrich, null, 2) : '' });
  const submit = h('button', { type: 'submit', class: 'primary' }, s ? 'Save subscription' : 'Create subscription');
  const confirmBox = h('div', { hidden: true });
  const del = s ? h('button', { type: 'button', class: 'danger', id: 'delete-subscription' }, 'Delete') : null;
  if (del) {
    del.addEventListener('click', () => confirmStep(confirmBox, 'Delete subscription ' + s.id + '? Events stop being routed by it; deliveries already made stay.',
      'Delete subscription', async () => {
        await api(subPath(s.id), { method: 'DELETE' });
        flash('Subscription ' + s.id + ' deleted.');
        navigate('#/destinations');
      }));
  }
  const form = h('form', { id: 'subscription-form', class: 'config-form', novalidate: true, autocomplete: 'off' },
    errorSlot('_form'),
    field('source', 'Source', source, 'The source whose events it routes; * for every source.'),
    field('destination', 'Destination', destination),
    field('events', 'Event types', events, 'Comma separated; * matches within a dotted segment (order.*). Empty: every event.'),
    checkbox('active', 'Active', cur.active !== false, 'An inactive subscription routes nothing.'),
    checkbox('skip_stale', 'Skip stale events', !!cur.skip_stale),
    field('filter', 'Filter (JSON)', filter, 'Optional: a filter on the event, as in the configuration file (see docs/routing.md).'),
    field('filter_expr', 'Filter expression', filterExpr, 'Optional: a CEL expression giving true for the events to route ' +
      '(docs/FILTERS_AND_ENRICHMENT.md).'),
    field('enrich', 'Enrichment (JSON)', enrich, 'Optional: data fetched and added to the event (docs/FILTERS_AND_ENRICHMENT.md). ' +
      'Secrets show as [redacted]; left so, the stored ones are kept while the url and auth.token_url keep their scheme and host ' +
      '(moved elsewhere, type them again).'),
    h('div', { class: 'actions' }, submit, h('a', { class: 'button', href: '#/destinations' }, 'Cancel'), h('span', { class: 'spacer' }), del),
    confirmBox);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = {
      source: source.value || '*',
      destination: destination.value,
      active: form.querySelector('input[name="active"]').checked,
      skip_stale: form.querySelector('input[name="skip_stale"]').checked,
    };
    const list = splitList(events.value);
    if (list.length) body.events = list;
    let bad = false;
    if (!body.destination) { setError(form, 'destination', 'required'); bad = true; }
    const ft = filter.value.trim();
    if (ft) {
      if (ft.length > MAX_FILTER) { setError(form, 'filter', 'over ' + MAX_FILTER + ' characters'); bad = true; } else {
        try { body.filter = JSON.parse(ft); } catch (err) { setError(form, 'filter', 'not valid JSON: ' + err.message); bad = true; }
      }
    }
    const fe = filterExpr.value.trim();
    if (fe) body.filter_expr = fe;
    const et = enrich.value.trim();
    // Secrets shown as [redacted] go back as they are: the API keeps the
    // stored ones while enrich.url and auth.token_url keep their scheme and
    // host, and otherwise refuses naming the key (shown at this field).
    if (et.length > MAX_FILTER) {
      setError(form, 'enrich', 'over ' + MAX_FILTER + ' characters'); bad = true;
    } else if (et) {
      let v;
      try { v = JSON.parse(et); } catch (err) { setError(form, 'enrich', 'not valid JSON: ' + err.message); bad = true; }
      if (!bad && (!v || typeof v !== 'object' || Array.isArray(v))) { setError(form, 'enrich', 'must be a JSON object ({ … })'); bad = true; }
      if (!bad) body.enrich = v;
    }
    if (bad) return;
    await save(form, submit, {
      editing: !!s, itemPath: s ? subPath(s.id) : '', listPath: '/api/v1/subscriptions', body,
      saved: (a) => {
        flash('Subscription ' + (a.id || '') + (s ? ' saved.' : ' created.'));
        if (ctx.alive()) navigate('#/destinations');
      },
    });
  });
  return form;
}
