"""A restored hub takes a new sync identity (DESIGN.md §6).

A card restored from the litestream backup holds the dead card's database as it was a few
seconds (or, if the backup link was down, longer) before it died. What that old card did
afterwards is still out there, so the restored hub must not act as if it were the same
hub carrying on:

* **Heartbeats.** The fleet refuses a heartbeat whose ``seq`` is not above the last one it
  took from that hub (replay protection). The old card's counter ran on past the backup,
  so a restored counter would be refused, and the hub would vanish from the national
  dashboard for as long as it took to catch up. Each identity generation ``g`` numbers its
  heartbeats from ``g << 32`` up, beyond anything an earlier card can have reached. A
  batch the old card had in flight goes out again under a new seq.
* **Data.** Nothing to renumber: pending rows stay pending (an edit acknowledged before
  the backup is never dropped), and the next cycle pulls from the restored watermark,
  which lies before whatever the old card pushed later. A key national already has with
  the same value is marked synced; one national has with a later value goes through
  conflict resolution (and the log) before anything is pushed, so a stale restored edit
  cannot silently overwrite a newer one the old card had sent.

The generation and the restore are recorded in the sync state and event log, which the
status page and heartbeats report.
"""

from __future__ import annotations

import time

from ..dhis2.timefmt import iso_z
from ..store import health as hstore
from ..store.db import Tx
from .state import add_event, read_state, set_state

GENERATION_SHIFT = 32


def take_new_identity(tx: Tx, why: str = "restored from backup") -> int:
    """Start identity generation n+1 in this database; returns it."""
    generation = int(read_state(tx.conn).get("identity_generation") or 0) + 1
    set_state(tx, {"identity_generation": str(generation)})
    hstore.renumber_heartbeats(tx, generation << GENERATION_SHIFT)
    add_event(tx, "warning", "identity",
              f"{why}: new sync identity {generation}; pending edits are checked against "
              "national before they are pushed again", iso_z(time.time(), millis=True),
              {"code": "identity", "n": generation})
    return generation
