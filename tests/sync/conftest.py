"""Sync fixtures: a hub store, a national stand-in on a real port, an engine between them."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance import demo
from appliance.config import Config
from appliance.store import Store
from appliance.store import datavalues as dv
from appliance.sync.cycle import SyncEngine
from tests.conftest import RunningHub, copy_db, make_config

TOKEN = demo.DEMO_TOKENS["hub-ramu"]
RAMU = demo.RAMU_UID
CLINIC = demo.CHCP_CLINIC_UID
AOC = demo.DEFAULT_COC_UID
PERIOD = "202401"
# CC Form-1: Patients attended (INTEGER_ZERO_OR_POSITIVE), in every CC form-1
DS_FORM1 = "NwLMuiBAxSb"


def basic(user: str, password: str = "district") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Wall:
    """A hub wall clock that tests can step (the Pi has no RTC)."""

    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset_s = offset_s

    def __call__(self) -> float:
        return time.time() + self.offset_s


def first_values(n: int, period: str = PERIOD, ous: Sequence[str] | None = None
                 ) -> list[dict[str, str]]:
    from appliance.demo import values as dvals
    vals = dvals.month_values(demo.hub(), period, org_units=list(ous) if ous else None)
    return vals[:n]


def cell(de: str | None = None, ou: str = CLINIC, pe: str = PERIOD) -> tuple[str, ...]:
    """A real (de, pe, ou, coc, aoc) of the demo: the first value of the clinic's month."""
    v = next(v for v in first_values(400, pe, [ou])
             if de is None or v["dataElement"] == de)
    return (v["dataElement"], pe, ou, v["categoryOptionCombo"], v["attributeOptionCombo"])


def this_month() -> str:
    from datetime import UTC, datetime
    now = datetime.now(UTC)
    return f"{now.year}{now.month:02d}"


def CHCP_FORM(period: str | None = None) -> dict[str, Any]:  # noqa: N802 - reads like a constant
    """The CHCP's clinic's Form-1 for a month (default: this month, open for entry), as the
    CHCP posts it."""
    from appliance.demo import values as dvals
    period = period or this_month()
    return next(f for f in dvals.forms(demo.hub(), period, org_units=[CLINIC],
                                       data_sets=[DS_FORM1]))


def rows(values: Iterable[dict[str, Any]]) -> list[dv.ValueRow]:
    out = []
    for i, v in enumerate(values):
        out.append(dv.ValueRow(
            index=i, de=v["dataElement"], pe=v["period"], ou=v["orgUnit"],
            coc=v["categoryOptionCombo"], aoc=v["attributeOptionCombo"],
            value=v.get("value"), comment=v.get("comment"), followup=None,
            stored_by=v.get("storedBy"), delete=bool(v.get("deleted"))))
    return out


def as_value(key: Sequence[str], value: str | None, **extra: Any) -> dict[str, Any]:
    de, pe, ou, coc, aoc = key
    out: dict[str, Any] = {"dataElement": de, "period": pe, "orgUnit": ou,
                           "categoryOptionCombo": coc, "attributeOptionCombo": aoc}
    if value is None:
        out["deleted"] = True
    else:
        out["value"] = value
    out.update(extra)
    return out


async def hub_edit(store: Store, values: Iterable[dict[str, Any]], username: str = "chcp") -> None:
    """A LAN write as the hub's import path makes it: pending, fresh HLC, base kept."""
    rs = rows(values)
    await store.write(lambda tx: dv.import_values(tx, rs, username=username, provenance=dv.LOCAL_EDIT))


async def national_post(http: aiohttp.ClientSession, national: RunningHub,
                        values: list[dict[str, Any]], user: str = "statistician",
                        password: str = "district") -> dict[str, Any]:
    async with http.post(national.api("dataValueSets"), json={"dataValues": values},
                         headers=basic(user, password)) as r:
        body = await r.json()
        assert r.status in (200, 409), body
        return body  # type: ignore[no-any-return]


def row(store: Store, key: Sequence[str]) -> Any:
    return store.read_sync(lambda c: c.execute(
        "SELECT * FROM datavalue WHERE de=? AND pe=? AND ou=? AND coc=? AND aoc=?",
        tuple(key)).fetchone())


def value_at(store: Store, key: Sequence[str]) -> str | None:
    r = row(store, key)
    return None if r is None or r["deleted"] else r["value"]


def conflicts(store: Store) -> list[Any]:
    return store.read_sync(lambda c: c.execute(
        "SELECT * FROM sync_conflict ORDER BY id").fetchall())


# Every sync test that talks to a national stand-in runs in both wire formats (issue 15):
# the ``wire_format`` fixture is parametrized for tests whose fixtures include
# ``national``, and ``sync_config`` writes the format of the test running. Tests marked
# ``default_wire`` (the flaky-link ones), and those that start their own processes (the
# end-to-end and SIGKILL tests), run in the default format only.
WIRE_FORMATS = ("csv", "json")
_WIRE: dict[str, str | None] = {"format": None}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "wire_format" in metafunc.fixturenames and "national" in metafunc.fixturenames and \
            metafunc.definition.get_closest_marker("default_wire") is None:
        metafunc.parametrize("wire_format", WIRE_FORMATS, indirect=True)


@pytest.fixture(autouse=True)
def wire_format(request: pytest.FixtureRequest) -> Iterator[str]:
    """The wire format of this test's sync configs (the default unless parametrized)."""
    from appliance.config import defaults
    fmt = str(getattr(request, "param", None) or defaults()["sync"]["wire_format"])
    _WIRE["format"] = fmt
    try:
        yield fmt
    finally:
        _WIRE["format"] = None


def sync_config(data_dir: Path, url: str, **over: Any) -> Config:
    base: dict[str, Any] = {"national__url": url, "national__token": TOKEN,
                            "hub__org_unit": RAMU, "national__timeout_s": 20}
    if _WIRE["format"]:
        base["sync__wire_format"] = _WIRE["format"]
    base.update(over)
    return make_config(data_dir, "hub", **base)


@dataclass
class Pair:
    hub: Store
    national: RunningHub
    config: Config
    engine: SyncEngine
    wall: Wall
    data_dir: Path

    async def cycle(self, reason: str = "cli") -> Any:
        return await self.engine.cycle(reason)

    def new_engine(self, **over: Any) -> SyncEngine:
        cfg = sync_config(self.data_dir, self.national.url, **over)
        return SyncEngine(self.hub, cfg, wall=self.wall)


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
async def pair(demo_template: dict[str, Path], national: RunningHub, tmp_path: Path,
               wall: Wall) -> AsyncIterator[Pair]:
    """Demo hub store (its own clock) + national stand-in on a port + engine, after one
    initial cycle (so metadata watermarks and clock anchors exist)."""
    data_dir = tmp_path / "hubdata"
    store = Store(copy_db(demo_template["hub"], data_dir), wall=wall)
    cfg = sync_config(data_dir, national.url)
    engine = SyncEngine(store, cfg, wall=wall)
    p = Pair(store, national, cfg, engine, wall, data_dir)
    try:
        r = await p.cycle()
        assert r.ok, r.error
        yield p
    finally:
        await engine.close()
        store.close()


@contextlib.asynccontextmanager
async def hub_app(store: Store, data_dir: Path, national_url: str = "",
                  upstream: Callable[..., Any] | None = None) -> AsyncIterator[RunningHub]:
    """The hub's LAN server (create_app wires the sync endpoints and, with a national url,
    first-login checks against national)."""
    from tests.conftest import running_hub
    async with running_hub(store, data_dir, upstream=upstream, national__url=national_url,
                           hub__org_unit=RAMU) as hub:
        yield hub


# a data value's key as DHIS2 names its parts, and national's rows by key (CSV tests)
KEY = ("dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo")


def key_of(v: dict[str, Any]) -> tuple[str, ...]:
    return tuple(v[k] for k in KEY)


def key_of_dict(v: dict[str, Any]) -> dict[str, Any]:
    return {k: v[k] for k in KEY}


def national_rows(national: RunningHub) -> dict[tuple[str, ...], dict[str, Any]]:
    rows = national.store.read_sync(lambda c: c.execute(
        "SELECT de, pe, ou, coc, aoc, value, comment, followup, stored_by, deleted "
        "FROM datavalue").fetchall())
    return {tuple(r[:5]): dict(r) for r in rows}


async def national_complete(http: aiohttp.ClientSession, url: str, period: str,
                            done: bool = True) -> None:
    """National's statistician completes (or un-completes) the CHCP clinic's Form-1."""
    reg, auth = "completeDataSetRegistrations", basic("statistician")
    if done:
        body = {reg: [{"dataSet": DS_FORM1, "period": period, "organisationUnit": CLINIC,
                       "attributeOptionCombo": AOC}]}
        async with http.post(f"{url}/api/{reg}", json=body, headers=auth) as r:
            assert r.status == 200, await r.text()
    else:
        async with http.delete(f"{url}/api/{reg}", params={"ds": DS_FORM1, "pe": period,
                                                           "ou": CLINIC}, headers=auth) as r:
            assert r.status in (204, 404), await r.text()
