/* The reporting board (/hub/board): every clinic × form of a month, live. ES2017 module, no
   build step; hub.js logs in and sends 'hub:me'. Data is only ever rendered as text nodes.
   GET /api/hub/board?pe= gives the board; /api/hub/board/events?pe= (EventSource) sends it
   again on every (re)connect, then the cells that changed with the new rates. */
import {h, fill} from './dom.js';
import {t} from './i18n.js';

const MAIN = document.getElementById('main');
const MONTHS = () => [t('January'), t('February'), t('March'), t('April'), t('May'), t('June'),
  t('July'), t('August'), t('September'), t('October'), t('November'), t('December')];
const STATE = () => ({
  not_expected: t('not expected'), not_started: t('not started'), in_progress: t('in progress'),
  complete: t('complete at the hub'), received: t('received by national'),
  refused: t('refused by national')});
let BOARD = null, SOURCE = null, RETRY = null, CELLS = {};

const monthName = pe => `${MONTHS()[+pe.slice(4, 6) - 1]} ${pe.slice(0, 4)}`;
const pct = r => (r === null || r === undefined ? '—' : `${Math.round(r)} %`);
const fmtDay = s => s || '';

function months() { // the month picker: the last 36 months, newest first
  const d = new Date(), out = [];
  for (let i = 0; i < 36; i++) {
    const m = d.getFullYear() * 12 + d.getMonth() - i;
    const pe = `${Math.floor(m / 12)}${String(m % 12 + 1).padStart(2, '0')}`;
    out.push(pe);
  }
  return out;
}

function wanted() {
  const pe = new URLSearchParams(location.search).get('pe');
  return /^\d{6}$/.test(pe || '') ? pe : '';
}

function start() {
  fill(MAIN,
    h('div', {class: 'board-head'},
      h('h1', {id: 'board-title'}, t('Reporting board')),
      h('label', {class: 'board-pick'}, t('Month'),
        h('select', {id: 'board-pe', onchange: e => open(e.target.value, true)},
          months().map(pe => h('option', {value: pe}, monthName(pe))))),
      h('span', {id: 'board-live', class: 'live', role: 'status'}, t('connecting…')),
      h('button', {type: 'button', id: 'board-print', onclick: () => window.print()}, t('Print'))),
    h('div', {id: 'board-rates', class: 'rates', 'aria-live': 'polite'}),
    h('div', {id: 'board-matrix'}),
    h('p', {class: 'muted legend-note'}, t('Reporting rate = forms complete ÷ forms expected; on ' +
      'time = completed within the form\'s timely days after the month ends (DHIS2\'s definition).')));
  open(wanted(), false);
}

function open(pe, push) {
  if (SOURCE) SOURCE.close();
  clearTimeout(RETRY);
  if (push) history.replaceState(null, '', '/hub/board?pe=' + encodeURIComponent(pe));
  const url = '/api/hub/board/events' + (pe ? '?pe=' + encodeURIComponent(pe) : '');
  const live = document.getElementById('board-live');
  live.textContent = t('connecting…');
  live.className = 'live';
  const src = SOURCE = new EventSource(url, {withCredentials: true});
  src.addEventListener('board', e => {
    live.textContent = t('live');
    live.className = 'live on';
    render(JSON.parse(e.data));
  });
  src.addEventListener('cells', e => update(JSON.parse(e.data)));
  src.onerror = () => {
    live.textContent = t('reconnecting…');
    live.className = 'live off';
    if (src.readyState === EventSource.CLOSED && SOURCE === src) { // refused: try again later
      RETRY = setTimeout(() => open(pe || (BOARD && BOARD.period) || '', false), 5000);
    }
  };
}

function render(b) {
  BOARD = b;
  CELLS = {};
  b.cells.forEach(c => { CELLS[c.ou + '.' + c.ds] = c; });
  const sel = document.getElementById('board-pe');
  if (![...sel.options].some(o => o.value === b.period)) sel.append(h('option', {value: b.period}, monthName(b.period)));
  sel.value = b.period;
  document.getElementById('board-title').textContent = t('Reporting board: {month}', {month: monthName(b.period)});
  document.title = t('Reporting board: {month}', {month: monthName(b.period)});
  rates(b.rates);
  const head = h('tr', {}, h('th', {scope: 'col', class: 'ou'}, t('Clinic')),
    b.dataSets.map(d => h('th', {scope: 'col'}, d.name)));
  const body = b.orgUnits.map(o => h('tr', {},
    h('th', {scope: 'row', class: 'ou'}, o.name, o.parent ? h('small', {}, o.parent) : null),
    b.dataSets.map(d => cellTd(CELLS[o.id + '.' + d.id], o.id, d.id))));
  const foot = h('tr', {}, h('th', {scope: 'row', class: 'ou'}, t('Reporting rate · on time')),
    b.dataSets.map(d => h('td', {'data-rate-ds': d.id}, rateText(b.rates.byDataSet[d.id]))));
  fill(document.getElementById('board-matrix'), b.orgUnits.length
    ? h('div', {class: 'tw board-tw'}, h('table', {class: 'board', id: 'board'},
      h('thead', {}, head), h('tbody', {}, body), h('tfoot', {}, foot)))
    : h('p', {class: 'banner'}, t('No clinic in your area is expected to report monthly forms.')));
}

const rateText = r => (r ? `${pct(r.reportingRate)} · ${pct(r.onTimeRate)}` : '—');

function rates(r) {
  const a = r.all, card = (k, n, label, sub) => h('div', {class: 'rate', 'data-rate': k},
    h('span', {class: 'big-n'}, n), h('span', {}, label), sub ? h('small', {}, sub) : null);
  fill(document.getElementById('board-rates'),
    card('reporting', pct(a.reportingRate), t('reporting rate'),
      t('{n} of {m} forms complete', {n: a.complete, m: a.expected})),
    card('ontime', pct(a.onTimeRate), t('on time'), t('{n} complete on time', {n: a.onTime})),
    card('received', String(a.received), t('received by national'),
      t('{n} waiting at the hub', {n: a.complete - a.received})));
}

function cellTd(c, ou, ds) {
  const td = h('td', {class: 'bc', 'data-ou': ou, 'data-ds': ds});
  paint(td, c);
  return td;
}

function paint(td, c) {
  const st = c ? c.state : 'not_expected', words = STATE()[st] || st, kids = [h('b', {}, words)];
  if (c && (st === 'in_progress' || st === 'not_started') && c.cells) {
    const share = Math.round(100 * c.filled / c.cells);
    if (st === 'in_progress') {
      const bar = h('span', {class: 'bar-in'});
      bar.style.width = share + '%'; // CSSOM, not a style attribute: the CSP allows no inline style
      kids.push(h('span', {class: 'share'}, t('{p} % of cells filled', {p: share})),
        h('span', {class: 'bar-out', 'aria-hidden': 'true'}, bar));
    }
  }
  if (c && c.completedOn) {
    kids.push(h('span', {}, c.onTime ? t('on time ({day})', {day: fmtDay(c.completedOn)})
      : t('late ({day})', {day: fmtDay(c.completedOn)})));
  }
  if (c && st === 'refused') kids.push(h('span', {class: 'why'}, (c.reason || t('no reason given')) + (c.errorCode ? ` (${c.errorCode})` : '')));
  if (c && !c.expected && st !== 'not_expected') kids.push(h('span', {class: 'muted'}, t('not expected here')));
  td.setAttribute('data-state', st);
  td.setAttribute('data-ontime', c && c.completedOn ? String(!!c.onTime) : '');
  fill(td, kids);
}

function update(msg) {
  if (!BOARD || msg.period !== BOARD.period) return;
  for (const c of msg.cells) {
    CELLS[c.ou + '.' + c.ds] = c;
    const td = document.querySelector(`td.bc[data-ou="${c.ou}"][data-ds="${c.ds}"]`);
    if (!td) continue;
    paint(td, c);
    td.classList.remove('flash');
    void td.offsetWidth; // restart the highlight
    td.classList.add('flash');
  }
  BOARD.rates = msg.rates;
  rates(msg.rates);
  document.querySelectorAll('td[data-rate-ds]').forEach(td => {
    td.textContent = rateText(msg.rates.byDataSet[td.getAttribute('data-rate-ds')]);
  });
}

addEventListener('hub:me', () => { if (!SOURCE) start(); });
