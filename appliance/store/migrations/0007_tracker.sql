-- Tracker (individual records): tracked entities and their attribute values, enrollments,
-- events and their data values, relationships, program ownership, potential duplicates
-- and reserved attribute values. Owned by appliance/store/tracker.py.
-- Every data row carries datavalue's sync columns (DESIGN.md §6): sync_state, hlc (the
-- store's HLC stamp of the last write), origin ('local' | 'national') and base (national's
-- updatedAt the local edit was made from). Times are DHIS2 text yyyy-MM-ddTHH:mm:ss.SSS.
-- A deleted attribute or data value keeps its row with value NULL until it has synced, so
-- the deletion can be pushed.

CREATE TABLE tracked_entity (
  uid                 TEXT PRIMARY KEY,
  type                TEXT NOT NULL,
  org_unit            TEXT NOT NULL,
  created_at          TEXT,
  updated_at          TEXT,
  created_at_client   TEXT,
  updated_at_client   TEXT,
  stored_by           TEXT,
  inactive            INTEGER NOT NULL DEFAULT 0,
  potential_duplicate INTEGER NOT NULL DEFAULT 0,
  geometry            TEXT,                 -- GeoJSON text
  deleted             INTEGER NOT NULL DEFAULT 0,
  sync_state          TEXT NOT NULL DEFAULT 'pending'
                      CHECK (sync_state IN ('pending','synced','conflict','rejected')),
  hlc                 INTEGER NOT NULL,
  origin              TEXT NOT NULL DEFAULT 'local',
  base                TEXT
);
CREATE INDEX tracked_entity_ou ON tracked_entity(org_unit, type);
CREATE INDEX tracked_entity_updated ON tracked_entity(updated_at);
CREATE INDEX tracked_entity_pending ON tracked_entity(hlc) WHERE sync_state = 'pending';

CREATE TABLE te_attribute (
  te          TEXT NOT NULL,
  attribute   TEXT NOT NULL,
  value       TEXT,                         -- NULL: deleted, kept until synced
  created_at  TEXT,
  updated_at  TEXT,
  stored_by   TEXT,
  sync_state  TEXT NOT NULL DEFAULT 'pending'
              CHECK (sync_state IN ('pending','synced','conflict','rejected')),
  hlc         INTEGER NOT NULL,
  origin      TEXT NOT NULL DEFAULT 'local',
  base        TEXT,
  PRIMARY KEY (te, attribute)
) WITHOUT ROWID;
-- unique-attribute checks and attribute filters
CREATE INDEX te_attribute_value ON te_attribute(attribute, value);
CREATE INDEX te_attribute_pending ON te_attribute(hlc) WHERE sync_state = 'pending';

CREATE TABLE enrollment (
  uid                 TEXT PRIMARY KEY,
  te                  TEXT NOT NULL,
  program             TEXT NOT NULL,
  org_unit            TEXT NOT NULL,
  status              TEXT NOT NULL DEFAULT 'ACTIVE',
  enrolled_at         TEXT,
  occurred_at         TEXT,
  completed_at        TEXT,
  follow_up           INTEGER NOT NULL DEFAULT 0,
  geometry            TEXT,
  notes               TEXT,                 -- JSON array of DHIS2 notes
  created_at          TEXT,
  updated_at          TEXT,
  created_at_client   TEXT,
  updated_at_client   TEXT,
  stored_by           TEXT,
  deleted             INTEGER NOT NULL DEFAULT 0,
  sync_state          TEXT NOT NULL DEFAULT 'pending'
                      CHECK (sync_state IN ('pending','synced','conflict','rejected')),
  hlc                 INTEGER NOT NULL,
  origin              TEXT NOT NULL DEFAULT 'local',
  base                TEXT
);
CREATE INDEX enrollment_te ON enrollment(te);
CREATE INDEX enrollment_program_ou ON enrollment(program, org_unit);
CREATE INDEX enrollment_updated ON enrollment(updated_at);
CREATE INDEX enrollment_pending ON enrollment(hlc) WHERE sync_state = 'pending';

CREATE TABLE event (
  uid                 TEXT PRIMARY KEY,
  enrollment          TEXT,                 -- NULL for event programs
  te                  TEXT,
  program             TEXT NOT NULL,
  program_stage       TEXT NOT NULL,
  org_unit            TEXT NOT NULL,
  status              TEXT NOT NULL DEFAULT 'ACTIVE',
  occurred_at         TEXT,
  scheduled_at        TEXT,
  completed_at        TEXT,
  aoc                 TEXT,
  geometry            TEXT,
  notes               TEXT,                 -- JSON array of DHIS2 notes
  follow_up           INTEGER NOT NULL DEFAULT 0,
  created_at          TEXT,
  updated_at          TEXT,
  created_at_client   TEXT,
  updated_at_client   TEXT,
  stored_by           TEXT,
  deleted             INTEGER NOT NULL DEFAULT 0,
  sync_state          TEXT NOT NULL DEFAULT 'pending'
                      CHECK (sync_state IN ('pending','synced','conflict','rejected')),
  hlc                 INTEGER NOT NULL,
  origin              TEXT NOT NULL DEFAULT 'local',
  base                TEXT
);
CREATE INDEX event_enrollment ON event(enrollment);
CREATE INDEX event_ou_program ON event(org_unit, program);
CREATE INDEX event_scheduled ON event(scheduled_at) WHERE deleted = 0;
CREATE INDEX event_updated ON event(updated_at);
CREATE INDEX event_pending ON event(hlc) WHERE sync_state = 'pending';

CREATE TABLE event_value (
  event               TEXT NOT NULL,
  data_element        TEXT NOT NULL,
  value               TEXT,                 -- NULL: deleted, kept until synced
  provided_elsewhere  INTEGER NOT NULL DEFAULT 0,
  created_at          TEXT,
  updated_at          TEXT,
  stored_by           TEXT,
  sync_state          TEXT NOT NULL DEFAULT 'pending'
                      CHECK (sync_state IN ('pending','synced','conflict','rejected')),
  hlc                 INTEGER NOT NULL,
  origin              TEXT NOT NULL DEFAULT 'local',
  base                TEXT,
  PRIMARY KEY (event, data_element)
) WITHOUT ROWID;
CREATE INDEX event_value_pending ON event_value(hlc) WHERE sync_state = 'pending';

CREATE TABLE relationship (
  uid            TEXT PRIMARY KEY,
  type           TEXT NOT NULL,
  from_doc       TEXT NOT NULL,             -- JSON {"trackedEntity":{"trackedEntity":uid}} etc.
  to_doc         TEXT NOT NULL,
  bidirectional  INTEGER NOT NULL DEFAULT 0,
  created_at     TEXT,
  updated_at     TEXT,
  deleted        INTEGER NOT NULL DEFAULT 0,
  sync_state     TEXT NOT NULL DEFAULT 'pending'
                 CHECK (sync_state IN ('pending','synced','conflict','rejected')),
  hlc            INTEGER NOT NULL,
  origin         TEXT NOT NULL DEFAULT 'local',
  base           TEXT
);
CREATE INDEX relationship_updated ON relationship(updated_at);
CREATE INDEX relationship_pending ON relationship(hlc) WHERE sync_state = 'pending';

CREATE TABLE program_owner (
  te          TEXT NOT NULL,
  program     TEXT NOT NULL,
  org_unit    TEXT NOT NULL,
  updated_at  TEXT,
  sync_state  TEXT NOT NULL DEFAULT 'pending'
              CHECK (sync_state IN ('pending','synced','conflict','rejected')),
  hlc         INTEGER NOT NULL,
  origin      TEXT NOT NULL DEFAULT 'local',
  base        TEXT,
  PRIMARY KEY (te, program)
) WITHOUT ROWID;
CREATE INDEX program_owner_ou ON program_owner(program, org_unit);
CREATE INDEX program_owner_updated ON program_owner(updated_at);
CREATE INDEX program_owner_pending ON program_owner(hlc) WHERE sync_state = 'pending';

CREATE TABLE potential_duplicate (
  uid         TEXT PRIMARY KEY,
  original    TEXT NOT NULL,
  duplicate   TEXT NOT NULL,
  status      TEXT NOT NULL DEFAULT 'OPEN',  -- OPEN | INVALID | MERGED
  reasons     TEXT,                          -- JSON array
  created_at  TEXT,
  updated_at  TEXT,
  created_by  TEXT,
  sync_state  TEXT NOT NULL DEFAULT 'pending'
              CHECK (sync_state IN ('pending','synced','conflict','rejected')),
  hlc         INTEGER NOT NULL,
  origin      TEXT NOT NULL DEFAULT 'local',
  base        TEXT
);
CREATE INDEX potential_duplicate_original ON potential_duplicate(original);
CREATE INDEX potential_duplicate_duplicate ON potential_duplicate(duplicate);
CREATE INDEX potential_duplicate_updated ON potential_duplicate(updated_at);
CREATE INDEX potential_duplicate_pending ON potential_duplicate(hlc) WHERE sync_state = 'pending';

-- Values handed out by generateAndReserve; never handed out twice (expired ones stay as the
-- sequence's high-water mark).
CREATE TABLE reserved_value (
  attribute   TEXT NOT NULL,
  value       TEXT NOT NULL,
  owner_user  TEXT,
  created     TEXT,
  expiry      TEXT,
  used        INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (attribute, value)
) WITHOUT ROWID;
