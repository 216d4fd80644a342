"""Push bookkeeping on a real (in-memory) store: chunk order, resume, acknowledgement,
and recognising the hub's own values after a cut."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from appliance import demo
from appliance.dhis2.timefmt import parse_ts
from appliance.store import Store
from appliance.store import datavalues as dv
from appliance.store.metadata import MetadataIndex
from appliance.sync import apply
from appliance.sync.push import (
    form_order,
    inflight,
    next_chunk,
    plan,
    resend_at_once,
    value_set,
)
from appliance.sync.summary import ImportResult, Refusal

from .conftest import first_values


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store.memory()
    yield s
    s.close()


def _keys(values: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return [tuple(v[k] for k in ("dataElement", "period", "orgUnit", "categoryOptionCombo",
                                 "attributeOptionCombo")) for v in values]


def _load(store: Store, values: list[dict[str, str]]) -> None:
    rows = [dv.ValueRow(i, v["dataElement"], v["period"], v["orgUnit"],
                        v["categoryOptionCombo"], v["attributeOptionCombo"], v["value"],
                        None, None, None, False) for i, v in enumerate(values)]
    store.write_sync(lambda tx: dv.import_values(tx, rows, username="chcp"))


def test_form_order_lets_org_units_vary_fastest() -> None:
    hub = demo.hub()
    order = form_order(MetadataIndex(by_type={t: v for t, v in hub.items()
                                              if isinstance(v, list)}))
    keys = sorted(_keys(first_values(2000)), key=order)
    # the first cell of the first form, for every clinic, then the next cell
    first_cell = keys[0][0], keys[0][3]
    run = [k for k in keys if (k[0], k[3]) == first_cell]
    assert keys[:len(run)] == run and len(run) > 1
    assert len({k[2] for k in run}) == len(run)


def test_chunks_resume_shrink_and_skip_chunks_in_flight(store: Store) -> None:
    values = first_values(50)
    _load(store, values)
    planned = store.read_sync(lambda c: plan(c, "datavalue", None))
    assert len(planned) == 50
    a, pos = store.write_sync(lambda tx: next_chunk(tx, "datavalue", 20, planned, 0))
    assert a is not None and len(a.keys) == 20 and pos == 20
    # the process dies; the next one resumes the same chunk, with the same keys
    again, _ = store.write_sync(lambda tx: next_chunk(tx, "datavalue", 20, planned, 0))
    assert again is not None and again.id == a.id and again.keys == a.keys
    # the link got worse: resend less; the rest stays pending for later chunks
    small, _ = store.write_sync(lambda tx: next_chunk(tx, "datavalue", 5, planned, 0))
    assert small is not None and small.id == a.id and small.keys == a.keys[:5]
    # with that chunk in flight, the next one takes other keys
    b, _ = store.write_sync(lambda tx: next_chunk(tx, "datavalue", 10, planned, 0, [a.id]))
    assert b is not None and b.id != a.id and not set(b.keys) & set(small.keys)


def test_ack_marks_only_what_was_sent(store: Store) -> None:
    values = first_values(3)
    _load(store, values)
    keys = _keys(values)
    chunk, _ = store.write_sync(lambda tx: next_chunk(tx, "datavalue", 10, keys, 0))
    assert chunk is not None
    sent = store.read_sync(lambda c: [
        (k, c.execute("SELECT hlc FROM datavalue WHERE de=? AND pe=? AND ou=? AND coc=? AND "
                      "aoc=?", k).fetchone()[0]) for k in keys])
    # the CHCP edits the third value while the chunk is in flight
    _load(store, [dict(values[2], value="77")])
    result = ImportResult("WARNING", 3, rejected={1: Refusal("E7619", "not a number")})
    stats = store.write_sync(lambda tx: apply.ack(tx, "datavalue", sent, result,
                                                  "2024-02-01T00:00:00.000", chunk.id))
    assert (stats.accepted, stats.rejected, stats.superseded) == (1, 1, 1)
    rows = store.read_sync(lambda c: {tuple(r[:5]): dict(r) for r in c.execute(
        "SELECT de, pe, ou, coc, aoc, sync_state, base, value FROM datavalue")})
    assert rows[keys[0]]["sync_state"] == "synced"
    assert rows[keys[0]]["base"] == "2024-02-01T00:00:00.000"
    assert rows[keys[1]]["sync_state"] == "rejected"
    # edited in flight: still pending, but based on what national now holds
    assert rows[keys[2]]["sync_state"] == "pending" and rows[keys[2]]["value"] == "77"
    assert rows[keys[2]]["base"] == "2024-02-01T00:00:00.000"
    rej = store.read_sync(lambda c: c.execute("SELECT * FROM sync_rejection").fetchone())
    assert rej["error_code"] == "E7619" and rej["username"] == "chcp"
    assert tuple(store.read_sync(lambda c: c.execute(
        "SELECT state, keys, sent FROM sync_push_chunk").fetchone())) == ("acked", None, None)


def test_own_value_met_again_after_a_cut_is_no_conflict(store: Store) -> None:
    values = first_values(1)
    _load(store, values)
    key = _keys(values)[0]
    chunk, _ = store.write_sync(lambda tx: next_chunk(tx, "datavalue", 10, [key], 0))
    assert chunk is not None
    sent = {"since": 1_000, "values": {"|".join(key): [[values[0]["value"], False]]}}
    store.write_sync(lambda tx: tx.execute("UPDATE sync_push_chunk SET sent=? WHERE id=?",
                                           (json.dumps(sent), chunk.id)))
    # killed after national imported it; then the CHCP changed it again
    _load(store, [dict(values[0], value="999")])
    ctx = apply.Context(inflight=store.read_sync(inflight), now_national_ms=10**13)
    echo = apply.Pulled(key=key, value=values[0]["value"], deleted=False,
                        last_updated="2024-02-01T00:00:00.000",
                        last_updated_ms=parse_ts("2024-02-01T00:00:00.000"), stored_by="chcp")
    stats = store.write_sync(lambda tx: apply.apply_values(tx, [echo], ctx))
    assert stats.conflicts == 0 and stats.kept_local == 1
    r = store.read_sync(lambda c: c.execute("SELECT * FROM datavalue").fetchone())
    assert r["value"] == "999" and r["sync_state"] == "pending"
    assert r["base"] == "2024-02-01T00:00:00.000"
    # a different value at national is a real conflict
    other = apply.Pulled(key=key, value="5", deleted=False,
                         last_updated="2024-02-02T00:00:00.000",
                         last_updated_ms=parse_ts("2024-02-02T00:00:00.000"))
    stats = store.write_sync(lambda tx: apply.apply_values(tx, [other], ctx))
    assert stats.conflicts == 1


def test_pulled_values_parse() -> None:
    p = apply.Pulled.value_from({"dataElement": "a", "period": "202401", "orgUnit": "o",
                                 "categoryOptionCombo": "c", "attributeOptionCombo": "x",
                                 "value": 5, "lastUpdated": "2024-01-02T03:04:05.006",
                                 "deleted": True, "followUp": True})
    assert p is not None and p.value == "5" and p.deleted and p.followup
    assert p.last_updated_ms is not None
    assert apply.Pulled.value_from({"dataElement": "a"}) is None
    r = apply.Pulled.registration_from({"dataSet": "d", "period": "202401",
                                        "organisationUnit": "o", "completed": False}, "aoc")
    assert r is not None and r.key == ("d", "202401", "o", "aoc") and r.value == "false"


def test_event_log_is_bounded_and_bytes_add_up(store: Store) -> None:
    from appliance.sync import state
    for i in range(state.EVENTS_KEPT + 150):
        store.write_sync(lambda tx, i=i: state.add_event(tx, "info", "cycle", f"e{i}", "now"))
    n, last = store.read_sync(lambda c: c.execute(
        "SELECT count(*), max(message) FROM sync_event").fetchone())
    assert n == state.EVENTS_KEPT
    store.write_sync(lambda tx: state.add_bytes(tx, 100, 2000))
    store.write_sync(lambda tx: state.add_bytes(tx, 5, 0))
    st = store.read_sync(state.read_state)
    assert (st["bytes_sent"], st["bytes_received"]) == ("105", "2000")


def test_value_set_names_shared_period_and_default_combo_once() -> None:
    default = "HllvX50cXC0"
    vals = [{"dataElement": f"de{i:09d}", "period": "202501", "orgUnit": "ouAAAAAAAAA",
             "categoryOptionCombo": default, "attributeOptionCombo": default, "value": str(i)}
            for i in range(3)]
    vs = value_set(vals, default)
    assert vs["period"] == "202501" and vs["attributeOptionCombo"] == default
    assert [set(v) for v in vs["dataValues"]] == [
        {"dataElement", "orgUnit", "categoryOptionCombo", "value"}] * 3
    assert vals[0]["period"] == "202501"  # the caller's values (matched to conflicts) intact
    # another combo stays on each value: one national lacks then refuses values, not the set
    other = [dict(v, attributeOptionCombo="aocBBBBBBBB") for v in vals]
    vs = value_set(other, default)
    assert "attributeOptionCombo" not in vs and vs["period"] == "202501"
    assert all(v["attributeOptionCombo"] == "aocBBBBBBBB" for v in vs["dataValues"])
    # two periods: each value keeps its own
    mixed = [vals[0], dict(vals[1], period="202502")]
    assert value_set(mixed, default)["dataValues"][1]["period"] == "202502"
    assert "period" not in value_set(mixed, default)


def test_value_set_is_smaller_on_the_wire() -> None:
    import gzip

    import orjson
    hub = demo.hub()
    order = form_order(MetadataIndex(by_type={t: v for t, v in hub.items()
                                              if isinstance(v, list)}))
    month = first_values(100000)  # a whole month, pushed in form order, as the sync does
    month.sort(key=lambda v: order(_keys([v])[0]))
    vals = [dict(v, storedBy="chcp") for v in month[:2000]]
    default = vals[0]["attributeOptionCombo"]
    plain = len(gzip.compress(orjson.dumps({"dataValues": vals}), 9))
    compact = len(gzip.compress(orjson.dumps(value_set(vals, default)), 9))
    assert compact < 0.95 * plain


def test_cut_early_in_an_upload_is_resent_at_once() -> None:
    # 1 s upload by the measured rate: cut after 0.1 s -> nearly all of it is still to go
    assert resend_at_once(started=10.0, cut_at=10.1, upload_s=1.0)
    # cut after 0.8 s: most of it reached national; TCP resends only the lost tail
    assert not resend_at_once(started=10.0, cut_at=10.8, upload_s=1.0)
    assert not resend_at_once(started=10.0, cut_at=10.1, upload_s=None)  # no measurement
