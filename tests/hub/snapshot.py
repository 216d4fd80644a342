"""Watch a hub's stored data from outside, to prove refused requests change nothing.

A second, read-only SQLite connection to the hub's file takes snapshots of the tables
that hold data people entered or configured. ``PRAGMA data_version`` changes only when
another connection commits, so a request that wrote nothing costs one pragma, not a
snapshot: the fuzzer and the corpus can check every single request.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

# What a refused request must leave alone. Not sessions, login_audit or sync_event: a
# refused request may legitimately start a session (Basic login) or be audited.
STORED_TABLES = ("datavalue", "complete_registration", "datastore", "data_approval",
                 "settings", "users", "api_tokens")

Rows = frozenset[tuple[object, ...]]
Snapshot = dict[str, Rows]


def changed_rows(before: Snapshot, after: Snapshot) -> dict[str, int]:
    """Rows inserted, deleted or updated per table (an update counts once)."""
    out = {}
    for table in before.keys() | after.keys():
        old, new = before.get(table, frozenset()), after.get(table, frozenset())
        n = max(len(old - new), len(new - old))
        if n:
            out[table] = n
    return out


@dataclass
class StoreWatch:
    db: Path

    def __post_init__(self) -> None:
        self.conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30,
                                    isolation_level=None)
        self._version = -1
        self._snap: Snapshot = {}

    def close(self) -> None:
        self.conn.close()

    def data_version(self) -> int:
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def _take(self) -> Snapshot:
        self.conn.execute("BEGIN")  # one consistent read across the tables
        try:
            return {t: frozenset(self.conn.execute(f"SELECT * FROM {t}").fetchall())
                    for t in STORED_TABLES}
        finally:
            self.conn.execute("COMMIT")

    def snapshot(self) -> Snapshot:
        """The stored data now; re-read only if another connection committed since."""
        version = self.data_version()
        if version != self._version:
            self._snap, self._version = self._take(), version
        return self._snap

    def changes_since(self, before: Snapshot) -> dict[str, int]:
        """Rows changed since ``before`` (a result of :meth:`snapshot`)."""
        return changed_rows(before, self.snapshot())


def show(config: pytest.Config, lines: list[str]) -> None:
    """Write a test's closing summary to the terminal even when output is captured (as
    with ``make test``); ``-s`` shows it too."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)
