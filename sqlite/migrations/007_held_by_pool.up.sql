-- 007: an index of each pool's holds by expiry. Every claim batch and every
-- pool read first looks for the pool's holds past expiry (lazy expiry).
-- With only allot_claims_held_expiry (expires_at) and no statistics (SQLite
-- has none until ANALYZE runs), the planner answered that from the
-- (pool, customer, seq) index instead: a walk over every claim the pool ever
-- had, inside the write transaction, slower with every claim of a sale.
-- This index answers it with one probe: the pool's holds, in expiry order.
CREATE INDEX allot_claims_pool_held_expiry ON allot_claims (pool, expires_at) WHERE status = 'held';
