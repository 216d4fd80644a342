"""How data values travel between the hub and national: DHIS2's CSV, or JSON.

CSV costs fewer bytes on the wire for the same values, both ways and in every order
measured (``bench/wire_bench.py``), so it is the default (``[sync] wire_format``); JSON
is the fallback, chosen in config or by the worker itself when national refuses CSV:

* a CSV push that national answers with an error (a 4xx other than 401/403, an error
  WebMessage without an import summary), with a whole-import failure, or by refusing
  every value of the chunk as an unknown key (what a misread column order looks like) is
  sent again as JSON at once; if JSON then goes through, national cannot take CSV;
* likewise a CSV pull (``GET /api/dataValueSets.csv``) answered with a 4xx or with
  something that is not DHIS2's CSV is asked again as JSON.

The refusal is remembered in ``sync_state`` (``csv_refused``: national's version) with an
event, and JSON is used until national reports another version. A 5xx, a 429 or a CSV
reply cut short is not held against CSV: that one request is repeated as JSON, and CSV
is tried again next time. What DHIS2 does with CSV, and the measurements: NATIONAL.md.
A chunk holding a value CSV cannot carry to both DHIS2 2.41 and 2.43 unchanged (a double
quote, a line break, the word ``null``: ``csvformat.csv_safe``) goes as JSON.

Completions stay JSON: DHIS2's ``completeDataSetRegistrations`` takes JSON and XML only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..config import Config
from ..dhis2 import csvformat
from ..errors import ConfigError, NationalRejected, SyncError
from ..store import Store
from ..store.wirebytes import PULL
from . import state
from .client import NationalClient, Reply, parse_json
from .state import EventFn
from .summary import ImportResult

CSV, JSON = "csv", "json"
FORMATS = (CSV, JSON)
REFUSED = "csv_refused"  # sync_state: the national version that refused CSV
# per-value codes of a key national does not know: every value of a chunk refused with
# these is what a CSV read in the wrong column order looks like
KEY_CODES = frozenset({"E7610", "E7611", "E7612", "E7613", "E7615"})
CSV_ACCEPT = f"{csvformat.MEDIA_TYPE}, text/csv;q=0.9"


class WireFormat:
    """The format in use for data values, shared by a cycle's pull and push."""

    def __init__(self, configured: str = CSV) -> None:
        if configured not in FORMATS:
            raise ConfigError(f"[sync] wire_format is {configured!r}; use one of: "
                              + ", ".join(FORMATS))
        self.configured = configured
        self.version = "unknown"
        self.refused = False

    @classmethod
    def from_config(cls, config: Config) -> WireFormat:
        return cls(str(config.get("sync", "wire_format") or CSV).strip().lower())

    def resolve(self, st: Mapping[str, str], version: str) -> None:
        """At a cycle's start: national's version (from the probe) and what sync_state
        remembers of an earlier refusal."""
        self.version = version or "unknown"
        self.refused = st.get(REFUSED) == self.version

    @property
    def csv(self) -> bool:
        return self.configured == CSV and not self.refused

    @property
    def name(self) -> str:
        return CSV if self.csv else JSON

    async def refuse(self, store: Store, event: EventFn | None, kind: str, why: str) -> None:
        """National cannot take CSV: JSON from now on, until its version changes."""
        if self.refused:
            return
        self.refused = True
        version = self.version
        await store.write(lambda tx: state.set_state(tx, {REFUSED: version}))
        if event is not None:
            await event("warning", kind, f"national {version} refused CSV ({why[:200]}); data "
                        "values go as JSON until its version changes",
                        {"code": "csv-refused", "version": version})

    # -- push ------------------------------------------------------------------------------
    def csv_body(self, values: Sequence[Mapping[str, Any]]) -> bytes | None:
        """The chunk as a CSV body, or None when it goes as JSON (JSON in use, or a value
        CSV cannot carry)."""
        if not self.csv:
            return None
        try:
            return csvformat.encode_import(values)
        except csvformat.CsvUnsafe:
            return None

    # -- pull ------------------------------------------------------------------------------
    async def get_values(self, client: NationalClient, params: Mapping[str, Any], *,
                         cut_retries: int | None, store: Store,
                         event: EventFn | None) -> list[Any]:
        """National's ``dataValues`` for a pull query, in the format in use."""
        if not self.csv:
            return await get_json_values(client, params, cut_retries)
        try:
            return await get_csv_values(client, params, cut_retries)
        except NationalRejected as e:
            verdict = blame(e)
            if verdict is None:
                raise
            values = await get_json_values(client, params, cut_retries)
            if verdict == "refused":
                await self.refuse(store, event, "pull", e.message)
            return values


def blame(e: NationalRejected) -> str | None:
    """What a refused CSV request says about CSV: ``refused`` (national cannot take it:
    ask again as JSON, and remember if that works), ``once`` (ask again as JSON this time
    only: a server error, a reply cut short) or None (the credentials: JSON would fare
    no better)."""
    code = e.error_code or ""
    if code in ("401", "403"):
        return None
    if code.isdigit() and code.startswith("5") or code in ("429", "truncated"):
        return "once"
    return "refused"


def misread(result: ImportResult) -> str | None:
    """Does an import summary of a CSV push look like national could not read the CSV?
    (A whole-import failure, or every value of a chunk refused as an unknown key.)"""
    if result.aborted is not None:
        return f"{result.aborted.code or 'no code'}: {result.aborted.message}"
    if result.n >= 2 and len(result.rejected) == result.n and all(
            r.code in KEY_CODES for r in result.rejected.values()):
        first = next(iter(result.rejected.values()))
        return f"every value refused as unknown ({first.code}: {first.message})"
    return None


async def get_json_values(client: NationalClient, params: Mapping[str, Any],
                          cut_retries: int | None) -> list[Any]:
    data = await client.get_json("/api/dataValueSets", params, cut_retries=cut_retries,
                                 category=PULL)
    values = data.get("dataValues") if isinstance(data, dict) else None
    if not isinstance(values, list):
        raise SyncError("national's dataValueSets reply has no dataValues list")
    return values


async def get_csv_values(client: NationalClient, params: Mapping[str, Any],
                         cut_retries: int | None) -> list[Any]:
    """``GET /api/dataValueSets.csv`` (2.41 also reads ``Accept``; 2.43 only the path)."""
    reply = await client.request("GET", "/api/dataValueSets.csv", params=params,
                                 cut_retries=cut_retries, accept=CSV_ACCEPT, category=PULL)
    return read_csv_reply(reply)


def read_csv_reply(reply: Reply) -> list[Any]:
    """The values of a CSV reply. A JSON data value set (a server that ignored ``.csv``)
    is taken as it is; an HTML page or anything else is a refusal. DHIS2 ends every row
    with a line break: a body that does not end with one was cut off."""
    body = reply.body
    head = body.lstrip()[:1]
    if head in (b"{", b"["):
        data = parse_json(reply)
        values = data.get("dataValues") if isinstance(data, dict) else None
        if isinstance(values, list):
            return values
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = ""
    first = text.split("\n", 1)[0]
    if not text or csvformat.columns(first.split(",")) is None:
        raise NationalRejected(
            f"national's reply to GET {reply.url.split('?')[0]} (HTTP {reply.status}, "
            f"{reply.headers.get('Content-Type', 'no type')}) is not DHIS2's CSV",
            error_code="not-csv")
    if not text.endswith("\n"):
        raise NationalRejected(f"national's CSV reply (HTTP {reply.status}, {len(body)} bytes) "
                               "stops in the middle of a row; it was probably cut off",
                               error_code="truncated")
    try:
        return csvformat.decode(text)
    except ValueError as e:
        raise NationalRejected(f"national's CSV reply could not be read: {e}",
                               error_code="not-csv") from None
