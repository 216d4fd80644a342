-- What a sync event says, for the status page to word in the reader's language: {"code":
-- "synced" | "failed" | "conflicts" | ..., and its numbers}; ``message`` stays the English
-- line for the logs. NULL on events written before this column. Owned by
-- appliance/store/synclog.py.
ALTER TABLE sync_event ADD COLUMN data TEXT;
