-- Accounting: truthful statuses, two-phase numbers, references, document
-- dates, closed periods, numbers handed back, refunds of confirmed claims.
-- The same schema as PostgreSQL's 005 (see there for the ledger kinds).
-- SQLite can't change a CHECK in place, so the ledger and the claims are
-- rebuilt. Timestamps are Unix microseconds; booleans are 0/1.

ALTER TABLE allot_sequences ADD COLUMN periods_back INTEGER NOT NULL DEFAULT 1 CHECK (periods_back BETWEEN 0 AND 1000);
ALTER TABLE allot_sequences ADD COLUMN periods_ahead INTEGER NOT NULL DEFAULT 0 CHECK (periods_ahead BETWEEN 0 AND 1000);
ALTER TABLE allot_sequences ADD COLUMN confirm_within_ms INTEGER NOT NULL DEFAULT 0 CHECK (confirm_within_ms >= 0);
ALTER TABLE allot_sequences ADD COLUMN allow_overlap INTEGER NOT NULL DEFAULT 0 CHECK (allow_overlap IN (0, 1));

ALTER TABLE allot_sequence_counters ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0);
ALTER TABLE allot_sequence_counters ADD COLUMN closed_at INTEGER;

CREATE TABLE allot_sequence_ledger_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sequence    text NOT NULL,
    period      text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('issued', 'leased', 'reserved', 'voided', 'returned', 'confirmed')),
    first       INTEGER NOT NULL,
    last        INTEGER NOT NULL,
    reason      text NOT NULL DEFAULT '',
    owner       text NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    date        text NOT NULL DEFAULT '',
    reference   text NOT NULL DEFAULT '',
    confirm_by  INTEGER,
    pending     INTEGER NOT NULL DEFAULT 0 CHECK (pending IN (0, 1)),
    batch       INTEGER NOT NULL DEFAULT 0,
    CHECK (last >= first),
    CHECK ((kind <> 'reserved' OR confirm_by IS NOT NULL) AND (confirm_by IS NULL OR kind IN ('reserved', 'returned')))
);
INSERT INTO allot_sequence_ledger_new (id, sequence, period, kind, first, last, reason, owner, created_at, pending)
SELECT l.id, l.sequence, l.period, l.kind, l.first, l.last, l.reason, l.owner, l.created_at,
       CASE WHEN l.kind = 'leased' AND EXISTS (SELECT 1 FROM allot_servers s WHERE s.owner = l.owner AND s.stopped_at IS NULL) THEN 1 ELSE 0 END
FROM allot_sequence_ledger l;
-- Keep AUTOINCREMENT's high-water mark, so ids are never reused.
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'allot_sequence_ledger'), 0))
WHERE name = 'allot_sequence_ledger_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'allot_sequence_ledger_new', seq FROM sqlite_sequence
WHERE name = 'allot_sequence_ledger' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'allot_sequence_ledger_new');
DROP TABLE allot_sequence_ledger;
ALTER TABLE allot_sequence_ledger_new RENAME TO allot_sequence_ledger;
CREATE INDEX allot_sequence_ledger_seq_id ON allot_sequence_ledger (sequence, id);
CREATE INDEX allot_sequence_ledger_voids ON allot_sequence_ledger (sequence, period, first) WHERE kind = 'voided';
CREATE INDEX allot_sequence_ledger_taken ON allot_sequence_ledger (sequence, period, first) WHERE kind IN ('issued', 'leased', 'reserved');
CREATE INDEX allot_sequence_ledger_confirmed ON allot_sequence_ledger (sequence, period, first) WHERE kind = 'confirmed';
CREATE INDEX allot_sequence_ledger_pending ON allot_sequence_ledger (sequence, period, kind) WHERE pending;

-- The counter may move back only over numbers no ledger row holds any more.
DROP TRIGGER allot_sequence_counter_back;
CREATE TRIGGER allot_sequence_counter_back BEFORE UPDATE OF last ON allot_sequence_counters
WHEN NEW.last < OLD.last AND coalesce((SELECT t.last FROM allot_sequence_ledger t
    WHERE t.sequence = NEW.sequence AND t.period = NEW.period AND t.kind IN ('issued', 'leased', 'reserved')
    ORDER BY t.first DESC LIMIT 1), NEW.last) > NEW.last
BEGIN
    SELECT RAISE(ABORT, 'allot: a sequence counter may not move back over numbers the ledger holds');
END;

-- Ledger rows are never deleted; the only changes allowed are settling a
-- pending row and giving back a taken row's tail or all of it.
CREATE TRIGGER allot_sequence_ledger_guard_upd BEFORE UPDATE ON allot_sequence_ledger
WHEN NEW.sequence <> OLD.sequence OR NEW.period <> OLD.period OR NEW.first <> OLD.first
    OR NEW.owner <> OLD.owner OR NEW.date <> OLD.date OR NEW.reference <> OLD.reference OR NEW.batch <> OLD.batch
    OR NEW.created_at <> OLD.created_at OR NEW.confirm_by IS NOT OLD.confirm_by
    OR NEW.last > OLD.last OR (NEW.pending AND NOT OLD.pending)
    OR (NEW.last < OLD.last AND (OLD.kind NOT IN ('issued', 'leased', 'reserved') OR NEW.kind <> OLD.kind))
    OR (NEW.kind <> OLD.kind AND NOT (NEW.kind = 'returned' AND OLD.kind IN ('issued', 'leased', 'reserved')))
    OR (NEW.reason <> OLD.reason AND NEW.kind = OLD.kind)
BEGIN
    SELECT RAISE(ABORT, 'allot: a ledger entry may not change that way');
END;
CREATE TRIGGER allot_sequence_ledger_guard_del BEFORE DELETE ON allot_sequence_ledger
BEGIN
    SELECT RAISE(ABORT, 'allot: ledger entries are never deleted');
END;

-- A server that stops gracefully has handed back or voided what it did not
-- hand out, so the rest of its leases is known to be issued.
CREATE TRIGGER allot_servers_stopped AFTER UPDATE OF stopped_at ON allot_servers
WHEN NEW.stopped_at IS NOT NULL AND OLD.stopped_at IS NULL
BEGIN
    UPDATE allot_sequence_ledger SET pending = 0 WHERE owner = NEW.owner AND kind = 'leased' AND pending;
END;

-- Servers say they are alive every few seconds (seen_at). A server that
-- has not stopped was last known alive when it started (servers of the
-- previous allot must be stopped before the upgrade).
ALTER TABLE allot_servers ADD COLUMN seen_at INTEGER;
UPDATE allot_servers SET seen_at = coalesce(stopped_at, started_at);

ALTER TABLE allot_idempotency ADD COLUMN confirm_by INTEGER;

CREATE TABLE allot_reservation_sweeps (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    owner     TEXT NOT NULL,
    swept_at  INTEGER NOT NULL
);

-- Claims: cancelled (a refund of a confirmed claim), with its reason.
CREATE TABLE allot_claims_new (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    pool        TEXT NOT NULL,
    customer    TEXT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity >= 1),
    status      TEXT NOT NULL CHECK (status IN ('held', 'confirmed', 'released', 'expired', 'cancelled')),
    reference   TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    reason      TEXT NOT NULL DEFAULT ''
);
INSERT INTO allot_claims_new (seq, id, pool, customer, quantity, status, reference, created_at, expires_at, updated_at)
SELECT seq, id, pool, customer, quantity, status, reference, created_at, expires_at, updated_at FROM allot_claims;
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'allot_claims'), 0))
WHERE name = 'allot_claims_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'allot_claims_new', seq FROM sqlite_sequence
WHERE name = 'allot_claims' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'allot_claims_new');
DROP TABLE allot_claims;
ALTER TABLE allot_claims_new RENAME TO allot_claims;
CREATE INDEX allot_claims_pool_seq ON allot_claims (pool, seq);
CREATE INDEX allot_claims_pool_customer ON allot_claims (pool, customer, seq);
CREATE INDEX allot_claims_held_expiry ON allot_claims (expires_at) WHERE status = 'held';

CREATE TRIGGER allot_claim_guard_upd BEFORE UPDATE ON allot_claims
WHEN OLD.pool <> NEW.pool OR OLD.customer <> NEW.customer OR OLD.quantity <> NEW.quantity
    OR (OLD.status IN ('released', 'cancelled') AND NEW.status <> OLD.status)
    OR (OLD.status = 'confirmed' AND NEW.status NOT IN ('confirmed', 'cancelled'))
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
