// hookd console: the retry and cancel buttons of one delivery, shared by
// the event detail and the failed queue.

import { h } from './ui.js';
import { api, showError, flash } from './api.js';

const RETRYABLE = new Set(['failed', 'succeeded', 'cancelled']);

// ---- retry button --------------------------------------------------------

export function retryButton(d, after) {
  if (!RETRYABLE.has(d.status)) return null;
  const b = h('button', { type: 'button', class: 'small' }, 'Retry');
  b.addEventListener('click', async (e) => {
    e.stopPropagation();
    if (d.status === 'succeeded' && !confirm('This delivery to ' + d.destination + ' already succeeded. Send it again?')) return;
    b.disabled = true;
    b.textContent = 'Retrying…';
    try {
      const res = await api('/api/v1/deliveries/' + encodeURIComponent(d.id) + '/retry', { method: 'POST' });
      flash('Retry queued: delivery ' + d.id + ' to ' + d.destination + '.');
      if (after) after(res || d, b);
    } catch (err) {
      showError(err);
      b.disabled = false;
      b.textContent = 'Retry';
    }
  });
  return b;
}

// cancelButton takes a failed delivery out of the failed queue.
export function cancelButton(d, after) {
  if (d.status !== 'failed') return null;
  const b = h('button', { type: 'button', class: 'small' }, 'Cancel');
  b.addEventListener('click', async (e) => {
    e.stopPropagation();
    if (!confirm('Cancel the delivery of ' + d.event_id + ' to ' + d.destination + '? It leaves the failed queue and is not sent again unless retried.')) return;
    b.disabled = true;
    b.textContent = 'Cancelling…';
    try {
      const res = await api('/api/v1/deliveries/' + encodeURIComponent(d.id) + '/cancel', { method: 'POST' });
      flash('Cancelled: delivery ' + d.id + ' to ' + d.destination + '.');
      if (after) after(res || d, b);
    } catch (err) {
      showError(err);
      b.disabled = false;
      b.textContent = 'Cancel';
    }
  });
  return b;
}
