"""appliance/store is the only code that names hub.db's tables in SQL (issue 10).

A scan of every string literal (f-string parts included) in the production packages
for SQL that names one of the tables the store's migrations create. The fleet service
keeps its own database (fleet.db, owned by appliance/fleet/db.py) and is not scanned.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APPLIANCE = REPO / "appliance"
MIGRATIONS = APPLIANCE / "store" / "migrations"
OWNER = APPLIANCE / "store"
OWN_DATABASE = (APPLIANCE / "fleet",)

_SQL_NAMES = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE|EXISTS)\s+[\"'`]?(\w+)", re.I)


def hub_tables() -> set[str]:
    names: set[str] = set()
    for f in MIGRATIONS.glob("*.sql"):
        names |= set(re.findall(r"CREATE\s+(?:VIRTUAL\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)",
                                f.read_text(), re.I))
    return names


def sql_naming(source: str, tables: set[str]) -> list[tuple[int, str]]:
    """(line, table) for every string literal in ``source`` whose SQL names a table."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            hits += [(node.lineno, t) for t in _SQL_NAMES.findall(node.value) if t in tables]
    return hits


def test_the_migrations_name_the_tables() -> None:
    assert {"datavalue", "complete_registration", "sync_conflict", "health_sample",
            "heartbeat_queue", "datastore", "users", "audit"} <= hub_tables()


def test_the_scan_finds_sql_where_it_is() -> None:
    tables = hub_tables()
    planted = ('x = 1\n'
               'q = f"SELECT value FROM datavalue WHERE ou={ou}"\n'
               'conn.execute("DELETE FROM  sync_rejection WHERE key=?", (k,))\n'
               'tx.execute(\n  "INSERT INTO audit(at) VALUES (?)", (1,))\n'
               'entity = "datavalue"  # a name, not SQL\n')
    assert sql_naming(planted, tables) == [(2, "datavalue"), (3, "sync_rejection"),
                                           (5, "audit")]
    store_hits = sum(len(sql_naming(f.read_text(), tables)) for f in OWNER.rglob("*.py"))
    assert store_hits > 50  # the store's own SQL is found: the scan reads real code


def test_only_the_store_names_hub_tables() -> None:
    tables = hub_tables()
    outside = {}
    for f in sorted(APPLIANCE.rglob("*.py")):
        if f.is_relative_to(OWNER) or any(f.is_relative_to(d) for d in OWN_DATABASE):
            continue
        hits = sql_naming(f.read_text(), tables)
        if hits:
            outside[str(f.relative_to(REPO))] = hits
    assert outside == {}, ("SQL against hub.db outside appliance/store: move it into the "
                           f"store module that owns the table (docs/ARCHITECTURE.md): {outside}")
