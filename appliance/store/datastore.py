"""The dataStore (DHIS2 ``/api/dataStore``): entries, their sharing, and who may do what.

This module owns the ``datastore`` table (migration 0005); nothing else reads or writes it.
Reads take a connection (``Store.read``), writes a ``Tx`` (``Store.write``), and every
write checks access inside its own transaction, so a check and the change it allows
cannot be separated by another writer. Every write leaves an ``audit`` row.

Access follows DHIS2 2.41 (``DefaultDatastoreService``, ``DatastoreNamespaceProtection``,
``AclService``) with these deliberate differences, because the clinic Wi-Fi is open to
anyone in the building:

* New entries are **public read, owner write** (``r-------``). DHIS2 makes them public
  read *and write* (``rw------``), so any logged-in user may change or delete anyone's
  key there. Here others get write only when the owner (or a superuser) shares it.
* Only the owner or a superuser may change an entry's sharing; DHIS2 also lets anyone
  with write sharing do it.
* In a protected namespace the namespace's authority is what grants writes, to every
  entry there; DHIS2 checks the authority and then sharing too (which its ``rw------``
  default makes moot).
* Entries from before migration 0005 belong to the system (owner NULL): read by all, and
  changed only by superusers or, in a protected namespace, holders of its authority.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..dhis2.uid import generate_uid, is_uid
from ..errors import BadRequest, Conflict, Forbidden, NotFound
from ..webguard import parse_json
from . import audit
from .db import Tx
from .hlc import to_iso
from .users import User

# Namespaces only some users may change, as DHIS2's DatastoreNamespaceProtection with reads
# NONE and writes RESTRICTED: anyone logged in reads (every Android tablet reads its
# settings with a CHCP's account), a write without the authority (or ALL) is a 403. DHIS2
# registers these from the Android Settings app's manifest; since 2.40 the app itself
# requires M_androidsettingsapp or ALL to edit. ANDROID_SETTING_APP is the app's legacy
# (pre-2.0) namespace, APK_DISTRIBUTION and USE_CASES (stock use cases) are also written by
# it and read by the Android SDK at every metadata sync.
PROTECTED: dict[str, str] = {
    "ANDROID_SETTINGS_APP": "M_androidsettingsapp",
    "ANDROID_SETTING_APP": "M_androidsettingsapp",
    "APK_DISTRIBUTION": "M_androidsettingsapp",
    "USE_CASES": "M_androidsettingsapp",
}

DEFAULT_PUBLIC = "r-------"   # DHIS2: rw------ (see the module docstring)
# DHIS2 access strings: metadata read/write, data read/write, four unused places.
_ACCESS_RE = re.compile(r"[r-][w-][r-][w-]-{4}")
_READ, _WRITE = 0, 1
_COLS = ("namespace, key, id, created, last_updated, created_by, owner, public_access, "
         "user_accesses, user_group_accesses")


@dataclass(frozen=True)
class Sharing:
    owner: str | None                                   # user uid; None = the system
    public: str = DEFAULT_PUBLIC
    users: Mapping[str, str] = field(default_factory=dict)        # uid -> access string
    user_groups: Mapping[str, str] = field(default_factory=dict)  # uid -> access string

    def doc(self) -> dict[str, Any]:
        """DHIS2's ``sharing`` object (null members left out, as DHIS2's Jackson does)."""
        out: dict[str, Any] = {"owner": self.owner} if self.owner else {}
        out.update(external=False, public=self.public,
                   users={u: {"id": u, "access": a} for u, a in self.users.items()},
                   userGroups={g: {"id": g, "access": a} for g, a in self.user_groups.items()})
        return out


@dataclass(frozen=True)
class Entry:
    """An entry without its value (the value is read only when served)."""

    namespace: str
    key: str
    id: str
    created: str
    last_updated: str
    created_by: str | None
    sharing: Sharing


# -- who may do what ---------------------------------------------------------------------
def _allows(access: str | None, op: int) -> bool:
    return access is not None and len(access) > op and access[op] == "rw"[op]


def _groups(user: User) -> set[str]:
    return {g["id"] for g in user.doc.get("userGroups") or []
            if isinstance(g, dict) and isinstance(g.get("id"), str)}


def _shared(user: User, sharing: Sharing, op: int) -> bool:
    if sharing.owner is not None and sharing.owner == user.uid:
        return True
    if _allows(sharing.public, op) or _allows(sharing.users.get(user.uid), op):
        return True
    return any(_allows(sharing.user_groups.get(g), op) for g in _groups(user))


def can_read(user: User, entry: Entry) -> bool:
    return user.is_superuser or _shared(user, entry.sharing, _READ)


def can_write(user: User, entry: Entry) -> bool:
    if user.is_superuser:
        return True
    authority = PROTECTED.get(entry.namespace)
    if authority is not None:
        return user.has(authority)
    return _shared(user, entry.sharing, _WRITE)


def may_change(user: User, entry: Entry) -> bool:
    return can_read(user, entry) and can_write(user, entry)


def can_manage(user: User, entry: Entry) -> bool:
    """May change the entry's sharing: superusers, the owner, a protected namespace's
    authority holders."""
    authority = PROTECTED.get(entry.namespace)
    return (user.is_superuser or entry.sharing.owner == user.uid
            or (authority is not None and user.has(authority)))


def access_doc(user: User, entry: Entry) -> dict[str, bool]:
    """DHIS2's ``access`` object for this user and entry."""
    write = can_write(user, entry)
    return {"manage": can_manage(user, entry), "externalize": False, "write": write,
            "read": can_read(user, entry), "update": write, "delete": write}


def check_namespace_writable(user: User, namespace: str) -> None:
    authority = PROTECTED.get(namespace)
    if authority is not None and not user.has(authority):
        raise Forbidden(f"Namespace '{namespace}' is protected, access denied: changing it "
                        f"needs the {authority} authority")


def _denied(entry: Entry) -> Forbidden:
    return Forbidden(f"Access denied for key '{entry.key}' in namespace '{entry.namespace}'")


def _not_found(namespace: str, key: str) -> NotFound:
    return NotFound(f"Key '{key}' not found in namespace '{namespace}'")


def canonical(body: bytes) -> str:
    """A request body as the JSON text to store: strict JSON (no NaN/Infinity, at most 64
    levels, 64-bit numbers; else ``BadRequest``), re-serialised compactly, so what is
    served back is always valid JSON. Call it off the writer thread."""
    return orjson.dumps(parse_json(body, what="dataStore value")).decode()


# -- reads ------------------------------------------------------------------------------------
def _entry(row: sqlite3.Row) -> Entry:
    return Entry(namespace=row["namespace"], key=row["key"], id=row["id"],
                 created=row["created"], last_updated=row["last_updated"],
                 created_by=row["created_by"],
                 sharing=Sharing(owner=row["owner"], public=row["public_access"],
                                 users=json.loads(row["user_accesses"]),
                                 user_groups=json.loads(row["user_group_accesses"])))


def _lookup(conn: sqlite3.Connection | Tx, namespace: str, key: str
            ) -> tuple[Entry, str] | None:
    """The entry and its stored JSON text."""
    row = conn.execute(f"SELECT value, {_COLS} FROM datastore WHERE namespace=? AND key=?",
                       (namespace, key)).fetchone()
    return (_entry(row), str(row["value"])) if row else None


def _in_namespace(conn: sqlite3.Connection | Tx, namespace: str) -> list[Entry]:
    return [_entry(r) for r in conn.execute(
        f"SELECT {_COLS} FROM datastore WHERE namespace=? ORDER BY key", (namespace,))]


def namespaces(conn: sqlite3.Connection, user: User) -> list[str]:
    """Namespaces in which the user may read at least one entry."""
    seen: set[str] = set()
    for row in conn.execute(f"SELECT {_COLS} FROM datastore ORDER BY namespace"):
        if row["namespace"] not in seen and can_read(user, _entry(row)):
            seen.add(row["namespace"])
    return sorted(seen)


def keys(conn: sqlite3.Connection, user: User, namespace: str,
         updated_since: str | None = None) -> list[str]:
    """Keys of the namespace the user may read; ``NotFound`` when there are none, so a
    namespace holding only others' private entries looks like one that does not exist."""
    readable = [e for e in _in_namespace(conn, namespace) if can_read(user, e)]
    if not readable:
        raise NotFound(f"Namespace not found: '{namespace}'")
    return [e.key for e in readable if updated_since is None or e.last_updated >= updated_since]


def _readable(conn: sqlite3.Connection, user: User, namespace: str, key: str
              ) -> tuple[Entry, str]:
    found = _lookup(conn, namespace, key)
    if found is None:
        raise _not_found(namespace, key)
    if not can_read(user, found[0]):
        raise _denied(found[0])
    return found


def entry(conn: sqlite3.Connection, user: User, namespace: str, key: str) -> Entry:
    """The entry, if the user may read it (``NotFound``/``Forbidden`` otherwise)."""
    return _readable(conn, user, namespace, key)[0]


def value(conn: sqlite3.Connection, user: User, namespace: str, key: str) -> bytes:
    """The stored JSON text, byte-exact, if the user may read it."""
    return _readable(conn, user, namespace, key)[1].encode()


def entry_by_id(conn: sqlite3.Connection | Tx, uid: str) -> Entry:
    row = conn.execute(f"SELECT {_COLS} FROM datastore WHERE id=?", (uid,)).fetchone()
    if row is None:
        raise NotFound(f"Object of type dataStore with ID {uid} was not found.")
    return _entry(row)


def user_refs(conn: sqlite3.Connection, uids: set[str]) -> dict[str, dict[str, Any]]:
    """DHIS2 user references (id, code, name, displayName, username) for the uids known."""
    out: dict[str, dict[str, Any]] = {}
    for uid in sorted(uids):
        row = conn.execute("SELECT uid, username, doc FROM users WHERE uid=?", (uid,)).fetchone()
        if row is None:
            continue
        doc = json.loads(row["doc"])
        name = doc.get("name") or doc.get("displayName") or " ".join(
            p for p in (doc.get("firstName"), doc.get("surname")) if p) or row["username"]
        out[uid] = {"id": uid, "code": doc.get("code"), "name": name,
                    "displayName": doc.get("displayName") or name, "username": row["username"]}
    return out


# -- writes (on the writer thread, via Store.write) ------------------------------------------
def _audit(tx: Tx, user: User, client: str | None, entry: Entry, audit_type: str,
           old: str | None, new: str | None) -> None:
    audit.record(tx, entity="datastore", key=f"{entry.namespace}|{entry.key}",
                 audit_type=audit_type, old=old, new=new, username=user.username,
                 client=client)


def create(tx: Tx, user: User, namespace: str, key: str, text: str, *,
           client: str | None = None) -> Entry:
    """A new entry owned by the user, public read (``Conflict`` if the key exists)."""
    check_namespace_writable(user, namespace)
    existing = _lookup(tx, namespace, key)
    if existing is not None:
        if not can_read(user, existing[0]):
            raise _denied(existing[0])
        raise Conflict(f"Key '{key}' already exists in namespace '{namespace}'")
    now = to_iso(tx.stamp())
    new = Entry(namespace=namespace, key=key, id=generate_uid(), created=now, last_updated=now,
                created_by=user.uid, sharing=Sharing(owner=user.uid))
    tx.execute("INSERT INTO datastore(namespace, key, value, id, created, last_updated, "
               "created_by, owner, public_access, user_accesses, user_group_accesses) "
               "VALUES (?,?,?,?,?,?,?,?,?,'{}','{}')",
               (namespace, key, text, new.id, now, now, user.uid, user.uid, DEFAULT_PUBLIC))
    _audit(tx, user, client, new, "CREATE", None, text)
    return new


def _writable(tx: Tx, user: User, namespace: str, key: str) -> tuple[Entry, str]:
    check_namespace_writable(user, namespace)
    found = _lookup(tx, namespace, key)
    if found is None:
        raise _not_found(namespace, key)
    if not may_change(user, found[0]):
        raise _denied(found[0])
    return found


def update(tx: Tx, user: User, namespace: str, key: str, text: str, *,
           client: str | None = None) -> None:
    found, old = _writable(tx, user, namespace, key)
    tx.execute("UPDATE datastore SET value=?, last_updated=? WHERE namespace=? AND key=?",
               (text, to_iso(tx.stamp()), namespace, key))
    _audit(tx, user, client, found, "UPDATE", old, text)


def delete(tx: Tx, user: User, namespace: str, key: str, *, client: str | None = None) -> None:
    found, old = _writable(tx, user, namespace, key)
    tx.execute("DELETE FROM datastore WHERE namespace=? AND key=?", (namespace, key))
    _audit(tx, user, client, found, "DELETE", old, None)


def delete_namespace(tx: Tx, user: User, namespace: str, *, client: str | None = None) -> int:
    """Delete every entry, only if the user may change every one (else nothing)."""
    check_namespace_writable(user, namespace)
    entries = _in_namespace(tx, namespace)
    if not any(can_read(user, e) for e in entries):
        raise NotFound(f"Namespace not found: '{namespace}'")
    for e in entries:
        if not may_change(user, e):
            raise _denied(e)
    for e in entries:
        delete(tx, user, namespace, e.key, client=client)
    return len(entries)


def _access(raw: Any, what: str) -> str:
    """A valid access string, with the data places cleared: DHIS2 does so for types that
    are not data-shareable, and a dataStore entry is not."""
    if not isinstance(raw, str) or not _ACCESS_RE.fullmatch(raw):
        raise Conflict(f"Invalid {what} access string: {str(raw)[:40]}")
    return raw[:2] + "--" + raw[4:]


def parse_sharing(doc: Any) -> Sharing:
    """DHIS2's ``/api/sharing`` body: ``{"object": {"publicAccess", "userAccesses": [{id,
    access}], "userGroupAccesses": [...]}}``. ``externalAccess`` and ``user`` are ignored
    (the hub has no external access; ownership does not move through sharing)."""
    obj = doc.get("object") if isinstance(doc, dict) else None
    if not isinstance(obj, dict):
        raise BadRequest("Sharing body must be {\"object\": {\"publicAccess\": ..., "
                         "\"userAccesses\": [...], \"userGroupAccesses\": [...]}}")

    def accesses(name: str, what: str) -> dict[str, str]:
        items = obj.get(name) or []
        if not isinstance(items, list):
            raise BadRequest(f"`{name}` must be a list of {{\"id\", \"access\"}}")
        out: dict[str, str] = {}
        for item in items:
            if not isinstance(item, dict):
                raise BadRequest(f"`{name}` must be a list of {{\"id\", \"access\"}}")
            access = _access(item.get("access"), what)
            if is_uid(item.get("id")):  # DHIS2 drops references it cannot resolve
                out[item["id"]] = access
        return out
    return Sharing(owner=None, public=_access(obj.get("publicAccess"), "public"),
                   users=accesses("userAccesses", "user"),
                   user_groups=accesses("userGroupAccesses", "user group"))


def set_sharing(tx: Tx, user: User, uid: str, sharing: Sharing, *,
                client: str | None = None) -> Entry:
    """Replace an entry's sharing (its owner stays). Users the hub does not know are dropped, as
    DHIS2 drops them; user groups are kept, since a hub need not hold national's groups."""
    found = entry_by_id(tx, uid)
    if not can_manage(user, found):
        raise Forbidden("You do not have manage access to this object.")
    known = {u for u in sharing.users
             if tx.execute("SELECT 1 FROM users WHERE uid=?", (u,)).fetchone() is not None}
    new = Sharing(owner=found.sharing.owner, public=sharing.public,
                  users={u: a for u, a in sharing.users.items() if u in known},
                  user_groups=dict(sharing.user_groups))
    tx.execute("UPDATE datastore SET public_access=?, user_accesses=?, user_group_accesses=?, "
               "last_updated=? WHERE id=?",
               (new.public, json.dumps(dict(new.users)), json.dumps(dict(new.user_groups)),
                to_iso(tx.stamp()), uid))
    # sharing changes are UPDATEs of the entry; the values say what changed
    _audit(tx, user, client, found, "UPDATE", json.dumps({"sharing": found.sharing.doc()}),
           json.dumps({"sharing": new.doc()}))
    return Entry(namespace=found.namespace, key=found.key, id=found.id, created=found.created,
                 last_updated=found.last_updated, created_by=found.created_by, sharing=new)
