-- The status page, /api/hub/status and the health agent count the tracker rows that are
-- not synced, every few seconds. At 200,000 people the tables hold millions of rows, so
-- the counts read these partial indexes (tiny: only refused or conflicting rows) and the
-- pending ones from 0007's, never the tables. Owned by appliance/store/backlog.py's reads.
CREATE INDEX tracked_entity_unsynced ON tracked_entity(sync_state) WHERE sync_state IN ('rejected', 'conflict');
CREATE INDEX te_attribute_unsynced ON te_attribute(sync_state) WHERE sync_state IN ('rejected', 'conflict');
CREATE INDEX enrollment_unsynced ON enrollment(sync_state) WHERE sync_state IN ('rejected', 'conflict');
CREATE INDEX event_unsynced ON event(sync_state) WHERE sync_state IN ('rejected', 'conflict');
CREATE INDEX event_value_unsynced ON event_value(sync_state) WHERE sync_state IN ('rejected', 'conflict');
CREATE INDEX relationship_unsynced ON relationship(sync_state) WHERE sync_state IN ('rejected', 'conflict');
CREATE INDEX program_owner_unsynced ON program_owner(sync_state) WHERE sync_state IN ('rejected', 'conflict');
CREATE INDEX potential_duplicate_unsynced ON potential_duplicate(sync_state) WHERE sync_state IN ('rejected', 'conflict');
