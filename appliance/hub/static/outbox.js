/* The data entry page's outbox (issue 14): values whose save got no answer from the hub (Wi-Fi
   drop, hub rebooting) wait here, in the browser's IndexedDB, until the hub answers again.
   One entry per user and cell, keyed by the cell's natural key (de, pe, ou, coc, aoc), so a
   later edit of the same cell replaces the queued one: the last edit wins and is sent once.
   Two tabs or a reload during a send must not send an entry twice: a flush first claims its
   entries in one IndexedDB transaction (atomic across tabs) and settles them after the reply.
   A claim older than STALE is a dead tab's (a send gives up after 30 s): it is taken over,
   marked `stale`, and the page asks the hub whether that send arrived before sending again;
   so is an entry whose send got no answer (`unsure`: the Wi-Fi may have dropped after it left).
   (Web Locks would not do: they exist only in secure contexts, and the hub is plain HTTP on
   the UHC's LAN; and a lock that died with its tab says nothing about its request.) */
const DB = 'hub-outbox', STORE = 'values', STALE = 35000;
const TAB = Math.random().toString(36).slice(2) + Date.now().toString(36);
export const keyOf = e => [e.user, e.de, e.pe, e.ou, e.coc, e.aoc || ''];
let dbp = null;

function db() {
  dbp = dbp || new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => {
      r.result.createObjectStore(STORE, {keyPath: ['user', 'de', 'pe', 'ou', 'coc', 'aoc']})
        .createIndex('user', 'user');
    };
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => { dbp = null; reject(r.error); };
  });
  return dbp;
}
// run fn(store) in one transaction; resolves with fn's result once the transaction committed
async function tx(mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const t = d.transaction(STORE, mode), out = {};
    t.oncomplete = () => resolve(out.v);
    t.onerror = t.onabort = () => reject(t.error);
    fn(t.objectStore(STORE), out);
  });
}
const each = (store, fn) => {
  store.openCursor().onsuccess = ev => {
    const cur = ev.target.result;
    if (cur) { fn(cur); cur.continue(); }
  };
};

// entries: {user, ds, de, pe, ou, coc, aoc, value}; a queued entry of the same cell is replaced
export function put(entries) {
  const at = Date.now();
  return tx('readwrite', s => entries.forEach(e => s.put(Object.assign({}, e, {aoc: e.aoc || '', at, claim: null}))));
}
// everyone's entries (the page says when another user's are waiting)
export function all() {
  return tx('readonly', (s, out) => { s.getAll().onsuccess = ev => { out.v = ev.target.result; }; });
}
// the cells saved directly (or refused) since: their queued values are older, never to be sent
export function drop(keys) {
  return keys.length ? tx('readwrite', s => keys.forEach(k => s.delete(k))) : Promise.resolve();
}
// take this user's unclaimed (or stale) entries for one send
export function claim(user) {
  const now = Date.now();
  return tx('readwrite', (s, out) => {
    out.v = [];
    each(s, cur => {
      const e = cur.value;
      if (e.user !== user || (e.claim && now - e.claim.at < STALE)) return;
      const stale = !!(e.claim || e.unsure);
      e.claim = {tab: TAB, at: now};
      cur.update(e);
      out.v.push(Object.assign({stale}, e));
    });
  });
}
// after the reply: done entries are removed, the others released (`unsure`: the send got no
// answer); an entry edited meanwhile (a newer `at`) is left alone, to be sent in the next flush
export function settle(entries, done, unsure) {
  return tx('readwrite', s => entries.forEach((e, i) => {
    const g = s.get(keyOf(e));
    g.onsuccess = () => {
      const cur = g.result;
      if (!cur || cur.at !== e.at || !cur.claim || cur.claim.tab !== TAB) return;
      if (done[i]) s.delete(keyOf(e));
      else { cur.claim = null; cur.unsure = !!(unsure || cur.unsure); s.put(cur); }
    };
  }));
}
