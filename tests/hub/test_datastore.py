"""dataStore access control, sharing, strict JSON and audit, against a real hub on a real
port: protected Android namespaces, owner-only writes by default, sharing that grants
writes, metaData as DHIS2 2.41 serves it, and old rows after migration 0005."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.dhis2.uid import generate_uid, is_uid
from appliance.store import Store
from appliance.store import datastore as ds
from appliance.store.users import User, upsert_user
from tests.conftest import ADMIN, CHCP, RunningHub, basic, copy_db, running_hub

OTHER = basic("chcp2", "district")  # a second CHCP, made by the `other` fixture


async def call(http: aiohttp.ClientSession, method: str, url: str, auth: dict[str, str],
               body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    headers = dict(auth)
    data = None
    if raw is not None or body is not None:
        headers["Content-Type"] = "application/json"
        data = raw if raw is not None else json.dumps(body).encode()
    async with http.request(method, url, headers=headers, data=data) as r:
        text = await r.read()
        assert r.content_type == "application/json", (method, url, r.status, text[:200])
        return r.status, json.loads(text) if text else None


def uid_of(hub: RunningHub, username: str) -> str:
    return str(hub.store.read_sync(
        lambda c: c.execute("SELECT uid FROM users WHERE username=?", (username,)).fetchone()[0]))


def rows(hub: RunningHub) -> list[tuple[Any, ...]]:
    return hub.store.read_sync(lambda c: [tuple(r) for r in c.execute(
        "SELECT namespace, key, value, owner, public_access, user_accesses FROM datastore "
        "ORDER BY namespace, key")])


def audits(hub: RunningHub) -> list[tuple[Any, ...]]:
    return hub.store.read_sync(lambda c: [tuple(r) for r in c.execute(
        "SELECT key, audit_type, old_value, new_value, username, via, client FROM audit "
        "WHERE entity='datastore' ORDER BY id")])


@pytest.fixture
async def other(hub: RunningHub) -> str:
    """A second CHCP (same role and clinic as `chcp`); returns its uid."""
    chcp = hub.store.read_sync(
        lambda c: json.loads(c.execute("SELECT doc FROM users WHERE username='chcp'").fetchone()[0]))
    doc = dict(chcp, id=generate_uid(), username="chcp2", name="Karim Mia")
    doc.pop("userCredentials", None)
    await hub.store.write(lambda tx: upsert_user(tx, doc, password="district", local=True))
    return str(doc["id"])


# -- protected namespaces ----------------------------------------------------------------------
@pytest.mark.parametrize("ns", ["ANDROID_SETTINGS_APP", "ANDROID_SETTING_APP",
                                "APK_DISTRIBUTION", "USE_CASES"])
async def test_chcp_reads_but_cannot_write_protected_namespace(
        hub: RunningHub, http: aiohttp.ClientSession, ns: str) -> None:
    url = hub.api(f"dataStore/{ns}/info")
    assert (await call(http, "POST", url, ADMIN, {"dataStoreVersion": "2.0"}))[0] == 201
    before, audit_before = rows(hub), audits(hub)
    for method, target in (("POST", hub.api(f"dataStore/{ns}/general")), ("PUT", url),
                           ("DELETE", url), ("DELETE", hub.api(f"dataStore/{ns}"))):
        status, body = await call(http, method, target, CHCP,
                                  None if method == "DELETE" else {"x": 1})
        assert status == 403, (method, target, body)
        assert body["status"] == "ERROR" and body["httpStatus"] == "Forbidden"
        assert body["message"] == (f"Namespace '{ns}' is protected, access denied: changing "
                                   "it needs the M_androidsettingsapp authority")
    assert rows(hub) == before and audits(hub) == audit_before
    assert await call(http, "GET", url, CHCP) == (200, {"dataStoreVersion": "2.0"})
    assert await call(http, "GET", hub.api(f"dataStore/{ns}"), CHCP) == (200, ["info"])
    assert (await call(http, "PUT", url, ADMIN, {"dataStoreVersion": "2.1"}))[0] == 200
    assert (await call(http, "DELETE", url, ADMIN))[0] == 200


def test_namespace_authority_grants_writes_without_all() -> None:
    """M_androidsettingsapp (without ALL) writes every entry of the Android namespaces,
    and nothing in ordinary namespaces that it was not shared."""
    def user(*auths: str) -> User:
        return User(uid="aaaaaaaaaaa", username="u", doc={}, authorities=frozenset(auths),
                    org_units=(), view_org_units=())
    admin_owned = ds.Sharing(owner="bbbbbbbbbbb")
    for ns in ds.PROTECTED:
        e = ds.Entry(ns, "k", "ccccccccccc", "", "", "bbbbbbbbbbb", admin_owned)
        assert ds.can_write(user("M_androidsettingsapp"), e)
        assert not ds.can_write(user("F_DATAVALUE_ADD"), e)
        assert ds.can_read(user("F_DATAVALUE_ADD"), e)
    plain = ds.Entry("notes", "k", "ccccccccccc", "", "", "bbbbbbbbbbb", admin_owned)
    assert not ds.can_write(user("M_androidsettingsapp"), plain)
    assert ds.can_write(user("ALL"), plain)


# -- ownership ------------------------------------------------------------------------------------
async def test_chcp_cannot_change_or_delete_admin_entry(hub: RunningHub,
                                                        http: aiohttp.ClientSession) -> None:
    url = hub.api("dataStore/clinic-tools/targets")
    assert await call(http, "POST", url, ADMIN, {"anc": 40}) == (
        201, {"httpStatus": "Created", "httpStatusCode": 201, "status": "OK",
              "message": "Key created: 'targets'"})
    before = rows(hub)
    for method in ("PUT", "DELETE"):
        status, body = await call(http, method, url, CHCP,
                                  {"anc": 0} if method == "PUT" else None)
        assert status == 403
        assert body["message"] == "Access denied for key 'targets' in namespace 'clinic-tools'"
    assert (await call(http, "DELETE", hub.api("dataStore/clinic-tools"), CHCP))[0] == 403
    assert rows(hub) == before
    assert await call(http, "GET", url, CHCP) == (200, {"anc": 40})  # public read


async def test_owner_writes_others_only_read(hub: RunningHub, http: aiohttp.ClientSession,
                                             other: str) -> None:
    url = hub.api("dataStore/notes/mine")
    assert (await call(http, "POST", url, CHCP, {"v": 1}))[0] == 201
    assert await call(http, "PUT", url, CHCP, {"v": 2}) == (
        200, {"httpStatus": "OK", "httpStatusCode": 200, "status": "OK",
              "message": "Key updated: 'mine'"})
    assert await call(http, "GET", url, OTHER) == (200, {"v": 2})
    assert (await call(http, "PUT", url, OTHER, {"v": 3}))[0] == 403
    assert (await call(http, "DELETE", url, OTHER))[0] == 403
    status, body = await call(http, "POST", url, OTHER, {"v": 4})
    assert status == 409 and body["message"] == "Key 'mine' already exists in namespace 'notes'"
    assert await call(http, "GET", url, ADMIN) == (200, {"v": 2})
    assert await call(http, "DELETE", url, CHCP) == (
        200, {"httpStatus": "OK", "httpStatusCode": 200, "status": "OK",
              "message": "Key 'mine' deleted from namespace 'notes'"})
    status, body = await call(http, "GET", url, CHCP)
    assert status == 404 and body["message"] == "Key 'mine' not found in namespace 'notes'"
    status, body = await call(http, "PUT", url, CHCP, {"v": 5})
    assert status == 404 and body["message"] == "Key 'mine' not found in namespace 'notes'"


async def test_superuser_changes_anyones_entry(hub: RunningHub,
                                               http: aiohttp.ClientSession) -> None:
    url = hub.api("dataStore/notes/chcp-note")
    assert (await call(http, "POST", url, CHCP, [1]))[0] == 201
    assert (await call(http, "PUT", url, ADMIN, [2]))[0] == 200
    assert (await call(http, "DELETE", url, ADMIN))[0] == 200


# -- sharing -------------------------------------------------------------------------------------
async def test_owner_shares_write_with_another_user(hub: RunningHub,
                                                    http: aiohttp.ClientSession,
                                                    other: str) -> None:
    url = hub.api("dataStore/notes/shared")
    assert (await call(http, "POST", url, CHCP, {"v": 1}))[0] == 201
    _, meta = await call(http, "GET", url + "/metaData", CHCP)
    sharing_url = hub.api(f"sharing?type=dataStore&id={meta['id']}")
    grant = {"object": {"publicAccess": "r-------", "externalAccess": False, "user": {},
                        "userAccesses": [{"id": other, "access": "rw------"},
                                         {"id": generate_uid(), "access": "rw------"}],
                        "userGroupAccesses": []}}
    # only the owner (or a superuser) manages sharing
    status, body = await call(http, "PUT", sharing_url, OTHER, grant)
    assert status == 403 and body["message"] == "You do not have manage access to this object."
    assert (await call(http, "PUT", url, OTHER, {"v": 2}))[0] == 403
    assert await call(http, "PUT", sharing_url, CHCP, grant) == (
        200, {"httpStatus": "OK", "httpStatusCode": 200, "status": "OK",
              "message": "Access control set"})
    assert (await call(http, "PUT", url, OTHER, {"v": 2}))[0] == 200
    assert await call(http, "GET", url, CHCP) == (200, {"v": 2})
    # write sharing is not manage: the grantee still cannot reshare
    assert (await call(http, "POST", sharing_url, OTHER, grant))[0] == 403
    status, body = await call(http, "GET", sharing_url, OTHER)
    assert status == 200
    assert body["meta"] == {"allowPublicAccess": True, "allowExternalAccess": False}
    obj = body["object"]
    assert obj["id"] == meta["id"] and obj["publicAccess"] == "r-------"
    assert obj["externalAccess"] is False and obj["user"]["id"] == uid_of(hub, "chcp")
    # the unknown user was dropped, as DHIS2 drops references it cannot resolve
    assert [(u["id"], u["access"]) for u in obj["userAccesses"]] == [(other, "rw------")]
    _, meta = await call(http, "GET", url + "/metaData", OTHER)
    assert meta["sharing"]["users"] == {other: {"id": other, "access": "rw------"}}
    assert meta["access"]["write"] is True and meta["access"]["manage"] is False


async def test_sharing_refusals(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    url = hub.api("dataStore/notes/x")
    assert (await call(http, "POST", url, CHCP, 1))[0] == 201
    _, meta = await call(http, "GET", url + "/metaData", CHCP)
    sharing_url = hub.api(f"sharing?type=dataStore&id={meta['id']}")
    before = rows(hub)
    cases = [
        (sharing_url, {"object": {"publicAccess": "rwx-----"}}, 409,
         "Invalid public access string: rwx-----"),
        (sharing_url, {"object": {"publicAccess": "r-------",
                                  "userAccesses": [{"id": meta["id"], "access": "yes"}]}},
         409, "Invalid user access string: yes"),
        (sharing_url, {"publicAccess": "r-------"}, 400, "Sharing body must be"),
        (hub.api(f"sharing?type=dataElement&id={meta['id']}"),
         {"object": {"publicAccess": "r-------"}}, 409, "Type dataElement is not supported."),
        (hub.api("sharing?type=dataStore&id=AAAAAAAAAAA"),
         {"object": {"publicAccess": "r-------"}}, 404,
         "Object of type dataStore with ID AAAAAAAAAAA was not found."),
    ]
    for target, body, status, words in cases:
        got, reply = await call(http, "PUT", target, CHCP, body)
        assert got == status and reply["message"].startswith(words), (body, reply)
    got, reply = await call(http, "PUT", sharing_url, CHCP, raw=b'{"object": NaN}')
    assert got == 400
    assert rows(hub) == before


async def test_private_entry_is_hidden_from_others(hub: RunningHub,
                                                   http: aiohttp.ClientSession,
                                                   other: str) -> None:
    url = hub.api("dataStore/chcp-private/diary")
    assert (await call(http, "POST", url, CHCP, {"d": 1}))[0] == 201
    assert (await call(http, "POST", hub.api("dataStore/everyone/board"), CHCP, 1))[0] == 201
    _, meta = await call(http, "GET", url + "/metaData", CHCP)
    private = {"object": {"publicAccess": "--------", "userAccesses": [],
                          "userGroupAccesses": []}}
    assert (await call(http, "PUT", hub.api(f"sharing?type=dataStore&id={meta['id']}"),
                       CHCP, private))[0] == 200
    _, mine = await call(http, "GET", hub.api("dataStore"), CHCP)
    _, theirs = await call(http, "GET", hub.api("dataStore"), OTHER)
    _, admins = await call(http, "GET", hub.api("dataStore"), ADMIN)
    assert {"chcp-private", "everyone"} <= set(mine) and {"chcp-private", "everyone"} <= set(admins)
    assert "chcp-private" not in theirs and "everyone" in theirs
    status, body = await call(http, "GET", hub.api("dataStore/chcp-private"), OTHER)
    assert status == 404 and body["message"] == "Namespace not found: 'chcp-private'"
    assert await call(http, "GET", hub.api("dataStore/chcp-private"), CHCP) == (200, ["diary"])
    assert await call(http, "GET", hub.api("dataStore/chcp-private/keys"), CHCP) == (
        200, ["diary"])
    status, body = await call(http, "GET", url, OTHER)
    assert status == 403
    assert body["message"] == "Access denied for key 'diary' in namespace 'chcp-private'"
    assert (await call(http, "GET", url + "/metaData", OTHER))[0] == 403
    assert (await call(http, "POST", url, OTHER, 2))[0] == 403  # no peeking via 409
    assert (await call(http, "GET", url, ADMIN))[0] == 200


# -- metaData ---------------------------------------------------------------------------------------
async def test_metadata_shape(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    url = hub.api("dataStore/clinic-tools/config")
    assert (await call(http, "POST", url, ADMIN, {"a": 1}))[0] == 201
    status, meta = await call(http, "GET", url + "/metaData", CHCP)
    assert status == 200
    admin = uid_of(hub, "admin")
    assert is_uid(meta["id"])
    assert meta["namespace"] == "clinic-tools" and meta["key"] == "config"
    assert meta["created"] == meta["lastUpdated"] and len(meta["created"]) == 23
    assert meta["createdBy"]["id"] == admin and meta["createdBy"]["username"] == "admin"
    assert meta["sharing"] == {"owner": admin, "external": False, "public": "r-------",
                               "users": {}, "userGroups": {}}
    assert meta["access"] == {"manage": False, "externalize": False, "write": False,
                              "read": True, "update": False, "delete": False}
    assert "value" not in meta
    assert (await call(http, "PUT", url, ADMIN, {"a": 2}))[0] == 200
    _, again = await call(http, "GET", url + "/metaData", ADMIN)
    assert again["id"] == meta["id"] and again["created"] == meta["created"]
    assert again["lastUpdated"] > meta["lastUpdated"] and again["access"]["manage"] is True


# -- strict JSON ------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, words", [
    (b'{"a": NaN}', "not valid JSON"),
    (b"[Infinity]", "not valid JSON"),
    (b"-Infinity", "not valid JSON"),
    (b"1e400", "not valid JSON"),
    (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
    (b'{"n": 9223372036854775808}', "beyond 64 bits"),
    (b"", "not valid JSON"),
    (b'{"a": 1} trailing', "not valid JSON"),
], ids=["nan", "infinity", "minus-infinity", "overflow", "deep", "int65", "empty", "trailing"])
async def test_invalid_json_is_refused_and_nothing_stored(
        hub: RunningHub, http: aiohttp.ClientSession, raw: bytes, words: str) -> None:
    url = hub.api("dataStore/notes/strict")
    assert (await call(http, "POST", url, CHCP, {"ok": True}))[0] == 201
    before, audit_before = rows(hub), audits(hub)
    for method, target in (("POST", hub.api("dataStore/notes/new")), ("PUT", url)):
        status, body = await call(http, method, target, CHCP, raw=raw)
        assert status == 400 and body["status"] == "ERROR", body
        assert words in body["message"]
    assert rows(hub) == before and audits(hub) == audit_before
    assert await call(http, "GET", url, CHCP) == (200, {"ok": True})


async def test_value_is_served_back_as_stored_canonical_json(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    url = hub.api("dataStore/notes/canon")
    sent = '{ "b" : [1, 2.5, null],  "a": "বাংলা", "big": 9223372036854775807 }'.encode()
    assert (await call(http, "POST", url, CHCP, raw=sent))[0] == 201
    async with http.get(url, headers=CHCP) as r:
        assert r.status == 200 and r.content_type == "application/json"
        body = await r.read()
    assert body == '{"b":[1,2.5,null],"a":"বাংলা","big":9223372036854775807}'.encode()
    assert json.loads(body) == json.loads(sent)
    assert rows(hub)[-1][2] == body.decode()


# -- audit and namespace deletion ----------------------------------------------------------------
async def test_every_write_is_audited(hub: RunningHub, http: aiohttp.ClientSession,
                                      other: str) -> None:
    url = hub.api("dataStore/notes/audited")
    await call(http, "POST", url, CHCP, {"v": 1})
    await call(http, "PUT", url, CHCP, {"v": 2})
    _, meta = await call(http, "GET", url + "/metaData", CHCP)
    await call(http, "PUT", hub.api(f"sharing?type=dataStore&id={meta['id']}"), CHCP,
               {"object": {"publicAccess": "rw------"}})
    await call(http, "PUT", url, OTHER, {"v": 3})  # public write now
    await call(http, "DELETE", url, CHCP)
    got = audits(hub)
    assert [(a[0], a[1], a[4], a[5], a[6]) for a in got] == [
        ("notes|audited", "CREATE", "chcp", "api", "127.0.0.1"),
        ("notes|audited", "UPDATE", "chcp", "api", "127.0.0.1"),
        ("notes|audited", "UPDATE", "chcp", "api", "127.0.0.1"),
        ("notes|audited", "UPDATE", "chcp2", "api", "127.0.0.1"),
        ("notes|audited", "DELETE", "chcp", "api", "127.0.0.1")]
    assert [(a[2], a[3]) for a in got if a[2] is None or not a[2].startswith('{"sharing"')] == [
        (None, '{"v":1}'), ('{"v":1}', '{"v":2}'), ('{"v":2}', '{"v":3}'), ('{"v":3}', None)]
    old, new = json.loads(got[2][2]), json.loads(got[2][3])
    assert old["sharing"]["public"] == "r-------" and new["sharing"]["public"] == "rw------"
    # a refused write leaves no row
    await call(http, "POST", hub.api("dataStore/ANDROID_SETTINGS_APP/x"), CHCP, 1)
    assert len(audits(hub)) == len(got)


async def test_delete_namespace_needs_write_on_every_entry(
        hub: RunningHub, http: aiohttp.ClientSession) -> None:
    await call(http, "POST", hub.api("dataStore/mixed/admins"), ADMIN, 1)
    await call(http, "POST", hub.api("dataStore/mixed/chcps"), CHCP, 2)
    before = rows(hub)
    status, body = await call(http, "DELETE", hub.api("dataStore/mixed"), CHCP)
    assert status == 403 and body["message"] == "Access denied for key 'admins' in namespace 'mixed'"
    assert rows(hub) == before
    assert await call(http, "DELETE", hub.api("dataStore/mixed"), ADMIN) == (
        200, {"httpStatus": "OK", "httpStatusCode": 200, "status": "OK",
              "message": "Namespace deleted: 'mixed'"})
    assert [r[:2] for r in rows(hub) if r[0] == "mixed"] == []
    assert [a[:2] for a in audits(hub) if a[1] == "DELETE"] == [
        ("mixed|admins", "DELETE"), ("mixed|chcps", "DELETE")]
    await call(http, "POST", hub.api("dataStore/own/a"), CHCP, 1)
    assert (await call(http, "DELETE", hub.api("dataStore/own"), CHCP))[0] == 200
    status, body = await call(http, "DELETE", hub.api("dataStore/own"), CHCP)
    assert status == 404 and body["message"] == "Namespace not found: 'own'"


async def test_keys_since(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    await call(http, "POST", hub.api("dataStore/notes/a"), CHCP, 1)
    assert await call(http, "GET", hub.api("dataStore/notes?lastUpdated=2000-01-01"), CHCP) == (
        200, ["a"])
    assert await call(http, "GET", hub.api("dataStore/notes?lastUpdated=2999-01-01"), CHCP) == (
        200, [])
    assert (await call(http, "GET", hub.api("dataStore/notes?lastUpdated=yesterday"), CHCP)
            )[0] == 400


# -- rows from before migration 0005 ----------------------------------------------------------
@pytest.fixture
async def old_hub(demo_template: dict[str, Path], tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A demo hub whose dataStore rows were written by the old handler (0001's table)."""
    path = copy_db(demo_template["hub"], tmp_path / "old")
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TABLE datastore")
        conn.execute("CREATE TABLE datastore (namespace TEXT NOT NULL, key TEXT NOT NULL, "
                     "value TEXT NOT NULL, PRIMARY KEY (namespace, key)) WITHOUT ROWID")
        conn.executemany("INSERT INTO datastore VALUES (?,?,?)", [
            ("ANDROID_SETTINGS_APP", "info", '{"dataStoreVersion": "2.0"}'),
            ("notes", "legacy", '{"a": [1, 2]}'),
            ("notes", "broken", '{"x": NaN}'),  # json.dumps let NaN through
        ])
        conn.execute("DELETE FROM _migrations WHERE name='0005_datastore.sql'")
    conn.close()
    store = Store(path)
    try:
        async with running_hub(store, tmp_path / "old") as h:
            yield h
    finally:
        store.close()


async def test_old_rows_belong_to_the_system(old_hub: RunningHub,
                                             http: aiohttp.ClientSession) -> None:
    hub = old_hub
    ids = hub.store.read_sync(lambda c: [r[0] for r in c.execute("SELECT id FROM datastore")])
    assert len(ids) == 3 and all(is_uid(i) for i in ids) and len(set(ids)) == 3
    status, meta = await call(http, "GET", hub.api("dataStore/notes/legacy/metaData"), CHCP)
    assert status == 200 and "createdBy" not in meta
    assert meta["sharing"] == {"external": False, "public": "r-------", "users": {},
                               "userGroups": {}}
    assert await call(http, "GET", hub.api("dataStore/notes/legacy"), CHCP) == (
        200, {"a": [1, 2]})
    assert await call(http, "GET", hub.api("dataStore/ANDROID_SETTINGS_APP/info"), CHCP) == (
        200, {"dataStoreVersion": "2.0"})
    # invalid JSON from before is kept, served as a JSON string of its text
    assert await call(http, "GET", hub.api("dataStore/notes/broken"), CHCP) == (
        200, '{"x": NaN}')
    for url in (hub.api("dataStore/notes/legacy"), hub.api("dataStore/ANDROID_SETTINGS_APP/info")):
        assert (await call(http, "PUT", url, CHCP, {"b": 1}))[0] == 403
        assert (await call(http, "PUT", url, ADMIN, {"b": 1}))[0] == 200
    # nobody owns a system entry, so only a superuser manages its sharing
    sharing_url = hub.api(f"sharing?type=dataStore&id={meta['id']}")
    body = {"object": {"publicAccess": "rw------"}}
    assert (await call(http, "PUT", sharing_url, CHCP, body))[0] == 403
    assert (await call(http, "PUT", sharing_url, ADMIN, body))[0] == 200
