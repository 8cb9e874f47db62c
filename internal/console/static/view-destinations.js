// hookd console: destinations (with their health), one destination, and
// the form that creates or edits one (#/destinations/new,
// #/destinations/<name>/edit). The subscriptions table below the list is
// view-subscriptions.js's.

import { h, badge, th, table, emptyRow, muted, orDash, fmtTime, fmtNum, qs, timeEl } from './ui.js';
import { api, showError, flash } from './api.js';
import { statsPanel } from './stats.js';
import { route, navigate } from './router.js';
import { subscriptionsSection } from './view-subscriptions.js';
import {
  REDACTED, NAME_RE, field, errorSlot, textInput, secretInput, selectInput, advancedInput, parseAdvanced,
  clearErrors, setError, maskURL, omit, setOrDelete, deleteButton, formView, fillRows, save,
} from './forms.js';

// The types a destination created through the API may have (file and exec
// act on the hookd host and are defined in the configuration file only).
const TYPES = ['http', 'kafka', 'nats', 'amqp', 'redis'];
const AUTH_TYPES = [['', 'none'], ['header', 'header'], ['basic', 'basic'], ['oauth2', 'oauth2 (client credentials)']];
// AUTH_FIELDS are the auth keys with a field, per auth type; the secret
// one is write-only.
const AUTH_FIELDS = {
  header: [['header', 'Header name', false], ['value', 'Header value', true]],
  basic: [['username', 'Username', false], ['password', 'Password', true]],
  oauth2: [['token_url', 'Token URL', false], ['client_id', 'Client ID', false], ['client_secret', 'Client secret', true]],
};
const ALL_AUTH_KEYS = ['type', 'header', 'value', 'username', 'password', 'token_url', 'client_id', 'client_secret'];
// TOP_FIELDS are the top-level keys with a field; the advanced JSON holds
// the rest.
const TOP_FIELDS = ['name', 'type', 'url', 'method', 'timeout'];

const destPath = (name) => '/api/v1/destinations/' + encodeURIComponent(name);
const destHash = (name) => '#/destinations/' + encodeURIComponent(name);

// destURL is a destination's URL with its credentials masked, or null.
function destURL(d) {
  const def = d && d.definition && typeof d.definition === 'object' ? d.definition : null;
  if (!def) return null;
  if (typeof def.url === 'string' && def.url) return maskURL(def.url);
  if (Array.isArray(def.brokers)) return def.brokers.map((b) => maskURL(b)).join(', ');
  return null;
}

export function viewDestinations(ctx) {
  const refresh = h('button', { type: 'button', onclick: () => route() }, 'Refresh');
  const newBtn = h('a', { class: 'button primary', id: 'new-destination', href: '#/destinations/new' }, 'New destination');
  const dbody = h('tbody', null, emptyRow(16, 'Loading…'));
  ctx.view.append(
    h('div', { class: 'toolbar' }, h('h1', null, 'Destinations'), h('span', { class: 'spacer' }), refresh, newBtn),
    table([th('Name'), th('Type'), th('URL'), th('Origin'), th('State'), th('Ordering'), th('Concurrency', 'num'), th('Retry policy'),
      th('Queued', 'num'), th('In flight', 'num'), th('Attempts', 'num'), th('Succeeded', 'num'), th('Failed', 'num'),
      th('Retried', 'num'), th(''), th('')], dbody));
  ctx.view.append(subscriptionsSection(ctx));
  ctx.view.append(statsPanel(ctx, '1h'));

  function destRow(d) {
    const state = h('td', null, d.disabled ? badge('disabled') : badge('enabled'));
    if (d.disabled) {
      if (d.disabled_reason) state.append(h('div', { class: 'small' }, String(d.disabled_reason)));
      if (d.disabled_at) state.append(h('div', { class: 'muted small', title: d.disabled_at }, 'since ' + fmtTime(d.disabled_at)));
    }
    const url = destURL(d);
    return h('tr', { 'data-destination': String(d.name) },
      h('td', null, h('a', { href: destHash(d.name) }, h('strong', null, String(d.name)))),
      h('td', null, orDash(d.type)),
      h('td', { class: 'mono wrap url' }, url ? url : muted('—')),
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
      h('td', { class: 'nowrap' },
        d.disabled ? enableButton(ctx, d) : null, ' ',
        d.origin === 'api' ? h('a', { href: destHash(d.name) + '/edit', class: 'small' }, 'edit') : null));
  }

  fillRows(ctx, dbody, '/api/v1/destinations', destRow, 16, 'No destinations configured.', 'destinations');
}

function enableButton(ctx, d) {
  const b = h('button', { type: 'button', class: 'small primary' }, 'Enable');
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await api(destPath(d.name) + '/enable', { method: 'POST' });
      flash('Destination ' + d.name + ' enabled.');
      if (ctx.alive()) route();
    } catch (e) {
      showError(e);
      b.disabled = false;
    }
  });
  return b;
}

// ---- one destination -------------------------------------------------------

export function viewDestination(ctx, name) {
  const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  ctx.view.append(h('div', { class: 'toolbar' }, h('a', { href: '#/destinations' }, '← Destinations')),
    h('h1', null, 'Destination ', h('span', { class: 'mono' }, name)), body);
  api(destPath(name)).then((d) => {
    if (!ctx.alive()) return;
    const meta = h('dl', { class: 'meta' });
    const item = (k, v) => meta.append(h('dt', null, k), h('dd', null, v));
    item('Name', h('span', { class: 'mono' }, String(d.name)));
    item('Type', orDash(d.type));
    item('URL', destURL(d) ? h('span', { class: 'mono wrap url', id: 'destination-url' }, destURL(d)) : muted('—'));
    item('Origin', d.origin === 'api' ? 'API' : 'config file');
    item('State', d.disabled ? badge('disabled') : badge('enabled'));
    if (d.disabled_reason) item('Disabled because', String(d.disabled_reason));
    item('Ordering', orDash(d.ordering));
    item('Concurrency', fmtNum(d.concurrency));
    item('Retry policy', orDash(d.retry_policy));
    item('Attempts', fmtNum(d.attempts) + ' (' + fmtNum(d.succeeded) + ' succeeded, ' + fmtNum(d.failed) + ' failed, ' + fmtNum(d.retried) + ' retried)');
    if (d.updated_at) item('Updated', timeEl(d.updated_at, true));
    const actions = h('div', { class: 'toolbar' });
    const confirmBox = h('div', { hidden: true });
    if (d.origin === 'api') {
      actions.append(h('a', { class: 'button', id: 'edit-destination', href: destHash(d.name) + '/edit' }, 'Edit'),
        deleteDestination(d.name, confirmBox));
    } else {
      actions.append(muted('Defined in the configuration file: change it there.'));
    }
    let def = null;
    if (d.definition && typeof d.definition === 'object') {
      const shown = JSON.parse(JSON.stringify(d.definition));
      if (typeof shown.url === 'string') shown.url = maskURL(shown.url);
      if (Array.isArray(shown.brokers)) shown.brokers = shown.brokers.map((b) => (typeof b === 'string' ? maskURL(b) : b));
      if (shown.auth && typeof shown.auth.token_url === 'string') shown.auth.token_url = maskURL(shown.auth.token_url);
      def = h('section', null, h('h2', null, 'Definition'), h('pre', { class: 'body' }, JSON.stringify(shown, null, 2)));
    }
    body.replaceChildren(actions, confirmBox, h('div', { class: 'panel' }, meta), def,
      h('p', null, h('a', { href: '#/failed' + qs({ destination: d.name }) }, 'Failed queue of this destination')));
  }, (e) => {
    if (!ctx.alive()) return;
    body.replaceChildren(h('p', { class: 'empty' }, 'Could not load this destination.'));
    showError(e);
  });
}

function deleteDestination(name, confirmBox) {
  return deleteButton('delete-destination', confirmBox,
    'Delete destination ' + name + '? Its deliveries stay in the store; a subscription using it must be deleted first.',
    'Delete destination', destPath(name), 'Destination ' + name + ' deleted.', '#/destinations');
}

// ---- the destination form ----------------------------------------------------

// viewDestinationForm creates (name '') or edits a destination. Secrets
// are never filled in: left empty on edit, the stored one is kept (the
// form sends [redacted] back, which the API reads as "keep").
export function viewDestinationForm(ctx, name) {
  formView(ctx, { kind: 'destination', name, listHash: '#/destinations', itemHash: destHash(name), path: destPath(name), build: destinationForm });
}

function destinationForm(ctx, d) {
  const def = d ? d.definition : {};
  const oldAuth = def.auth && typeof def.auth === 'object' ? def.auth : {};
  const name = textInput(def.name, { required: true, pattern: NAME_RE.source, maxlength: 64, readonly: d ? true : null });
  const type = selectInput(TYPES, def.type || 'http', { required: true });
  // The URL is shown with its credentials masked; sent back unchanged,
  // the stored one is kept.
  const shownURL = typeof def.url === 'string' ? maskURL(def.url) : def.url;
  const url = textInput(shownURL, { placeholder: 'the endpoint URL', inputmode: 'url' });
  const method = selectInput([['', 'POST (default)'], 'POST', 'PUT', 'PATCH'], def.method ? String(def.method).toUpperCase() : '');
  const timeout = textInput(def.timeout, { placeholder: '60s', size: 8 });
  const authType = selectInput(AUTH_TYPES, oldAuth.type || '', { name: 'auth.type' });
  const authBox = h('div', { class: 'subfields' });
  const advancedObj = omit(def, TOP_FIELDS);
  if (advancedObj.auth && typeof advancedObj.auth === 'object') {
    for (const k of ALL_AUTH_KEYS) delete advancedObj.auth[k];
    if (!Object.keys(advancedObj.auth).length) delete advancedObj.auth;
  }
  const advanced = advancedInput(advancedObj);
  const authInputs = {};

  function drawAuth() {
    authBox.replaceChildren();
    for (const k of Object.keys(authInputs)) delete authInputs[k];
    for (const [key, label, secret] of AUTH_FIELDS[authType.value] || []) {
      const sameType = oldAuth.type === authType.value;
      const stored = secret && !!d && sameType && oldAuth[key] !== undefined && oldAuth[key] !== '';
      const input = secret ? secretInput(stored) : textInput(sameType ? oldAuth[key] : '');
      authInputs[key] = { input, secret, stored };
      authBox.append(field('auth.' + key, label, input, secret && stored ? 'Write-only: leave empty to keep the stored value.' : null));
    }
  }
  authType.addEventListener('change', drawAuth);
  drawAuth();

  const submit = h('button', { type: 'submit', class: 'primary' }, d ? 'Save destination' : 'Create destination');
  const confirmBox = h('div', { hidden: true });
  const form = h('form', { id: 'destination-form', class: 'config-form', novalidate: true, autocomplete: 'off' },
    errorSlot('_form'),
    field('name', 'Name', name, d ? 'The name cannot change.' : 'Letters, digits, -, _ and . (a letter or digit first, at most 64).'),
    field('type', 'Type', type),
    field('url', 'URL', url, 'http: the endpoint (no user:pass@ — use auth). Brokers: their URL.' +
      (d && shownURL !== def.url ? ' Secret parts show as ***: left as they are, the stored ones are kept.' : '')),
    field('method', 'Method', method),
    field('timeout', 'Timeout', timeout, 'A duration such as 30s; empty: the default (60s).'),
    field('auth.type', 'Authentication', authType),
    authBox,
    field('advanced', 'Other settings (JSON)', advanced,
      'Any other keys of the destination (headers, retry, sign, ordering, concurrency, …) as a JSON object. ' +
      REDACTED + ' keeps a stored secret.'),
    h('div', { class: 'actions' }, submit,
      h('a', { class: 'button', href: d ? destHash(d.name) : '#/destinations' }, 'Cancel'),
      h('span', { class: 'spacer' }),
      d ? deleteDestination(d.name, confirmBox) : null),
    confirmBox);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    let spec;
    try { spec = parseAdvanced(advanced.value); } catch (err) { setError(form, 'advanced', err.message); return; }
    const nm = name.value.trim();
    let bad = false;
    if (!nm) { setError(form, 'name', 'required'); bad = true; } else if (!NAME_RE.test(nm)) {
      setError(form, 'name', 'a letter or digit first, then letters, digits, -, _ and . (at most 64)'); bad = true;
    }
    if (type.value === 'http' && !url.value.trim()) { setError(form, 'url', 'required'); bad = true; }
    // Only the URL exactly as shown stands for the stored one: an edited
    // URL that still holds *** would be saved with *** for its secrets.
    if (d && typeof def.url === 'string' && shownURL !== def.url && url.value.trim() !== shownURL && url.value.includes('***')) {
      setError(form, 'url', 'still holds *** where the stored URL has a secret: type the whole new URL with its secrets, ' +
        'or put the URL back as shown to keep the stored one');
      bad = true;
    }
    spec.name = nm;
    spec.type = type.value;
    const u = url.value.trim();
    setOrDelete(spec, 'url', d && typeof def.url === 'string' && u === shownURL ? def.url : u);
    setOrDelete(spec, 'method', method.value);
    setOrDelete(spec, 'timeout', timeout.value.trim());
    if (!authType.value) {
      delete spec.auth;
    } else {
      const auth = Object.assign({}, spec.auth && typeof spec.auth === 'object' ? spec.auth : {}, { type: authType.value });
      for (const [key, { input, secret, stored }] of Object.entries(authInputs)) {
        const v = secret ? input.value : input.value.trim();
        if (v) auth[key] = v;
        else if (secret && stored) auth[key] = REDACTED;
        else { delete auth[key]; if (secret) { setError(form, 'auth.' + key, 'required'); bad = true; } }
      }
      spec.auth = auth;
    }
    if (bad) return;
    await save(form, submit, {
      editing: !!d, itemPath: d ? destPath(d.name) : '', listPath: '/api/v1/destinations', body: spec,
      saved: (a) => {
        flash('Destination ' + (a.name || nm) + (d ? ' saved.' : ' created.'));
        if (ctx.alive()) navigate(destHash(a.name || nm));
      },
    });
  });
  return form;
}
