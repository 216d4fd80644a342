"""Deterministic demo persons for the individual registers (DHIS2 tracker).

``people(clinic_uid, n, seed)`` gives ``n`` persons as ``{attribute code: value}`` over the
Person type's attributes (BD_NAME_BN, BD_NAME_EN, BD_RELATION_NAME, BD_DOB, BD_AGE_YEARS,
BD_SEX, BD_PHONE, BD_BRN, BD_VILLAGE). Names are common Bangladeshi names written in
Bangla with one of their usual English spellings (Fatema/Fatima, Md./Mohammad/Muhammad,
Rokeya/Rokeia): the registers hold both, and search has to cope with the variation.
The same arguments always give the same persons. ``history.py`` builds the registers'
enrollments and visits on top of these.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = [
    "BRN_PREFIX",
    "FEMALE",
    "MALE",
    "REFERENCE_DATE",
    "SPELLINGS",
    "Name",
    "people",
    "person",
]

# "Today" for the demo's history: due and overdue visits are relative to it.
REFERENCE_DATE = date(2026, 11, 15)
BRN_PREFIX = "BRN-"  # the BD_BRN TextPattern: "BRN-" + SEQUENTIAL(#########)
BRN_DIGITS = 9


@dataclass(frozen=True)
class Name:
    """One name token in Bangla and its English spellings (the first is the usual one)."""

    bn: str
    en: tuple[str, ...]


def _n(bn: str, *en: str) -> Name:
    return Name(bn, en)


# Given names. Multi-word names are one token per word on both sides.
FEMALE: list[tuple[Name, ...]] = [(n,) for n in [
    _n("ফাতেমা", "Fatema", "Fatima"), _n("রোকেয়া", "Rokeya", "Rokeia"),
    _n("নাসরিন", "Nasrin", "Nasreen"), _n("শিরিন", "Shirin", "Shireen"), _n("সালমা", "Salma"),
    _n("রহিমা", "Rahima", "Rohima"), _n("জেসমিন", "Jesmin", "Jasmin", "Jasmine"),
    _n("শাহনাজ", "Shahnaz"), _n("রিনা", "Rina"), _n("তাসলিমা", "Taslima", "Tasleema"),
    _n("মোর্শেদা", "Morsheda", "Murshida"), _n("পারভীন", "Parvin", "Parveen"),
    _n("শারমিন", "Sharmin"), _n("নাজমা", "Nazma", "Najma"), _n("হালিমা", "Halima"),
    _n("আয়েশা", "Ayesha", "Aysha", "Aisha"), _n("খাদিজা", "Khadija", "Khadiza"),
    _n("সুমাইয়া", "Sumaiya", "Sumaya"), _n("তানিয়া", "Tania", "Taniya"), _n("মিতু", "Mitu"),
    _n("আমেনা", "Amena", "Amina"), _n("সাবিনা", "Sabina"), _n("রুমানা", "Rumana"),
    _n("শামীমা", "Shamima"), _n("কুলসুম", "Kulsum", "Kulsoom"),
    _n("মরিয়ম", "Moriom", "Mariam", "Maryam"), _n("জাহানারা", "Jahanara"),
    _n("আসমা", "Asma"), _n("রাশিদা", "Rashida", "Rasheda"),
    _n("নূরজাহান", "Nurjahan", "Noorjahan"), _n("লাকি", "Lucky", "Laki"),
    _n("মৌসুমী", "Mousumi", "Moushumi"), _n("শিউলি", "Shiuli", "Shewli"),
]] + [
    (_n("হোসনে", "Hosne"), _n("আরা", "Ara")), (_n("নুসরাত", "Nusrat"), _n("জাহান", "Jahan")),
    (_n("জান্নাতুল", "Jannatul"), _n("ফেরদৌস", "Ferdous", "Ferdaus")),
]
MALE: list[tuple[Name, ...]] = [(n,) for n in [
    _n("রহিম", "Rahim", "Rohim"), _n("করিম", "Karim", "Korim"), _n("জামাল", "Jamal"),
    _n("কামাল", "Kamal"), _n("রফিক", "Rafiq", "Rafique", "Rofik"), _n("শফিক", "Shafiq",
                                                                       "Shafique"),
    _n("হাসান", "Hasan", "Hassan"), _n("জাহাঙ্গীর", "Jahangir"), _n("শহিদুল", "Shahidul"),
    _n("আনোয়ার", "Anwar", "Anowar"), _n("বেলাল", "Belal", "Bellal"),
    _n("ফারুক", "Faruk", "Faruque", "Farook"), _n("হারুন", "Harun", "Haroon"),
    _n("জসিম", "Jashim", "Jasim"), _n("মনির", "Monir", "Manir"), _n("নজরুল", "Nazrul"),
    _n("রাশেদ", "Rashed"), _n("সোহেল", "Sohel"), _n("সুমন", "Sumon", "Shumon"),
    _n("সাইফুল", "Saiful"), _n("ইউসুফ", "Yusuf", "Yousuf"), _n("ইব্রাহিম", "Ibrahim"),
    _n("ইসমাইল", "Ismail"), _n("জাকির", "Zakir", "Jakir"), _n("দেলোয়ার", "Delwar", "Delowar"),
    _n("হাবিব", "Habib"), _n("আমিনুল", "Aminul"), _n("রায়হান", "Rayhan", "Raihan"),
    _n("তানভীর", "Tanvir", "Tanveer"), _n("আরিফ", "Arif"), _n("সিয়াম", "Siam", "Shiam"),
]] + [
    (_n("আব্দুল", "Abdul"), _n("করিম", "Karim")),
    (_n("নুরুল", "Nurul", "Noorul"), _n("ইসলাম", "Islam")),
    (_n("আবুল", "Abul"), _n("কাশেম", "Kashem", "Kasem", "Quasem")),
    (_n("মিজানুর", "Mizanur"), _n("রহমান", "Rahman", "Rahaman")),
    (_n("রুহুল", "Ruhul"), _n("আমিন", "Amin")),
]
# Buddhist and Hindu names: Ramu and the hill districts have Barua and Hindu communities.
FEMALE_OTHER = [_n("মিতালী", "Mitali"), _n("শেফালী", "Shefali", "Sefali"),
                _n("অঞ্জনা", "Anjana"), _n("প্রিয়াঙ্কা", "Priyanka")]
MALE_OTHER = [_n("সুজন", "Sujan", "Shujan"), _n("রতন", "Ratan", "Roton"),
              _n("প্রদীপ", "Pradip", "Prodip"), _n("বিপ্লব", "Biplob", "Biplab")]
SURNAME_OTHER = [_n("বড়ুয়া", "Barua", "Baruah"), _n("দে", "Dey", "De"), _n("দাশ", "Das", "Dash")]
RANI = _n("রাণী", "Rani")

# Women's titles and men's family names; Mst./Md. are written before the given name.
FEMALE_TITLE = [_n("বেগম", "Begum", "Begam"), _n("খাতুন", "Khatun", "Khatoon"),
                _n("আক্তার", "Akter", "Akhter", "Aktar"), _n("বিবি", "Bibi"),
                _n("নেছা", "Nesa", "Nessa")]
MALE_SURNAME = [_n("উদ্দিন", "Uddin", "Uddeen"), _n("হোসেন", "Hossain", "Hossen", "Hussain"),
                _n("ইসলাম", "Islam"), _n("রহমান", "Rahman"), _n("আলম", "Alam"),
                _n("মিয়া", "Miah", "Mia"), _n("শেখ", "Sheikh", "Shekh"),
                _n("চৌধুরী", "Chowdhury", "Choudhury"), _n("সরকার", "Sarker", "Sarkar"),
                _n("তালুকদার", "Talukder", "Talukdar"), _n("ভূঁইয়া", "Bhuiyan", "Bhuyan")]
MST = _n("মোছাঃ", "Mst.", "Most.", "Mosammat")
MD = _n("মোঃ", "Md.", "Mohammad", "Muhammad", "Mohammed")

# Bangla token -> its accepted English spellings (tests check every pair against it).
SPELLINGS: dict[str, set[str]] = {}
for _name in [*(t for g in FEMALE + MALE for t in g), *FEMALE_OTHER, *MALE_OTHER,
              *SURNAME_OTHER, RANI, *FEMALE_TITLE, *MALE_SURNAME, MST, MD]:
    SPELLINGS.setdefault(_name.bn, set()).update(_name.en)

# Plausible para (hamlet) names; villages are "<clinic village>", "<village> <para>".
PARAS = ["Uttarpara", "Dakshinpara", "Purbapara", "Paschimpara", "Majhpara", "Mollapara",
         "Sikderpara", "Munshipara", "Khanpara", "Hajipara", "Baruapara", "Chowdhurypara"]
GENERIC_VILLAGES = ["Noapara", "Kazipara", "Char Para", "Boro Bil", "Notun Bazar",
                    "Purba Para", "Madhyam Para"]
_OPERATORS = ["013", "014", "015", "016", "017", "018", "019"]
_OPERATOR_WEIGHTS = [12, 6, 3, 8, 30, 22, 19]  # roughly the operators' market shares


def _rng(*parts: object) -> random.Random:
    return random.Random("\x1f".join(str(p) for p in parts))


def _spell(rng: random.Random, name: Name) -> str:
    # Mostly the usual spelling; registers written by different hands vary.
    return name.en[0] if len(name.en) == 1 or rng.random() < 0.7 else rng.choice(name.en[1:])


def _join(rng: random.Random, tokens: Sequence[Name]) -> tuple[str, str]:
    return " ".join(t.bn for t in tokens), " ".join(_spell(rng, t) for t in tokens)


def full_name(rng: random.Random, sex: str, *, child: bool = False) -> tuple[str, str]:
    """A (Bangla, English) full name for a "FEMALE" or "MALE" person."""
    other = rng.random() < 0.08  # Buddhist or Hindu family
    tokens: list[Name]
    if sex == "FEMALE":
        if other:
            tokens = [rng.choice(FEMALE_OTHER), RANI if rng.random() < 0.4
                      else rng.choice(SURNAME_OTHER)]
        else:
            tokens = [*rng.choice(FEMALE)]
            if len(tokens) == 1 or rng.random() < 0.3:
                tokens.append(rng.choice(FEMALE_TITLE))
            if not child and rng.random() < 0.3:
                tokens.insert(0, MST)
    elif other:
        tokens = [rng.choice(MALE_OTHER), rng.choice(SURNAME_OTHER)]
    else:
        tokens = [*rng.choice(MALE)]
        if len(tokens) == 1 or rng.random() < 0.3:
            tokens.append(rng.choice(MALE_SURNAME))
        if rng.random() < (0.35 if child else 0.55):
            tokens.insert(0, MD)
    return _join(rng, tokens)


def phone(rng: random.Random) -> str:
    """A Bangladeshi mobile number: 01[3-9] and eight digits."""
    op = rng.choices(_OPERATORS, _OPERATOR_WEIGHTS)[0]
    return op + "".join(rng.choice("0123456789") for _ in range(8))


def villages_for(clinic_name: str, union: str = "") -> list[str]:
    """Villages in a community clinic's catchment, from its name and union."""
    base = clinic_name.removesuffix(" Community Clinic").strip()
    picks = _rng("villages", base)
    out = [base, *(f"{base} {p}" for p in picks.sample(PARAS, 3))]
    if union and union not in base:
        out.append(union)
    return out


def years_between(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def person(rng: random.Random, kind: str, *, ref: date, villages: Sequence[str],
           brn: int | None = None, dob: date | None = None, sex: str | None = None,
           mother: dict[str, str] | None = None) -> dict[str, str]:
    """One person: ``kind`` "woman" (of reproductive age, with her husband's name) or
    "child" (born ``dob`` or within the last five years, with the mother's name)."""
    if kind == "woman":
        sex = "FEMALE"
        age_days = int(rng.triangular(16.5, 42, 24) * 365.25)
        dob = dob or ref - timedelta(days=age_days)
    else:
        sex = sex or rng.choice(["FEMALE", "MALE"])
        dob = dob or ref - timedelta(days=rng.randint(0, 5 * 365 - 1))
    bn, en = full_name(rng, sex, child=kind != "woman")
    village = mother["BD_VILLAGE"] if mother else rng.choice(list(villages) or GENERIC_VILLAGES)
    p = {"BD_NAME_BN": bn, "BD_NAME_EN": en, "BD_SEX": sex, "BD_VILLAGE": village}
    if kind == "woman":
        p["BD_RELATION_NAME"] = full_name(rng, "MALE")[1]  # husband
        p["BD_AGE_YEARS"] = str(years_between(dob, ref))
        if rng.random() < 0.75:  # many women know their age, not their date of birth
            p["BD_DOB"] = dob.isoformat()
    else:
        p["BD_DOB"] = dob.isoformat()
        p["BD_AGE_YEARS"] = str(years_between(dob, ref))
        p["BD_RELATION_NAME"] = mother["BD_NAME_EN"] if mother else full_name(rng, "FEMALE")[1]
    if mother and mother.get("BD_PHONE"):
        p["BD_PHONE"] = mother["BD_PHONE"]
    elif rng.random() < 0.88:
        p["BD_PHONE"] = phone(rng)
    if brn is not None:
        p["BD_BRN"] = f"{BRN_PREFIX}{brn:0{BRN_DIGITS}d}"
    return p


def people(clinic_uid: str, n: int, seed: int, *, kind: str = "woman",
           villages: Sequence[str] = (), ref: date = REFERENCE_DATE,
           first_brn: int | None = 1) -> list[dict[str, str]]:
    """``n`` persons of a clinic's catchment, the same for the same arguments.

    ``kind``: "woman" (16-42 years) or "child" (under five). When ``first_brn`` is set,
    about four in five get a BD_BRN issued in sequence from it, as reserved values are;
    callers generating several clinics pass on where the previous one stopped."""
    if kind not in ("woman", "child"):
        raise ValueError(f"kind must be 'woman' or 'child', not {kind!r}")
    rng = _rng("people", seed, clinic_uid, kind)
    out, nxt = [], first_brn
    for _ in range(n):
        brn = None
        if nxt is not None and rng.random() < 0.8:
            brn, nxt = nxt, nxt + 1
        out.append(person(rng, kind, ref=ref, villages=villages, brn=brn))
    return out
