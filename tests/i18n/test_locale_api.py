"""The reader's language on the hub (issue 14): DHIS2's user settings per user, the pages'
lang, metadata translations, and no English left on a Bangla page."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import aiohttp

from appliance.i18n import messages
from tests.conftest import ADMIN, CHCP, RunningHub
from tests.hub.cells import cells
from tests.hub.tracker_data import registers

C = cells()
R = registers()


async def test_user_settings_per_user_audited(hub: RunningHub,
                                              http: aiohttp.ClientSession) -> None:
    async with http.get(hub.api("userSettings"), headers=CHCP) as r:
        got = await r.json()
    assert got["keyUiLocale"] == "bn" and got["keyHubDigits"] == "bengali"
    # as DHIS2: POST /api/userSettings/{key}?value=, or the value as the body
    async with http.post(hub.api("userSettings/keyUiLocale") + "?value=en", headers=CHCP) as r:
        assert r.status == 200 and (await r.json())["message"] == "User setting saved"
    async with http.post(hub.api("userSettings/keyHubDigits"), data="latin",
                         headers={**CHCP, "Content-Type": "text/plain"}) as r:
        assert r.status == 200
    async with http.get(hub.api("userSettings/keyUiLocale"), headers=CHCP) as r:
        assert r.content_type == "text/plain" and await r.text() == "en"
    async with http.get(hub.api("userSettings") + "?key=keyUiLocale,keyHubDigits",
                        headers=CHCP) as r:
        assert await r.json() == {"keyUiLocale": "en", "keyHubDigits": "latin"}
    async with http.get(hub.api("me") + "?fields=settings", headers=CHCP) as r:
        assert (await r.json())["settings"]["keyUiLocale"] == "en"
    # another user's stays Bangla
    async with http.get(hub.api("userSettings/keyUiLocale"), headers=ADMIN) as r:
        assert await r.text() == "bn"
    # a JSON object of several; refusals as DHIS2 words them
    async with http.post(hub.api("userSettings"), json={"keyUiLocale": "bn"}, headers=ADMIN) as r:
        assert r.status == 200 and (await r.json())["message"] == "User settings saved"
    async with http.post(hub.api("userSettings/keyNoSuchThing") + "?value=1",
                         headers=CHCP) as r:
        assert r.status == 409 and "Key is not supported" in (await r.json())["message"]
    async with http.post(hub.api("userSettings/keyUiLocale") + "?value=fr", headers=CHCP) as r:
        assert r.status == 400
    async with http.post(hub.api("userSettings/keyUiLocale") + "?value=bn") as r:
        assert r.status == 401
    audit = hub.store.read_sync(lambda c: [tuple(x) for x in c.execute(
        "SELECT username, key, old_value, new_value FROM audit WHERE entity='setting' "
        "ORDER BY id")])
    assert [(u, k.split("|")[1], o, n) for u, k, o, n in audit] == [
        ("chcp", "keyUiLocale", None, '"en"'), ("chcp", "keyHubDigits", None, '"latin"'),
        ("admin", "keyUiLocale", None, '"bn"')]

    # the pages follow the user's setting, whatever the laptop's cookie says
    async with http.get(hub.url + "/hub", headers=CHCP, cookies={"hub_lang": "bn"}) as r:
        assert '<html lang="en"' in await r.text()
    async with http.get(hub.url + "/hub/status", headers=ADMIN, cookies={"hub_lang": "en"}) as r:
        assert '<html lang="bn" data-digits="bengali"' in await r.text()


async def test_metadata_translations(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    ds = C.form1["id"]
    url = hub.api(f"dataSets/{ds}") + "?fields=name,displayName,displayShortName"
    async with http.get(url, headers=CHCP) as r:  # no choice made: the stored names
        assert (await r.json())["displayName"] == "CC Form-1 Services"
    async with http.get(url + "&locale=bn", headers=CHCP) as r:
        got = await r.json()
    assert got == {"name": "CC Form-1 Services", "displayName": "সিসি ফর্ম-১ সেবা",
                   "displayShortName": "সিসি ফ-১ সেবা"}
    async with http.post(hub.api("userSettings/keyDbLocale") + "?value=bn", headers=CHCP) as r:
        assert r.status == 200
    async with http.get(hub.api("categoryOptions") + "?fields=displayName&filter=name:eq:Female"
                        "&paging=false", headers=CHCP) as r:
        assert (await r.json())["categoryOptions"] == [{"displayName": "নারী"}]
    de = C.elements(C.form1)[0]
    async with http.get(hub.api(f"dataElements/{de['id']}") + "?fields=displayFormName",
                        headers=CHCP) as r:
        assert (await r.json())["displayFormName"] == "সেবা নেওয়া রোগী"


async def test_register_metadata_in_bangla(hub: RunningHub,
                                           http: aiohttp.ClientSession) -> None:
    """The register pages' metadata in the reader's language: the programs with their date
    labels, stages, attributes, data elements and options; the lists' program, visit and
    clinic names; the program rules' messages; the user's own clinics."""
    fields = ("displayName,displayIncidentDateLabel,displayEnrollmentDateLabel,"
              "programStages[displayName,displayExecutionDateLabel,programStageDataElements["
              "dataElement[code,displayFormName,optionSet[options[code,displayName]]]]],"
              "programTrackedEntityAttributes[trackedEntityAttribute[code,displayFormName]]")
    maternal = R.program("BD_MATERNAL")["id"]
    url = hub.api(f"programs/{maternal}") + "?fields=" + fields
    async with http.get(url + "&locale=bn", headers=CHCP) as r:
        got = await r.json()
    assert got["displayName"] == "মাতৃস্বাস্থ্য রেজিস্টার"
    assert got["displayIncidentDateLabel"] == "শেষ মাসিকের প্রথম দিন (এলএমপি)"
    assert got["displayEnrollmentDateLabel"] == "নিবন্ধনের তারিখ"
    assert [s["displayName"] for s in got["programStages"]] == [
        "গর্ভকালীন সেবা ভিজিট", "প্রসব", "প্রসবোত্তর সেবা ভিজিট"]
    assert got["programStages"][0]["displayExecutionDateLabel"] == "ভিজিটের তারিখ"
    des = {d["dataElement"]["code"]: d["dataElement"] for s in got["programStages"]
           for d in s["programStageDataElements"]}
    assert des["BD_MAT_WEIGHT"]["displayFormName"] == "ওজন (কেজি)"
    assert {o["code"]: o["displayName"] for o in des["BD_MAT_DELIV_PLACE"]["optionSet"][
        "options"]}["UHC"] == "উপজেলা স্বাস্থ্য কমপ্লেক্স"
    attrs = {a["trackedEntityAttribute"]["code"]: a["trackedEntityAttribute"]["displayFormName"]
             for a in got["programTrackedEntityAttributes"]}
    assert attrs["BD_PHONE"] == "মোবাইল নম্বর" and attrs["BD_VILLAGE"] == "গ্রাম"
    async with http.get(url, headers=CHCP) as r:  # no language asked for: the stored words
        got = await r.json()
    assert (got["displayName"], got["displayIncidentDateLabel"]) == (
        "Maternal register", "First day of last menstrual period (LMP)")

    # the due list names its registers, visits and clinics in the language asked for
    async with http.get(hub.api("hub/lists/due"), headers=CHCP,
                        params={"date": "2026-11-15", "locale": "bn"}) as r:
        due = await r.json()
    assert due["orgUnitName"] == "মেরংলোয়া কমিউনিটি ক্লিনিক"
    assert {v["programName"] for v in due["visits"]} >= {"মাতৃস্বাস্থ্য রেজিস্টার",
                                                          "শিশু স্বাস্থ্য (ইপিআই)"}
    assert all(re.search("[\u0980-\u09FF]", v["stageName"]) for v in due["visits"])

    # a rule's warning in Bangla, its English without a language
    body = {"program": maternal, "enrollmentDate": "2026-11-15", "incidentDate": "2026-08-01",
            "attributes": {R.attr("BD_AGE_YEARS"): "16"}}
    async with http.post(hub.api("hub/rules") + "?locale=bn", json=body, headers=CHCP) as r:
        effects = (await r.json())["effects"]
    assert [e["content"] for e in effects] == [
        "১৮ বছরের কম বয়সে গর্ভধারণ: উচ্চ ঝুঁকি, স্বাস্থ্যকেন্দ্রে প্রসবের পরিকল্পনা করুন।"]
    async with http.post(hub.api("hub/rules"), json=body, headers=CHCP) as r:
        assert "under 18" in (await r.json())["effects"][0]["content"]

    async with http.get(hub.api("me"), headers=CHCP, params={
            "fields": "organisationUnits[displayName~rename(name)]", "locale": "bn"}) as r:
        assert (await r.json())["organisationUnits"] == [{"name": "মেরংলোয়া কমিউনিটি ক্লিনিক"}]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.skip += tag in ("script", "style", "code")
        for k, v in attrs:  # words a person reads in attributes too
            if k in ("title", "aria-label", "placeholder") and v:
                self.texts.append(v)

    def handle_endtag(self, tag: str) -> None:
        self.skip -= tag in ("script", "style", "code")

    def handle_data(self, data: str) -> None:
        if not self.skip and data.strip():
            self.texts.append(data.strip())


def english_left(html: str) -> list[str]:
    """Text nodes that are an English source string of the catalogue (a template's fields
    filled with anything) on a page that should be Bangla."""
    patterns = [re.compile("^" + re.sub(r"\\\{\w+\\\}", ".+", re.escape(m)) + "$")
                for m, s in messages("bn").items() if s != m]
    p = _Text()
    p.feed(html)
    return [t for t in p.texts if any(pat.match(t) for pat in patterns)]


async def test_no_page_ships_an_untranslated_string(hub: RunningHub,
                                                    http: aiohttp.ClientSession) -> None:
    for path, auth in (("/hub", {}), ("/hub/people", {}), ("/hub/lists", {}),
                       ("/hub/status", {}), ("/hub/status", ADMIN)):
        async with http.get(hub.url + path, headers=auth) as r:
            html = await r.text()
        assert '<html lang="bn"' in html
        assert english_left(html) == [], path
    # the check itself sees English: the same page in English fails it
    async with http.get(hub.url + "/hub/status?lang=en", headers=ADMIN) as r:
        assert "Hub status" in english_left(await r.text())
