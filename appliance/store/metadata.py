"""Metadata: stored as the DHIS2 JSON documents received, served from an in-memory index.

An upazila's metadata is small (hundreds to a few thousand objects), so every query
runs over the index in memory; SQLite is the durable copy. ``metadata_version`` in
``meta`` is bumped on each change so other processes know to reload.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .db import Tx

# Collections the hub stores and serves, in dependency order.
TYPES = (
    "organisationUnitLevels", "organisationUnits", "organisationUnitGroups",
    "categoryOptions", "categories", "categoryCombos", "categoryOptionCombos",
    "optionSets", "options", "dataElements", "dataSets", "sections",
    "validationRules", "minMaxDataElements", "constants", "userRoles", "users",
    "programs", "programStages", "trackedEntityTypes", "trackedEntityAttributes",
    "programRuleVariables", "programRules", "programRuleActions", "relationshipTypes",
)


def _ref(obj: Mapping[str, Any] | None) -> str | None:
    return obj.get("id") if isinstance(obj, Mapping) else None


@dataclass
class MetadataIndex:
    """Read-only view of all metadata, with the lookups imports and queries need."""

    by_type: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    by_uid: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 0

    def __post_init__(self) -> None:
        self.type_of: dict[str, str] = {}
        for t, docs in self.by_type.items():
            for d in docs:
                self.by_uid[d["id"]] = d
                self.type_of[d["id"]] = t
        self.combo_cocs: dict[str, set[str]] = {}
        for coc in self.list("categoryOptionCombos"):
            cc = _ref(coc.get("categoryCombo"))
            if cc:
                self.combo_cocs.setdefault(cc, set()).add(coc["id"])
        for combo in self.list("categoryCombos"):
            for ref in combo.get("categoryOptionCombos") or []:
                self.combo_cocs.setdefault(combo["id"], set()).add(ref["id"])
        self.default_combo = next((c["id"] for c in self.list("categoryCombos")
                                   if c.get("isDefault") or c.get("name") == "default"), None)
        self.default_coc = next(iter(sorted(self.combo_cocs.get(self.default_combo or "", ()))),
                                None)
        self.ds_elements: dict[str, set[str]] = {}
        self.de_datasets: dict[str, list[str]] = {}
        self.ou_datasets: dict[str, set[str]] = {}
        # a data set element may override its element's combo for that data set
        de_combos: dict[str, set[str]] = {}
        for ds in self.list("dataSets"):
            des = {_ref(e.get("dataElement")) for e in ds.get("dataSetElements") or []}
            des.discard(None)
            self.ds_elements[ds["id"]] = des  # type: ignore[assignment]
            for de in des:
                self.de_datasets.setdefault(de, []).append(ds["id"])  # type: ignore[arg-type]
            for e in ds.get("dataSetElements") or []:
                de, cc = _ref(e.get("dataElement")), _ref(e.get("categoryCombo"))
                if de and cc:
                    de_combos.setdefault(de, set()).add(cc)
            for ou in ds.get("organisationUnits") or []:
                self.ou_datasets.setdefault(ou["id"], set()).add(ds["id"])
        self._key_sets(de_combos)
        for ou in self.list("organisationUnits"):
            for ref in ou.get("dataSets") or []:
                self.ou_datasets.setdefault(ou["id"], set()).add(ref["id"])
        self.option_codes: dict[str, set[str]] = {}
        for os_ in self.list("optionSets"):
            codes = set()
            for ref in os_.get("options") or []:
                opt = self.by_uid.get(ref["id"], ref)
                if opt.get("code") is not None:
                    codes.add(opt["code"])
            self.option_codes[os_["id"]] = codes
        for opt in self.list("options"):
            osid = _ref(opt.get("optionSet"))
            if osid and opt.get("code") is not None:
                self.option_codes.setdefault(osid, set()).add(opt["code"])
        self.minmax: dict[tuple[str, str, str], tuple[float | None, float | None]] = {}
        for mm in self.list("minMaxDataElements"):
            key = (_ref(mm.get("source")), _ref(mm.get("dataElement")), _ref(mm.get("optionCombo")))
            if all(key):
                self.minmax[key] = (mm.get("min"), mm.get("max"))  # type: ignore[index]
        self.children: dict[str, list[str]] = {}
        for ou in self.list("organisationUnits"):
            parent = _ref(ou.get("parent"))
            if parent:
                self.children.setdefault(parent, []).append(ou["id"])

    def _key_sets(self, de_combos: dict[str, set[str]]) -> None:
        """What strict imports check each key against, as sets built once per index (an
        import then pays one look-up per value):

        * ``de_coc_set``: the COCs of each data element's category combo and of the combos
          its data set elements override it with (dhis2-core ``getCategoryOptionCombos``);
        * ``ds_aocs``/``de_aocs``: the AOCs of a data set's category combo (the default one
          when it names none), and their union over a data element's data sets
          (``getDataSetCategoryOptionCombos``);
        * ``ds_period_type``/``de_period_types``: likewise for period types.
        """
        default = self.default_combo or ""
        empty: frozenset[str] = frozenset()
        self.de_coc_set: dict[str, frozenset[str]] = {}
        for doc in self.list("dataElements"):
            combos = {_ref(doc.get("categoryCombo")) or default, *de_combos.get(doc["id"], ())}
            self.de_coc_set[doc["id"]] = frozenset().union(
                *(self.combo_cocs.get(cc, empty) for cc in combos))
        self.ds_aocs: dict[str, frozenset[str]] = {}
        self.ds_period_type: dict[str, str] = {}
        for ds in self.list("dataSets"):
            cc = _ref(ds.get("categoryCombo")) or default
            self.ds_aocs[ds["id"]] = frozenset(self.combo_cocs.get(cc, empty))
            self.ds_period_type[ds["id"]] = ds.get("periodType") or ""
        self.de_aocs: dict[str, frozenset[str]] = {}
        self.de_period_types: dict[str, frozenset[str]] = {}
        for de_uid, sets in self.de_datasets.items():
            self.de_aocs[de_uid] = frozenset().union(*(self.ds_aocs[ds] for ds in sets))
            self.de_period_types[de_uid] = frozenset(self.ds_period_type[ds] for ds in sets)

    def list(self, type_: str) -> list[dict[str, Any]]:
        return self.by_type.get(type_, [])

    def get(self, uid: str) -> dict[str, Any] | None:
        return self.by_uid.get(uid)

    def get_typed(self, type_: str, uid: str) -> dict[str, Any] | None:
        return self.by_uid.get(uid) if self.type_of.get(uid) == type_ else None

    def path(self, ou: str) -> str:
        doc = self.get_typed("organisationUnits", ou)
        return (doc or {}).get("path") or ""

    def in_subtree(self, ou: str, roots: Iterable[str]) -> bool:
        path = self.path(ou)
        return bool(path) and any(f"/{r}/" in path + "/" for r in roots)

    def descendants(self, ou: str) -> builtins.list[str]:
        out, stack = [], [ou]
        while stack:
            cur = stack.pop()
            out.append(cur)
            stack.extend(self.children.get(cur, ()))
        return out

    def de_cocs(self, de: str) -> frozenset[str]:
        return self.de_coc_set.get(de, frozenset())


def load_index(conn: sqlite3.Connection) -> MetadataIndex:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for type_, doc in conn.execute("SELECT type, doc FROM metadata ORDER BY type, uid"):
        by_type.setdefault(type_, []).append(json.loads(doc))
    row = conn.execute("SELECT value FROM meta WHERE key='metadata_version'").fetchone()
    return MetadataIndex(by_type=by_type, version=int(row[0]) if row else 0)


def metadata_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key='metadata_version'").fetchone()
    return int(row[0]) if row else 0


def _bump(tx: Tx) -> None:
    tx.execute("INSERT INTO meta(key, value) VALUES ('metadata_version', '1') "
               "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")


def put_metadata(tx: Tx, docs: Mapping[str, Iterable[Mapping[str, Any]]]) -> int:
    """Insert or replace documents by (type, uid). Returns how many were written."""
    rows = []
    for type_, items in docs.items():
        for d in items:
            rows.append((type_, d["id"], d.get("code"), d.get("name") or d.get("displayName"),
                         d.get("path") if type_ == "organisationUnits" else None,
                         d.get("lastUpdated"), json.dumps(d, separators=(",", ":"))))
    tx.executemany(
        "INSERT INTO metadata(type, uid, code, name, path, last_updated, doc) VALUES (?,?,?,?,?,?,?) "
        "ON CONFLICT(type, uid) DO UPDATE SET code=excluded.code, name=excluded.name, "
        "path=excluded.path, last_updated=excluded.last_updated, doc=excluded.doc", rows)
    if rows:
        tx.executemany("DELETE FROM deleted_object WHERE type=? AND uid=?", [r[:2] for r in rows])
        _bump(tx)
    return len(rows)


def delete_metadata(tx: Tx, type_: str, uids: Iterable[str], at: str) -> int:
    n = 0
    for uid in uids:
        cur = tx.execute("DELETE FROM metadata WHERE type=? AND uid=?", (type_, uid))
        if cur.rowcount:
            n += 1
            tx.execute("INSERT OR REPLACE INTO deleted_object(type, uid, deleted_at) VALUES (?,?,?)",
                       (type_, uid, at))
    if n:
        _bump(tx)
    return n


def deleted_since(conn: sqlite3.Connection, since: str | None) -> list[tuple[str, str, str]]:
    """(type, uid, deleted_at) of metadata deleted at or after ``since`` (all if None)."""
    return [tuple(r) for r in conn.execute(  # type: ignore[misc]
        "SELECT type, uid, deleted_at FROM deleted_object WHERE (? IS NULL OR deleted_at >= ?) "
        "ORDER BY deleted_at", (since, since))]


def is_empty(conn: sqlite3.Connection) -> bool:
    """No metadata at all: a store never seeded or synced."""
    return conn.execute("SELECT 1 FROM metadata LIMIT 1").fetchone() is None


def org_unit_row(conn: sqlite3.Connection, uid: str) -> tuple[str | None, str | None, str] | None:
    """(name, path, doc JSON) of a stored organisation unit, or None if there is none."""
    row = conn.execute("SELECT name, path, doc FROM metadata WHERE type='organisationUnits' "
                       "AND uid=?", (uid,)).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def read_documents(conn: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    """Every stored document, by collection (in no particular order)."""
    doc: dict[str, list[dict[str, Any]]] = {}
    for type_, d in conn.execute("SELECT type, doc FROM metadata"):
        doc.setdefault(type_, []).append(json.loads(d))
    return doc


def known_uids(conn: sqlite3.Connection, type_: str, uids: list[Any]) -> set[str]:
    """Which of ``uids`` are stored in collection ``type_``."""
    return {r[0] for r in conn.execute(
        f"SELECT uid FROM metadata WHERE type=? AND uid IN ({','.join('?' * len(uids))})",
        (type_, *uids))}


# -- a metadata pull in progress (the sync worker's) ---------------------------------------------
def stage(tx: Tx, type_: str, docs: Iterable[Mapping[str, Any]]) -> int:
    """Keep a page of national's documents until the whole pull is in."""
    rows = [(type_, d["id"], json.dumps(d, separators=(",", ":"))) for d in docs]
    tx.executemany("INSERT INTO metadata_stage(type, uid, doc) VALUES (?,?,?) "
                   "ON CONFLICT(type, uid) DO UPDATE SET doc=excluded.doc", rows)
    return len(rows)


def stage_deleted(tx: Tx, type_: str, uids: Iterable[str]) -> None:
    """Objects national deleted (by ``/api/deletedObjects``): they leave at the apply."""
    tx.executemany("INSERT INTO metadata_stage(type, uid, doc) VALUES (?,?,NULL) "
                   "ON CONFLICT(type, uid) DO UPDATE SET doc=NULL",
                   [(type_, u) for u in uids])


def staged(conn: sqlite3.Connection, type_: str | None = None
           ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, set[str]]]:
    """What the pull in progress brought: (documents by collection, deleted uids by
    collection), of one collection or all."""
    docs: dict[str, list[dict[str, Any]]] = {}
    gone: dict[str, set[str]] = {}
    rows = conn.execute("SELECT type, uid, doc FROM metadata_stage WHERE ? IS NULL OR type=?",
                        (type_, type_))
    for t, uid, doc in rows:
        if doc is None:
            gone.setdefault(t, set()).add(uid)
        else:
            docs.setdefault(t, []).append(json.loads(doc))
    return docs, gone


def clear_stage(tx: Tx) -> None:
    tx.execute("DELETE FROM metadata_stage")
