"""The natural keys of values and completions, and their one string encoding.

A value's key is (de, pe, ou, coc, aoc) and a completion's (ds, pe, ou, aoc). Where a key
must be one string (the audit log, sync rejections, push chunks) it is these parts
'|'-joined: UIDs and period ids never contain '|'. Only these functions encode and
decode it.
"""

from __future__ import annotations

from collections.abc import Sequence

DV_KEY = ("de", "pe", "ou", "coc", "aoc")
CR_KEY = ("ds", "pe", "ou", "aoc")


def key_str(key: Sequence[str]) -> str:
    """The one string form of a natural key."""
    return "|".join(key)


def split_key(key: str) -> tuple[str, ...]:
    """The parts of a key made by ``key_str``."""
    return tuple(key.split("|"))


def key_sql(entity: str, alias: str) -> str:
    """SQL for ``key_str`` of a row of ``entity`` (``datavalue`` or
    ``complete_registration``) under ``alias``, to join on keys stored as strings."""
    cols = DV_KEY if entity == "datavalue" else CR_KEY
    return "||'|'||".join(f"{alias}.{c}" for c in cols)
