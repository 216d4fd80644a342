"""The health agent's tables: samples, current state, hardware events and the heartbeat
queue (``health_sample``, ``health_state``, ``health_event``, ``heartbeat_queue``).

Writes take a ``Tx`` and run on the writer thread (``Store.write``); reads take a
connection (``Store.read``). A read called inside a write gets ``tx.conn``, so it sees
that transaction's own changes.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .db import Tx
from .hlc import pack, physical_ms

DAY_MS = 86_400_000


# -- health_state: text values, with JSON and integer helpers -------------------------------------
def get_state(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM health_state WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def get_state_json(conn: sqlite3.Connection, key: str) -> Any:
    raw = get_state(conn, key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:  # a hand-edited or truncated value must not stop the agent
        return None


def get_state_int(conn: sqlite3.Connection, key: str, default: int = 0) -> int:
    raw = get_state(conn, key)
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def put_state(tx: Tx, key: str, value: str) -> None:
    tx.execute("INSERT INTO health_state(key, value) VALUES (?, ?) "
               "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))


def put_state_json(tx: Tx, key: str, value: Any) -> None:
    put_state(tx, key, json.dumps(value, separators=(",", ":"), sort_keys=True))


def delete_state(tx: Tx, key: str) -> None:
    tx.execute("DELETE FROM health_state WHERE key=?", (key,))


def increment_state(tx: Tx, key: str, by: int = 1) -> int:
    """Add to a counter inside the write transaction (atomic across processes)."""
    value = get_state_int(tx.conn, key) + by
    put_state(tx, key, str(value))
    return value


# -- health_sample ----------------------------------------------------------------------------------
def add_sample(tx: Tx, at: str, doc: dict[str, Any], *, retention_days: float,
               max_rows: int) -> int:
    """Insert a sample and apply retention. Returns the row id."""
    stamp = tx.stamp()
    cur = tx.execute("INSERT INTO health_sample(hlc, at, doc) VALUES (?, ?, ?)",
                     (stamp, at, json.dumps(doc, separators=(",", ":"))))
    # HLC, not wall time: it never goes back, so a clock reset cannot keep old rows forever
    cutoff = pack(physical_ms(stamp) - int(retention_days * DAY_MS))
    tx.execute("DELETE FROM health_sample WHERE hlc < ?", (cutoff,))
    # and a row cap, in case the clock jumped forward and back (HLC then stalls)
    tx.execute("DELETE FROM health_sample WHERE id <= ?", (int(cur.lastrowid or 0) - max_rows,))
    return int(cur.lastrowid or 0)


def latest_sample(conn: sqlite3.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT doc FROM health_sample ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else json.loads(row[0])


# -- health_event: a bounded log ----------------------------------------------------------------------
def add_event(tx: Tx, *, at: str, kind: str, action: str, name: str, detail: dict[str, Any],
              keep: int) -> None:
    """Append an event and drop all but the last ``keep``."""
    cur = tx.execute(
        "INSERT INTO health_event(at, kind, action, name, detail) VALUES (?, ?, ?, ?, ?)",
        (at, kind, action, name, json.dumps(detail, separators=(",", ":"), sort_keys=True)))
    tx.execute("DELETE FROM health_event WHERE id <= ?", (int(cur.lastrowid or 0) - keep,))


def recent_events(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The newest events first."""
    return [{"at": r[0], "kind": r[1], "action": r[2], "name": r[3], "detail": json.loads(r[4])}
            for r in conn.execute("SELECT at, kind, action, name, detail FROM health_event "
                                  "ORDER BY id DESC LIMIT ?", (limit,))]


# -- heartbeat_queue: batch_seq is set while a batch carrying the row is in flight -----------------
def enqueue_heartbeat(tx: Tx, at: str, sample: dict[str, Any]) -> None:
    tx.execute("INSERT INTO heartbeat_queue(at, sample) VALUES (?, ?)",
               (at, json.dumps(sample, separators=(",", ":"))))


def heartbeat_count(conn: sqlite3.Connection) -> int:
    """Samples queued, in flight or not."""
    return int(conn.execute("SELECT count(*) FROM heartbeat_queue").fetchone()[0])


def oldest_heartbeats(conn: sqlite3.Connection, n: int) -> list[tuple[int, str, int | None]]:
    """(id, sample JSON as stored, batch_seq) of the ``n`` oldest queued samples."""
    rows = conn.execute("SELECT id, sample, batch_seq FROM heartbeat_queue ORDER BY id LIMIT ?",
                        (n,)).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def drop_heartbeats_through(tx: Tx, last_id: int) -> None:
    tx.execute("DELETE FROM heartbeat_queue WHERE id <= ?", (last_id,))


def batch_samples(conn: sqlite3.Connection, seq: int) -> list[dict[str, Any]]:
    """The samples frozen in batch ``seq``, oldest first."""
    rows = conn.execute("SELECT sample FROM heartbeat_queue WHERE batch_seq=? ORDER BY id",
                        (seq,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def unbatched_samples(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The samples in no batch yet, oldest first."""
    rows = conn.execute("SELECT sample FROM heartbeat_queue WHERE batch_seq IS NULL "
                        "ORDER BY id").fetchall()
    return [json.loads(r[0]) for r in rows]


def freeze_batch(tx: Tx, seq: int) -> None:
    """Put every sample in no batch yet into batch ``seq``."""
    tx.execute("UPDATE heartbeat_queue SET batch_seq=? WHERE batch_seq IS NULL", (seq,))


def delete_batch(tx: Tx, seq: int) -> None:
    tx.execute("DELETE FROM heartbeat_queue WHERE batch_seq=?", (seq,))


def release_batch(tx: Tx, seq: int) -> None:
    """The samples of batch ``seq`` rejoin the queue."""
    tx.execute("UPDATE heartbeat_queue SET batch_seq=NULL WHERE batch_seq=?", (seq,))


def renumber_heartbeats(tx: Tx, floor: int) -> None:
    """A new sync identity: heartbeat seqs continue from at least ``floor``, and a batch the
    old card had in flight is unfrozen, to go out again under a new seq."""
    if get_state_int(tx.conn, "heartbeat_seq") < floor:
        put_state(tx, "heartbeat_seq", str(floor))
    if get_state_json(tx.conn, "hb_inflight") is not None:
        tx.execute("UPDATE heartbeat_queue SET batch_seq=NULL WHERE batch_seq IS NOT NULL")
        delete_state(tx, "hb_inflight")


# -- the file as a whole ------------------------------------------------------------------------------
def quick_check(conn: sqlite3.Connection, max_errors: int = 20) -> list[str]:
    """``PRAGMA quick_check``: ``["ok"]``, or up to ``max_errors`` problems."""
    return [str(r[0]) for r in conn.execute(f"PRAGMA quick_check({int(max_errors)})")]
