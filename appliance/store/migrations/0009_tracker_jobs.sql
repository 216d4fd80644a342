-- Tracker import jobs (POST /api/tracker, async): the report a device reads back with
-- GET /api/tracker/jobs/{id}/report. Kept on disk so a hub restart between a tablet's
-- upload and its report read does not make the tablet upload again; the newest 500 are
-- kept. Owned by appliance/store/trackerjobs.py.
CREATE TABLE tracker_job (
  uid        TEXT PRIMARY KEY,
  user_uid   TEXT NOT NULL,              -- only the user who started it reads it
  at         TEXT NOT NULL,              -- DHIS2 time text
  report     TEXT NOT NULL,              -- the FULL import report, JSON
  seq        INTEGER NOT NULL            -- insertion order, for pruning
);
CREATE INDEX tracker_job_seq ON tracker_job(seq);
