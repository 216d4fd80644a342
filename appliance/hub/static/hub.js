/* Data entry (/hub) and every page's header (register pages get 'hub:me' on login). ES2017
   module, no build step. Data is only ever rendered as text nodes. */
import {h, add, fill} from './dom.js';
import {t, num, month, dateTime, LANG, DIGITS} from './i18n.js';
import {offline} from './offline.js';
const B = document.body, PAGE = B.dataset.page, REFRESH = +B.dataset.refresh || 10000;
const $ = id => document.getElementById(id), MAIN = $('main');
const NUMERIC = ['INTEGER', 'INTEGER_POSITIVE', 'INTEGER_NEGATIVE', 'INTEGER_ZERO_OR_POSITIVE',
  'NUMBER', 'PERCENTAGE', 'UNIT_INTERVAL'];
const LABEL = {pending: t('received by the hub'), synced: t('accepted by national'),
  rejected: t('refused by national'), conflict: t('conflict: see log')};
let ME = null, SERVER_DATE = null, SYNCING = false;

// -- helpers
const q = p => Object.keys(p).map(k => `${encodeURIComponent(k)}=${encodeURIComponent(p[k])}`).join('&');
const msgOf = (r, fallback) => (r && r.body && r.body.message) || fallback;
const pad = n => (n < 10 ? '0' : '') + n;
function fmtTime(s) { // in the laptop's time zone; DHIS2 times without a zone are UTC
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : s + 'Z');
  if (!s || isNaN(d)) return s || '—';
  return dateTime(d);
}

async function api(method, path, body, signal) {
  const opt = {method, credentials: 'same-origin',
    headers: {Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest'}, signal};
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  const r = await fetch(path, opt);
  SERVER_DATE = r.headers.get('Date') || SERVER_DATE; // the hub's clock decides locking
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
  if (r.status === 401 && path !== '/api/auth/login') {
    showLogin(ME ? t('Your session ended. Log in again: nothing you typed is lost.') : '');
  }
  return {status: r.status, ok: r.ok, body: json};
}

// -- login and the header bar
function showLogin(message) {
  $('login').hidden = false;
  $('login-error').textContent = message;
  if (PAGE !== 'status') { MAIN.hidden = true; $('username').focus(); }
}
$('login-form').addEventListener('submit', async e => {
  e.preventDefault();
  const btn = $('login-btn'), err = $('login-error');
  btn.disabled = true;
  err.textContent = '';
  try {
    const r = await api('POST', '/api/auth/login', {username: $('username').value.trim(),
      password: $('password').value});
    $('password').value = '';
    if (r.ok) { $('login').hidden = true; MAIN.hidden = false; await afterLogin(true); return; }
    err.textContent = r.status === 401 ? t('Wrong username or password.')
      : r.status === 429 ? t('Too many failed logins: the account is locked for a while. Wait, or ask the IT focal point.')
        : t('Login failed: the hub answered {status}.', {status: r.status});
    if (r.status === 401 || r.status === 429) details(err, msgOf(r, ''));
    $('password').focus();
  } catch (x) {
    err.textContent = t('Cannot reach the hub. Check the Wi-Fi and try again.');
  } finally { btn.disabled = false; }
});
$('logout').addEventListener('click', async () => {
  if (PAGE === 'entry') await flush();
  try { await api('POST', '/api/auth/logout'); } finally { location.reload(); }
});
$('sync-now').addEventListener('click', async () => {
  const m = $('sync-msg');
  m.textContent = t('asking…');
  try {
    const r = await api('POST', '/api/hub/sync');
    m.textContent = r.ok ? t('Sync requested') : t('Sync could not start: {why}', {why: msgOf(r, r.status)});
  } catch (e) { m.textContent = t('The hub did not answer'); }
  setTimeout(refreshLink, 2500);
});

async function refreshLink() {
  const link = $('link');
  try {
    const r = await api('GET', '/api/hub/status');
    if (!r.ok || !r.body) return;
    const s = r.body.sync;
    link.className = 'pill ' + s.link;
    link.textContent = {up: t('online'), down: t('offline')}[s.link] || t('link not checked yet');
    link.title = t('Last sync with national: {when}', {when: fmtTime(s.lastSuccess)});
    SYNCING = s.syncing;
    // with a form open, the count comes with its cells (applyServer), read in one snapshot:
    // a count from another moment disagreed with them for up to a refresh (issue 14)
    if (!(PAGE === 'entry' && FORM)) setPending(s.pending);
  } catch (e) {
    link.className = 'pill down';
    link.textContent = t('hub not answering');
  }
}

function setPending(n) {
  $('pending').textContent = (SYNCING ? t('syncing now') + ' · ' : '') +
    t('{n} waiting for national', {n});
}

async function afterLogin(fresh) {
  if (PAGE === 'status' && fresh) return location.reload(); // the hub renders what this user may see
  if (fresh) { // this user may read another language (their DHIS2 user setting): the hub says which
    const s = await api('GET', '/hub/session');
    if (s.ok && s.body.locale && (s.body.locale !== LANG || (LANG === 'bn' && s.body.digits !== DIGITS))) {
      remember('hub_lang', s.body.locale);
      remember('hub_digits', s.body.digits);
      return location.reload();
    }
  }
  const r = await api('GET', '/api/me?fields=id,username,displayName,organisationUnits,dataSets,authorities');
  if (!r.ok) { if (r.status !== 401) showError(t('Cannot load your account: {why}', {why: msgOf(r, r.status)})); return; }
  const first = !ME;
  ME = r.body;
  $('who').textContent = `${ME.displayName || ME.username} (${ME.username})`;
  $('logout').hidden = $('sync-now').hidden = false;
  if (PAGE !== 'entry') return PAGE === 'status' || dispatchEvent(new CustomEvent('hub:me', {detail: ME}));
  return first ? startEntry() : flush();
}
const showError = text => add(MAIN, h('p', {class: 'banner err', role: 'alert'}, text));

// -- data entry: org unit, data set, period
let OUS = [], SEL = {}, FORM = null, CELLS = {}, MINMAX = {}, timer = null, saving = null, gen = 0;
const DSETS = {}, META = {}, cells = () => Object.values(CELLS);

async function startEntry() {
  const ids = ME.dataSets || [], seen = {};
  const found = await Promise.all((ME.organisationUnits || []).map(o => api('GET',
    '/api/organisationUnits?' + q({filter: 'path:like:' + o.id, fields: 'id,displayName~rename(name),level,dataSets[id]',
      paging: 'false', locale: LANG}))));
  for (const r of found) {
    for (const o of (r.body && r.body.organisationUnits) || []) {
      o.ds = (o.dataSets || []).map(d => d.id).filter(d => ids.includes(d));
      if (o.ds.length && !seen[o.id]) { seen[o.id] = 1; OUS.push(o); }
    }
  }
  OUS.sort((a, b) => a.level - b.level || a.name.localeCompare(b.name));
  if (ids.length) {
    const r = await api('GET', '/api/dataSets?' + q({filter: `id:in:[${ids.join(',')}]`,
      fields: 'id,displayName~rename(name),periodType,openFuturePeriods,expiryDays', paging: 'false', locale: LANG}));
    ((r.body && r.body.dataSets) || []).forEach(d => { DSETS[d.id] = d; });
  }
  if (!OUS.length) return showError(t('Your account has no clinic with forms. Ask the IT focal point.'));
  try { SEL = JSON.parse(localStorage.getItem('hub.sel.' + ME.username)) || {}; } catch (e) { SEL = {}; }
  fill(MAIN, h('div', {class: 'pick', role: 'group', 'aria-label': t('Choose the form')},
    h('label', {}, t('Clinic'), h('select', {id: 'ou', onchange: onOu})),
    h('label', {}, t('Form'), h('select', {id: 'ds', onchange: onDs})),
    h('label', {}, t('Reporting month'), h('select', {id: 'pe', onchange: onPe}))), h('div', {id: 'form'}));
  options($('ou'), OUS.map(o => [o.id, o.name]), SEL.ou, t('choose a clinic'));
  onOu();
  startOutbox();
  setInterval(() => { if (!document.hidden && FORM) refreshValues(); }, REFRESH);
}
function options(sel, items, want, placeholder) {
  fill(sel, items.length !== 1 ? h('option', {value: ''}, `— ${placeholder} —`) : null,
    items.map(it => h('option', {value: it[0]}, it[1])));
  sel.value = items.some(it => it[0] === want) ? want : items.length === 1 ? items[0][0] : '';
}
function onOu() {
  const ou = OUS.find(o => o.id === $('ou').value);
  const list = ou ? ou.ds.filter(d => DSETS[d]).map(d => [d, DSETS[d].name]) : [];
  options($('ds'), list.sort((a, b) => a[1].localeCompare(b[1])), SEL.ds, t('choose a form'));
  onDs();
}
function onDs() {
  const ds = DSETS[$('ds').value];
  options($('pe'), ds ? periods(ds).map(p => [p.id, p.label + (p.locked ? ' (' + t('locked: past expiry') + ')' : '')]) : [],
    SEL.pe, t('choose a month'));
  onPe();
}
async function onPe() {
  await flush();
  SEL = {ou: $('ou').value, ds: $('ds').value, pe: $('pe').value};
  try { localStorage.setItem('hub.sel.' + ME.username, JSON.stringify(SEL)); } catch (e) { /* private mode */ }
  FORM = null;
  CELLS = {};
  fill($('form'));
  if (SEL.ou && SEL.ds && SEL.pe) await loadForm();
}
function periods(ds) { // monthly: the open future ones, the current one, the last 12
  const now = new Date(SERVER_DATE || Date.now()), y = now.getUTCFullYear(), m = now.getUTCMonth(), out = [];
  if (ds.periodType !== 'Monthly') return out;
  const ofp = ds.openFuturePeriods || 0, exp = ds.expiryDays || 0;
  const mayEditExpired = (ME.authorities || []).some(a => a === 'ALL' || a === 'F_EDIT_EXPIRED');
  const day = Date.UTC(y, m, now.getUTCDate());
  for (let off = ofp > 0 ? ofp - 1 : -1; off >= -12; off--) {
    const d = new Date(Date.UTC(y, m + off, 1)), yy = d.getUTCFullYear(), mm = d.getUTCMonth();
    out.push({id: yy + pad(mm + 1), label: month(yy, mm),
      locked: exp > 0 && !mayEditExpired && day > Date.UTC(yy, mm + 1, exp)}); // last day + expiryDays
  }
  return out;
}

// -- data entry: the form
// display* names: DHIS2's translations in the page's language (?locale=) where the metadata has them
const DN = 'displayName~rename(name)';
const DS_FIELDS = `id,${DN},periodType,sections[id,${DN},sortOrder,dataElements[id]],dataSetElements[` +
  `dataElement[id,${DN},displayFormName~rename(formName),valueType,zeroIsSignificant,optionSet[id,options[code,${DN}]],` +
  `categoryCombo[id,categories[id,${DN},categoryOptions[id,${DN}]],` +
  `categoryOptionCombos[id,${DN},categoryOptions[id]]]]]`;
const valuesUrl = () => '/api/dataEntry/dataValues?' + q({ds: SEL.ds, pe: SEL.pe, ou: SEL.ou});
const label = de => de.formName || de.name;

async function loadForm() {
  const sel = SEL, box = $('form');
  add(box, h('p', {class: 'muted'}, t('Loading the form…')));
  try {
    if (!META[sel.ds]) {
      const m = await api('GET', `/api/dataSets/${encodeURIComponent(sel.ds)}?` + q({fields: DS_FIELDS, locale: LANG}));
      if (!m.ok) throw new Error(msgOf(m, m.status));
      META[sel.ds] = m.body;
    }
    const v = await api('GET', valuesUrl());
    if (!v.ok) throw new Error(msgOf(v, v.status));
    if (sel !== SEL) return;
    FORM = META[sel.ds];
    renderForm(box);
    applyServer(v.body);
    await showQueued();
    restoreDraft();
  } catch (e) {
    if (sel === SEL) fill(box, h('p', {class: 'banner err', role: 'alert'}, t('Cannot load the form: {why}', {why: e.message})));
  }
}
function sections(ds) {
  const byId = {};
  ds.dataSetElements.forEach(e => { byId[e.dataElement.id] = e.dataElement; });
  const secs = (ds.sections || []).slice().sort((a, b) => a.sortOrder - b.sortOrder);
  if (!secs.length) {
    return [{name: '', des: Object.values(byId).sort((a, b) => label(a).localeCompare(label(b)))}];
  }
  return secs.map(s => ({name: s.name, des: s.dataElements.map(d => byId[d.id]).filter(Boolean)}));
}
function renderForm(box) {
  const pe = $('pe').options[$('pe').selectedIndex].text, ou = OUS.find(o => o.id === SEL.ou).name;
  const button = (id, text, onclick, cls) => h('button', {type: 'button', id, onclick, class: cls}, text);
  fill(box,
    h('div', {class: 'formhead'}, h('h2', {}, FORM.name), h('p', {}, `${ou} · ${pe}`)),
    h('div', {id: 'lock'}),
    h('div', {class: 'tools'}, button('save', t('Save form'), () => flush(), 'primary'),
      button('complete', t('Mark complete'), toggleComplete), button('validate', t('Run validation'), validate),
      h('span', {id: 'complete-st', role: 'status'}), h('span', {id: 'sum', class: 'sum', role: 'status'})),
    h('div', {class: 'legend', 'aria-hidden': 'true'}, Object.keys(LABEL).map(s =>
      h('span', {'data-state': s}, h('i', {class: 'dot'}), LABEL[s]))),
    h('div', {id: 'vres', class: 'vres', hidden: true, role: 'region', 'aria-label': t('Validation result'),
      tabindex: '-1'}),
    sections(FORM).map((s, i) => h('section', {class: 'sec', 'aria-labelledby': 'sec' + i},
      s.name ? h('h3', {id: 'sec' + i}, s.name) : null, tables(s.des))));
}
function tables(des) { // a table per run of elements sharing a category combo, as DHIS2 does
  const out = [];
  let run = [];
  des.forEach((de, i) => {
    run.push(de);
    if (!des[i + 1] || des[i + 1].categoryCombo.id !== de.categoryCombo.id) { out.push(table(run)); run = []; }
  });
  return out;
}
function columns(cc) { // cartesian product of the categories' options, each mapped to its option combo
  const cats = cc.categories || [], cocs = cc.categoryOptionCombos || [];
  const key = opts => opts.map(o => o.id).sort().join();
  let cols = [[]];
  cats.forEach(c => { cols = [].concat(...cols.map(col => c.categoryOptions.map(o => col.concat([o])))); });
  cols = cols.map(col => {
    const coc = cocs.find(c => key(c.categoryOptions) === key(col));
    return {coc, name: coc ? coc.name : col.map(o => o.name).join(', ')};
  });
  if (!cats.length || !cols.some(c => c.coc)) return {cats: [], cols: cocs.map(coc => ({coc, name: coc.name}))};
  return {cats, cols};
}
function table(des) {
  const cc = des[0].categoryCombo, {cats, cols} = columns(cc), head = h('thead');
  const corner = n => h('th', {class: 'corner', scope: 'col', rowspan: n}, t('Item'));
  const th = (text, span) => h('th', {scope: 'col', colspan: span}, text);
  if (cols.length === 1 && cols[0].name === 'default') add(head, h('tr', {}, corner(1), th(t('Value'))));
  else if (!cats.length) add(head, h('tr', {}, corner(1), cols.map(c => th(c.name))));
  else {
    let span = cols.length, rep = 1;
    cats.forEach((cat, i) => {
      span /= cat.categoryOptions.length;
      const tr = h('tr', {}, i ? null : corner(cats.length)), up = cats[i - 1], last = i === cats.length - 1;
      // each last-row header also names its parent option ("15-49y / Male"): on a narrow screen
      // the wide parent header scrolls away while its columns are still in view
      for (let r = 0; r < rep; r++) {
        cat.categoryOptions.forEach(o => add(tr, last && up
          ? h('th', {scope: 'col', colspan: span}, o.name, h('small', {class: 'par'}, up.categoryOptions[r % up.categoryOptions.length].name))
          : th(o.name, span)));
      }
      rep *= cat.categoryOptions.length;
      add(head, tr);
    });
  }
  const body = h('tbody', {}, des.map(de => h('tr', {}, h('th', {scope: 'row'}, label(de)),
    cols.map(col => col.coc ? cell(de, col) : h('td', {class: 'grey'})))));
  return h('div', {class: 'tw'}, h('table', {class: 'form'}, head, body));
}
function cell(de, col) {
  const key = de.id + '.' + col.coc.id, id = `v-${de.id}-${col.coc.id}`;
  const input = makeInput(de, id, label(de) + (col.name === 'default' ? '' : ', ' + col.name));
  const st = h('span', {class: 'st', id: id + '-st'}), rng = h('span', {class: 'rng'});
  input.setAttribute('aria-describedby', id + '-st');
  const td = h('td', {class: 'cell', 'data-de': de.id, 'data-coc': col.coc.id, 'data-state': ''},
    input, st, rng);
  const c = CELLS[key] = {key, de, coc: col.coc.id, input, td, st, rng, server: '', sync: null,
    dirty: false, error: null, saving: false, note: null, queued: false};
  if (input.tagName === 'INPUT' && !['checkbox', 'date'].includes(input.type)) {
    input.addEventListener('input', () => edited(c, 1200)); // saved when typing pauses
  }
  input.addEventListener('change', () => edited(c, 100));
  input.addEventListener('keydown', e => { // Enter moves on, as in DHIS2
    if (e.key !== 'Enter' || input.tagName === 'TEXTAREA') return;
    e.preventDefault();
    const all = [...document.querySelectorAll('td.cell [id^="v-"]')].filter(i => !i.disabled);
    const n = all[all.indexOf(input) + 1];
    if (n) n.focus();
  });
  return td;
}
function makeInput(de, id, name) {
  const vt = de.valueType, os = de.optionSet, a = {id, name: id, 'aria-label': name, autocomplete: 'off'};
  const opt = (v, t) => h('option', {value: v}, t);
  if (os && os.options) return h('select', a, opt('', ''), os.options.map(o => opt(o.code, o.name)));
  if (vt === 'BOOLEAN') return h('select', a, opt('', ''), opt('true', t('Yes')), opt('false', t('No')));
  if (vt === 'LONG_TEXT') return h('textarea', Object.assign(a, {rows: 2}));
  a.type = {TRUE_ONLY: 'checkbox', DATE: 'date'}[vt] || 'text';
  if (NUMERIC.includes(vt)) {
    const whole = vt.startsWith('INTEGER');
    Object.assign(a, {type: 'number', step: whole ? '1' : 'any', inputmode: whole ? 'numeric' : 'decimal',
      min: {INTEGER_ZERO_OR_POSITIVE: '0', INTEGER_POSITIVE: '1'}[vt]});
  }
  return h('input', a);
}
const val = c => c.input.type === 'checkbox' ? (c.input.checked ? 'true' : '') : c.input.value.trim();
const setVal = (c, v) => {
  if (c.input.type === 'checkbox') c.input.checked = v === 'true'; else c.input.value = v;
};
const badInput = c => c.input.validity && c.input.validity.badInput;

function edited(c, wait) {
  c.error = c.note = null;
  c.dirty = val(c) !== c.server || badInput(c);
  paint(c);
  saveDraft();
  clearTimeout(timer);
  timer = setTimeout(flush, wait);
}

// Save changed cells in one dataValueSets import; conflicts go to their cells by index.
async function flush() {
  clearTimeout(timer);
  while (saving) await saving;
  if (!FORM) return;
  const batch = cells().filter(c => {
    if (!c.dirty || c.input.disabled) return false;
    if (badInput(c)) { c.error = {text: t('Only a number goes here.')}; paint(c); return false; }
    return true;
  });
  if (!batch.length) return;
  let done;
  saving = new Promise(res => { done = res; });
  batch.forEach(c => { c.sent = val(c); c.saving = true; paint(c); });
  try {
    const r = await api('POST', '/api/dataValueSets', {dataSet: SEL.ds, period: SEL.pe, orgUnit: SEL.ou,
      dataValues: batch.map(c => Object.assign({dataElement: c.de.id, categoryOptionCombo: c.coc,
        value: c.sent}, c.sent === '' ? {deleted: true} : {}))});
    const resp = r.body && r.body.response, byIndex = {};
    let whole = null;
    for (const cf of (resp && resp.conflicts) || []) {
      if (!cf.indexes || !cf.indexes.length) whole = whole || cf;
      else cf.indexes.forEach(i => { byIndex[i] = byIndex[i] || cf; });
    }
    if (!resp && r.status !== 401) whole = {value: msgOf(r, t('the hub answered {status}', {status: r.status}))};
    gen++;
    const settled = [];
    batch.forEach((c, i) => {
      c.saving = false;
      if (r.status !== 401 && val(c) === c.sent) settled.push(c);
      if (r.status === 401) c.note = t('not saved yet: log in again');
      else if (val(c) !== c.sent) { /* typed again meanwhile: stays dirty */ }
      else if (byIndex[i] || whole) { c.error = refusal(byIndex[i] || whole, c.de); c.dirty = false; }
      else {
        Object.assign(c, {server: c.sent, dirty: false, sync: c.sent === '' ? null : {state: 'pending'},
          zero: c.sent === '0' && !c.de.zeroIsSignificant && NUMERIC.includes(c.de.valueType)});
      }
      paint(c);
    });
    await unqueue(settled);
  } catch (e) { // the hub did not answer (power cut, Wi-Fi): the browser keeps them until it does
    batch.forEach(c => { c.saving = false; });
    await queue(batch);
  } finally {
    saving = null;
    done();
  }
  saveDraft();
  summary();
  if (batch.some(c => !c.dirty && !c.error)) refreshValues(); // the header counts what was saved
}

// the outbox: values the hub did not answer for wait in the browser (offline.js)
async function exclusive(fn) { // one request at a time: this tab's saves and the outbox's
  while (saving) await saving;
  let done;
  saving = new Promise(res => { done = res; });
  try { return await fn(); } finally { saving = null; done(); }
}
const {queue, unqueue, showQueued, startOutbox} = offline({api, exclusive, paint, val, setVal, refusal, summary,
  refreshValues, flush, main: MAIN, me: () => ME, sel: () => SEL, form: () => FORM, cells, cell: k => CELLS[k],
  bump: () => gen++, retry: f => { timer = setTimeout(f, 5000); }});

// Why a value was refused, as a sentence about the form; DHIS2's text and code go in a
// details line for the IT focal point (the same sentences as the status page: refusals.py)
const VALUE_WORDS = {
  value_not_zero_or_positive_integer: t('Only whole numbers of zero or more go here.'),
  value_not_positive_integer: t('Only whole numbers of one or more go here.'),
  value_not_negative_integer: t('Only whole numbers below zero go here.'),
  value_not_integer: t('Only whole numbers go here.'),
  value_not_numeric: t('Only a number goes here.'),
  value_not_percentage: t('Only a percentage from 0 to 100 goes here.'),
  value_not_unit_interval: t('Only a number from 0 to 1 goes here.'),
  value_not_bool: t('Choose yes or no.'),
  value_not_true_only: t('Only a tick goes here.'),
  value_not_valid_date: t('Enter a date.'),
  value_not_valid_option: t('Choose one of the listed answers.'),
  value_length_greater_than_max_length: t('This text is too long.'),
};
const CODE_WORDS = {
  E7617: t('You cannot enter data for this clinic.'),
  E7618: t('This item cannot be entered for this clinic.'),
  E7620: t('The comment is too long.'),
  E7621: t('Choose one of the listed answers.'),
  E7633: t('This item is not part of this form.'),
  E7640: t('This month is closed: it is past the last day for entering it.'),
  E7641: t('This month cannot be entered yet.'),
  E7642: t('This form is approved and cannot be changed.'),
  E7643: t('This form is not open for this month.'),
};
// a value that does not fit its value type (E7619), said by the item's type
const TYPE_WORDS = {INTEGER_ZERO_OR_POSITIVE: 'value_not_zero_or_positive_integer',
  INTEGER_POSITIVE: 'value_not_positive_integer', INTEGER_NEGATIVE: 'value_not_negative_integer',
  INTEGER: 'value_not_integer', NUMBER: 'value_not_numeric', PERCENTAGE: 'value_not_percentage',
  UNIT_INTERVAL: 'value_not_unit_interval', BOOLEAN: 'value_not_bool', TRUE_ONLY: 'value_not_true_only',
  DATE: 'value_not_valid_date'};
function refusal(cf, de) {
  const key = /\b(value_[a-z_]+)\b/.exec(cf.value || '');
  const byType = cf.errorCode === 'E7619' && de && VALUE_WORDS[TYPE_WORDS[de.valueType]];
  const text = (key && VALUE_WORDS[key[1]]) || byType || CODE_WORDS[cf.errorCode] ||
    t('This value was not saved.');
  return {text, details: [cf.errorCode, cf.value].filter(Boolean).join(' · ')};
}
function details(el, text) {
  if (text) add(el, h('small', {class: 'det', title: text}, text));
}

function paint(c) {
  const v = val(c);
  let state = '', text = '', quiet = false, det = '';
  if (c.error) { state = 'error'; text = t('Not saved:') + ' ' + c.error.text; det = c.error.details; }
  else if (c.queued && !c.dirty && !c.saving) { state = 'queued'; text = t('not yet on the hub'); quiet = true; }
  else if (c.saving) { state = 'saving'; text = t('saving…'); quiet = true; }
  else if (c.dirty) { state = 'dirty'; text = c.note || t('not saved yet'); quiet = !c.note; }
  else if (c.zero && v === '0' && !c.sync) text = t('0 is not stored for this item (counts as empty)');
  else if (c.sync && v !== '') {
    state = c.sync.state;
    text = LABEL[state] || state;
    quiet = state === 'pending' || state === 'synced'; // a mark, the words in its tooltip
    if (state === 'rejected') {
      const r = refusal({value: c.sync.message, errorCode: c.sync.errorCode}, c.de);
      text = t('Refused by national:') + ' ' + r.text;
      det = r.details;
    }
  }
  c.td.setAttribute('data-state', state);
  c.td.classList.toggle('quiet', quiet);
  c.st.title = quiet ? text : '';
  fill(c.st, text ? [h('i', {class: 'dot'}),
    state === 'conflict' ? [t('conflict:') + ' ', h('a', {href: '/hub/status#conflicts'}, t('see log'))]
      : h('span', {class: quiet ? 'sr' : 'msg'}, text)] : null);
  details(c.st, det);
  const mm = MINMAX[c.key], n = parseFloat(v), out = !!mm && v !== '' && !isNaN(n) && (n < mm[0] || n > mm[1]);
  c.td.classList.toggle('range', out); // DHIS2 warns but saves
  c.rng.textContent = out ? t('outside usual range {min}–{max}', {min: mm[0], max: mm[1]}) : '';
}

// why the form cannot be changed: national's approval (of this clinic, or of an area above
// it, which DHIS2 locks too) or the expiry days
function lockWords(d) {
  if (d.lockStatus !== 'APPROVED') return t('This month is locked (past the expiry days).');
  const a = d.hubApproval || {};
  if (!a.national) return t('This form is approved: it cannot be changed.');
  return a.state === 'APPROVED_ABOVE'
    ? t('National has approved this month for an area that includes this clinic, so this form is locked: nothing in it can be changed here. If a value is wrong, ask national to unapprove it.')
    : t('National has approved this form, so it is locked: nothing in it can be changed here. If a value is wrong, ask national to unapprove it.');
}
function applyServer(d) {
  MINMAX = {};
  (d.minMaxValues || []).forEach(m => {
    MINMAX[m.dataElement + '.' + m.categoryOptionCombo] = [m.minValue, m.maxValue];
  });
  const got = {};
  (d.dataValues || []).forEach(v => { got[v.dataElement + '.' + v.categoryOptionCombo] = v; });
  const locked = d.lockStatus !== 'OPEN';
  for (const c of cells()) {
    const v = got[c.key];
    c.server = v && v.value != null ? String(v.value) : '';
    c.sync = v ? v.hubSync || {state: 'synced'} : null;
    const keep = c.dirty || c.error || c.saving || c.queued || (c.zero && !v) || document.activeElement === c.input;
    if (!keep) setVal(c, c.server); // never overwrite what the user typed
    c.input.disabled = locked;
    paint(c);
  }
  fill($('lock'), locked ? h('p', {class: 'banner warn', role: 'status'}, lockWords(d)) : null);
  $('save').disabled = $('complete').disabled = FORM.locked = locked;
  const cs = d.completeStatus || {}, hs = cs.hubSync, st = $('complete-st');
  FORM.complete = !!cs.complete;
  $('complete').textContent = cs.complete ? t('Mark incomplete') : t('Mark complete');
  st.className = cs.complete ? 'done' : '';
  st.textContent = !cs.complete ? t('Not complete yet')
    : (cs.storedBy ? t('Complete (by {user})', {user: cs.storedBy}) : t('Complete')) +
    (hs ? ': ' + (LABEL[hs.state] || hs.state) + (hs.message ? ': ' + hs.message : '') : '');
  FORM.counts = d.hubSync || {};
  if (typeof d.hubPending === 'number') setPending(d.hubPending);
  summary();
}
function summary() {
  if (!FORM || !$('sum')) return;
  const n = Object.assign({}, FORM.counts);
  for (const c of cells()) {
    if (c.error) n.errors = (n.errors || 0) + 1;
    else if (c.dirty || c.saving) n.unsaved = (n.unsaved || 0) + 1;
    else if (c.queued) n.queued = (n.queued || 0) + 1;
  }
  const says = {pending: t('{n} received by the hub'), synced: t('{n} accepted by national'),
    rejected: t('{n} refused by national'), conflict: t('{n} in conflict'), unsaved: t('{n} not saved yet'), queued: t('{n} not yet on the hub'),
    errors: t('{n} with errors')};
  $('sum').textContent = Object.keys(says).filter(k => n[k]).map(k => says[k].replace('{n}', num(n[k]))).join(' · ');
}
async function refreshValues() {
  if (saving || !FORM) return;
  const sel = SEL, g = gen;
  try {
    const r = await api('GET', valuesUrl());
    // a reply read before a save finished would put old values back: drop it
    if (r.ok && sel === SEL && g === gen && !saving && FORM) applyServer(r.body);
  } catch (e) { /* next time */ }
}

// Unsaved typing survives a reload or a flat battery.
const draftKey = () => `hub.draft.${ME.username}.${SEL.ds}.${SEL.pe}.${SEL.ou}`;
function saveDraft() {
  const d = {};
  cells().filter(c => c.dirty || c.saving).forEach(c => { d[c.key] = val(c); });
  try {
    if (Object.keys(d).length) localStorage.setItem(draftKey(), JSON.stringify(d));
    else localStorage.removeItem(draftKey());
  } catch (e) { /* storage full or disabled */ }
}
function restoreDraft() {
  let d = null;
  try { d = JSON.parse(localStorage.getItem(draftKey())); } catch (e) { d = null; }
  for (const k of Object.keys(d || {})) {
    const c = CELLS[k];
    if (c && !c.input.disabled) { setVal(c, d[k]); edited(c, 300); }
  }
}

async function toggleComplete() {
  await flush();
  const btn = $('complete'), st = $('complete-st');
  btn.disabled = true;
  try {
    const r = FORM.complete
      ? await api('DELETE', '/api/completeDataSetRegistrations?' + q({ds: SEL.ds, pe: SEL.pe, ou: SEL.ou}))
      : await api('POST', '/api/completeDataSetRegistrations', {completeDataSetRegistrations: [
        {dataSet: SEL.ds, period: SEL.pe, organisationUnit: SEL.ou}]});
    const cf = (r.body && r.body.response && r.body.response.conflicts) || [];
    if (!r.ok || cf.length) {
      st.className = 'err';
      st.textContent = t('Not changed: {why}', {why: cf.length ? cf.map(c => refusal(c).text).join(' ') : msgOf(r, r.status)});
      return;
    }
    gen++;
    const v = await api('GET', valuesUrl());
    if (v.ok) applyServer(v.body);
  } catch (e) {
    st.className = 'err';
    st.textContent = t('The hub did not answer; try again.');
  } finally { btn.disabled = FORM.locked; }
}
// A failed rule as a sentence about the form: its two sides' (translated) descriptions and
// values, e.g. "RDT positive (5) cannot be more than RDT tested (0)", then its instruction
const RULE_WORDS = {
  less_than_or_equal_to: t('{left} ({lv}) cannot be more than {right} ({rv}).'),
  less_than: t('{left} ({lv}) must be less than {right} ({rv}).'),
  greater_than: t('{left} ({lv}) must be more than {right} ({rv}).'),
  equal_to: t('{left} ({lv}) must be the same as {right} ({rv}).'),
  not_equal_to: t('{left} ({lv}) cannot be the same as {right} ({rv}).'),
};
const RULES = {};
async function rulesOf(ids) {
  const want = ids.filter(id => !RULES[id]);
  if (want.length) {
    const side = 'displayDescription~rename(description)';
    const r = await api('GET', '/api/validationRules?' + q({filter: `id:in:[${want.join(',')}]`, paging: 'false',
      locale: LANG, fields: `id,displayName~rename(name),displayInstruction~rename(instruction),operator,` +
        `leftSide[${side}],rightSide[${side}]`}));
    ((r.ok && r.body && r.body.validationRules) || []).forEach(x => { RULES[x.id] = x; });
  }
  return RULES;
}
function ruleWords(x, rule) {
  const l = rule && rule.leftSide && rule.leftSide.description, rr = rule && rule.rightSide && rule.rightSide.description;
  if (l && rr && x.operator === 'greater_than_or_equal_to') { // said the other way round
    return t(RULE_WORDS.less_than_or_equal_to, {left: rr, right: l, lv: x.rightSideValue, rv: x.leftSideValue});
  }
  const pattern = RULE_WORDS[x.operator];
  if (l && rr && pattern) {
    return t(pattern, {left: l, right: rr, lv: x.leftSideValue, rv: x.rightSideValue});
  }
  return t('{rule}: {lv} and {rv} do not fit together.', {rule: (rule && rule.name) || x.validationRuleDescription,
    lv: x.leftSideValue, rv: x.rightSideValue});
}
async function validate() {
  await flush();
  const box = $('vres');
  box.hidden = false;
  fill(box, h('p', {class: 'muted'}, t('Checking…')));
  try {
    const r = await api('GET', `/api/validation/dataSet/${encodeURIComponent(SEL.ds)}?` +
      q({pe: SEL.pe, ou: SEL.ou}));
    if (!r.ok) throw new Error(msgOf(r, r.status));
    const v = r.body.validationRuleViolations || [];
    const rules = v.length ? await rulesOf(v.map(x => x.validationRuleId)) : {};
    fill(box, v.length ? [h('h3', {}, v.length > 1 ? t('{n} checks found a problem', {n: v.length})
      : t('1 check found a problem')),
    h('ul', {}, v.map(x => {
      const rule = rules[x.validationRuleId];
      return h('li', {class: 'imp-' + String(x.importance || '').toLowerCase()}, h('b', {}, ruleWords(x, rule)),
        rule && rule.instruction ? [' ', rule.instruction] : null,
        h('small', {class: 'det'}, [(rule && rule.name) || x.validationRuleDescription,
          ({HIGH: t('high importance'), LOW: t('low importance')})[x.importance] || t('medium importance')].join(' · ')));
    }))]
      : h('p', {class: 'ok'}, t('Validation passed: no rule is violated.')));
  } catch (e) { fill(box, h('p', {class: 'err'}, t('Validation could not run: {why}', {why: e.message}))); }
  box.focus({preventScroll: true});
  // below the sticky toolbar, not under it
  const top = box.getBoundingClientRect().top - document.querySelector('.tools').getBoundingClientRect().height - 8;
  window.scrollBy({top, behavior: 'instant'});
}

window.addEventListener('beforeunload', e => {
  if (cells().some(c => c.dirty || c.saving)) { flush(); e.preventDefault(); e.returnValue = ''; }
});
document.addEventListener('wheel', e => { // scrolling must not change a number
  if (e.target.type === 'number' && document.activeElement === e.target) e.target.blur();
}, {passive: true});

// -- start
if (PAGE === 'status') { // rendered by the hub; reloaded unless someone is typing
  document.querySelectorAll('time[datetime]').forEach(t => { t.textContent = fmtTime(t.dateTime); });
  setInterval(() => {
    if (!document.hidden && !$('username').value && !document.activeElement.closest('form')) location.reload();
  }, REFRESH);
}
refreshLink();
setInterval(() => { if (!document.hidden) refreshLink(); }, REFRESH);
api('GET', '/hub/session').then(r => r.body.loggedIn ? afterLogin() : showLogin(''))
  .catch(() => showError(t('Cannot reach the hub. Check the Wi-Fi, then reload the page.')));

function remember(name, value) { // the logged-out pages (the login form) speak it too
  if (value) document.cookie = `${name}=${encodeURIComponent(value)}; path=/; max-age=31536000; samesite=lax`;
}
// বাংলা | English (and the digits): the links work without JS (the hub keeps the choice in a
// cookie); a logged-in reader's choice is also their DHIS2 user setting, the same on every laptop
document.querySelectorAll('.lang a').forEach(a => a.addEventListener('click', async e => {
  e.preventDefault();
  const key = a.dataset.lang ? 'keyUiLocale' : 'keyHubDigits', value = a.dataset.lang || a.dataset.digits;
  if (PAGE === 'entry' && FORM) await flush();
  if (ME) { try { await api('POST', '/api/userSettings', {[key]: value}); } catch (x) { /* the cookie still holds it */ } }
  remember(a.dataset.lang ? 'hub_lang' : 'hub_digits', value);
  location.replace(location.pathname + location.hash);
}));
