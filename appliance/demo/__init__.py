"""Embedded demo data: DHIS2 metadata for Ramu Upazila and a national stand-in.

``national()`` is the whole country document (``data/national.json``, produced by
``python -m appliance.demo.generate``); ``hub()`` is what an upazila hub holds, cut by
``appliance.sync.subset.subset_for``, the rule sync applies to a real national pull. Both
return fresh objects on every call, so callers may mutate them. Data values:
``appliance.demo.values``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from ..sync.subset import subset_for

__all__ = [
    "CHCP_CLINIC_UID",
    "DEFAULT_CATEGORY_COMBO_UID",
    "DEFAULT_COC_UID",
    "DEMO_PASSWORDS",
    "DEMO_TOKENS",
    "RAMU_UHC_UID",
    "RAMU_UID",
    "ROOT_UID",
    "hub",
    "national",
]

# Every demo user logs in with DHIS2's traditional demo password.
DEMO_PASSWORDS: dict[str, str] = {
    "admin": "district",
    "chcp": "district",
    "dghs": "district",
    "statistician": "district",
    "hub-ramu": "district",
}

# Personal access tokens the national stand-in accepts. "d2pat_" + 32 characters + a
# 10-digit checksum, the shape of DHIS2 2.39+ tokens; the demo hub syncs with this one.
DEMO_TOKENS: dict[str, str] = {
    "hub-ramu": "d2pat_T5YX7rARLELXsaaAb5vjaumfY6EhCdeQ0185879662",
}

# Stable UIDs (hash-derived in catalog.py; tests check they match the document).
ROOT_UID = "Mkf14iERu03"  # Bangladesh
RAMU_UID = "iAnkU6x2dwu"  # Ramu Upazila, Cox's Bazar, Chattogram
RAMU_UHC_UID = "J6zuoQIDX90"  # Ramu UHC
CHCP_CLINIC_UID = "KsEiTAp1p0I"  # Merongloa Community Clinic (the chcp user's)
DEFAULT_CATEGORY_COMBO_UID = "bjDvmb4bfuf"
DEFAULT_COC_UID = "HllvX50cXC0"

Doc = dict[str, Any]


@lru_cache(maxsize=1)
def _national_text() -> str:
    return (resources.files(__name__) / "data" / "national.json").read_text(encoding="utf-8")


@lru_cache(maxsize=8)
def _hub_text(root_uid: str) -> str:
    return json.dumps(subset_for(json.loads(_national_text()), root_uid))


def national() -> Doc:
    """The national stand-in's whole metadata document (a fresh copy)."""
    # Caching the text and parsing per call is cheaper than deepcopy and never aliased.
    return json.loads(_national_text())  # type: ignore[no-any-return]


def hub(root_uid: str = RAMU_UID) -> Doc:
    """The metadata a hub serving ``root_uid`` holds (a fresh copy)."""
    return json.loads(_hub_text(root_uid))  # type: ignore[no-any-return]
