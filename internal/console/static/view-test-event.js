// hookd console: send a test event to a destination
// (#/test-event?destination=NAME, POST /api/v1/destinations/{name}/test).
// One attempt is made at once, outside the destination's queue; nothing
// is stored, so the answer is the whole outcome and is shown here.

import { h, badge, muted, fmtMs, fillSelect, qs } from './ui.js';
import { api, destinationNames } from './api.js';

// PAYLOAD_MAX bounds the payload typed here (the API refuses big bodies
// with 413 anyway; this says it before sending).
const PAYLOAD_MAX = 1 << 20;

const SAMPLE = '{\n  "id": "test-1",\n  "type": "hookd.test",\n  "message": "a test event from the hookd console"\n}';

const OUTCOME_BADGE = { succeeded: 'ok', retry: 'retrying', failed: 'bad', disable: 'bad' };

export function viewTestEvent(ctx) {
  const dest = ctx.params.get('destination') || '';
  const destSel = h('select', { name: 'destination', required: true }, h('option', { value: '' }, 'pick a destination'));
  fillSelect(destSel, [], dest);
  destSel.addEventListener('change', () => {
    history.replaceState(null, '', '#/test-event' + qs({ destination: destSel.value }));
  });
  const typeIn = h('input', { type: 'text', name: 'type', value: 'hookd.test', maxlength: 256, size: 24, spellcheck: 'false' });
  const payload = h('textarea', { name: 'payload', rows: 12, cols: 60, spellcheck: 'false', 'aria-describedby': 'payload-error' });
  payload.value = SAMPLE;
  const payloadErr = h('p', { id: 'payload-error', class: 'field-error', role: 'alert', hidden: true });
  const formErr = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const send = h('button', { type: 'submit', id: 'test-event-send', class: 'primary' }, 'Send test event');
  const result = h('div', { id: 'test-event-result-box' });

  const form = h('form', { id: 'test-event-form', class: 'panel test-form', novalidate: true },
    h('label', { class: 'field' }, h('span', null, 'Destination'), destSel),
    h('label', { class: 'field' }, h('span', null, 'Type'), typeIn),
    h('label', { class: 'field' }, h('span', null, 'Payload (JSON)'), payload),
    payloadErr,
    h('p', { class: 'muted small' }, 'One attempt is made now, through the destination\'s signing, headers and egress guard, ' +
      'outside its queue and retry policy; nothing is stored. A disabled destination is tried too.'),
    formErr,
    h('div', { class: 'toolbar' }, send));

  ctx.view.append(
    h('div', { class: 'toolbar' }, h('a', { href: '#/destinations' }, '← Destinations')),
    h('h1', null, 'Send a test event'), form, result);

  destinationNames().then((names) => {
    if (!ctx.alive()) return;
    destSel.replaceChildren(h('option', { value: '' }, 'pick a destination'));
    fillSelect(destSel, names, dest);
  });

  // checkPayload says what is wrong with the payload, or ''.
  function checkPayload() {
    const text = payload.value;
    let msg = '';
    if (!text.trim()) msg = 'The payload is empty: type a JSON value (e.g. {}).';
    else if (text.length > PAYLOAD_MAX) msg = 'The payload is over 1 MiB.';
    else {
      try { JSON.parse(text); } catch (e) { msg = 'Not valid JSON: ' + (e && e.message ? e.message : e); }
    }
    payloadErr.textContent = msg;
    payloadErr.hidden = !msg;
    payload.setAttribute('aria-invalid', msg ? 'true' : 'false');
    payload.classList.toggle('invalid', !!msg);
    return msg;
  }
  payload.addEventListener('input', () => { if (!payloadErr.hidden) checkPayload(); });
  payload.addEventListener('blur', checkPayload);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    formErr.hidden = true;
    if (!destSel.value) {
      formErr.textContent = 'Pick a destination.';
      formErr.hidden = false;
      destSel.focus();
      return;
    }
    if (checkPayload()) {
      payload.focus();
      return;
    }
    const name = destSel.value;
    // The text is sent as it was typed (as body, with a JSON content
    // type), so big numbers and key order reach the destination unchanged.
    const req = { body: payload.value, content_type: 'application/json' };
    if (typeIn.value.trim()) req.type = typeIn.value.trim();
    send.disabled = true;
    send.textContent = 'Sending…';
    result.replaceChildren(muted('Sending to ' + name + '…'));
    try {
      const res = await api('/api/v1/destinations/' + encodeURIComponent(name) + '/test', { method: 'POST', body: req });
      if (!ctx.alive()) return;
      result.replaceChildren(renderResult(name, res || {}));
    } catch (err) {
      if (!ctx.alive()) return;
      result.replaceChildren();
      formErr.textContent = 'The test was refused: ' + err.message;
      formErr.hidden = false;
    } finally {
      send.disabled = false;
      send.textContent = 'Send test event';
    }
  });
}

function renderResult(name, res) {
  const outcome = String(res.outcome || '');
  const meta = h('dl', { class: 'meta' });
  const item = (k, v) => meta.append(h('dt', null, k), h('dd', null, v));
  item('Destination', name);
  item('Outcome', badge(outcome, OUTCOME_BADGE[outcome] || 'info'));
  item('Status code', res.status_code ? String(res.status_code) : muted('—'));
  item('Duration', fmtMs(res.duration_ms));
  item('Test event ID', h('span', { class: 'mono' }, String(res.event_id || '—')));
  if (res.error) item('Error', h('span', { class: 'err' }, String(res.error)));
  const explain = {
    succeeded: 'The destination accepted the event.',
    retry: 'A delivery would be retried later (a transient failure).',
    failed: 'A delivery would fail for good (a permanent error).',
    disable: 'The destination answered 410 Gone: a delivery would disable it (this test disables nothing).',
  }[outcome];
  return h('section', { id: 'test-event-result', class: 'panel', 'data-outcome': outcome,
    'data-status-code': res.status_code ? String(res.status_code) : '' },
  h('h2', null, 'Result'),
  explain ? h('p', null, explain) : null,
  meta,
  typeof res.response === 'string' && res.response !== ''
    ? [h('h3', null, 'Response (first 1 KiB)'), h('pre', { class: 'excerpt' }, res.response)] : null);
}
