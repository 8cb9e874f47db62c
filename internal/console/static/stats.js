// hookd console: stats charts (GET /api/v1/stats).

import { h, muted, fmtTime, fmtMs, fmtNum, qs, svg } from './ui.js';
import { api, showError } from './api.js';

// barChart draws stacked bars, one per point: layers is a list of
// {cls, label, values} (values: one number per point), drawn bottom up in
// the class cls (console.css colours it). start and step (seconds) date
// each bar's tooltip.
export function barChart(title, layers, start, step) {
  const n = layers.length ? layers[0].values.length : 0;
  const W = 600, H = 80;
  const totals = Array.from({ length: n }, (_, i) => layers.reduce((t, l) => t + (Number(l.values[i]) || 0), 0));
  const top = Math.max(1, ...totals);
  const bw = n ? W / n : W;
  const g = svg('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img', 'aria-label': title });
  g.appendChild(svg('rect', { class: 'chart-bg', x: 0, y: 0, width: W, height: H }));
  const t0 = Date.parse(start);
  for (let i = 0; i < n; i++) {
    let y = H;
    const tip = [fmtTime(new Date(t0 + i * step * 1000).toISOString())]
      .concat(layers.map((l) => l.label + ' ' + (Number(l.values[i]) || 0))).join(', ');
    for (const l of layers) {
      const v = Number(l.values[i]) || 0;
      if (!v) continue;
      const bh = (v / top) * (H - 2);
      y -= bh;
      const r = svg('rect', { class: l.cls, x: (i * bw).toFixed(2), y: y.toFixed(2), width: Math.max(bw - 1, 0.5).toFixed(2), height: bh.toFixed(2) });
      r.appendChild(svg('title'));
      r.lastChild.textContent = tip;
      g.appendChild(r);
    }
  }
  return h('figure', { class: 'chart-box' }, h('figcaption', null, title, ' ', muted('(max ' + fmtNum(top) + ' per bar)')), g);
}

// statsPanel loads GET /api/v1/stats for win (1h, 1d or 1w) and draws
// a chart per destination (attempts by outcome, with the highest p50
// and p99 estimates of the window) and per source (events stored).
export function statsPanel(ctx, win) {
  const box = h('section', { class: 'stats' }, h('h2', null, 'Last ' + ({ '1h': 'hour', '1d': 'day', '1w': 'week' }[win] || win)), muted('Loading…'));
  api('/api/v1/stats' + qs({ window: win })).then((st) => {
    if (!ctx.alive()) return;
    const charts = [];
    for (const d of st.destinations || []) {
      const lat = (d.p50_ms || []).filter((v) => v !== null);
      const p99 = (d.p99_ms || []).filter((v) => v !== null);
      const note = lat.length ? ' — p50 ≤ ' + fmtMs(Math.max(...lat)) + ', p99 ≤ ' + fmtMs(Math.max(...p99)) : '';
      charts.push(barChart('Destination ' + d.destination + note, [
        { cls: 'chart-succeeded', label: 'succeeded', values: d.succeeded },
        { cls: 'chart-retried', label: 'retried', values: d.retried },
        { cls: 'chart-failed', label: 'failed', values: d.failed }], st.start, st.step_seconds));
    }
    for (const s of st.sources || []) {
      charts.push(barChart('Source ' + s.source + ' (events)', [{ cls: 'chart-events', label: 'events', values: s.events }], st.start, st.step_seconds));
    }
    box.replaceChildren(box.firstChild, ...(charts.length ? charts : [muted('Nothing counted in this window.')]));
  }, (e) => {
    if (!ctx.alive()) return;
    box.replaceChildren(box.firstChild, muted('Could not load stats.'));
    showError(e);
  });
  return box;
}
