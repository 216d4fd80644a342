-- National's approval state of a key the hub pulled (APPROVED_HERE, APPROVED_ABOVE,
-- ACCEPTED_HERE, ...); NULL for an approval made on this server itself (the national
-- stand-in's own, or a hub's LAN approval), which the pull never takes back.
ALTER TABLE data_approval ADD COLUMN state TEXT;
