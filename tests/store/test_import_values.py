"""``import_values`` against a plain model of DHIS2's importer.

The store writes each import as a few set-based statements over JSON arrays; this checks
that they land exactly what a value-by-value importer would: the counts, the stored rows
and the audit trail, over random payloads with repeated keys, deletes, non-significant
zeros, comments, follow-ups and every strategy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from appliance.store import Store
from appliance.store.datavalues import NATIONAL, Counts, DryRun, ValueRow, import_values
from appliance.store.keys import key_str

STRATEGIES = ["CREATE_AND_UPDATE", "CREATE", "UPDATE", "DELETE"]


@dataclass
class Cell:
    value: str | None
    comment: str | None
    followup: int
    stored_by: str
    deleted: int


def model(cells: dict[tuple[str, ...], Cell], rows: list[ValueRow], strategy: str,
          username: str) -> tuple[Counts, list[tuple[str, str, str | None, str | None]]]:
    """One value at a time, in payload order, as dhis2-core's importer decides."""
    counts, audits = Counts(), []
    for r in rows:
        old = cells.get(r.key)
        live = old is not None and not old.deleted
        by = r.stored_by or username
        if strategy == "DELETE" or r.delete or r.zero_skip:
            if not live:
                counts.ignored += 1
                continue
            assert old is not None
            counts.deleted += 1
            audits.append((key_str(r.key), "DELETE", old.value, None))
            cells[r.key] = Cell(old.value, old.comment, old.followup, by, 1)
        elif live:
            assert old is not None
            followup = int(r.followup) if r.followup is not None else old.followup
            if strategy == "CREATE" or (old.value, old.comment, old.followup) == (
                    r.value, r.comment, followup):
                counts.ignored += 1
                continue
            counts.updated += 1
            audits.append((key_str(r.key), "UPDATE", old.value, r.value))
            cells[r.key] = Cell(r.value, r.comment, followup, by, 0)
        else:
            if strategy == "UPDATE":
                counts.ignored += 1
                continue
            counts.imported += 1
            audits.append((key_str(r.key), "CREATE", old.value if old else None, r.value))
            cells[r.key] = Cell(r.value, r.comment, int(bool(r.followup)), by, 0)
    return counts, audits


def random_rows(rng: random.Random, n: int) -> list[ValueRow]:
    rows = []
    for i in range(n):
        zero = rng.random() < 0.1
        rows.append(ValueRow(
            index=i, de=f"de{rng.randrange(12):09d}", pe=rng.choice(["202501", "202502"]),
            ou=rng.choice(["ouAAAAAAAAA", "ouBBBBBBBBB"]), coc="HllvX50cXC0",
            aoc=rng.choice(["HllvX50cXC0", "HllvX50cXC0", "aocCCCCCCCC"]),
            value="0" if zero else rng.choice(["1", "2", "3", "ক্লিনিক \"x\"", "a\\b\nc", None]),
            comment=rng.choice([None, None, "late", "ফলো আপ"]),
            followup=rng.choice([None, True, False]),
            stored_by=rng.choice([None, "", "chcp1", "chcp2"]),
            delete=rng.random() < 0.1, zero_skip=zero and rng.random() < 0.7))
    return rows


def stored(store: Store) -> dict[tuple[str, ...], Cell]:
    return store.read_sync(lambda c: {
        (r["de"], r["pe"], r["ou"], r["coc"], r["aoc"]):
            Cell(r["value"], r["comment"], r["followup"], r["stored_by"], r["deleted"])
        for r in c.execute("SELECT * FROM datavalue")})


@pytest.mark.parametrize("seed", range(6))
def test_matches_value_by_value_model(seed: int) -> None:
    rng = random.Random(seed)
    cells: dict[tuple[str, ...], Cell] = {}
    with Store.memory() as store:
        for _ in range(40):
            rows = random_rows(rng, rng.randrange(1, 40))
            strategy = rng.choice(STRATEGIES)
            audit_before = store.read_sync(lambda c: c.execute(
                "SELECT max(id) FROM audit").fetchone()[0]) or 0
            want_counts, want_audit = model(cells, rows, strategy, "admin")
            got = store.write_sync(lambda tx, rows=rows, strategy=strategy: import_values(
                tx, rows, username="admin", strategy=strategy, client="10.0.0.7"))
            assert got == want_counts
            assert stored(store) == cells
            audit = store.read_sync(lambda c, after=audit_before: [
                (r["key"], r["audit_type"], r["old_value"], r["new_value"])
                for r in c.execute("SELECT * FROM audit WHERE id > ? ORDER BY id", (after,))])
            assert by_key(audit) == by_key(want_audit)


def by_key(audit: list[tuple[str, str, str | None, str | None]]) -> dict[str, list[Any]]:
    """Audit rows per key, in order: one key's history is ordered, different keys' rows of
    one import are not (they share a stamp)."""
    out: dict[str, list[Any]] = {}
    for a in audit:
        out.setdefault(a[0], []).append(a[1:])
    return out


def test_sync_columns_and_times() -> None:
    row = ValueRow(index=0, de="deAAAAAAAAA", pe="202501", ou="ouAAAAAAAAA", coc="HllvX50cXC0",
                   aoc="HllvX50cXC0", value="7", comment=None, followup=None, stored_by=None,
                   delete=False)
    with Store.memory() as store:
        store.write_sync(lambda tx: import_values(tx, [row], username="chcp"))
        first = store.read_sync(lambda c: dict(c.execute("SELECT * FROM datavalue").fetchone()))
        row.value = "8"
        store.write_sync(lambda tx: import_values(tx, [row], username="chcp", provenance=NATIONAL))
        second = store.read_sync(lambda c: dict(c.execute("SELECT * FROM datavalue").fetchone()))
        audit = store.read_sync(lambda c: [dict(r) for r in c.execute("SELECT * FROM audit")])
    assert (first["sync_state"], first["origin"], first["stored_by"]) == ("pending", "local", "chcp")
    assert first["created"] == first["last_updated"] and first["hlc"] > 0
    assert (second["sync_state"], second["origin"]) == ("synced", "national")
    assert second["created"] == first["created"] and second["last_updated"] >= first["last_updated"]
    assert second["hlc"] > first["hlc"]
    assert [(a["via"], a["username"], a["entity"], a["hlc"]) for a in audit] == [
        ("api", "chcp", "datavalue", first["hlc"]), ("api", "chcp", "datavalue", second["hlc"])]


def test_dry_run_counts_and_writes_nothing() -> None:
    rows = random_rows(random.Random(1), 30)
    with Store.memory() as store:
        with pytest.raises(DryRun) as e:
            store.write_sync(lambda tx: import_values(tx, rows, username="admin", dry_run=True))
        assert e.value.counts == model({}, rows, "CREATE_AND_UPDATE", "admin")[0]
        assert store.read_sync(lambda c: c.execute(
            "SELECT (SELECT count(*) FROM datavalue), (SELECT count(*) FROM audit)").fetchone()[:]
        ) == (0, 0)
