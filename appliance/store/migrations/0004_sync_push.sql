-- Sync worker bookkeeping beyond 0002: push chunks and their acknowledgements, clock
-- anchors, and the extra columns the conflict log and rejections need.

-- One row per pushed chunk. A chunk is written (state 'open', keys listed) before it is
-- sent and marked 'acked' in the same transaction that records its import summary, so a
-- cycle cut anywhere resumes by re-sending the first open chunk with the same keys.
-- Re-sending is harmless: DHIS2 imports by natural key and ignores unchanged values.
CREATE TABLE sync_push_chunk (
  id        INTEGER PRIMARY KEY,
  entity    TEXT NOT NULL,               -- 'datavalue' | 'complete_registration'
  state     TEXT NOT NULL CHECK (state IN ('open','acked')),
  keys      TEXT,                        -- JSON list of '|'-joined natural keys (NULL once acked)
  -- what the attempts so far sent, {"since": national ms before the first attempt,
  -- "values": {key: [[value, deleted], ...]}}: a pull that meets one of these at national
  -- before the chunk was acknowledged (a cut or kill after national imported it) is the
  -- hub's own echo, not a concurrent national edit
  sent      TEXT,
  n         INTEGER NOT NULL,
  created   TEXT NOT NULL,
  attempts  INTEGER NOT NULL DEFAULT 0,
  bytes     INTEGER,                     -- gzip body size of the last attempt
  seconds   REAL,                        -- duration of the acknowledged attempt
  acked_at  TEXT,
  accepted  INTEGER,
  rejected  INTEGER
);
CREATE INDEX sync_push_chunk_open ON sync_push_chunk(state, id);

-- HLC stamp -> local monotonic clock (this boot) -> national time. The sync worker
-- writes one whenever the HLC stops tracking the monotonic clock (a stepped wall clock
-- pins the HLC), also while offline; national_ms is filled in by the first probe of the
-- same boot. A local edit's HLC stamp is placed on national's time line by the anchors
-- around it, which survives the hub's wall clock being wrong or stepped.
CREATE TABLE sync_clock_anchor (
  hlc          INTEGER PRIMARY KEY,
  boot_id      TEXT NOT NULL,
  mono_ms      INTEGER NOT NULL,          -- CLOCK_BOOTTIME of that boot
  wall_ms      INTEGER NOT NULL,
  national_ms  INTEGER                    -- NULL until national's clock is known
);
CREATE INDEX sync_clock_anchor_boot ON sync_clock_anchor(boot_id, national_ms);

ALTER TABLE sync_conflict ADD COLUMN org_unit TEXT;
ALTER TABLE sync_conflict ADD COLUMN hub_comment TEXT;
ALTER TABLE sync_conflict ADD COLUMN national_comment TEXT;
-- national's lastUpdated as national sent it (national_at is the same, on one time line)
ALTER TABLE sync_conflict ADD COLUMN national_last_updated TEXT;
CREATE INDEX sync_conflict_ou ON sync_conflict(org_unit);

ALTER TABLE sync_rejection ADD COLUMN username TEXT;
ALTER TABLE sync_rejection ADD COLUMN org_unit TEXT;
ALTER TABLE sync_rejection ADD COLUMN value TEXT;
ALTER TABLE sync_rejection ADD COLUMN hlc INTEGER;
