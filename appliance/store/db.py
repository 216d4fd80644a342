"""The one SQLite database and its only write path.

All writes go through ``Store.write`` (async) or ``Store.write_sync``: a callable
runs on the single writer thread inside ``BEGIN IMMEDIATE`` and its own savepoint.
Writes queued while a commit is in flight are grouped into the next transaction
(group commit), so under load many requests share one fsync. A write's future
resolves only after ``COMMIT`` returned with ``synchronous=FULL``: when a caller
sees the result, the data is on disk.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from ..errors import StoreError
from .hlc import HLC, to_iso

log = logging.getLogger(__name__)

T = TypeVar("T")

# Group at most this many queued writes into one transaction.
MAX_BATCH = 256
CHECKPOINT_QUIET_S = 0.25  # a checkpoint waits for a pause in the writes this long
WAL_CAP_PAGES = 1_000       # SQLite's own default: a busy stream checkpoints inline


@dataclass
class Tx:
    """What a write callable gets: the connection and the clock."""

    conn: sqlite3.Connection
    hlc: HLC
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def stamp(self) -> int:
        return self.hlc.now()

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)


def persisted_hlc(conn: sqlite3.Connection) -> int:
    """The newest HLC stamp any process committed (``meta`` key ``hlc``), 0 if none."""
    row = conn.execute("SELECT value FROM meta WHERE key='hlc'").fetchone()
    return int(row[0]) if row else 0


_STOP = object()
_memory_ids = itertools.count()


def _journal_wal(conn: sqlite3.Connection, wait_s: float = 30.0) -> None:
    """Put the file in WAL mode. Turning a fresh file to WAL takes an exclusive lock, and
    when several processes open it at once (hub, sync and health on a fresh card; parallel
    ``fleet add-hub``) SQLite answers "locked" at once instead of calling the busy handler:
    wait here as the busy timeout would."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Store:
    """The hub's database. One instance per process; many processes may share the file."""

    def __init__(self, path: str | Path, *, wall: Callable[[], float] = time.time,
                 readers: int = 2, autocheckpoint: bool = True,
                 migrations: Sequence[tuple[str, str]] | None = None, clock: bool = True,
                 cache_kib: int | None = None) -> None:
        """``migrations`` (name, SQL) replace the hub schema for another database on the
        same write path (the fleet's); ``clock=False`` keeps no HLC in it."""
        self.path = str(path)
        self._migrations = migrations
        self._clock = clock
        self._cache_kib = cache_kib
        self._uri = self.path.startswith("file:")
        self._autocheckpoint = autocheckpoint
        self.hlc = HLC(wall=wall)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._local = threading.local()
        self._readers = concurrent.futures.ThreadPoolExecutor(
            max_workers=readers, thread_name_prefix="store-read")
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._closed = False
        self._keepalive: sqlite3.Connection | None = None
        if self._uri:  # shared-cache memory DB lives while one connection is open
            self._keepalive = self._connect()
        self._writer_conn = self._connect()
        self._migrate()
        # checkpoints off the commit path (a file store that owns its checkpoints)
        self._checkpoint_due = threading.Event()
        self._last_commit = time.monotonic()
        self._closing = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if autocheckpoint and not self._uri:
            self._writer_conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CAP_PAGES}")
            self._checkpointer = threading.Thread(target=self._checkpoint_loop,
                                                  name="store-checkpoint", daemon=True)
            self._checkpointer.start()
            self._checkpoint_due.set()  # the migrations' pages
        self._writer = threading.Thread(target=self._write_loop, name="store-write", daemon=True)
        self._writer.start()

    @classmethod
    def memory(cls, **kw: Any) -> Store:
        """A private in-memory store for tests (shared cache so readers see writes)."""
        name = f"file:hubmem{next(_memory_ids)}_{uuid.uuid4().hex}?mode=memory&cache=shared"
        return cls(name, **kw)

    # -- connections --------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30, uri=self._uri)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open database {self.path}: {e}") from e
        conn.row_factory = sqlite3.Row
        if not self._uri:
            _journal_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        if self._cache_kib:
            conn.execute(f"PRAGMA cache_size=-{int(self._cache_kib)}")
        if not self._autocheckpoint:
            # litestream owns checkpoints when it replicates this file
            conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def own_reader(self) -> sqlite3.Connection:
        """A read-only connection of the caller's own, outside the reader pool: for state
        kept per connection (``PRAGMA data_version``). The caller closes it."""
        conn = self._connect()
        conn.execute("PRAGMA query_only=ON")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    # -- migrations -----------------------------------------------------------------
    def _migrate(self) -> None:
        """Apply pending migrations in one IMMEDIATE transaction.

        hub, sync and health start together on a fresh card; the write lock makes the
        later ones wait, then see the migrations already applied.
        """
        conn = self._writer_conn
        name = "?"
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, "
                         "applied TEXT)")
            done = {r[0] for r in conn.execute("SELECT name FROM _migrations")}
            for name, sql in self._migrations or _hub_migrations():
                if name in done:
                    continue
                # executescript would COMMIT implicitly; run statement by statement instead
                for stmt in _statements(sql):
                    conn.execute(stmt)
                conn.execute("INSERT INTO _migrations VALUES (?, datetime('now'))", (name,))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"migration {name} failed: {e}") from e
        if self._clock:
            self.hlc.advance_to(self._persisted_hlc(conn))

    @staticmethod
    def _persisted_hlc(conn: sqlite3.Connection) -> int:
        return persisted_hlc(conn)

    # -- the write path ---------------------------------------------------------------
    async def write(self, fn: Callable[[Tx], T]) -> T:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._submit((fn, fut, loop))
        return await fut

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._submit((fn, fut, None))
        return fut.result()

    def _submit(self, item: Any) -> None:
        if self._closed:
            raise StoreError("store is closed")
        self._queue.put(item)

    def _write_loop(self) -> None:
        conn = self._writer_conn
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            self._run_batch(conn, batch)
            if stop:
                return

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Any]) -> None:
        results: list[tuple[bool, Any]] = []
        hooks: list[Callable[[], None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            if self._clock:
                # another process (sync, health) may have stamped since we last looked
                self.hlc.advance_to(self._persisted_hlc(conn))
            for fn, _fut, _loop in batch:
                tx = Tx(conn, self.hlc)
                conn.execute("SAVEPOINT w")
                try:
                    res = fn(tx)
                    conn.execute("RELEASE w")
                    results.append((True, res))
                    hooks.extend(tx.after_commit)
                except BaseException as e:  # noqa: BLE001 - handed to the caller
                    conn.execute("ROLLBACK TO w")
                    conn.execute("RELEASE w")
                    results.append((False, e))
            if self._clock:
                conn.execute("INSERT INTO meta(key, value) VALUES ('hlc', ?) "
                             "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                             (str(self.hlc.last),))
            conn.execute("COMMIT")
            self._last_commit = time.monotonic()
            self._checkpoint_due.set()
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            err = StoreError(f"database write failed: {e}")
            results = [(False, err)] * len(batch)
            hooks = []
        for (_fn, fut, loop), (ok, val) in zip(batch, results, strict=True):
            _resolve(fut, loop, ok, val)
        for hook in hooks:
            try:
                hook()
            except Exception:  # pragma: no cover - hooks only signal
                log.exception("after-commit hook failed")

    def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database in the pauses between writes, not in them.

        SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL
        pages: that commit's caller waits while ~4 MB are written back and fsynced
        (100-250 ms on an SD card), one registration in twenty at a busy clinic. Here a
        PASSIVE checkpoint (it takes no lock a writer or reader waits on) runs on its own
        connection once the writes have paused for ``CHECKPOINT_QUIET_S``, so sparse
        writes (registrations, visits) never meet one. A steady stream of writes (a
        reporting-day import) leaves no pause: its checkpoints stay inline at SQLite's
        1,000 pages, because one running beside every commit halved that import's rate
        (the hub bench's LAN import ratio, 0.63x -> 0.40x)."""
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._checkpoint_due.wait()
                while True:  # until the writes pause
                    quiet = time.monotonic() - self._last_commit
                    if self._closed or self._closing.wait(max(0.0, CHECKPOINT_QUIET_S - quiet)):
                        return
                    if time.monotonic() - self._last_commit >= CHECKPOINT_QUIET_S:
                        break
                self._checkpoint_due.clear()
                try:
                    if conn is None:
                        conn = self._connect()
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as e:  # busy or the disk: the next commit tries again
                    log.warning("checkpoint failed: %s", e)
        finally:
            if conn is not None:
                conn.close()

    # -- reads -------------------------------------------------------------------------
    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader()))

    def read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._readers.submit(lambda: fn(self._reader())).result()

    def now_iso(self) -> str:
        return to_iso(self.hlc.now())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._writer.join(timeout=30)
        if self._checkpointer is not None:
            self._closing.set()
            self._checkpoint_due.set()
            self._checkpointer.join(timeout=30)
        self._readers.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()
        self._writer_conn.close()  # the last close checkpoints and removes the WAL
        if self._keepalive is not None:
            self._keepalive.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve(fut: Any, loop: asyncio.AbstractEventLoop | None, ok: bool, val: Any) -> None:
    if loop is None:
        if ok:
            fut.set_result(val)
        else:
            fut.set_exception(val)
        return

    def done() -> None:
        if fut.cancelled():
            return
        if ok:
            fut.set_result(val)
        else:
            fut.set_exception(val)

    # a closed loop means the caller went away; the data is committed anyway
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(done)


def _hub_migrations() -> list[tuple[str, str]]:
    folder = resources.files("appliance.store").joinpath("migrations")
    return sorted((p.name, p.read_text()) for p in folder.iterdir() if p.name.endswith(".sql"))


def _statements(sql: str) -> list[str]:
    out, buf = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        buf.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip()
            if stmt.strip(";").strip():
                out.append(stmt)
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        out.append(rest)
    return out
