// The pages' texts in the reader's language (issue 14): t('English source', {field: v}).
// Only the interface so far; the catalogues are being built.
export function t(s, fields) {
  return fields ? s.replace(/\{(\w+)\}/g, (m, k) => (k in fields ? String(fields[k]) : m)) : s;
}
