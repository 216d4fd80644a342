"""The health agent's key/value state in the store (``health_state``).

Keys: ``power_cuts``, ``agent_restarts``, ``heartbeat_seq``, ``hb_summary``,
``hb_inflight``, ``heartbeat`` (last attempt), ``quick_check``, ``led``, ``tls``,
``update`` (the update agent's record, ``updater``).
Values are text; JSON helpers for structured ones. The table and its encoding belong to
``appliance.store.health``; these are the short names the agent's modules use.
"""

from __future__ import annotations

from ..store import health as hstore

get = hstore.get_state
get_json = hstore.get_state_json
get_int = hstore.get_state_int
put = hstore.put_state
put_json = hstore.put_state_json
delete = hstore.delete_state
increment = hstore.increment_state
