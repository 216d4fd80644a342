"""The national DHIS2 stand-in: the server hubs sync with in the demo, the tests and the
benches. It is composed from the hub's DHIS2 route modules and the same store, plus what
national has and a hub has not: users served from its users table, metadata imports with
server-side ``lastUpdated`` stamping, gzip replies, and edits that are national's record
(``synced``), not queued for an upstream."""
