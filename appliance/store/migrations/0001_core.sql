-- Core schema: metadata, aggregate data with sync columns, audit, users, auth.

CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- Metadata as the DHIS2 JSON documents received, with columns queries need.
CREATE TABLE metadata (
  type         TEXT NOT NULL,           -- DHIS2 collection name: organisationUnits, dataSets, ...
  uid          TEXT NOT NULL,
  code         TEXT,
  name         TEXT,
  path         TEXT,                    -- org units only: /a/b/c
  last_updated TEXT,
  doc          TEXT NOT NULL,           -- the JSON document
  PRIMARY KEY (type, uid)
) WITHOUT ROWID;
CREATE INDEX metadata_code ON metadata(type, code);
CREATE INDEX metadata_path ON metadata(path) WHERE path IS NOT NULL;
CREATE INDEX metadata_updated ON metadata(type, last_updated);

-- Aggregate data values, keyed by DHIS2's natural key. Sync columns per DESIGN.md §6.
CREATE TABLE datavalue (
  de           TEXT NOT NULL,
  pe           TEXT NOT NULL,
  ou           TEXT NOT NULL,
  coc          TEXT NOT NULL,
  aoc          TEXT NOT NULL,
  value        TEXT,
  comment      TEXT,
  followup     INTEGER NOT NULL DEFAULT 0,
  stored_by    TEXT,
  created      TEXT NOT NULL,
  last_updated TEXT NOT NULL,
  deleted      INTEGER NOT NULL DEFAULT 0,
  sync_state   TEXT NOT NULL DEFAULT 'pending'
               CHECK (sync_state IN ('pending','synced','conflict','rejected')),
  hlc          INTEGER NOT NULL,        -- stamp of the last local change
  origin       TEXT NOT NULL,           -- 'local' or 'national'
  base         TEXT,                    -- national lastUpdated this edit was made from
  -- org unit and period first: forms, downloads and imports all read one (ou, pe) at a
  -- time, so the key serves them and no second index has to be kept up on every write
  PRIMARY KEY (ou, pe, de, coc, aoc)
) WITHOUT ROWID;
-- No last_updated index: delta reads always name org units, so they walk the key's
-- (ou, pe) prefix; an index on a timestamp would cost every reporting-day write.
CREATE INDEX datavalue_pending ON datavalue(hlc) WHERE sync_state = 'pending';

CREATE TABLE complete_registration (
  ds           TEXT NOT NULL,
  pe           TEXT NOT NULL,
  ou           TEXT NOT NULL,
  aoc          TEXT NOT NULL,
  date         TEXT NOT NULL,
  stored_by    TEXT,
  completed    INTEGER NOT NULL DEFAULT 1,
  last_updated TEXT NOT NULL,
  deleted      INTEGER NOT NULL DEFAULT 0,
  sync_state   TEXT NOT NULL DEFAULT 'pending'
               CHECK (sync_state IN ('pending','synced','conflict','rejected')),
  hlc          INTEGER NOT NULL,
  origin       TEXT NOT NULL,
  base         TEXT,
  PRIMARY KEY (ds, pe, ou, aoc)
) WITHOUT ROWID;
CREATE INDEX complete_pending ON complete_registration(hlc) WHERE sync_state = 'pending';

-- Every change to data: who, when, from where, via what, old and new.
CREATE TABLE audit (
  id          INTEGER PRIMARY KEY,
  hlc         INTEGER NOT NULL,
  at          TEXT NOT NULL,
  username    TEXT,
  via         TEXT NOT NULL,            -- 'api', 'sync', 'conflict-resolution', ...
  client      TEXT,                     -- remote address
  entity      TEXT NOT NULL,            -- 'datavalue', 'complete_registration', 'user', ...
  key         TEXT NOT NULL,            -- natural key, '|'-joined
  audit_type  TEXT NOT NULL,            -- CREATE, UPDATE, DELETE
  old_value   TEXT,
  new_value   TEXT
);
-- No index on key: one B-tree insert fewer per value on reporting day; audit queries
-- are rare and scan (see hub/routes_data.audits).

CREATE TABLE users (
  uid          TEXT PRIMARY KEY,
  username     TEXT NOT NULL UNIQUE,
  doc          TEXT NOT NULL,           -- DHIS2 user document (as /api/me serves it)
  verifier     TEXT,                    -- scrypt$N$r$p$salt$hash; NULL until first login
  disabled     INTEGER NOT NULL DEFAULT 0,
  local        INTEGER NOT NULL DEFAULT 0, -- hub-local account, not from national
  failed       INTEGER NOT NULL DEFAULT 0,
  locked_until REAL NOT NULL DEFAULT 0,
  last_updated TEXT
);

CREATE TABLE api_tokens (
  token_hash  TEXT PRIMARY KEY,         -- sha256 of the token; the token itself is never stored
  user_uid    TEXT NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
  name        TEXT,
  expires     REAL                      -- unix time, NULL = never
);

CREATE TABLE sessions (
  id        TEXT PRIMARY KEY,
  user_uid  TEXT NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
  expires   REAL NOT NULL
);

CREATE TABLE login_audit (
  id        INTEGER PRIMARY KEY,
  at        TEXT NOT NULL,
  username  TEXT,
  client    TEXT,
  method    TEXT,
  success   INTEGER NOT NULL,
  reason    TEXT
);

CREATE TABLE datastore (
  namespace TEXT NOT NULL,
  key       TEXT NOT NULL,
  value     TEXT NOT NULL,
  PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

CREATE TABLE settings (
  scope  TEXT NOT NULL,                 -- 'system' or a user uid
  key    TEXT NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (scope, key)
) WITHOUT ROWID;

-- Metadata removed (for /api/deletedObjects deltas).
CREATE TABLE deleted_object (
  type       TEXT NOT NULL,
  uid        TEXT NOT NULL,
  deleted_at TEXT NOT NULL,
  PRIMARY KEY (type, uid)
) WITHOUT ROWID;

-- Data approvals (the national stand-in uses them; a hub mirrors national's).
CREATE TABLE data_approval (
  ds          TEXT NOT NULL,
  pe          TEXT NOT NULL,
  ou          TEXT NOT NULL,
  aoc         TEXT NOT NULL,
  approved_by TEXT,
  at          TEXT NOT NULL,
  PRIMARY KEY (ds, pe, ou, aoc)
) WITHOUT ROWID;
