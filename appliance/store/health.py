"""The health agent's tables: samples, current state, hardware events and the heartbeat
queue (``health_sample``, ``health_state``, ``health_event``, ``heartbeat_queue``).

Writes take a ``Tx`` and run on the writer thread (``Store.write``); reads take a
connection (``Store.read``).
"""

from __future__ import annotations
