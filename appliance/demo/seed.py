"""Load the embedded demo upazila (or the national stand-in) into an empty store."""

from __future__ import annotations

from typing import Any

from .. import demo
from ..store import Store
from ..store.datavalues import NATIONAL
from ..store.metadata import put_metadata
from ..store.tracker import apply_bundle
from ..store.users import add_token, upsert_user
from .history import community_clinics, history

HISTORY_SEED = 0


def seed(store: Store, which: str = "hub") -> dict[str, int]:
    """Load demo ``which`` ("hub": Ramu upazila; "national": the stand-in's country).

    Both get Ramu's register history (``history.py``) as national's records: synced,
    origin national, stored by "demo". The stand-in holds only Ramu's, like the hub."""
    doc: dict[str, list[dict[str, Any]]] = demo.national() if which == "national" else demo.hub()
    users = doc.get("users", [])
    meta = {t: items for t, items in doc.items() if t not in ("users", "system")}
    bundle = history(doc, community_clinics(doc, demo.RAMU_UID), seed=HISTORY_SEED)

    def write(tx: Any) -> None:
        put_metadata(tx, meta)
        for u in users:
            password = demo.DEMO_PASSWORDS.get(u.get("username", ""))
            upsert_user(tx, u, password=password, local=which == "hub")
        by_name = {u.get("username"): u["id"] for u in users}
        for username, token in demo.DEMO_TOKENS.items():
            if username in by_name:
                add_token(tx, by_name[username], token, name="demo")
        apply_bundle(tx, bundle, username="demo", provenance=NATIONAL, via="demo")
    store.write_sync(write)
    counts = {t: len(v) for t, v in doc.items() if isinstance(v, list)}
    counts.update(trackedEntities=len(bundle.tracked_entities),
                  enrollments=len(bundle.enrollments), events=len(bundle.events),
                  relationships=len(bundle.relationships))
    return counts
