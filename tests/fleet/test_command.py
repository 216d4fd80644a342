"""``appliance fleet add-hub`` prints a token that works; duplicates and rotation."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from appliance.fleet import command
from appliance.fleet.db import FleetDB
from appliance.fleet.simulator import make_hubs
from appliance.fleet.web import create_app, start

from .conftest import heartbeat, make_config, signed

REPO = Path(__file__).resolve().parents[2]


def fleet_cli(*args: str, entry: str = "appliance.cli",
              stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``appliance fleet ARGS`` through the real console-script module."""
    pre = ["fleet"] if entry == "appliance.cli" else []
    return subprocess.run([sys.executable, "-m", entry, *pre, *args], input=stdin,
                          capture_output=True, text=True, cwd=REPO, timeout=60)


async def test_add_hub_prints_a_working_token(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = fleet_cli("--data-dir", str(data), "add-hub", "--hub-id", "ramu", "--name",
                    "Ramu UHC hub", "--district", "Cox's Bazar", "--division", "Chattogram",
                    "--upazila", "Ramu")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1, out.stdout
    token = lines[0]
    assert len(token) >= 40 and " " not in token
    assert oct((data / "fleet.key").stat().st_mode & 0o777) == "0o600"

    # --data-dir after the action works as well; so does the module's own entry point
    out2 = fleet_cli("add-hub", "--hub-id", "cox", "--data-dir", str(data),
                     entry="appliance.fleet.command")
    assert out2.returncode == 0, out2.stderr

    cfg = make_config(data)
    db = FleetDB(data / "fleet.db")
    runner, url = await start(create_app(cfg, db))
    try:
        async with aiohttp.ClientSession() as s:
            body, headers = signed(heartbeat("ramu", seq=1), "ramu", token)
            async with s.post(url + "/api/heartbeats", data=body, headers=headers) as r:
                assert r.status == 200, await r.text()
            body, headers = signed(heartbeat("cox", seq=1), "cox", token)  # ramu's token
            async with s.post(url + "/api/heartbeats", data=body, headers=headers) as r:
                assert r.status == 401

            # the hash, not the token, is what authenticates; the token is stored wrapped
            row = db.read_sync(lambda c: c.execute(
                "SELECT token_hash, token_secret, name, upazila FROM hubs WHERE id='ramu'"
            ).fetchone())
            assert token not in tuple(row)
            assert tuple(row)[2:] == ("Ramu UHC hub", "Ramu")

            # enrolling twice is refused; --rotate issues a new token, the old one stops
            dup = fleet_cli("--data-dir", str(data), "add-hub", "--hub-id", "ramu")
            assert dup.returncode == 1
            assert "already enrolled" in dup.stderr and dup.stdout == ""
            rot = fleet_cli("--data-dir", str(data), "add-hub", "--hub-id", "ramu", "--rotate")
            assert rot.returncode == 0, rot.stderr
            new = rot.stdout.strip()
            assert new != token
            body, headers = signed(heartbeat("ramu", seq=2), "ramu", token)
            async with s.post(url + "/api/heartbeats", data=body, headers=headers) as r:
                assert r.status == 401
            # a re-flashed card starts its seq again: seq 1 is accepted after rotation
            body, headers = signed(heartbeat("ramu", seq=1, boot_id="new-card"), "ramu", new)
            async with s.post(url + "/api/heartbeats", data=body, headers=headers) as r:
                assert r.status == 200, await r.text()
    finally:
        await runner.cleanup()
        db.close()


def test_bad_hub_id_is_refused(tmp_path: Path) -> None:
    out = fleet_cli("--data-dir", str(tmp_path), "add-hub", "--hub-id", "../etc")
    assert out.returncode == 1
    assert "hub id" in out.stderr


def test_parser_contract() -> None:
    """The interface appliance.cli relies on: add_arguments on the `fleet` subparser."""
    parser = argparse.ArgumentParser(prog="appliance")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("fleet")
    p.add_argument("--config")
    p.add_argument("--data-dir")
    command.add_arguments(p)
    args = parser.parse_args(["fleet", "--port", "9999"])
    assert args.fleet_action is None and args.port == 9999
    args = parser.parse_args(["fleet", "--data-dir", "/d", "add-hub", "--hub-id", "x"])
    assert (args.fleet_action, args.hub_id, args.data_dir) == ("add-hub", "x", "/d")
    args = parser.parse_args(["fleet", "simulate", "--hubs", "20", "--url", "http://h:1"])
    assert (args.hubs, args.url, args.rounds) == (20, "http://h:1", 1)


def test_serve_and_simulate_from_the_cli(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "fleet", "--data-dir", data,
         "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("fleet ready: http://127.0.0.1:"), line + (
            proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        url = line.split(": ", 1)[1].strip().rstrip("/")
        sim = fleet_cli("--data-dir", data, "simulate", "--hubs", "30", "--url", url,
                        "--rounds", "2", "--interval", "0")
        assert sim.returncode == 0, sim.stderr
        live = sum(1 for h in make_hubs(30) if h.profile != "silent")
        assert f"sent {2 * live} heartbeats from 30 hubs: {2 * live} accepted" in sim.stderr

        # the API needs a fleet user: made by the CLI, logged in through the login form
        made = fleet_cli("--data-dir", data, "add-user", "--username", "dghs", "--role",
                         "viewer", stdin="viewer-password\n")
        assert made.returncode == 0, made.stderr
        assert made.stdout == "created fleet user dghs (viewer)\n"
        import http.cookiejar
        import json
        import urllib.parse
        import urllib.request
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = urllib.parse.urlencode({"username": "dghs", "password": "viewer-password"})
        with browser.open(url + "/login", data=form.encode()) as r:
            assert r.geturl() == url + "/"  # redirected to the dashboard
        with browser.open(url + "/api/hubs?paging=false") as r:
            hubs = json.load(r)["hubs"]
        assert len(hubs) == 30
        assert {h["state"] for h in hubs} >= {"red", "amber", "green"}
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


@pytest.mark.slow
def test_tls_names(tmp_path: Path) -> None:
    """add-hub --tls-name and set-tls-name (#12): one name per hub, normalised, audited."""
    data = tmp_path / "data"
    out = fleet_cli("--data-dir", str(data), "add-hub", "--hub-id", "ramu", "--tls-name",
                    "Ramu.Hub.Example.Test.")
    assert out.returncode == 0, out.stderr
    out = fleet_cli("--data-dir", str(data), "add-hub", "--hub-id", "cox")
    assert out.returncode == 0, out.stderr
    # another hub may not take ramu's name; a bad name is refused with the reason
    out = fleet_cli("--data-dir", str(data), "set-tls-name", "--hub-id", "cox",
                    "ramu.hub.example.test")
    assert out.returncode == 1 and "already belongs to hub ramu" in out.stderr
    out = fleet_cli("--data-dir", str(data), "set-tls-name", "--hub-id", "cox", "cox hub")
    assert out.returncode == 1 and "is not a DNS name" in out.stderr
    out = fleet_cli("--data-dir", str(data), "set-tls-name", "--hub-id", "nobody",
                    "x.hub.example.test")
    assert out.returncode == 1 and "no hub 'nobody'" in out.stderr
    out = fleet_cli("--data-dir", str(data), "set-tls-name", "--hub-id", "cox",
                    "cox.hub.example.test")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hub cox: HTTPS name is now cox.hub.example.test (was none)"
    with FleetDB(data / "fleet.db") as db:
        db.write_sync(lambda c: c.execute(
            "UPDATE hubs SET lan_ip='10.77.0.1', published_ip='10.77.0.1' WHERE id='cox'"))
    # renaming forgets what was published for the old name, so the new one gets published
    out = fleet_cli("--data-dir", str(data), "set-tls-name", "--hub-id", "cox",
                    "coxsbazar.hub.example.test")
    assert out.returncode == 0, out.stderr
    with FleetDB(data / "fleet.db") as db:
        rows = {r["id"]: (r["tls_name"], r["published_ip"]) for r in db.read_sync(
            lambda c: c.execute("SELECT id, tls_name, published_ip FROM hubs").fetchall())}
        audit = db.read_sync(lambda c: c.execute(
            "SELECT action FROM admin_audit WHERE action='set-tls-name'").fetchall())
    assert rows == {"ramu": ("ramu.hub.example.test", None),
                    "cox": ("coxsbazar.hub.example.test", None)}
    assert len(audit) == 2
    out = fleet_cli("--data-dir", str(data), "set-tls-name", "--hub-id", "cox", "")
    assert out.returncode == 0 and "removed" in out.stdout
