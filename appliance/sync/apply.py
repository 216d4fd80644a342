"""Writing sync results into the store (functions run on the writer thread via
``Store.write``): pulled national values and completions, conflict log entries, and
push acknowledgements.

Rules (DESIGN.md §6):
* a pulled value for a key with no pending local edit is applied (``synced``, origin
  ``national``, ``base`` = national's ``lastUpdated``);
* equal to the pending local value: not a conflict; the row is marked synced;
* a pending key national has not changed since its base (``lastUpdated <= base``, e.g.
  the echo of the hub's own push) is left alone;
* otherwise it is a conflict, decided by ``conflict.decide``; the loser goes to
  ``sync_conflict`` with both sides, users and times, the winner stays on the row;
* an acknowledgement marks a row only if its HLC is still the one that was sent (an edit
  made while the chunk was in flight stays pending).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..dhis2.timefmt import format_ts, parse_ts
from ..store import audit, synclog
from ..store import datavalues as dv
from ..store.db import Tx
from ..store.hlc import to_iso
from ..store.keys import CR_KEY, DV_KEY, key_str
from . import conflict as cf
from .clock import place_edit
from .state import anchors_around
from .summary import ImportResult, Refusal

DV_FIELDS = ("dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo")

# entity name = table name; its natural key
_KEYS = {"datavalue": DV_KEY, "complete_registration": CR_KEY}


def key_json(entity: str, key: Sequence[str]) -> str:
    return json.dumps(dict(zip(_KEYS[entity], key, strict=True)), separators=(",", ":"))


@dataclass
class Pulled:
    """One value (or completion) as national sent it."""

    key: tuple[str, ...]
    value: str | None
    deleted: bool
    last_updated: str
    last_updated_ms: int | None
    stored_by: str | None = None
    created: str | None = None
    comment: str | None = None
    followup: bool = False
    extra: dict[str, Any] = field(default_factory=dict)   # completions: date

    @classmethod
    def value_from(cls, v: Mapping[str, Any], tz: str = "Etc/UTC") -> Pulled | None:
        try:
            key = tuple(str(v[f]) for f in DV_FIELDS)
        except KeyError:
            return None
        lu = str(v.get("lastUpdated") or v.get("created") or "")
        value = v.get("value")
        return cls(key=key, value=None if value is None else str(value),
                   deleted=bool(v.get("deleted")), last_updated=lu,
                   last_updated_ms=parse_ts(lu, tz), stored_by=v.get("storedBy"),
                   created=v.get("created"), comment=v.get("comment"),
                   followup=bool(v.get("followup") or v.get("followUp")))

    @classmethod
    def registration_from(cls, r: Mapping[str, Any], default_aoc: str,
                          tz: str = "Etc/UTC") -> Pulled | None:
        ds, pe = r.get("dataSet"), r.get("period")
        ou = r.get("organisationUnit") or r.get("orgUnit")
        if not ds or not pe or not ou:
            return None
        aoc = r.get("attributeOptionCombo") or default_aoc
        lu = str(r.get("lastUpdated") or r.get("date") or "")
        completed = r.get("completed", True) is not False
        return cls(key=(str(ds), str(pe), str(ou), str(aoc)),
                   value="true" if completed else "false", deleted=bool(r.get("deleted")),
                   last_updated=lu, last_updated_ms=parse_ts(lu, tz), stored_by=r.get("storedBy"),
                   extra={"date": r.get("date")})


@dataclass
class Context:
    """What decisions need besides the rows: policies, clocks, metadata links."""

    default_policy: str = cf.LATEST
    policies: Mapping[str, str] = field(default_factory=dict)      # data set -> policy
    de_datasets: Mapping[str, Sequence[str]] = field(default_factory=dict)
    offset_ms: float = 0.0             # national - hub wall
    now_national_ms: int = 0
    tz: str = "Etc/UTC"
    # what unacknowledged chunks sent: (entity, key) -> (national ms before, [[v, deleted]])
    inflight: Mapping[tuple[str, str], tuple[int, list[list[Any]]]] = field(default_factory=dict)

    def own_echo(self, entity: str, p: Pulled) -> bool:
        """Is this national value one the hub sent in a chunk that was cut (or killed)
        after national imported it but before the hub recorded the reply?"""
        hit = self.inflight.get((entity, key_str(p.key)))
        if hit is None or p.last_updated_ms is None or p.last_updated_ms < hit[0]:
            return False
        return [None if p.deleted else p.value, p.deleted] in hit[1]

    def policy(self, *, de: str | None = None, ds: str | None = None) -> tuple[str, str | None]:
        sets = [ds] if ds else list(self.de_datasets.get(de or "", ()))
        for s in sets:
            if s in self.policies:
                return cf.normalise_policy(self.policies[s], self.default_policy), s
        return cf.normalise_policy(self.default_policy), (sets[0] if sets else None)


@dataclass
class PullStats:
    applied: int = 0
    unchanged: int = 0
    kept_local: int = 0
    conflicts: int = 0
    hub_won: int = 0
    national_won: int = 0

    def add(self, other: PullStats) -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))


def _hub_side(row: sqlite3.Row | Mapping[str, Any], at_ms: int | None, entity: str) -> cf.Side:
    if entity == "datavalue":
        return cf.Side(row["value"], bool(row["deleted"]), row["comment"], row["stored_by"], at_ms)
    return cf.Side("true" if row["completed"] else "false", bool(row["deleted"]), None,
                   row["stored_by"], at_ms)


def _national_side(p: Pulled) -> cf.Side:
    return cf.Side(p.value, p.deleted, p.comment, p.stored_by, p.last_updated_ms)


def hub_edit_ms(conn: sqlite3.Connection, stamp: int, ctx: Context) -> int:
    below, above = anchors_around(conn, stamp)
    return place_edit(stamp, below, above, ctx.now_national_ms, ctx.offset_ms)


def log_conflict(tx: Tx, entity: str, key: Sequence[str], data_set: str | None,
                 hub: cf.Side, hub_hlc: int | None, national: cf.Side,
                 national_last_updated: str | None, decision: cf.Decision) -> int:
    detected = to_iso(tx.stamp())
    return synclog.add_conflict(
        tx, entity=entity, key=key_json(entity, key), data_set=data_set, hub_value=hub.value,
        hub_deleted=hub.deleted, hub_user=hub.user,
        hub_at=format_ts(hub.at_ms) if hub.at_ms is not None else None, hub_hlc=hub_hlc,
        national_value=national.value, national_deleted=national.deleted,
        national_user=national.user,
        national_at=format_ts(national.at_ms) if national.at_ms is not None else None,
        winner=decision.winner, policy=decision.policy, reason=decision.reason,
        detected_at=detected, org_unit=key[2], hub_comment=hub.comment,
        national_comment=national.comment, national_last_updated=national_last_updated)


def _audit(tx: Tx, entity: str, key: Sequence[str], audit_type: str, old: str | None,
           new: str | None, username: str | None, via: str = "sync") -> None:
    audit.record(tx, entity=entity, key=key_str(key), audit_type=audit_type, old=old, new=new,
                 username=username, client=None, via=via)


# -- pulled data values ------------------------------------------------------------------------------
def _write_national_value(tx: Tx, p: Pulled, old: sqlite3.Row | None) -> None:
    stamp = tx.stamp()
    lu = p.last_updated or to_iso(stamp)
    created = (old["created"] if old is not None else None) or p.created or lu
    value = p.value if p.value is not None or not p.deleted else (
        old["value"] if old is not None else None)
    dv.upsert_values(tx, [(*p.key, value, p.comment, int(p.followup), p.stored_by, created,
                           int(p.deleted), p.last_updated)],
                     stored_by=None, last_updated=lu, sync_state="synced", hlc=stamp,
                     origin="national")
    if old is None:
        audit_type, old_v = "CREATE", None
    elif p.deleted:
        audit_type, old_v = "DELETE", old["value"]
    else:
        audit_type, old_v = "UPDATE", old["value"]
    if old is None or old["value"] != value or bool(old["deleted"]) != p.deleted:
        _audit(tx, "datavalue", p.key, audit_type, old_v, None if p.deleted else value,
               p.stored_by)
    synclog.delete_rejection(tx, "datavalue", p.key)


def apply_values(tx: Tx, values: Sequence[Pulled], ctx: Context) -> PullStats:
    return _apply_pulled(tx, "datavalue", values, ctx)


def _apply_pulled(tx: Tx, entity: str, items: Sequence[Pulled], ctx: Context) -> PullStats:
    stats = PullStats()
    for p in items:
        _apply_one(tx, entity, p, dv.row_by_key(tx.conn, entity, p.key), ctx, stats)
    return stats


def _apply_one(tx: Tx, entity: str, p: Pulled, old: sqlite3.Row | None, ctx: Context,
               stats: PullStats) -> None:
    write = _write_national_value if entity == "datavalue" else _write_national_registration
    national = _national_side(p)
    if old is None:
        if p.deleted:
            stats.unchanged += 1  # a deletion of something the hub never had
            return
        write(tx, p, None)
        stats.applied += 1
        return
    base_ms = parse_ts(old["base"], ctx.tz) if old["base"] else None
    changed = cf.changed_since(p.last_updated_ms, base_ms)
    hub = _hub_side(old, None, entity)
    state = old["sync_state"]
    if state != "pending":
        if cf.same(hub, national):
            if old["base"] != p.last_updated and changed:
                dv.set_base(tx, entity, p.key, p.last_updated)
            stats.unchanged += 1
            return
        if state == "rejected":
            if not changed:
                stats.kept_local += 1  # national has not moved; the refused value waits for a person
                return
            # national moved on past a value it refused: keep the refused one in the log
            rej = synclog.rejection(tx.conn, entity, p.key)
            policy, ds = ctx.policy(de=p.key[0]) if entity == "datavalue" else \
                ctx.policy(ds=p.key[0])
            reason = "national changed a value it had refused from the hub" + (
                f" ({rej[0] or 'no code'}: {rej[1]})" if rej else "") + "; national's value applied"
            log_conflict(tx, entity, p.key, ds, _hub_side(old, hub_edit_ms(tx.conn, old["hlc"],
                                                                           ctx), entity),
                         old["hlc"], national, p.last_updated,
                         cf.Decision("national", policy, reason))
            stats.conflicts += 1
            stats.national_won += 1
        write(tx, p, old)
        stats.applied += 1
        return
    # a pending local edit
    if cf.same(hub, national):
        dv.mark_synced(tx, entity, p.key, old["hlc"], p.last_updated)
        stats.unchanged += 1
        return
    if not changed:
        stats.kept_local += 1
        return
    if ctx.own_echo(entity, p):
        # national holds what we sent before the cut; the newer local edit supersedes it
        dv.set_base(tx, entity, p.key, p.last_updated)
        stats.kept_local += 1
        return
    hub = _hub_side(old, hub_edit_ms(tx.conn, old["hlc"], ctx), entity)
    policy, ds = ctx.policy(de=p.key[0]) if entity == "datavalue" else ctx.policy(ds=p.key[0])
    decision = cf.decide(policy, hub, national)
    log_conflict(tx, entity, p.key, ds, hub, old["hlc"], national, p.last_updated, decision)
    stats.conflicts += 1
    if decision.winner == "national":
        stats.national_won += 1
        write(tx, p, old)
    else:
        stats.hub_won += 1
        # the hub's edit stays pending; it now supersedes national's value it has seen
        dv.set_base(tx, entity, p.key, p.last_updated)


# -- pulled completions ------------------------------------------------------------------------------
def _write_national_registration(tx: Tx, p: Pulled, old: sqlite3.Row | None) -> None:
    stamp = tx.stamp()
    lu = p.last_updated or to_iso(stamp)
    date = (p.extra.get("date") or lu)[:10]
    completed = p.value != "false"
    dv.upsert_registration(tx, (*p.key, date, p.stored_by, int(completed), lu, int(p.deleted),
                                "synced", stamp, "national", p.last_updated))
    _audit(tx, "complete_registration", p.key,
           "CREATE" if old is None else ("DELETE" if p.deleted else "UPDATE"),
           None if old is None else json.dumps(bool(old["completed"])),
           None if p.deleted else json.dumps(completed), p.stored_by)
    synclog.delete_rejection(tx, "complete_registration", p.key)


def apply_registrations(tx: Tx, regs: Sequence[Pulled], ctx: Context) -> PullStats:
    return _apply_pulled(tx, "complete_registration", regs, ctx)


def apply_national_uncompletes(tx: Tx, keys: Sequence[tuple[str, ...]]) -> int:
    """Forms national no longer lists as complete although the hub holds them as accepted:
    someone at national un-completed them (DHIS2 deletes a registration, so no pull by
    ``lastUpdated`` can show it). Only rows still synced are changed; a pending local edit
    is the newer word and its push decides."""
    n = 0
    for key in keys:
        old = dv.row_by_key(tx.conn, "complete_registration", key)
        if old is None or old["sync_state"] != "synced" or old["deleted"]:
            continue
        p = Pulled(key=tuple(key), value="true", deleted=True, last_updated="",
                   last_updated_ms=None, stored_by=None, extra={"date": old["date"]})
        _write_national_registration(tx, p, old)
        n += 1
    return n


# -- push acknowledgements ------------------------------------------------------------------------------
@dataclass
class AckStats:
    accepted: int = 0
    rejected: int = 0
    superseded: int = 0      # edited while in flight: stays pending
    national_won: int = 0    # refused in a closed period during a conflict: national's value


def ack(tx: Tx, entity: str, sent: Sequence[tuple[tuple[str, ...], int]], result: ImportResult,
        base: str, chunk_id: int | None, seconds: float | None = None) -> AckStats:
    """Record one chunk's import summary: the only place rows become synced or rejected."""
    stats = AckStats()
    now = to_iso(tx.stamp())
    accepted: list[tuple[tuple[str, ...], int]] = []
    for i, (key, hlc) in enumerate(sent):
        row = dv.row_by_key(tx.conn, entity, key)
        if row is None or row["sync_state"] != "pending" or row["hlc"] != hlc:
            stats.superseded += 1
            if row is not None and row["sync_state"] == "pending" and i not in result.rejected:
                # edited while in flight: stays pending, but national now holds what we
                # sent, so that (not an older version) is what the new edit supersedes
                dv.set_base(tx, entity, key, base)
            continue
        refusal = result.rejected.get(i)
        if refusal is None:
            accepted.append((key, hlc))
            stats.accepted += 1
            continue
        if refusal.locked and _national_wins_closed_period(tx, entity, key, row, refusal):
            stats.national_won += 1
        else:
            dv.mark_rejected(tx, entity, key, hlc)
            stats.rejected += 1
        _record_rejection(tx, entity, key, row, refusal, now)
    if accepted:
        dv.mark_acked(tx, entity, base, accepted)
        synclog.delete_rejections(tx, entity, (k for k, _ in accepted))
    if chunk_id is not None:
        synclog.ack_chunk(tx, chunk_id, at=now, accepted=stats.accepted,
                          rejected=stats.rejected + stats.national_won, seconds=seconds)
    return stats


def _record_rejection(tx: Tx, entity: str, key: Sequence[str], row: sqlite3.Row,
                      refusal: Refusal, at: str) -> None:
    value = row["value"] if entity == "datavalue" else json.dumps(bool(row["completed"]))
    synclog.record_rejection(tx, entity, key, code=refusal.code, message=refusal.message, at=at,
                             username=row["stored_by"], org_unit=key[2],
                             value=None if row["deleted"] else value, hlc=row["hlc"])


def _national_wins_closed_period(tx: Tx, entity: str, key: Sequence[str], row: sqlite3.Row,
                                 refusal: Refusal) -> bool:
    """A hub edit that won a conflict but national refuses because the period is closed:
    national wins after all. Its value (known from the conflict) goes back on the row, the
    conflict entry is turned round, and the hub's value stays in the log."""
    c = synclog.open_hub_win(tx.conn, entity, key_json(entity, key), row["hlc"])
    if c is None:
        return False
    reason = (f"period is closed at national ({refusal.code or 'no code'}: {refusal.message}); "
              "national's value stands")
    synclog.set_conflict_winner(tx, c[0], "national", reason)
    p = Pulled(key=tuple(key), value=c[1], deleted=bool(c[2]), last_updated=c[5] or "",
               last_updated_ms=parse_ts(c[5]) if c[5] else None, stored_by=c[3], comment=c[4])
    if entity == "datavalue":
        _write_national_value(tx, p, row)
    else:
        _write_national_registration(tx, p, row)
    return True


# -- conflict resolution by a person --------------------------------------------------------------------
class ResolveError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def resolve_conflict(tx: Tx, conflict_id: int, choose: str, value: str | None,
                     username: str, can_write: Callable[[str], bool]) -> dict[str, Any]:
    """Re-queue the chosen value as a pending local edit (fresh HLC) and close the entry."""
    c = synclog.conflict(tx.conn, conflict_id)
    if c is None:
        raise ResolveError(404, f"Conflict {conflict_id} not found")
    if c["resolved_at"] is not None:
        raise ResolveError(409, f"Conflict {conflict_id} was already resolved by "
                           f"{c['resolved_by']} at {c['resolved_at']}")
    k = json.loads(c["key"])
    entity = c["entity"]
    if entity not in _KEYS:
        raise ResolveError(409, f"Conflict {conflict_id} is about a tracker record: correct "
                           "the record itself (its edit is queued for national like any other)")
    key = tuple(k[n] for n in _KEYS[entity])
    if not can_write(key[2]):
        raise ResolveError(403, f"You cannot write data for org unit {key[2]}")
    if choose == "hub":
        new_value, deleted, comment = c["hub_value"], bool(c["hub_deleted"]), c["hub_comment"]
    elif choose == "national":
        new_value, deleted, comment = (c["national_value"], bool(c["national_deleted"]),
                                       c["national_comment"])
    else:
        new_value, deleted, comment = value, value is None, None
    stamp = tx.stamp()
    now = to_iso(stamp)
    old = dv.row_by_key(tx.conn, entity, key)
    # a stored row keeps its base (and a value its follow-up flag, a completion its date)
    base = old["base"] if old is not None else c["national_last_updated"]
    if entity == "datavalue":
        if deleted and new_value is None and old is not None:
            new_value = old["value"]  # a tombstone keeps the last value, as LAN deletes do
        dv.upsert_values(tx, [(*key, new_value, comment,
                               old["followup"] if old is not None else 0, username, now,
                               int(deleted), base)],
                         stored_by=username, last_updated=now, sync_state="pending", hlc=stamp,
                         origin="local")
        old_v = old["value"] if old is not None else None
    else:
        completed = new_value != "false"
        dv.upsert_registration(tx, (*key, old["date"] if old is not None else now[:10], username,
                                    int(completed), now, int(deleted), "pending", stamp, "local",
                                    base))
        old_v = json.dumps(bool(old["completed"])) if old is not None else None
    _audit(tx, entity, key, "DELETE" if deleted else "UPDATE", old_v,
           None if deleted else new_value, username, via="conflict-resolution")
    resolution = {"choose": choose, "value": None if deleted else new_value, "deleted": deleted}
    synclog.close_conflict(tx, conflict_id, now, username, json.dumps(resolution))
    synclog.delete_rejection(tx, entity, key)
    return {"id": conflict_id, "entity": entity, "key": k, **resolution, "hlc": stamp}
