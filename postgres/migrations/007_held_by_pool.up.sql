-- 007 adds an index of each pool's holds by expiry to SQLite, whose planner
-- has no statistics to avoid a walk over the pool's every claim. PostgreSQL
-- plans that lookup from its statistics with allot_claims_held_expiry, and a
-- plain CREATE INDEX here would block claims while it is built on a large
-- table, so there is nothing to change; the version exists so both stores
-- agree on what version 7 means.
SELECT 1;
