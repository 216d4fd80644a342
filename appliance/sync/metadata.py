"""Metadata pull for the hub's upazila subtree.

The rule for *what* a hub holds is ``appliance.sync.subset.subset_for`` (the demo hub is
cut from the national demo by the same function). A pull builds the national document as
far as the hub knows it (its stored metadata and users), overlays what national changed
since the metadata watermark (``filter=lastUpdated:ge:``, each collection in pages, and
``/api/deletedObjects``), fetches objects the subset now references but the hub lacks
(``id:in:[...]``), cuts the subset and writes the difference. The first pull asks only
for the subtree (``path:like``) and what it references, never the whole country.

The pages are kept as they come (``metadata_stage``) with the pull's progress, so a link
cut mid-pull resumes at the page it reached; nothing reaches the hub's forms, and the
watermark does not move, until every collection and page is in (``MetadataPull.run``).

Users come down without passwords; a verifier is made at the user's first login (see
``upstream.py``). A user disabled at national is disabled here; a national user who left
the subtree is disabled. Hub-local accounts (unknown to national) are never touched.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import NationalRejected, SyncError
from ..store import Store
from ..store.db import Tx
from ..store.metadata import (
    clear_stage,
    delete_metadata,
    put_metadata,
    read_documents,
    stage,
    stage_deleted,
    staged,
)
from ..store.synclog import set_state
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


# A pull is a *round*: a list of paged requests (steps), then rounds of fetching the
# references the subset lacks. Each page is staged (``metadata_stage``) together with the
# round's progress (``sync_state`` ``metadata_round``), so a cut resumes at the page it
# reached; the round is applied to ``metadata`` in one transaction, with the watermark,
# only when every step and page is in: a half-pulled set never reaches the forms.
ROUND_KEY = "metadata_round"
PAGE_SIZE = 250
CLOSURE_ROUNDS = 6
RESTARTS_MAX = 3  # a step whose list shrank under it starts again, at most this often


def _step(type_: str, filters: list[str], then: str | None = None) -> dict[str, Any]:
    return {"type": type_, "filters": filters, "page": 1, "total": None, "then": then,
            "restarts": 0}


def new_round(root: str, watermark: str | None, since: str | None, started: str,
              started_ms: int) -> dict[str, Any]:
    """The steps of a pull: since a watermark, every collection changed since and the
    deletions; the first time, the subtree (whose pages then name the rest) and the
    collections small enough to take whole."""
    if since is None:
        todo = [_step("organisationUnits", [f"path:like:{root}"], then="subtree"),
                *(_step(t, []) for t in WHOLE_ON_FIRST)]
    else:
        todo = [*(_step(t, [f"lastUpdated:ge:{since}"]) for t in PULL_TYPES),
                _step("deletedObjects", [])]
    return {"root": root, "watermark": watermark, "since": since, "started": started,
            "started_ms": started_ms, "todo": todo, "closure": 0, "asked": {},
            "users_forbidden": False}


def load_round(text: str | None, root: str, watermark: str | None) -> dict[str, Any] | None:
    """The round a cut left, if it is still the one to finish (same upazila, same
    watermark it started from)."""
    try:
        rnd = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(rnd, dict) or rnd.get("root") != root or \
            rnd.get("watermark") != watermark or not isinstance(rnd.get("todo"), list) or \
            not isinstance(rnd.get("started_ms"), int) or not isinstance(rnd.get("asked"), dict):
        return None
    return rnd


def _batches(type_: str, key: str, ids: Iterable[str]) -> list[dict[str, Any]]:
    ordered = sorted(ids)
    return [_step(type_, [f"{key}:in:[{','.join(ordered[i:i + ID_BATCH])}]"])
            for i in range(0, len(ordered), ID_BATCH)]


def subtree_steps(ous: list[dict[str, Any]], root: str) -> list[dict[str, Any]]:
    """After the subtree's pages: its ancestors, and the users and min-max values of its
    org units."""
    root_doc = next((o for o in ous if o["id"] == root), None)
    if root_doc is None:
        raise SyncError(f"national does not know org unit {root} (or our account cannot see "
                        "it): check [hub] org_unit")
    ancestors = {u for u in (root_doc.get("path") or "").strip("/").split("/")
                 if u and u != root}
    sub_ids = {o["id"] for o in ous}
    return [*_batches("organisationUnits", "id", ancestors),
            *_batches("users", "organisationUnits.id", sub_ids),
            *_batches("minMaxDataElements", "source.id", sub_ids)]


async def anything_changed(client: NationalClient, since: str) -> bool | None:
    """Whether national changed or deleted anything of the hub's collections since
    ``since``: two small requests instead of a page of each collection. DHIS2's metadata
    export applies a ``filter`` and ``fields`` to every type named; ``deletedObjects``
    with a page of one says whether there is any deletion. None: national would not
    answer the export (the account may lack F_METADATA_EXPORT), so ask each collection.
    A false positive (a deletion of something the hub does not hold) only costs the
    full delta pull."""
    params: dict[str, Any] = {"fields": "id", "filter": f"lastUpdated:ge:{since}",
                              **{t: "true" for t in PULL_TYPES}}
    try:
        data = await client.get_json("/api/metadata", params, category=METADATA)
    except NationalRejected as e:
        if e.error_code == "401":  # the account itself: the cycle must say so
            raise
        return None
    if not isinstance(data, dict) or not isinstance(data.get("system"), dict):
        return None  # not a metadata export: ask each collection
    if any(isinstance(data.get(t), list) and data[t] for t in PULL_TYPES):
        return True
    gone = await client.get_json("/api/deletedObjects", {"deletedAt": since, "pageSize": 1,
                                                         "fields": "uid"}, category=METADATA)
    items = gone.get("deletedObjects") if isinstance(gone, dict) else None
    return not isinstance(items, list) or bool(items)


@dataclass
class PullStats:
    requests: int = 0
    pages: int = 0
    objects: int = 0
    resumed: bool = False


class MetadataPull:
    def __init__(self, client: NationalClient, root: str, page_size: int = PAGE_SIZE, *,
                 fresh: bool = True) -> None:
        self.client = client
        self.root = root
        self.page_size = max(1, page_size)
        self.stats = PullStats(resumed=not fresh)
        # a new round: what an abandoned one staged goes at its first write
        self.fresh = fresh

    async def page(self, step: dict[str, Any], since: str | None
                   ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, bool]:
        """One page of a step: (its objects, the pager, whether users were forbidden)."""
        type_ = step["type"]
        params: dict[str, Any] = {"pageSize": self.page_size}
        if step["page"] > 1:
            params["page"] = step["page"]
        if type_ == "deletedObjects":
            params["deletedAt"] = since
        else:
            # a stable order, so the pages of one list do not overlap or skip
            params.update(fields=":owner", order="id:asc", filter=list(step["filters"]))
        self.stats.requests += 1
        try:
            data = await self.client.get_json(f"/api/{type_}", params, category=METADATA)
        except NationalRejected as e:
            if type_ == "users" and e.error_code == "403":
                # an account that may not list users still syncs data; users then only
                # arrive through first logins (upstream.py)
                return [], None, True
            raise
        items = data.get(type_) if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise NationalRejected(f"national's /api/{type_} reply has no `{type_}` list")
        pager = data.get("pager")
        self.stats.pages += 1
        if type_ == "deletedObjects":
            return [d for d in items if isinstance(d, dict)], \
                pager if isinstance(pager, dict) else None, False
        out = [o for o in items if isinstance(o, dict) and isinstance(o.get("id"), str)]
        if type_ == "users":
            out = [strip_user(o) for o in out]
        self.stats.objects += len(out)
        return out, pager if isinstance(pager, dict) else None, False

    async def run(self, store: Store, rnd: dict[str, Any], *, at: str,
                  done_state: dict[str, Any],
                  defer: Callable[[dict[str, Any]], None] | None = None) -> MetadataChanges:
        """Finish the round ``rnd`` (new, or as a cut left it): fetch and stage every page
        left, follow references, then apply it all with ``done_state`` (the watermark).
        A new round that brought nothing hands ``done_state`` to ``defer`` instead (the
        sync cycle's last transaction): an idle check costs the SD card no commit."""
        while True:
            await self._steps(store, rnd)
            local, local_users, local_only, fetched, deleted = await store.read(
                lambda c: _read_all(c, staged_too=not self.fresh))
            merged = merge(local, local_users, fetched, deleted)
            asked = {t: set(ids) for t, ids in rnd["asked"].items()}
            missing = {t: ids - asked.get(t, set())
                       for t, ids in missing_refs(merged, self.root).items()}
            missing = {t: ids for t, ids in missing.items() if ids}
            if not missing or rnd["closure"] >= CLOSURE_ROUNDS:
                break
            rnd["closure"] += 1  # follow references until the subset is closed
            for t, ids in missing.items():
                rnd["asked"][t] = sorted(asked.get(t, set()) | ids)
                rnd["todo"] += _batches(t, "id", ids)
        changes = diff(local, local_users, subset_for(merged, self.root))
        if defer is not None and self.fresh and not changes.count:
            defer({**done_state, ROUND_KEY: ""})  # nothing staged, nothing to apply
            return changes

        def write(tx: Tx) -> None:
            write_changes(tx, changes, local_only, at)
            clear_stage(tx)
            set_state(tx, {**done_state, ROUND_KEY: ""})
        await store.write(write)
        return changes

    async def _steps(self, store: Store, rnd: dict[str, Any]) -> None:
        """Fetch the round's pages left. A page that brings something is staged in one
        transaction with the round's progress; an empty one (most of a delta pull) only
        moves the progress in memory, so an idle pull costs the SD card no commit of its
        own, and a cut costs at most the empty pages since the last page staged."""
        while rnd["todo"]:
            step = rnd["todo"][0]
            items, pager, forbidden = await self.page(step, rnd["since"])
            total = pager.get("total") if pager else None
            count = pager.get("pageCount") if pager else None
            if isinstance(total, int) and isinstance(step["total"], int) and \
                    total < step["total"] and step["restarts"] < RESTARTS_MAX:
                # something left the list under us: the later pages moved up by as much,
                # and what crossed into the pages already read would be missed
                step.update(page=1, total=None, restarts=step["restarts"] + 1)
                continue
            last = forbidden or not isinstance(count, int) or step["page"] >= count
            if forbidden:
                rnd["users_forbidden"] = True
            if last:
                rnd["todo"].pop(0)
            else:
                step.update(page=step["page"] + 1, total=total)
            expand = last and step["then"] == "subtree"
            if not items and not expand:
                continue

            def write(tx: Tx, step: dict[str, Any] = step, items: list[Any] = items,
                      expand: bool = expand) -> None:
                if self.fresh:
                    clear_stage(tx)
                if step["type"] == "deletedObjects":
                    gone: dict[str, list[str]] = {}
                    for d in items:
                        kind = KLASS.get(str(d.get("klass", "")).rsplit(".", 1)[-1])
                        if kind and isinstance(d.get("uid"), str):
                            gone.setdefault(kind, []).append(d["uid"])
                    for kind, uids in gone.items():
                        stage_deleted(tx, kind, uids)
                else:
                    stage(tx, step["type"], items)
                if expand:
                    ous = staged(tx.conn, "organisationUnits")[0].get("organisationUnits", [])
                    rnd["todo"][:0] = subtree_steps(ous, self.root)
                set_state(tx, {ROUND_KEY: json.dumps(rnd)})
            await store.write(write)
            self.fresh = False


def _read_all(conn: sqlite3.Connection, *, staged_too: bool
              ) -> tuple[Doc, dict[str, dict[str, Any]], set[str], Doc, dict[str, set[str]]]:
    doc, users, local_only = read_local(conn)
    fetched, deleted = staged(conn) if staged_too else ({}, {})
    return doc, users, local_only, fetched, deleted


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
