package allot

import (
	"fmt"
	"time"
)

// This file is the Go reference for the pool rules, as plan.go is for the
// sequence rules: what a batch of claims gets and what a transition does,
// decided from the state a store reads under its locks. The SQLite store
// runs expire → read → plan → write with it. The PostgreSQL store decides
// in PL/pgSQL (allot_pool_claim, allot_claim_transition), so a batch stays
// one statement and one round trip; the conformance suite's differential
// test (storetest) generates random pool states and batches and checks
// that both stores answer exactly what these functions say.

// PoolClosedError is a claim on a pool that is paused, closed, or outside
// its sale window. It unwraps to ErrPoolClosed.
type PoolClosedError struct {
	Pool string
	// Why says which, when known ("pool concert opens at …"); the store
	// alone may not know it.
	Why string
}

// Error implements error.
func (e *PoolClosedError) Error() string {
	if e.Why != "" {
		return e.Why
	}
	return fmt.Sprintf("pool %q is not taking claims (paused, closed, or outside its sale window)", e.Pool)
}

// Unwrap makes errors.Is(err, ErrPoolClosed) true.
func (e *PoolClosedError) Unwrap() error { return ErrPoolClosed }

// ClaimStateError is a transition the claim's status does not allow. It
// unwraps to ErrInvalidState.
type ClaimStateError struct {
	ID     string
	Status ClaimStatus
	Action ClaimAction
}

// Error implements error.
func (e *ClaimStateError) Error() string {
	return fmt.Sprintf("claim %s is %s and can't be %s", e.ID, e.Status, PastTense(e.Action))
}

// Unwrap makes errors.Is(err, ErrInvalidState) true.
func (e *ClaimStateError) Unwrap() error { return ErrInvalidState }

// ClaimExpiredError is a late confirm of an expired hold whose units are
// taken. It unwraps to ErrClaimExpired.
type ClaimExpiredError struct{ ID string }

// Error implements error.
func (e *ClaimExpiredError) Error() string {
	return fmt.Sprintf("claim %s expired and its units are taken: refund the customer", e.ID)
}

// Unwrap makes errors.Is(err, ErrClaimExpired) true.
func (e *ClaimExpiredError) Unwrap() error { return ErrClaimExpired }

// HoldTooLong is the error for an extension past a hold's max_hold_ttl
// from its creation, which ends at latest. It unwraps to ErrInvalid.
func HoldTooLong(latest time.Time) error {
	return Invalidf("ttl", "the hold may last until %s at most (max_hold_ttl from its creation)", latest.UTC().Format(time.RFC3339))
}

// ClaimBatchState is what a store reads to plan a batch of claims, under
// the pool's lock, after the pool's holds past expiry gave their units
// back.
type ClaimBatchState struct {
	// Pool is the pool with its figures.
	Pool *PoolState
	// Used is each customer's held plus confirmed units, for the
	// customers of the batch (absent means 0). Only read when the pool has
	// a per-customer limit.
	Used map[string]int64
	// Existing are the stored idempotency records of the batch's keys, by
	// key (a batch is one pool, so one scope).
	Existing map[string]*IdempotencyRecord
}

// ClaimPlan is what a batch of claims gets.
type ClaimPlan struct {
	// Results has one entry per request, in order.
	Results []PlannedClaim
	// Available is the pool's free units after the batch.
	Available int64
}

// PlannedClaim is one request's outcome: exactly one of Grant, ReplayOf
// and Err is set.
type PlannedClaim struct {
	// Grant: a hold of the request's quantity is created, expiring at
	// now + TTL, and its key (if any) stored with it.
	Grant bool
	// ReplayOf is the claim id stored with the request's key.
	ReplayOf string
	// Err is *SoldOutError, *CustomerLimitError, *PoolClosedError, or a
	// key mismatch or key used twice in the batch.
	Err error
}

// PlanClaims decides a batch in arrival order:
//
//   - a request whose key is stored is replayed if it matches, or fails
//     with KeyMismatch; a key used by an earlier request of the batch
//     (granted or not) fails with KeyTwiceInBatch;
//   - a pool that is not selling at now refuses (*PoolClosedError);
//   - a request for more than is available is sold out (*SoldOutError
//     with what is available then), and one that would take its customer
//     past the per-customer limit is refused (*CustomerLimitError);
//   - otherwise it is granted, and later requests see the units gone.
func PlanClaims(p PoolClaimParams, st ClaimBatchState) ClaimPlan {
	plan := ClaimPlan{Results: make([]PlannedClaim, len(p.Requests)), Available: st.Pool.Available}
	selling, _ := st.Pool.Selling(p.Now)
	used := make(map[string]int64)
	seen := make(map[string]bool)
	for i, r := range p.Requests {
		out := &plan.Results[i]
		if k := r.Idempotency; k != nil {
			if rec := st.Existing[k.Key]; rec != nil {
				if rec.RequestHash == k.RequestHash {
					out.ReplayOf = rec.Result
				} else {
					out.Err = KeyMismatch(k.Key)
				}
				continue
			}
			if seen[k.Key] {
				out.Err = KeyTwiceInBatch(k.Key)
				continue
			}
			seen[k.Key] = true
		}
		if !selling {
			out.Err = &PoolClosedError{Pool: p.Pool}
			continue
		}
		if r.Quantity > plan.Available {
			out.Err = &SoldOutError{Pool: p.Pool, Requested: r.Quantity, Available: plan.Available}
			continue
		}
		u, ok := used[r.Customer]
		if !ok {
			u = st.Used[r.Customer]
		}
		if lim := st.Pool.PerCustomer; lim > 0 && u+r.Quantity > lim {
			out.Err = &CustomerLimitError{Pool: p.Pool, Customer: r.Customer, Limit: lim, Used: u, Requested: r.Quantity}
			continue
		}
		plan.Available -= r.Quantity
		used[r.Customer] = u + r.Quantity
		out.Grant = true
	}
	return plan
}

// TransitionState is what a store reads to plan a transition, under the
// claim's lock.
type TransitionState struct {
	// Claim is the claim as stored; nil when there is no such claim.
	Claim *Claim
	// Existing is the stored record of the request's key, if any.
	Existing *IdempotencyRecord
	// MaxHoldTTL is the claim's pool's max_hold_ttl (for extend).
	MaxHoldTTL time.Duration
}

// LatePool is the pool as a late confirm sees it, read only then: after
// the pool's other holds past expiry gave their units back.
type LatePool struct {
	// Available is the pool's free units.
	Available int64
	// PerCustomer is the pool's per-customer limit (0: none).
	PerCustomer int64
	// Used is the claim's customer's held plus confirmed units.
	Used int64
}

// TransitionPlan is what a transition does.
type TransitionPlan struct {
	// Expire: the claim is a hold past its expiry and is marked expired
	// first, whatever happens next.
	Expire bool
	// ReplayOf is the claim id stored with the request's key: answer that
	// claim, as stored, and write nothing else.
	ReplayOf string
	// Done: the transition was already made (a confirm with the same
	// reference, a release of a released claim, a cancel with the same
	// reason): answer the claim as a replay and write nothing else.
	Done bool
	// Set is the claim after the transition, to write with the request's
	// key; nil when the transition does not happen.
	Set *Claim
	// Err is why the transition does not happen.
	Err error
}

// PlanTransition decides one transition of a claim at p.Now: a claim
// that does not exist is not found; a stored key is replayed (or is a
// mismatch) before anything else; a hold past expiry counts as expired; a
// transition already made is answered as a replay, key or no key; then:
//
//   - confirm takes a hold, or an expired claim whose units can be taken
//     again now (late, read through late; else *ClaimExpiredError);
//   - release takes a hold; cancel takes a confirmed claim (its reason is
//     p.Reference); extend takes a hold and may not reach past its
//     max_hold_ttl from creation (HoldTooLong);
//   - any other status is a *ClaimStateError.
//
// late is called only for a late confirm; its error is returned as is.
func PlanTransition(p ClaimTransitionStoreParams, st TransitionState, late func() (LatePool, error)) (TransitionPlan, error) {
	var plan TransitionPlan
	c := st.Claim
	if c == nil {
		plan.Err = NotFoundf("claim %q", p.ID)
		return plan, nil
	}
	if k := p.Idempotency; k != nil && st.Existing != nil {
		if st.Existing.RequestHash == k.RequestHash {
			plan.ReplayOf = st.Existing.Result
		} else {
			plan.Err = KeyMismatch(k.Key)
		}
		return plan, nil
	}
	status := c.Status
	if status == ClaimHeld && !p.Now.Before(c.ExpiresAt) {
		plan.Expire = true
		status = ClaimExpired
	}
	if p.Action == ActionConfirm && status == ClaimConfirmed && c.Reference == p.Reference ||
		p.Action == ActionRelease && status == ClaimReleased ||
		p.Action == ActionCancel && status == ClaimCancelled && c.Reason == p.Reference {
		plan.Done = true
		return plan, nil
	}
	next := *c
	next.Status, next.UpdatedAt, next.Replayed = status, p.Now, false
	refuse := func() (TransitionPlan, error) {
		plan.Err = &ClaimStateError{ID: c.ID, Status: status, Action: p.Action}
		return plan, nil
	}
	switch p.Action {
	case ActionConfirm:
		switch status {
		case ClaimHeld:
		case ClaimExpired:
			lp, err := late()
			if err != nil {
				return plan, err
			}
			if lp.Available < c.Quantity || lp.PerCustomer > 0 && lp.Used+c.Quantity > lp.PerCustomer {
				plan.Err = &ClaimExpiredError{ID: c.ID}
				return plan, nil
			}
		default:
			return refuse()
		}
		next.Status, next.Reference = ClaimConfirmed, p.Reference
	case ActionRelease:
		if status != ClaimHeld {
			return refuse()
		}
		next.Status = ClaimReleased
	case ActionCancel:
		if status != ClaimConfirmed {
			return refuse()
		}
		next.Status, next.Reason = ClaimCancelled, p.Reference
	case ActionExtend:
		if status != ClaimHeld {
			return refuse()
		}
		latest := c.CreatedAt.Add(st.MaxHoldTTL)
		if p.Now.Add(p.TTL).After(latest) {
			plan.Err = HoldTooLong(latest)
			return plan, nil
		}
		next.ExpiresAt = p.Now.Add(p.TTL)
	default:
		plan.Err = Invalidf("action", "%q is not an action", p.Action)
		return plan, nil
	}
	plan.Set = &next
	return plan, nil
}

// CheckPoolUpdate decides whether a pool change may be made, inside the
// store's transaction, after the pool's holds past expiry gave their units
// back: capacity may not go below what is held and sold, and a
// per-customer limit may not go below what a customer already has
// (topCustomer returns the most units one customer holds or bought, and
// false when nobody has any).
func CheckPoolUpdate(cur *PoolState, p PoolPatchParams, topCustomer func() (int64, bool, error)) error {
	if p.Capacity != nil && *p.Capacity < cur.Held+cur.Confirmed {
		return &CapacityError{Pool: cur.Name, Requested: *p.Capacity, Held: cur.Held, Confirmed: cur.Confirmed, CapacityNow: cur.Capacity}
	}
	if p.PerCustomer != nil && *p.PerCustomer > 0 {
		top, ok, err := topCustomer()
		if err != nil {
			return err
		}
		if ok && top > *p.PerCustomer {
			return Errorf(ErrInvalidState, "per_customer can't go to %d: a customer already has %d units of pool %q", *p.PerCustomer, top, cur.Name)
		}
	}
	return nil
}
