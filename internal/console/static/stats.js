// hookd console: stats charts (GET /api/v1/stats): the destinations view's
// panel (statsPanel) and the stats view (viewStats, #/stats).

import { h, muted, fmtTime, fmtMs, fmtNum, qs, svg, pad } from './ui.js';
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

// ---- view: stats (#/stats) ---------------------------------------------
//
// Three charts over a window the range switch (#stats-range) picks: events
// received per source over time (#chart-events), attempts per destination
// by outcome (#chart-deliveries) and one destination's attempt latency,
// p50 and p99 over time (#chart-latency). Each chart is an SVG whose
// data-total is the sum of what it shows and whose <title> says the
// numbers, for screen readers and tests alike.

export const WINDOWS = [['1h', 'Hour'], ['1d', 'Day'], ['1w', 'Week']];
const WINDOW_WORDS = { '1h': 'last hour', '1d': 'last day', '1w': 'last week' };
const MAX_SERIES = 8; // sources drawn apart; the rest are summed as "other"
const CW = 720, CH = 220; // chart viewBox
const M = { left: 56, right: 12, top: 24, bottom: 34 };

const sum = (a) => (Array.isArray(a) ? a.reduce((t, v) => t + (Number(v) || 0), 0) : 0);

// tickTime labels a point's start: a week by day and hour, else by time.
function tickTime(ms, win) {
  const d = new Date(ms);
  const hm = pad(d.getHours()) + ':' + pad(d.getMinutes());
  return win === '1w' ? pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hm : hm;
}

function text(x, y, s, attrs) {
  const t = svg('text', Object.assign({ x: x.toFixed(1), y: y.toFixed(1) }, attrs || {}));
  t.textContent = s;
  return t;
}

function titled(el, s) {
  const t = svg('title');
  t.textContent = s;
  el.insertBefore(t, el.firstChild);
  return el;
}

// timeAxis draws the x axis of n points from t0 (ms) by step (s): a tick
// and a time label every few points, and the axis caption.
function timeAxis(g, n, t0, step, win) {
  const pw = CW - M.left - M.right;
  const y0 = CH - M.bottom;
  g.appendChild(svg('line', { class: 'axis', x1: M.left, y1: y0, x2: CW - M.right, y2: y0 }));
  const every = Math.max(1, Math.ceil(n / 6));
  for (let i = 0; i < n; i += every) {
    const x = M.left + (i / n) * pw;
    g.appendChild(svg('line', { class: 'tick', x1: x.toFixed(1), y1: y0, x2: x.toFixed(1), y2: y0 + 4 }));
    g.appendChild(text(x, y0 + 15, tickTime(t0 + i * step * 1000, win), { class: 'tick-label', 'text-anchor': 'middle' }));
  }
  g.appendChild(text(CW - M.right, CH - 3, 'time (local), one bar per ' + stepWords(step), { class: 'axis-label', 'text-anchor': 'end' }));
}

function stepWords(step) {
  if (step % 3600 === 0) return step === 3600 ? 'hour' : step / 3600 + ' hours';
  if (step % 60 === 0) return step === 60 ? 'minute' : step / 60 + ' minutes';
  return step + ' s';
}

// valueAxis draws the y axis from 0 to top with a label at top and half.
function valueAxis(g, top, label) {
  const ph = CH - M.top - M.bottom;
  g.appendChild(svg('line', { class: 'axis', x1: M.left, y1: M.top, x2: M.left, y2: CH - M.bottom }));
  for (const v of [top, top / 2, 0]) {
    const y = M.top + ph - (v / top) * ph;
    g.appendChild(svg('line', { class: 'grid', x1: M.left, y1: y.toFixed(1), x2: CW - M.right, y2: y.toFixed(1) }));
    g.appendChild(text(M.left - 6, y + 4, fmtNum(Math.round(v * 10) / 10), { class: 'tick-label', 'text-anchor': 'end' }));
  }
  g.appendChild(text(4, 12, label, { class: 'axis-label' }));
}

function chartSvg(id, title, total) {
  const g = svg('svg', { id, class: 'chart chart-big', viewBox: '0 0 ' + CW + ' ' + CH, role: 'img', 'data-total': total,
    'aria-labelledby': id + '-title' });
  const t = svg('title', { id: id + '-title' });
  t.textContent = title;
  g.appendChild(t);
  g.appendChild(svg('rect', { class: 'chart-bg', x: M.left, y: M.top, width: CW - M.left - M.right, height: CH - M.top - M.bottom }));
  return g;
}

function legend(items) {
  return h('ul', { class: 'legend' }, items.map((it) => h('li', null,
    svg('svg', { class: 'swatch', viewBox: '0 0 10 10', 'aria-hidden': 'true' }, svg('rect', { class: it.cls, x: 0, y: 0, width: 10, height: 10 })),
    ' ' + it.label + ' ', muted(fmtNum(it.value)))));
}

// stackedTime draws layers ({cls, label, values}) as stacked bars over time.
function stackedTime(id, what, layers, st, win) {
  const n = Number(st.points) || (layers[0] ? layers[0].values.length : 0);
  const t0 = Date.parse(st.start);
  const step = Number(st.step_seconds) || 60;
  const totals = Array.from({ length: n }, (_, i) => layers.reduce((t, l) => t + (Number(l.values[i]) || 0), 0));
  const total = sum(totals);
  const top = Math.max(1, ...totals);
  const title = what + ', ' + WINDOW_WORDS[win] + ': ' +
    (layers.length ? layers.map((l) => l.label + ' ' + sum(l.values)).join(', ') + '; ' : '') + 'total ' + total;
  const g = chartSvg(id, title, total);
  valueAxis(g, top, what.split(' ')[0].toLowerCase() + ' per bar');
  timeAxis(g, n, t0, step, win);
  const pw = CW - M.left - M.right, ph = CH - M.top - M.bottom;
  const bw = pw / Math.max(n, 1);
  for (let i = 0; i < n; i++) {
    if (!totals[i]) continue;
    let y = M.top + ph;
    const tip = tickTime(t0 + i * step * 1000, win) + ': ' +
      layers.filter((l) => Number(l.values[i])).map((l) => l.label + ' ' + l.values[i]).join(', ');
    for (const l of layers) {
      const v = Number(l.values[i]) || 0;
      if (!v) continue;
      const bh = (v / top) * ph;
      y -= bh;
      g.appendChild(titled(svg('rect', { class: l.cls, x: (M.left + i * bw).toFixed(2), y: y.toFixed(2),
        width: Math.max(bw - 1, 0.5).toFixed(2), height: bh.toFixed(2), 'data-value': v }), tip));
    }
  }
  return { g, total };
}

// eventsChart: events received per source over time.
function eventsChart(st, win) {
  const srcs = (st.sources || []).map((s) => ({ name: String(s.source), values: s.events || [], total: sum(s.events) }))
    .sort((a, b) => b.total - a.total);
  const shown = srcs.slice(0, MAX_SERIES);
  const rest = srcs.slice(MAX_SERIES);
  const layers = shown.map((s, i) => ({ cls: 'series-' + i, label: s.name, values: s.values }));
  if (rest.length) {
    const n = Number(st.points) || 0;
    layers.push({ cls: 'series-other', label: 'other (' + rest.length + ' sources)',
      values: Array.from({ length: n }, (_, i) => sum(rest.map((s) => s.values[i]))) });
  }
  const { g, total } = stackedTime('chart-events', 'Events received per source', layers, st, win);
  return h('figure', { class: 'chart-box' },
    h('figcaption', null, h('strong', null, 'Events received per source'), ' ', muted(fmtNum(total) + ' in the ' + WINDOW_WORDS[win])),
    g, legend(layers.map((l) => ({ cls: l.cls, label: l.label, value: sum(l.values) }))));
}

const OUTCOMES = [['succeeded', 'chart-succeeded'], ['retried', 'chart-retried'], ['failed', 'chart-failed']];

// deliveriesChart: each destination's attempts in the window, one bar a
// destination split by outcome, and the same outcomes over time.
function deliveriesChart(st, win) {
  const dests = (st.destinations || []).map((d) => ({ name: String(d.destination), d,
    counts: OUTCOMES.map(([k]) => sum(d[k])) })).sort((a, b) => sum(b.counts) - sum(a.counts));
  const total = sum(dests.map((x) => sum(x.counts)));
  const title = 'Delivery attempts per destination by outcome, ' + WINDOW_WORDS[win] + ': ' +
    dests.map((x) => x.name + ' ' + OUTCOMES.map(([k], i) => k + ' ' + x.counts[i]).join(' ')).join('; ') +
    (dests.length ? '; ' : '') + 'total ' + total;
  const rowH = 26;
  const left = 150, right = 70;
  const hgt = Math.max(1, dests.length) * rowH + 30;
  const g = svg('svg', { id: 'chart-deliveries', class: 'chart chart-bars', viewBox: '0 0 ' + CW + ' ' + hgt, role: 'img',
    'data-total': total, 'aria-labelledby': 'chart-deliveries-title' });
  const t = svg('title', { id: 'chart-deliveries-title' });
  t.textContent = title;
  g.appendChild(t);
  const top = Math.max(1, ...dests.map((x) => sum(x.counts)));
  const pw = CW - left - right;
  dests.forEach((x, r) => {
    const y = 6 + r * rowH;
    const name = x.name.length > 22 ? x.name.slice(0, 21) + '…' : x.name;
    g.appendChild(titled(text(left - 8, y + 15, name, { class: 'tick-label', 'text-anchor': 'end' }), x.name));
    g.appendChild(svg('rect', { class: 'chart-bg', x: left, y, width: pw, height: rowH - 6 }));
    let xx = left;
    OUTCOMES.forEach(([k, cls], i) => {
      const v = x.counts[i];
      if (!v) return;
      const w = (v / top) * pw;
      g.appendChild(titled(svg('rect', { class: cls, x: xx.toFixed(2), y, width: Math.max(w, 0.5).toFixed(2), height: rowH - 6,
        'data-destination': x.name, 'data-outcome': k, 'data-value': v }), x.name + ': ' + k + ' ' + v));
      xx += w;
    });
    g.appendChild(text(xx + 6, y + 15, fmtNum(sum(x.counts)), { class: 'tick-label' }));
  });
  const t0 = Date.parse(st.start);
  const t1 = t0 + (Number(st.points) || 0) * (Number(st.step_seconds) || 0) * 1000;
  const axisY = hgt - 6;
  g.appendChild(text(left, axisY, 'attempts from ' + tickTime(t0, '1w') + ' to ' + tickTime(Math.min(t1, Date.now()), '1w') +
    ' (local time)', { class: 'axis-label' }));
  if (!dests.length) g.appendChild(text(left, 22, 'No attempts in this window.', { class: 'tick-label' }));

  // The outcomes of every destination over time.
  const layers = OUTCOMES.map(([k, cls]) => ({ cls, label: k,
    values: Array.from({ length: Number(st.points) || 0 }, (_, i) => sum(dests.map((x) => Number(x.d[k] && x.d[k][i]) || 0))) }));
  const over = stackedTime('chart-outcomes', 'Attempts by outcome (all destinations)', layers, st, win);
  return h('figure', { class: 'chart-box' },
    h('figcaption', null, h('strong', null, 'Delivery attempts per destination, by outcome'), ' ',
      muted(fmtNum(total) + ' in the ' + WINDOW_WORDS[win])),
    g, legend(OUTCOMES.map(([k, cls], i) => ({ cls, label: k, value: sum(dests.map((x) => x.counts[i])) }))),
    h('p', { class: 'muted small' }, 'Over time, all destinations:'), over.g);
}

// Latency is drawn on a log scale from 1 ms to 10 s (the estimates are
// bucket bounds: 5, 10, 25 … 10000 ms).
const LAT_TICKS = [[5, '5 ms'], [10, '10 ms'], [100, '100 ms'], [1000, '1 s'], [10000, '10 s']];
function latY(ms) {
  const ph = CH - M.top - M.bottom;
  const v = Math.min(Math.max(Number(ms) || 1, 1), 10000);
  return M.top + ph - (Math.log10(v) / 4) * ph;
}

// latencyChart: one destination's p50 and p99 per point, as lines.
function latencyChart(st, win, pick, onPick) {
  const dests = (st.destinations || []).map((d) => d).sort((a, b) => String(a.destination).localeCompare(String(b.destination)));
  const d = dests.find((x) => String(x.destination) === pick) || dests[0];
  const sel = h('select', { id: 'stats-latency-destination', name: 'latency-destination', 'aria-label': 'Destination of the latency chart' },
    dests.map((x) => h('option', { value: String(x.destination) }, String(x.destination))));
  if (d) sel.value = String(d.destination);
  sel.addEventListener('change', () => onPick(sel.value));
  const n = Number(st.points) || 0;
  const t0 = Date.parse(st.start);
  const step = Number(st.step_seconds) || 60;
  const attempts = d ? OUTCOMES.reduce((t, [k]) => t + sum(d[k]), 0) : 0;
  const series = d ? [['p50', 'line-p50', d.p50_ms || []], ['p99', 'line-p99', d.p99_ms || []]] : [];
  const worst = (a) => { const v = a.filter((x) => x !== null && x !== undefined).map(Number); return v.length ? Math.max(...v) : null; };
  const title = d ? 'Attempt latency of ' + d.destination + ', ' + WINDOW_WORDS[win] + ': ' +
    series.map(([k, , a]) => k + ' at most ' + (worst(a) === null ? '—' : fmtMs(worst(a)))).join(', ') +
    '; over ' + attempts + ' attempts' : 'Attempt latency: no attempts in the ' + WINDOW_WORDS[win];
  const g = chartSvg('chart-latency', title, attempts);
  if (d) g.setAttribute('data-destination', String(d.destination));
  const ph = CH - M.top - M.bottom;
  g.appendChild(svg('line', { class: 'axis', x1: M.left, y1: M.top, x2: M.left, y2: M.top + ph }));
  for (const [v, label] of LAT_TICKS) {
    const y = latY(v);
    g.appendChild(svg('line', { class: 'grid', x1: M.left, y1: y.toFixed(1), x2: CW - M.right, y2: y.toFixed(1) }));
    g.appendChild(text(M.left - 6, y + 4, label, { class: 'tick-label', 'text-anchor': 'end' }));
  }
  g.appendChild(text(4, 12, 'latency (log scale)', { class: 'axis-label' }));
  timeAxis(g, n, t0, step, win);
  const pw = CW - M.left - M.right;
  const xAt = (i) => M.left + ((i + 0.5) / Math.max(n, 1)) * pw;
  // p99 first and larger, so a p50 equal to it stays visible on top.
  for (const [k, cls, a] of series.slice().reverse()) {
    let path = '';
    let pen = false;
    for (let i = 0; i < n; i++) {
      const v = a[i];
      if (v === null || v === undefined) { pen = false; continue; }
      path += (pen ? 'L' : 'M') + xAt(i).toFixed(1) + ' ' + latY(v).toFixed(1) + ' ';
      pen = true;
      g.appendChild(titled(svg('circle', { class: cls + ' dot', cx: xAt(i).toFixed(1), cy: latY(v).toFixed(1), r: k === 'p99' ? 4 : 2.5 }),
        tickTime(t0 + i * step * 1000, win) + ': ' + k + ' ≤ ' + fmtMs(v)));
    }
    if (path) g.appendChild(svg('path', { class: cls, d: path.trim(), fill: 'none' }));
  }
  return h('figure', { class: 'chart-box' },
    h('figcaption', null, h('strong', null, 'Attempt latency, p50 and p99'), ' ',
      dests.length ? sel : null, ' ', muted(fmtNum(attempts) + ' attempts')),
    g,
    h('ul', { class: 'legend' },
      h('li', null, svg('svg', { class: 'swatch', viewBox: '0 0 10 10', 'aria-hidden': 'true' }, svg('rect', { class: 'fill-p50', x: 0, y: 0, width: 10, height: 10 })), ' p50 (median)'),
      h('li', null, svg('svg', { class: 'swatch', viewBox: '0 0 10 10', 'aria-hidden': 'true' }, svg('rect', { class: 'fill-p99', x: 0, y: 0, width: 10, height: 10 })), ' p99')),
    h('p', { class: 'muted small' }, 'Estimates: each is the upper bound of its latency bucket (docs/STATS.md); 10 s also means longer.'));
}

export function viewStats(ctx) {
  const p = ctx.params;
  const asked = p.get('window') || '';
  const alias = { hour: '1h', day: '1d', week: '1w' }[asked] || asked; // #/stats?window=day works too
  const win = WINDOWS.some(([w]) => w === alias) ? alias : '1h';
  const source = p.get('source') || '';
  const destination = p.get('destination') || '';
  let latencyPick = p.get('latency') || '';
  const link = (g) => '#/stats' + qs(Object.assign({ window: win, source, destination }, g));

  const range = h('div', { id: 'stats-range', class: 'segmented', role: 'group', 'aria-label': 'Time range' },
    WINDOWS.map(([w, label]) => h('button', { type: 'button', 'data-window': w, class: w === win ? 'on' : null,
      'aria-pressed': w === win ? 'true' : 'false', onclick: () => { location.hash = link({ window: w }); } }, label)));
  const refresh = h('button', { type: 'button', id: 'stats-refresh' }, 'Refresh');
  const body = h('div', { id: 'stats-charts', 'data-window': win }, muted('Loading…'));
  const filters = [];
  if (source) filters.push(h('span', { class: 'chip' }, 'source ' + source, ' ', h('a', { href: link({ source: '' }) }, '×')));
  if (destination) filters.push(h('span', { class: 'chip' }, 'destination ' + destination, ' ', h('a', { href: link({ destination: '' }) }, '×')));
  ctx.view.append(
    h('div', { class: 'toolbar' }, h('h1', null, 'Stats'), range, filters, h('span', { class: 'spacer' }), refresh),
    body);

  let st = null;
  function draw() {
    if (!st) return;
    const truncated = st.truncated ? h('p', { class: 'note' }, 'Some series are missing (one step held too many): filter by source or destination.') : null;
    const latency = latencyChart(st, win, latencyPick, (name) => {
      latencyPick = name;
      history.replaceState(null, '', link({ latency: name }));
      draw();
    });
    body.replaceChildren(...[truncated,
      h('section', { id: 'stats-sources' }, eventsChart(st, win)),
      h('section', { id: 'stats-destinations' }, deliveriesChart(st, win)),
      h('section', { id: 'stats-latency' }, latency)].filter(Boolean));
  }

  async function load() {
    refresh.disabled = true;
    try {
      const res = await api('/api/v1/stats' + qs({ window: win, source, destination }));
      if (!ctx.alive()) return;
      st = res || {};
      draw();
    } catch (e) {
      if (!ctx.alive()) return;
      if (!st) body.replaceChildren(h('p', { class: 'empty' }, 'Could not load the stats.'));
      showError(e);
    } finally {
      refresh.disabled = false;
    }
  }
  refresh.addEventListener('click', load);
  load();
}
