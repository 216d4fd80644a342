-- Person search and duplicate detection over tracked entities (issue 11).
-- One row per tracked entity, rebuilt by appliance/store/search.py (reindex) from
-- tracked_entity + te_attribute at the end of every tracker write; deleted TEs have no row.
-- Keys are phonetic Latin (either script folds to the same key); see search.py.

CREATE TABLE person_search (
  id          INTEGER PRIMARY KEY,      -- the FTS5 rowid (external content needs an integer key)
  te          TEXT NOT NULL UNIQUE,
  org_unit    TEXT NOT NULL,
  name_bn     TEXT,                     -- as entered, for hits and a CHCP's explanations
  name_en     TEXT,
  relation    TEXT,
  village     TEXT,
  name_keys   TEXT NOT NULL DEFAULT '', -- phonetic key of each name given, ' | '-joined
  name_skels  TEXT NOT NULL DEFAULT '', -- consonant skeletons of the same, ' | '-joined
  skel_bn     TEXT,                     -- the Bangla name's skeleton, and the English one's:
  skel_en     TEXT,                     --   the duplicate check looks them up exactly
  rel_key     TEXT NOT NULL DEFAULT '',
  rel_skel    TEXT NOT NULL DEFAULT '',
  village_key TEXT NOT NULL DEFAULT '',
  first_key   TEXT NOT NULL DEFAULT '', -- the first name key: 1-2 character queries range over it
  initials    TEXT NOT NULL DEFAULT '', -- first letters of the names' keys ("f"; "rh" when they differ)
  phone       TEXT,                     -- 10 national digits 1XXXXXXXXX (no +880, no 0)
  phone_rev   TEXT,                     -- the same reversed: "last digits" is a prefix range
  brn         TEXT,                     -- digits only
  dob         TEXT,                     -- yyyy-MM-dd
  age         INTEGER,                  -- years, when only an age was given
  sex         TEXT
);
CREATE INDEX person_search_phone ON person_search(phone) WHERE phone IS NOT NULL;
CREATE INDEX person_search_phone_rev ON person_search(phone_rev) WHERE phone_rev IS NOT NULL;
CREATE INDEX person_search_brn ON person_search(brn) WHERE brn IS NOT NULL;
CREATE INDEX person_search_first ON person_search(first_key);
-- the duplicate check: "the same name in the same village or with the same husband's/
-- mother's name", "the same village, born within a month / about the same age"
-- (rel_skel in the name indexes: the filter is checked in the index, before the row)
CREATE INDEX person_search_skel_bn ON person_search(skel_bn, village_key, rel_skel);
CREATE INDEX person_search_skel_en ON person_search(skel_en, village_key, rel_skel);
-- (initials: a typo seldom hits a name's first letter; checked in the index, it keeps
-- a village's births of a month down to the few that could be the same person)
CREATE INDEX person_search_village_dob ON person_search(village_key, dob, initials);
CREATE INDEX person_search_village_age ON person_search(village_key, age, initials)
  WHERE age IS NOT NULL;

-- Trigram index over the keys. External content (person_search) rather than contentless:
-- the text is stored once, in person_search, which the ranking reads anyway; SQLite 3.40
-- has no contentless_delete, so a contentless table would need the old values on every
-- delete just the same; and external content gives 'rebuild' (reindex_all) and
-- 'integrity-check' (tests) for free. search.py writes both tables in the same transaction
-- (no triggers: the migration runner splits statements at every line-end ';').
-- detail=full: trigram substring matches are phrase queries, which need positions.
CREATE VIRTUAL TABLE person_fts USING fts5(
  name_keys, name_skels, rel_key, rel_skel, village_key,
  content='person_search', content_rowid='id', tokenize='trigram'
);
