// hookd web console: a single-page app over the admin API (/api/v1),
// written as ES modules loaded straight from the binary (no build step).
//
// app.js wires the sign-in panel and the routes to the views:
//   ui.js                DOM building, formatting, SVG helpers
//   api.js               the API client, the session, error bar and flash
//   router.js            hash routing and the view context
//   actions.js           a delivery's retry and cancel buttons
//   view-events.js       the events list and one event's detail
//   view-failed.js       the failed queue and bulk replay
//   replay.js            bulk replay with its progress (failed queue, events)
//   view-test-event.js   send a test event to a destination
//   view-destinations.js destinations, one destination, its form
//   view-subscriptions.js subscriptions and their form
//   view-sources.js      sources, one source, its form
//   forms.js             fields, API errors at fields, secrets, confirm
//   stats.js             the stats charts and the stats view

import { $, h } from './ui.js';
import { signIn, signOut, resumeSession, showAuth, hideAuth, clearError, showError, updateAuthStatus } from './api.js';
import { route, stopView, setDispatch, pathRest } from './router.js';
import { viewEvents, viewEvent } from './view-events.js';
import { viewFailed } from './view-failed.js';
import { viewDestinations, viewDestination, viewDestinationForm } from './view-destinations.js';
import { viewSubscriptions, viewSubscriptionForm } from './view-subscriptions.js';
import { viewSources, viewSource, viewSourceForm } from './view-sources.js';
import { viewTestEvent } from './view-test-event.js';
import { viewStats } from './stats.js';

// segment decodes one path segment of the hash.
function segment(s) {
  try { return decodeURIComponent(s); } catch (e) { return s; }
}

// configRoute dispatches #/<kind>, #/<kind>/new, #/<kind>/<name> and
// #/<kind>/<name>/edit; show is null when a kind has no page of one item.
function configRoute(parts, ctx, list, show, form) {
  const rest = parts.slice(1);
  if (!rest.length) list(ctx);
  else if (rest.length === 1 && rest[0] === 'new') form(ctx, '');
  else if (rest.length === 2 && rest[1] === 'edit') form(ctx, segment(rest[0]));
  else if (show) show(ctx, pathRest(parts));
  else return false;
  return true;
}

// dispatch renders the view of a route; false sends the page to #/events.
function dispatch(section, parts, ctx) {
  switch (section) {
    case 'events':
      if (parts.length > 1) viewEvent(ctx, pathRest(parts));
      else viewEvents(ctx);
      return true;
    case 'failed': viewFailed(ctx); return true;
    case 'stats': viewStats(ctx); return true;
    case 'test-event': viewTestEvent(ctx); return true;
    case 'destinations': return configRoute(parts, ctx, viewDestinations, viewDestination, viewDestinationForm);
    case 'subscriptions': return configRoute(parts, ctx, viewSubscriptions, null, viewSubscriptionForm);
    case 'sources': return configRoute(parts, ctx, viewSources, viewSource, viewSourceForm);
    default: return false;
  }
}

function init() {
  setDispatch(dispatch);
  $('token-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = $('token-input').value.trim().replace(/^Bearer\s+/i, '');
    $('token-input').value = '';
    if (!t) {
      showAuth('The token is empty.', true);
      return;
    }
    const { refused, kept } = await signIn(t);
    if (refused) {
      showAuth(refused, true);
      return;
    }
    hideAuth();
    clearError();
    route();
    // Signed in, but the session before could not be ended: say so.
    if (kept) showError(new Error('Signed in. The previous session could not be ended (' + kept + '): it stays valid on the server until it expires.'));
  });
  $('auth-cancel').addEventListener('click', hideAuth);
  $('auth-change').addEventListener('click', () => showAuth('', false));
  $('auth-forget').addEventListener('click', async () => {
    stopView();
    const failed = await signOut();
    clearError();
    if (failed) {
      route();
      showError(new Error(failed));
      $('auth-forget').focus();
      return;
    }
    $('view').replaceChildren(h('p', { class: 'empty' }, 'Signed out.'));
    showAuth('Signed out. Sign in with an admin token to continue.', false);
  });
  $('error-close').addEventListener('click', clearError);
  window.addEventListener('hashchange', () => { clearError(); route(); });
  updateAuthStatus();
  if (!location.hash) history.replaceState(null, '', '#/events');
  resumeSession().then(route);
}

init();
