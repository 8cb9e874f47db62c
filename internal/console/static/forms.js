// hookd console: form building for the configuration views (sources,
// destinations, subscriptions): fields named after the API's JSON keys,
// errors shown at the field the API names, write-only secret inputs, an
// in-page delete confirmation, and URLs with their credentials masked.

import { h, emptyRow } from './ui.js';
import { api, apiAll, rows, showError, flash } from './api.js';
import { navigate } from './router.js';

// REDACTED is what the API shows in place of a secret; sent back on a
// replace (PUT), it keeps the stored secret at that place.
export const REDACTED = '[redacted]';

// MAX_ADVANCED bounds the advanced JSON a form parses (the API takes at
// most 1 MiB).
const MAX_ADVANCED = 1 << 20;

// NAME_RE is a source's or destination's name as the API takes it (a
// letter or digit first).
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

// field wraps an input with its label, an optional help line and the
// element its errors go to (data-error-for="<key>"). key is the API's key
// path ("url", "auth.password", "verify[0].type").
export function field(key, label, input, help) {
  const id = 'f-' + key.replace(/[^A-Za-z0-9_-]/g, '-');
  input.id = id;
  if (!input.getAttribute('name')) input.setAttribute('name', key);
  const wrap = h('div', { class: 'field', 'data-field': key },
    h('label', { for: id }, label),
    input,
    help ? h('div', { class: 'help muted small' }, help) : null,
    errorSlot(key));
  return wrap;
}

// checkbox is a labelled checkbox field.
export function checkbox(key, label, checked, help) {
  const input = h('input', { type: 'checkbox', name: key, id: 'f-' + key });
  input.checked = !!checked;
  return h('div', { class: 'field check', 'data-field': key },
    h('label', { for: 'f-' + key }, input, ' ', label),
    help ? h('div', { class: 'help muted small' }, help) : null,
    errorSlot(key));
}

export function errorSlot(key) {
  return h('div', { class: 'field-error', 'data-error-for': key, role: 'alert', hidden: true });
}

export function textInput(value, attrs) {
  return h('input', Object.assign({ type: 'text', value: value ?? '', spellcheck: 'false', autocomplete: 'off' }, attrs || {}));
}

// secretInput is write-only: it is never filled from the API. stored says
// a value is stored (edit): left empty, the stored one is kept.
export function secretInput(stored, attrs) {
  return h('input', Object.assign({
    type: 'password', value: '', autocomplete: 'new-password', spellcheck: 'false',
    placeholder: stored ? 'stored: leave empty to keep it' : '',
    'data-secret': 'true',
  }, attrs || {}));
}

export function selectInput(options, value, attrs) {
  const sel = h('select', attrs || null, options.map((o) => {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    return h('option', { value: v }, label);
  }));
  if (value !== undefined && value !== null && !options.some((o) => (Array.isArray(o) ? o[0] : o) === value)) {
    sel.append(h('option', { value }, String(value)));
  }
  sel.value = value ?? '';
  return sel;
}

// advancedInput is the JSON textarea for the keys without a field.
export function advancedInput(obj) {
  const text = obj && Object.keys(obj).length ? JSON.stringify(obj, null, 2) : '';
  return h('textarea', { rows: 8, spellcheck: 'false', class: 'mono', value: text, placeholder: '{ }' });
}

// parseAdvanced reads the advanced textarea: empty is {}, else a JSON
// object. It throws an Error whose message is shown at the textarea.
export function parseAdvanced(text) {
  const t = String(text || '').trim();
  if (!t) return {};
  if (t.length > MAX_ADVANCED) throw new Error('over ' + MAX_ADVANCED + ' characters');
  let v;
  try { v = JSON.parse(t); } catch (e) { throw new Error('not valid JSON: ' + (e && e.message ? e.message : e)); }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('must be a JSON object ({ … })');
  return v;
}

// clearErrors hides every error of a form.
export function clearErrors(form) {
  for (const el of form.querySelectorAll('[data-error-for]')) {
    el.textContent = '';
    el.hidden = true;
  }
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

// setError shows msg at the field key (or the form's general slot "_form"
// when the form has no such field) and focuses it.
export function setError(form, key, msg) {
  let slot = errorFor(form, key);
  if (!slot) slot = errorFor(form, '_form');
  if (!slot) return;
  slot.textContent = msg;
  slot.hidden = false;
  const wrap = slot.closest('[data-field]');
  const input = wrap ? wrap.querySelector('input, select, textarea') : null;
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    if (!form.querySelector('[aria-invalid="true"]:focus')) input.focus();
  }
}

function errorFor(form, key) {
  for (const el of form.querySelectorAll('[data-error-for]')) {
    if (el.getAttribute('data-error-for') === key) return el;
  }
  return null;
}

// errorPath reads the key path an API error message starts with:
// "invalid destination hooks: auth.password: required" → "auth.password",
// "invalid source: verify[0] (hmac): secrets: …" → "verify[0].secrets",
// "destination: no destination named …" → "destination". text is the
// message without the "invalid <kind> <name>: " lead.
export function errorPath(message) {
  let rest = String(message || '');
  rest = rest.replace(/^invalid (?:destination|source|subscription)(?: [A-Za-z0-9_.-]+)?: /, '');
  rest = rest.replace(/^(?:destination|source) "[^"]*": /, '');
  const text = rest;
  const parts = [];
  const seg = /^([A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*)*)(?: \([A-Za-z0-9_.-]+\))?: /;
  for (let i = 0; i < 8; i++) {
    const m = seg.exec(rest);
    if (!m) break;
    parts.push(m[1]);
    rest = rest.slice(m[0].length);
  }
  return { path: parts.join('.'), text };
}

// fieldFor picks the field of keys (the form's error slots) an error path
// belongs to: the path itself, an alias, a field under it (verify[0] →
// verify[0].type), or the nearest field above it (auth.params.x → auth…);
// '' when none.
export function fieldFor(path, keys, aliases) {
  if (!path) return '';
  const have = new Set(keys);
  const alias = aliases || {};
  let p = path;
  while (p) {
    if (alias[p] && have.has(alias[p])) return alias[p];
    if (have.has(p)) return p;
    const under = keys.find((k) => k.startsWith(p + '.') || k.startsWith(p + '['));
    if (under) return under;
    const cut = Math.max(p.lastIndexOf('.'), p.lastIndexOf('['));
    p = cut > 0 ? p.slice(0, cut) : '';
  }
  return '';
}

// showAPIError shows an API error at the field it names; errors naming no
// field of the form go to the advanced textarea when the key is one of
// its keys, else to the form's general slot.
export function showAPIError(form, err, aliases) {
  const msg = err && err.message ? String(err.message) : String(err);
  const keys = Array.from(form.querySelectorAll('[data-error-for]')).map((el) => el.getAttribute('data-error-for'));
  const { path, text } = errorPath(msg);
  let key = fieldFor(path, keys.filter((k) => k !== 'advanced' && k !== '_form'), aliases);
  if (!key && err && err.code === 'conflict' && /exists/.test(msg) && keys.includes('name')) key = 'name';
  if (!key && keys.includes('advanced') && (path || /unknown key/.test(msg))) key = 'advanced';
  setError(form, key || '_form', text || msg);
}

// confirmStep asks in the page (not window.confirm) before a destructive
// action: it shows text with a confirm and a cancel button in box, and
// runs action when confirmed. ids: confirm-delete, cancel-delete. Cancel
// has the focus; Escape cancels.
export function confirmStep(box, text, label, action) {
  const yes = h('button', { type: 'button', class: 'danger', id: 'confirm-delete' }, label);
  const no = h('button', { type: 'button', id: 'cancel-delete' }, 'Cancel');
  const msg = h('div', { class: 'field-error', 'data-error-for': '_delete', role: 'alert', hidden: true });
  box.replaceChildren(h('div', { class: 'confirm panel', role: 'alertdialog', 'aria-label': text },
    h('p', null, h('strong', null, text)), h('div', { class: 'actions' }, yes, no), msg));
  box.hidden = false;
  // The safe choice has the focus: a second Enter or Space (a key held,
  // a double press) cancels instead of deleting. Escape cancels too, and
  // the focus goes back to what opened the question.
  const opener = document.activeElement;
  const close = () => {
    box.replaceChildren();
    box.hidden = true;
    if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
  };
  no.addEventListener('click', close);
  box.firstChild.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !no.disabled) { e.preventDefault(); close(); }
  });
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    no.disabled = true;
    try {
      await action();
    } catch (e) {
      msg.textContent = e && e.message ? String(e.message) : String(e);
      msg.hidden = false;
      yes.disabled = false;
      no.disabled = false;
    }
  });
  no.focus();
}

// save sends a form's body (PUT to itemPath when editing, else POST to
// listPath) with its submit button off meanwhile; saved(answer) says
// what was done. A refusal is shown at the fields it names (aliases: see
// showAPIError); a lost session is the sign-in panel's.
export async function save(form, submit, o) {
  submit.disabled = true;
  try {
    const answer = await api(o.editing ? o.itemPath : o.listPath, { method: o.editing ? 'PUT' : 'POST', body: o.body });
    o.saved(answer || {});
  } catch (err) {
    if (err.auth) return;
    showAPIError(form, err, o.aliases);
  } finally {
    submit.disabled = false;
  }
}

// deleteButton is a Delete button (id) that asks in box, with question,
// before it DELETEs path, then flashes done and goes to back.
export function deleteButton(id, box, question, label, path, done, back) {
  const b = h('button', { type: 'button', class: 'danger', id }, 'Delete');
  b.addEventListener('click', () => confirmStep(box, question, label, async () => {
    await api(path, { method: 'DELETE' });
    flash(done);
    navigate(back);
  }));
  return b;
}

// formView renders the page that creates (name '') or edits one item of a
// kind ("destination", "source"): a back link, a title, and build(ctx,
// item) — item null for a new one, else the API's answer at path, when
// the item was created through the API (one from the configuration file
// is changed there).
export function formView(ctx, o) {
  const { kind, name, listHash, itemHash, path, build } = o;
  const editing = !!name;
  const title = kind.charAt(0).toUpperCase() + kind.slice(1);
  ctx.view.append(h('div', { class: 'toolbar' }, h('a', { href: editing ? itemHash : listHash }, '← ' + (editing ? name : title + 's'))),
    h('h1', null, editing ? 'Edit ' + kind + ' ' : 'New ' + kind, editing ? h('span', { class: 'mono' }, name) : null));
  if (!editing) {
    ctx.view.append(build(ctx, null));
    return;
  }
  const holder = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  ctx.view.append(holder);
  api(path).then((item) => {
    if (!ctx.alive()) return;
    if (item.origin !== 'api' || !item.definition) {
      holder.replaceChildren(h('p', { class: 'empty' }, title + ' ' + name + ' is defined in the configuration file: change it there.'));
      return;
    }
    holder.replaceChildren(build(ctx, item));
  }, (e) => {
    if (!ctx.alive()) return;
    holder.replaceChildren(h('p', { class: 'empty' }, 'Could not load this ' + kind + '.'));
    showError(e);
  });
}

// fillRows lists every item at path into tbody, one row(item) each, or a
// row saying empty (or that the list could not be loaded) across cols
// columns.
export function fillRows(ctx, tbody, path, row, cols, empty, what) {
  apiAll(path).then((res) => {
    if (!ctx.alive()) return;
    const list = rows(res);
    tbody.replaceChildren(...list.map(row));
    if (!list.length) tbody.append(emptyRow(cols, empty));
  }, (e) => {
    if (!ctx.alive()) return;
    tbody.replaceChildren(emptyRow(cols, 'Could not load ' + what + '.'));
    showError(e);
  });
}

// SECRET_PARAM matches query parameter names that look like credentials.
const SECRET_PARAM = /(token|key|secret|sig|signature|password|passwd|pwd|auth|credential|session)/i;

// maskURL shows a URL without its credentials: user:pass@ becomes ***@
// and the values of secret-looking query parameters (token, key, secret,
// sig, signature, password, api_key, …) become ***.
export function maskURL(u) {
  if (u === null || u === undefined) return '';
  let s = String(u);
  let hash = '';
  const hi = s.indexOf('#');
  if (hi >= 0) { hash = s.slice(hi); s = s.slice(0, hi); }
  let query = '';
  const qi = s.indexOf('?');
  if (qi >= 0) { query = s.slice(qi + 1); s = s.slice(0, qi); }
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/]*)(.*)$/.exec(s);
  if (m) {
    const at = m[2].lastIndexOf('@');
    s = m[1] + (at >= 0 ? '***@' + m[2].slice(at + 1) : m[2]) + m[3];
  }
  if (qi >= 0) {
    s += '?' + query.split('&').map((p) => {
      const eq = p.indexOf('=');
      let name = eq >= 0 ? p.slice(0, eq) : p;
      try { name = decodeURIComponent(name.replace(/\+/g, ' ')); } catch (e) { /* keep raw */ }
      return eq >= 0 && SECRET_PARAM.test(name) ? p.slice(0, eq) + '=***' : p;
    }).join('&');
  }
  return s + (hash && SECRET_PARAM.test(hash) ? '#***' : hash);
}

// splitList reads a comma separated list ("a, b,,c" → ["a", "b", "c"]).
export function splitList(text) {
  return String(text || '').split(',').map((s) => s.trim()).filter(Boolean);
}

// omit returns a deep copy of obj without keys.
export function omit(obj, keys) {
  const out = JSON.parse(JSON.stringify(obj || {}));
  for (const k of keys) delete out[k];
  return out;
}

// setOrDelete sets obj[key] to value, or deletes it when value is empty.
export function setOrDelete(obj, key, value) {
  if (value === '' || value === undefined || value === null) delete obj[key];
  else obj[key] = value;
}
