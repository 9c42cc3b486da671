-- Accounting: truthful statuses, two-phase numbers, references, document
-- dates, closed periods, numbers handed back, refunds of confirmed claims.
--
-- Ledger kinds after this migration:
--   issued     numbers handed to callers (pending until the server confirms
--              it answered them; a crash in between leaves them pending)
--   leased     a block a server serves from memory (pending until that
--              server says what it handed out: at its graceful stop, or
--              when it used the block up)
--   reserved   two-phase numbers, pending until confirmed or voided; they
--              must be confirmed by confirm_by
--   voided     numbers voided with a reason
--   returned   numbers handed back to the counter (a note: they are no
--              longer taken and will be issued again)
--   confirmed  reserved numbers a caller confirmed (a note)
-- issued, leased and reserved rows are the taken ranges: they never
-- overlap, and together they cover start..last of their period's counter.

ALTER TABLE allot_sequences
    ADD COLUMN periods_back integer NOT NULL DEFAULT 1 CHECK (periods_back BETWEEN 0 AND 1000),
    ADD COLUMN periods_ahead integer NOT NULL DEFAULT 0 CHECK (periods_ahead BETWEEN 0 AND 1000),
    ADD COLUMN confirm_within_ms bigint NOT NULL DEFAULT 0 CHECK (confirm_within_ms >= 0),
    ADD COLUMN allow_overlap boolean NOT NULL DEFAULT false;

-- reserved counts the numbers of the period in reserved rows that are
-- neither confirmed nor voided. A closed period takes no new numbers.
ALTER TABLE allot_sequence_counters
    ADD COLUMN reserved bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    ADD COLUMN closed_at timestamptz;

ALTER TABLE allot_sequence_ledger DROP CONSTRAINT allot_sequence_ledger_kind_check;
ALTER TABLE allot_sequence_ledger ADD CONSTRAINT allot_sequence_ledger_kind_check
    CHECK (kind IN ('issued', 'leased', 'reserved', 'voided', 'returned', 'confirmed'));
-- date: the document date the numbers render, where the format shows more
-- of the date than the period fixes ('' otherwise); reference: the caller's
-- document id; batch: the group commit that wrote the row, so a commit whose
-- outcome the server could not learn can be found again.
ALTER TABLE allot_sequence_ledger
    ADD COLUMN date text NOT NULL DEFAULT '',
    ADD COLUMN reference text NOT NULL DEFAULT '',
    ADD COLUMN confirm_by timestamptz,
    ADD COLUMN pending boolean NOT NULL DEFAULT false,
    ADD COLUMN batch bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT allot_sequence_ledger_confirm_by
        CHECK ((kind <> 'reserved' OR confirm_by IS NOT NULL) AND (confirm_by IS NULL OR kind IN ('reserved', 'returned')));

-- Leases of servers that never said they stopped are not known to be issued.
UPDATE allot_sequence_ledger l SET pending = true
WHERE kind = 'leased' AND EXISTS (SELECT 1 FROM allot_servers s WHERE s.owner = l.owner AND s.stopped_at IS NULL);

CREATE INDEX allot_sequence_ledger_pending ON allot_sequence_ledger (sequence, period, kind) WHERE pending;
DROP INDEX allot_sequence_ledger_taken;
CREATE INDEX allot_sequence_ledger_taken ON allot_sequence_ledger (sequence, period, first) WHERE kind IN ('issued', 'leased', 'reserved');
CREATE INDEX allot_sequence_ledger_confirmed ON allot_sequence_ledger (sequence, period, first) WHERE kind = 'confirmed';

-- The counter may move back only over numbers no ledger row holds any
-- more (numbers handed back), never over numbers that were handed out.
-- Taken rows never overlap, so the one starting last ends last: one probe.
CREATE OR REPLACE FUNCTION allot_sequence_counter_back() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    top bigint;
BEGIN
    SELECT t.last INTO top FROM allot_sequence_ledger t
    WHERE t.sequence = NEW.sequence AND t.period = NEW.period AND t.kind IN ('issued', 'leased', 'reserved')
    ORDER BY t.first DESC LIMIT 1;
    IF top > NEW.last THEN
        RAISE EXCEPTION 'allot: counter of %[%] may not move back from % to %: the ledger holds numbers up to %',
            NEW.sequence, NEW.period, OLD.last, NEW.last, top USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

-- Ledger rows are never deleted. The only changes allowed: a pending row
-- is settled; a taken row gives back its tail (last goes down) or all of
-- itself (kind becomes returned, with a reason saying so).
CREATE FUNCTION allot_sequence_ledger_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'allot: ledger entries are never deleted' USING ERRCODE = 'check_violation';
    END IF;
    RAISE EXCEPTION 'allot: ledger entry % may not change that way', OLD.id USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER allot_sequence_ledger_guard_upd BEFORE UPDATE ON allot_sequence_ledger
    FOR EACH ROW WHEN (NEW.sequence <> OLD.sequence OR NEW.period <> OLD.period OR NEW.first <> OLD.first
        OR NEW.owner <> OLD.owner OR NEW.date <> OLD.date OR NEW.reference <> OLD.reference OR NEW.batch <> OLD.batch
        OR NEW.created_at <> OLD.created_at OR NEW.confirm_by IS DISTINCT FROM OLD.confirm_by
        OR NEW.last > OLD.last OR (NEW.pending AND NOT OLD.pending)
        OR (NEW.last < OLD.last AND (OLD.kind NOT IN ('issued', 'leased', 'reserved') OR NEW.kind <> OLD.kind))
        OR (NEW.kind <> OLD.kind AND NOT (NEW.kind = 'returned' AND OLD.kind IN ('issued', 'leased', 'reserved')))
        OR (NEW.reason <> OLD.reason AND NEW.kind = OLD.kind))
    EXECUTE FUNCTION allot_sequence_ledger_guard();
CREATE TRIGGER allot_sequence_ledger_guard_del BEFORE DELETE ON allot_sequence_ledger
    FOR EACH ROW EXECUTE FUNCTION allot_sequence_ledger_guard();

-- A server that stops gracefully has handed back or voided what it did not
-- hand out, so the rest of its leases is known to be issued.
CREATE FUNCTION allot_servers_stopped() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE allot_sequence_ledger SET pending = false WHERE owner = NEW.owner AND kind = 'leased' AND pending;
    RETURN NULL;
END $$;
CREATE TRIGGER allot_servers_stopped AFTER UPDATE OF stopped_at ON allot_servers
    FOR EACH ROW WHEN (NEW.stopped_at IS NOT NULL AND OLD.stopped_at IS NULL)
    EXECUTE FUNCTION allot_servers_stopped();

-- Servers say they are alive every few seconds (seen_at), so a lease of a
-- server that went silent reads as held by a server that stopped without
-- saying what it handed out.
-- A server that has not stopped was last known alive when it started
-- (servers of the previous allot must be stopped before the upgrade).
ALTER TABLE allot_servers ADD COLUMN seen_at timestamptz;
UPDATE allot_servers SET seen_at = coalesce(stopped_at, started_at);

-- A replayed two-phase request shows the same deadline.
ALTER TABLE allot_idempotency ADD COLUMN confirm_by timestamptz;

-- When a server last voided reservations past their deadline (one row).
CREATE TABLE allot_reservation_sweeps (
    id        integer PRIMARY KEY CHECK (id = 1),
    owner     text NOT NULL,
    swept_at  timestamptz NOT NULL
);

-- Refunds: a confirmed claim can be cancelled (with a reason), which gives
-- its units back. cancelled is terminal.
ALTER TABLE allot_claims DROP CONSTRAINT allot_claims_status_check;
ALTER TABLE allot_claims ADD CONSTRAINT allot_claims_status_check
    CHECK (status IN ('held', 'confirmed', 'released', 'expired', 'cancelled'));
ALTER TABLE allot_claims ADD COLUMN reason text NOT NULL DEFAULT '';
DROP TRIGGER allot_claim_guard_upd ON allot_claims;
CREATE TRIGGER allot_claim_guard_upd BEFORE UPDATE ON allot_claims
    FOR EACH ROW WHEN (OLD.pool <> NEW.pool OR OLD.customer <> NEW.customer OR OLD.quantity <> NEW.quantity
        OR (OLD.status IN ('released', 'cancelled') AND NEW.status <> OLD.status)
        OR (OLD.status = 'confirmed' AND NEW.status NOT IN ('confirmed', 'cancelled'))
        OR (OLD.status = 'expired' AND NEW.status NOT IN ('expired', 'confirmed')))
    EXECUTE FUNCTION allot_claim_guard();

-- allot_claim_transition, now with cancel (p_reference is the confirm's
-- reference or the cancel's reason) and with retries that need no key: a
-- confirm of a claim already confirmed with the same reference, a release
-- of a released claim and a cancel of a claim cancelled with the same
-- reason answer 'replay'.
CREATE OR REPLACE FUNCTION allot_claim_transition(
    p_id text, p_action text, p_now timestamptz, p_reference text, p_ttl_ms bigint,
    p_scope text, p_key text, p_hash text)
RETURNS TABLE (outcome text, claim_id text, status text, n1 bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    c allot_claims%ROWTYPE;
    pl allot_pools%ROWTYPE;
    rec record;
    used bigint;
    latest timestamptz;
BEGIN
    -- Lock order: this claim, then other claims, then the pool row (which
    -- the counters trigger takes). Every bulk expiry skips claims another
    -- transaction has locked (FOR UPDATE SKIP LOCKED), so no two
    -- transactions wait for each other's claims.
    SELECT * INTO c FROM allot_claims WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    IF p_key <> '' THEN
        SELECT request_hash, result INTO rec FROM allot_idempotency WHERE scope = p_scope AND key = p_key;
        IF FOUND THEN
            IF rec.request_hash = p_hash THEN
                RETURN QUERY SELECT 'replay'::text, rec.result, NULL::text, NULL::bigint;
            ELSE
                RETURN QUERY SELECT 'mismatch'::text, NULL::text, NULL::text, NULL::bigint;
            END IF;
            RETURN;
        END IF;
    END IF;
    IF c.status = 'held' AND c.expires_at <= p_now THEN
        UPDATE allot_claims SET status = 'expired', updated_at = p_now WHERE id = c.id;
        c.status := 'expired';
    END IF;

    IF p_action = 'confirm' THEN
        IF c.status = 'confirmed' AND c.reference = p_reference THEN
            RETURN QUERY SELECT 'replay'::text, c.id, c.status, NULL::bigint;
            RETURN;
        ELSIF c.status = 'expired' THEN
            -- Late confirm: only if the units can be taken again, now.
            UPDATE allot_claims SET status = 'expired', updated_at = p_now
            WHERE id IN (SELECT x.id FROM allot_claims x WHERE x.pool = c.pool AND x.status = 'held'
                         AND x.expires_at <= p_now FOR UPDATE SKIP LOCKED);
            SELECT * INTO pl FROM allot_pools WHERE name = c.pool FOR UPDATE;
            SELECT coalesce(held + confirmed, 0) INTO used FROM allot_pool_customers WHERE pool = c.pool AND customer = c.customer;
            IF pl.capacity - pl.held - pl.confirmed < c.quantity
               OR (pl.per_customer > 0 AND coalesce(used, 0) + c.quantity > pl.per_customer) THEN
                RETURN QUERY SELECT 'claim_expired'::text, c.id, c.status, NULL::bigint;
                RETURN;
            END IF;
        ELSIF c.status <> 'held' THEN
            RETURN QUERY SELECT 'invalid_state'::text, c.id, c.status, NULL::bigint;
            RETURN;
        END IF;
        UPDATE allot_claims SET status = 'confirmed', reference = p_reference, updated_at = p_now WHERE id = c.id;
    ELSIF p_action = 'release' THEN
        IF c.status = 'released' THEN
            RETURN QUERY SELECT 'replay'::text, c.id, c.status, NULL::bigint;
            RETURN;
        ELSIF c.status <> 'held' THEN
            RETURN QUERY SELECT 'invalid_state'::text, c.id, c.status, NULL::bigint;
            RETURN;
        END IF;
        UPDATE allot_claims SET status = 'released', updated_at = p_now WHERE id = c.id;
    ELSIF p_action = 'cancel' THEN
        IF c.status = 'cancelled' AND c.reason = p_reference THEN
            RETURN QUERY SELECT 'replay'::text, c.id, c.status, NULL::bigint;
            RETURN;
        ELSIF c.status <> 'confirmed' THEN
            RETURN QUERY SELECT 'invalid_state'::text, c.id, c.status, NULL::bigint;
            RETURN;
        END IF;
        UPDATE allot_claims SET status = 'cancelled', reason = p_reference, updated_at = p_now WHERE id = c.id;
    ELSIF p_action = 'extend' THEN
        IF c.status <> 'held' THEN
            RETURN QUERY SELECT 'invalid_state'::text, c.id, c.status, NULL::bigint;
            RETURN;
        END IF;
        SELECT * INTO pl FROM allot_pools WHERE name = c.pool;
        latest := c.created_at + make_interval(secs => pl.max_hold_ttl_ms / 1000.0);
        IF p_now + make_interval(secs => p_ttl_ms / 1000.0) > latest THEN
            RETURN QUERY SELECT 'too_long'::text, c.id, c.status, (extract(epoch FROM latest) * 1000)::bigint;
            RETURN;
        END IF;
        UPDATE allot_claims SET expires_at = p_now + make_interval(secs => p_ttl_ms / 1000.0), updated_at = p_now WHERE id = c.id;
    ELSE
        RAISE EXCEPTION 'allot: unknown action %', p_action USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_key <> '' THEN
        INSERT INTO allot_idempotency (scope, key, request_hash, result) VALUES (p_scope, p_key, p_hash, c.id);
    END IF;
    RETURN QUERY SELECT 'ok'::text, c.id, NULL::text, NULL::bigint;
END $$;
