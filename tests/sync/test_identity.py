"""A restored hub's new sync identity (appliance.sync.identity)."""

from __future__ import annotations

from appliance.health import state as hs
from appliance.store import Store
from appliance.sync.identity import GENERATION_SHIFT, take_new_identity
from appliance.sync.state import read_state


def test_generations_number_heartbeats_past_the_old_card() -> None:
    with Store.memory() as store:
        def old_card(tx):  # type: ignore[no-untyped-def]
            hs.put(tx, "heartbeat_seq", "900")
            tx.execute("INSERT INTO heartbeat_queue(at, sample, batch_seq) VALUES ('t', '{}', 900)")
            tx.execute("INSERT INTO heartbeat_queue(at, sample) VALUES ('t', '{}')")
            hs.put_json(tx, "hb_inflight", {"seq": 900, "summary": None})
        store.write_sync(old_card)
        assert store.write_sync(take_new_identity) == 1
        seq, inflight, frozen, gen, events = store.read_sync(lambda c: (
            hs.get_int(c, "heartbeat_seq"), hs.get_json(c, "hb_inflight"),
            c.execute("SELECT count(*) FROM heartbeat_queue WHERE batch_seq IS NOT NULL"
                      ).fetchone()[0],
            read_state(c)["identity_generation"],
            [r[0] for r in c.execute("SELECT message FROM sync_event WHERE kind='identity'")]))
        assert seq == 1 << GENERATION_SHIFT
        # the old card's batch in flight goes out again, under the new numbering
        assert inflight is None and frozen == 0
        assert gen == "1" and len(events) == 1 and "new sync identity 1" in events[0]
        # restored again (the new card died too): the next generation is above this one
        assert store.write_sync(take_new_identity) == 2
        assert store.read_sync(lambda c: hs.get_int(c, "heartbeat_seq")) == 2 << GENERATION_SHIFT


def test_a_counter_already_past_the_floor_is_kept() -> None:
    with Store.memory() as store:
        store.write_sync(lambda tx: hs.put(tx, "heartbeat_seq", str((1 << 32) + 5)))
        store.write_sync(take_new_identity)
        assert store.read_sync(lambda c: hs.get_int(c, "heartbeat_seq")) == (1 << 32) + 5
