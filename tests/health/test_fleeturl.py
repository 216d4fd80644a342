"""``[health] heartbeat_url`` given as the fleet's base URL or as its heartbeat endpoint."""

from __future__ import annotations

import pytest

from appliance.config import load as load_config
from appliance.health.agent import Settings
from appliance.health.certrenew import default_url as cert_url
from appliance.health.fleeturl import heartbeat_endpoint
from appliance.health.updater import default_url as update_url


@pytest.mark.parametrize("given", [
    "https://fleet.example.gov.bd", "https://fleet.example.gov.bd/",
    "https://fleet.example.gov.bd/api/heartbeats", "https://fleet.example.gov.bd/api/heartbeats/",
])
def test_base_or_endpoint_reach_the_same_fleet(given: str) -> None:
    assert heartbeat_endpoint(given) == "https://fleet.example.gov.bd/api/heartbeats"
    assert cert_url(given) == "https://fleet.example.gov.bd/api/certificates"
    assert update_url(given) == "https://fleet.example.gov.bd/api/updates/check"


def test_a_fleet_behind_a_path_prefix_keeps_it() -> None:
    assert heartbeat_endpoint("https://dghs.example/fleet/") == \
        "https://dghs.example/fleet/api/heartbeats"
    assert cert_url("https://dghs.example/fleet/api/heartbeats") == \
        "https://dghs.example/fleet/api/certificates"


def test_unset_means_no_heartbeats() -> None:
    assert heartbeat_endpoint("") == "" and cert_url("") == "" and update_url("") == ""


def test_the_agent_posts_to_the_endpoint_when_given_the_base(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "hub.toml"
    cfg.write_text('[health]\nheartbeat_url = "http://127.0.0.1:8090/"\ntoken = "t"\n')
    cfg.chmod(0o600)
    settings = Settings.from_config(load_config(cfg, data_dir=tmp_path))
    assert settings.heartbeat_url == "http://127.0.0.1:8090/api/heartbeats"
