-- allot_pool_claim answers in named columns (available, customer_limit,
-- customer_used instead of n1 and n2), and a key used a second time in one
-- batch is 'in_flight', as it is for sequences, rather than 'mismatch'. The
-- rules are allot.PlanClaims's; the conformance suite's differential test
-- checks this function against it. Outcomes, per request i (1-based):
--   ok              a hold was created (claim_id, expires)
--   replay          the key is stored with this request (claim_id)
--   mismatch        the key is stored with another request
--   in_flight       the key was used by an earlier request of the batch
--   pool_closed     the pool is not selling at p_now
--   sold_out        more than is available (available)
--   customer_limit  past the per-customer limit (customer_limit, customer_used)
-- and a last row i = 0, outcome 'available', with the pool's free units.
DROP FUNCTION allot_pool_claim(text, timestamptz, text[], text[], bigint[], bigint[], text[], text[], text[]);

CREATE FUNCTION allot_pool_claim(
    p_pool text, p_now timestamptz,
    p_ids text[], p_customers text[], p_qty bigint[], p_ttl_ms bigint[],
    p_scopes text[], p_keys text[], p_hashes text[])
RETURNS TABLE (i int, outcome text, claim_id text, available bigint, customer_limit bigint, customer_used bigint, expires timestamptz)
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
               NULL::bigint,
               CASE WHEN okv[t.k] THEN NULL ELSE pl.per_customer END,
               CASE WHEN okv[t.k] THEN NULL ELSE used[t.k] END,
               CASE WHEN okv[t.k] THEN p_now + make_interval(secs => t.ttl / 1000.0) END
        FROM unnest(p_ids, p_ttl_ms) WITH ORDINALITY AS t(id, ttl, k);
        i := 0; outcome := 'available'; claim_id := NULL; available := avail - got; customer_limit := NULL; customer_used := NULL; expires := NULL;
        RETURN NEXT;
        RETURN;
    END IF;

    FOR j IN 1..n LOOP
        IF p_keys[j] <> '' THEN
            SELECT request_hash, result INTO rec FROM allot_idempotency WHERE scope = p_scopes[j] AND key = p_keys[j];
            IF FOUND THEN
                IF rec.request_hash = p_hashes[j] THEN
                    i := j; outcome := 'replay'; claim_id := rec.result; available := NULL; customer_limit := NULL; customer_used := NULL; expires := NULL;
                    RETURN NEXT;
                ELSE
                    i := j; outcome := 'mismatch'; claim_id := NULL; available := NULL; customer_limit := NULL; customer_used := NULL; expires := NULL;
                    RETURN NEXT;
                END IF;
                CONTINUE;
            END IF;
            IF p_keys[j] = ANY (p_keys[1:j-1]) THEN
                i := j; outcome := 'in_flight'; claim_id := NULL; available := NULL; customer_limit := NULL; customer_used := NULL; expires := NULL;
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        IF NOT selling THEN
            i := j; outcome := 'pool_closed'; claim_id := NULL; available := NULL; customer_limit := NULL; customer_used := NULL; expires := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF p_qty[j] > avail THEN
            i := j; outcome := 'sold_out'; claim_id := NULL; available := avail; customer_limit := NULL; customer_used := NULL; expires := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF pl.per_customer > 0 AND used[j] + p_qty[j] > pl.per_customer THEN
            i := j; outcome := 'customer_limit'; claim_id := NULL; available := NULL; customer_limit := pl.per_customer; customer_used := used[j]; expires := NULL;
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
        i := j; outcome := 'ok'; claim_id := p_ids[j]; available := NULL; customer_limit := NULL; customer_used := NULL; expires := exp;
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
    i := 0; outcome := 'available'; claim_id := NULL; available := avail; customer_limit := NULL; customer_used := NULL; expires := NULL;
    RETURN NEXT;
END $$;
