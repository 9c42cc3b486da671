package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/audit"
)

const poolCols = `name, capacity, held, confirmed, per_customer, hold_ttl_ms, max_hold_ttl_ms, max_quantity, state, opens_at, closes_at, created_at, updated_at`

// staleHeld is the units in holds of pool p past expiry at $now, which
// reads subtract so an expired hold counts as expired at once.
const staleHeld = `(SELECT coalesce(sum(c.quantity), 0) FROM allot_claims c WHERE c.pool = p.name AND c.status = 'held' AND c.expires_at <= $1)`

func scanPool(row pgx.Row) (*allot.PoolState, error) {
	var st allot.PoolState
	var holdMS, maxHoldMS, stale int64
	var state string
	err := row.Scan(&st.Name, &st.Capacity, &st.Held, &st.Confirmed, &st.PerCustomer, &holdMS, &maxHoldMS, &st.MaxQuantity,
		&state, &st.OpensAt, &st.ClosesAt, &st.CreatedAt, &st.UpdatedAt, &stale)
	if err != nil {
		return nil, err
	}
	st.State = allot.PoolStatus(state)
	st.HoldTTL = allot.Duration(time.Duration(holdMS) * time.Millisecond)
	st.MaxHoldTTL = allot.Duration(time.Duration(maxHoldMS) * time.Millisecond)
	st.CreatedAt, st.UpdatedAt = st.CreatedAt.UTC(), st.UpdatedAt.UTC()
	if st.OpensAt != nil {
		t := st.OpensAt.UTC()
		st.OpensAt = &t
	}
	if st.ClosesAt != nil {
		t := st.ClosesAt.UTC()
		st.ClosesAt = &t
	}
	st.Held -= stale
	st.Available = st.Capacity - st.Held - st.Confirmed
	return &st, nil
}

// PoolCreate stores a new pool.
func (s *Store) PoolCreate(ctx context.Context, p *allot.Pool) (*allot.PoolState, error) {
	_, err := s.pool.Exec(ctx, `INSERT INTO allot_pools (name, capacity, per_customer, hold_ttl_ms, max_hold_ttl_ms, max_quantity, state, opens_at, closes_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, p.Name, p.Capacity, p.PerCustomer, time.Duration(p.HoldTTL).Milliseconds(),
		time.Duration(p.MaxHoldTTL).Milliseconds(), p.MaxQuantity, string(p.State), p.OpensAt, p.ClosesAt)
	if err != nil {
		return nil, translate(err, fmt.Sprintf("pool %q", p.Name))
	}
	return s.PoolGet(ctx, p.Name, time.Now())
}

// PoolGet returns a pool with its figures at now.
func (s *Store) PoolGet(ctx context.Context, name string, now time.Time) (*allot.PoolState, error) {
	st, err := scanPool(s.pool.QueryRow(ctx, `SELECT `+poolCols+`, `+staleHeld+` FROM allot_pools p WHERE name = $2`, now, name))
	if err != nil {
		return nil, translate(err, fmt.Sprintf("pool %q", name))
	}
	return st, nil
}

// PoolList returns every pool with its figures at now.
func (s *Store) PoolList(ctx context.Context, now time.Time) ([]*allot.PoolState, error) {
	return list(ctx, s.pool, "list pools", scanPool, `SELECT `+poolCols+`, `+staleHeld+` FROM allot_pools p ORDER BY name`, now)
}

// topCustomerSQL is the most units any one customer of pool $1 has.
const topCustomerSQL = `SELECT max(n) FROM (SELECT sum(quantity) AS n FROM allot_claims
	WHERE pool = $1 AND status IN ('held', 'confirmed') GROUP BY customer) t`

// rebuildCustomersSQL builds pool $1's usage rows from its claims, with limit $2.
const rebuildCustomersSQL = `INSERT INTO allot_pool_customers (pool, customer, held, confirmed, lim)
	SELECT pool, customer, sum(CASE WHEN status = 'held' THEN quantity ELSE 0 END),
		sum(CASE WHEN status = 'confirmed' THEN quantity ELSE 0 END), $2
	FROM allot_claims WHERE pool = $1 AND status IN ('held', 'confirmed') GROUP BY pool, customer`

// PoolUpdate changes a pool under its row lock, after expiring its stale
// holds, so the capacity check sees exactly what is taken.
func (s *Store) PoolUpdate(ctx context.Context, name string, p allot.PoolPatchParams, now time.Time) (*allot.PoolState, error) {
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE allot_claims SET status = 'expired', updated_at = $2
			WHERE id IN (SELECT id FROM allot_claims WHERE pool = $1 AND status = 'held' AND expires_at <= $2
				FOR UPDATE SKIP LOCKED)`, name, now); err != nil {
			return err
		}
		cur, err := scanPool(tx.QueryRow(ctx, `SELECT `+poolCols+`, 0::bigint FROM allot_pools p WHERE name = $1 FOR UPDATE`, name))
		if err != nil {
			return translate(err, fmt.Sprintf("pool %q", name))
		}
		if err := allot.CheckPoolUpdate(cur, p, func() (int64, bool, error) {
			var top *int64
			err := tx.QueryRow(ctx, topCustomerSQL, name).Scan(&top)
			return deref64(top), top != nil, err
		}); err != nil {
			return err
		}
		ms := func(d *allot.Duration) *int64 {
			if d == nil {
				return nil
			}
			v := time.Duration(*d).Milliseconds()
			return &v
		}
		var state *string
		if p.State != "" {
			v := string(p.State)
			state = &v
		}
		if _, err := tx.Exec(ctx, `UPDATE allot_pools SET capacity = coalesce($2, capacity), per_customer = coalesce($3, per_customer),
			hold_ttl_ms = coalesce($4, hold_ttl_ms), max_hold_ttl_ms = coalesce($5, max_hold_ttl_ms), max_quantity = coalesce($6, max_quantity),
			state = coalesce($7, state), opens_at = coalesce($8, opens_at), closes_at = coalesce($9, closes_at), updated_at = now()
			WHERE name = $1`, name, p.Capacity, p.PerCustomer, ms(p.HoldTTL), ms(p.MaxHoldTTL), p.MaxQuantity, state, p.OpensAt, p.ClosesAt); err != nil {
			return err
		}
		if p.PerCustomer == nil {
			return nil
		}
		// Usage rows exist only while the pool has a limit: dropped and
		// rebuilt in one round trip.
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM allot_pool_customers WHERE pool = $1`, name)
		if *p.PerCustomer > 0 {
			b.Queue(rebuildCustomersSQL, name, *p.PerCustomer)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		if errors.Is(err, allot.ErrInvalidState) || errors.Is(err, allot.ErrNotFound) {
			return nil, err
		}
		return nil, translate(err, fmt.Sprintf("update pool %q", name))
	}
	return s.PoolGet(ctx, name, now)
}

// PoolClaim serves a batch with one call of allot_pool_claim: one
// statement, one round trip, one lock of the pool row. It ignores p.Turn
// (never calls Locked), so a pool's batches run one at a time: the row
// lock is taken inside the statement, so a pipelined batch would need an
// explicit transaction and the lock held across a round trip to Go
// (Ready, then COMMIT), which measured no faster for claims and slower for
// gapless numbers on this machine than one autocommit statement per batch
// (BENCHMARKS.md, issue 8).
func (s *Store) PoolClaim(ctx context.Context, p allot.PoolClaimParams) (*allot.PoolClaimResult, error) {
	n := len(p.Requests)
	ids, customers, scopes, keys, hashes := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	qty, ttl := make([]int64, n), make([]int64, n)
	for i, r := range p.Requests {
		ids[i], customers[i], qty[i], ttl[i] = r.ID, r.Customer, r.Quantity, r.TTL.Milliseconds()
		if r.Idempotency != nil {
			scopes[i], keys[i], hashes[i] = r.Idempotency.Scope, r.Idempotency.Key, r.Idempotency.RequestHash
		}
	}
	var res *allot.PoolClaimResult
	var replays []int
	run := func() error {
		res = &allot.PoolClaimResult{Results: make([]allot.PoolClaimOutcome, n)}
		replays = replays[:0]
		rows, err := s.pool.Query(ctx, `SELECT i, outcome, claim_id, available, customer_limit, customer_used, expires
			FROM allot_pool_claim($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			p.Pool, p.Now, ids, customers, qty, ttl, scopes, keys, hashes)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var i int
			var outcome string
			var claimID *string
			var o claimRefusal
			var expires *time.Time
			if err := rows.Scan(&i, &outcome, &claimID, &o.available, &o.limit, &o.used, &expires); err != nil {
				return err
			}
			if i == 0 {
				res.Available = *o.available
				continue
			}
			r, out := p.Requests[i-1], &res.Results[i-1]
			switch outcome {
			case "ok":
				out.Claim = &allot.Claim{ID: r.ID, Pool: p.Pool, Customer: r.Customer, Quantity: r.Quantity, Status: allot.ClaimHeld,
					CreatedAt: p.Now.UTC(), ExpiresAt: expires.UTC(), UpdatedAt: p.Now.UTC()}
			case "replay":
				out.Replayed = true
				out.Claim = &allot.Claim{ID: *claimID}
				replays = append(replays, i-1)
			default:
				out.Err = o.err(outcome, p.Pool, r)
			}
		}
		// Close reads through to ReadyForQuery: only then is the
		// statement's implicit transaction known to be committed.
		rows.Close()
		return rows.Err()
	}
	err := run()
	if retryable(err) || isUniqueViolation(err) {
		// A deadlock, or a key stored by another process meanwhile:
		// nothing was written, and running again replays that key.
		err = run()
	}
	if err != nil {
		return nil, translate(err, fmt.Sprintf("claim on pool %q", p.Pool))
	}
	for _, i := range replays {
		c, err := s.ClaimGet(ctx, res.Results[i].Claim.ID)
		if err != nil {
			return nil, err
		}
		c.Replayed = true
		res.Results[i].Claim = c
	}
	return res, nil
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// claimRefusal is the figures allot_pool_claim gives with a refusal.
type claimRefusal struct{ available, limit, used *int64 }

// err turns a refusal reported by the database into its error.
func (o claimRefusal) err(outcome, pool string, r allot.PoolClaimRequest) error {
	v := deref64
	switch outcome {
	case "sold_out":
		return &allot.SoldOutError{Pool: pool, Requested: r.Quantity, Available: v(o.available)}
	case "customer_limit":
		return &allot.CustomerLimitError{Pool: pool, Customer: r.Customer, Limit: v(o.limit), Used: v(o.used), Requested: r.Quantity}
	case "pool_closed":
		return &allot.PoolClosedError{Pool: pool}
	case "mismatch":
		return allot.KeyMismatch(r.Idempotency.Key)
	case "in_flight":
		return allot.KeyTwiceInBatch(r.Idempotency.Key)
	}
	return fmt.Errorf("postgres: unknown claim outcome %q", outcome)
}

// ClaimConfirmBatch confirms live holds in one statement: one trigger run,
// one update of each pool row, however many claims.
func (s *Store) ClaimConfirmBatch(ctx context.Context, now time.Time, reqs []allot.ClaimConfirmRequest) ([]*allot.Claim, error) {
	out := make([]*allot.Claim, len(reqs))
	ids, refs := make([]string, 0, len(reqs)), make([]string, 0, len(reqs))
	first := make(map[string]int, len(reqs))
	for i, r := range reqs {
		if _, dup := first[r.ID]; dup {
			continue // a second confirm of one claim gets its exact answer from ClaimTransition
		}
		first[r.ID] = i
		ids, refs = append(ids, r.ID), append(refs, r.Reference)
	}
	run := func() error {
		rows, err := s.pool.Query(ctx, `UPDATE allot_claims c SET status = 'confirmed', reference = u.ref, updated_at = $3
			FROM unnest($1::text[], $2::text[]) AS u(id, ref)
			WHERE c.id = u.id AND c.status = 'held' AND c.expires_at > $3
			RETURNING `+prefixed("c.", claimCols), ids, refs, now)
		if err != nil {
			return err
		}
		for rows.Next() {
			c, err := scanClaim(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out[first[c.ID]] = c
		}
		rows.Close() // through ReadyForQuery: the statement has committed
		return rows.Err()
	}
	err := run()
	if retryable(err) {
		clear(out)
		err = run()
	}
	if err != nil {
		return nil, translate(err, "confirm claims")
	}
	return out, nil
}

// prefixed qualifies a column list with a table alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = alias + parts[i]
	}
	return strings.Join(parts, ", ")
}

// ClaimTransition moves one claim with allot_claim_transition.
func (s *Store) ClaimTransition(ctx context.Context, p allot.ClaimTransitionStoreParams) (*allot.Claim, error) {
	var scope, key, hash string
	if p.Idempotency != nil {
		scope, key, hash = p.Idempotency.Scope, p.Idempotency.Key, p.Idempotency.RequestHash
	}
	var outcome string
	var claimID, status *string
	var n1 *int64
	run := func() error {
		return s.pool.QueryRow(ctx, `SELECT outcome, claim_id, status, n1 FROM allot_claim_transition($1, $2, $3, $4, $5, $6, $7, $8)`,
			p.ID, string(p.Action), p.Now, p.Reference, p.TTL.Milliseconds(), scope, key, hash).Scan(&outcome, &claimID, &status, &n1)
	}
	err := run()
	if retryable(err) || isUniqueViolation(err) {
		err = run()
	}
	if err != nil {
		return nil, translate(err, fmt.Sprintf("claim %q", p.ID))
	}
	switch outcome {
	case "ok", "replay":
		c, err := s.ClaimGet(ctx, *claimID)
		if err != nil {
			return nil, err
		}
		c.Replayed = outcome == "replay"
		return c, nil
	case "mismatch":
		return nil, allot.KeyMismatch(key)
	case "not_found":
		return nil, allot.NotFoundf("claim %q", p.ID)
	case "invalid_state":
		return nil, &allot.ClaimStateError{ID: p.ID, Status: allot.ClaimStatus(deref(status)), Action: p.Action}
	case "claim_expired":
		return nil, &allot.ClaimExpiredError{ID: p.ID}
	case "too_long":
		return nil, allot.HoldTooLong(time.UnixMilli(*n1))
	}
	return nil, fmt.Errorf("postgres: unknown transition outcome %q", outcome)
}

func deref64(n *int64) int64 {
	if n == nil {
		return 0
	}
	return *n
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

const claimCols = `seq, id, pool, customer, quantity, status, reference, created_at, expires_at, updated_at, reason`

func scanClaim(row pgx.Row) (*allot.Claim, error) {
	var c allot.Claim
	var status string
	if err := row.Scan(&c.Seq, &c.ID, &c.Pool, &c.Customer, &c.Quantity, &status, &c.Reference, &c.CreatedAt, &c.ExpiresAt, &c.UpdatedAt, &c.Reason); err != nil {
		return nil, err
	}
	c.Status = allot.ClaimStatus(status)
	c.CreatedAt, c.ExpiresAt, c.UpdatedAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC(), c.UpdatedAt.UTC()
	return &c, nil
}

// ClaimGet returns a claim as stored.
func (s *Store) ClaimGet(ctx context.Context, id string) (*allot.Claim, error) {
	c, err := scanClaim(s.pool.QueryRow(ctx, `SELECT `+claimCols+` FROM allot_claims WHERE id = $1`, id))
	if err != nil {
		return nil, translate(err, fmt.Sprintf("claim %q", id))
	}
	return c, nil
}

// ClaimList lists claims of a pool after a cursor. A status filter sees
// holds past expiry as expired.
func (s *Store) ClaimList(ctx context.Context, p allot.ClaimListParams, afterSeq int64, now time.Time) ([]*allot.Claim, error) {
	return list(ctx, s.pool, "list claims", scanClaim, `SELECT `+claimCols+` FROM allot_claims
		WHERE pool = $1 AND seq > $2 AND ($3 = '' OR customer = $3)
		AND ($4 = '' OR ($4 = 'held' AND status = 'held' AND expires_at > $5)
			OR ($4 = 'expired' AND (status = 'expired' OR (status = 'held' AND expires_at <= $5)))
			OR ($4 NOT IN ('held', 'expired') AND status = $4))
		ORDER BY seq LIMIT $6`,
		p.Pool, afterSeq, p.Customer, string(p.Status), now, p.Limit)
}

// PoolExpire marks up to 10,000 holds past expiry as expired, skipping rows
// another process is already handling, and returns their pools.
func (s *Store) PoolExpire(ctx context.Context, now time.Time, owner string) ([]string, error) {
	// One statement: the sweep is recorded only if it committed, and only
	// when it expired something (an idle server writes nothing).
	rows, err := s.pool.Query(ctx, `WITH expired AS (
			UPDATE allot_claims SET status = 'expired', updated_at = $1
			WHERE id IN (SELECT id FROM allot_claims WHERE status = 'held' AND expires_at <= $1
				ORDER BY expires_at LIMIT 10000 FOR UPDATE SKIP LOCKED)
			RETURNING pool
		), sweep AS (
			INSERT INTO allot_sweeps (id, owner, swept_at) SELECT 1, $2, $1 WHERE EXISTS (SELECT 1 FROM expired)
			ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, swept_at = GREATEST(allot_sweeps.swept_at, excluded.swept_at)
		)
		SELECT pool FROM expired`, now, owner)
	if err != nil {
		return nil, translate(err, "expire holds")
	}
	defer rows.Close()
	seen := map[string]bool{}
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, translate(err, "expire holds")
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, translate(rows.Err(), "expire holds")
}

// Listen calls fn for every notice on topics, from any process, until
// ctx ends or the connection fails. Each topic is a LISTEN channel.
func (s *Store) Listen(ctx context.Context, topics []string, fn func(topic, payload string)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return translate(err, "listen for notices")
	}
	defer conn.Release()
	defer func() {
		// Don't hand a listening connection back to the pool.
		_ = conn.Conn().Close(context.Background())
	}()
	for _, t := range topics {
		if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{t}.Sanitize()); err != nil {
			return translate(err, "listen for notices")
		}
	}
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return translate(err, "listen for notices")
		}
		fn(n.Channel, n.Payload)
	}
}

// Audit runs the shared audit queries in one read-only, repeatable-read
// transaction, so every check sees the same snapshot, without the
// statement timeout requests have (an audit of a big database may take a
// while).
func (s *Store) Audit(ctx context.Context, now time.Time) ([]allot.AuditCheck, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, translate(err, "audit")
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
		return nil, translate(err, "audit")
	}
	checks, err := audit.Run(ctx, audit.Threshold(now), allot.SweepBound, audit.Unanswered(now), func(ctx context.Context, q string, args ...any) ([][]any, error) {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out [][]any
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, rows.Err()
	})
	return checks, translate(err, "audit")
}
