-- Health agent: samples, its own key/value state, the heartbeat queue and device events.

-- One row per health sample (the JSON is the heartbeat's sample object). Retention is by
-- HLC stamp, not wall time: after a power cut the wall clock can be years off.
CREATE TABLE health_sample (
  id   INTEGER PRIMARY KEY,
  hlc  INTEGER NOT NULL,
  at   TEXT NOT NULL,                   -- wall time of the sample, ISO-8601 UTC with Z
  doc  TEXT NOT NULL                    -- JSON sample, as sent in heartbeats
);
CREATE INDEX health_sample_hlc ON health_sample(hlc);

-- Power-cut count, heartbeat seq, last quick_check, current LED state, last heartbeat...
CREATE TABLE health_state (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- Samples waiting to reach the fleet service. batch_seq is set while a POST carrying the
-- row is in flight, so an ambiguous failure is retried with the same seq (idempotent).
CREATE TABLE heartbeat_queue (
  id        INTEGER PRIMARY KEY,
  at        TEXT NOT NULL,
  sample    TEXT NOT NULL,              -- JSON sample
  batch_seq INTEGER
);
CREATE INDEX heartbeat_queue_batch ON heartbeat_queue(batch_seq);

-- Bounded log of hardware events: modems and USB storage appearing and going.
CREATE TABLE health_event (
  id      INTEGER PRIMARY KEY,
  at      TEXT NOT NULL,
  kind    TEXT NOT NULL,                -- modem | usb-storage
  action  TEXT NOT NULL,                -- add | remove | present
  name    TEXT NOT NULL,                -- kernel name: ttyUSB0, wwan0, sda1
  detail  TEXT NOT NULL                 -- JSON: devnode, vendor, model, driver, fs...
);
