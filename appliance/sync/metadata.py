"""Metadata pull for the hub's upazila subtree.

The rule for *what* a hub holds is ``appliance.sync.subset.subset_for`` (the demo hub is
cut from the national demo by the same function). A pull builds the national document as
far as the hub knows it (its stored metadata and users), overlays what national changed
since the metadata watermark (``filter=lastUpdated:ge:``, one call per collection, and
``/api/deletedObjects``), fetches objects the subset now references but the hub lacks
(``id:in:[...]``), cuts the subset and writes the difference. The first pull asks only
for the subtree (``path:like``) and what it references, never the whole country.

Users come down without passwords; a verifier is made at the user's first login (see
``upstream.py``). A user disabled at national is disabled here; a national user who left
the subtree is disabled. Hub-local accounts (unknown to national) are never touched.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import NationalRejected
from ..store.db import Tx
from ..store.metadata import delete_metadata, put_metadata, read_documents
from ..store.users import disable_national_user, read_user_documents, upsert_user
from ..store.wirebytes import METADATA
from .client import NationalClient
from .subset import subset_for

log = logging.getLogger(__name__)

Doc = dict[str, list[dict[str, Any]]]

# Collections a hub holds, in dependency order (users are kept in the users table).
META_TYPES = (
    "organisationUnitLevels", "organisationUnits", "organisationUnitGroups",
    "categoryOptions", "categories", "categoryCombos", "categoryOptionCombos",
    "optionSets", "options", "dataElements", "dataSets", "sections",
    "validationRules", "minMaxDataElements", "constants", "userRoles",
    # the registers (tracker): attributes before the types and programs that use them
    "trackedEntityAttributes", "trackedEntityTypes", "programStages", "programs",
    "programRuleVariables", "programRules", "programRuleActions", "relationshipTypes",
)
PULL_TYPES = (*META_TYPES, "users")
# small everywhere: the first pull takes them whole and filters here
WHOLE_ON_FIRST = ("organisationUnitLevels", "organisationUnitGroups", "constants",
                  "userRoles", "dataSets", "validationRules")
KLASS = {
    "OrganisationUnit": "organisationUnits", "OrganisationUnitLevel": "organisationUnitLevels",
    "OrganisationUnitGroup": "organisationUnitGroups", "CategoryOption": "categoryOptions",
    "Category": "categories", "CategoryCombo": "categoryCombos",
    "CategoryOptionCombo": "categoryOptionCombos", "OptionSet": "optionSets",
    "Option": "options", "DataElement": "dataElements", "DataSet": "dataSets",
    "Section": "sections", "ValidationRule": "validationRules",
    "MinMaxDataElement": "minMaxDataElements", "Constant": "constants",
    "UserRole": "userRoles", "User": "users", "Program": "programs",
    "ProgramStage": "programStages", "TrackedEntityType": "trackedEntityTypes",
    "TrackedEntityAttribute": "trackedEntityAttributes", "ProgramRule": "programRules",
    "ProgramRuleVariable": "programRuleVariables", "ProgramRuleAction": "programRuleActions",
    "RelationshipType": "relationshipTypes",
}
SECRET_USER_KEYS = ("password", "passwordLastUpdated", "twoFactorEnabled", "secret",
                    "restoreToken", "idToken", "openId", "ldapId")
ID_BATCH = 100
# Computed per request by DHIS2 (and by the hub's own index on load): never stored, never
# compared, so a server that includes them in ``:owner`` does not cause endless rewrites.
COMPUTED_KEYS = frozenset({"displayName", "displayShortName", "displayFormName",
                           "displayDescription", "access", "children", "ancestors", "leaf",
                           "href"})


def _ids(refs: Any) -> set[str]:
    return {r["id"] for r in refs or [] if isinstance(r, dict) and isinstance(r.get("id"), str)}


def _ref(obj: Any) -> str | None:
    return obj.get("id") if isinstance(obj, dict) else None


def strip_user(doc: dict[str, Any]) -> dict[str, Any]:
    """A user document without anything secret: the hub never holds national passwords."""
    out = {k: v for k, v in doc.items() if k not in SECRET_USER_KEYS}
    creds = out.get("userCredentials")
    if isinstance(creds, dict):
        out["userCredentials"] = {k: v for k, v in creds.items() if k not in SECRET_USER_KEYS}
    return out


def missing_refs(doc: Doc, root: str) -> dict[str, set[str]]:
    """Objects the subset references that ``doc`` lacks (pure): what to fetch next."""
    if not any(o.get("id") == root for o in doc.get("organisationUnits", [])):
        return {}
    sub = subset_for(doc, root)
    have = {t: {o["id"] for o in doc.get(t, [])} for t in PULL_TYPES}
    want: dict[str, set[str]] = {t: set() for t in PULL_TYPES}
    for ds in sub["dataSets"]:
        for dse in ds.get("dataSetElements") or []:
            if _ref(dse.get("dataElement")):
                want["dataElements"].add(dse["dataElement"]["id"])
            if _ref(dse.get("categoryCombo")):
                want["categoryCombos"].add(dse["categoryCombo"]["id"])
        if _ref(ds.get("categoryCombo")):
            want["categoryCombos"].add(ds["categoryCombo"]["id"])
        want["sections"] |= _ids(ds.get("sections"))
    for de in sub["dataElements"]:
        if _ref(de.get("categoryCombo")):
            want["categoryCombos"].add(de["categoryCombo"]["id"])
        for k in ("optionSet", "commentOptionSet"):
            if _ref(de.get(k)):
                want["optionSets"].add(de[k]["id"])
    for cc in sub["categoryCombos"]:
        want["categories"] |= _ids(cc.get("categories"))
        want["categoryOptionCombos"] |= _ids(cc.get("categoryOptionCombos"))
    for cat in sub["categories"]:
        want["categoryOptions"] |= _ids(cat.get("categoryOptions"))
    for coc in sub["categoryOptionCombos"]:
        want["categoryOptions"] |= _ids(coc.get("categoryOptions"))
    for os_ in sub["optionSets"]:
        want["options"] |= _ids(os_.get("options"))
    for u in sub["users"]:
        want["userRoles"] |= _ids(u.get("userRoles") or (u.get("userCredentials") or {}).get(
            "userRoles"))
    return {t: ids - have[t] for t, ids in want.items() if ids - have[t]}


@dataclass
class MetadataChanges:
    put: Doc = field(default_factory=dict)
    removed: dict[str, list[str]] = field(default_factory=dict)
    users: list[dict[str, Any]] = field(default_factory=list)
    users_gone: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return (sum(len(v) for v in self.put.values()) + sum(len(v) for v in self.removed.values())
                + len(self.users) + len(self.users_gone))


def clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in COMPUTED_KEYS}


def _canon(doc: dict[str, Any]) -> str:
    return json.dumps(clean(doc), sort_keys=True, separators=(",", ":"))


def diff(local: Doc, local_users: dict[str, dict[str, Any]], sub: dict[str, Any]) -> MetadataChanges:
    """What to write so that the store holds exactly ``sub`` (pure)."""
    ch = MetadataChanges()
    for t in META_TYPES:
        old = {o["id"]: o for o in local.get(t, [])}
        new = {o["id"]: o for o in sub.get(t, [])}
        changed = [clean(o) for uid, o in new.items()
                   if uid not in old or _canon(old[uid]) != _canon(o)]
        if changed:
            ch.put[t] = changed
        gone = sorted(set(old) - set(new))
        if gone:
            ch.removed[t] = gone
    kept = {u["id"] for u in sub.get("users", [])}
    for u in sub.get("users", []):
        old_u = local_users.get(u["id"])
        if old_u is None or _canon(old_u) != _canon(u):
            ch.users.append(u)
    ch.users_gone = sorted(uid for uid in local_users if uid not in kept)
    return ch


def read_local(conn: sqlite3.Connection) -> tuple[Doc, dict[str, dict[str, Any]], set[str]]:
    """The hub's metadata, its users by uid, and the uids of hub-local accounts."""
    doc = read_documents(conn)
    users, local_only = read_user_documents(conn)
    return doc, users, local_only


class MetadataPull:
    def __init__(self, client: NationalClient, root: str) -> None:
        self.client = client
        self.root = root
        self.calls = 0
        self.users_forbidden = False

    async def _get(self, type_: str, filters: Iterable[str]) -> list[dict[str, Any]]:
        self.calls += 1
        try:
            data = await self.client.get_json(f"/api/{type_}", {
                "fields": ":owner", "paging": "false", "filter": list(filters)},
                category=METADATA)
        except NationalRejected as e:
            if type_ == "users" and e.error_code == "403":
                # an account that may not list users still syncs data; users then only
                # arrive through first logins (upstream.py)
                self.users_forbidden = True
                return []
            raise
        items = data.get(type_) if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise NationalRejected(f"national's /api/{type_} reply has no `{type_}` list")
        return [o for o in items if isinstance(o, dict) and isinstance(o.get("id"), str)]

    async def _by_ids(self, type_: str, ids: set[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        ordered = sorted(ids)
        for i in range(0, len(ordered), ID_BATCH):
            batch = ordered[i:i + ID_BATCH]
            out += await self._get(type_, [f"id:in:[{','.join(batch)}]"])
        return out

    async def fetch(self, local: Doc, local_users: dict[str, dict[str, Any]],
                    since: str | None) -> tuple[Doc, dict[str, Any]]:
        """National's changes merged over what the hub has; returns (merged, subset)."""
        fetched: Doc = {t: [] for t in PULL_TYPES}
        deleted: dict[str, set[str]] = {}
        if since is None:
            subtree = await self._get("organisationUnits", [f"path:like:{self.root}"])
            root = next((o for o in subtree if o["id"] == self.root), None)
            if root is None:
                from ..errors import SyncError
                raise SyncError(f"national does not know org unit {self.root} (or our account "
                                "cannot see it): check [hub] org_unit")
            ancestors = {u for u in (root.get("path") or "").strip("/").split("/")
                         if u and u != self.root}
            fetched["organisationUnits"] = subtree + (
                await self._by_ids("organisationUnits", ancestors) if ancestors else [])
            for t in WHOLE_ON_FIRST:
                fetched[t] = await self._get(t, [])
            sub_ids = sorted({o["id"] for o in subtree})
            for i in range(0, len(sub_ids), ID_BATCH):
                ids = ",".join(sub_ids[i:i + ID_BATCH])
                fetched["users"] += await self._get("users", [f"organisationUnits.id:in:[{ids}]"])
                fetched["minMaxDataElements"] += await self._get(
                    "minMaxDataElements", [f"source.id:in:[{ids}]"])
        else:
            for t in PULL_TYPES:
                fetched[t] = await self._get(t, [f"lastUpdated:ge:{since}"])
            self.calls += 1
            data = await self.client.get_json("/api/deletedObjects", {
                "deletedAt": since, "paging": "false"}, category=METADATA)
            for d in (data.get("deletedObjects") if isinstance(data, dict) else None) or []:
                kind = KLASS.get(str(d.get("klass", "")).rsplit(".", 1)[-1])
                if kind and d.get("uid"):
                    deleted.setdefault(kind, set()).add(d["uid"])
        merged = merge(local, local_users, fetched, deleted)
        for _ in range(6):  # follow references until the subset is closed
            missing = missing_refs(merged, self.root)
            if not missing:
                break
            more: Doc = {t: await self._by_ids(t, ids) for t, ids in missing.items()}
            merged = merge(merged, {}, more, {})
        return merged, subset_for(merged, self.root)


def merge(base: Doc, users: dict[str, dict[str, Any]], fetched: Doc,
          deleted: dict[str, set[str]]) -> Doc:
    """``base`` overlaid by ``fetched`` (newer wins by id) minus ``deleted`` (pure)."""
    out: Doc = {}
    for t in PULL_TYPES:
        by_id = {o["id"]: o for o in base.get(t, [])}
        if t == "users":
            by_id.update(users)
        for o in fetched.get(t, []):
            by_id[o["id"]] = strip_user(o) if t == "users" else o
        for uid in deleted.get(t, ()):
            by_id.pop(uid, None)
        out[t] = list(by_id.values())
    return out


def write_changes(tx: Tx, ch: MetadataChanges, local_only: set[str], at: str) -> None:
    if ch.put:
        put_metadata(tx, ch.put)
    for t, uids in ch.removed.items():
        delete_metadata(tx, t, uids, at)
    for u in ch.users:
        upsert_user(tx, u)  # keeps the verifier; `disabled` comes from national's document
    for uid in ch.users_gone:
        if uid not in local_only:
            disable_national_user(tx, uid)
