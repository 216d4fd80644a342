"""People for the search tests and bench: the two tracker tables search reads, their
attribute metadata, and a synthetic upazila population with real Bangladeshi names in
both scripts and their usual Latin spellings.

The tracker tables come from migration 0007 (store.tracker); until it lands beside
this module, ``ensure_tracker_tables`` creates the two that search reads, as the shared
design has them (``IF NOT EXISTS``: a no-op once 0007 is there).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from appliance.store import search
from appliance.store.db import Tx
from appliance.store.metadata import put_metadata

_SYNC = ("sync_state TEXT NOT NULL DEFAULT 'pending', hlc INTEGER NOT NULL, "
         "origin TEXT NOT NULL DEFAULT 'local', base TEXT")
TRACKER_DDL = (
    "CREATE TABLE IF NOT EXISTS tracked_entity(uid TEXT PRIMARY KEY, type TEXT NOT NULL, "
    "org_unit TEXT NOT NULL, created_at TEXT, updated_at TEXT, created_at_client TEXT, "
    "updated_at_client TEXT, stored_by TEXT, inactive INTEGER NOT NULL DEFAULT 0, "
    "potential_duplicate INTEGER NOT NULL DEFAULT 0, geometry TEXT, "
    f"deleted INTEGER NOT NULL DEFAULT 0, {_SYNC})",
    "CREATE TABLE IF NOT EXISTS te_attribute(te TEXT NOT NULL, attribute TEXT NOT NULL, "
    "value TEXT, created_at TEXT, updated_at TEXT, stored_by TEXT, "
    f"{_SYNC}, PRIMARY KEY (te, attribute))",
)
# attribute uid per code (11 characters, as DHIS2's)
ATTRIBUTES = {code: f"Att{code[3:11].replace('_', 'x'):x<8}" for code in search.CODES}
TE_TYPE = "TePerson001"


def ensure_tracker_tables(tx: Tx) -> None:
    for ddl in TRACKER_DDL:
        tx.execute(ddl)
    put_metadata(tx, {"trackedEntityAttributes": [
        {"id": uid, "code": code, "name": code} for code, uid in ATTRIBUTES.items()]})


def add_people(tx: Tx, people: Iterable[tuple[str, str, Mapping[str, str]]]) -> list[str]:
    """Insert (te uid, org unit, code → value) rows; returns the uids (not reindexed)."""
    stamp = tx.stamp()
    tes, attrs = [], []
    for te, ou, values in people:
        tes.append((te, TE_TYPE, ou, stamp))
        attrs += [(te, ATTRIBUTES[c], v, stamp) for c, v in values.items() if v]
    tx.executemany("INSERT OR REPLACE INTO tracked_entity(uid, type, org_unit, hlc) "
                   "VALUES (?,?,?,?)", tes)
    tx.executemany("INSERT OR REPLACE INTO te_attribute(te, attribute, value, hlc) "
                   "VALUES (?,?,?,?)", attrs)
    return [t[0] for t in tes]


# -- names: (Bangla, Latin spellings in use) ---------------------------------------------

FEMALE = [
    ("ফাতেমা", ["Fatema", "Fatima"]), ("রোকেয়া", ["Rokeya", "Rokeia", "Rokaya"]),
    ("আয়েশা", ["Ayesha", "Aysha", "Ayasha"]), ("নাসরিন", ["Nasrin", "Nasreen"]),
    ("শাহানা", ["Shahana", "Sahana"]), ("তাসলিমা", ["Taslima", "Toslima"]),
    ("রাশেদা", ["Rasheda", "Rashida"]), ("সালমা", ["Salma", "Shalma"]),
    ("আছমা", ["Asma", "Asmaa"]), ("রুবিনা", ["Rubina", "Rubena"]),
    ("পারভীন", ["Parvin", "Parveen", "Perveen"]), ("হাসিনা", ["Hasina", "Hasena"]),
    ("মরিয়ম", ["Mariam", "Moriom", "Maryam"]), ("শিরিন", ["Shirin", "Shireen"]),
    ("জান্নাতুল", ["Jannatul", "Zannatul"]), ("সুমাইয়া", ["Sumaiya", "Sumaia"]),
    ("নূরজাহান", ["Nurjahan", "Noorjahan"]), ("কোহিনূর", ["Kohinur", "Kohinoor"]),
    ("জাহানারা", ["Jahanara", "Jahanera"]), ("আনোয়ারা", ["Anowara", "Anwara"]),
    ("মাহমুদা", ["Mahmuda", "Mahmooda"]), ("ফারহানা", ["Farhana", "Farhanah"]),
    ("শারমিন", ["Sharmin", "Sharmeen"]), ("সাবিনা", ["Sabina", "Shabina"]),
    ("রহিমা", ["Rahima", "Rohima"]), ("খাদিজা", ["Khadija", "Khadiza"]),
    ("মমতাজ", ["Momtaz", "Mumtaz"]), ("শেফালী", ["Shefali", "Sefali"]),
    ("হালিমা", ["Halima", "Halema"]), ("রেহানা", ["Rehana", "Rehena"]),
    ("সেলিনা", ["Selina", "Shelina"]), ("মনোয়ারা", ["Monowara", "Monoara"]),
    ("বিলকিস", ["Bilkis", "Bilkish"]), ("রাবেয়া", ["Rabeya", "Rabeia"]),
    ("লিপি", ["Lipi", "Lipy"]), ("মুক্তা", ["Mukta", "Mukhta"]),
    ("শাপলা", ["Shapla", "Sapla"]), ("আঞ্জুমান", ["Anjuman", "Anzuman"]),
    ("লক্ষ্মী", ["Lakshmi", "Laxmi"]), ("সীমা", ["Sima", "Seema"]),
    ("পূর্ণিমা", ["Purnima", "Poornima"]), ("শিখা", ["Shikha", "Sikha"]),
]
FEMALE_SURNAME = [
    ("বেগম", ["Begum", "Begom", "Bagum"]), ("খাতুন", ["Khatun", "Khatoon"]),
    ("আক্তার", ["Akter", "Akhter", "Aktar"]), ("সুলতানা", ["Sultana", "Sultanah"]),
    ("ইসলাম", ["Islam"]), ("নেছা", ["Nesa", "Nessa"]), ("বিবি", ["Bibi", "Beebi"]),
    ("রানী", ["Rani", "Ranee"]),
]
MALE = [
    ("করিম", ["Karim", "Kareem"]), ("রহিম", ["Rahim", "Rohim"]),
    ("রহমান", ["Rahman", "Rohman"]), ("হোসেন", ["Hossain", "Hossen", "Hussain"]),
    ("আলী", ["Ali", "Aly"]), ("উদ্দিন", ["Uddin", "Uddeen"]), ("মিয়া", ["Mia", "Miah"]),
    ("জামাল", ["Jamal", "Zamal"]), ("কামাল", ["Kamal", "Komol"]),
    ("রফিক", ["Rafiq", "Rafik"]), ("শফিকুল", ["Shafiqul", "Shafikul"]),
    ("আমিনুল", ["Aminul", "Amenul"]), ("নজরুল", ["Nazrul", "Nojrul"]),
    ("মিজানুর", ["Mizanur", "Mijanur"]), ("হাবিবুর", ["Habibur", "Habibor"]),
    ("মাহবুব", ["Mahbub", "Mahboob"]), ("আনোয়ার", ["Anwar", "Anowar"]),
    ("জাহাঙ্গীর", ["Jahangir", "Jahangeer"]), ("আলমগীর", ["Alamgir", "Alomgir"]),
    ("সাইফুল", ["Saiful", "Shaiful"]), ("মনির", ["Monir", "Manir"]),
    ("বাবুল", ["Babul", "Babool"]), ("দেলোয়ার", ["Delowar", "Delwar"]),
    ("হারুন", ["Harun", "Haroon"]), ("মোস্তফা", ["Mostafa", "Mustafa"]),
    ("রাজ্জাক", ["Razzak", "Rajjak"]), ("কুদ্দুস", ["Kuddus", "Quddus"]),
    ("জলিল", ["Jalil", "Zalil"]), ("সাত্তার", ["Sattar", "Shattar"]),
    ("গফুর", ["Gafur", "Gofur"]), ("আব্দুল", ["Abdul", "Abdool"]),
]
CHILD = [
    ("তানভীর", ["Tanvir", "Tanveer"]), ("সাকিব", ["Sakib", "Shakib"]),
    ("আরিফ", ["Arif", "Aref"]), ("রাফি", ["Rafi", "Rafee"]), ("নুসরাত", ["Nusrat", "Nushrat"]),
    ("তাসনিম", ["Tasnim", "Tasneem"]), ("মীম", ["Mim", "Meem"]),
    ("জান্নাত", ["Jannat", "Zannat"]), ("আফরোজা", ["Afroza", "Afruza"]),
    ("ইমরান", ["Imran", "Emran"]), ("হৃদয়", ["Hridoy", "Ridoy"]),
    ("সিয়াম", ["Siam", "Siyam"]), ("রিয়া", ["Ria", "Riya"]), ("নাঈম", ["Naim", "Nayeem"]),
    ("আবির", ["Abir", "Abeer"]), ("সুমি", ["Sumi", "Shumi"]), ("রাকিব", ["Rakib", "Rakeeb"]),
]
VILLAGES = [
    ("চর কুকরি", ["Char Kukri"]), ("বাবুর্চি", ["Baburchi"]), ("মোল্লাপাড়া", ["Mollapara"]),
    ("উত্তর পাড়া", ["Uttar Para", "Uttarpara"]), ("দক্ষিণ পাড়া", ["Dakshin Para"]),
    ("হাতিবান্ধা", ["Hatibandha"]), ("কালিকাপুর", ["Kalikapur"]), ("রামপুর", ["Rampur"]),
    ("শিবপুর", ["Shibpur", "Sibpur"]), ("গোপালপুর", ["Gopalpur"]), ("কাশিপুর", ["Kashipur"]),
    ("মধুপুর", ["Madhupur", "Modhupur"]), ("সোনাপুর", ["Sonapur"]), ("চাঁদপুর", ["Chandpur"]),
    ("ফুলবাড়ী", ["Fulbari", "Phulbari"]), ("বেলতলী", ["Beltoli", "Beltali"]),
    ("কাঞ্চনপুর", ["Kanchanpur"]), ("ভবানীপুর", ["Bhabanipur", "Vabanipur"]),
]
UNIONS = [f"OuUnion{i:04d}" for i in range(12)]


def _pick(rng: random.Random, names: list[tuple[str, list[str]]]) -> tuple[str, str]:
    bn, latin = rng.choice(names)
    return bn, rng.choice(latin)


def person(rng: random.Random, *, child: bool | None = None,
           today: date = date(2025, 6, 1)) -> dict[str, str]:
    """One synthetic registration, code → value: a pregnant woman or an under-5 child."""
    child = rng.random() < 0.5 if child is None else child
    if child:
        g = _pick(rng, CHILD)
        bn, en = [g[0]], [g[1]]
        rel_first, rel_last = _pick(rng, FEMALE), _pick(rng, FEMALE_SURNAME)
        rel = rng.choice([f"{rel_first[0]} {rel_last[0]}", f"{rel_first[1]} {rel_last[1]}"])
        dob = today - timedelta(days=rng.randrange(0, 5 * 365))
        sex = rng.choice("MF")
    else:
        g, s = _pick(rng, FEMALE), _pick(rng, FEMALE_SURNAME)
        bn, en = [g[0], s[0]], [g[1], s[1]]
        m1, m2 = _pick(rng, MALE), _pick(rng, MALE)
        md = rng.random() < 0.5
        rel = rng.choice([("মোঃ " if md else "") + f"{m1[0]} {m2[0]}",
                          ("Md. " if md else "") + f"{m1[1]} {m2[1]}"])
        dob = today - timedelta(days=rng.randrange(16 * 365, 40 * 365))
        sex = "F"
    v = _pick(rng, VILLAGES)
    out = {search.NAME_BN: " ".join(bn), search.RELATION: rel, search.SEX: sex,
           search.VILLAGE: rng.choice(v)}
    if rng.random() < 0.6:
        out[search.NAME_EN] = " ".join(en)
    if rng.random() < 0.8 or child:
        out[search.DOB] = dob.isoformat()
    else:
        out[search.AGE] = str((today - dob).days // 365)
    if rng.random() < 0.85:
        out[search.PHONE] = "01" + rng.choice("3456789") + "".join(
            rng.choice("0123456789") for _ in range(8))
    if child and rng.random() < 0.5:
        out[search.BRN] = "20" + "".join(rng.choice("0123456789") for _ in range(15))
    return out


def population(n: int, seed: int = 11) -> list[tuple[str, str, dict[str, Any]]]:
    """``n`` synthetic people as (te uid, org unit, code → value)."""
    rng = random.Random(seed)
    return [(f"TeSyn{i:06d}", rng.choice(UNIONS), person(rng)) for i in range(n)]
