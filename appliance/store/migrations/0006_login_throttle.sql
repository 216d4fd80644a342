-- Failed logins per (username, client address). A lock here stops that one address, so a
-- stranger on the clinic Wi-Fi can slow down guesses against a CHCP without locking the
-- CHCP out of their own laptop. users.locked_until stays the account-wide lock an IT
-- focal point sets; users.failed counts failures since the last success (for the record).
CREATE TABLE login_throttle (
  username      TEXT NOT NULL,           -- as typed: unknown names are throttled alike
  client        TEXT NOT NULL,           -- remote address
  failures      INTEGER NOT NULL,
  last_failure  REAL NOT NULL,           -- unix time
  locked_until  REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (username, client)
) WITHOUT ROWID;
