-- 006 changes PostgreSQL's allot_pool_claim (named result columns; a key
-- used twice in one batch is 'in_flight'). SQLite decides claims in Go with
-- allot.PlanClaims, so there is nothing to change here; the version exists so
-- both stores agree on what version 6 means.
SELECT 1;
