"""Local person search and duplicate detection over tracked entities (issue 11).

A CHCP types a name in Bangla or in Latin letters, a phone number in any of its forms,
or a birth registration number, and gets the people it can mean in milliseconds among
the upazila's ~200,000 registered women and children. At registration, ``duplicates``
scores the people already registered against the form and says why, in words a CHCP
reads.

How a name is matched: every name (Bangla or Latin) is turned into a *phonetic key*, a
folded Latin spelling where the usual variants coincide (``ফাতেমা বেগম``, ``Fatema
Begum`` and ``Fatima Bagum`` all give ``fatema begum``), and a *consonant skeleton*
(``ftm bgm``) that survives a missing or wrong vowel. ``person_search`` holds the keys
per tracked entity. Search finds candidates through an FTS5 trigram index over them
(a typo falls back to each word's front or back half); the duplicate check through
B-tree indexes (phone, BRN, name skeleton with village or relation name, village with
birth date). Nothing scans the table; rapidfuzz ranks the few hundred candidates at
most, and ``compare`` scores a pair as weighted evidence with reasons in words.

Bangla → Latin is a table of the script's ~70 code points below, not the
``indic-transliteration`` package: that package follows Sanskrit conventions we would
have to undo (an inherent ``a`` after every consonant, ব as ``v``, য় left as ``ya়``)
and pulls typer, rich, tqdm, regex, toml and roman onto the appliance for one function.
Similarity is rapidfuzz's (C); nothing here computes an edit distance by hand.

The index is kept by ``store.tracker``: every write that touches tracked entities or
their attributes calls ``reindex(tx, te_uids)`` in the same transaction.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

import orjson
from rapidfuzz import fuzz

from ..i18n import N_
from .db import Tx
from .metadata import metadata_version

# -- attribute codes ---------------------------------------------------------------------

NAME_BN, NAME_EN, RELATION = "BD_NAME_BN", "BD_NAME_EN", "BD_RELATION_NAME"
DOB, AGE, SEX, PHONE, BRN, VILLAGE = ("BD_DOB", "BD_AGE_YEARS", "BD_SEX", "BD_PHONE",
                                      "BD_BRN", "BD_VILLAGE")
CODES = (NAME_BN, NAME_EN, RELATION, DOB, AGE, SEX, PHONE, BRN, VILLAGE)

# -- Bangla script → Latin ------------------------------------------------------------------

_CONS = {
    "ক": "k", "খ": "kh", "গ": "g", "ঘ": "gh", "ঙ": "ng", "চ": "ch",
    # ছ stands for Arabic s in the older spelling of most Bangladeshi Muslim names
    # (মোছাম্মৎ Mosammat, আছমা Asma, ছালেহা Saleha), far more often than for chh
    "ছ": "s", "জ": "j", "ঝ": "jh", "ঞ": "n", "ট": "t", "ঠ": "th", "ড": "d", "ঢ": "dh",
    "ণ": "n", "ত": "t", "থ": "th", "দ": "d", "ধ": "dh", "ন": "n", "প": "p", "ফ": "f",
    "ব": "b", "ভ": "bh", "ম": "m", "য": "j", "র": "r", "ল": "l", "শ": "sh", "ষ": "sh",
    "স": "s", "হ": "h", "\u09dc": "r", "\u09dd": "rh", "\u09df": "y", "ৎ": "t",  # ড় ঢ় য়
}
_VOWEL = {"অ": "o", "আ": "a", "ই": "i", "ঈ": "i", "উ": "u", "ঊ": "u", "ঋ": "ri", "এ": "e",
          "ঐ": "oi", "ও": "o", "ঔ": "ou"}
_SIGN = {"া": "a", "ি": "i", "ী": "i", "ু": "u", "ূ": "u", "ৃ": "ri", "ে": "e", "ৈ": "oi",
         "ো": "o", "ৌ": "ou"}
# after a virama: য (ya-phala) and ব (ba-phala) are glides, not a second consonant
_PHALA = {"য": "y", "ব": "w"}
_VIRAMA, _NUKTA = "\u09cd", "\u09bc"
_OTHER = {"ং": "ng", "ঃ": "", "ঁ": "", "\u200c": "", "\u200d": ""}
_NUKTA_FORMS = {"য" + _NUKTA: "\u09df", "ড" + _NUKTA: "\u09dc", "ঢ" + _NUKTA: "\u09dd"}
_BN_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
# ৎ (khanda ta) never carries the inherent vowel
_NO_INHERENT = {"ৎ"}


def bangla_to_latin(text: str) -> str:
    """A phonetic Latin spelling of Bangla text (Latin letters pass through).

    The inherent vowel is written ``a`` after a consonant that carries no vowel sign,
    except where Bangla speech drops it: at a word's end (করিম karim) and after a vowel
    before a consonant with its own sign (ইসলাম Islam, নাসরিন Nasrin, রহমান Rahman)."""
    text = unicodedata.normalize("NFC", text)
    # NFC decomposes য় ড় ঢ় (composition exclusions): make each one code point again
    for seq, one in _NUKTA_FORMS.items():
        text = text.replace(seq, one)
    text = text.translate(_BN_DIGITS)
    out: list[str] = []
    n = len(text)
    i = 0
    vowel_before = False  # the sound just written is a vowel (so a schwa may drop)
    while i < n:
        ch = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if ch in _CONS:
            out.append(_CONS[ch])
            if nxt in _SIGN:
                out.append(_SIGN[nxt])
                vowel_before = True
                i += 2
                continue
            if nxt == _VIRAMA:
                after = text[i + 2] if i + 2 < n else ""
                if after in _PHALA:
                    out.append(_PHALA[after])
                    i += 1
                vowel_before = False
                i += 2
                continue
            after = text[i + 2] if i + 2 < n else ""
            drop = vowel_before and nxt in _CONS and after in _SIGN
            if ch not in _NO_INHERENT and not drop and (
                    nxt in _CONS or nxt in _OTHER or nxt in _VOWEL):
                out.append("a")
                vowel_before = True
            else:
                vowel_before = False
        elif ch in _VOWEL or ch in _SIGN:
            out.append(_VOWEL.get(ch) or _SIGN[ch])
            vowel_before = True
        elif ch in _OTHER:
            out.append(_OTHER[ch])
        elif ch not in (_VIRAMA, _NUKTA):
            out.append(ch)
            vowel_before = False
        i += 1
    return "".join(out)


# -- folding -----------------------------------------------------------------------------

# Replacements in order, on a lowercase ASCII word. Each maps spellings a Bangla name is
# written with to one form: Bangla has no v, f and ph are one sound, w is the glide of o,
# z and j are one letter in Bangla (জ/য), kh/gh/th/dh/bh/sh/ch write one consonant.
_PAIRS = (("x", "ks"), ("q", "k"), ("ee", "i"), ("oo", "u"), ("ph", "f"), ("v", "b"),
          ("w", "o"), ("z", "j"), ("y", "i"), ("ou", "o"), ("au", "o"))
_H_AFTER_CONSONANT = re.compile(r"([bcdfgjklmnpqrstvxz])h")
_DOUBLE = re.compile(r"(.)\1+")
_NON_ALPHA = re.compile(r"[^a-z]+")
_VOWELS = re.compile(r"[aeiou]")


def _fold_word(w: str) -> str:
    for a, b in _PAIRS:
        w = w.replace(a, b)
    w = _H_AFTER_CONSONANT.sub(r"\1", w)
    if len(w) > 2 and w.endswith("h"):  # Sarah/Sara, Ullah/Ulla
        w = w[:-1]
    return _DOUBLE.sub(r"\1", w)


def _fold_all(words: Iterable[str]) -> set[str]:
    return {_fold_word(_ascii(bangla_to_latin(w))) for w in words}


def _ascii(s: str) -> str:
    s = unicodedata.normalize("NFKD", s.lower())
    return "".join(c for c in s if not unicodedata.combining(c))


# Titles that say nothing about who someone is (Mosammat/Mst. is on most women's names).
_TITLES = _fold_all((
    "mst", "most", "mosammat", "mossammat", "musammat", "mosammot", "mosamat", "mosa", "mrs",
    "ms", "mr", "miss", "sri", "sree", "shri", "srimati", "shrimati", "smt", "dr", "late",
    "মোছাঃ", "মোসাঃ", "মোছাম্মৎ", "মোসাম্মৎ", "মোসাম্মাৎ", "মিসেস", "শ্রী", "শ্রীমতি", "ডাঃ", "মৃত",
))
# Spellings of one name mapped to one key: Md/Mohammad/Muhammad, Fatema/Fatima, ...
_CANON_SOURCES = {
    "mohammad": ("md", "mohd", "muhd", "mohammad", "mohammed", "muhammad", "muhammed",
                 "mohamed", "mohammod", "mahammad", "মোঃ", "মো", "মোহাম্মদ", "মুহাম্মদ",
                 "মোহাম্মাদ"),
    "fatema": ("fatema", "fatima", "fathema", "fatama"),
    "begum": ("begum", "bagum", "begam", "begom", "begun", "বেগম"),
    "akter": ("akter", "akhter", "aktar", "akhtar", "aktear", "আক্তার", "আক্তের", "আখতার"),
    "khatun": ("khatun", "khatoon", "katun", "khaton", "খাতুন"),
    "abdul": ("abdul", "abdool", "abdhul", "আব্দুল", "আবদুল"),
    "rahman": ("rahman", "rohman", "rahaman", "রহমান"),
    "islam": ("islam", "eslam", "isalam", "ইসলাম"),
    "nesa": ("nesa", "nessa", "nisa", "nissa", "nesha", "নেছা", "নেসা", "নিসা"),
}
_CANON = {f: _fold_word(k) for k, srcs in _CANON_SOURCES.items() for f in _fold_all(srcs)}


@lru_cache(maxsize=1 << 14)
def _key_word(word: str) -> str:
    """One word's key ('' for a title); cached: names repeat endlessly in an upazila."""
    f = _fold_word(_ascii(bangla_to_latin(word)))
    f = _NON_ALPHA.sub("", f)
    if not f or f in _TITLES:
        return ""
    return _CANON.get(f, f)


_SPLIT = re.compile(r"[\s.,;:/()\-_'\"।]+")


def name_tokens(text: str | None) -> list[str]:
    """The key words of a name, either script, titles dropped."""
    if not text:
        return []
    return [k for k in (_key_word(w) for w in _SPLIT.split(text) if w) if k]


def name_key(text: str | None) -> str:
    """The phonetic key of a name: "ফাতেমা বেগম", "Fatima Bagum" → "fatema begum"."""
    return " ".join(name_tokens(text))


@lru_cache(maxsize=1 << 14)
def skeleton(key: str) -> str:
    """Consonants only, per word ("fatema begum" → "ftm bgm"): a name typed with a vowel
    missing or wrong keeps its skeleton."""
    words = []
    for w in key.split():
        s = _DOUBLE.sub(r"\1", _VOWELS.sub("", w)) or w[:1]
        words.append(s)
    return " ".join(words)


def digits(text: str | None) -> str:
    """The digits of ``text``, Bangla digits as ASCII."""
    return "".join(c for c in (text or "").translate(_BN_DIGITS) if c.isdigit())


def phone_key(text: str | None) -> str | None:
    """A Bangladeshi number without +880/880/0: '+880 1712-345678', '01712345678' and
    '১৭১২৩৪৫৬৭৮' → '1712345678'. Other numbers keep their digits."""
    d = digits(text)
    if d.startswith("880"):
        d = d[3:]
    elif d.startswith("88") and len(d) == 13:
        d = d[2:]
    d = d.lstrip("0")
    return d or None


def phone_display(key: str | None) -> str:
    return "0" + key if key and len(key) == 10 and key[0] == "1" else key or ""


# -- the attribute code map ------------------------------------------------------------------

_code_cache: dict[tuple[str, int], dict[str, str]] = {}


def attribute_codes(conn: sqlite3.Connection) -> dict[str, str]:
    """code → attribute uid for the codes above, cached per (database file,
    metadata_version): the version moves whenever metadata changes."""
    version = metadata_version(conn)
    db_file = next((r[2] for r in conn.execute("PRAGMA database_list") if r[1] == "main"), "")
    key = (db_file, version)
    if db_file and key in _code_cache:
        return _code_cache[key]
    codes = {r[0]: r[1] for r in conn.execute(
        "SELECT code, uid FROM metadata WHERE type='trackedEntityAttributes' AND code IN "
        f"({','.join('?' * len(CODES))})", CODES)}
    if db_file:  # an in-memory database has no name to key a cache on
        _code_cache[key] = codes
    return codes


# -- the index -----------------------------------------------------------------------------

_COLS = ("te", "org_unit", "name_bn", "name_en", "relation", "village", "name_keys",
         "name_skels", "skel_bn", "skel_en", "rel_key", "rel_skel", "village_key", "first_key", "initials", "phone",
         "phone_rev", "brn", "dob", "age", "sex")
_FTS_COLS = "name_keys, name_skels, rel_key, rel_skel, village_key"
_CHUNK = 500


def _row(te: str, org_unit: str, v: Mapping[str, str]) -> tuple[Any, ...]:
    bn, en = v.get(NAME_BN) or None, v.get(NAME_EN) or None
    keys = [name_key(bn), name_key(en)]
    rel = v.get(RELATION) or None
    rel_key = name_key(rel)
    village = v.get(VILLAGE) or None
    phone = phone_key(v.get(PHONE))
    brn = digits(v.get(BRN)) or None
    dob = (v.get(DOB) or "")[:10] or None
    age_digits = digits(v.get(AGE))
    age = int(age_digits) if age_digits and len(age_digits) <= 3 else None
    skels = [skeleton(k) for k in keys]
    return (te, org_unit, bn, en, rel, village, " | ".join(keys), " | ".join(skels),
            skels[0] or None, skels[1] or None, rel_key, skeleton(rel_key),
            name_key(village), keys[1] or keys[0], _initials(keys), phone, phone[::-1] if phone else None,
            brn, dob, age, (v.get(SEX) or "").upper()[:1] or None)


def _initials(keys: Iterable[str]) -> str:
    return "".join(sorted({k[0] for k in keys if k}))


def _delete(tx: Tx, uids: Sequence[str]) -> None:
    marks = ",".join("?" * len(uids))
    tx.execute(f"INSERT INTO person_fts(person_fts, rowid, {_FTS_COLS}) "
               f"SELECT 'delete', id, {_FTS_COLS} FROM person_search WHERE te IN ({marks})",
               uids)
    tx.execute(f"DELETE FROM person_search WHERE te IN ({marks})", uids)


def _rows_for(conn: sqlite3.Connection, uids: Sequence[str],
              codes: Mapping[str, str]) -> list[tuple[Any, ...]]:
    marks = ",".join("?" * len(uids))
    tes = conn.execute(f"SELECT uid, org_unit FROM tracked_entity WHERE uid IN ({marks}) "
                       "AND deleted = 0", uids).fetchall()
    if not tes or not codes:
        return [_row(te, ou, {}) for te, ou in tes]
    code_of = {uid: code for code, uid in codes.items()}
    attr_marks = ",".join("?" * len(code_of))
    values: dict[str, dict[str, str]] = {}
    for te, attr, value in conn.execute(
            f"SELECT te, attribute, value FROM te_attribute WHERE te IN ({marks}) "
            f"AND attribute IN ({attr_marks})", (*uids, *code_of)):
        if value is not None:
            values.setdefault(te, {})[code_of[attr]] = value
    return [_row(te, ou, values.get(te, {})) for te, ou in tes]


def _insert(tx: Tx, rows: list[tuple[Any, ...]], *, fts: bool = True) -> None:
    if not rows:
        return
    tx.executemany(f"INSERT INTO person_search({', '.join(_COLS)}) "
                   f"VALUES ({','.join('?' * len(_COLS))})", rows)
    if fts:
        uids = [r[0] for r in rows]
        tx.execute(f"INSERT INTO person_fts(rowid, {_FTS_COLS}) SELECT id, {_FTS_COLS} "
                   f"FROM person_search WHERE te IN ({','.join('?' * len(uids))})", uids)


def reindex(tx: Tx, te_uids: Iterable[str]) -> None:
    """Rebuild the index rows of these tracked entities from ``tracked_entity`` and
    ``te_attribute``; a deleted (or unknown) TE leaves the index."""
    uids = list(dict.fromkeys(te_uids))
    if not uids:
        return
    codes = attribute_codes(tx.conn)
    for i in range(0, len(uids), _CHUNK):
        chunk = uids[i:i + _CHUNK]
        _delete(tx, chunk)
        _insert(tx, _rows_for(tx.conn, chunk, codes))


def reindex_all(tx: Tx) -> int:
    """Rebuild the whole index (after a restore, or a change to the keys). Returns how
    many people it holds. The trigram index is rebuilt once at the end: far cheaper than
    row by row."""
    tx.execute("DELETE FROM person_search")
    codes = attribute_codes(tx.conn)
    uids = [r[0] for r in tx.execute("SELECT uid FROM tracked_entity WHERE deleted = 0")]
    for i in range(0, len(uids), _CHUNK):
        _insert(tx, _rows_for(tx.conn, uids[i:i + _CHUNK], codes), fts=False)
    tx.execute("INSERT INTO person_fts(person_fts) VALUES ('rebuild')")
    return len(uids)


# -- search --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    """One person a search found: ``score`` 0..1, ``matched`` what matched, in words."""

    te: str
    score: float
    matched: str


_ROW_SQL = ("ps.id, ps.te, ps.org_unit, ps.name_bn, ps.name_en, ps.relation, ps.village, "
            "ps.name_keys, ps.name_skels, ps.rel_key, ps.rel_skel, ps.village_key, ps.phone, "
            "ps.brn, ps.dob, ps.age, ps.sex")
# Candidates one look-up may hand to the ranking: enough for every spelling of a name in
# an upazila, few enough that ranking them costs a few milliseconds.
_CANDIDATES = 200
_SEARCH_COLS = ("ps.id, ps.te, ps.org_unit, ps.name_bn, ps.name_en, ps.relation, ps.village, "
                "ps.name_keys")


def _rows(conn: sqlite3.Connection, parts: Sequence[tuple[str, Sequence[Any]]],
          columns: str) -> list[list[Any]]:
    """The rows of the SELECTs in ``parts`` (each ``SELECT {columns} ...``), in one JSON
    array from one step. Python's sqlite3 lets go of the GIL and takes it back on every
    row stepped; with 30 callers each row meant waiting in line for the GIL again, and
    the slowest searches waited hundreds of milliseconds. One step, one wait."""
    if not parts:
        return []
    names = ", ".join(c.strip().split(".")[-1] for c in columns.split(","))
    union = " UNION ALL ".join(f"SELECT * FROM ({sql})" for sql, _ in parts)
    row = conn.execute(f"SELECT json_group_array(json_array({names})) FROM ({union})",
                       [p for _, params in parts for p in params]).fetchone()
    return orjson.loads(row[0]) if row and row[0] else []
_MIN_SEARCH_SCORE = 0.6


def _ou_clause(org_units: Sequence[str] | None) -> tuple[str, tuple[str, ...]]:
    if org_units is None:
        return "", ()
    return f" AND ps.org_unit IN ({','.join('?' * len(org_units))})", tuple(org_units)


def _phrases(words: Sequence[str]) -> list[str]:
    """Words as FTS trigram phrases: a word under 3 letters joins its neighbour (trigrams
    cross the space), as trigram matching needs 3 characters."""
    out: list[str] = []
    buf = ""
    for w in words:
        buf = f"{buf} {w}" if buf else w
        if len(buf) >= 3:
            out.append(buf)
            buf = ""
    if buf:
        if out:
            out[-1] = f"{out[-1]} {buf}"
        elif len(buf) >= 3:
            out.append(buf)
    return out


def _and(column: str, phrases: Sequence[str]) -> str:
    return " AND ".join(f'{column}:"{p}"' for p in phrases)


def _exact_expr(key: str, kcol: str = "name_keys", scol: str = "name_skels") -> str:
    """The key's words as substrings of the key column, or its skeleton's of the skeleton
    column: a spelling variant, a missing or wrong vowel all match."""
    parts = []
    kp = _phrases(key.split())
    if kp:
        parts.append(f"({_and(kcol, kp)})")
    sp = _phrases(skeleton(key).split())
    if sp:
        parts.append(f"({_and(scol, sp)})")
    return " OR ".join(parts)


def _typo_expr(key: str, column: str = "name_keys") -> str:
    """Each word's front or back half as a substring: one typo spoils at most one half,
    and a half is far more selective than any single trigram, so no ranking is needed
    to keep the candidates few. Words under 6 letters are left to the others (a typo
    in "Ali" leaves no half of 3 letters to go on)."""
    parts = []
    for w in key.split():
        if len(w) >= 6:
            h = (len(w) + 1) // 2
            parts.append(f'({column}:"{w[:h]}" OR {column}:"{w[h - 1 if len(w) % 2 else h:]}")')
    return " AND ".join(parts)


def _fts(expr: str, org_units: Sequence[str] | None, limit: int, *,
         columns: str = _ROW_SQL) -> tuple[str, tuple[Any, ...]]:
    """A SELECT (for ``_rows``) of rows whose keys match ``expr``, in rowid order (never
    ranked: bm25 would read every match of a common trigram; rapidfuzz ranks after)."""
    ou_sql, ou_params = _ou_clause(org_units)
    return (f"SELECT {columns} FROM person_fts JOIN person_search ps ON "
            f"ps.id = person_fts.rowid WHERE person_fts MATCH ?{ou_sql} LIMIT ?",
            (expr, *ou_params, limit))


# The pair caches stay small: a search or a duplicate check meets the same few keys
# over and over (hundreds of rows share "fatema begum"), so a few thousand entries
# catch nearly every hit (and cost no time measured), while 131,072 of them grew the
# hub by ~50 MB over a day's searching at 200,000 people.
@lru_cache(maxsize=1 << 13)
def name_similarity(a_key: str, b_key: str) -> float:
    """0..1: how alike two name keys are, words in any order, vowels forgiven through the
    skeletons (slightly less than the spelled keys: a skeleton is a weaker witness)."""
    # Mohammad opens most men's names: two husbands sharing it are no more alike for it
    a_key, b_key = _without_mohammad(a_key), _without_mohammad(b_key)
    if not a_key or not b_key:
        return 0.0
    spelled = max(fuzz.token_sort_ratio(a_key, b_key), 0.9 * fuzz.token_set_ratio(a_key, b_key),
                  # a lost or extra space ("Shikha Bibi" / "ShikhaBibi")
                  fuzz.ratio(a_key.replace(" ", ""), b_key.replace(" ", "")))
    a_s, b_s = skeleton(a_key), skeleton(b_key)
    skel = 0.95 * max(fuzz.token_sort_ratio(a_s, b_s), 0.9 * fuzz.token_set_ratio(a_s, b_s))
    return max(spelled, skel) / 100.0


_MOHAMMAD = _CANON["mohamad"]


def _without_mohammad(key: str) -> str:
    words = key.split()
    rest = [w for w in words if w != _MOHAMMAD]
    return " ".join(rest) if rest else key


def _names(row: Any) -> list[tuple[str, str]]:
    """(key, name as entered) of a row's Bangla and English names."""
    keys = row[7].split(" | ")
    return [(k, n) for k, n in zip(keys, (row[3], row[4]), strict=False) if k and n]


@lru_cache(maxsize=1 << 13)
def _search_score(query: str, key: str) -> float:
    # a query is often part of a name ("Rokeya" for "Mst. Rokeya Begum"): partial credit
    # for a subset, through token_set_ratio
    if not key:
        return 0.0
    # ... but a name that is only part of the query ("Tanvir" for "Tanvir Hasan") less
    part = 0.95 if len(query.split()) <= len(key.split()) else 0.7
    spelled = max(part * fuzz.token_set_ratio(query, key), fuzz.token_sort_ratio(query, key))
    skel = 0.9 * max(part * fuzz.token_set_ratio(skeleton(query), skeleton(key)),
                     fuzz.token_sort_ratio(skeleton(query), skeleton(key)))
    return max(spelled, skel) / 100.0


def search(conn: sqlite3.Connection, text: str, *, org_units: Sequence[str] | None = None,
           limit: int = 20) -> list[Hit]:
    """People a CHCP's query can mean, best first: a name in either script (typos, missing
    vowels and spelling variants forgiven), a phone number with or without +880/0 (or
    its last five or more digits), or a birth registration number.

    ``org_units`` are the org units to look in (the caller expands a user's subtree);
    None looks everywhere."""
    text = (text or "").strip()
    if not text or limit <= 0:
        return []
    d = digits(text)
    if d and len(d) >= len(re.sub(r"[\s+\-()]", "", text)):  # the query is a number
        return _search_number(conn, d, org_units, limit)
    query = name_key(text)
    if not query:
        return []
    if len(query.replace(" ", "")) < 3:
        return _search_prefix(conn, query, org_units, limit)
    # every spelling of a common name scores alike: a few times the page is plenty
    want = max(3 * limit, 60)
    # Mohammad opens half the men's names: as a phrase in the MATCH it narrows nothing
    # and walks ~20,000 rows' positions (8 of a 10 ms search). Candidates come from the
    # other words; the ranking still weighs it (a man registered without "Md." is found).
    fts_key = _without_mohammad(query)
    exact = _exact_expr(fts_key)
    rows = {r[0]: r for r in _rows(conn, [_fts(exact, org_units, want, columns=_SEARCH_COLS)],
                                   _SEARCH_COLS)} if exact else {}
    typo = _typo_expr(fts_key)
    if len(rows) < limit and typo:  # a typo: each word's front or back half
        for r in _rows(conn, [_fts(typo, org_units, want, columns=_SEARCH_COLS)],
                       _SEARCH_COLS):
            rows.setdefault(r[0], r)
    # the loop every keystroke pays under the GIL: plain tuples, Hit only for the page
    scored: list[tuple[float, str, str]] = []
    for r in rows.values():
        bn_key, _, en_key = r[7].partition(" | ")
        bn = _search_score(query, bn_key) if bn_key and r[3] else 0.0
        en = _search_score(query, en_key) if en_key and r[4] else 0.0
        best, name = (bn, r[3]) if bn >= en else (en, r[4])
        if best >= _MIN_SEARCH_SCORE:
            scored.append((-best, r[1], name))
    scored.sort()
    return [Hit(te, round(-neg, 3), f"name {name}") for neg, te, name in scored[:limit]]


def _search_number(conn: sqlite3.Connection, d: str, org_units: Sequence[str] | None,
                   limit: int) -> list[Hit]:
    ou_sql, ou_params = _ou_clause(org_units)
    hits: dict[str, Hit] = {}
    phone = phone_key(d)
    if phone:
        for (te,) in conn.execute(f"SELECT te FROM person_search ps WHERE phone = ?{ou_sql} "
                                  "LIMIT ?", (phone, *ou_params, limit)):
            hits.setdefault(te, Hit(te, 1.0, f"phone {phone_display(phone)}"))
    for (te,) in conn.execute(f"SELECT te FROM person_search ps WHERE brn = ?{ou_sql} LIMIT ?",
                              (d, *ou_params, limit)):
        hits.setdefault(te, Hit(te, 1.0, f"birth registration {d}"))
    if not hits and 5 <= len(d) < 10:  # the last digits of a phone number
        rev = d[::-1]
        for te, p in conn.execute(
                f"SELECT te, phone FROM person_search ps WHERE phone_rev >= ? AND "
                f"phone_rev < ?{ou_sql} LIMIT ?", (rev, rev + ":", *ou_params, limit)):
            hits.setdefault(te, Hit(te, round(len(d) / 10, 3), f"phone {phone_display(p)}"))
    return sorted(hits.values(), key=lambda h: (-h.score, h.te))[:limit]


def _search_prefix(conn: sqlite3.Connection, query: str, org_units: Sequence[str] | None,
                   limit: int) -> list[Hit]:
    """One or two letters: names starting with them, in key order, through the index."""
    ou_sql, ou_params = _ou_clause(org_units)
    rows = conn.execute(
        f"SELECT te, name_en, name_bn FROM person_search ps WHERE first_key >= ? AND "
        f"first_key < ?{ou_sql} ORDER BY first_key LIMIT ?",
        (query, query + "{", *ou_params, limit)).fetchall()
    return [Hit(te, 0.5, f"name {en or bn}") for te, en, bn in rows]


# -- duplicates ----------------------------------------------------------------------------

# The duplicate score is weighted evidence. Each field gives evidence e in [-1, 1] (0 when
# either side lacks it); the score is sum(weight * e), clipped to 0..1.
#   name      0.40  e = (similarity - 0.75) / 0.20: alike from 0.75, the same at 0.95;
#                   a name unlike (0.55 or less) counts fully against
#   relation  0.20  husband's (woman) or mother's (child) name, the same mapping
#   birth     0.20  same day 1, <=7 days 0.8, day and month swapped 0.7, <=31 days 0.5,
#                   <=1 year 0, further -1; with an age on either side: <=1 year 0.4,
#                   <=3 years 0, further -1
#   phone     0.15  same 1, different -0.3 (a family shares one phone; a SIM changes)
#   village   0.10  same 1, different -0.5
#   BRN       0.50  same 1 (a birth registration number is one person's), different -1
#   sex       0.50  different -1 (same: no evidence, half of everyone shares it)
# A different person who only looks alike (a common name, other phone, village and date
# of birth) gets 0.40 - 0.045 - 0.05 - 0.2 ~ 0.1; the same woman typed in the other
# script with her phone, village and husband's name ~ 0.85.
W_NAME, W_RELATION, W_BIRTH, W_PHONE, W_VILLAGE, W_BRN, W_SEX = (
    0.40, 0.20, 0.20, 0.15, 0.10, 0.50, 0.50)
DUPLICATE_THRESHOLD = 0.55
_CHILD_YEARS = 12  # younger: the relation name is the mother's


Reason = tuple[str, dict[str, Any]]  # an N_ template and its fields


def said(reason: Reason) -> str:
    """A reason in English (the API's ``reasons``, what national is sent)."""
    words, fields = reason
    return words.format(**fields)


@dataclass(frozen=True)
class Candidate:
    """A registered person who may be the one being registered: ``score`` 0..1 and the
    evidence, for and against (``words``: templates, for a page in the reader's language)."""

    te: str
    score: float
    words: list[Reason] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [said(r) for r in self.words]


@dataclass(frozen=True)
class _Profile:
    names: list[tuple[str, str]]  # (key, as entered)
    rel_key: str
    relation: str
    village_key: str
    village: str
    phone: str | None
    brn: str | None
    dob: date | None
    age: int | None
    sex: str | None


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat((text or "")[:10])
    except ValueError:
        return None


def _profile(person: Mapping[str, str]) -> _Profile:
    names = [(name_key(person.get(c)), person.get(c) or "") for c in (NAME_BN, NAME_EN)]
    age = digits(person.get(AGE))
    return _Profile(
        names=[(k, n) for k, n in names if k], rel_key=name_key(person.get(RELATION)),
        relation=person.get(RELATION) or "", village_key=name_key(person.get(VILLAGE)),
        village=person.get(VILLAGE) or "", phone=phone_key(person.get(PHONE)),
        brn=digits(person.get(BRN)) or None, dob=_date(person.get(DOB)),
        age=int(age) if age and len(age) <= 3 else None,
        sex=(person.get(SEX) or "").upper()[:1] or None)


def _row_profile(r: Any) -> _Profile:
    return _Profile(names=_names(r), rel_key=r[9], relation=r[5] or "", village_key=r[11],
                    village=r[6] or "", phone=r[12], brn=r[13], dob=_date(r[14]), age=r[15],
                    sex=r[16])


def _alike(sim: float) -> float:
    return max(-1.0, min(1.0, (sim - 0.75) / 0.20))


def _age_years(p: _Profile, today: date) -> float | None:
    if p.dob:
        return (today - p.dob).days / 365.25
    return float(p.age) if p.age is not None else None


def _birth_evidence(a: _Profile, b: _Profile, today: date) -> tuple[float, Reason | None]:
    if a.dob and b.dob:
        days = abs((a.dob - b.dob).days)
        swapped = a.dob.year == b.dob.year and (a.dob.month, a.dob.day) == (b.dob.day,
                                                                             b.dob.month)
        born = b.dob.isoformat()
        if days == 0:
            return 1.0, (N_("same date of birth {born}"), {"born": born})
        if days == 1:
            return 0.8, (N_("born {born}, 1 day apart"), {"born": born})
        if days <= 7:
            return 0.8, (N_("born {born}, {days} days apart"), {"born": born, "days": days})
        if swapped:
            return 0.7, (N_("born {born}, day and month swapped"), {"born": born})
        if days <= 31:
            return 0.5, (N_("born {born}, {days} days apart"), {"born": born, "days": days})
        if days <= 366:
            return 0.0, None
        return -1.0, (N_("different date of birth ({a} / {b})"),
                      {"a": a.dob.isoformat(), "b": born})
    ya, yb = _age_years(a, today), _age_years(b, today)
    if ya is None or yb is None:
        return 0.0, None
    gap = abs(ya - yb)
    if gap <= 1.5:
        return 0.4, (N_("about the same age ({years} years)"), {"years": int(yb)})
    if gap <= 3.5:
        return 0.0, None
    return -1.0, (N_("different age ({a} / {b} years)"), {"a": int(ya), "b": int(yb)})


def compare(a: Mapping[str, str], b: Mapping[str, str], *,
            today: date | None = None) -> tuple[float, list[str]]:
    """The duplicate score of ``b`` (registered) against ``a`` (being registered), both
    attribute code → value, and the reasons in English: evidence for, strongest first,
    then against."""
    score, words = _compare(_profile(a), _profile(b), today=today)
    return score, [said(r) for r in words]


# (name evidence) -> words; the relation's words by whose name it is
_NAME_WORDS = {"same": N_("name sounds the same ({a} / {b})"),
               "alike": N_("name is alike ({a} / {b})"),
               "different": N_("name is different ({a} / {b})")}
_RELATION_WORDS = {
    ("mother", True): N_("mother's name matches ({a} / {b})"),
    ("mother", False): N_("mother's name is different ({a} / {b})"),
    ("husband", True): N_("husband's name matches ({a} / {b})"),
    ("husband", False): N_("husband's name is different ({a} / {b})"),
    ("either", True): N_("husband's/mother's name matches ({a} / {b})"),
    ("either", False): N_("husband's/mother's name is different ({a} / {b})")}


def _compare(a: _Profile, b: _Profile, *,
             today: date | None = None) -> tuple[float, list[Reason]]:
    today = today or date.today()
    ev: list[tuple[float, Reason | None]] = []  # (weighted evidence, reason)
    if a.names and b.names:
        sim, ka, kb = max((name_similarity(ka, kb), na, nb)
                          for ka, na in a.names for kb, nb in b.names)
        e = _alike(sim)
        how = "same" if sim >= 0.9 else "alike" if e > 0 else "different"
        ev.append((W_NAME * e, (_NAME_WORDS[how], {"a": ka, "b": kb})))
    if a.rel_key and b.rel_key:
        e = _alike(name_similarity(a.rel_key, b.rel_key))
        ya = _age_years(a, today)
        whose = "either" if ya is None else "mother" if ya < _CHILD_YEARS else "husband"
        ev.append((W_RELATION * e, (_RELATION_WORDS[whose, e > 0],
                                    {"a": a.relation, "b": b.relation})))
    e, why = _birth_evidence(a, b, today)
    if e:
        ev.append((W_BIRTH * e, why))
    if a.phone and b.phone:
        phone = {"phone": phone_display(b.phone)}
        if a.phone == b.phone:
            ev.append((W_PHONE, (N_("same phone {phone}"), phone)))
        else:
            ev.append((-0.3 * W_PHONE, (N_("different phone ({phone})"), phone)))
    if a.village_key and b.village_key:
        village = {"village": b.village}
        if fuzz.ratio(a.village_key, b.village_key) >= 85:
            ev.append((W_VILLAGE, (N_("same village ({village})"), village)))
        else:
            ev.append((-0.5 * W_VILLAGE, (N_("different village ({village})"), village)))
    if a.brn and b.brn:
        brn = {"brn": b.brn}
        if a.brn == b.brn:
            ev.append((W_BRN, (N_("same birth registration number {brn}"), brn)))
        else:
            ev.append((-W_BRN, (N_("different birth registration number ({brn})"), brn)))
    if a.sex and b.sex and a.sex != b.sex:
        ev.append((-W_SEX, (N_("different sex"), {})))
    score = max(0.0, min(1.0, sum(w for w, _ in ev)))
    reasons = [why for w, why in sorted(ev, key=lambda x: -x[0]) if why and w > 0]
    reasons += [why for w, why in sorted(ev, key=lambda x: x[0]) if why and w < 0]
    return round(score, 3), reasons


def _ceiling(a: _Profile, r: Any) -> float:
    """The most ``_compare`` could give row ``r``: its name's evidence and every other
    field's best (read straight off the row: most candidates stop here)."""
    b_keys = [k for k in r[7].split(" | ") if k]
    if not (a.names and b_keys):
        return 1.0
    sim = max(name_similarity(ka, kb) for ka, _ in a.names for kb in b_keys)
    brn = W_BRN if a.brn and a.brn == r[13] else 0.0
    return W_NAME * _alike(sim) + W_RELATION + W_BIRTH + W_PHONE + W_VILLAGE + brn


def duplicates(conn: sqlite3.Connection, person: Mapping[str, str], *,
               org_units: Sequence[str] | None = None, limit: int = 10,
               min_score: float = DUPLICATE_THRESHOLD,
               today: date | None = None) -> list[Candidate]:
    """Registered people who may be ``person`` (attribute code → value, as the
    registration form holds them), best first, with ``min_score`` or more.

    Candidates come from B-tree look-ups only (the trigram index is search's: its
    intersections of common names with common villages cost milliseconds): the same
    phone or BRN; the same name skeleton (either script, spelling variants, vowels) in
    the same village or with the same husband's/mother's name; anyone of the same
    village, of the same initial, born within a month or of about the same age (a
    typo'd name). Then every
    candidate whose name leaves it a chance is scored."""
    a = _profile(person)
    ou_sql, ou_params = _ou_clause(org_units)
    parts: list[tuple[str, Sequence[Any]]] = []

    def add(sql: str, params: Sequence[Any]) -> None:
        parts.append((sql, params))

    if a.phone:
        add(f"SELECT {_ROW_SQL} FROM person_search ps WHERE ps.phone = ?{ou_sql} LIMIT ?",
            (a.phone, *ou_params, _CANDIDATES))
    if a.brn:
        add(f"SELECT {_ROW_SQL} FROM person_search ps WHERE ps.brn = ?{ou_sql} LIMIT ?",
            (a.brn, *ou_params, _CANDIDATES))
    # the same name (its skeleton, so either script and any vowels) in the same village
    # or with the same husband's/mother's name
    skels = list(dict.fromkeys(skeleton(k) for k, _ in a.names))
    if skels and (a.village_key or a.rel_key):
        marks = ",".join("?" * len(skels))
        add(f"SELECT {_ROW_SQL} FROM person_search ps WHERE (ps.skel_bn IN ({marks}) OR "
            f"ps.skel_en IN ({marks})) AND (ps.village_key = ? OR ps.rel_skel = ?){ou_sql} "
            "LIMIT ?", (*skels, *skels, a.village_key, skeleton(a.rel_key) or None,
                        *ou_params, _CANDIDATES))
    # whatever the name: the same village and a birth date within a month (or an age
    # within two years), through the (village_key, dob|age) indexes
    if a.village_key and (a.dob or a.age is not None):
        today = today or date.today()
        if a.dob:
            lo, hi = (date.fromordinal(a.dob.toordinal() + d) for d in (-31, 31))
            age = int(_age_years(a, today) or 0)
        else:  # an age: anyone born in the years it allows
            age = a.age or 0
            lo, hi = (date.fromordinal(today.toordinal() - int(y * 365.25))
                      for y in (age + 2, age - 1))
        initials = _initials(k for k, _ in a.names)
        if initials:
            init_sql = (" AND (ps.initials = '' OR " + " OR ".join(
                "instr(ps.initials, ?) > 0" for _ in initials) + ")")
        else:
            init_sql = ""
        add(f"SELECT {_ROW_SQL} FROM person_search ps WHERE ps.village_key = ? "
            f"AND ps.dob BETWEEN ? AND ?{init_sql}{ou_sql} LIMIT ?",
            (a.village_key, lo.isoformat(), hi.isoformat(), *initials, *ou_params,
             _CANDIDATES))
        add(f"SELECT {_ROW_SQL} FROM person_search ps WHERE ps.village_key = ? "
            f"AND ps.age BETWEEN ? AND ?{init_sql}{ou_sql} LIMIT ?",
            (a.village_key, age - 2, age + 2, *initials, *ou_params, _CANDIDATES))
    rows: dict[int, Any] = {}
    for r in _rows(conn, parts, _ROW_SQL):
        rows.setdefault(r[0], r)
    out = []
    for r in rows.values():
        if _ceiling(a, r) < min_score:  # a name unlike this one: no other field can lift it
            continue
        score, words = _compare(a, _row_profile(r), today=today)
        if score >= min_score:
            out.append(Candidate(r[1], score, words))
    out.sort(key=lambda c: (-c.score, c.te))
    return out[:limit]
