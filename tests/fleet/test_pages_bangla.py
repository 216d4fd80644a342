"""The fleet's pages in Bangla (issue 14): Bangla by default (``[fleet] language``), the
বাংলা | English switch as plain links, the choice kept in a cookie (the login form) and in
the fleet user's record (audited), so it follows the user to another computer; no English
catalogue string left on a Bangla page. The ``server`` fixture is configured English
(conftest.py); the tests of the default build their own."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from appliance.errors import ConfigError
from appliance.fleet.alerts import ALL_CODES
from appliance.fleet.pages import RULE_WORDS, SAMPLE_LABELS
from appliance.fleet.web import create_app
from appliance.i18n import messages
from tests.i18n.test_locale_api import english_left

from .conftest import (
    ADMIN,
    FleetServer,
    client_session,
    heartbeat,
    login,
    make_config,
    sample,
    serve_fleet,
)
from .test_command import fleet_cli


async def test_bangla_by_default_english_one_click_away(tmp_path: Path) -> None:
    """Default config: a stranger's login form and a user's dashboard are Bangla; ``?lang=en``
    switches that user to English, and their account remembers it."""
    async with serve_fleet(make_config(tmp_path / "data")) as server:
        server.enroll("ramu", name="Ramu UHC", district="Cox's Bazar", division="Chattogram")
        async with client_session() as anon:
            async with anon.get(server.url + "/login") as r:
                html = await r.text()
            assert r.status == 200 and '<html lang="bn"' in html
            assert "ফ্লিট: লগ ইন" in html and english_left(html) == []
            assert "fleet_lang" not in r.headers.get("Set-Cookie", "")  # nothing chosen yet

        status, html, _ = await server.get_text("/")
        assert status == 200 and '<html lang="bn"' in html and "ফ্লিট: উপজেলা হাব" in html
        assert '<a href="?lang=en" lang="en">English</a>' in html

        status, html, r = await server.get_text("/?lang=en")
        assert status == 200 and '<html lang="en"' in html and ">Hubs</a>" in html
        assert "fleet_lang=en" in r.get("Set-Cookie", "")
        status, html, _ = await server.get_text("/alerts")  # no ?lang: still English
        assert '<html lang="en"' in html

        # the account holds it: a fresh browser (no cookie) logs in and reads English
        async with client_session() as other:
            assert (await login(other, server.url, *ADMIN)).status == 303
            async with other.get(server.url + "/") as r:
                assert '<html lang="en"' in await r.text()
            async with other.get(server.url + "/?lang=bn") as r:  # and back, one click
                assert '<html lang="bn"' in await r.text()
        status, html, _ = await server.get_text("/")
        assert '<html lang="bn"' in html


async def test_configured_english_is_the_default(tmp_path: Path) -> None:
    async with serve_fleet(make_config(tmp_path / "data", language="en")) as server:
        async with client_session() as anon:
            async with anon.get(server.url + "/login") as r:
                html = await r.text()
            assert '<html lang="en"' in html and "Fleet: log in" in html
        status, html, _ = await server.get_text("/")
        assert status == 200 and '<html lang="en"' in html and ">Hubs</a>" in html


def test_an_unknown_language_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[fleet\] language is 'fr'; use one of: bn, en"):
        create_app(make_config(tmp_path, language="fr"))
    # the service refuses to start, naming the key, instead of serving a fallback
    toml = tmp_path / "hub.toml"
    toml.write_text('[fleet]\nlanguage = "english"\n')
    out = fleet_cli("--config", str(toml), "--data-dir", str(tmp_path / "data"),
                    "--port", "0")
    assert out.returncode == 1, out.stderr
    assert "[fleet] language is 'english'; use one of: bn, en" in out.stderr
    assert "Traceback" not in out.stderr


async def test_switch_to_bangla_follows_the_user(server: FleetServer) -> None:
    server.enroll("ramu", name="Ramu UHC", district="Cox's Bazar", division="Chattogram")
    hb = heartbeat("ramu", samples=[sample(time.time() - 5, temp_c=91.0)])
    assert (await server.send(hb))[0] == 200

    status, html, r = await server.get_text("/")
    assert status == 200 and '<html lang="en"' in html and ">Hubs</a>" in html
    assert '<a href="?lang=bn" lang="bn">বাংলা</a>' in html

    status, html, r = await server.get_text("/?lang=bn")
    assert status == 200 and '<html lang="bn"' in html
    assert "fleet_lang=bn" in r.get("Set-Cookie", "")
    assert "ফ্লিট: উপজেলা হাব" in html and "উপজেলা / জেলা" in html
    assert english_left(html) == []
    for path in ("/alerts", "/hubs/ramu", "/?state=red", "/updates"):
        status, html, _ = await server.get_text(path)
        assert status == 200 and '<html lang="bn"' in html, path
        # the latest sample's keys stay in its rows' tooltips, for whoever greps the logs
        assert [s for s in english_left(html) if s not in SAMPLE_LABELS] == [], path

    # the user's record holds it, audited: a fresh browser (no cookie) reads Bangla after login
    rows = server.db.read_sync(lambda c: c.execute(
        "SELECT u.locale, a.action, a.detail FROM users u JOIN admin_audit a "
        "ON a.username = u.username WHERE u.username = ? AND a.action = 'locale'",
        (ADMIN[0],)).fetchall())
    assert [tuple(x) for x in rows] == [("bn", "locale", '{"locale": "bn"}')]
    async with client_session() as other:
        async with other.get(server.url + "/login") as r:
            assert '<html lang="en"' in await r.text()  # a stranger's login form: configured en
        assert (await login(other, server.url, *ADMIN)).status in (302, 303)
        async with other.get(server.url + "/") as r:
            assert '<html lang="bn"' in await r.text()

    # and back: English
    status, html, _ = await server.get_text("/?lang=en")
    assert '<html lang="en"' in html and ">Hubs</a>" in html
    status, html, _ = await server.get_text("/alerts")
    assert '<html lang="en"' in html


async def test_login_form_speaks_the_cookie(server: FleetServer) -> None:
    async with client_session() as anon:
        async with anon.get(server.url + "/login?lang=bn") as r:
            html = await r.text()
        assert '<html lang="bn"' in html and english_left(html) == []
        async with anon.get(server.url + "/login") as r:  # the cookie remembers
            assert '<html lang="bn"' in await r.text()


def test_words_inside_f_strings_are_in_the_catalogue() -> None:
    """Babel's extractor skips calls inside f-strings: each tr('...') there must be marked
    elsewhere (the modules' _IN_FSTRINGS) and so translated."""
    bn = messages("bn")
    fleet = Path(__file__).parents[2] / "appliance" / "fleet"
    missing = []
    for path in sorted(fleet.glob("*.py")):
        for js in ast.walk(ast.parse(path.read_text())):
            if not isinstance(js, ast.JoinedStr):
                continue
            for n in ast.walk(js):
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and \
                        n.func.id == "tr" and n.args and isinstance(n.args[0], ast.Constant) \
                        and not bn.get(str(n.args[0].value)):
                    missing.append(f"{path.name}: {n.args[0].value}")
    assert missing == []


def test_every_alert_rule_has_words() -> None:
    assert set(RULE_WORDS) == set(ALL_CODES)


async def test_alerts_read_in_the_page_s_language(server: FleetServer) -> None:
    """The fleet keeps each alert's English message (the API, the logs) and its template
    with the values: a Bangla page says it in Bangla, digits included."""
    server.enroll("ramu", name="Ramu UHC", district="Cox's Bazar", division="Chattogram")
    hb = heartbeat("ramu", samples=[sample(time.time() - 5, temp_c=91.0, disk_pct=97.5)])
    assert (await server.send(hb))[0] == 200
    status, html, _ = await server.get_text("/alerts?lang=en")
    assert "temperature 91.0 °C (over" in html and "disk 97.5% full (over" in html
    for path in ("/alerts?lang=bn", "/hubs/ramu"):
        status, html, _ = await server.get_text(path)
        assert status == 200 and "তাপমাত্রা ৯১.০ °সে" in html, path
        assert "ডিস্ক ৯৭.৫% ভরা" in html, path
        assert "temperature 91.0" not in html and "disk 97.5%" not in html, path
    status, doc = await server.get_json("/api/alerts")
    assert status == 200 and any(str(a["message"]).startswith("temperature 91.0 °C")
                                 for a in doc["alerts"]), doc
