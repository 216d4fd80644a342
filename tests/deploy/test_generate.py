"""``appliance provision generate``: one private, loadable hub.toml per upazila."""

from __future__ import annotations

import csv
import json
import stat
import tomllib
from pathlib import Path

import pytest

from appliance import config, demo
from appliance.provisioning.generate import PAT_PLACEHOLDER, hub_ids, slug, upazilas

from .conftest import appliance, has_module, host_key_lines


def _level4() -> dict[str, dict]:
    return {o["id"]: o for o in demo.national()["organisationUnits"] if o["level"] == 4}


def test_one_file_per_upazila(demo_files: Path) -> None:
    files = sorted(demo_files.glob("*.toml"))
    ous = _level4()
    assert len(files) == len(ous) >= 10
    seen = {tomllib.loads(f.read_text())["hub"]["org_unit"] for f in files}
    assert seen == set(ous)
    assert stat.S_IMODE(demo_files.stat().st_mode) == 0o700


def test_ramu_file(demo_files: Path) -> None:
    path = demo_files / "coxs-bazar-ramu.toml"  # <district>-<upazila>.toml
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cfg = config.load(path)  # refuses secrets in a file others can read
    assert cfg.get("hub", "org_unit") == demo.RAMU_UID
    assert cfg.get("hub", "id") == "coxs-bazar-ramu"
    assert cfg.get("hub", "name") == "Ramu UHC hub"
    assert cfg.get("national", "url") == "http://127.0.0.1:8081"
    # the stand-in has Ramu's service account, so the demo file works as generated
    assert cfg.get("national", "token") == demo.DEMO_TOKENS["hub-ramu"]
    assert cfg.get("gpio", "enabled") is True and cfg.get("gpio", "led_status") == 17
    assert cfg.get("sync", "policy") == "latest-wins"


def test_other_upazilas_carry_the_pat_placeholder(demo_files: Path) -> None:
    cfg = config.load(demo_files / "coxs-bazar-ukhia.toml")
    assert cfg.get("national", "token") == PAT_PLACEHOLDER


def test_index_csv(demo_files: Path) -> None:
    with (demo_files / "index.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(_level4())
    ramu = next(r for r in rows if r["org_unit"] == demo.RAMU_UID)
    assert ramu == {**ramu, "file": "coxs-bazar-ramu.toml", "upazila": "Ramu",
                    "district": "Cox's Bazar", "division": "Chattogram",
                    "national_token": "set", "fleet_token": "none"}
    text = (demo_files / "index.csv").read_text()
    assert demo.DEMO_TOKENS["hub-ramu"] not in text  # no secret in the index


def test_generate_from_a_metadata_file(tmp_path: Path) -> None:
    meta = tmp_path / "metadata.json"
    # the /api/organisationUnits shape: only the fields the generator needs
    doc = {"organisationUnits": [
        {k: o[k] for k in ("id", "name", "code", "level", "path", "parent") if k in o}
        for o in demo.national()["organisationUnits"]]}
    meta.write_text(json.dumps(doc))
    out = tmp_path / "hubs"
    keys = tmp_path / "backup-host-keys"
    keys.write_text(host_key_lines()[0])
    assert appliance("provision", "generate", "--national-metadata", str(meta), "--out",
                     str(out), "--national-url", "https://dhis2.example.org",
                     "--replica-template", "sftp://backup@backup.example.org/hubs/{hub_id}",
                     "--backup-host-key", str(keys)) == 0
    cfg = config.load(out / "coxs-bazar-ramu.toml")
    assert cfg.get("national", "url") == "https://dhis2.example.org"
    assert cfg.get("national", "token") == PAT_PLACEHOLDER
    assert cfg.get("backup", "replica") == "sftp://backup@backup.example.org/hubs/coxs-bazar-ramu"


def test_metadata_file_needs_a_national_url(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps(demo.national()))
    assert appliance("provision", "generate", "--national-metadata", str(meta),
                     "--out", str(tmp_path / "o")) == 1
    assert "--national-url" in capsys.readouterr().err


def test_names_are_safe_and_unique() -> None:
    assert slug("Cox's Bazar") == "coxs-bazar"
    assert slug("Chapai Nawabganj Sadar") == "chapai-nawabganj-sadar"
    items = upazilas(demo.national())
    twin = items[0].__class__(uid="Abcdefghij1", name=items[0].name, code="OU_X",
                              district=items[0].district, division=items[0].division)
    ids = hub_ids([*items, twin])
    assert len(set(ids.values())) == len(items) + 1  # a collision gets the code appended
    assert ids["Abcdefghij1"].endswith("-ou-x")


@pytest.mark.skipif(not has_module("appliance.fleet.command"), reason="fleet not in this build")
def test_fleet_tokens_from_add_hub(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, fleet_dir = tmp_path / "hubs", tmp_path / "fleet"
    args = ["provision", "generate", "--demo", "--out", str(out),
            "--fleet-url", "http://fleet.example.org", "--fleet-data-dir", str(fleet_dir)]
    # each step's stderr goes in its assertion message: this test once failed only in
    # full-suite runs, and a bare `assert 1 == 0` said nothing about why
    rc = appliance(*args)
    assert rc == 0, capsys.readouterr().err
    tokens = {}
    for f in out.glob("*.toml"):
        cfg = config.load(f)
        assert cfg.get("health", "heartbeat_url") == "http://fleet.example.org/api/heartbeats"
        tokens[cfg.get("hub", "id")] = cfg.get("health", "token")
    assert all(tokens.values()) and len(set(tokens.values())) == len(tokens)
    # the fleet service knows them: its own database, written by `appliance fleet add-hub`
    from appliance.fleet.db import FleetDB
    with FleetDB(fleet_dir / "fleet.db") as db:
        assert db.token_of("coxs-bazar-ramu") == tokens["coxs-bazar-ramu"]
    # again: refused (tokens already out in the field) unless asked to rotate
    capsys.readouterr()
    rc = appliance(*args)
    err = capsys.readouterr().err
    assert rc == 1 and "already enrolled" in err, err
    rc = appliance(*args, "--rotate-fleet-tokens")
    assert rc == 0, capsys.readouterr().err
    assert config.load(out / "coxs-bazar-ramu.toml").get("health", "token") != \
        tokens["coxs-bazar-ramu"]


def test_https_names_under_the_hub_domain(tmp_path: Path) -> None:
    from appliance.provisioning.generate import Upazila, generate, https_names

    items = [Upazila("a", "Ramu", "", "Cox's Bazar", "Chattogram"),
             Upazila("b", "Sadar", "", "Cox's Bazar", "Chattogram"),
             Upazila("c", "Sadar", "", "Bandarban", "Chattogram")]
    names = https_names(items, hub_ids(items), "Hub.DGHS.gov.bd.")
    # tablets type <upazila>.hub.<domain>; the country's many "Sadar"s get their hub id
    assert names == {"a": "ramu.hub.dghs.gov.bd", "b": "coxs-bazar-sadar.hub.dghs.gov.bd",
                     "c": "bandarban-sadar.hub.dghs.gov.bd"}
    for bad in ("", "hub..bd", "hub_x.bd", "-hub.bd"):
        with pytest.raises(config.ConfigError, match="not a DNS domain"):
            https_names(items, hub_ids(items), bad)

    rows = generate(demo.national(), tmp_path / "out", national_url="http://n",
                    hub_domain="hub.dghs.gov.bd", lan="access-point")
    ramu = next(r for r in rows if r.upazila.uid == demo.RAMU_UID)
    assert ramu.https_name == "ramu.hub.dghs.gov.bd"
    cfg = config.load(ramu.file)
    assert cfg.get("tls", "name") == "ramu.hub.dghs.gov.bd"
    assert cfg.get("tls", "listen") == "0.0.0.0:443"
    # the hub as the UHC's access point: it answers DNS and hands out leases on wlan0
    assert cfg.get("dns", "enabled") is True and cfg.get("dns", "interface") == "wlan0"
    assert cfg.get("dns", "dhcp_range") and cfg.get("dns", "address") == "192.168.50.1"
    with (tmp_path / "out" / "index.csv").open(newline="") as f:
        assert {r["https_name"] for r in csv.DictReader(f)} >= {"ramu.hub.dghs.gov.bd"}
    with pytest.raises(config.ConfigError, match="--lan"):
        generate(demo.national(), tmp_path / "x", national_url="http://n",
                 hub_domain="hub.dghs.gov.bd", lan="mesh")


def test_a_modem_budget_goes_into_every_file(tmp_path: Path) -> None:
    """``--modem-budget-mb``: each hub's ``[sync] modem_budget_mb`` (issue 15), which its
    heartbeats carry to the fleet's budget alert; without it, no budget."""
    from appliance.provisioning.generate import generate

    rows = generate(demo.national(), tmp_path / "out", national_url="http://n",
                    modem_budget_mb=2048)
    assert rows and all(config.load(r.file).get("sync", "modem_budget_mb") == 2048
                        for r in rows)
    text = rows[0].file.read_text()
    assert "# The modem's monthly data budget in MB" in text
    plain = generate(demo.national(), tmp_path / "plain", national_url="http://n")
    assert config.load(plain[0].file).get("sync", "modem_budget_mb") == 0
    assert "modem_budget_mb" not in plain[0].file.read_text()
    with pytest.raises(config.ConfigError, match="--modem-budget-mb"):
        generate(demo.national(), tmp_path / "x", national_url="http://n", modem_budget_mb=-1)
