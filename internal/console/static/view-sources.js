// hookd console: sources, one source with its last handshakes, and the
// form that creates or edits one (#/sources/new, #/sources/<name>/edit).

import { h, badge, th, table, emptyRow, muted, orDash, timeEl, fmtBytes, qs } from './ui.js';
import { api, showError, flash } from './api.js';
import { navigate } from './router.js';
import {
  REDACTED, NAME_RE, field, errorSlot, textInput, secretInput, advancedInput, parseAdvanced, clearErrors, setError,
  omit, setOrDelete, deleteButton, formView, fillRows, save,
} from './forms.js';

// ---- view: sources -------------------------------------------------------

export function viewSources(ctx) {
  const tbody = h('tbody', null, emptyRow(7, 'Loading…'));
  ctx.view.append(h('div', { class: 'toolbar' }, h('h1', null, 'Sources'), h('span', { class: 'spacer' }),
    h('a', { class: 'button primary', id: 'new-source', href: '#/sources/new' }, 'New source')),
    table([th('Name'), th('Origin'), th('Ingest path'), th('Verification'), th('Dedupe window'), th('Max body', 'num'), th('')], tbody));
  fillRows(ctx, tbody, '/api/v1/sources', (s) => h('tr', null,
      h('td', null, h('a', { href: '#/sources/' + encodeURIComponent(String(s.name)) }, h('strong', null, String(s.name)))),
      h('td', null, s.origin === 'api' ? 'API' : muted('config file')),
      h('td', { class: 'mono' }, orDash(s.path)),
      h('td', null, Array.isArray(s.verify) && s.verify.length ? s.verify.join(', ') : muted('none')),
      h('td', null, orDash(s.dedupe_window)),
      h('td', { class: 'num' }, fmtBytes(s.max_body)),
      h('td', { class: 'nowrap' }, h('a', { href: '#/events' + qs({ source: s.name }) }, 'events'),
        s.origin === 'api' ? [' ', h('a', { href: srcHash(s.name) + '/edit', class: 'small' }, 'edit')] : null)),
    7, 'No sources configured.', 'sources');
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
      const actions = h('div', { class: 'toolbar' });
      const confirmBox = h('div', { hidden: true });
      if (s.origin === 'api') {
        actions.append(h('a', { class: 'button', id: 'edit-source', href: srcHash(s.name) + '/edit' }, 'Edit'), deleteSource(s.name, confirmBox));
      }
      body.replaceChildren(actions, confirmBox, renderSource(s));
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

// ---- the source form ---------------------------------------------------------

const srcPath = (name) => '/api/v1/sources/' + encodeURIComponent(name);
const srcHash = (name) => '#/sources/' + encodeURIComponent(name);

// METHODS are the verification methods offered (the API checks the type).
const METHODS = ['hmac', 'standard_webhooks', 'api_key', 'basic', 'header', 'ip_allow', 'public_key', 'digest', 'oauth_jwt',
  'oauth_introspection', 'oauth_issuer', 'adyen', 'bitbucket', 'calendly', 'clerk', 'coinbase', 'contentful', 'discord', 'docusign',
  'dropbox', 'gitea', 'github', 'gitlab', 'hubspot', 'intercom', 'jira', 'lemonsqueezy', 'linear', 'mailgun', 'meta',
  'msgraph', 'okta', 'paddle', 'pagerduty', 'postmark', 'razorpay', 'resend', 'segment', 'sendgrid', 'sentry',
  'shopify', 'slack', 'sns', 'square', 'stripe', 'svix', 'twilio', 'twitch', 'typeform', 'vercel', 'xero', 'zendesk', 'zoom'];
// secretKey is the key of a method's shared secrets: api_key takes keys,
// the signature methods secrets.
const secretKey = (type) => (type === 'api_key' ? 'keys' : 'secrets');
const TOP_FIELDS = ['name', 'dedupe_window', 'max_body'];

function deleteSource(name, confirmBox) {
  return deleteButton('delete-source', confirmBox,
    'Delete source ' + name + '? It answers 404 from then on; its events stay. Its subscriptions must be deleted first.',
    'Delete source', srcPath(name), 'Source ' + name + ' deleted.', '#/sources');
}

// viewSourceForm creates (name '') or edits a source: name, the first
// verification method's type and shared secret, dedupe window, max body,
// and the rest as JSON. Secrets are never filled in: left empty on edit,
// the stored ones are kept.
export function viewSourceForm(ctx, name) {
  formView(ctx, { kind: 'source', name, listHash: '#/sources', itemHash: srcHash(name), path: srcPath(name), build: sourceForm });
}

function sourceForm(ctx, s) {
  const def = s ? s.definition : {};
  const verify = Array.isArray(def.verify) ? def.verify : [];
  const v0 = verify[0] && typeof verify[0] === 'object' ? verify[0] : {};
  const oldType = typeof v0.type === 'string' ? v0.type : '';
  const name = textInput(def.name, { required: true, pattern: NAME_RE.source, maxlength: 64, readonly: s ? true : null });
  const list = h('datalist', { id: 'verify-methods' }, METHODS.map((m) => h('option', { value: m })));
  const vtype = textInput(oldType, { name: 'verify[0].type', list: 'verify-methods', placeholder: 'none: every request is accepted' });
  const secretStored = () => !!s && vtype.value.trim() === oldType && v0[secretKey(oldType)] !== undefined;
  const secret = secretInput(secretStored(), { name: 'verify[0].secrets' });
  vtype.addEventListener('input', () => { secret.placeholder = secretStored() ? 'stored: leave empty to keep it' : ''; });
  const dedupe = textInput(def.dedupe_window, { placeholder: '168h', size: 8 });
  const maxBody = textInput(def.max_body, { placeholder: '1MiB', size: 8 });
  const adv = omit(def, TOP_FIELDS);
  if (Array.isArray(adv.verify) && adv.verify.length) {
    const first = adv.verify[0] && typeof adv.verify[0] === 'object' ? adv.verify[0] : {};
    delete first.type;
    delete first[secretKey(oldType)];
    if (!Object.keys(first).length && adv.verify.length === 1) delete adv.verify;
  }
  const advanced = advancedInput(adv);
  const submit = h('button', { type: 'submit', class: 'primary' }, s ? 'Save source' : 'Create source');
  const confirmBox = h('div', { hidden: true });
  const form = h('form', { id: 'source-form', class: 'config-form', novalidate: true, autocomplete: 'off' },
    errorSlot('_form'),
    field('name', 'Name', name, s ? 'The name cannot change.' : 'It receives at /in/<name>. Letters, digits, -, _ and . (a letter or digit first, at most 64).'),
    list,
    field('verify[0].type', 'Verification', vtype, 'A provider preset (github, stripe, …), hmac, standard_webhooks or api_key; empty for none.'),
    field('verify[0].secrets', 'Secret', secret,
      (s ? 'Write-only: leave empty to keep the stored one. ' : '') + 'The shared signing secret (api_key: the key).'),
    field('dedupe_window', 'Dedupe window', dedupe, 'A duration such as 24h; empty: the default.'),
    field('max_body', 'Max body', maxBody, 'Bytes, or with a unit (512KiB, 2MiB); empty: the default.'),
    field('advanced', 'Other settings (JSON)', advanced,
      'Any other keys of the source (event selectors, handshake, more verify methods or options, …) as a JSON object; ' +
      'verify[0] here adds to the method above. ' + REDACTED + ' keeps a stored secret.'),
    h('div', { class: 'actions' }, submit, h('a', { class: 'button', href: s ? srcHash(s.name) : '#/sources' }, 'Cancel'),
      h('span', { class: 'spacer' }), s ? deleteSource(s.name, confirmBox) : null),
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
    if (spec.verify !== undefined && !Array.isArray(spec.verify)) { setError(form, 'advanced', 'verify: must be a list'); return; }
    spec.name = nm;
    setOrDelete(spec, 'dedupe_window', dedupe.value.trim());
    const mb = maxBody.value.trim();
    setOrDelete(spec, 'max_body', /^\d+$/.test(mb) ? Number(mb) : mb);
    const t = vtype.value.trim();
    if (t) {
      const vs = Array.isArray(spec.verify) ? spec.verify : [];
      const first = Object.assign({}, vs[0] && typeof vs[0] === 'object' ? vs[0] : {}, { type: t });
      const key = secretKey(t);
      if (secret.value) first[key] = [secret.value];
      else if (secretStored()) first[key] = REDACTED;
      vs[0] = first;
      spec.verify = vs;
    } else if (Array.isArray(spec.verify) && spec.verify.length) {
      setError(form, 'verify[0].type', 'required when the JSON lists verify methods'); bad = true;
    } else {
      delete spec.verify;
    }
    if (bad) return;
    await save(form, submit, {
      editing: !!s, itemPath: s ? srcPath(s.name) : '', listPath: '/api/v1/sources', body: spec,
      aliases: { 'verify[0].keys': 'verify[0].secrets' },
      saved: (a) => {
        flash('Source ' + (a.name || nm) + (s ? ' saved.' : ' created.'));
        if (ctx.alive()) navigate(srcHash(a.name || nm));
      },
    });
  });
  return form;
}
