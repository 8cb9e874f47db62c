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
//   view-destinations.js destinations and subscriptions
//   view-sources.js      sources and one source
//   stats.js             the stats charts and the stats view

import { $, h } from './ui.js';
import { signIn, signOut, resumeSession, showAuth, hideAuth, clearError, updateAuthStatus } from './api.js';
import { route, stopView, setDispatch, pathRest } from './router.js';
import { viewEvents, viewEvent } from './view-events.js';
import { viewFailed } from './view-failed.js';
import { viewDestinations } from './view-destinations.js';
import { viewSources, viewSource } from './view-sources.js';
import { viewTestEvent } from './view-test-event.js';
import { viewStats } from './stats.js';

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
    case 'destinations': viewDestinations(ctx); return true;
    case 'sources':
      if (parts.length > 1) viewSource(ctx, pathRest(parts));
      else viewSources(ctx);
      return true;
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
    const refused = await signIn(t);
    if (refused) {
      showAuth(refused, true);
      return;
    }
    hideAuth();
    clearError();
    route();
  });
  $('auth-cancel').addEventListener('click', hideAuth);
  $('auth-change').addEventListener('click', () => showAuth('', false));
  $('auth-forget').addEventListener('click', async () => {
    stopView();
    await signOut();
    clearError();
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
