-- Sync bookkeeping shared by the sync daemon, the hub's status endpoint and the health agent.

-- Watermarks, link state, last success/error, clock offset, sync identity: key/value.
CREATE TABLE sync_state (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- The conflict log: the losing side of a concurrent edit is never dropped.
CREATE TABLE sync_conflict (
  id               INTEGER PRIMARY KEY,
  entity           TEXT NOT NULL,        -- 'datavalue' | 'complete_registration'
  key              TEXT NOT NULL,        -- JSON natural key, e.g. {"de":..,"pe":..,"ou":..,"coc":..,"aoc":..}
  data_set         TEXT,
  hub_value        TEXT,
  hub_deleted      INTEGER NOT NULL DEFAULT 0,
  hub_user         TEXT,
  hub_at           TEXT,                 -- when the hub edit happened (HLC wall time, ISO)
  hub_hlc          INTEGER,
  national_value   TEXT,
  national_deleted INTEGER NOT NULL DEFAULT 0,
  national_user    TEXT,
  national_at      TEXT,                 -- national lastUpdated, corrected for clock offset
  winner           TEXT NOT NULL CHECK (winner IN ('hub','national')),
  policy           TEXT NOT NULL,
  reason           TEXT NOT NULL,
  detected_at      TEXT NOT NULL,
  resolved_at      TEXT,
  resolved_by      TEXT,
  resolution       TEXT
);
CREATE INDEX sync_conflict_open ON sync_conflict(resolved_at);
CREATE INDEX sync_conflict_key ON sync_conflict(entity, key);

-- Why national refused a pushed row (shown to the user who entered it).
CREATE TABLE sync_rejection (
  entity      TEXT NOT NULL,
  key         TEXT NOT NULL,
  error_code  TEXT,
  message     TEXT NOT NULL,
  at          TEXT NOT NULL,
  PRIMARY KEY (entity, key)
);

-- Bounded log of sync events for the status page.
CREATE TABLE sync_event (
  id      INTEGER PRIMARY KEY,
  at      TEXT NOT NULL,
  level   TEXT NOT NULL,                 -- info | warning | error
  kind    TEXT NOT NULL,                 -- cycle, push, pull, conflict, link, ...
  message TEXT NOT NULL
);
