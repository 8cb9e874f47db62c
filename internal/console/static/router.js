// hookd console: hash routing. A view is a function of a context (ctx):
// ctx.view is the element to fill, ctx.params the query of the hash,
// ctx.alive() says whether the view is still the current one (async work
// checks it before touching the page) and ctx.onLeave(f) runs f when the
// view is left (timers).

import { $, h } from './ui.js';
import { signedIn, showAuth, setOnUnauthorized } from './api.js';

let gen = 0;           // render generation: async work checks it is still current
let leaveHooks = [];   // run when the current view is left (timers)
let dispatch = null;   // set by setDispatch: (section, parts, ctx) => renders a view

export function stopView() {
  gen++;
  const hooks = leaveHooks;
  leaveHooks = [];
  for (const f of hooks) { try { f(); } catch (e) { /* ignore */ } }
}

setOnUnauthorized(stopView);

// setDispatch sets the function that renders the view of a hash's first
// path segment (section) with the rest of the path (parts).
export function setDispatch(f) { dispatch = f; }

export function parseHash() {
  const raw = location.hash.replace(/^#/, '');
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  return { parts: path.split('/').filter(Boolean), params };
}

// pathRest joins the path segments after the first and decodes them.
export function pathRest(parts, from) {
  let s = parts.slice(from === undefined ? 1 : from).join('/');
  try { s = decodeURIComponent(s); } catch (e) { /* keep raw */ }
  return s;
}

export function navigate(hash, replace) {
  if (replace) {
    history.replaceState(null, '', hash);
    route();
  } else {
    location.hash = hash;
  }
}

export function route() {
  stopView();
  const { parts, params } = parseHash();
  const section = parts[0] || '';
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.view === section);
  }
  const view = $('view');
  view.replaceChildren();
  const my = gen;
  const ctx = {
    view,
    params,
    alive: () => my === gen,
    onLeave: (f) => { leaveHooks.push(f); },
  };
  if (!signedIn()) {
    showAuth('Sign in with an admin API token to use the console.', false);
    view.append(h('p', { class: 'empty' }, 'Signed out.'));
    return;
  }
  if (!dispatch || !dispatch(section, parts, ctx)) location.replace('#/events');
}
