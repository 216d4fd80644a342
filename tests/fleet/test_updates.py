"""Software updates on the fleet side (#13), over real HTTP and real SQLite, with bundles
signed by real ``rauc bundle`` and read by real ``rauc info``: add-release refuses a bundle
not signed under national's CA; rollouts resolve most-specific-first per hardware; the
hub API authenticates like heartbeats and serves ``Range``; reports keep the newest;
progress, pages and the rollback alert; the admin API and its audit."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from appliance.fleet.db import NewHub
from appliance.signing import sign, target_message

from ..rauckit import CA, COMPATIBLE, build_bundle, missing_tools
from .conftest import VIEWER, FleetServer, add_user, client_session, heartbeat, login
from .test_auth import rows
from .test_command import fleet_cli
from .test_ingest import assert_web_message

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"needs {missing_tools()}")


@dataclass(frozen=True)
class Pki:
    national: CA
    bundles: dict[str, Path]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """National's CA and bundles it signed; one signed under a stranger's CA."""
    d = tmp_path_factory.mktemp("pki")
    national, evil = CA.make(d, "national"), CA.make(d, "stranger")
    good, bad = national.signer("release"), evil.signer("release")
    return Pki(national, {
        "1.1.0": build_bundle(d / "b110.raucb", good, version="1.1.0"),
        "1.2.0": build_bundle(d / "b120.raucb", good, version="1.2.0", payload=600_000),
        "1.1.0-again": build_bundle(d / "b110b.raucb", good, version="1.1.0"),
        "other-hw": build_bundle(d / "other.raucb", good, version="1.1.0",
                                 compatible="upazila-hub-amd64"),
        "evil": build_bundle(d / "evil.raucb", bad, version="1.1.1")})


def config_file(folder: Path, keyring: Path | None) -> Path:
    p = folder / "fleet.toml"
    folder.mkdir(parents=True, exist_ok=True)
    p.write_text(f'[update]\nfleet_keyring = "{keyring}"\n' if keyring else "")
    return p


def add_release(data: Path, bundle: Path, keyring: Path | None, *extra: str) -> Any:
    return fleet_cli("--config", str(config_file(data.parent, keyring)), "--data-dir", str(data),
                     "add-release", str(bundle), *extra)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- add-release
def test_add_release_keeps_only_bundles_signed_under_national_ca(tmp_path: Path,
                                                                 pki: Pki) -> None:
    data = tmp_path / "data"
    key = pki.national.cert
    out = add_release(data, pki.bundles["evil"], key)
    assert out.returncode == 1
    assert "RAUC refused the bundle" in out.stderr and "signature" in out.stderr, out.stderr
    junk = tmp_path / "junk.raucb"
    junk.write_bytes(b"\0" * 5000)
    out = add_release(data, junk, key)
    assert out.returncode == 1 and "RAUC refused the bundle" in out.stderr, out.stderr
    out = add_release(data, pki.bundles["1.1.0"], None)
    assert out.returncode == 1 and "[update] fleet_keyring is not set" in out.stderr
    # nothing of the refused ones was kept
    assert not list((data / "releases").glob("*.raucb"))

    out = add_release(data, pki.bundles["1.1.0"], key)
    assert out.returncode == 0, out.stderr
    digest = sha(pki.bundles["1.1.0"])
    assert out.stdout.startswith(f"added release 1.1.0 for {COMPATIBLE}, ")
    assert digest in out.stdout and "signature verified" in out.stdout
    stored = data / "releases" / f"{digest}.raucb"
    assert stored.read_bytes() == pki.bundles["1.1.0"].read_bytes()
    # the same bundle again: nothing new; another bundle under the same version: refused
    again = add_release(data, pki.bundles["1.1.0"], key)
    assert again.returncode == 0 and again.stdout.startswith("already there: release 1.1.0")
    clash = add_release(data, pki.bundles["1.1.0-again"], key)
    assert clash.returncode == 1 and "give the new bundle a new version" in clash.stderr
    assert sorted(p.name for p in (data / "releases").glob("*.raucb")) == [f"{digest}.raucb"]
    # --version contradicting the manifest
    out = add_release(data, pki.bundles["1.2.0"], key, "--version", "9.9")
    assert out.returncode == 1 and "differs from the bundle's own version" in out.stderr

    from appliance.fleet.db import FleetDB
    with FleetDB(data / "fleet.db") as db:
        got = rows(db, "SELECT version, compatible, sha256, size, verified, signer FROM releases")
        audit = rows(db, "SELECT action, detail FROM admin_audit")
    assert got == [("1.1.0", COMPATIBLE, digest, pki.bundles["1.1.0"].stat().st_size, 1,
                    "O = Test, CN = release")]
    assert [a for a, _d in audit] == ["add-release"]


# -------------------------------------------------------------------------- hub helpers
def check_request(hub_id: str, token: str, update: dict[str, Any] | None,
                  **over: Any) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps({"hub_id": hub_id, "sent_at": "2026-01-01T00:00:00Z",
                         "update": update, **over})
    return body, {"Content-Type": "application/json", "X-Hub-Id": hub_id,
                  "Authorization": f"Bearer {token}", "X-Hub-Signature": sign(token, body)}


def report(seq: int, state: str = "idle", **over: Any) -> dict[str, Any]:
    return {"seq": seq, "state": state, "version": "1.0.0", "compatible": COMPATIBLE,
            "booted_slot": "A", **over}


async def check(server: FleetServer, hub_id: str, update: dict[str, Any] | None,
                **kw: Any) -> tuple[int, dict[str, Any]]:
    body, headers = check_request(hub_id, server.tokens[hub_id], update)
    headers.update(kw.pop("headers", {}))
    async with server.session.post(server.url + "/api/updates/check", data=kw.get("data", body),
                                   headers=headers) as r:
        return r.status, orjson.loads(await r.read())


def read_headers(hub_id: str, token: str, path: str) -> dict[str, str]:
    return {"X-Hub-Id": hub_id, "Authorization": f"Bearer {token}",
            "X-Hub-Signature": sign(token, target_message(path))}


async def offered(server: FleetServer, hub_id: str, compatible: str = COMPATIBLE
                  ) -> str | None:
    status, body = await check(server, hub_id, report(int(time.time() * 1000),
                                                      compatible=compatible))
    assert status == 200, body
    rel = body["response"]["release"]
    return None if rel is None else rel["version"]


def releases_in(server: FleetServer, pki: Pki, *names: str) -> dict[str, str]:
    """Add bundles to the running server's data dir as the CLI does; name -> sha256."""
    from appliance.fleet import releases
    out = {}
    for name in names:
        rel = releases.add_release(server.db, server.config, pki.bundles[name], by="test",
                                   now=time.time())
        out[name] = rel.sha256
    return out


@pytest.fixture
def keyed(server: FleetServer, pki: Pki) -> FleetServer:
    server.config.set("update", "fleet_keyring", str(pki.national.cert))
    for hub, district, division in (("ramu", "Cox's Bazar", "Chattogram"),
                                    ("ukhia", "Cox's Bazar", "Chattogram"),
                                    ("sylhet-sadar", "Sylhet", "Sylhet"),
                                    ("savar", "Dhaka", "Dhaka")):
        server.enroll(hub, district=district, division=division)
    return server


async def post_rollout(server: FleetServer, **body: Any) -> tuple[int, dict[str, Any]]:
    async with server.session.post(server.url + "/api/rollouts", json=body) as r:
        return r.status, orjson.loads(await r.read())


# ----------------------------------------------------------------------------- rollouts
async def test_the_most_specific_rollout_for_the_hubs_hardware_wins(keyed: FleetServer,
                                                                   pki: Pki) -> None:
    server = keyed
    releases_in(server, pki, "1.1.0", "1.2.0", "other-hw")
    assert await offered(server, "ramu") is None  # nothing rolled out yet
    assert (await post_rollout(server, release="1.1.0", scope="all",
                               compatible=COMPATIBLE))[0] == 201
    status, body = await post_rollout(server, release="1.2.0", scope="district",
                                      target="cox's bazar")  # spelling as the hubs have it
    assert status == 201 and body["response"]["target"] == "Cox's Bazar", body
    status, body = await post_rollout(server, release="1.1.0", scope="hub", target="ukhia",
                                      compatible=COMPATIBLE)
    assert status == 201, body
    assert {h: await offered(server, h) for h in ("ramu", "ukhia", "sylhet-sadar")} == \
        {"ramu": "1.2.0", "ukhia": "1.1.0", "sylhet-sadar": "1.1.0"}
    # other hardware gets the release built for it, or nothing
    assert await offered(server, "savar", "upazila-hub-amd64") is None
    await post_rollout(server, release="1.1.0", scope="division", target="Dhaka",
                       compatible="upazila-hub-amd64")
    assert await offered(server, "savar", "upazila-hub-amd64") == "1.1.0"
    # a hub that never said what it is gets nothing it might not boot; one that did is
    # remembered when a check carries no report
    server.enroll("fresh", district="Sylhet", division="Sylhet")
    status, body = await check(server, "fresh", None)
    assert status == 200 and body["response"]["release"] is None
    status, body = await check(server, "sylhet-sadar", None)
    assert body["response"]["release"]["version"] == "1.1.0"
    # a new rollout to the same district supersedes the old; stopping it falls back to "all"
    status, body = await post_rollout(server, release="1.1.0", scope="district",
                                      target="Cox's Bazar", compatible=COMPATIBLE)
    rid = body["response"]["id"]
    assert await offered(server, "ramu") == "1.1.0"
    async with server.session.post(server.url + f"/api/rollouts/{rid}/cancel") as r:
        assert r.status == 200
    assert await offered(server, "ramu") == "1.1.0"  # from "all" now
    _, listing = await server.get_json("/api/rollouts")
    district = [r for r in listing["rollouts"] if r["scope"] == "district"]
    assert [(r["release"]["version"], r["active"]) for r in district] == \
        [("1.1.0", False), ("1.2.0", False)]
    assert "superseded by rollout" in district[1]["cancelled_by"]


# ---------------------------------------------------------------------------- hub API
async def test_hub_update_api_authenticates_like_heartbeats(keyed: FleetServer,
                                                            pki: Pki) -> None:
    server = keyed
    digest = releases_in(server, pki, "1.2.0")["1.2.0"]
    await post_rollout(server, release="1.2.0", scope="hub", target="ramu")
    url = server.url + "/api/updates/check"
    body, headers = check_request("ramu", server.tokens["ramu"], report(1))
    async with client_session() as anon:
        cases: list[tuple[dict[str, str], bytes, int, str]] = [
            ({**headers, "Authorization": "Bearer nope"}, body, 401, "auth"),
            ({**headers, "X-Hub-Signature": sign("nope", body)}, body, 401, "signature"),
            ({k: v for k, v in headers.items() if k != "X-Hub-Id"}, body, 401, "auth"),
            ({**headers, "Content-Type": "text/plain"}, body, 415, "content_type")]
        other, oh = check_request("ukhia", server.tokens["ramu"], report(1))
        oh["X-Hub-Id"] = "ramu"
        cases.append((oh, other, 403, "hub_mismatch"))
        for bad_body in (b"{not json", orjson.dumps([1]),
                         orjson.dumps({"hub_id": "ramu", "update": report(1, "dancing")}),
                         orjson.dumps({"hub_id": "ramu", "update": report(-1)}),
                         orjson.dumps({"hub_id": "ramu", "update": report(1, bytes="x")}),
                         orjson.dumps({"hub_id": "ramu", "update": report(1, sha256="zz")})):
            cases.append(({**headers, "X-Hub-Signature": sign(server.tokens["ramu"], bad_body)},
                          bad_body, 400, ""))
        for h, b, status, code in cases:
            async with anon.post(url, data=b, headers=h) as r:
                reply = orjson.loads(await r.read())
            assert r.status == status, (h, b, reply)
            assert_web_message(reply, status)
            if code:
                assert reply.get("errorCode") == code, reply
        # the bundle: signed GET of its path; only the hub it is rolled out to
        path = f"/api/updates/bundles/{digest}"
        good = read_headers("ramu", server.tokens["ramu"], path)
        for h, p, status in (
                ({**good, "X-Hub-Signature": sign(server.tokens["ramu"], b"GET /other")}, path,
                 401),
                (read_headers("ukhia", server.tokens["ukhia"], path), path, 403),
                (read_headers("ramu", server.tokens["ramu"], "/api/updates/bundles/" + "a" * 64),
                 "/api/updates/bundles/" + "a" * 64, 404),
                (read_headers("ramu", server.tokens["ramu"], "/api/updates/bundles/xyz"),
                 "/api/updates/bundles/xyz", 400)):
            async with anon.get(server.url + p, headers=h) as r:
                reply = orjson.loads(await r.read())
            assert r.status == status, (p, reply)
            assert_web_message(reply, status)
        whole = pki.bundles["1.2.0"].read_bytes()
        async with anon.get(server.url + path, headers=good) as r:
            assert r.status == 200 and await r.read() == whole
            assert r.headers["Accept-Ranges"] == "bytes"
        async with anon.get(server.url + path, headers={**good, "Range": "bytes=1000-"}) as r:
            assert r.status == 206
            assert r.headers["Content-Range"] == f"bytes 1000-{len(whole) - 1}/{len(whole)}"
            assert await r.read() == whole[1000:]
        async with anon.get(server.url + path,
                            headers={**good, "Range": f"bytes={len(whole)}-"}) as r:
            assert r.status == 416


async def test_reports_progress_rollback_alert_and_pages(keyed: FleetServer, pki: Pki) -> None:
    server = keyed
    digest = releases_in(server, pki, "1.2.0")["1.2.0"]
    status, body = await post_rollout(server, release="1.2.0", scope="district",
                                      target="Cox's Bazar")
    rid = body["response"]["id"]
    size = pki.bundles["1.2.0"].stat().st_size
    work = {"rollout_id": rid, "target_version": "1.2.0", "sha256": digest, "size": size}
    assert (await check(server, "ramu", report(3, "downloading", bytes=4096, **work)))[0] == 200
    assert (await check(server, "ukhia", report(1)))[0] == 200  # offered, nothing since
    _, ro = await server.get_json(f"/api/rollouts/{rid}")
    assert ro["hubs_total"] == 2 and ro["counts"]["downloading"] == 1 \
        and ro["counts"]["offered"] == 1, ro
    assert {h["hub_id"]: (h["progress"], h["bytes"]) for h in ro["hubs"]} == \
        {"ramu": ("downloading", 4096), "ukhia": ("offered", None)}

    # ukhia rolls back; its heartbeat says so (and an older queued report changes nothing)
    why = "1.2.0 was not healthy within 900 s: sync finished no cycle"
    status, _ = await server.send(heartbeat("ukhia", seq=1, update=report(
        7, "rolled_back", reason=why, **work)))
    assert status == 200
    status, _ = await server.send(heartbeat("ukhia", seq=2, update=report(5, "downloading",
                                                                          **work)))
    assert status == 200
    _, hub = await server.get_json("/api/hubs/ukhia")
    assert hub["update"]["state"] == "rolled_back" and hub["update"]["reason"] == why
    assert hub["state"] == "amber" and "update_rollback" in hub["alerts"]
    _, alerts = await server.get_json("/api/alerts?hub=ukhia")
    assert [(a["code"], a["message"]) for a in alerts["alerts"]] == [
        ("update_rollback", f"rolled back from 1.2.0 to the previous release: {why}")]
    # ramu commits
    await check(server, "ramu", report(9, "committed", version="1.2.0", **work))
    _, ro = await server.get_json(f"/api/rollouts/{rid}")
    assert (ro["done"], ro["trouble"]) == (1, 1)
    _, overview = await server.get_json("/api/rollouts")
    assert {(v["version"], v["hubs"]) for v in overview["versions"]} >= {("1.2.0", 1)}

    status, page, _ = await server.get_text("/updates")
    assert status == 200
    assert f'data-rollout="{rid}"' in page and "1/2" in page
    assert 'data-hub="ukhia"' in page and "sync finished no cycle" in page
    status, page, _ = await server.get_text(f"/updates/rollouts/{rid}")
    assert status == 200 and 'data-progress="rolled_back"' in page \
        and 'data-progress="committed"' in page
    status, page, _ = await server.get_text("/hubs/ukhia")
    assert "<h2>Software update</h2>" in page and "rolled back" in page
    status, metrics, _ = await server.get_text("/metrics")
    assert 'fleet_alerts{code="update_rollback"} 1' in metrics
    # national stops the rollout: ukhia goes idle, the alert resolves
    async with server.session.post(server.url + f"/api/rollouts/{rid}/cancel") as r:
        assert r.status == 200
    await check(server, "ukhia", report(8, "idle"))
    _, hub = await server.get_json("/api/hubs/ukhia")
    assert hub["state"] == "green" and [e["state"] for e in hub["update"]["events"]] == \
        ["idle", "rolled_back", "idle"]


async def test_rollout_api_is_for_admins_and_audited(keyed: FleetServer, pki: Pki) -> None:
    server = keyed
    releases_in(server, pki, "1.1.0")
    add_user(server.db, VIEWER[0], "viewer", VIEWER[1])
    async with client_session() as s:
        assert (await login(s, server.url, *VIEWER)).status == 303
        async with s.post(server.url + "/api/rollouts",
                          json={"release": "1.1.0", "scope": "all"}) as r:
            assert r.status == 403
        async with s.get(server.url + "/api/rollouts") as r:
            assert r.status == 200
    for body, status, words in (
            ({"release": "1.1.0", "scope": "planet"}, 400, "scope must be one of"),
            ({"release": "1.1.0", "scope": "all", "target": "x"}, 400, "takes no target"),
            ({"release": "1.1.0", "scope": "district"}, 400, "needs a target"),
            ({"release": "1.1.0", "scope": "district", "target": "Atlantis"}, 400,
             "no enrolled hub is in the district"),
            ({"release": "1.1.0", "scope": "hub", "target": "nowhere"}, 404, "no hub"),
            ({"release": "7.7.7", "scope": "all"}, 404, "no release"),
            ({"release": "1.1.0", "scope": "all", "colour": "red"}, 400, "Unknown field"),
            ({"release": 5, "scope": "all"}, 400, "release must be text"),
            ({"scope": "all"}, 400, "release and scope are required")):
        status_got, reply = await post_rollout(server, **body)
        assert status_got == status, (body, reply)
        assert_web_message(reply, status)
        assert words in reply["message"], reply
    async with server.session.post(server.url + "/api/rollouts", data=b"[1,",
                                   headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400
    status, reply = await post_rollout(server, release="1.1.0", scope="all")
    assert status == 201
    rid = reply["response"]["id"]
    async with server.session.post(server.url + f"/api/rollouts/{rid}/cancel") as r:
        assert r.status == 200
    async with server.session.post(server.url + f"/api/rollouts/{rid}/cancel") as r:
        assert r.status == 409
    for path, status in ((f"/api/rollouts/{rid + 10}", 404), ("/api/rollouts/x", 400),
                         ("/updates/rollouts/99", 404)):
        async with server.session.get(server.url + path) as r:
            assert r.status == status, path
    audit = rows(server.db, "SELECT username, action, detail FROM admin_audit ORDER BY id")
    assert [(u, a) for u, a, _ in audit] == [("test", "add-release"), ("national", "rollout"),
                                            ("national", "cancel-rollout")]
    assert json.loads(audit[1][2])["scope"] == "all"


async def test_cli_rollout_and_stop(tmp_path: Path, pki: Pki) -> None:
    data = tmp_path / "data"
    assert add_release(data, pki.bundles["1.1.0"], pki.national.cert).returncode == 0
    from appliance.fleet.db import FleetDB
    with FleetDB(data / "fleet.db") as db:
        db.add_hubs([NewHub("ramu", district="Cox's Bazar", division="Chattogram")])
    out = fleet_cli("--data-dir", str(data), "rollout", "--release", "1.1.0",
                    "--district", "COX'S BAZAR")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"rollout 1: 1.1.0 ({COMPATIBLE}) to district Cox's Bazar"
    out = fleet_cli("--data-dir", str(data), "rollout", "--release", "9", "--all")
    assert out.returncode == 1 and "no release '9'" in out.stderr
    out = fleet_cli("--data-dir", str(data), "stop-rollout", "1")
    assert out.returncode == 0 and out.stdout.strip() == "rollout 1 (1.1.0) stopped"
    out = fleet_cli("--data-dir", str(data), "stop-rollout", "1")
    assert out.returncode == 1 and "already stopped" in out.stderr
