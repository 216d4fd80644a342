// The pages' texts in the reader's language (issue 14): t('English source', {field: v}).
// The catalogue is the hub's .po file for the page's lang (/hub/i18n/<lang>.json, linked by
// <meta name="hub-i18n">); a string missing from it shows in English. Numbers and months
// come from the browser's CLDR data (Intl), in Bengali or Latin digits as the reader chose.
const root = document.documentElement, meta = document.querySelector('meta[name="hub-i18n"]');
export const LANG = root.lang || 'bn';
export const DIGITS = root.dataset.digits === 'latin' ? 'latin' : 'bengali';
export const BENGALI = LANG === 'bn' && DIGITS === 'bengali';
const TAG = LANG === 'bn' ? (BENGALI ? 'bn-BD-u-nu-beng' : 'bn-BD-u-nu-latn') : 'en-GB';
let CAT = {};
if (meta && LANG !== 'en') {
  try { CAT = await (await fetch(meta.content, {credentials: 'same-origin'})).json(); } catch (e) { CAT = {}; }
}
const NUM = new Intl.NumberFormat(TAG, {maximumFractionDigits: 2});
const BN = '০১২৩৪৫৬৭৮৯';
// a number as the reader writes it; text that is no number keeps its letters, digits mapped
export function num(v) {
  if (typeof v === 'number') return NUM.format(v);
  return digits(String(v));
}
export function digits(s) {
  return BENGALI ? String(s).replace(/[0-9]/g, d => BN[+d]) : String(s).replace(/[০-৯]/g, d => BN.indexOf(d));
}
export function t(s, fields) {
  const m = CAT[s] || s;
  return fields ? m.replace(/\{(\w+)\}/g, (x, k) => (!(k in fields) ? x
    : typeof fields[k] === 'number' ? num(fields[k]) : String(fields[k]))) : m;
}
// 202612 -> "ডিসেম্বর ২০২৬" / "December 2026"
export function month(y, m) {
  return new Intl.DateTimeFormat(TAG, {year: 'numeric', month: 'long', timeZone: 'UTC'})
    .format(new Date(Date.UTC(y, m, 1)));
}
export function dateTime(d) {
  return new Intl.DateTimeFormat(TAG, {year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit',
    minute: '2-digit', hourCycle: 'h23'}).format(d);
}
