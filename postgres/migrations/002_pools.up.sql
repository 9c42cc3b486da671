-- Pools: finite inventory, claims on it, and per-customer usage.
--
-- The database enforces every guarantee itself:
--   * allot_pools CHECK: held + confirmed <= capacity at every commit;
--   * held/confirmed on pools and customers are written ONLY by the
--     statement triggers on allot_claims, so they always equal the claims;
--   * the per-customer limit is a CHECK on allot_pool_customers;
--   * a terminal claim (confirmed, released) never changes, an expired one
--     only becomes confirmed (a late confirm), and a claim's pool, customer
--     and quantity never change; claims are never deleted.

CREATE TABLE allot_pools (
    name           text PRIMARY KEY,
    capacity       bigint NOT NULL CHECK (capacity >= 0),
    held           bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
    confirmed      bigint NOT NULL DEFAULT 0 CHECK (confirmed >= 0),
    per_customer   bigint NOT NULL CHECK (per_customer >= 0),
    hold_ttl_ms    bigint NOT NULL CHECK (hold_ttl_ms > 0),
    max_hold_ttl_ms bigint NOT NULL CHECK (max_hold_ttl_ms >= hold_ttl_ms),
    max_quantity   bigint NOT NULL CHECK (max_quantity >= 1),
    state          text NOT NULL CHECK (state IN ('open', 'paused', 'closed')),
    opens_at       timestamptz,
    closes_at      timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT allot_pools_capacity CHECK (held + confirmed <= capacity),
    CONSTRAINT allot_pools_window CHECK (opens_at IS NULL OR closes_at IS NULL OR closes_at > opens_at)
);

-- pool has no foreign key: pools are never deleted, and claims are only
-- inserted by allot_pool_claim, which has the pool row locked.
CREATE TABLE allot_claims (
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    id          text PRIMARY KEY,
    pool        text NOT NULL,
    customer    text NOT NULL,
    quantity    bigint NOT NULL CHECK (quantity >= 1),
    status      text NOT NULL CHECK (status IN ('held', 'confirmed', 'released', 'expired')),
    reference   text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX allot_claims_pool_seq ON allot_claims (pool, seq);
CREATE INDEX allot_claims_pool_customer ON allot_claims (pool, customer, seq);
CREATE INDEX allot_claims_held_expiry ON allot_claims (expires_at) WHERE status = 'held';

-- Usage per customer, kept for pools with a per-customer limit only (a
-- patch that sets a limit builds the rows from the claims). lim mirrors the
-- pool's per_customer; the limit is a plain CHECK because per_customer may
-- not be lowered below any customer's usage.
CREATE TABLE allot_pool_customers (
    pool       text NOT NULL,
    customer   text NOT NULL,
    held       bigint NOT NULL DEFAULT 0 CHECK (held >= 0),
    confirmed  bigint NOT NULL DEFAULT 0 CHECK (confirmed >= 0),
    lim        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (pool, customer),
    CONSTRAINT allot_pool_customers_limit CHECK (lim = 0 OR held + confirmed <= lim)
);

CREATE FUNCTION allot_claim_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'allot: claims are never deleted' USING ERRCODE = 'check_violation';
    END IF;
    RAISE EXCEPTION 'allot: claim % may not go from % to % (or change pool, customer or quantity)', OLD.id, OLD.status, NEW.status
        USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER allot_claim_guard_upd BEFORE UPDATE ON allot_claims
    FOR EACH ROW WHEN (OLD.pool <> NEW.pool OR OLD.customer <> NEW.customer OR OLD.quantity <> NEW.quantity
        OR (OLD.status IN ('confirmed', 'released') AND NEW.status <> OLD.status)
        OR (OLD.status = 'expired' AND NEW.status NOT IN ('expired', 'confirmed')))
    EXECUTE FUNCTION allot_claim_guard();
CREATE TRIGGER allot_claim_guard_del BEFORE DELETE ON allot_claims
    FOR EACH ROW EXECUTE FUNCTION allot_claim_guard();

-- Counters follow the claims, one statement at a time. Pools whose units
-- came back are announced on channel allot_pool so every process reopens a
-- sold-out pool at once.
CREATE FUNCTION allot_claims_counters_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO allot_pool_customers AS c (pool, customer, held, confirmed, lim)
    SELECT n.pool, n.customer,
           sum(CASE WHEN n.status = 'held' THEN n.quantity ELSE 0 END),
           sum(CASE WHEN n.status = 'confirmed' THEN n.quantity ELSE 0 END),
           max(p.per_customer)
    FROM new_rows n JOIN allot_pools p ON p.name = n.pool
    WHERE p.per_customer > 0
    GROUP BY n.pool, n.customer
    ORDER BY n.pool, n.customer
    ON CONFLICT (pool, customer) DO UPDATE
        SET held = c.held + excluded.held, confirmed = c.confirmed + excluded.confirmed, lim = excluded.lim;
    UPDATE allot_pools p SET held = p.held + d.dh, confirmed = p.confirmed + d.dc
    FROM (SELECT pool,
                 sum(CASE WHEN status = 'held' THEN quantity ELSE 0 END) AS dh,
                 sum(CASE WHEN status = 'confirmed' THEN quantity ELSE 0 END) AS dc
          FROM new_rows GROUP BY pool) d
    WHERE p.name = d.pool;
    RETURN NULL;
END $$;
CREATE TRIGGER allot_claims_counters_ins AFTER INSERT ON allot_claims
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION allot_claims_counters_ins();

CREATE FUNCTION allot_claims_counters_upd() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT n.pool, sum(dh) AS dh, sum(dc) AS dc FROM (
            SELECT n.pool,
                   (CASE WHEN n.status = 'held' THEN n.quantity ELSE 0 END) - (CASE WHEN o.status = 'held' THEN o.quantity ELSE 0 END) AS dh,
                   (CASE WHEN n.status = 'confirmed' THEN n.quantity ELSE 0 END) - (CASE WHEN o.status = 'confirmed' THEN o.quantity ELSE 0 END) AS dc
            FROM new_rows n JOIN old_rows o ON o.id = n.id) n
        GROUP BY n.pool
        ORDER BY n.pool -- one lock order for pool rows in every process
    LOOP
        IF r.dh <> 0 OR r.dc <> 0 THEN
            UPDATE allot_pools SET held = held + r.dh, confirmed = confirmed + r.dc WHERE name = r.pool;
            IF r.dh + r.dc < 0 THEN
                PERFORM pg_notify('allot_pool', r.pool);
            END IF;
        END IF;
    END LOOP;
    -- Existing usage rows move by the deltas; a customer of a limited pool
    -- with no row yet (a late confirm after the limit was set) gets one.
    -- Two statements, not an upsert: the CHECKs would judge the insert row
    -- of an upsert before its conflict, and a delta can be negative.
    UPDATE allot_pool_customers c SET held = c.held + d.dh, confirmed = c.confirmed + d.dc
    FROM (SELECT n.pool, n.customer,
                 sum((CASE WHEN n.status = 'held' THEN n.quantity ELSE 0 END) - (CASE WHEN o.status = 'held' THEN o.quantity ELSE 0 END)) AS dh,
                 sum((CASE WHEN n.status = 'confirmed' THEN n.quantity ELSE 0 END) - (CASE WHEN o.status = 'confirmed' THEN o.quantity ELSE 0 END)) AS dc
          FROM new_rows n JOIN old_rows o ON o.id = n.id
          GROUP BY n.pool, n.customer) d
    WHERE c.pool = d.pool AND c.customer = d.customer AND (d.dh <> 0 OR d.dc <> 0);
    INSERT INTO allot_pool_customers (pool, customer, held, confirmed, lim)
    SELECT d.pool, d.customer, d.dh, d.dc, p.per_customer
    FROM (SELECT n.pool, n.customer,
                 sum((CASE WHEN n.status = 'held' THEN n.quantity ELSE 0 END) - (CASE WHEN o.status = 'held' THEN o.quantity ELSE 0 END)) AS dh,
                 sum((CASE WHEN n.status = 'confirmed' THEN n.quantity ELSE 0 END) - (CASE WHEN o.status = 'confirmed' THEN o.quantity ELSE 0 END)) AS dc
          FROM new_rows n JOIN old_rows o ON o.id = n.id
          GROUP BY n.pool, n.customer) d
    JOIN allot_pools p ON p.name = d.pool AND p.per_customer > 0
    WHERE (d.dh <> 0 OR d.dc <> 0)
      AND NOT EXISTS (SELECT 1 FROM allot_pool_customers x WHERE x.pool = d.pool AND x.customer = d.customer)
    ORDER BY d.pool, d.customer;
    RETURN NULL;
END $$;
CREATE TRIGGER allot_claims_counters_upd AFTER UPDATE ON allot_claims
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION allot_claims_counters_upd();

-- Raising capacity returns units too.
CREATE FUNCTION allot_pools_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('allot_pool', NEW.name);
    RETURN NULL;
END $$;
CREATE TRIGGER allot_pools_notify AFTER UPDATE ON allot_pools
    FOR EACH ROW WHEN (NEW.capacity > OLD.capacity OR (NEW.state = 'open' AND OLD.state <> 'open'))
    EXECUTE FUNCTION allot_pools_notify();

ALTER TABLE allot_idempotency ADD COLUMN result text NOT NULL DEFAULT '';

-- allot_pool_claim serves a batch of claims on one pool in ONE statement,
-- so the pool row is locked for one round trip. Requests are decided in
-- arrival order: a later request never takes a unit an earlier one in the
-- batch could have had. Outcomes per request (i is 1-based):
--   ok              the claim was created (claim_id, expires)
--   replay          the idempotency key exists with this request (claim_id)
--   mismatch        the idempotency key exists with another request
--   sold_out        n1 = units available
--   customer_limit  n1 = limit, n2 = units the customer has
--   pool_closed     the pool is not open, or outside its sale window
-- The last row (i = 0) carries the pool's available units after the batch.
CREATE FUNCTION allot_pool_claim(
    p_pool text, p_now timestamptz,
    p_ids text[], p_customers text[], p_qty bigint[], p_ttl_ms bigint[],
    p_scopes text[], p_keys text[], p_hashes text[])
RETURNS TABLE (i int, outcome text, claim_id text, n1 bigint, n2 bigint, expires timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    pl allot_pools%ROWTYPE;
    n int := coalesce(array_length(p_ids, 1), 0);
    avail bigint;
    used bigint[];
    dup boolean;
    granted boolean[] := array_fill(false, ARRAY[n]);
    exps timestamptz[] := array_fill(NULL::timestamptz, ARRAY[n]);
    any_granted boolean := false;
    any_key boolean := false;
    okv boolean[];
    got bigint;
    rec record;
    j int;
    exp timestamptz;
    selling boolean;
BEGIN
    -- Expired holds of this pool give their units back first (lazy expiry).
    -- The check first spares the statement trigger when nothing expired.
    IF EXISTS (SELECT 1 FROM allot_claims c WHERE c.status = 'held' AND c.expires_at <= p_now AND c.pool = p_pool) THEN
        UPDATE allot_claims SET status = 'expired', updated_at = p_now
        WHERE id IN (SELECT x.id FROM allot_claims x WHERE x.pool = p_pool AND x.status = 'held'
                     AND x.expires_at <= p_now FOR UPDATE SKIP LOCKED);
    END IF;

    SELECT * INTO pl FROM allot_pools WHERE name = p_pool FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'allot: pool % not found', p_pool USING ERRCODE = 'no_data_found';
    END IF;
    avail := pl.capacity - pl.held - pl.confirmed;
    selling := pl.state = 'open' AND (pl.opens_at IS NULL OR p_now >= pl.opens_at)
               AND (pl.closes_at IS NULL OR p_now < pl.closes_at);

    -- Each customer's usage, by index lookup (never a scan of the pool's
    -- customers, which grow through a sale); none needed without a limit.
    IF pl.per_customer > 0 THEN
        -- A correlated scalar subquery is one primary-key probe per
        -- customer whatever the statistics say; a join here can turn into a
        -- scan of the pool's every customer while a sale fills the table
        -- faster than ANALYZE runs.
        SELECT array_agg(coalesce((SELECT c.held + c.confirmed FROM allot_pool_customers c
                                   WHERE c.pool = p_pool AND c.customer = t.customer), 0) ORDER BY t.ord) INTO used
        FROM unnest(p_customers) WITH ORDINALITY AS t(customer, ord);
    ELSE
        used := array_fill(0::bigint, ARRAY[n]);
    END IF;
    dup := n > 1 AND (SELECT count(DISTINCT x) FROM unnest(p_customers) x) < n;

    -- Fast path: when the whole batch fits, carries no idempotency key and
    -- names no customer twice, no request's outcome depends on another's,
    -- so arrival order can't change anything and set-based statements
    -- decide the batch at once. Otherwise the loop below decides request by
    -- request.
    IF selling AND NOT dup AND n > 0
       AND NOT EXISTS (SELECT 1 FROM unnest(p_keys) AS x(key) WHERE x.key <> '')
       AND (SELECT sum(x.q) FROM unnest(p_qty) AS x(q)) <= avail THEN
        SELECT array_agg(pl.per_customer = 0 OR used[t.k] + t.q <= pl.per_customer ORDER BY t.k),
               coalesce(sum(t.q) FILTER (WHERE pl.per_customer = 0 OR used[t.k] + t.q <= pl.per_customer), 0)
        INTO okv, got
        FROM unnest(p_qty) WITH ORDINALITY AS t(q, k);
        INSERT INTO allot_claims (id, pool, customer, quantity, status, created_at, expires_at, updated_at)
        SELECT t.id, p_pool, t.customer, t.q, 'held', p_now, p_now + make_interval(secs => t.ttl / 1000.0), p_now
        FROM unnest(p_ids, p_customers, p_qty, p_ttl_ms) WITH ORDINALITY AS t(id, customer, q, ttl, k)
        WHERE okv[t.k];
        RETURN QUERY
        SELECT t.k::int,
               CASE WHEN okv[t.k] THEN 'ok' ELSE 'customer_limit' END,
               CASE WHEN okv[t.k] THEN t.id END,
               CASE WHEN okv[t.k] THEN NULL ELSE pl.per_customer END,
               CASE WHEN okv[t.k] THEN NULL ELSE used[t.k] END,
               CASE WHEN okv[t.k] THEN p_now + make_interval(secs => t.ttl / 1000.0) END
        FROM unnest(p_ids, p_ttl_ms) WITH ORDINALITY AS t(id, ttl, k);
        i := 0; outcome := 'available'; claim_id := NULL; n1 := avail - got; n2 := NULL; expires := NULL;
        RETURN NEXT;
        RETURN;
    END IF;

    FOR j IN 1..n LOOP
        IF p_keys[j] <> '' THEN
            SELECT request_hash, result INTO rec FROM allot_idempotency WHERE scope = p_scopes[j] AND key = p_keys[j];
            IF FOUND THEN
                IF rec.request_hash = p_hashes[j] THEN
                    i := j; outcome := 'replay'; claim_id := rec.result; n1 := NULL; n2 := NULL; expires := NULL;
                    RETURN NEXT;
                ELSE
                    i := j; outcome := 'mismatch'; claim_id := NULL; n1 := NULL; n2 := NULL; expires := NULL;
                    RETURN NEXT;
                END IF;
                CONTINUE;
            END IF;
            IF p_keys[j] = ANY (p_keys[1:j-1]) THEN
                i := j; outcome := 'mismatch'; claim_id := NULL; n1 := NULL; n2 := NULL; expires := NULL;
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        IF NOT selling THEN
            i := j; outcome := 'pool_closed'; claim_id := NULL; n1 := NULL; n2 := NULL; expires := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF p_qty[j] > avail THEN
            i := j; outcome := 'sold_out'; claim_id := NULL; n1 := avail; n2 := NULL; expires := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF pl.per_customer > 0 AND used[j] + p_qty[j] > pl.per_customer THEN
            i := j; outcome := 'customer_limit'; claim_id := NULL; n1 := pl.per_customer; n2 := used[j]; expires := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        avail := avail - p_qty[j];
        IF dup THEN
            FOR k IN j + 1 .. n LOOP
                IF p_customers[k] = p_customers[j] THEN
                    used[k] := used[k] + p_qty[j];
                END IF;
            END LOOP;
        END IF;
        exp := p_now + make_interval(secs => p_ttl_ms[j] / 1000.0);
        granted[j] := true;
        exps[j] := exp;
        any_granted := true;
        any_key := any_key OR p_keys[j] <> '';
        i := j; outcome := 'ok'; claim_id := p_ids[j]; n1 := NULL; n2 := NULL; expires := exp;
        RETURN NEXT;
    END LOOP;

    IF any_granted THEN
        INSERT INTO allot_claims (id, pool, customer, quantity, status, created_at, expires_at, updated_at)
        SELECT t.id, p_pool, t.customer, t.qty, 'held', p_now, exps[t.k], p_now
        FROM unnest(p_ids, p_customers, p_qty) WITH ORDINALITY AS t(id, customer, qty, k)
        WHERE granted[t.k];
    END IF;
    IF any_key THEN
        INSERT INTO allot_idempotency (scope, key, request_hash, result)
        SELECT t.scope, t.key, t.hash, t.id
        FROM unnest(p_scopes, p_keys, p_hashes, p_ids) WITH ORDINALITY AS t(scope, key, hash, id, k)
        WHERE granted[t.k] AND t.key <> '';
    END IF;
    i := 0; outcome := 'available'; claim_id := NULL; n1 := avail; n2 := NULL; expires := NULL;
    RETURN NEXT;
END $$;

-- allot_claim_transition moves one claim with a compare-and-set on its
-- status, in one statement. Outcomes:
--   ok             the claim moved (the new row is returned)
--   replay         the idempotency key exists with this request (claim_id)
--   mismatch       the idempotency key exists with another request
--   not_found      no such claim
--   invalid_state  the claim's status does not allow the action
--   claim_expired  a late confirm could not take the units again
--   too_long       an extend past max_hold_ttl (n1 = latest expiry, unix ms)
CREATE FUNCTION allot_claim_transition(
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
    new_status text;
BEGIN
    -- Lock order: this claim, then other claims, then the pool row (which
    -- the counters trigger takes). Every bulk expiry skips claims another
    -- transaction has locked (FOR UPDATE SKIP LOCKED), so no two
    -- transactions wait for each other's claims; a skipped hold is still
    -- counted as held, which can only make an answer more cautious.
    SELECT * INTO c FROM allot_claims WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    -- An Idempotency-Key already used (perhaps by a request we just waited
    -- for on the claim's lock) is answered from its record.
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
    -- A hold past its expiry is expired, whether or not the sweeper wrote it.
    IF c.status = 'held' AND c.expires_at <= p_now THEN
        UPDATE allot_claims SET status = 'expired', updated_at = p_now WHERE id = c.id;
        c.status := 'expired';
    END IF;

    IF p_action = 'confirm' THEN
        IF c.status = 'held' THEN
            new_status := 'confirmed';
        ELSIF c.status = 'expired' THEN
            -- Late confirm: only if the units can be taken again, now.
            -- Other holds past expiry give their units back first.
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
            new_status := 'confirmed';
        ELSE
            RETURN QUERY SELECT 'invalid_state'::text, c.id, c.status, NULL::bigint;
            RETURN;
        END IF;
        UPDATE allot_claims SET status = new_status, reference = p_reference, updated_at = p_now WHERE id = c.id;
    ELSIF p_action = 'release' THEN
        IF c.status <> 'held' THEN
            RETURN QUERY SELECT 'invalid_state'::text, c.id, c.status, NULL::bigint;
            RETURN;
        END IF;
        UPDATE allot_claims SET status = 'released', updated_at = p_now WHERE id = c.id;
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
