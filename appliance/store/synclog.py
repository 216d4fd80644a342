"""The sync log: per-entity sync state, events, conflicts, rejections, push chunks and
clock anchors (tables ``sync_state``, ``sync_event``, ``sync_conflict``,
``sync_rejection``, ``sync_push_chunk``, ``sync_clock_anchor``).

Writes take a ``Tx`` and run on the writer thread (``Store.write``); reads take a
connection (``Store.read``).
"""

from __future__ import annotations
