"""The fleet service's own SQLite database (``<data-dir>/fleet.db``).

It is separate from the hub store: it runs at national, holds other data, and must never
share a write lock with a hub. WAL mode; one writer thread per process with group commit
(writes queued while a commit is in flight share the next transaction, so one fsync
covers many heartbeats), ``synchronous=FULL`` so a heartbeat is acknowledged only once it
is on disk, and a small pool of read-only connections for pages and the API.

Tables:

* ``hubs``: one row per enrolled hub. Besides identity and token (see ``tokens``) it
  carries ``last_seq``/``boot_id``/``sent_offset_s`` for replay checks and a copy of
  the latest sample, so that the dashboard, ``/metrics`` and the alert sweep read one
  narrow table instead of the time series. ``state``/``state_rank``/``alert_codes`` are
  the materialised result of ``alerts.evaluate``.
* ``samples``: the time series (one row per sample, narrow typed columns), pruned after
  ``retention_days``; ``t`` is the sample time corrected to the fleet clock.
* ``heartbeats``: one row per accepted heartbeat (seq, times, the offline summary).
* ``alerts``: open alerts (``resolved_at IS NULL``) and recently resolved ones.

People (``AUTH_SCHEMA``, a second migration so that existing fleet DBs gain it; see
``auth`` for the rules):

* ``users``: fleet users, a role (``viewer``/``admin``) and a scrypt verifier.
* ``sessions``: logged-in browsers, by the SHA-256 of the cookie (never the cookie).
* ``login_throttle``: failed logins per (username, client address) and the lock.
* ``login_audit``: every login attempt; ``admin_audit``: every admin change (who, when,
  what; never a token or a password).
* ``alert_rules``: thresholds an admin changed over HTTP, overlaid on ``[fleet]``.

HTTPS for tablets (``TLS_SCHEMA``, #12):

* ``hubs`` gains ``tls_name`` (the public name national assigned, ``add-hub --tls-name``),
  what the hub's heartbeats say it serves (``tls_cert_name``, ``tls_not_after``,
  ``tls_issuer``, ``tls_fingerprint``), its ``lan_ip`` and the address last published in
  DNS for its name (``published_ip``).
* ``certificates``: one row per (hub, name, public key) a hub sent a CSR for; the CSR
  (public), the state of its issuance and, once issued, the chain. Never a private key.

Reporting (``REPORTING_SCHEMA``, #14): ``reporting`` holds each hub's latest completeness
counts per data set and month (expected, complete, on time, received by national).

The litestream backup (``BACKUP_SCHEMA``, #13): ``hubs`` gains what the latest heartbeat
said of the hub's replica: ``backup_configured``, ``backup_lag_s``, ``backup_last_at``
(fleet clock), ``backup_error`` and ``backup_reported_at``.
Bytes on the modem (``WIRE_SCHEMA``, #15): ``hubs`` gains what the latest heartbeat said
of them: the hub's day and month (``wire_day``, ``wire_period``), their totals sent plus
received (``wire_today_bytes``, ``wire_month_bytes``), when that month ends (fleet clock,
``wire_month_ends``), the hub's monthly budget in MB (``wire_budget_mb``), the split by
category (``wire_detail``, JSON) and ``wire_reported_at``.
Software updates (``UPDATES_SCHEMA``, #13; see ``releases`` and ``rollouts``):

* ``releases``: signed RAUC bundles national added (version, compatible, SHA-256, size);
  the file is ``<data-dir>/releases/<sha256>.raucb``.
* ``rollouts``: a release targeted at one hub, a district, a division or every hub; the
  most specific active rollout matching a hub's hardware (``compatible``) wins.
* ``hubs`` gains ``update_*`` (the hub's latest update report: the release it runs, its
  state, bytes downloaded, the reason of its last failure) and ``offered_*`` (the rollout
  the fleet last offered it); ``update_events``: each hub's recent state changes.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import Conflict, NotFound, Unauthorized
from ..store import Store
from . import alerts as al
from . import tokens
from .models import SAMPLE_FIELDS, Heartbeat, Sample

log = logging.getLogger(__name__)
T = TypeVar("T")

PRUNE_CHUNK = 5000
DAY = 86400.0


def column(field_name: str) -> str:
    """Hub-reported NTP offset is stored apart from the fleet-computed clock offset."""
    return "ntp_offset_s" if field_name == "clock_offset_s" else field_name


SAMPLE_COLUMNS = [column(f) for f in SAMPLE_FIELDS]
SYNC_COLUMNS = ["pending", "conflicts", "rejected", "lag_s"]
BOOL_COLUMNS = frozenset(column(f) for f, kind in SAMPLE_FIELDS.items() if kind == "bool")
_TYPES = {"num": "REAL", "int": "INTEGER", "bool": "INTEGER"}
_SAMPLE_DDL = ",\n  ".join(f"{column(f)} {_TYPES[k]}" for f, k in SAMPLE_FIELDS.items())

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS hubs (
  id TEXT PRIMARY KEY,
  name TEXT, org_unit_id TEXT, upazila TEXT, district TEXT, division TEXT,
  token_hash TEXT NOT NULL,
  token_secret TEXT NOT NULL,
  created_at REAL NOT NULL,
  last_seq INTEGER, last_seen REAL, sent_at REAL,
  sent_offset_s REAL,  -- receipt time - sent_at: the replay rule's clock
  clock_offset_s REAL,  -- the hub's clock error as alerted on (alerts.effective_offset)
  boot_id TEXT, uptime_s REAL, version TEXT,
  sample_at REAL,
  {_SAMPLE_DDL},
  pending INTEGER, conflicts INTEGER, rejected INTEGER, lag_s REAL, last_success REAL,
  undervoltage_at REAL,
  summary TEXT, summary_at REAL,
  heartbeats INTEGER NOT NULL DEFAULT 0,
  samples INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT 'green',
  state_rank INTEGER NOT NULL DEFAULT 2,
  alert_codes TEXT NOT NULL DEFAULT ','
);
CREATE INDEX IF NOT EXISTS hubs_order ON hubs(state_rank, division, district, upazila, id);
CREATE INDEX IF NOT EXISTS hubs_place ON hubs(district, division);
CREATE TABLE IF NOT EXISTS samples (
  hub_id TEXT NOT NULL,
  t REAL NOT NULL,
  received REAL NOT NULL,
  {_SAMPLE_DDL},
  pending INTEGER, conflicts INTEGER, rejected INTEGER, lag_s REAL
);
CREATE INDEX IF NOT EXISTS samples_hub_t ON samples(hub_id, t);
CREATE TABLE IF NOT EXISTS heartbeats (
  hub_id TEXT NOT NULL, seq INTEGER NOT NULL, received REAL NOT NULL, sent_at REAL NOT NULL,
  boot_id TEXT, version TEXT, uptime_s REAL, n_samples INTEGER NOT NULL, summary TEXT
);
CREATE INDEX IF NOT EXISTS heartbeats_hub ON heartbeats(hub_id, received);
CREATE TABLE IF NOT EXISTS alerts (
  id INTEGER PRIMARY KEY,
  hub_id TEXT NOT NULL, code TEXT NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL,
  since REAL NOT NULL, updated REAL NOT NULL, resolved_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts(hub_id, code) WHERE resolved_at IS NULL;
CREATE INDEX IF NOT EXISTS alerts_resolved ON alerts(resolved_at);
"""

AUTH_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  username TEXT PRIMARY KEY,
  role TEXT NOT NULL CHECK (role IN ('viewer', 'admin')),
  verifier TEXT NOT NULL,
  created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
  id_hash TEXT PRIMARY KEY,
  username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
  client TEXT, created_at REAL NOT NULL, expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(username);
CREATE TABLE IF NOT EXISTS login_throttle (
  username TEXT NOT NULL, client TEXT NOT NULL,
  failures INTEGER NOT NULL, last_failure REAL NOT NULL, locked_until REAL NOT NULL,
  PRIMARY KEY (username, client)
);
CREATE TABLE IF NOT EXISTS login_audit (
  id INTEGER PRIMARY KEY,
  at REAL NOT NULL, username TEXT NOT NULL, client TEXT,
  success INTEGER NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS login_audit_at ON login_audit(at);
CREATE TABLE IF NOT EXISTS admin_audit (
  id INTEGER PRIMARY KEY,
  at REAL NOT NULL, username TEXT NOT NULL, client TEXT,
  action TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_rules (
  name TEXT PRIMARY KEY, value REAL NOT NULL, updated_at REAL NOT NULL, updated_by TEXT NOT NULL
);
"""
TLS_SCHEMA = """
ALTER TABLE hubs ADD COLUMN tls_name TEXT;
ALTER TABLE hubs ADD COLUMN tls_cert_name TEXT;
ALTER TABLE hubs ADD COLUMN tls_not_after REAL;
ALTER TABLE hubs ADD COLUMN tls_issuer TEXT;
ALTER TABLE hubs ADD COLUMN tls_fingerprint TEXT;
ALTER TABLE hubs ADD COLUMN tls_reported_at REAL;
ALTER TABLE hubs ADD COLUMN lan_ip TEXT;
ALTER TABLE hubs ADD COLUMN published_ip TEXT;
ALTER TABLE hubs ADD COLUMN published_at REAL;
CREATE UNIQUE INDEX IF NOT EXISTS hubs_tls_name ON hubs(tls_name) WHERE tls_name IS NOT NULL;
CREATE INDEX IF NOT EXISTS hubs_tls_expiry ON hubs(tls_not_after) WHERE tls_not_after IS NOT NULL;
CREATE TABLE IF NOT EXISTS certificates (
  id INTEGER PRIMARY KEY,
  hub_id TEXT NOT NULL,
  name TEXT NOT NULL,
  pubkey_sha256 TEXT NOT NULL,
  csr TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'issued', 'failed')),
  certificate TEXT,
  not_after REAL,
  fingerprint TEXT,
  last_error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at REAL NOT NULL DEFAULT 0,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  UNIQUE (hub_id, name, pubkey_sha256)
);
CREATE INDEX IF NOT EXISTS certificates_todo ON certificates(state) WHERE state != 'issued';
"""
BACKUP_SCHEMA = """
ALTER TABLE hubs ADD COLUMN backup_configured INTEGER;
ALTER TABLE hubs ADD COLUMN backup_lag_s REAL;
ALTER TABLE hubs ADD COLUMN backup_last_at REAL;
ALTER TABLE hubs ADD COLUMN backup_error TEXT;
ALTER TABLE hubs ADD COLUMN backup_reported_at REAL;
"""
# Software updates (#13): releases (signed RAUC bundles under <data-dir>/releases), rollouts
# (a release targeted at a hub, a district, a division or every hub) and, on ``hubs``, the
# latest update report of each hub (``rollouts.record_report_tx``); ``update_events`` keeps
# each hub's last state changes for its page.
UPDATES_SCHEMA = """
ALTER TABLE hubs ADD COLUMN update_seq INTEGER;
ALTER TABLE hubs ADD COLUMN update_state TEXT;
ALTER TABLE hubs ADD COLUMN update_version TEXT;
ALTER TABLE hubs ADD COLUMN update_compatible TEXT;
ALTER TABLE hubs ADD COLUMN update_slot TEXT;
ALTER TABLE hubs ADD COLUMN update_rollout INTEGER;
ALTER TABLE hubs ADD COLUMN update_target TEXT;
ALTER TABLE hubs ADD COLUMN update_sha256 TEXT;
ALTER TABLE hubs ADD COLUMN update_bytes INTEGER;
ALTER TABLE hubs ADD COLUMN update_size INTEGER;
ALTER TABLE hubs ADD COLUMN update_reason TEXT;
ALTER TABLE hubs ADD COLUMN update_at REAL;
ALTER TABLE hubs ADD COLUMN offered_rollout INTEGER;
ALTER TABLE hubs ADD COLUMN offered_at REAL;
CREATE TABLE IF NOT EXISTS releases (
  id INTEGER PRIMARY KEY,
  version TEXT NOT NULL,
  compatible TEXT NOT NULL,
  sha256 TEXT NOT NULL UNIQUE,
  size INTEGER NOT NULL,
  signer TEXT,
  verified INTEGER NOT NULL,
  added_at REAL NOT NULL,
  added_by TEXT NOT NULL,
  UNIQUE (compatible, version)
);
CREATE TABLE IF NOT EXISTS rollouts (
  id INTEGER PRIMARY KEY,
  release_id INTEGER NOT NULL REFERENCES releases(id),
  scope TEXT NOT NULL CHECK (scope IN ('hub', 'district', 'division', 'all')),
  target TEXT,
  created_at REAL NOT NULL,
  created_by TEXT NOT NULL,
  cancelled_at REAL,
  cancelled_by TEXT
);
CREATE INDEX IF NOT EXISTS rollouts_active ON rollouts(scope, target) WHERE cancelled_at IS NULL;
CREATE TABLE IF NOT EXISTS update_events (
  id INTEGER PRIMARY KEY,
  hub_id TEXT NOT NULL,
  at REAL NOT NULL,
  state TEXT NOT NULL,
  version TEXT,
  target TEXT,
  rollout_id INTEGER,
  reason TEXT
);
CREATE INDEX IF NOT EXISTS update_events_hub ON update_events(hub_id, id);
"""
# Reporting completeness (#14): what each hub's latest heartbeat said of its data sets'
# expected, complete, on-time and received reports per month (``fleet/reporting.py``).
REPORTING_SCHEMA = """
CREATE TABLE IF NOT EXISTS reporting (
  hub_id TEXT NOT NULL,
  period TEXT NOT NULL,
  data_set TEXT NOT NULL,
  expected INTEGER NOT NULL,
  complete INTEGER NOT NULL,
  on_time INTEGER NOT NULL,
  received INTEGER NOT NULL,
  reported_at REAL NOT NULL,
  PRIMARY KEY (hub_id, period, data_set)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reporting_period ON reporting(period);
"""
# Bytes on the modem (#15): what each hub's latest heartbeat said of today and this month
WIRE_SCHEMA = """
ALTER TABLE hubs ADD COLUMN wire_day TEXT;
ALTER TABLE hubs ADD COLUMN wire_today_bytes INTEGER;
ALTER TABLE hubs ADD COLUMN wire_period TEXT;
ALTER TABLE hubs ADD COLUMN wire_month_bytes INTEGER;
ALTER TABLE hubs ADD COLUMN wire_month_ends REAL;
ALTER TABLE hubs ADD COLUMN wire_budget_mb INTEGER;
ALTER TABLE hubs ADD COLUMN wire_detail TEXT;
ALTER TABLE hubs ADD COLUMN wire_reported_at REAL;
CREATE INDEX IF NOT EXISTS hubs_wire_ends ON hubs(wire_month_ends) WHERE wire_month_ends IS NOT NULL;
"""
MIGRATIONS = [("0001_fleet.sql", SCHEMA), ("0002_fleet_auth.sql", AUTH_SCHEMA),
              ("0003_fleet_tls.sql", TLS_SCHEMA), ("0004_fleet_backup.sql", BACKUP_SCHEMA),
              ("0005_fleet_updates.sql", UPDATES_SCHEMA),
              ("0006_fleet_reporting.sql", REPORTING_SCHEMA),
              # the language a fleet user reads the pages in (issue 14): NULL until they choose
              ("0007_fleet_user_locale.sql", "ALTER TABLE users ADD COLUMN locale TEXT;"),
              # an alert's message as template and values, for a page in Bangla (issue 14)
              ("0008_fleet_alert_words.sql", "ALTER TABLE alerts ADD COLUMN words TEXT;"),
              ("0009_fleet_wire.sql", WIRE_SCHEMA)]
AUDIT_DAYS = 400  # login and admin audit: a year and a bit, whatever retention_days says
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

_HUB_UPDATE_COLS = (["last_seq", "last_seen", "sent_at", "sent_offset_s", "clock_offset_s",
                     "boot_id", "uptime_s", "version", "sample_at"] + SAMPLE_COLUMNS +
                    SYNC_COLUMNS + ["last_success", "undervoltage_at"])
_HUB_UPDATE = (
    "UPDATE hubs SET " + ", ".join(f"{c}=:{c}" for c in _HUB_UPDATE_COLS) +
    ", name=COALESCE(name, :name), org_unit_id=COALESCE(org_unit_id, :org_unit_id)"
    ", upazila=COALESCE(upazila, :upazila), district=COALESCE(district, :district)"
    ", division=COALESCE(division, :division)"
    ", summary=COALESCE(:summary, summary), summary_at=COALESCE(:summary_at, summary_at)"
    ", heartbeats=heartbeats+1, samples=samples+:n_samples WHERE id=:id")
_SAMPLE_INSERT = (f"INSERT INTO samples (hub_id, t, received, {', '.join(SAMPLE_COLUMNS)}, "
                  f"{', '.join(SYNC_COLUMNS)}) VALUES "
                  f"({', '.join('?' * (3 + len(SAMPLE_COLUMNS) + len(SYNC_COLUMNS)))})")


@dataclass(frozen=True)
class HubAuth:
    hub_id: str
    token_hash: str
    token: str


@dataclass(frozen=True)
class IngestResult:
    hub_id: str
    seq: int
    samples: int
    state: str
    clock_offset_s: float
    publish: tuple[str, str] | None = None  # (tls_name, lan_ip) to publish as an A record


@dataclass(frozen=True)
class NewHub:
    hub_id: str
    name: str | None = None
    district: str | None = None
    division: str | None = None
    upazila: str | None = None
    org_unit_id: str | None = None
    tls_name: str | None = None


class FleetDB:
    """The fleet database. One instance per process; other processes (add-hub) may share it."""

    def __init__(self, path: str | Path, *, readers: int = 2) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.key = tokens.load_key(self.path.with_suffix(".key"))
        self._auth: dict[str, HubAuth] = {}
        # the appliance's one write path (group commit, synchronous=FULL), fleet schema
        self._store = Store(self.path, migrations=MIGRATIONS, clock=False,
                            readers=readers, cache_kib=16000)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._store.write(lambda tx: fn(tx.conn))

    def write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._store.write_sync(lambda tx: fn(tx.conn))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._store.read(fn)

    def read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._store.read_sync(fn)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> FleetDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- enrolment -------------------------------------------------------------------------
    def add_hubs(self, hubs: Iterable[NewHub], *, now: float | None = None,
                 rotate: bool = False) -> dict[str, str]:
        """Enrol hubs; returns {hub_id: token}. An existing hub is ``Conflict`` unless
        ``rotate``.

        Rotating gives a new token and forgets ``last_seq`` (and the update report's
        ``update_seq``): a re-flashed card starts its counters again and must not be
        refused as a replay.
        """
        stamp = time.time() if now is None else now
        made: list[tuple[NewHub, str]] = [(h, tokens.new_token()) for h in hubs]
        self.write_sync(lambda c: self.enrol_tx(c, made, stamp, rotate=rotate))
        for h, _t in made:
            self._auth.pop(h.hub_id, None)
        return {h.hub_id: t for h, t in made}

    async def enrol(self, hub: NewHub, *, now: float,
                    then: Callable[[sqlite3.Connection], None] | None = None) -> str:
        """Enrol one new hub from the web (never rotates); ``then`` runs in the same
        transaction (the admin audit). Returns its token."""
        token = tokens.new_token()

        def tx(conn: sqlite3.Connection) -> None:
            self.enrol_tx(conn, [(hub, token)], now, rotate=False)
            if then is not None:
                then(conn)
        await self.write(tx)
        self._auth.pop(hub.hub_id, None)
        return token

    def enrol_tx(self, conn: sqlite3.Connection, made: list[tuple[NewHub, str]], stamp: float,
                 *, rotate: bool) -> None:
        for h, token in made:
            exists = conn.execute("SELECT 1 FROM hubs WHERE id=?", (h.hub_id,)).fetchone()
            secret = tokens.wrap(self.key, h.hub_id, token)
            if exists and not rotate:
                raise Conflict(f"hub {h.hub_id} is already enrolled; use --rotate to "
                               "issue it a new token", error_code="exists")
            if exists:
                conn.execute(
                    "UPDATE hubs SET token_hash=?, token_secret=?, last_seq=NULL, "
                    "update_seq=NULL, "
                    "name=COALESCE(?, name), district=COALESCE(?, district), "
                    "division=COALESCE(?, division), upazila=COALESCE(?, upazila), "
                    "org_unit_id=COALESCE(?, org_unit_id) WHERE id=?",
                    (tokens.hash_token(token), secret, h.name, h.district, h.division,
                     h.upazila, h.org_unit_id, h.hub_id))
            else:
                conn.execute(
                    "INSERT INTO hubs (id, name, district, division, upazila, org_unit_id, "
                    "token_hash, token_secret, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (h.hub_id, h.name, h.district, h.division, h.upazila, h.org_unit_id,
                     tokens.hash_token(token), secret, stamp))
            if h.tls_name is not None:
                set_tls_name_tx(conn, h.hub_id, h.tls_name)

    def set_tls_name(self, hub_id: str, tls_name: str, *, by: str, now: float | None = None
                     ) -> str | None:
        """Assign a hub its public HTTPS name (empty: none); returns the previous one."""
        stamp = time.time() if now is None else now

        def tx(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT tls_name FROM hubs WHERE id=?", (hub_id,)).fetchone()
            if row is None:
                raise NotFound(f"no hub {hub_id!r} is enrolled; enrol it with 'appliance fleet "
                               f"add-hub --hub-id {hub_id} --tls-name NAME'")
            set_tls_name_tx(conn, hub_id, tls_name)
            audit_tx(conn, at=stamp, username=by, client=None, action="set-tls-name",
                     detail={"hub_id": hub_id, "tls_name": [row[0], tls_name or None]})
            return str(row[0]) if row[0] else None
        return self.write_sync(tx)

    # -- alert rules ---------------------------------------------------------------------------
    def thresholds(self, base: al.Thresholds) -> al.Thresholds:
        """``base`` (from ``[fleet]``) overlaid by the rules admins changed over HTTP."""
        return base.overlay(self.read_sync(rule_overrides))

    def token_of(self, hub_id: str) -> str | None:
        """The hub's token (for the simulator and the demo, which own their hubs)."""
        auth = self.read_sync(lambda c: self._load_auth(c, hub_id))
        return auth.token if auth else None

    def _load_auth(self, conn: sqlite3.Connection, hub_id: str) -> HubAuth | None:
        row = conn.execute("SELECT token_hash, token_secret FROM hubs WHERE id=?",
                           (hub_id,)).fetchone()
        if row is None:
            return None
        return HubAuth(hub_id, row["token_hash"],
                       tokens.unwrap(self.key, hub_id, row["token_secret"]))

    async def auth(self, hub_id: str, token: str) -> HubAuth | None:
        """The hub's credentials if ``token`` is its bearer token, else None.

        Cached, because unwrapping costs a few HMACs; on a mismatch the row is re-read once
        in case another process (``add-hub --rotate``) changed it.
        """
        cached = self._auth.get(hub_id)
        if cached is not None and tokens.token_matches(token, cached.token_hash):
            return cached
        fresh = await self.read(lambda c: self._load_auth(c, hub_id))
        if fresh is None:
            self._auth.pop(hub_id, None)
            return None
        self._auth[hub_id] = fresh
        return fresh if tokens.token_matches(token, fresh.token_hash) else None

    # -- ingest ------------------------------------------------------------------------------
    async def ingest(self, hb: Heartbeat, received: float, *, max_skew_s: float,
                     th: al.Thresholds, token_hash: str | None = None) -> IngestResult:
        try:
            return await self.write(
                lambda c: ingest_tx(c, hb, received, max_skew_s, th, token_hash))
        except Unauthorized:
            self._auth.pop(hb.hub_id, None)  # rotated by another process: re-read next time
            raise

    def ingest_sync(self, hb: Heartbeat, received: float, *, max_skew_s: float,
                    th: al.Thresholds) -> IngestResult:
        return self.write_sync(lambda c: ingest_tx(c, hb, received, max_skew_s, th))

    # -- time-driven alert changes and retention ----------------------------------------------
    async def sweep(self, now: float, th: al.Thresholds) -> int:
        return await self.write(lambda c: sweep_tx(c, now, th))

    async def prune(self, now: float, retention_days: float) -> int:
        cutoff = now - retention_days * DAY
        total = 0
        for table in ("samples", "heartbeats"):
            done = False
            while not done:  # small chunks, so heartbeats queued behind a prune wait little
                n, done = await self.write(functools.partial(_prune_chunk, table=table,
                                                             cutoff=cutoff))
                total += n
        total += await self.write(lambda c: c.execute(
            "DELETE FROM alerts WHERE resolved_at IS NOT NULL AND resolved_at < ?",
            (cutoff,)).rowcount)
        await self.write(lambda c: prune_people(c, now))
        return total


def _prune_chunk(conn: sqlite3.Connection, *, table: str, cutoff: float) -> tuple[int, bool]:
    # rows are appended in receipt order, so the oldest are the lowest rowids: look only at
    # the first chunk instead of scanning the whole table for old rows.
    rows = conn.execute(f"SELECT rowid, received FROM {table} ORDER BY rowid LIMIT ?",
                        (PRUNE_CHUNK,)).fetchall()
    old = [r[0] for r in rows if r[1] < cutoff]
    if old:
        conn.executemany(f"DELETE FROM {table} WHERE rowid=?", ((r,) for r in old))
    return len(old), len(rows) < PRUNE_CHUNK or len(old) < len(rows)


# ------------------------------------------------------------------------------- ingest
def _b(v: Any) -> Any:
    return int(v) if isinstance(v, bool) else v


def ingest_tx(conn: sqlite3.Connection, hb: Heartbeat, received: float, max_skew_s: float,
              th: al.Thresholds, token_hash: str | None = None) -> IngestResult:
    """Store one heartbeat, or raise without changing anything.

    Replay rule (why ``sent_at`` is not simply checked against fleet time: hubs have no
    RTC, and a hub with a wrong clock must still be able to report):

    1. ``seq`` must be greater than the last accepted ``seq`` of the hub; always.
    2. Within one boot (same ``boot_id``) a hub's clock offset (fleet receipt time minus
       ``sent_at``) only drifts slowly or is stepped *towards* zero by NTP. A heartbeat
       whose offset grew by more than ``max_skew_s`` over the last accepted one of the same
       boot is a delayed or replayed message (e.g. captured, held back, sent later), not a
       clock problem, and is refused. The first heartbeat after a reboot is accepted
       whatever its clock says; its offset then raises the ``clock`` alert.
    The hub must therefore stamp ``sent_at`` when it (re)sends, not when it queued.

    ``token_hash`` (of the token the request presented) is checked again here, inside the
    transaction, so a token rotated by ``add-hub --rotate`` in another process stops
    working at once even though the web layer caches credentials.
    """
    row = conn.execute(
        "SELECT last_seq, boot_id, sent_offset_s, undervoltage_at, undervoltage_seen, "
        "created_at, sample_at, token_hash FROM hubs WHERE id=?", (hb.hub_id,)).fetchone()
    if row is None or (token_hash is not None
                       and not hmac.compare_digest(row["token_hash"], token_hash)):
        raise Unauthorized("unknown hub or wrong token", error_code="auth")
    if row["last_seq"] is not None and hb.seq <= row["last_seq"]:
        raise Conflict(f"replayed heartbeat: seq {hb.seq} is not after the last accepted "
                       f"seq {row['last_seq']}", error_code="replay")
    offset = received - hb.sent_at
    prev_offset = row["sent_offset_s"]
    if (row["boot_id"] == hb.boot_id and prev_offset is not None
            and abs(offset) > abs(prev_offset) + max_skew_s):
        raise Conflict(f"replayed or delayed heartbeat: sent_at is {offset:.0f} s from fleet "
                       f"time while this boot's clock was {prev_offset:.0f} s off "
                       f"(max skew {max_skew_s:g} s)", error_code="skew")

    sample_rows = []
    uv_at = row["undervoltage_at"]
    prev_seen = bool(row["undervoltage_seen"]) if row["boot_id"] == hb.boot_id else False
    latest = hb.samples[-1]
    unsynced = latest.values["ntp_synced"] is False
    wall = received - latest.at if unsynced else None

    def place(s: Sample) -> float:
        # hub clock -> fleet clock, never in the future. The hub's own estimates count too:
        # a hub may stamp sent_at in corrected time but its samples on its wall clock.
        shift = al.effective_offset(offset, s.values["clock_offset_s"], wall) or 0.0
        return min(s.at + shift, received)

    for s in hb.samples:
        t = place(s)
        v = s.values
        sample_rows.append((hb.hub_id, t, received, *(_b(v[f]) for f in SAMPLE_FIELDS),
                            s.pending, s.conflicts, s.rejected, s.lag_s))
        # undervoltage_seen is sticky for a boot (firmware bit 16): an *event* is the flag
        # appearing, or undervoltage right now
        seen = v["undervoltage_seen"]
        if v["undervoltage_now"] or (seen and not prev_seen):
            uv_at = t if uv_at is None else max(uv_at, t)
        if seen is not None:
            prev_seen = seen
    if hb.summary and hb.summary.undervoltage_seen:
        end = hb.summary.end
        first = hb.samples[0].values["clock_offset_s"]
        shift = al.effective_offset(offset, first, wall) or 0.0
        t = min(end + shift, received) if end is not None else place(hb.samples[0])
        uv_at = t if uv_at is None else max(uv_at, t)
    conn.executemany(_SAMPLE_INSERT, sample_rows)

    lag = latest.lag_s
    if lag is None and latest.last_success is not None:
        lag = max(0.0, latest.at - latest.last_success)
    latest_t = place(latest)
    newer = row["sample_at"] is None or latest_t >= row["sample_at"]
    params: dict[str, Any] = {
        "id": hb.hub_id, "last_seq": hb.seq, "last_seen": received, "sent_at": hb.sent_at,
        "sent_offset_s": offset, "boot_id": hb.boot_id, "uptime_s": hb.uptime_s,
        "clock_offset_s": al.effective_offset(offset, latest.values["clock_offset_s"], wall),
        "version": hb.version, "undervoltage_at": uv_at, "n_samples": len(hb.samples),
        "name": hb.name, "org_unit_id": hb.org_unit.id, "upazila": hb.org_unit.name,
        "district": hb.org_unit.district, "division": hb.org_unit.division,
        "summary": json.dumps(hb.summary.raw) if hb.summary else None,
        "summary_at": received if hb.summary else None,
    }
    if newer:
        params["sample_at"] = latest_t
        params.update({column(f): _b(latest.values[f]) for f in SAMPLE_FIELDS})
        params.update(pending=latest.pending, conflicts=latest.conflicts,
                      rejected=latest.rejected, lag_s=lag, last_success=latest.last_success)
        conn.execute(_HUB_UPDATE, params)
    else:  # a late batch of old samples: keep the newer latest state
        keep = ["last_seq", "last_seen", "sent_at", "sent_offset_s", "clock_offset_s",
                "boot_id", "uptime_s", "version", "undervoltage_at"]
        conn.execute("UPDATE hubs SET " + ", ".join(f"{c}=:{c}" for c in keep) +
                     ", heartbeats=heartbeats+1, samples=samples+:n_samples WHERE id=:id",
                     params)
    if hb.tls_reported:  # what the hub serves now; null: none installed
        cert = hb.tls
        conn.execute("UPDATE hubs SET tls_cert_name=?, tls_not_after=?, tls_issuer=?, "
                     "tls_fingerprint=?, tls_reported_at=? WHERE id=?",
                     (cert.name if cert else None, cert.not_after if cert else None,
                      cert.issuer if cert else None, cert.fingerprint if cert else None,
                      received, hb.hub_id))
    if hb.lan_ip_reported:
        conn.execute("UPDATE hubs SET lan_ip=? WHERE id=?", (hb.lan_ip, hb.hub_id))
    if hb.backup_reported:  # null: the hub has no [backup] replica
        b = hb.backup
        last = None if b is None or b.last_replicated_at is None else \
            min(b.last_replicated_at + offset, received)  # hub clock -> fleet clock
        conn.execute("UPDATE hubs SET backup_configured=?, backup_lag_s=?, backup_last_at=?, "
                     "backup_error=?, backup_reported_at=? WHERE id=?",
                     (int(b is not None), b.lag_s if b else None, last,
                      b.error if b else None, received, hb.hub_id))
    if hb.wire_reported:  # bytes on its modem (#15); null: none reported
        w = hb.wire
        conn.execute("UPDATE hubs SET wire_day=?, wire_today_bytes=?, wire_period=?, "
                     "wire_month_bytes=?, wire_month_ends=?, wire_budget_mb=?, wire_detail=?, "
                     "wire_reported_at=? WHERE id=?",
                     (w.day, w.today_bytes, w.period, w.month_bytes,
                      w.ends_at + offset,  # hub clock -> fleet clock
                      w.budget_mb, json.dumps(w.detail, separators=(",", ":")), received,
                      hb.hub_id) if w is not None else
                     (None, None, None, None, None, None, None, received, hb.hub_id))
    if hb.reporting_reported:  # the months it reports replace what it said of them before
        months = sorted({r.period for r in hb.reporting})
        conn.execute(f"DELETE FROM reporting WHERE hub_id=? AND period IN "
                     f"({','.join('?' * len(months))})", (hb.hub_id, *months))
        conn.executemany(
            "INSERT OR REPLACE INTO reporting (hub_id, period, data_set, expected, complete, "
            "on_time, received, reported_at) VALUES (?,?,?,?,?,?,?,?)",
            [(hb.hub_id, r.period, r.data_set, r.expected, r.complete, r.on_time,
              r.received, received) for r in hb.reporting])
    conn.execute(
        "INSERT INTO heartbeats (hub_id, seq, received, sent_at, boot_id, version, uptime_s, "
        "n_samples, summary) VALUES (?,?,?,?,?,?,?,?,?)",
        (hb.hub_id, hb.seq, received, hb.sent_at, hb.boot_id, hb.version, hb.uptime_s,
         len(hb.samples), params["summary"]))
    hub = conn.execute("SELECT * FROM hubs WHERE id=?", (hb.hub_id,)).fetchone()
    state = apply_alerts(conn, hub, received, th)
    return IngestResult(hb.hub_id, hb.seq, len(hb.samples), state, offset,
                        publish=to_publish(hub))


def to_publish(hub: sqlite3.Row) -> tuple[str, str] | None:
    """(name, address) when the hub's name should point at a LAN address DNS lacks."""
    if hub["tls_name"] and hub["lan_ip"] and hub["lan_ip"] != hub["published_ip"]:
        return hub["tls_name"], hub["lan_ip"]
    return None


def status_of(row: sqlite3.Row | dict[str, Any]) -> al.HubStatus:
    def b(v: Any) -> bool | None:
        return None if v is None else bool(v)
    cols = set(row.keys())
    return al.HubStatus(
        created_at=row["created_at"], last_seen=row["last_seen"], disk_pct=row["disk_pct"],
        temp_c=row["temp_c"], integrity_ok=b(row["integrity_ok"]),
        ro_remount=b(row["ro_remount"]), undervoltage_at=row["undervoltage_at"],
        lag_s=row["lag_s"], conflicts=row["conflicts"], clock_offset_s=row["clock_offset_s"],
        cert_not_after=row["tls_not_after"],
        # rows without the #13 columns (a dict built by a caller) simply lack them
        backup_lag_s=row["backup_lag_s"] if "backup_lag_s" in cols else None,
        backup_error=row["backup_error"] if "backup_error" in cols else None,
        update_state=row["update_state"] if "update_state" in cols else None,
        update_target=row["update_target"] if "update_target" in cols else None,
        update_reason=row["update_reason"] if "update_reason" in cols else None,
        wire_period=row["wire_period"] if "wire_period" in cols else None,
        wire_month_bytes=row["wire_month_bytes"] if "wire_month_bytes" in cols else None,
        wire_month_ends=row["wire_month_ends"] if "wire_month_ends" in cols else None,
        wire_budget_mb=row["wire_budget_mb"] if "wire_budget_mb" in cols else None)


def apply_alerts(conn: sqlite3.Connection, hub: sqlite3.Row, now: float,
                 th: al.Thresholds) -> str:
    """Evaluate the rules for one hub and bring the ``alerts`` table and state up to date."""
    found = al.evaluate(status_of(hub), now, th)
    open_rows = {r["code"]: r for r in conn.execute(
        "SELECT id, code, level, message FROM alerts WHERE hub_id=? AND resolved_at IS NULL",
        (hub["id"],))}
    for a in found:
        cur = open_rows.pop(a.code, None)
        words = json.dumps({"t": a.words, "p": dict(a.params)}, separators=(",", ":"),
                           ensure_ascii=False) if a.words else None
        if cur is None:
            conn.execute("INSERT INTO alerts (hub_id, code, level, message, since, updated, "
                         "words) VALUES (?,?,?,?,?,?,?)",
                         (hub["id"], a.code, a.level, a.message, now, now, words))
        elif cur["message"] != a.message or cur["level"] != a.level:
            conn.execute("UPDATE alerts SET message=?, level=?, updated=?, words=? WHERE id=?",
                         (a.message, a.level, now, words, cur["id"]))
    for cur in open_rows.values():
        conn.execute("UPDATE alerts SET resolved_at=?, updated=? WHERE id=?",
                     (now, now, cur["id"]))
    state = al.state_of(found)
    codes = "," + "".join(a.code + "," for a in found)
    if (state, codes) != (hub["state"], hub["alert_codes"]):
        conn.execute("UPDATE hubs SET state=?, state_rank=?, alert_codes=? WHERE id=?",
                     (state, al.STATE_RANK[state], codes, hub["id"]))
    return state


def sweep_tx(conn: sqlite3.Connection, now: float, th: al.Thresholds) -> int:
    """Re-evaluate hubs whose alerts changed with time alone (went silent, undervoltage aged,
    a certificate came near its expiry or passed it, the month over its modem budget ended).

    Only rows where the stored flag disagrees with the clock are touched, so a sweep over
    10,000 quiet hubs is one scan and no writes.
    """
    rows = conn.execute(
        "SELECT * FROM hubs WHERE "
        "(COALESCE(last_seen, created_at) < :silent_cut) != (instr(alert_codes, ',silent,') > 0) "
        "OR (undervoltage_at IS NOT NULL AND undervoltage_at > :uv_cut) "
        "   != (instr(alert_codes, ',undervoltage,') > 0) "
        "OR (tls_not_after IS NOT NULL AND tls_not_after < :cert_cut) "
        "   != (instr(alert_codes, ',cert_expiry,') > 0) "
        # amber -> red at expiry: the level is only in the alerts table
        "OR (tls_not_after <= :now AND instr(alert_codes, ',cert_expiry,') > 0 AND EXISTS ("
        "   SELECT 1 FROM alerts a WHERE a.hub_id = hubs.id AND a.code = 'cert_expiry' "
        "   AND a.resolved_at IS NULL AND a.level != 'red')) "
        # the month of an over-budget hub ended: its new month starts with nothing used
        "OR (wire_month_ends <= :now AND instr(alert_codes, ',modem_budget,') > 0)",
        {"silent_cut": now - th.silent_after_s, "uv_cut": now - al.UNDERVOLTAGE_WINDOW_S,
         "cert_cut": now + th.cert_expiry_days * DAY, "now": now}).fetchall()
    for hub in rows:
        apply_alerts(conn, hub, now, th)
    return len(rows)


def reevaluate_all(conn: sqlite3.Connection, now: float, th: al.Thresholds) -> int:
    """Re-evaluate every hub (at start-up: thresholds in the config may have changed)."""
    rows = conn.execute("SELECT * FROM hubs").fetchall()
    for hub in rows:
        apply_alerts(conn, hub, now, th)
    return len(rows)


# ------------------------------------------------------------------------- hub names
def set_tls_name_tx(conn: sqlite3.Connection, hub_id: str, tls_name: str) -> None:
    """Assign ``tls_name`` (normalised, see ``certs.check_name``; empty: none) to a hub.

    A new name forgets what was published for the old one; one name, one hub."""
    name = tls_name or None
    other = conn.execute("SELECT id FROM hubs WHERE tls_name=? AND id!=?",
                         (name, hub_id)).fetchone() if name else None
    if other is not None:
        raise Conflict(f"the name {name} already belongs to hub {other['id']}; a name "
                       "points at one hub's LAN address", error_code="name_taken")
    conn.execute("UPDATE hubs SET tls_name=?, published_ip=CASE WHEN tls_name IS ? "
                 "THEN published_ip END, published_at=CASE WHEN tls_name IS ? "
                 "THEN published_at END WHERE id=?", (name, name, name, hub_id))


def mark_published_tx(conn: sqlite3.Connection, hub_id: str, name: str, ip: str,
                      now: float) -> None:
    """``name A ip`` is in DNS (if the hub still has that name)."""
    conn.execute("UPDATE hubs SET published_ip=?, published_at=? WHERE id=? AND tls_name=?",
                 (ip, now, hub_id, name))


def unpublished(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(hub_id, name, lan_ip) of every hub whose DNS record is missing or stale."""
    return [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT id, tls_name, lan_ip FROM hubs WHERE tls_name IS NOT NULL AND lan_ip IS NOT NULL "
        "AND published_ip IS NOT lan_ip")]


# --------------------------------------------------------------- alert rules and audit
def rule_overrides(conn: sqlite3.Connection) -> dict[str, float]:
    return {r["name"]: r["value"] for r in conn.execute("SELECT name, value FROM alert_rules")}


def set_rules_tx(conn: sqlite3.Connection, changes: dict[str, float | None], base: al.Thresholds,
                 now: float, by: str) -> tuple[al.Thresholds, int]:
    """Store admins' threshold changes (None: back to the ``[fleet]`` default) and
    re-evaluate every hub under the new rules; returns them and the number of hubs."""
    for name, value in changes.items():
        if value is None:
            conn.execute("DELETE FROM alert_rules WHERE name=?", (name,))
        else:
            conn.execute("INSERT INTO alert_rules (name, value, updated_at, updated_by) "
                         "VALUES (?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
                         "value=excluded.value, updated_at=excluded.updated_at, "
                         "updated_by=excluded.updated_by", (name, value, now, by))
    th = base.overlay(rule_overrides(conn))
    return th, reevaluate_all(conn, now, th)


def audit_tx(conn: sqlite3.Connection, *, at: float, username: str, client: str | None,
             action: str, detail: dict[str, Any]) -> None:
    """One admin change: who, when, from where, what (never a token or a password)."""
    conn.execute("INSERT INTO admin_audit (at, username, client, action, detail) "
                 "VALUES (?,?,?,?,?)", (at, username, client, action,
                                        json.dumps(detail, sort_keys=True)))


def user_locale(conn: sqlite3.Connection, username: str) -> str | None:
    row = conn.execute("SELECT locale FROM users WHERE username=?", (username,)).fetchone()
    return row[0] if row else None


def set_user_locale(conn: sqlite3.Connection, username: str, locale: str, *, at: float,
                    client: str | None) -> None:
    """The user's own choice of language, audited like any change to their record."""
    conn.execute("UPDATE users SET locale=?, updated_at=? WHERE username=?",
                 (locale, at, username))
    audit_tx(conn, at=at, username=username, client=client, action="locale",
             detail={"locale": locale})


def prune_people(conn: sqlite3.Connection, now: float) -> int:
    """Expired sessions, throttle rows nobody tripped for a day, audit over AUDIT_DAYS."""
    n = conn.execute("DELETE FROM sessions WHERE expires < ?", (now,)).rowcount
    n += conn.execute("DELETE FROM login_throttle WHERE locked_until < ? AND last_failure < ?",
                      (now, now - DAY)).rowcount
    for table in ("login_audit", "admin_audit"):
        n += conn.execute(f"DELETE FROM {table} WHERE at < ?", (now - AUDIT_DAYS * DAY,)).rowcount
    return n
