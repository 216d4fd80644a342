"""Plausible monthly aggregate data values for a metadata document.

Works on the demo documents (magnitudes and relations come from ``catalog``, matched by
data element *code*) and falls back to generic values by value type for elements it
does not know, so it can also fill a real national pull.

Guarantees, so that a generated month imports cleanly and passes validation:
- every value matches its element's value type and option set;
- zeros appear only where ``zeroIsSignificant`` (DHIS2 would drop them otherwise);
- "subset" elements never exceed their parent (ANC4 <= ANC1, SBA <= deliveries...) and
  "sum" elements equal their parts, cell by cell; elements that others depend on are
  never randomly left blank, so no rule sees a missing right-hand side;
- the same (doc, period, org unit, data set, seed) gives the same values, whichever
  other org units or data sets are requested alongside (hub and national agree).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Iterable
from typing import Any

from . import catalog as c

Doc = dict[str, Any]
DataValue = dict[str, str]

PERIOD_RE = re.compile(r"^(\d{4})(0[1-9]|1[0-2])$")
SKIP_RATE = 0.05  # share of optional cells a CHCP leaves blank
COUNT_TYPES = {"INTEGER", "INTEGER_POSITIVE", "INTEGER_ZERO_OR_POSITIVE", "NUMBER"}

_WEIGHT = {name: w for _, _, opts in c.CATEGORIES.values() for name, _, w in opts}

_REMARKS = [
    "Routine month.",
    "Outreach session postponed due to heavy rain.",
    "CHCP attended a two-day training at the UHC.",
    "Drug supply arrived late; paracetamol was short for a week.",
    "Community Group meeting held with the UP member.",
    "Solar panel repaired.",
    "Satellite clinic held with FWV.",
    "Register pages running out; new registers requested.",
]


def _frac(*parts: str) -> float:
    d = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(d[:8], "big") / 2**64


def ou_factor(ou_uid: str) -> float:
    """Size of a facility's catchment relative to average (0.75-1.3), stable per UID."""
    return 0.75 + 0.55 * _frac("ou-size", ou_uid)


def season_factor(season: str | None, month: int | None) -> float:
    if season is None or month is None:
        return 1.0
    if season == "monsoon":  # malaria, fever, snake bite: June-September
        return 1.5 if 6 <= month <= 9 else 1.15 if month in (5, 10) else 0.7
    if season == "summer":  # diarrhoea: March-June
        return 1.4 if 3 <= month <= 6 else 0.85
    if season == "winter":  # respiratory infections: November-February
        return 1.4 if month in (11, 12, 1, 2) else 0.8
    return 1.0


def expected_total(code: str, month: int | None = None) -> float:
    """Expected monthly total of a catalog element for an average facility."""
    spec = c.ELEMENTS[code]
    if spec.parts:
        return sum(expected_total(p, month) for p in spec.parts)
    if spec.parent:
        return expected_total(spec.parent, month) * spec.frac
    if spec.range is not None:
        return (spec.range[0] + spec.range[1]) / 2
    return spec.mean * season_factor(spec.season, month)


def expected_cell_mean(code: str, option_names: Iterable[str], ou_uid: str,
                       month: int | None = None) -> float:
    """Expected value of one cell (element x category option combo) at one facility."""
    mu = expected_total(code, month) * ou_factor(ou_uid)
    for name in option_names:
        mu *= _WEIGHT.get(name, 1.0)
    return mu


# ------------------------------------------------------------------ sampling


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if n > 60:
        x = round(rng.gauss(n * p, math.sqrt(n * p * (1 - p))))
        return min(n, max(0, x))
    return sum(rng.random() < p for _ in range(n))


def _split(rng: random.Random, total: int, weights: list[float]) -> list[int]:
    """Multinomial split of ``total`` over cells with the given weights."""
    out, left, wleft = [], total, sum(weights)
    for w in weights[:-1]:
        k = _binomial(rng, left, w / wleft if wleft > 0 else 0)
        out.append(k)
        left -= k
        wleft -= w
    return [*out, left]


# -------------------------------------------------------------------- index


class _Index:
    """Lookups over one document, built once per call."""

    def __init__(self, doc: Doc) -> None:
        self.de = {d["id"]: d for d in doc.get("dataElements", [])}
        self.de_by_code = {d["code"]: d["id"] for d in self.de.values() if d.get("code")}
        opt_name = {o["id"]: o["name"] for o in doc.get("categoryOptions", [])}
        # An unknown option gets an even share of its category.
        opt_share: dict[str, float] = {}
        for cat in doc.get("categories", []):
            for o in cat.get("categoryOptions", []):
                opt_share[o["id"]] = 1.0 / max(1, len(cat["categoryOptions"]))
        coc = {x["id"]: x for x in doc.get("categoryOptionCombos", [])}
        # combo uid -> [(coc uid, weight)], in the combo's own order
        self.cocs: dict[str, list[tuple[str, float]]] = {}
        for combo in doc.get("categoryCombos", []):
            cells = []
            for ref in combo.get("categoryOptionCombos", []):
                w = 1.0
                for o in coc.get(ref["id"], {}).get("categoryOptions", []):
                    w *= _WEIGHT.get(opt_name.get(o["id"], ""), opt_share.get(o["id"], 1.0))
                cells.append((ref["id"], w))
            self.cocs[combo["id"]] = cells
        self.option_codes = {
            s["id"]: [o["code"] for o in sorted(
                (x for x in doc.get("options", []) if x.get("optionSet", {}).get("id") == s["id"]),
                key=lambda o: o.get("sortOrder", 0))]
            for s in doc.get("optionSets", [])
        }
        # Elements others depend on: never left blank at random.
        self.protected: set[str] = set()
        for spec in c.ELEMENTS.values():
            for code in (spec.parent, *spec.parts, spec.code if spec.parts else None):
                if code and code in self.de_by_code:
                    self.protected.add(self.de_by_code[code])

    def spec(self, de_uid: str) -> c.DE:
        de = self.de[de_uid]
        known = c.ELEMENTS.get(de.get("code", ""))
        if known is not None and known.value_type == de.get("valueType"):
            return known
        # Unknown element: a generic count of about 10 a month.
        return c.DE(de.get("code", de_uid), de.get("name", ""), value_type=de["valueType"],
                    mean=10.0, zero_sig=bool(de.get("zeroIsSignificant")))


class _Form:
    """Values of one data set at one org unit for one month."""

    def __init__(self, ix: _Index, ou: str, month: int, rng: random.Random) -> None:
        self.ix, self.ou, self.month, self.rng = ix, ou, month, rng
        self.counts: dict[str, dict[str, int]] = {}

    def cells(self, de_uid: str) -> list[tuple[str, float]]:
        return self.ix.cocs.get(self.ix.de[de_uid]["categoryCombo"]["id"], [])

    def count(self, de_uid: str) -> dict[str, int]:
        """Integer counts per COC, honouring parent/parts relations (memoised)."""
        if de_uid in self.counts:
            return self.counts[de_uid]
        spec, cells, rng = self.ix.spec(de_uid), self.cells(de_uid), self.rng
        by_code = self.ix.de_by_code
        out: dict[str, int]
        if spec.parts and all(p in by_code for p in spec.parts):
            parts = [self.count(by_code[p]) for p in spec.parts]
            out = {coc: sum(p.get(coc, 0) for p in parts) for coc, _ in cells}
        elif spec.parent and spec.parent in by_code:
            parent_uid = by_code[spec.parent]
            pc = self.count(parent_uid)
            if [x for x, _ in self.cells(parent_uid)] == [x for x, _ in cells]:
                out = {coc: _binomial(rng, pc[coc], spec.frac) for coc, _ in cells}
            elif cells:  # different disaggregation: derive the total, then split it
                total = _binomial(rng, sum(pc.values()), spec.frac)
                out = dict(zip([x for x, _ in cells],
                               _split(rng, total, [w for _, w in cells]), strict=True))
            else:
                out = {}
        elif spec.range is not None:  # bounded quantities (days open, staff in post)
            lo, hi = spec.range
            out = {coc: rng.randint(int(lo), int(hi)) for coc, _ in cells}
        else:
            # Month-to-month noise on top of Poisson: registers are lumpy.
            lam = (spec.mean * ou_factor(self.ou) * season_factor(spec.season, self.month)
                   * rng.lognormvariate(0, 0.15))
            out = {coc: _poisson(rng, lam * w) for coc, w in cells}
        if spec.cap is not None:
            out = {k: min(v, spec.cap) for k, v in out.items()}
        self.counts[de_uid] = out
        return out

    def value(self, spec: c.DE, de: dict[str, Any], coc: str, year: int) -> str | None:
        """One cell's value as DHIS2 stores it, or None for a blank cell."""
        rng, vt = self.rng, spec.value_type
        if de.get("optionSet"):
            codes = self.ix.option_codes.get(de["optionSet"]["id"], [])
            if not codes:
                return None
            weights = [0.7 / (3**i) for i in range(len(codes))]  # mostly the first option
            return rng.choices(codes, weights)[0]
        if vt in COUNT_TYPES and not (vt == "NUMBER" and spec.range):
            n = self.count(de["id"])[coc]
            if vt == "INTEGER_POSITIVE":
                n = max(1, n)
            return str(n)
        if vt == "PERCENTAGE":
            lo, hi = spec.range or (0, 100)
            return str(rng.randint(int(lo), int(hi)))
        if vt == "NUMBER":
            lo, hi = spec.range or (0, 100)
            return f"{rng.uniform(lo, hi):.1f}"
        if vt == "INTEGER_NEGATIVE":
            return str(-rng.randint(1, 20))
        if vt == "UNIT_INTERVAL":
            return f"{rng.random():.2f}"
        if vt == "BOOLEAN":
            return "true" if rng.random() < 0.9 else "false"
        if vt == "TRUE_ONLY":
            return "true" if rng.random() < 0.85 else None
        if vt == "DATE":
            return f"{year:04d}-{self.month:02d}-{rng.randint(1, 28):02d}"
        if vt in ("TEXT", "LONG_TEXT"):
            return rng.choice(_REMARKS) if rng.random() < 0.6 else None
        return None  # FILE_RESOURCE, COORDINATE...: not generated


def _form_values(ix: _Index, ds: dict[str, Any], ou: str, period: str, seed: int,
                 aoc: str) -> list[DataValue]:
    year, month = int(period[:4]), int(period[4:])
    # One stream per form: values do not depend on what else is generated.
    rng = random.Random(f"{seed}:{period}:{ou}:{ds['id']}")
    form = _Form(ix, ou, month, rng)
    de_uids = [d["dataElement"]["id"] for d in ds.get("dataSetElements", [])]
    cells = [(de, coc) for de in de_uids if de in ix.de for coc, _ in form.cells(de)]
    # A fixed share of the optional cells is left blank (not a coin per cell): every
    # form then carries a predictable number of values, as the bench sizes assume.
    optional = [cell for cell in cells if cell[0] not in ix.protected]
    blank = set(rng.sample(optional, round(SKIP_RATE * len(optional))))
    out: list[DataValue] = []
    for de_uid, coc in cells:
        de = ix.de[de_uid]
        value = form.value(ix.spec(de_uid), de, coc, year)
        if value is None or (de_uid, coc) in blank:
            continue
        if value in ("0", "0.0") and not de.get("zeroIsSignificant"):
            continue  # DHIS2 does not store insignificant zeros
        out.append({
            "dataElement": de_uid, "period": period, "orgUnit": ou,
            "categoryOptionCombo": coc, "attributeOptionCombo": aoc, "value": value,
        })
    return out


def _iter_forms(doc: Doc, period: str, org_units: list[str] | None,
                data_sets: list[str] | None, seed: int
                ) -> Iterable[tuple[str, str, list[DataValue]]]:
    if not PERIOD_RE.match(period):
        raise ValueError(f"not a monthly period (yyyyMM): {period!r}")
    ix = _Index(doc)
    ou_filter = set(org_units) if org_units is not None else None
    ds_filter = set(data_sets) if data_sets is not None else None
    seen: set[tuple[str, str, str]] = set()  # an element in two forms is stored once
    for ds in doc.get("dataSets", []):
        if ds_filter is not None and ds["id"] not in ds_filter:
            continue
        if ds.get("periodType", "Monthly") != "Monthly":
            continue
        aoc_cells = ix.cocs.get(ds.get("categoryCombo", {}).get("id", c.DEFAULT_COMBO), [])
        aoc = aoc_cells[0][0] if aoc_cells else c.DEFAULT_COC
        for ref in ds.get("organisationUnits", []):
            ou = ref["id"]
            if ou_filter is not None and ou not in ou_filter:
                continue
            values = []
            for v in _form_values(ix, ds, ou, period, seed, aoc):
                key = (v["dataElement"], v["orgUnit"], v["categoryOptionCombo"])
                if key not in seen:
                    seen.add(key)
                    values.append(v)
            yield ds["id"], ou, values


def month_values(doc: Doc, period: str, org_units: list[str] | None = None,
                 data_sets: list[str] | None = None, seed: int = 0) -> list[DataValue]:
    """Every value of one month for each assigned (data set, org unit) pair.

    ``org_units``/``data_sets`` restrict the output (default: everything assigned in
    ``doc``). Values are DHIS2 ``dataValues`` entries: dataElement, period, orgUnit,
    categoryOptionCombo, attributeOptionCombo, value.
    """
    return [v for _, _, vs in _iter_forms(doc, period, org_units, data_sets, seed) for v in vs]


def forms(doc: Doc, period: str, org_units: list[str] | None = None,
          data_sets: list[str] | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """The same values grouped as one ``/api/dataValueSets`` payload per form, i.e.
    ``{"dataSet", "period", "orgUnit", "dataValues": [...]}``: what a CHCP posts."""
    return [
        {"dataSet": ds, "period": period, "orgUnit": ou, "dataValues": vs}
        for ds, ou, vs in _iter_forms(doc, period, org_units, data_sets, seed)
    ]
