/* The data entry page's side of the outbox (issue 14): values the hub did not answer for
   (Wi-Fi drop, hub rebooting) wait in the browser (outbox.js), shown on their cells as 'not
   yet on the hub' with a count in the header, over the hub's values after a reload, and go as
   one dataValueSets import when the hub answers again: on the `online` event, and by probing
   /api/system/ping (`online` lies on a Wi-Fi without the hub). Kept per username: another
   CHCP on this laptop never sends them under their own login. hub.js hands in its cells and
   helpers (offline({...})). */
import {h, fill} from './dom.js';
import {t} from './i18n.js';
import * as outbox from './outbox.js';

export function offline(ctx) {
  x = ctx;
  return {queue, unqueue, showQueued, startOutbox};
}
let x = null, sendingOutbox = null, probing = null, leaving = false;
const entryOf = c => ({user: x.me().username, ds: x.sel().ds, de: c.de.id, pe: x.sel().pe, ou: x.sel().ou, coc: c.coc, aoc: '',
  value: c.sent});
const cellOf = e => e.ds === x.sel().ds && e.pe === x.sel().pe && e.ou === x.sel().ou && x.form() ? x.cell(e.de + '.' + e.coc) : null;
export async function queue(batch) {
  try {
    await outbox.put(batch.map(entryOf));
    batch.forEach(c => { if (x.val(c) === c.sent) { c.queued = true; c.dirty = false; } c.note = null; x.paint(c); });
  } catch (e) { // no IndexedDB (private window, disk full): as before, retry while the page is open
    batch.forEach(c => { c.note = t('not saved yet: no answer, retrying'); x.paint(c); });
    x.retry(x.flush);
  }
  await outboxState();
}
export async function unqueue(saved) { // saved directly: a queued older value must not follow
  const gone = saved.filter(c => c.queued || OUTBOX_N);
  saved.forEach(c => { c.queued = false; });
  if (!gone.length) return;
  try { await outbox.drop(gone.map(c => outbox.keyOf(entryOf(c)))); } catch (e) { /* none there */ }
  await outboxState();
}
let OUTBOX_N = 0;
async function outboxState() { // the header's count; and whose values are waiting besides
  let list = [];
  try { list = await outbox.all(); } catch (e) { list = []; }
  const mine = list.filter(e => e.user === x.me().username), others = {};
  list.filter(e => e.user !== x.me().username).forEach(e => { others[e.user] = (others[e.user] || 0) + 1; });
  OUTBOX_N = mine.length;
  // sent by another tab meanwhile: the hub has them now
  const left = new Set(mine.map(e => outbox.keyOf(e).join('|'))), sent = x.form() ? x.cells().filter(c =>
    c.queued && !c.dirty && !c.saving && !left.has(outbox.keyOf(entryOf(c)).join('|'))) : [];
  sent.forEach(c => { c.queued = false; x.paint(c); });
  if (sent.length) x.refreshValues();
  let el = document.getElementById('outbox');
  if (!el) { el = h('span', {id: 'outbox', class: 'pill queued', role: 'status'}); document.getElementById('pending').after(el); }
  el.hidden = !mine.length;
  el.textContent = mine.length ? t('{n} not yet on the hub', {n: mine.length}) : '';
  el.title = mine.length ? t('Kept in this browser; sent when the hub answers again.') : '';
  let o = document.getElementById('outbox-others');
  if (!o) { o = h('p', {id: 'outbox-others', class: 'banner warn', role: 'status'}); x.main.prepend(o); }
  o.hidden = !Object.keys(others).length;
  fill(o, Object.keys(others).map(u => h('span', {}, t('{n} values typed by {user} on this laptop are not yet on the hub: they are sent when {user} logs in here.',
    {n: others[u], user: u}), ' ')));
  if (mine.length && !probing) probing = setInterval(probe, 5000);
  if (!mine.length && probing) { clearInterval(probing); probing = null; }
}
export async function showQueued() { // the outbox over the hub's values: it is newer
  let list = [];
  try { list = await outbox.all(); } catch (e) { return; }
  for (const e of list) {
    const c = e.user === x.me().username && cellOf(e);
    if (!c || c.dirty || c.saving) continue;
    x.setVal(c, e.value);
    c.queued = true;
    x.paint(c);
  }
}
async function probe() {
  if (sendingOutbox || !x.me()) return;
  try {
    const r = await fetch('/api/system/ping', {cache: 'no-store', credentials: 'same-origin'});
    if (r.ok) await sendOutbox();
  } catch (e) { /* still away */ }
}
export function startOutbox() {
  addEventListener('online', () => sendOutbox());
  addEventListener('pagehide', () => { leaving = true; });
  outboxState().then(sendOutbox);
}
async function sendOutbox() {
  if (sendingOutbox || !x.me()) return sendingOutbox;
  sendingOutbox = (async () => {
    try { // after this tab's own save: one request at a time
      await x.exclusive(async () => {
        let list = [];
        try {
          list = await outbox.claim(x.me().username); // another tab's send in flight keeps its entries
          list = await arrived(list);
          if (list.length) await sendQueued(list);
        } catch (e) { // no answer; but a page being left (reload mid-send) keeps its claim: its
          // request may still land, and the next page must not send it again meanwhile
          if (list.length && !leaving) {
            try { await outbox.settle(list, list.map(() => false), true); } catch (y) { /* stale claim */ }
          }
        }
      });
    } catch (e) { /* no IndexedDB: nothing was queued */ }
    await outboxState();
    x.summary();
  })();
  try { await sendingOutbox; } finally { sendingOutbox = null; }
}
// a dead tab's send (closed or reloaded mid-send) may have arrived: what the hub holds
// already is not sent again
async function arrived(list) {
  const forms = {};
  list.filter(e => e.stale).forEach(e => { forms[[e.ds, e.pe, e.ou].join()] = e; });
  const have = {};
  for (const e of Object.values(forms)) {
    const r = await x.api('GET', '/api/dataEntry/dataValues?' + new URLSearchParams({ds: e.ds, pe: e.pe, ou: e.ou}));
    if (!r.ok) return list;
    have[[e.ds, e.pe, e.ou].join()] = {};
    (r.body.dataValues || []).forEach(v => {
      have[[e.ds, e.pe, e.ou].join()][v.dataElement + '.' + v.categoryOptionCombo] = String(v.value);
    });
  }
  const there = list.map(e => e.stale && (have[[e.ds, e.pe, e.ou].join()][e.de + '.' + e.coc] || '') === e.value);
  if (!there.some(Boolean)) return list;
  await outbox.settle(list.filter((e, i) => there[i]), list.filter((e, i) => there[i]).map(() => true));
  return list.filter((e, i) => !there[i]);
}
async function sendQueued(list) {
  const same = k => list.every(e => e[k] === list[0][k]);
  const ctl = new AbortController(), stop = setTimeout(() => ctl.abort(), 30000);
  let r;
  try {
    r = await x.api('POST', '/api/dataValueSets', Object.assign(same('ds') ? {dataSet: list[0].ds} : {}, {
      dataValues: list.map(e => Object.assign({dataElement: e.de, period: e.pe, orgUnit: e.ou,
        categoryOptionCombo: e.coc, value: e.value}, e.aoc ? {attributeOptionCombo: e.aoc} : {},
      e.value === '' ? {deleted: true} : {}))}), ctl.signal);
  } finally { clearTimeout(stop); }
  const resp = r.body && r.body.response, byIndex = {};
  let whole = null;
  for (const cf of (resp && resp.conflicts) || []) {
    if (!cf.indexes || !cf.indexes.length) whole = whole || cf;
    else cf.indexes.forEach(i => { byIndex[i] = byIndex[i] || cf; });
  }
  if (!resp) { // no import summary (logged out, hub error): they wait for the next try
    await outbox.settle(list, list.map(() => false));
    return;
  }
  x.bump();
  await outbox.settle(list, list.map(() => true)); // accepted, or refused: either way not sent again
  list.forEach((e, i) => {
    const c = cellOf(e), cf = byIndex[i] || whole;
    if (!c || c.dirty || c.saving || x.val(c) !== e.value) return;
    c.queued = false;
    if (cf) c.error = x.refusal(cf, c.de);
    else Object.assign(c, {server: e.value, sync: e.value === '' ? null : {state: 'pending'}});
    x.paint(c);
  });
}

