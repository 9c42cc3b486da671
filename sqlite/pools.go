package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/audit"
)

// The pool rules here mirror allot_pool_claim and allot_claim_transition in
// the PostgreSQL schema; the conformance suite holds both to them.

const poolCols = `name, capacity, held, confirmed, per_customer, hold_ttl_ms, max_hold_ttl_ms, max_quantity, state, opens_at, closes_at, created_at, updated_at`

const staleHeld = `(SELECT coalesce(sum(c.quantity), 0) FROM allot_claims c WHERE c.pool = p.name AND c.status = 'held' AND c.expires_at <= ?)`

func microsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func scanPool(row scanner) (*allot.PoolState, error) {
	var st allot.PoolState
	var holdMS, maxHoldMS, stale, created, updated int64
	var opens, closes sql.NullInt64
	var state string
	err := row.Scan(&st.Name, &st.Capacity, &st.Held, &st.Confirmed, &st.PerCustomer, &holdMS, &maxHoldMS, &st.MaxQuantity,
		&state, &opens, &closes, &created, &updated, &stale)
	if err != nil {
		return nil, err
	}
	st.State = allot.PoolStatus(state)
	st.HoldTTL = allot.Duration(time.Duration(holdMS) * time.Millisecond)
	st.MaxHoldTTL = allot.Duration(time.Duration(maxHoldMS) * time.Millisecond)
	st.CreatedAt, st.UpdatedAt = fromMicros(created), fromMicros(updated)
	if opens.Valid {
		t := fromMicros(opens.Int64)
		st.OpensAt = &t
	}
	if closes.Valid {
		t := fromMicros(closes.Int64)
		st.ClosesAt = &t
	}
	st.Held -= stale
	st.Available = st.Capacity - st.Held - st.Confirmed
	return &st, nil
}

// PoolCreate stores a new pool.
func (s *Store) PoolCreate(ctx context.Context, p *allot.Pool) (*allot.PoolState, error) {
	now := micros(time.Now())
	_, err := s.write(ctx, `INSERT INTO allot_pools (name, capacity, per_customer, hold_ttl_ms, max_hold_ttl_ms, max_quantity, state, opens_at, closes_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, p.Name, p.Capacity, p.PerCustomer, time.Duration(p.HoldTTL).Milliseconds(),
		time.Duration(p.MaxHoldTTL).Milliseconds(), p.MaxQuantity, string(p.State), microsPtr(p.OpensAt), microsPtr(p.ClosesAt), now, now)
	if err != nil {
		return nil, translate(err, fmt.Sprintf("pool %q", p.Name))
	}
	return s.PoolGet(ctx, p.Name, time.Now())
}

// PoolGet returns a pool with its figures at now.
func (s *Store) PoolGet(ctx context.Context, name string, now time.Time) (*allot.PoolState, error) {
	st, err := scanPool(s.read().QueryRowContext(ctx, poolGetSQL, micros(now), name))
	if err != nil {
		return nil, translate(err, fmt.Sprintf("pool %q", name))
	}
	return st, nil
}

// PoolList returns every pool with its figures at now.
func (s *Store) PoolList(ctx context.Context, now time.Time) ([]*allot.PoolState, error) {
	return list(ctx, s.db, "list pools", scanPool, `SELECT `+poolCols+`, `+staleHeld+` FROM allot_pools p ORDER BY name`, micros(now))
}

// expireHeldSQL expires pool ?2's holds past expiry at ?1 (= ?3).
const expireHeldSQL = `UPDATE allot_claims SET status = 'expired', updated_at = ?
	WHERE pool = ? AND status = 'held' AND expires_at <= ?`

// expirePool marks the pool's holds past expiry as expired (their units
// come back), setting *returned when there were any, so the caller
// announces it once the transaction commits.
func expirePool(ctx context.Context, tx runner, pool string, now time.Time, returned *bool) error {
	res, err := tx.ExecContext(ctx, expireHeldSQL, micros(now), pool, micros(now))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		*returned = true
	}
	return nil
}

// topCustomerSQL is the most units any one customer of pool ?1 has.
const topCustomerSQL = `SELECT max(n) FROM (SELECT sum(quantity) AS n FROM allot_claims
	WHERE pool = ?1 AND status IN ('held', 'confirmed') GROUP BY customer) t`

// rebuildCustomersSQL builds pool ?1's usage rows from its claims, with limit ?2.
const rebuildCustomersSQL = `INSERT INTO allot_pool_customers (pool, customer, held, confirmed, lim)
	SELECT pool, customer, sum(CASE WHEN status = 'held' THEN quantity ELSE 0 END),
		sum(CASE WHEN status = 'confirmed' THEN quantity ELSE 0 END), ?2
	FROM allot_claims WHERE pool = ?1 AND status IN ('held', 'confirmed') GROUP BY pool, customer`

// PoolUpdate changes a pool after expiring its stale holds, so the checks
// see exactly what is taken.
func (s *Store) PoolUpdate(ctx context.Context, name string, p allot.PoolPatchParams, now time.Time) (*allot.PoolState, error) {
	returned := false
	err := s.withTx(ctx, func(tx runner) error {
		if err := expirePool(ctx, tx, name, now, &returned); err != nil {
			return err
		}
		cur, err := scanPool(tx.QueryRowContext(ctx, poolRowSQL, name))
		if err != nil {
			return translate(err, fmt.Sprintf("pool %q", name))
		}
		if err := allot.CheckPoolUpdate(cur, p, func() (int64, bool, error) {
			var top sql.NullInt64
			err := tx.QueryRowContext(ctx, topCustomerSQL, name).Scan(&top)
			return top.Int64, top.Valid, err
		}); err != nil {
			return err
		}
		ms := func(d *allot.Duration) any {
			if d == nil {
				return nil
			}
			return time.Duration(*d).Milliseconds()
		}
		var state any
		if p.State != "" {
			state = string(p.State)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE allot_pools SET capacity = coalesce(?, capacity), per_customer = coalesce(?, per_customer),
			hold_ttl_ms = coalesce(?, hold_ttl_ms), max_hold_ttl_ms = coalesce(?, max_hold_ttl_ms), max_quantity = coalesce(?, max_quantity),
			state = coalesce(?, state), opens_at = coalesce(?, opens_at), closes_at = coalesce(?, closes_at), updated_at = ?
			WHERE name = ?`, p.Capacity, p.PerCustomer, ms(p.HoldTTL), ms(p.MaxHoldTTL), p.MaxQuantity, state,
			microsPtr(p.OpensAt), microsPtr(p.ClosesAt), micros(time.Now()), name); err != nil {
			return err
		}
		if p.PerCustomer != nil {
			// Usage rows exist only while the pool has a limit.
			if _, err := tx.ExecContext(ctx, `DELETE FROM allot_pool_customers WHERE pool = ?`, name); err != nil {
				return err
			}
			if *p.PerCustomer > 0 {
				if _, err := tx.ExecContext(ctx, rebuildCustomersSQL, name, *p.PerCustomer); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, translate(err, fmt.Sprintf("update pool %q", name))
	}
	if returned || p.Capacity != nil || p.State == allot.PoolOpen || p.OpensAt != nil || p.ClosesAt != nil {
		// Units may be back, or on sale again (PostgreSQL's trigger is
		// stricter; a spurious notice only costs a round trip).
		s.publish(allot.TopicPoolReturned, name)
	}
	return s.PoolGet(ctx, name, now)
}

// The statements of a claim batch and of the pool and claim reads (see
// prepared.go).
const (
	poolRowSQL        = `SELECT ` + poolCols + `, 0 FROM allot_pools p WHERE name = ?`
	poolGetSQL        = `SELECT ` + poolCols + `, ` + staleHeld + ` FROM allot_pools p WHERE name = ?`
	customerUsedSQL   = `SELECT held + confirmed FROM allot_pool_customers WHERE pool = ? AND customer = ?`
	claimKeySQL       = `SELECT request_hash, result FROM allot_idempotency WHERE scope = ? AND key = ?`
	claimByIDSQL      = `SELECT ` + claimCols + ` FROM allot_claims WHERE id = ?`
	insertClaimSQL    = `INSERT INTO allot_claims (id, pool, customer, quantity, status, created_at, expires_at, updated_at) VALUES (?, ?, ?, ?, 'held', ?, ?, ?)`
	insertClaimKeySQL = `INSERT INTO allot_idempotency (scope, key, request_hash, result, created_at) VALUES (?, ?, ?, ?, ?)`
	confirmClaimSQL   = `UPDATE allot_claims SET status = 'confirmed', reference = ?, updated_at = ?
		WHERE id = ? AND status = 'held' AND expires_at > ? RETURNING ` + claimCols
)

// PoolClaim serves a batch in one IMMEDIATE transaction: expire the
// pool's stale holds, read the pool, the batch's customers and keys, plan
// with allot.PlanClaims, write the grants.
func (s *Store) PoolClaim(ctx context.Context, p allot.PoolClaimParams) (*allot.PoolClaimResult, error) {
	var res *allot.PoolClaimResult
	returned := false
	err := s.withTurn(ctx, p.Turn, func(tx runner) error {
		if err := expirePool(ctx, tx, p.Pool, p.Now, &returned); err != nil {
			return err
		}
		pl, err := scanPool(tx.QueryRowContext(ctx, poolRowSQL, p.Pool))
		if err != nil {
			return translate(err, fmt.Sprintf("pool %q", p.Pool))
		}
		st := allot.ClaimBatchState{Pool: pl, Used: map[string]int64{}, Existing: map[string]*allot.IdempotencyRecord{}}
		for _, r := range p.Requests {
			if _, ok := st.Used[r.Customer]; pl.PerCustomer > 0 && !ok {
				var u int64
				err := tx.QueryRowContext(ctx, customerUsedSQL, p.Pool, r.Customer).Scan(&u)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return err
				}
				st.Used[r.Customer] = u
			}
			if k := r.Idempotency; k != nil {
				rec := &allot.IdempotencyRecord{Scope: k.Scope, Key: k.Key}
				err := tx.QueryRowContext(ctx, claimKeySQL, k.Scope, k.Key).Scan(&rec.RequestHash, &rec.Result)
				switch {
				case err == nil:
					st.Existing[k.Key] = rec
				case !errors.Is(err, sql.ErrNoRows):
					return err
				}
			}
		}
		plan := allot.PlanClaims(p, st)
		res = &allot.PoolClaimResult{Results: make([]allot.PoolClaimOutcome, len(p.Requests)), Available: plan.Available}
		for i, r := range p.Requests {
			out, pc := &res.Results[i], plan.Results[i]
			switch {
			case pc.ReplayOf != "":
				c, err := scanClaim(tx.QueryRowContext(ctx, claimByIDSQL, pc.ReplayOf))
				if err != nil {
					return err
				}
				c.Replayed = true
				out.Claim, out.Replayed = c, true
			case pc.Err != nil:
				out.Err = pc.Err
			default:
				exp := p.Now.Add(r.TTL)
				if _, err := tx.ExecContext(ctx, insertClaimSQL, r.ID, p.Pool, r.Customer, r.Quantity, micros(p.Now), micros(exp), micros(p.Now)); err != nil {
					return err
				}
				if k := r.Idempotency; k != nil {
					if _, err := tx.ExecContext(ctx, insertClaimKeySQL, k.Scope, k.Key, k.RequestHash, r.ID, micros(time.Now())); err != nil {
						return err
					}
				}
				out.Claim = &allot.Claim{ID: r.ID, Pool: p.Pool, Customer: r.Customer, Quantity: r.Quantity, Status: allot.ClaimHeld,
					CreatedAt: fromMicros(micros(p.Now)), ExpiresAt: fromMicros(micros(exp)), UpdatedAt: fromMicros(micros(p.Now))}
			}
		}
		return nil
	})
	if err != nil {
		return nil, translate(err, fmt.Sprintf("claim on pool %q", p.Pool))
	}
	if returned {
		s.publish(allot.TopicPoolReturned, p.Pool)
	}
	return res, nil
}

// ClaimConfirmBatch confirms live holds in one IMMEDIATE transaction.
func (s *Store) ClaimConfirmBatch(ctx context.Context, now time.Time, reqs []allot.ClaimConfirmRequest) ([]*allot.Claim, error) {
	var out []*allot.Claim
	err := s.withTx(ctx, func(tx runner) error {
		out = make([]*allot.Claim, len(reqs))
		for i, r := range reqs {
			c, err := scanClaim(tx.QueryRowContext(ctx, confirmClaimSQL, r.Reference, micros(now), r.ID, micros(now)))
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			out[i] = c
		}
		return nil
	})
	if err != nil {
		return nil, translate(err, "confirm claims")
	}
	return out, nil
}

// ClaimTransition moves one claim in one IMMEDIATE transaction: read the
// claim and the key, plan with allot.PlanTransition, write.
func (s *Store) ClaimTransition(ctx context.Context, p allot.ClaimTransitionStoreParams) (*allot.Claim, error) {
	var out *allot.Claim
	var refused error
	returned, claimPool := false, ""
	err := s.withTx(ctx, func(tx runner) error {
		out, refused, returned = nil, nil, false
		var st allot.TransitionState
		c, err := scanClaim(tx.QueryRowContext(ctx, `SELECT `+claimCols+` FROM allot_claims WHERE id = ?`, p.ID))
		switch {
		case err == nil:
			st.Claim, claimPool = c, c.Pool
			var maxMS int64
			if err := tx.QueryRowContext(ctx, `SELECT max_hold_ttl_ms FROM allot_pools WHERE name = ?`, c.Pool).Scan(&maxMS); err != nil {
				return err
			}
			st.MaxHoldTTL = time.Duration(maxMS) * time.Millisecond
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if k := p.Idempotency; k != nil {
			rec := &allot.IdempotencyRecord{Scope: k.Scope, Key: k.Key}
			err := tx.QueryRowContext(ctx, claimKeySQL, k.Scope, k.Key).Scan(&rec.RequestHash, &rec.Result)
			switch {
			case err == nil:
				st.Existing = rec
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		plan, err := allot.PlanTransition(p, st, func() (allot.LatePool, error) {
			// Other holds past expiry give their units back first; this
			// claim is marked expired below, before the write.
			if err := expirePool(ctx, tx, c.Pool, p.Now, &returned); err != nil {
				return allot.LatePool{}, err
			}
			pl, err := scanPool(tx.QueryRowContext(ctx, `SELECT `+poolCols+`, 0 FROM allot_pools p WHERE name = ?`, c.Pool))
			if err != nil {
				return allot.LatePool{}, err
			}
			lp := allot.LatePool{Available: pl.Available, PerCustomer: pl.PerCustomer}
			if err := tx.QueryRowContext(ctx, `SELECT held + confirmed FROM allot_pool_customers WHERE pool = ? AND customer = ?`, c.Pool, c.Customer).Scan(&lp.Used); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return allot.LatePool{}, err
			}
			return lp, nil
		})
		if err != nil {
			return err
		}
		if plan.ReplayOf != "" {
			out, err = scanClaim(tx.QueryRowContext(ctx, `SELECT `+claimCols+` FROM allot_claims WHERE id = ?`, plan.ReplayOf))
			if err == nil {
				out.Replayed = true
			}
			return err
		}
		if plan.Expire {
			if _, err := tx.ExecContext(ctx, `UPDATE allot_claims SET status = 'expired', updated_at = ? WHERE id = ? AND status = 'held'`, micros(p.Now), c.ID); err != nil {
				return err
			}
			returned = true
		}
		switch {
		case plan.Done:
			c.Replayed = true
			out = c
			return nil
		case plan.Err != nil:
			// The expiry above is a fact whatever the answer: commit it.
			refused = plan.Err
			return nil
		}
		n := plan.Set
		if _, err := tx.ExecContext(ctx, `UPDATE allot_claims SET status = ?, reference = ?, reason = ?, expires_at = ?, updated_at = ? WHERE id = ?`,
			string(n.Status), n.Reference, n.Reason, micros(n.ExpiresAt), micros(n.UpdatedAt), n.ID); err != nil {
			return err
		}
		if k := p.Idempotency; k != nil {
			if _, err := tx.ExecContext(ctx, `INSERT INTO allot_idempotency (scope, key, request_hash, result, created_at) VALUES (?, ?, ?, ?, ?)`,
				k.Scope, k.Key, k.RequestHash, c.ID, micros(time.Now())); err != nil {
				return err
			}
		}
		out, err = scanClaim(tx.QueryRowContext(ctx, `SELECT `+claimCols+` FROM allot_claims WHERE id = ?`, c.ID))
		return err
	})
	if err != nil {
		return nil, translate(err, fmt.Sprintf("claim %q", p.ID))
	}
	if returned || refused == nil && !out.Replayed && (out.Status == allot.ClaimReleased || out.Status == allot.ClaimCancelled) {
		s.publish(allot.TopicPoolReturned, claimPool)
	}
	if refused != nil {
		return nil, refused
	}
	return out, nil
}

const claimCols = `seq, id, pool, customer, quantity, status, reference, created_at, expires_at, updated_at, reason`

func scanClaim(row scanner) (*allot.Claim, error) {
	var c allot.Claim
	var status string
	var created, expires, updated int64
	if err := row.Scan(&c.Seq, &c.ID, &c.Pool, &c.Customer, &c.Quantity, &status, &c.Reference, &created, &expires, &updated, &c.Reason); err != nil {
		return nil, err
	}
	c.Status = allot.ClaimStatus(status)
	c.CreatedAt, c.ExpiresAt, c.UpdatedAt = fromMicros(created), fromMicros(expires), fromMicros(updated)
	return &c, nil
}

// ClaimGet returns a claim as stored.
func (s *Store) ClaimGet(ctx context.Context, id string) (*allot.Claim, error) {
	c, err := scanClaim(s.read().QueryRowContext(ctx, claimByIDSQL, id))
	if err != nil {
		return nil, translate(err, fmt.Sprintf("claim %q", id))
	}
	return c, nil
}

// ClaimList lists claims of a pool after a cursor; a status filter sees
// holds past expiry as expired.
func (s *Store) ClaimList(ctx context.Context, p allot.ClaimListParams, afterSeq int64, now time.Time) ([]*allot.Claim, error) {
	st, n := string(p.Status), micros(now)
	return list(ctx, s.db, "list claims", scanClaim, `SELECT `+claimCols+` FROM allot_claims
		WHERE pool = ? AND seq > ? AND (? = '' OR customer = ?)
		AND (? = '' OR (? = 'held' AND status = 'held' AND expires_at > ?)
			OR (? = 'expired' AND (status = 'expired' OR (status = 'held' AND expires_at <= ?)))
			OR (? NOT IN ('held', 'expired') AND status = ?))
		ORDER BY seq LIMIT ?`, p.Pool, afterSeq, p.Customer, p.Customer, st, st, n, st, n, st, st, p.Limit)
}

// PoolExpire marks up to 10,000 holds past expiry as expired and returns
// their pools.
func (s *Store) PoolExpire(ctx context.Context, now time.Time, owner string) ([]string, error) {
	var out []string
	err := s.withTx(ctx, func(tx runner) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE allot_claims SET status = 'expired', updated_at = ?
			WHERE id IN (SELECT id FROM allot_claims WHERE status = 'held' AND expires_at <= ? ORDER BY expires_at LIMIT 10000)
			RETURNING pool`, micros(now), micros(now))
		if err != nil {
			return err
		}
		defer rows.Close()
		seen := map[string]bool{}
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				return err
			}
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if len(out) == 0 {
			return nil // an idle server writes nothing
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO allot_sweeps (id, owner, swept_at) VALUES (1, ?, ?)
			ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, swept_at = max(swept_at, excluded.swept_at)`, owner, micros(now))
		return err
	})
	if err != nil {
		return nil, translate(err, "expire holds")
	}
	for _, p := range out {
		s.publish(allot.TopicPoolReturned, p)
	}
	return out, nil
}

// Audit runs the shared audit queries.
func (s *Store) Audit(ctx context.Context, now time.Time) ([]allot.AuditCheck, error) {
	return audit.Run(ctx, micros(audit.Threshold(now)), allot.SweepBound.Microseconds(), micros(audit.Unanswered(now)), func(ctx context.Context, q string, args ...any) ([][]any, error) {
		rows, err := s.db.QueryContext(ctx, strings.NewReplacer("$1", "?1", "$2", "?2", "$3", "?3", "greatest(", "max(", "least(", "min(").Replace(q), args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return nil, err
		}
		var out [][]any
		for rows.Next() {
			v := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range v {
				ptrs[i] = &v[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, rows.Err()
	})
}
