"""Writes person_pairs.json: labelled pairs (a registration, a registered person) for
the duplicate check. Run from the repository root to regenerate (seeded: the same file).

Same person: the name in the other script or another Latin spelling, a typo, a missing
vowel, a title added or dropped, a new phone, a date of birth a few days off or an age
instead, the relation name in the other script. Different people: the same common name
in the same union (with another husband, birth date and phone), the same name and the
same common husband's name in another village, twins, siblings, a mother and her child.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from tests.store import persons as P

TODAY = date(2025, 6, 1)
Name = tuple[str, list[str]]


@dataclass(frozen=True)
class Who:
    given: Name
    surname: Name | None
    relation: tuple[Name, ...]  # husband's or mother's name words
    md: bool                     # the relation name starts Md./মোঃ
    village: Name
    dob: date
    phone: str | None
    brn: str | None
    sex: str
    child: bool


def _phone(rng: random.Random) -> str:
    return "01" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(8))


def who(rng: random.Random, child: bool) -> Who:
    if child:
        return Who(rng.choice(P.CHILD), None, (rng.choice(P.FEMALE), rng.choice(P.FEMALE_SURNAME)),
                   False, rng.choice(P.VILLAGES), TODAY - timedelta(days=rng.randrange(30, 1800)),
                   _phone(rng), "20" + "".join(rng.choice("0123456789") for _ in range(15))
                   if rng.random() < 0.4 else None, rng.choice("MF"), True)
    return Who(rng.choice(P.FEMALE), rng.choice(P.FEMALE_SURNAME),
               (rng.choice(P.MALE), rng.choice(P.MALE)), rng.random() < 0.5,
               rng.choice(P.VILLAGES), TODAY - timedelta(days=rng.randrange(6000, 14000)),
               _phone(rng) if rng.random() < 0.9 else None, None, "F", False)


def _words(names: tuple[Name, ...], script: str, rng: random.Random) -> str:
    return " ".join(n[0] if script == "bn" else rng.choice(n[1]) for n in names)


def render(w: Who, rng: random.Random, *, script: str | None = None, title: bool | None = None,
           age_only: bool = False, relation: bool = True) -> dict[str, str]:
    script = script or rng.choice(["bn", "en", "both"])
    name_parts = (w.given,) + ((w.surname,) if w.surname else ())
    out: dict[str, str] = {}
    title = rng.random() < 0.3 if title is None else title
    if script in ("bn", "both"):
        out[P.search.NAME_BN] = ("মোছাঃ " if title and not w.child else "") + _words(
            name_parts, "bn", rng)
    if script in ("en", "both"):
        out[P.search.NAME_EN] = ("Mst. " if title and not w.child else "") + _words(
            name_parts, "en", rng)
    if relation:
        rs = rng.choice(["bn", "en"])
        md = ("মোঃ " if rs == "bn" else "Md. ") if w.md else ""
        out[P.search.RELATION] = md + _words(w.relation, rs, rng)
    out[P.search.VILLAGE] = _words((w.village,), rng.choice(["bn", "en"]), rng)
    if age_only:
        out[P.search.AGE] = str((TODAY - w.dob).days // 365)
    else:
        out[P.search.DOB] = w.dob.isoformat()
    if w.phone:
        out[P.search.PHONE] = rng.choice([w.phone, "+88" + w.phone, w.phone[:5] + "-" + w.phone[5:]])
    if w.brn:
        out[P.search.BRN] = w.brn
    out[P.search.SEX] = w.sex
    return out


def _typo(s: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(s) - 1)
    op = rng.choice(["sub", "del", "dup", "swap"])
    if op == "sub":
        return s[:i] + rng.choice("abdeikmnorstu") + s[i + 1:]
    if op == "del":
        return s[:i] + s[i + 1:]
    if op == "dup":
        return s[:i] + s[i] + s[i:]
    return s[:i - 1] + s[i] + s[i - 1] + s[i + 1:]


def _drop_vowel(s: str, rng: random.Random) -> str:
    spots = [i for i, c in enumerate(s) if c in "aeiou" and i > 0 and s[i - 1] != " "]
    if not spots:
        return s
    i = rng.choice(spots)
    return s[:i] + s[i + 1:]


def same_person(rng: random.Random, kind: str) -> tuple[dict[str, str], dict[str, str]]:
    w = who(rng, child=rng.random() < 0.4)
    b = render(w, rng)
    if kind == "script":
        bs = "en" if P.search.NAME_BN in b and P.search.NAME_EN not in b else "bn"
        a = render(w, rng, script=bs)
    elif kind == "variant":
        a, b = render(w, rng, script="en"), render(w, rng, script="en")
    elif kind in ("typo", "missing_vowel"):
        a = render(w, rng, script="en")
        key = P.search.NAME_EN
        a[key] = (_typo if kind == "typo" else _drop_vowel)(a[key], rng)
    elif kind == "bangla_typo":
        a = render(w, rng, script="bn")
        a[P.search.NAME_BN] = _typo(a[P.search.NAME_BN], rng)
    elif kind == "new_phone":
        a = render(replace(w, phone=_phone(rng)), rng)
    elif kind == "dob_off":
        a = render(replace(w, dob=w.dob + timedelta(days=rng.choice([-5, -2, -1, 1, 3, 6]))),
                   rng)
    elif kind == "age_only":
        a = render(w, rng, age_only=True)
    elif kind == "no_relation":
        a = render(w, rng, relation=False)
    elif kind == "several":  # other script, a typo, a new phone and an age, all at once
        a = render(replace(w, phone=_phone(rng)), rng, script="en", age_only=True)
        a[P.search.NAME_EN] = _typo(a[P.search.NAME_EN], rng)
        b = render(w, rng, script="bn")
    else:
        raise ValueError(kind)
    return a, b


def different_people(rng: random.Random, kind: str) -> tuple[dict[str, str], dict[str, str]]:
    w = who(rng, child=kind in ("twin", "sibling"))
    other = who(rng, child=w.child)
    while other.given == w.given:  # twins and siblings have names of their own
        other = who(rng, child=w.child)
    if kind == "same_name":  # the same name, another woman of the same union
        o = replace(other, given=w.given, surname=w.surname)
    elif kind == "same_name_same_village":
        o = replace(other, given=w.given, surname=w.surname, village=w.village)
    elif kind == "same_name_same_husband_name":  # Md. Abdul Karim is everywhere
        o = replace(other, given=w.given, surname=w.surname, relation=w.relation, md=w.md)
    elif kind == "twin":
        o = replace(w, given=other.given, brn=other.brn, sex=other.sex)
    elif kind == "sibling":
        o = replace(w, given=other.given, brn=other.brn, sex=other.sex,
                    dob=w.dob - timedelta(days=rng.randrange(400, 1500)))
    elif kind == "mother_child":
        child = who(rng, child=True)
        o = replace(child, relation=(w.given, w.surname), village=w.village, phone=w.phone)
    elif kind == "same_name_same_village_age_only":
        o = replace(other, given=w.given, surname=w.surname, village=w.village, phone=None)
        return render(replace(w, phone=None), rng, age_only=True), render(o, rng, age_only=True)
    elif kind == "similar_name":
        o = replace(other, surname=w.surname, village=w.village)
    else:
        raise ValueError(kind)
    return render(w, rng), render(o, rng)


SAME = {"script": 30, "variant": 20, "typo": 20, "missing_vowel": 15, "bangla_typo": 10,
        "new_phone": 15, "dob_off": 10, "age_only": 10, "no_relation": 10, "several": 15}
DIFFERENT = {"same_name": 30, "same_name_same_village": 20, "same_name_same_husband_name": 15,
             "twin": 10, "sibling": 10, "mother_child": 10, "similar_name": 15,
             "same_name_same_village_age_only": 15}


def main() -> None:
    rng = random.Random(20250601)
    pairs = []
    for kind, n in SAME.items():
        for _ in range(n):
            a, b = same_person(rng, kind)
            pairs.append({"kind": kind, "same": True, "a": a, "b": b})
    for kind, n in DIFFERENT.items():
        for _ in range(n):
            a, b = different_people(rng, kind)
            pairs.append({"kind": kind, "same": False, "a": a, "b": b})
    out = Path(__file__).with_name("person_pairs.json")
    out.write_text(json.dumps({"today": TODAY.isoformat(), "pairs": pairs}, ensure_ascii=False,
                              indent=1) + "\n")
    print(f"{len(pairs)} pairs -> {out}")


if __name__ == "__main__":
    main()
