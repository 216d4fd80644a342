/* The hub's HTTPS address, offered to a laptop on http:// once it answers; never forced:
   a laptop with a wrong clock fails TLS and must keep plain HTTP on the LAN. Linked only
   while the hub serves a valid certificate and [tls] offer_https is on. */
import {h} from './dom.js';
import {t} from './i18n.js';

async function offerHttps() {
  const meta = document.querySelector('meta[name="hub-https"]');
  if (!meta || location.protocol !== 'http:') return;
  const base = 'https://' + meta.content, seen = 'hub-https-ok:' + base;
  if (!sessionStorage.getItem(seen)) {
    const ctl = new AbortController(), timer = setTimeout(() => ctl.abort(), 3000);
    try { // opaque reply: it resolves only if the name resolved and TLS was trusted
      await fetch(base + '/api/system/ping', {mode: 'no-cors', cache: 'no-store', signal: ctl.signal});
      sessionStorage.setItem(seen, '1');
    } catch (e) { return; } finally { clearTimeout(timer); }
  }
  const to = base + location.pathname + location.search + location.hash;
  document.querySelector('header.bar').after(h('p', {class: 'banner', id: 'https-offer', role: 'status'},
    t('Secure address available:') + ' ', h('a', {href: to}, base), ' — ', h('a', {href: to}, t('switch'))));
}
offerHttps();
