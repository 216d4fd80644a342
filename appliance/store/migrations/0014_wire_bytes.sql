-- Bytes on the modem per local day (the hub's zone: the system's, Asia/Dhaka on the image)
-- and category (issue 15): metadata, pull, push and other from the sync worker (and the
-- hub's first-login checks), fleet from the health agent (heartbeats, update checks and
-- bundle downloads, certificate renewal). Estimates of what crossed the wire: request line,
-- headers and body as sent (compressed), reply headers and body as received. Written once
-- per sync cycle and with the health agent's samples, never per request (SD card writes).
-- Owned by appliance/store/wirebytes.py.
CREATE TABLE wire_bytes (
  day      TEXT NOT NULL,              -- YYYY-MM-DD, local
  category TEXT NOT NULL,
  sent     INTEGER NOT NULL DEFAULT 0,
  received INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (day, category)
) WITHOUT ROWID;
