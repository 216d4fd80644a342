// DOM building shared by the hub's pages (hub.js, people.js): text goes in as text nodes,
// never as HTML, so a stored name cannot inject markup.
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  add(el, kids);
  return el;
}
export function add(el, kid) {
  if (kid === null || kid === undefined || kid === false) return;
  if (Array.isArray(kid)) kid.forEach(k => add(el, k));
  else el.appendChild(typeof kid === 'object' ? kid : document.createTextNode(String(kid)));
}
export const fill = (el, ...kids) => { el.textContent = ''; add(el, kids); return el; };
