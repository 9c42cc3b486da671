-- Pools: finite inventory, claims on it, and per-customer usage. The same
-- guarantees as the PostgreSQL schema, with SQLite's row triggers:
--   * allot_pools CHECK: held + confirmed <= capacity at every commit;
--   * held/confirmed on pools and customers are written ONLY by the
--     triggers on allot_claims, so they always equal the claims;
--   * the per-customer limit is a CHECK on allot_pool_customers;
--   * a terminal claim never changes, an expired one only becomes
--     confirmed, pool/customer/quantity never change, nothing is deleted.
-- Timestamps are Unix microseconds.

CREATE TABLE allot_pools (
    name            TEXT PRIMARY KEY,
    capacity        INTEGER NOT NULL CHECK (capacity >= 0),
    held            INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
    confirmed       INTEGER NOT NULL DEFAULT 0 CHECK (confirmed >= 0),
    per_customer    INTEGER NOT NULL CHECK (per_customer >= 0),
    hold_ttl_ms     INTEGER NOT NULL CHECK (hold_ttl_ms > 0),
    max_hold_ttl_ms INTEGER NOT NULL CHECK (max_hold_ttl_ms >= hold_ttl_ms),
    max_quantity    INTEGER NOT NULL CHECK (max_quantity >= 1),
    state           TEXT NOT NULL CHECK (state IN ('open', 'paused', 'closed')),
    opens_at        INTEGER,
    closes_at       INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CONSTRAINT allot_pools_capacity CHECK (held + confirmed <= capacity),
    CONSTRAINT allot_pools_window CHECK (opens_at IS NULL OR closes_at IS NULL OR closes_at > opens_at)
);

CREATE TABLE allot_claims (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    pool        TEXT NOT NULL,
    customer    TEXT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity >= 1),
    status      TEXT NOT NULL CHECK (status IN ('held', 'confirmed', 'released', 'expired')),
    reference   TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX allot_claims_pool_seq ON allot_claims (pool, seq);
CREATE INDEX allot_claims_pool_customer ON allot_claims (pool, customer, seq);
CREATE INDEX allot_claims_held_expiry ON allot_claims (expires_at) WHERE status = 'held';

-- Usage per customer, kept for pools with a per-customer limit only.
CREATE TABLE allot_pool_customers (
    pool       TEXT NOT NULL,
    customer   TEXT NOT NULL,
    held       INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
    confirmed  INTEGER NOT NULL DEFAULT 0 CHECK (confirmed >= 0),
    lim        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pool, customer),
    CONSTRAINT allot_pool_customers_limit CHECK (lim = 0 OR held + confirmed <= lim)
);

CREATE TRIGGER allot_claim_guard_upd BEFORE UPDATE ON allot_claims
WHEN OLD.pool <> NEW.pool OR OLD.customer <> NEW.customer OR OLD.quantity <> NEW.quantity
    OR (OLD.status IN ('confirmed', 'released') AND NEW.status <> OLD.status)
    OR (OLD.status = 'expired' AND NEW.status NOT IN ('expired', 'confirmed'))
BEGIN
    SELECT RAISE(ABORT, 'allot: this claim transition is not allowed');
END;
CREATE TRIGGER allot_claim_guard_del BEFORE DELETE ON allot_claims
BEGIN
    SELECT RAISE(ABORT, 'allot: claims are never deleted');
END;

CREATE TRIGGER allot_claims_counters_ins AFTER INSERT ON allot_claims
BEGIN
    INSERT INTO allot_pool_customers (pool, customer, held, confirmed, lim)
    SELECT NEW.pool, NEW.customer,
           CASE WHEN NEW.status = 'held' THEN NEW.quantity ELSE 0 END,
           CASE WHEN NEW.status = 'confirmed' THEN NEW.quantity ELSE 0 END,
           p.per_customer
    FROM allot_pools p WHERE p.name = NEW.pool AND p.per_customer > 0
    ON CONFLICT (pool, customer) DO UPDATE
        SET held = held + excluded.held, confirmed = confirmed + excluded.confirmed, lim = excluded.lim;
    UPDATE allot_pools
    SET held = held + CASE WHEN NEW.status = 'held' THEN NEW.quantity ELSE 0 END,
        confirmed = confirmed + CASE WHEN NEW.status = 'confirmed' THEN NEW.quantity ELSE 0 END
    WHERE name = NEW.pool;
END;

CREATE TRIGGER allot_claims_counters_upd AFTER UPDATE OF status ON allot_claims
WHEN NEW.status <> OLD.status
BEGIN
    UPDATE allot_pools
    SET held = held + (CASE WHEN NEW.status = 'held' THEN NEW.quantity ELSE 0 END) - (CASE WHEN OLD.status = 'held' THEN OLD.quantity ELSE 0 END),
        confirmed = confirmed + (CASE WHEN NEW.status = 'confirmed' THEN NEW.quantity ELSE 0 END) - (CASE WHEN OLD.status = 'confirmed' THEN OLD.quantity ELSE 0 END)
    WHERE name = NEW.pool;
    -- Existing usage rows move by the deltas; a customer of a limited pool
    -- with no row yet (a late confirm after the limit was set) gets one.
    UPDATE allot_pool_customers
    SET held = held + (CASE WHEN NEW.status = 'held' THEN NEW.quantity ELSE 0 END) - (CASE WHEN OLD.status = 'held' THEN OLD.quantity ELSE 0 END),
        confirmed = confirmed + (CASE WHEN NEW.status = 'confirmed' THEN NEW.quantity ELSE 0 END) - (CASE WHEN OLD.status = 'confirmed' THEN OLD.quantity ELSE 0 END)
    WHERE pool = NEW.pool AND customer = NEW.customer;
    INSERT INTO allot_pool_customers (pool, customer, held, confirmed, lim)
    SELECT NEW.pool, NEW.customer,
           (CASE WHEN NEW.status = 'held' THEN NEW.quantity ELSE 0 END) - (CASE WHEN OLD.status = 'held' THEN OLD.quantity ELSE 0 END),
           (CASE WHEN NEW.status = 'confirmed' THEN NEW.quantity ELSE 0 END) - (CASE WHEN OLD.status = 'confirmed' THEN OLD.quantity ELSE 0 END),
           p.per_customer
    FROM allot_pools p WHERE p.name = NEW.pool AND p.per_customer > 0
      AND NOT EXISTS (SELECT 1 FROM allot_pool_customers x WHERE x.pool = NEW.pool AND x.customer = NEW.customer);
END;

ALTER TABLE allot_idempotency ADD COLUMN result TEXT NOT NULL DEFAULT '';
