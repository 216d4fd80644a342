"""Pushing pending tracker rows to national's ``/api/tracker``, on the aggregate push's
principles (``push.py``).

* The pending rows are the queue. An object goes up if its own row or one of its
  attribute or data values is pending, as a flat payload holding its header and only the
  pending values (DHIS2 leaves the values a payload does not name alone).
* The Android SDK's order: deletions first (``importStrategy=DELETE``), then
  ``CREATE_AND_UPDATE`` with ``atomicMode=OBJECT``; then ownership transfers made here
  (``PUT /api/tracker/ownership/transfer``).
* A chunk's objects are written to ``sync_push_chunk`` before it is sent, with the rows
  and HLC stamps of what goes up; the job id national answers with is recorded too. A
  cut or a kill resumes the first open chunk: by fetching its job's report when national
  has the job, else by sending its objects again (UIDs make a repeat an update with
  nothing new). A whole family (a tracked entity, its enrollments and events) goes in
  one chunk, so that a new person's enrollment never arrives before the person.
* Results come from the job report (``GET /api/tracker/jobs/{id}/report``), as the
  SDK reads them: the upload is the expensive part of a chunk on a 256 kbit/s link, and
  once national holds the job, a cut while it imports or while the report comes down
  costs one small GET to recover rather than the chunk again (``async=false`` would tie
  the result to the one connection that carried the upload).
* A row becomes synced only if its HLC is still the one sent. What national refuses is
  marked rejected and its DHIS2 error code and message recorded (``sync_rejection``),
  for the CHCP to see; a deletion national reports as already done counts as done.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..dhis2.timefmt import format_ts
from ..dhis2.trackerjobs import completion
from ..errors import LinkDown, NationalRejected, SyncError
from ..store import Store, synclog
from ..store import tracker_sync as ts
from ..store.db import Tx
from ..store.hlc import to_iso
from ..store.wirebytes import PUSH
from .backoff import backoff_delay
from .client import NationalClient
from .clock import NationalClock
from .state import EventFn

log = logging.getLogger(__name__)

DELETE, LIVE = "tracker_delete", "tracker"
CHUNK_ROWS = 8000          # objects + values per chunk: ~45 KB of gzip for visit events
MIN_ROWS = 200             # the smallest a chunk shrinks to after losses
JOB_POLL_S = 1.0
JOB_POLLS = 60             # a job national does not know after this long is sent again
KIND_ID = {"te": "trackedEntity", "en": "enrollment", "ev": "event", "rel": "relationship"}
KIND_TYPE = {"te": "TRACKED_ENTITY", "en": "ENROLLMENT", "ev": "EVENT", "rel": "RELATIONSHIP"}
TYPE_KIND = {v: k for k, v in KIND_TYPE.items()}
KIND_TABLE = {"te": "tracked_entity", "en": "enrollment", "ev": "event", "rel": "relationship"}
LIST_KEY = {"te": "trackedEntities", "en": "enrollments", "ev": "events", "rel": "relationships"}
# a deletion refused because the object is not there, or already deleted, is done
GONE = frozenset({"E1063", "E1081", "E1032", "E4016", "E1114", "E1113", "E1082", "E4017"})


@dataclass
class TrackerPushStats:
    chunks: int = 0
    accepted: int = 0        # objects
    rejected: int = 0
    superseded: int = 0      # rows edited while in flight (still pending)
    transfers: int = 0
    body_bytes: int = 0
    duplicates: int = 0      # possible duplicates put on national's review list
    reports_skipped: int = 0  # chunks national took whole: its notifications said so


# -- payloads --------------------------------------------------------------------------------
def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != "":
        out[key] = value


def header_text(table: str, r: Any) -> str:
    """A row's header as one comparable text (what was sent, for echo detection)."""
    return json.dumps(ts.header(table, r), sort_keys=True, separators=(",", ":"), default=str)


def object_json(o: ts.ObjectRows, deleting: bool) -> dict[str, Any]:
    """One object as the minimal flat ``/api/tracker`` payload carries it: its uid and
    header (what DHIS2 requires, and what an update replaces) and its pending values."""
    r = o.row
    out: dict[str, Any] = {KIND_ID[o.kind]: r["uid"]}
    if deleting:
        return out
    if o.kind == "te":
        out.update(trackedEntityType=r["type"], orgUnit=r["org_unit"])
        if r["inactive"]:
            out["inactive"] = True
        if r["geometry"]:
            out["geometry"] = json.loads(r["geometry"])
        out["attributes"] = [{"attribute": c["attribute"], "value": c["value"]} for c in o.cells]
    elif o.kind == "en":
        out.update(trackedEntity=r["te"], program=r["program"], orgUnit=r["org_unit"],
                   status=r["status"])
        _put(out, "enrolledAt", r["enrolled_at"])
        _put(out, "occurredAt", r["occurred_at"])
        _put(out, "completedAt", r["completed_at"])
        if r["follow_up"]:
            out["followUp"] = True
        if r["geometry"]:
            out["geometry"] = json.loads(r["geometry"])
        notes = json.loads(r["notes"] or "[]")
        if notes:
            out["notes"] = notes
    elif o.kind == "ev":
        out.update(programStage=r["program_stage"], program=r["program"],
                   orgUnit=r["org_unit"], status=r["status"])
        if r["enrollment"]:
            out["enrollment"] = r["enrollment"]
        else:
            _put(out, "trackedEntity", r["te"])
        _put(out, "occurredAt", r["occurred_at"])
        _put(out, "scheduledAt", r["scheduled_at"])
        _put(out, "completedAt", r["completed_at"])
        _put(out, "attributeOptionCombo", r["aoc"])
        if r["follow_up"]:
            out["followup"] = True
        if r["geometry"]:
            out["geometry"] = json.loads(r["geometry"])
        notes = json.loads(r["notes"] or "[]")
        if notes:
            out["notes"] = notes
        values = []
        for c in o.cells:
            v: dict[str, Any] = {"dataElement": c["data_element"], "value": c["value"]}
            if c["provided_elsewhere"] and c["value"] is not None:
                v["providedElsewhere"] = True
            values.append(v)
        out["dataValues"] = values
    else:
        out.update(relationshipType=r["type"], **{"from": json.loads(r["from_doc"]),
                                                  "to": json.loads(r["to_doc"])})
    return out


def payload(objects: Sequence[ts.ObjectRows], deleting: bool) -> dict[str, Any]:
    """The flat payload; events ordered by stage so gzip sees each stage's run of data
    elements again and again."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in ("te", "en", "ev", "rel"):
        items = [o for o in objects if o.kind == kind]
        if kind == "ev":
            items.sort(key=lambda o: (o.row["program_stage"], o.row["occurred_at"] or "",
                                      o.row["uid"]))
        if items:
            out[LIST_KEY[kind]] = [object_json(o, deleting) for o in items]
    return out


def sent_rows(objects: Sequence[ts.ObjectRows], deleting: bool) -> list[list[Any]]:
    """[kind, uid, table, key, hlc, what] of every pending row a payload carries: the
    rows an acknowledgement may mark, and what they held (echo detection)."""
    out: list[list[Any]] = []
    for o in objects:
        table = KIND_TABLE[o.kind]
        r = o.row
        if r["sync_state"] == "pending" and (deleting or not r["deleted"]):
            out.append([o.kind, r["uid"], table, [r["uid"]], r["hlc"],
                        "deleted" if deleting else header_text(table, r)])
        if deleting:
            continue
        for c in o.cells:
            if o.kind == "te":
                out.append([o.kind, r["uid"], "te_attribute", [c["te"], c["attribute"]],
                            c["hlc"], c["value"]])
            else:
                out.append([o.kind, r["uid"], "event_value", [c["event"], c["data_element"]],
                            c["hlc"], c["value"]])
    return out


def plan(p: ts.Pending, entity: str, limit: int = CHUNK_ROWS) -> list[list[tuple[str, str]]]:
    """The pending objects in chunks: deletions in any grouping; live objects family by
    family (a tracked entity with its enrollments and events), relationships last."""
    if entity == DELETE:
        order = {"rel": 0, "ev": 1, "en": 2, "te": 3}
        items = sorted(p.deleted, key=lambda x: order[x[0]])
        return [items[i:i + limit] for i in range(0, len(items), limit)]
    families: dict[str, list[tuple[str, str]]] = {}
    rels: list[tuple[str, str]] = []
    for kind, uid, fam in p.live:
        if kind == "rel":
            rels.append((kind, uid))
        else:
            families.setdefault(fam, []).append((kind, uid))
    chunks: list[list[tuple[str, str]]] = []
    cur: list[tuple[str, str]] = []
    weight = 0
    for members in families.values():
        cur += members
        weight += sum(1 + p.weight.get(u, 0) for _, u in members)
        if weight >= limit:
            chunks.append(cur)
            cur, weight = [], 0
    if cur:
        chunks.append(cur)
    chunks += [rels[i:i + limit] for i in range(0, len(rels), limit)]
    return chunks


def errors_of(report: Any) -> dict[tuple[str, str], tuple[str | None, str]]:
    """(kind, uid) -> (errorCode, message) of a job report's refusals."""
    out: dict[tuple[str, str], tuple[str | None, str]] = {}
    vr = report.get("validationReport") if isinstance(report, dict) else None
    for e in (vr or {}).get("errorReports") or []:
        if not isinstance(e, dict):
            continue
        kind = TYPE_KIND.get(str(e.get("trackerType") or ""))
        if kind and e.get("uid"):
            out.setdefault((kind, str(e["uid"])), (e.get("errorCode"),
                                                   str(e.get("message") or "")[:1000]))
    return out


def _finished(notes: Any) -> bool:
    return isinstance(notes, list) and any(
        isinstance(n, dict) and n.get("completed") is True for n in notes)


@dataclass
class Ack:
    accepted: int = 0
    rejected: int = 0
    superseded: int = 0


def ack(tx: Tx, chunk_id: int, entity: str, rows: Sequence[Sequence[Any]],
        report: dict[str, Any], base: str, seconds: float | None) -> Ack:
    """Record one chunk's report: accepted objects' rows synced (at their sent HLC),
    refused ones rejected with DHIS2's code and message; the chunk acknowledged."""
    errors = errors_of(report)
    now = to_iso(tx.stamp())
    out = Ack()
    by_obj: dict[tuple[str, str], list[Sequence[Any]]] = {}
    for r in rows:
        by_obj.setdefault((r[0], r[1]), []).append(r)
    accepted_enrollments: list[str] = []
    for (kind, uid), obj_rows in by_obj.items():
        err = errors.get((kind, uid))
        if err is not None and entity == DELETE and err[0] in GONE:
            err = None
        marks = [(r[2], tuple(r[3]), int(r[4])) for r in obj_rows]
        if err is None:
            changed = ts.mark(tx, marks, "synced", base)
            out.superseded += len(marks) - changed
            out.accepted += 1
            synclog.delete_rejection(tx, KIND_TABLE[kind], (uid,))
            if entity == DELETE:
                ts.settle_deleted(tx, KIND_TABLE[kind], uid, base)
            if kind == "en":
                accepted_enrollments.append(uid)
            continue
        changed = ts.mark(tx, marks, "rejected", None)
        out.superseded += len(marks) - changed
        out.rejected += 1
        row = ts.row(tx.conn, KIND_TABLE[kind], (uid,))
        synclog.record_rejection(
            tx, KIND_TABLE[kind], (uid,), code=err[0], message=err[1] or "refused", at=now,
            username=row["stored_by"] if row is not None and kind != "rel" else None,
            org_unit=(row["org_unit"] if row is not None and kind != "rel" else "") or "",
            value=None, hlc=int(obj_rows[0][4]))
    if accepted_enrollments:
        ts.implied_owners(tx, accepted_enrollments, base)
    synclog.ack_chunk(tx, chunk_id, at=now, accepted=out.accepted, rejected=out.rejected,
                      seconds=seconds)
    return out


class TrackerPusher:
    def __init__(self, store: Store, client: NationalClient, clock: NationalClock,
                 event: EventFn | None = None,
                 chunk_rows: int = CHUNK_ROWS) -> None:
        self.store = store
        self.client = client
        self.clock = clock
        self.event = event
        self.max_rows = chunk_rows
        self.chunk_rows = chunk_rows  # halved after a chunk is lost, grown back on success
        self.stats = TrackerPushStats()
        self.poll_s = JOB_POLL_S

    async def push_all(self, max_failures: int = 6, backoff_base: float = 0.5,
                       sleep: Callable[[float], Awaitable[None]] | None = None,
                       max_chunks: int = 10_000) -> TrackerPushStats:
        pause = sleep or asyncio.sleep
        for entity in (DELETE, LIVE):
            failures = 0
            for _ in range(max_chunks):
                chunk = await self.store.write(self._next_chunk_fn(entity))
                if chunk is None:
                    break
                try:
                    done = await self._push_chunk(entity, *chunk)
                except LinkDown as e:
                    failures += 1
                    # the link holds less than we thought: new chunks are smaller (an open
                    # one is re-sent whole, its objects already named)
                    self.chunk_rows = max(MIN_ROWS, self.chunk_rows // 2)
                    if self.event is not None:
                        await self.event("warning", "push", f"tracker chunk of "
                                         f"{len(chunk[1])} objects lost ({e.message}); retrying",
                                         {"code": "resend", "n": len(chunk[1])})
                    if failures >= max_failures:
                        raise
                    await pause(backoff_delay(failures - 1, base=backoff_base, cap=20.0))
                    continue
                failures = 0
                self.chunk_rows = min(self.max_rows, self.chunk_rows * 3 // 2)
                if not done:
                    break  # nothing in it could be resolved: do not spin
        await self.push_transfers()
        await self.push_duplicates()
        return self.stats

    def _next_chunk_fn(self, entity: str
                       ) -> Callable[[Tx], tuple[int, list[tuple[str, str]]] | None]:
        return lambda tx: self._next_chunk(tx, entity)

    def _next_chunk(self, tx: Tx, entity: str) -> tuple[int, list[tuple[str, str]]] | None:
        """The first open chunk (resumed as it was), else a new one of the plan's first
        objects, written before anything is sent."""
        row = synclog.open_chunk(tx.conn, entity)
        if row is not None:
            return row[0], [(k[0], k[1]) for k in row[1]]
        chunks = plan(ts.pending(tx.conn), entity, self.chunk_rows)
        if not chunks:
            return None
        keys = chunks[0]
        return synclog.new_chunk(tx, entity, keys, to_iso(tx.stamp())), keys

    async def _push_chunk(self, entity: str, chunk_id: int, keys: list[tuple[str, str]]
                          ) -> bool:
        deleting = entity == DELETE
        rec_text = await self.store.read(lambda c: synclog.chunk_sent(c, chunk_id))
        rec: dict[str, Any] = json.loads(rec_text) if rec_text else {}
        report: dict[str, Any] | None = None
        seconds: float | None = None
        if rec.get("job"):  # national took it before the cut: its report is all we need
            report = await self._report(str(rec["job"]))
        if report is None:
            objects = await self.store.read(lambda c: ts.object_rows(c, keys))
            rows = sent_rows(objects, deleting)
            if not rows:  # everything in it was resolved meanwhile
                await self.store.write(lambda tx: synclog.ack_chunk(
                    tx, chunk_id, at=to_iso(tx.stamp()), accepted=0, rejected=0,
                    seconds=None))
                return True
            body = payload(objects, deleting)
            rec = {"since": self.clock.lower_ms(), "values": {}, "rows": rows, "job": None}
            await self.store.write(lambda tx: synclog.note_attempt(
                tx, chunk_id, json.dumps(rec, separators=(",", ":"))))
            t0 = time.monotonic()
            params = {"importStrategy": "DELETE" if deleting else "CREATE_AND_UPDATE",
                      "atomicMode": "OBJECT"}
            raw = orjson.dumps(body)
            reply = await self.client.request(
                "POST", "/api/tracker", params=params, payload=raw, ok=(200,), parse=True,
                retries=0, timeout=max(self.client.timeout_s, 30.0 + len(raw) / 2000),
                category=PUSH)
            self.stats.body_bytes += reply.sent_body_bytes
            job = ((reply.data or {}).get("response") or {}).get("id") \
                if isinstance(reply.data, dict) else None
            if not job:
                raise NationalRejected(f"national's answer to a tracker import names no job: "
                                       f"{str(reply.data)[:200]}")
            rec["job"] = job
            await self.store.write(lambda tx: synclog.set_chunk_sent(
                tx, chunk_id, json.dumps(rec, separators=(",", ":"))))
            report = await self._report(str(job))
            if report is None:
                raise LinkDown(f"national never reported tracker job {job}",
                               error_code="timeout")
            seconds = time.monotonic() - t0
        rows = rec.get("rows") or []
        base = format_ts(self.clock.upper_ms())
        res = await self.store.write(lambda tx: ack(tx, chunk_id, entity, rows, report or {},
                                                    base, seconds))
        self.stats.chunks += 1
        self.stats.accepted += res.accepted
        self.stats.rejected += res.rejected
        self.stats.superseded += res.superseded
        if res.rejected and self.event is not None:
            reasons = sorted({f"{c or ''} {m}".strip() for c, m in errors_of(report).values()})
            await self.event("warning", "push", f"national refused {res.rejected} tracker "
                             "records: " + "; ".join(reasons[:3]),
                             {"code": "refused", "n": res.rejected, "tracker": True})
        return bool(res.accepted or res.rejected or res.superseded)

    async def _report(self, job: str) -> dict[str, Any] | None:
        """The job's outcome once national has finished it; None if national does not know
        the job (it was lost, e.g. national restarted): the chunk is then sent again.

        The job's notifications state its status and counts. When national refused
        nothing that is the whole answer, and the report, which lists every object it
        imported (~14 bytes each, a third of a month's traffic), is not downloaded; it
        is read only to learn what was refused and why."""
        unknown = 0
        for _ in range(JOB_POLLS):
            st = await self.client.request("GET", f"/api/tracker/jobs/{job}", ok=(200, 404),
                                           parse=False, retries=2, category=PUSH)
            if st.status == 404:
                unknown += 1
                if unknown >= 3:
                    return None
            else:
                notes = st.json()
                done = completion(notes)
                if done is not None and done.status == "OK":
                    self.stats.reports_skipped += 1
                    return {"status": "OK", "validationReport": {"errorReports": []},
                            "stats": done.stats}
                if done is not None or _finished(notes):
                    reply = await self.client.request(
                        "GET", f"/api/tracker/jobs/{job}/report",
                        params={"reportMode": "ERRORS"}, ok=(200, 404), parse=False,
                        retries=2, category=PUSH)
                    if reply.status == 200:
                        data = reply.json()
                        if not isinstance(data, dict):
                            raise SyncError(f"national's tracker job report is not an "
                                            f"object: {str(data)[:200]}")
                        return data
            await asyncio.sleep(self.poll_s)
        return None

    # -- ownership transfers -----------------------------------------------------------
    async def push_transfers(self) -> None:
        owners = await self.store.read(lambda c: ts.pending(c).owners)
        for te, program, ou, hlc in owners:
            reply = await self.client.request(
                "PUT", "/api/tracker/ownership/transfer",
                params={"trackedEntity": te, "program": program, "ou": ou},
                ok=(200, 400, 403, 404, 409), parse=False, retries=2, category=PUSH)
            base = format_ts(self.clock.upper_ms())
            if reply.status == 200:
                def accept(tx: Tx, k: tuple[str, str] = (te, program), h: int = hlc,
                           b: str = base) -> int:
                    return ts.mark(tx, [("program_owner", k, h)], "synced", b)
                await self.store.write(accept)
                self.stats.transfers += 1
                continue
            code, msg = _web_message(reply)

            def refuse(tx: Tx, k: tuple[str, str] = (te, program), h: int = hlc,
                       o: str = ou, c: str | None = code, m: str = msg) -> None:
                if ts.mark(tx, [("program_owner", k, h)], "rejected", None):
                    synclog.record_rejection(tx, "program_owner", k, code=c, message=m,
                                             at=to_iso(tx.stamp()), username=None, org_unit=o,
                                             value=o, hlc=h)
            await self.store.write(refuse)
            self.stats.rejected += 1


    # -- possible duplicates flagged at registration --------------------------------------
    async def push_duplicates(self) -> None:
        """A CHCP's "this is a new person" on a likely duplicate goes to national's review
        list (POST /api/potentialDuplicates). National keys the pair, not our uid: a pair
        it already holds (409) is done too."""
        for uid, original, duplicate, reasons, hlc in await self.store.read(
                ts.pending_duplicates):
            reply = await self.client.request(
                "POST", "/api/potentialDuplicates",
                payload=orjson.dumps({"original": original, "duplicate": duplicate,
                                      "status": "OPEN", "reasons": reasons}),
                ok=(200, 201, 400, 403, 404, 409), parse=False, retries=2, category=PUSH)
            base = format_ts(self.clock.upper_ms())
            if reply.status in (200, 201, 409):
                def accept(tx: Tx, u: str = uid, h: int = hlc, b: str = base) -> int:
                    return ts.mark(tx, [("potential_duplicate", (u,), h)], "synced", b)
                await self.store.write(accept)
                self.stats.duplicates += 1
                continue
            if reply.status == 404:  # a person national has not taken yet: next cycle
                continue
            code, msg = _web_message(reply)

            def refuse(tx: Tx, u: str = uid, h: int = hlc, c: str | None = code,
                       m: str = msg, o: str = original) -> None:
                if ts.mark(tx, [("potential_duplicate", (u,), h)], "rejected", None):
                    synclog.record_rejection(tx, "potential_duplicate", (u,), code=c,
                                             message=m, at=to_iso(tx.stamp()), username=None,
                                             org_unit="", value=o, hlc=h)
            await self.store.write(refuse)
            self.stats.rejected += 1


def _web_message(reply: Any) -> tuple[str | None, str]:
    try:
        data = reply.json()
    except (SyncError, ValueError):
        return str(reply.status), reply.body.decode("utf-8", "replace")[:500]
    if isinstance(data, dict):
        return (data.get("errorCode") or str(reply.status)), str(data.get("message") or "")[:500]
    return str(reply.status), str(data)[:500]
