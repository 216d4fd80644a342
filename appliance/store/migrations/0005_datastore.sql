-- dataStore entries as DHIS2 2.41 keeps them (DatastoreEntry): a UID, timestamps, the
-- creator and sharing. appliance/store/datastore.py owns this table and is the only code
-- that reads or writes it.
--
-- SQLite cannot add a column whose default differs per row (the UID), so the table is
-- rebuilt. Rows written before this migration (by the API of an older hub) belong to no
-- one (owner NULL = the system): everyone logged in may read them, and only a superuser
-- (ALL), or the namespace's authority for a protected namespace, may change them.
CREATE TABLE datastore_v5 (
  namespace           TEXT NOT NULL,
  key                 TEXT NOT NULL,
  value               TEXT NOT NULL,          -- canonical JSON text (orjson), served byte-exact
  id                  TEXT NOT NULL UNIQUE,   -- DHIS2 UID, for /api/sharing?type=dataStore&id=
  created             TEXT NOT NULL,          -- yyyy-MM-ddTHH:mm:ss.SSS, UTC
  last_updated        TEXT NOT NULL,
  created_by          TEXT,                   -- user uid; NULL = the system
  owner               TEXT,                   -- user uid; NULL = the system
  public_access       TEXT NOT NULL DEFAULT 'r-------',  -- DHIS2 access string
  user_accesses       TEXT NOT NULL DEFAULT '{}',        -- JSON {user uid: access string}
  user_group_accesses TEXT NOT NULL DEFAULT '{}',        -- JSON {group uid: access string}
  PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

-- A UID per old row: a letter, then ten letters or digits (as appliance/dhis2/uid.py).
-- `random() & 65535` stays non-negative (abs(random()) can overflow). A value the old
-- handler stored as invalid JSON (NaN, Infinity) is kept, as a JSON string of its text.
INSERT INTO datastore_v5 (namespace, key, value, id, created, last_updated, created_by, owner,
                          public_access, user_accesses, user_group_accesses)
SELECT namespace, key,
       CASE WHEN json_valid(value) THEN value ELSE json_quote(value) END,
       substr('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + (random() & 65535) % 52, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + (random() & 65535) % 62, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + (random() & 65535) % 62, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + (random() & 65535) % 62, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + (random() & 65535) % 62, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + (random() & 65535) % 62, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + (random() & 65535) % 62, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + (random() & 65535) % 62, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + (random() & 65535) % 62, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + (random() & 65535) % 62, 1)
       || substr('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + (random() & 65535) % 62, 1),
       strftime('%Y-%m-%dT%H:%M:%f', 'now'), strftime('%Y-%m-%dT%H:%M:%f', 'now'),
       NULL, NULL, 'r-------', '{}', '{}'
FROM datastore;

DROP TABLE datastore;
ALTER TABLE datastore_v5 RENAME TO datastore;
