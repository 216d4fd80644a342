-- A metadata pull in progress: each page national sent, kept until every collection and
-- page of the pull is in, then applied to `metadata` in one transaction (a half-pulled
-- set never reaches the forms). ``doc`` NULL: deleted at national. Owned by
-- appliance/store/metadata.py; emptied when the pull is applied or started again.
CREATE TABLE metadata_stage (
  type  TEXT NOT NULL,
  uid   TEXT NOT NULL,
  doc   TEXT,
  PRIMARY KEY (type, uid)
) WITHOUT ROWID;
