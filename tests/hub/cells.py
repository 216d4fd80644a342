"""Handy keys from the demo metadata for tests: data sets, elements by value type, periods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from appliance import demo
from appliance.demo.catalog import DEFAULT_COC


def month(offset: int = 0, today: date | None = None) -> str:
    d = today or date.today()
    m = d.year * 12 + d.month - 1 + offset
    return f"{m // 12}{m % 12 + 1:02d}"


@dataclass(frozen=True)
class Cells:
    doc: dict[str, list[dict[str, Any]]]
    by_id: dict[str, dict[str, Any]]

    def ds(self, name_part: str) -> dict[str, Any]:
        return next(d for d in self.doc["dataSets"] if name_part in d["name"])

    @property
    def form1(self) -> dict[str, Any]:
        return self.ds("Form-1")

    @property
    def uhc_form(self) -> dict[str, Any]:
        return self.ds("UHC")

    @property
    def chcp_clinic(self) -> str:
        return demo.CHCP_CLINIC_UID

    @property
    def other_clinic(self) -> str:
        return next(o["id"] for o in self.form1["organisationUnits"] if o["id"] != self.chcp_clinic)

    @property
    def uhc(self) -> str:
        return self.uhc_form["organisationUnits"][0]["id"]

    def elements(self, ds: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        ds = ds or self.form1
        return [self.by_id[e["dataElement"]["id"]] for e in ds["dataSetElements"]]

    def element(self, value_type: str, ds: dict[str, Any] | None = None, *,
                options: bool | None = None, zero_significant: bool | None = None
                ) -> dict[str, Any]:
        for ds_ in ([ds] if ds else self.doc["dataSets"]):
            for de in self.elements(ds_):
                if de["valueType"] != value_type:
                    continue
                if options is not None and bool(de.get("optionSet")) != options:
                    continue
                if zero_significant is not None and \
                        bool(de.get("zeroIsSignificant")) != zero_significant:
                    continue
                return de
        raise LookupError(value_type)

    def ds_of(self, de: dict[str, Any]) -> dict[str, Any]:
        return next(d for d in self.doc["dataSets"]
                    if any(e["dataElement"]["id"] == de["id"] for e in d["dataSetElements"]))

    def cocs(self, de: dict[str, Any]) -> list[str]:
        return [c["id"] for c in self.by_id[de["categoryCombo"]["id"]]["categoryOptionCombos"]]

    @property
    def default_coc(self) -> str:
        return DEFAULT_COC

    def value(self, de: dict[str, Any], value: str, ou: str | None = None,
              pe: str | None = None, coc: str | None = None, **kw: Any) -> dict[str, Any]:
        return {"dataElement": de["id"], "period": pe or month(), "orgUnit": ou or self.chcp_clinic,
                "categoryOptionCombo": coc or self.cocs(de)[0], "value": value, **kw}


@cache
def cells() -> Cells:
    doc = demo.hub()
    by_id = {o["id"]: o for v in doc.values() if isinstance(v, list) for o in v
             if isinstance(o, dict) and "id" in o}
    return Cells(doc, by_id)
