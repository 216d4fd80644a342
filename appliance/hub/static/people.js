/* The register pages: /hub/people (search-first registration), /hub/people/{uid} (a person's
   record: enrolments, visits with program rules, referral) and /hub/lists (the weekly lists
   and the due/overdue list). ES2017 module, no build step; hub.js logs in and sends 'hub:me'.
   Data is only ever rendered as text nodes. */
import {h, add, fill} from './dom.js';
import {t, LANG} from './i18n.js';
const PAGE = document.body.dataset.page, MAIN = document.getElementById('main');
const $ = id => document.getElementById(id);

// -- every string the CHCP reads, in one place, in the reader's language (i18n.js)
const T = {
  peopleTitle: t('People in the registers'), searchLabel: t('Search the register'), searchHint: t('Name (Bangla or English), phone, husband\'s or mother\'s name, or BRN'),
  searching: t('Searching…'), found: n => (n === 1 ? t('1 person found') : t('{n} people found', {n})), none: t('No one found.'),
  register: t('Register new person'), newPerson: t('Register a new person'), program: t('Register'),
  clinic: t('Clinic'), enrolled: t('Registration date'), incident: t('Date of incident'), issue: t('Issue a new number'),
  check: t('Check for duplicates and save'), cancel: t('Cancel'), required: t('Fill in:') + ' ',
  dupsTitle: n => (n === 1 ? t('1 registered person looks like this person') : t('{n} registered people look like this person', {n})),
  dupsHelp: t('Open the record if it is the same person. If not, register the person as new: the record is flagged for review as a possible duplicate.'),
  flagged: t('Flagged for review: this may be the same person as another record.'),
  open: t('Open this record'), confirmNew: t('Not the same person: register as new'),
  saving: t('Saving…'), saved: t('Saved: received by the hub.'), notSaved: t('Not saved:') + ' ', noAnswer: t('The hub did not answer; try again.'),
  score: s => t('match {pct} %', {pct: Math.round(s * 100)}),
  attributes: t('Personal details'), enrolledAt: t('Registered'), status: t('Status'), owner: t('Clinic responsible'),
  newVisit: t('New visit'), recordVisit: t('Record this visit'), visitOf: t('Visit'), visitDate: t('Visit date'),
  save: t('Save visit'), enrol: t('Enrol in'), enrolSave: t('Save enrolment'), refer: t('Refer to'), referBtn: t('Refer'),
  referred: name => t('Referred: the record now belongs to {clinic}.', {clinic: name}), noEvents: t('No visits yet.'),
  enStatus: {ACTIVE: t('active'), COMPLETED: t('completed'), CANCELLED: t('cancelled')},
  evStatus: {COMPLETED: t('done'), ACTIVE: t('open'), SCHEDULE: t('scheduled'), OVERDUE: t('overdue'), SKIPPED: t('skipped')},
  due: date => t('due {date}', {date}), value: t('What was recorded'), date: t('Date'),
  lists: {pregnant: t('Pregnant women'), children: t('Under-5 children'), due: t('Due and overdue visits')},
  print: t('Print'), orgUnit: t('Clinic / org unit'), forDate: t('Date'),
  missed: t('Missed visits (overdue)'), thisWeek: t('Due this week'), nothing: t('Nobody on this list.'),
  col: {n: '#', bn: t('Name (Bangla)'), en: t('Name (English)'), rel: t('Husband / mother'), phone: t('Mobile'),
    village: t('Village'), lmp: t('LMP'), weeks: t('Weeks pregnant'), dob: t('Date of birth'), age: t('Age (months)'),
    regs: t('Registers'), register: t('Register'), visit: t('Visit'), dueDate: t('Due date'), late: t('Days overdue'),
    clinic: t('Clinic'), sync: t('Sync state'), field: t('Detail'), val: t('Value'), brn: t('BRN / NID')},
  yes: t('Yes'), no: t('No'), pick: t('— choose —'), loadFail: t('Could not load:') + ' ',
};
const LABEL = {pending: t('received by the hub'), synced: t('accepted by national'),
  rejected: t('refused by national'), conflict: t('conflict: see log')};
const CODES = {bn: 'BD_NAME_BN', en: 'BD_NAME_EN', rel: 'BD_RELATION_NAME', phone: 'BD_PHONE',
  village: 'BD_VILLAGE', dob: 'BD_DOB', brn: 'BD_BRN'};

// -- helpers (as hub.js)
const q = p => Object.keys(p).filter(k => p[k] !== undefined && p[k] !== '')
  .map(k => `${encodeURIComponent(k)}=${encodeURIComponent(p[k])}`).join('&');
const day = s => (s ? String(s).slice(0, 10) : '—');
const pad = n => (n < 10 ? '0' : '') + n;
const todayStr = () => { const d = new Date(); return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`; };
const msgOf = (r, fb) => (r && r.body && (r.body.message || importErrors(r.body))) || fb;
function importErrors(b) {
  const e = (b.validationReport && b.validationReport.errorReports) || [];
  return e.map(x => `${x.message} (${x.errorCode})`).join('; ');
}
function debounce(fn, ms) { let t = null; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; }
function newUid() { // DHIS2 UID: a letter then 10 letters or digits
  const abc = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', all = abc + '0123456789';
  const r = crypto.getRandomValues(new Uint8Array(11));
  return Array.from(r, (b, i) => (i ? all[b % all.length] : abc[b % abc.length])).join('');
}
async function api(method, path, body) {
  const opt = {method, credentials: 'same-origin',
    headers: {Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest'}};
  if (body !== undefined) { opt.headers['Content-Type'] = 'application/json'; opt.body = JSON.stringify(body); }
  const r = await fetch(path, opt);
  let json = null;
  try { json = await r.json(); } catch (e) { json = null; }
  if (r.status === 401) { $('login').hidden = false; MAIN.hidden = true; }
  return {status: r.status, ok: r.ok, body: json};
}
const banner = (text, cls) => h('p', {class: 'banner ' + (cls || ''), role: cls === 'err' ? 'alert' : 'status'}, text);
function syncCell(state, uid) {
  const s = state || 'pending';
  // national's refusal, in DHIS2's words, so the CHCP can correct the record
  const why = s === 'rejected' && uid && ((STATES || {}).rejections || {})[uid];
  return h('span', {class: 'sync', 'data-state': s}, h('i', {class: 'dot'}), h('span', {class: 'st'}, LABEL[s] || s),
    why ? h('span', {class: 'why'}, ': ' + [why.errorCode, why.message].filter(Boolean).join(' ')) : '');
}
const nameOf = o => (o && (o.displayName || o.formName || o.name)) || '';
// names in the page's language (DHIS2's display* translations, ?locale=) under the plain keys
const DN = 'displayName~rename(name)', OPTIONS = `optionSet[id,options[code,${DN}]]`;

// -- metadata shared by the pages
let ME = null, PROGRAMS = [], ATTRS = {}, DES = {};
const PROGRAM_FIELDS = `id,${DN},code,displayIncidentDateLabel~rename(incidentDateLabel),` +
  `displayEnrollmentDateLabel~rename(enrollmentDateLabel),onlyEnrollOnce,trackedEntityType[id],` +
  `organisationUnits[id,${DN},path],programTrackedEntityAttributes[mandatory,trackedEntityAttribute[id,code,` +
  `displayFormName~rename(name),valueType,generated,${OPTIONS}]],programStages[id,${DN},sortOrder,repeatable,` +
  `programStageDataElements[compulsory,dataElement[id,code,displayFormName~rename(formName),valueType,${OPTIONS}]]]`;

async function loadMeta() {
  const me = await api('GET', '/api/me?' + q({fields: `id,username,organisationUnits[id,${DN},path],` +
    `teiSearchOrganisationUnits[id,${DN},path],authorities`, locale: LANG}));
  if (!me.ok) throw new Error(msgOf(me, me.status));
  ME = me.body;
  const r = await api('GET', '/api/programs?' + q({paging: 'false', fields: PROGRAM_FIELDS, locale: LANG}));
  if (!r.ok) throw new Error(msgOf(r, r.status));
  PROGRAMS = (r.body.programs || []).filter(p => p.trackedEntityType);
  for (const p of PROGRAMS) {
    (p.programStages || []).sort((a, b) => (a.sortOrder || 0) - (b.sortOrder || 0));
    for (const a of p.programTrackedEntityAttributes || []) ATTRS[a.trackedEntityAttribute.id] = a.trackedEntityAttribute;
    for (const s of p.programStages || []) for (const e of s.programStageDataElements || []) DES[e.dataElement.id] = e.dataElement;
  }
}
const attrId = code => (Object.values(ATTRS).find(a => a.code === code) || {}).id;
const byCode = vals => { const o = {}; for (const [id, v] of Object.entries(vals)) o[(ATTRS[id] || {}).code || id] = v; return o; };
const myClinics = () => ME.organisationUnits || [];
const canWrite = path => myClinics().some(o => (path || '').split('/').includes(o.id));
const searchRoots = () => (ME.teiSearchOrganisationUnits || []).length ? ME.teiSearchOrganisationUnits : myClinics();

// -- a form's fields, by value type
function input(meta, value, id) {
  const vt = meta.valueType, opts = meta.optionSet && meta.optionSet.options;
  const a = {id, name: meta.id, 'data-field': meta.id};
  if (opts && opts.length) {
    return h('select', a, h('option', {value: ''}, T.pick), opts.map(o => h('option', {value: o.code}, o.name)));
  }
  if (vt === 'BOOLEAN') return h('select', a, h('option', {value: ''}, T.pick), h('option', {value: 'true'}, T.yes), h('option', {value: 'false'}, T.no));
  if (vt === 'TRUE_ONLY') return h('input', {...a, type: 'checkbox', checked: value === 'true'});
  if (vt === 'LONG_TEXT') return h('textarea', {...a, rows: 2}, value || '');
  const type = vt === 'DATE' ? 'date' : vt === 'PHONE_NUMBER' ? 'tel' : /INTEGER|NUMBER|PERCENTAGE/.test(vt) ? 'number' : 'text';
  return h('input', {...a, type, step: vt === 'NUMBER' ? 'any' : null, autocomplete: 'off'});
}
function fieldBox(meta, label, mandatory, value, prefix) {
  const el = input(meta, value, prefix + meta.id);
  if (el.type !== 'checkbox' && value !== undefined && value !== null) el.value = value;
  return h('div', {class: 'field', id: 'w-' + prefix + meta.id, 'data-field': meta.id},
    h('label', {for: prefix + meta.id}, label, mandatory ? h('span', {class: 'req'}, ' *') : null), el,
    h('div', {class: 'msg', id: 'm-' + prefix + meta.id, 'aria-live': 'polite'}));
}
function values(form) { // uid -> value of the visible fields
  const out = {};
  form.querySelectorAll('[data-field]:not(.field)').forEach(el => {
    if (el.closest('.field').hidden) return;
    const v = el.type === 'checkbox' ? (el.checked ? 'true' : '') : el.value.trim();
    if (v !== '') out[el.dataset.field] = v;
  });
  return out;
}

// -- program rules, run by the hub (POST /api/hub/rules)
function ruleRunner(form, box, request, onBlock) {
  let seq = 0;
  const run = async () => {
    const mine = ++seq;
    let r;
    try { r = await api('POST', '/api/hub/rules?' + q({locale: LANG}), request()); } catch (e) { return; }
    if (mine !== seq || !r.ok) return;
    apply(form, box, r.body.effects || [], onBlock);
  };
  const later = debounce(run, 250);
  form.addEventListener('input', later);
  form.addEventListener('change', later);
  return run;
}
function apply(form, box, effects, onBlock) {
  form.querySelectorAll('.field').forEach(w => { w.hidden = false; fill(w.querySelector('.msg')); });
  form.querySelectorAll('[data-assigned]').forEach(el => { el.readOnly = false; el.removeAttribute('data-assigned'); });
  fill(box);
  let blocked = false;
  for (const e of effects) {
    const target = e.dataElement || e.trackedEntityAttribute;
    const w = target && form.querySelector(`.field[data-field="${target}"]`);
    const el = w && w.querySelector('[data-field]');
    const kind = /ERROR/.test(e.action) ? 'err' : /WARNING/.test(e.action) ? 'warn' : 'info';
    if (e.action === 'HIDEFIELD' && w) {
      w.hidden = true;
      if (el.type === 'checkbox') el.checked = false; else el.value = ''; // DHIS2 blanks a hidden field
    } else if (e.action === 'ASSIGN' && el) {
      if (el.value !== e.value) el.value = e.value;
      el.readOnly = true;
      el.setAttribute('data-assigned', '');
    } else if (['SHOWWARNING', 'SHOWERROR', 'WARNINGONCOMPLETE', 'ERRORONCOMPLETE', 'DISPLAYTEXT'].includes(e.action)) {
      const line = h('span', {class: kind + ' rule', 'data-action': e.action}, e.content || e.data || '');
      add(w && e.action.startsWith('SHOW') ? w.querySelector('.msg') : box, line);
      if (kind === 'err') blocked = true;
    }
  }
  onBlock(blocked);
}

// -- the tracker import, synchronously
async function importTracker(payload) {
  const r = await api('POST', '/api/tracker?' + q({async: 'false', importStrategy: 'CREATE_AND_UPDATE'}), payload);
  if (r.ok && r.body && r.body.status !== 'ERROR') return null;
  return msgOf(r, t('the hub answered {status}', {status: r.status}));
}

// ============================================================ /hub/people: search and register
let searchSeq = 0;
function startPeople() {
  fill(MAIN, h('h1', {class: 'big'}, T.peopleTitle),
    h('div', {class: 'searchbox'},
      h('label', {for: 'q', class: 'muted'}, T.searchLabel),
      h('input', {id: 'q', type: 'search', placeholder: T.searchHint, autocomplete: 'off', spellcheck: 'false',
        'aria-describedby': 'count', oninput: debounce(search, 250)}),
      h('button', {type: 'button', id: 'register', class: 'primary', onclick: () => registration()}, T.register)),
    h('p', {id: 'count', class: 'count muted', role: 'status'}), h('div', {id: 'results'}), h('div', {id: 'reg-area'}));
  $('q').focus();
}
async function search() {
  const text = $('q').value.trim(), mine = ++searchSeq;
  if (!text) { fill($('count')); fill($('results')); return; }
  $('count').textContent = T.searching;
  const r = await api('GET', '/api/hub/people?' + q({q: text, limit: 30}));
  if (mine !== searchSeq) return; // a later keystroke's answer wins
  if (!r.ok) { $('count').textContent = T.loadFail + msgOf(r, r.status); return; }
  const people = r.body.people || [];
  $('count').textContent = people.length ? T.found(people.length) : T.none;
  fill($('results'), people.length ? peopleTable(people) : null);
}
function peopleTable(people) {
  const c = T.col;
  return h('div', {class: 'tw'}, h('table', {class: 'list', id: 'result-table'},
    h('thead', {}, h('tr', {}, [c.bn, c.en, c.rel, c.phone, c.village, c.brn].map(t => h('th', {scope: 'col'}, t)))),
    h('tbody', {}, people.map(p => {
      const a = p.attributes || {}, link = '/hub/people/' + encodeURIComponent(p.trackedEntity);
      return h('tr', {class: 'person', 'data-te': p.trackedEntity},
        h('td', {class: 'bn'}, h('a', {href: link, class: 'open'}, a[CODES.bn] || '—')),
        h('td', {}, h('a', {href: link}, a[CODES.en] || '—')), h('td', {}, a[CODES.rel] || ''),
        h('td', {}, a[CODES.phone] || ''), h('td', {}, a[CODES.village] || ''), h('td', {}, a[CODES.brn] || ''));
    }))));
}

function programChoice(id, onchange, only) {
  const list = PROGRAMS.filter(p => !only || only(p));
  return h('select', {id, onchange}, list.map(p => h('option', {value: p.id}, p.name)));
}
function registration() {
  const text = $('q').value.trim(), area = $('reg-area');
  const clinics = myClinics();
  if (!PROGRAMS.length || !clinics.length) { fill(area, banner(T.loadFail + t('no register for your account'), 'err')); return; }
  const form = h('form', {class: 'form', id: 'reg', novalidate: true},
    h('h2', {}, T.newPerson),
    h('div', {class: 'pick'},
      h('label', {}, T.program, programChoice('reg-program', () => draw())),
      h('label', {}, T.clinic, h('select', {id: 'reg-ou'}, clinics.map(o => h('option', {value: o.id}, o.name))))),
    h('div', {class: 'fields', id: 'reg-fields'}), h('div', {class: 'rules', id: 'reg-rules', 'aria-live': 'polite'}),
    h('div', {class: 'actions'},
      h('button', {type: 'submit', id: 'reg-check', class: 'primary'}, T.check),
      h('button', {type: 'button', id: 'reg-cancel', onclick: () => fill(area)}, T.cancel),
      h('span', {id: 'reg-msg', role: 'status'})),
    h('div', {id: 'dups'}));
  fill(area, form);
  let blocked = false;
  const program = () => PROGRAMS.find(p => p.id === $('reg-program').value);
  const runRules = ruleRunner(form, $('reg-rules'), () => ({program: program().id, attributes: values($('reg-fields')),
    enrollmentDate: $('reg-enrolled').value, incidentDate: $('reg-incident').value}), b => { blocked = b; });
  function draw() {
    const p = program(), keep = values($('reg-fields'));
    if (!Object.keys(keep).length) { // the search text becomes the name in its script
      const k = /[\u0980-\u09FF]/.test(text) ? CODES.bn : CODES.en;
      if (text && !/^[0-9+ -]+$/.test(text)) keep[attrId(k)] = text;
      else if (text) keep[attrId(CODES.phone)] = text.replace(/\D/g, '');
    }
    fill($('reg-fields'), (p.programTrackedEntityAttributes || []).map(pa => {
      const a = pa.trackedEntityAttribute, box = fieldBox(a, a.name, pa.mandatory, keep[a.id], 'a-');
      if (a.generated) {
        add(box, h('button', {type: 'button', class: 'issue', id: 'issue-' + a.id, onclick: () => issue(a)}, T.issue));
      }
      return box;
    }), fieldBox({id: 'enrolled', valueType: 'DATE'}, p.enrollmentDateLabel || T.enrolled, true, todayStr(), 'reg-'),
    fieldBox({id: 'incident', valueType: 'DATE'}, p.incidentDateLabel || T.incident, true, '', 'reg-'));
    $('reg-enrolled').removeAttribute('data-field');
    $('reg-incident').removeAttribute('data-field');
    runRules();
  }
  async function issue(a) {
    const r = await api('GET', `/api/trackedEntityAttributes/${a.id}/generateAndReserve?numberToReserve=1`);
    if (r.ok && r.body && r.body[0]) { $('a-' + a.id).value = r.body[0].value; runRules(); }
    else $('reg-msg').textContent = T.loadFail + msgOf(r, r.status);
  }
  form.addEventListener('submit', async e => {
    e.preventDefault();
    const p = program(), vals = values($('reg-fields')), m = $('reg-msg');
    const missing = (p.programTrackedEntityAttributes || []).filter(pa => pa.mandatory && !vals[pa.trackedEntityAttribute.id])
      .map(pa => pa.trackedEntityAttribute.name);
    if (!$('reg-incident').value) missing.push(p.incidentDateLabel || T.incident);
    if (missing.length) { m.className = 'err'; m.textContent = T.required + missing.join(', '); return; }
    if (blocked) return;
    m.className = 'muted';
    m.textContent = T.searching;
    const d = await api('POST', '/api/hub/people/duplicates', {attributes: byCode(vals)});
    const cands = (d.ok && d.body.candidates) || [];
    m.textContent = '';
    if (!cands.length) { await save(p, vals, []); return; }
    fill($('dups'), h('div', {class: 'dups', role: 'alert'},
      h('h2', {}, T.dupsTitle(cands.length)), h('p', {}, T.dupsHelp),
      cands.map(c => {
        const a = c.attributes || {};
        return h('div', {class: 'cand', 'data-te': c.trackedEntity},
          h('div', {class: 'who'}, h('b', {class: 'bn'}, a[CODES.bn] || ''), ' · ', h('b', {}, a[CODES.en] || ''),
            h('span', {class: 'muted'}, ` · ${a[CODES.rel] || ''} · ${a[CODES.phone] || ''} · ${a[CODES.village] || ''} · ${T.score(c.score)}`)),
          h('ul', {class: 'reasons'}, (c.said || c.reasons || []).map(x => h('li', {}, x))),
          h('a', {class: 'open-existing', href: '/hub/people/' + encodeURIComponent(c.trackedEntity)}, T.open));
      }),
      h('div', {class: 'actions'}, h('button', {type: 'button', id: 'confirm-new', class: 'primary',
        onclick: () => save(p, vals, cands)}, T.confirmNew))));
  });
  async function save(p, vals, cands) {
    const m = $('reg-msg'), te = newUid(), ou = $('reg-ou').value;
    m.className = 'muted';
    m.textContent = T.saving;
    const err = await importTracker({trackedEntities: [{trackedEntity: te, trackedEntityType: p.trackedEntityType.id, orgUnit: ou,
      attributes: Object.entries(vals).map(([attribute, value]) => ({attribute, value})),
      enrollments: [{enrollment: newUid(), program: p.id, orgUnit: ou, status: 'ACTIVE', trackedEntity: te,
        enrolledAt: $('reg-enrolled').value, occurredAt: $('reg-incident').value}]}]}).catch(() => T.noAnswer);
    if (err) { m.className = 'err'; m.textContent = T.notSaved + err; return; }
    for (const c of cands) { // confirmed new: flagged for review, as DHIS2's potential duplicates
      await api('POST', '/api/potentialDuplicates', {original: c.trackedEntity, duplicate: te, reasons: c.reasons || []});
    }
    location.href = '/hub/people/' + te + '?saved=1';
  }
  draw();
}

// ============================================================ /hub/people/{uid}: the record
let TE = null, STATES = {}, OUS = {};
const teUid = () => decodeURIComponent(location.pathname.split('/').filter(Boolean).pop());
async function startRecord(note) {
  const uid = teUid();
  const [r, s] = await Promise.all([api('GET', `/api/tracker/trackedEntities/${encodeURIComponent(uid)}?fields=*`),
    api('GET', `/api/hub/people/${encodeURIComponent(uid)}/syncStates`)]);
  if (!r.ok) { fill(MAIN, banner(T.loadFail + msgOf(r, r.status), 'err')); return; }
  TE = r.body;
  STATES = s.ok ? s.body : {};
  const owners = {};
  for (const o of TE.programOwners || []) owners[o.program] = o.orgUnit;
  TE.owner = owners;
  const ids = new Set([TE.orgUnit, ...Object.values(owners), ...(TE.enrollments || []).map(e => e.orgUnit)]);
  const ou = await api('GET', '/api/organisationUnits?' + q({filter: `id:in:[${[...ids].join(',')}]`, fields: `id,${DN},path`,
    paging: 'false', locale: LANG}));
  for (const o of (ou.body && ou.body.organisationUnits) || []) OUS[o.id] = o;
  drawRecord(note || (new URLSearchParams(location.search).get('saved') ? T.saved : ''));
}
const attrs = () => { const o = {}; for (const a of TE.attributes || []) o[a.attribute] = a.value; return o; };
function drawRecord(note) {
  const a = attrs(), byC = byCode(a), st = STATES.attributes || {};
  const enrolled = (TE.enrollments || []).filter(e => !e.deleted);
  const more = PROGRAMS.filter(p => !enrolled.some(e => e.program === p.id && e.status === 'ACTIVE'));
  fill(MAIN,
    note ? banner(note, 'ok') : null,
    TE.potentialDuplicate ? h('p', {class: 'banner warn', id: 'flagged'}, T.flagged) : null,
    h('div', {class: 'person-head'}, h('h1', {class: 'bn', id: 'person-name'}, byC[CODES.bn] || byC[CODES.en] || TE.trackedEntity),
      h('p', {class: 'muted'}, byC[CODES.en] || '', ' · ', syncCell(STATES.trackedEntity, TE.trackedEntity))),
    h('h2', {class: 'big'}, T.attributes),
    h('div', {class: 'tw'}, h('table', {class: 'list', id: 'attrs'},
      h('thead', {}, h('tr', {}, [T.col.field, T.col.val, T.col.sync].map(t => h('th', {scope: 'col'}, t)))),
      h('tbody', {}, (TE.attributes || []).map(x => h('tr', {'data-attribute': x.attribute},
        h('th', {scope: 'row'}, nameOf(ATTRS[x.attribute]) || x.attribute),
        h('td', {class: (ATTRS[x.attribute] || {}).code === CODES.bn ? 'bn' : ''}, shown(ATTRS[x.attribute], x.value)),
        h('td', {}, syncCell(st[x.attribute]))))))),
    enrolled.map(drawEnrollment),
    more.length && canWrite((OUS[TE.orgUnit] || {}).path) ? h('div', {class: 'actions noprint'},
      h('label', {}, T.enrol + ' ', programChoice('enrol-program', null, p => more.includes(p))),
      h('button', {type: 'button', id: 'enrol', onclick: enrolForm}, T.enrolSave)) : null,
    h('div', {id: 'form-area'}));
}
// the UHC first among the places a record can be referred to, named in either language
const UHC = /UHC|Health Complex|স্বাস্থ্য কমপ্লেক্স/i;
function drawEnrollment(e) {
  const p = PROGRAMS.find(x => x.id === e.program) || {name: e.program, programStages: []};
  const owner = TE.owner[e.program] || e.orgUnit, ownerOu = OUS[owner] || {id: owner, name: owner};
  const mine = canWrite(ownerOu.path), events = (e.events || []).filter(v => !v.deleted);
  const roots = searchRoots().map(o => o.id);
  const targets = (p.organisationUnits || []).filter(o => o.id !== owner && roots.some(r => (o.path || '').split('/').includes(r)))
    .sort((a, b) => (UHC.test(b.name) ? 1 : 0) - (UHC.test(a.name) ? 1 : 0) || a.name.localeCompare(b.name));
  return h('section', {class: 'enrollment', 'data-enrollment': e.enrollment, 'data-program': e.program},
    h('h2', {}, p.name, ' ', h('span', {class: 'muted'}, `(${T.enStatus[e.status] || (e.status || '').toLowerCase()})`)),
    h('p', {}, `${p.enrollmentDateLabel || T.enrolledAt}: ${day(e.enrolledAt)} · ${p.incidentDateLabel || T.incident}: ${day(e.occurredAt)} · ${T.owner}: ${ownerOu.name} · `,
      syncCell((STATES.enrollments || {})[e.enrollment], e.enrollment)),
    (p.programStages || []).map(s => {
      const evs = events.filter(v => v.programStage === s.id)
        .sort((x, y) => (x.occurredAt || x.scheduledAt || '').localeCompare(y.occurredAt || y.scheduledAt || ''));
      if (!evs.length) return null;
      return [h('h3', {}, s.name), h('div', {class: 'tw'}, h('table', {class: 'list events'},
        h('thead', {}, h('tr', {}, [T.date, T.status, T.value, T.col.sync, ''].map(t => h('th', {scope: 'col'}, t)))),
        h('tbody', {}, evs.map(v => h('tr', {'data-event': v.event},
          h('td', {}, v.occurredAt ? day(v.occurredAt) : T.due(day(v.scheduledAt))),
          h('td', {}, T.evStatus[v.status] || v.status),
          h('td', {}, (v.dataValues || []).filter(d => d.value !== null && d.value !== '')
            .map(d => `${nameOf(DES[d.dataElement]) || d.dataElement}: ${shown(DES[d.dataElement], d.value)}`).join(' · ')),
          h('td', {}, syncCell((STATES.events || {})[v.event], v.event)),
          h('td', {class: 'noprint'}, mine && ['SCHEDULE', 'OVERDUE', 'ACTIVE'].includes(v.status)
            ? h('button', {type: 'button', class: 'record-visit', onclick: () => visitForm(e, p, s, v)}, T.recordVisit) : null))))))];
    }),
    events.length ? null : h('p', {class: 'muted'}, T.noEvents),
    h('div', {class: 'actions noprint'},
      mine && e.status === 'ACTIVE' ? [h('select', {class: 'stage-choice', 'aria-label': T.visitOf},
        (p.programStages || []).filter(s => s.repeatable || !events.some(v => v.programStage === s.id && v.status === 'COMPLETED'))
          .map(s => h('option', {value: s.id}, s.name))),
      h('button', {type: 'button', class: 'new-visit', onclick: ev => {
        const s = p.programStages.find(x => x.id === ev.target.previousSibling.value);
        if (s) visitForm(e, p, s, null);
      }}, T.newVisit)] : null,
      mine && targets.length ? [h('label', {}, T.refer + ' ', h('select', {class: 'refer-to'}, targets.map(o => h('option', {value: o.id}, o.name)))),
        h('button', {type: 'button', class: 'refer', onclick: ev => refer(e, ev.target.previousSibling.querySelector('select'))}, T.referBtn)] : null));
}
function shown(de, v) {
  if (!de) return v;
  const o = de.optionSet && (de.optionSet.options || []).find(x => x.code === v);
  if (o) return o.name;
  if (de.valueType === 'BOOLEAN' || de.valueType === 'TRUE_ONLY') return v === 'true' ? T.yes : T.no;
  return de.valueType === 'DATE' ? day(v) : v;
}
async function refer(e, select) {
  const ou = select.value, name = select.selectedOptions[0].textContent;
  const r = await api('PUT', '/api/tracker/ownership/transfer?' + q({trackedEntity: TE.trackedEntity, program: e.program, ou}));
  if (!r.ok) { add($('form-area'), banner(T.notSaved + msgOf(r, r.status), 'err')); return; }
  await startRecord(T.referred(name));
}
function enrolForm() {
  const p = PROGRAMS.find(x => x.id === $('enrol-program').value);
  const form = h('form', {class: 'form', id: 'enrol-form'}, h('h2', {}, `${T.enrol} ${p.name}`),
    h('div', {class: 'fields'}, fieldBox({id: 'enrolled', valueType: 'DATE'}, p.enrollmentDateLabel || T.enrolled, true, todayStr(), 'en-'),
      fieldBox({id: 'incident', valueType: 'DATE'}, p.incidentDateLabel || T.incident, true, '', 'en-')),
    h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary', id: 'enrol-save'}, T.enrolSave),
      h('span', {id: 'enrol-msg', role: 'status'})));
  fill($('form-area'), form);
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    if (!$('en-incident').value) { $('enrol-msg').textContent = T.required + (p.incidentDateLabel || T.incident); return; }
    const ou = myClinics()[0].id;
    const err = await importTracker({enrollments: [{enrollment: newUid(), trackedEntity: TE.trackedEntity, program: p.id, orgUnit: ou,
      status: 'ACTIVE', enrolledAt: $('en-enrolled').value, occurredAt: $('en-incident').value}]}).catch(() => T.noAnswer);
    if (err) { $('enrol-msg').className = 'err'; $('enrol-msg').textContent = T.notSaved + err; return; }
    await startRecord(T.saved);
  });
}
function visitForm(e, p, s, ev) {
  const old = {};
  for (const d of (ev && ev.dataValues) || []) old[d.dataElement] = d.value;
  const form = h('form', {class: 'form', id: 'visit', 'data-stage': s.id, novalidate: true},
    h('h2', {}, `${s.name} · ${p.name}`),
    h('div', {class: 'fields'}, fieldBox({id: 'date', valueType: 'DATE'}, T.visitDate, true,
      ev && ev.occurredAt ? day(ev.occurredAt) : todayStr(), 'v-')),
    h('div', {class: 'fields', id: 'v-fields'}, (s.programStageDataElements || []).map(x =>
      fieldBox(x.dataElement, nameOf(x.dataElement), x.compulsory, old[x.dataElement.id], 'd-'))),
    h('div', {class: 'rules', id: 'v-rules', 'aria-live': 'polite'}),
    h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary', id: 'v-save'}, T.save),
      h('button', {type: 'button', onclick: () => fill($('form-area'))}, T.cancel), h('span', {id: 'v-msg', role: 'status'})));
  fill($('form-area'), form);
  $('v-date').removeAttribute('data-field');
  form.scrollIntoView({block: 'start'});
  let blocked = false;
  const run = ruleRunner(form, $('v-rules'), () => ({program: p.id, programStage: s.id, attributes: attrs(),
    dataValues: values($('v-fields')), eventDate: $('v-date').value, enrollmentDate: day(e.enrolledAt),
    incidentDate: day(e.occurredAt), enrollment: e.enrollment, event: ev ? ev.event : undefined}),
  b => { blocked = b; $('v-save').disabled = b; });
  run();
  form.addEventListener('submit', async x => {
    x.preventDefault();
    const vals = values($('v-fields')), m = $('v-msg');
    const missing = (s.programStageDataElements || []).filter(d => d.compulsory && !vals[d.dataElement.id] &&
      !$('w-d-' + d.dataElement.id).hidden).map(d => nameOf(d.dataElement));
    if (missing.length) { m.className = 'err'; m.textContent = T.required + missing.join(', '); return; }
    if (blocked) return;
    m.className = 'muted';
    m.textContent = T.saving;
    const owner = TE.owner[e.program] || e.orgUnit;
    const dvs = (s.programStageDataElements || []).map(d => d.dataElement.id)
      .filter(id => vals[id] !== undefined || old[id] !== undefined).map(id => ({dataElement: id, value: vals[id] || null}));
    const err = await importTracker({events: [{event: ev ? ev.event : newUid(), program: p.id, programStage: s.id,
      enrollment: e.enrollment, trackedEntity: TE.trackedEntity, orgUnit: ev ? ev.orgUnit : owner,
      occurredAt: $('v-date').value, scheduledAt: ev ? ev.scheduledAt : undefined, status: 'COMPLETED', dataValues: dvs}]}).catch(() => T.noAnswer);
    if (err) { m.className = 'err'; m.textContent = T.notSaved + err; return; }
    await startRecord(T.saved);
  });
}

// ============================================================ /hub/lists: the weekly lists
function startLists() {
  const params = new URLSearchParams(location.search);
  const kind = T.lists[params.get('list')] ? params.get('list') : 'due';
  const ous = [...myClinics(), ...searchRoots().filter(o => !myClinics().some(c => c.id === o.id))];
  fill(MAIN, h('div', {class: 'tabs', role: 'group'}, Object.keys(T.lists).map(k =>
    h('button', {type: 'button', 'data-list': k, 'aria-pressed': String(k === kind), onclick: () => go({list: k})}, T.lists[k]))),
  h('div', {class: 'pick noprint'},
    h('label', {}, T.orgUnit, h('select', {id: 'list-ou', onchange: ev => go({ou: ev.target.value})},
      ous.map(o => h('option', {value: o.id}, o.name)))),
    h('label', {}, T.forDate, h('input', {id: 'list-date', type: 'date', value: params.get('date') || todayStr(),
      onchange: ev => go({date: ev.target.value})})),
    h('button', {type: 'button', id: 'print', onclick: () => window.print()}, T.print)),
  h('div', {id: 'list'}));
  if (params.get('ou')) $('list-ou').value = params.get('ou');
  function go(change) {
    const p = Object.assign({list: kind, ou: $('list-ou').value, date: $('list-date').value}, change);
    location.search = q(p);
  }
  loadList(kind, $('list-ou').value, $('list-date').value);
}
async function loadList(kind, ou, date) {
  const box = $('list');
  fill(box, h('p', {class: 'muted'}, T.searching));
  const r = await api('GET', `/api/hub/lists/${kind}?` + q({orgUnit: ou, date, locale: LANG}));
  if (!r.ok) { fill(box, banner(T.loadFail + msgOf(r, r.status), 'err')); return; }
  const b = r.body, c = T.col;
  const title = h('h1', {class: 'print-title'}, `${T.lists[kind]} · ${b.orgUnitName} · ${b.date}`);
  const person = (x, i) => {
    const a = x.attributes || {}, link = '/hub/people/' + encodeURIComponent(x.trackedEntity);
    return [h('td', {class: 'num'}, i + 1), h('td', {class: 'bn'}, h('a', {href: link}, a[CODES.bn] || '—')), h('td', {}, a[CODES.en] || ''),
      h('td', {}, a[CODES.rel] || ''), h('td', {class: 'phone'}, a[CODES.phone] || ''), h('td', {}, a[CODES.village] || '')];
  };
  const table = (id, heads, rows) => rows.length ? h('div', {class: 'tw'}, h('table', {class: 'list', id},
    h('thead', {}, h('tr', {}, heads.map(t => h('th', {scope: 'col'}, t)))), h('tbody', {}, rows)))
    : h('p', {class: 'muted', id}, T.nothing);
  const base = [c.n, c.bn, c.en, c.rel, c.phone, c.village];
  if (kind === 'pregnant') {
    fill(box, title, table('list-table', [...base, c.lmp, c.weeks, c.clinic], b.people.map((x, i) =>
      h('tr', {'data-te': x.trackedEntity}, person(x, i), h('td', {class: 'date'}, day(x.occurredAt)), h('td', {}, x.weeks === null ? '' : x.weeks),
        h('td', {}, x.orgUnitName)))));
  } else if (kind === 'children') {
    fill(box, title, table('list-table', [...base, c.dob, c.age, c.regs], b.people.map((x, i) =>
      h('tr', {'data-te': x.trackedEntity}, person(x, i), h('td', {class: 'date'}, day((x.attributes || {})[CODES.dob])),
        h('td', {}, x.ageMonths === null ? '' : x.ageMonths), h('td', {}, x.programs.join(', '))))));
  } else {
    const rows = list => list.map((x, i) => h('tr', {'data-te': x.trackedEntity, 'data-stage': x.programStage},
      person(x, i), h('td', {}, x.programName), h('td', {}, x.stageName), h('td', {class: 'date'}, day(x.dueDate)),
      h('td', {class: x.daysOverdue ? 'num late' : 'num'}, x.daysOverdue || '')));
    const heads = [...base, c.register, c.visit, c.dueDate, c.late];
    fill(box, title, h('h2', {class: 'big'}, `${T.missed}: ${b.visits.filter(v => v.status === 'overdue').length}`),
      table('overdue-table', heads, rows(b.visits.filter(v => v.status === 'overdue'))),
      h('h2', {class: 'big'}, `${T.thisWeek} (${b.date} – ${b.weekEnds}): ${b.visits.filter(v => v.status === 'due').length}`),
      table('due-table', heads, rows(b.visits.filter(v => v.status === 'due'))));
  }
}

// -- start: hub.js logs in, then tells this page who is here
let started = false;
addEventListener('hub:me', async () => {
  if (started) return;
  started = true;
  try { await loadMeta(); } catch (e) { fill(MAIN, banner(T.loadFail + e.message, 'err')); return; }
  if (PAGE === 'people') startPeople();
  else if (PAGE === 'record') await startRecord();
  else if (PAGE === 'lists') startLists();
});
