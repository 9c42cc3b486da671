package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/allot/allot"
)

// fuzzBudget is how long the differential test generates cases per store
// (after a first 100 pools): ALLOT_FUZZ_TIME (a Go duration) or 3s, so CI
// runs it for a bounded time.
func fuzzBudget(t *testing.T) time.Duration {
	if v := os.Getenv("ALLOT_FUZZ_TIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("ALLOT_FUZZ_TIME=%q: %v", v, err)
		}
		return d
	}
	return 3 * time.Second
}

// fuzzSeed is ALLOT_FUZZ_SEED, or a fresh seed that the test logs so a
// failure can be replayed.
func fuzzSeed(t *testing.T) uint64 {
	if v := os.Getenv("ALLOT_FUZZ_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("ALLOT_FUZZ_SEED=%q: %v", v, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// testPoolPlanDifferential generates random pool states (capacity,
// per-customer limits, holds that have or have not expired, confirmed and
// released claims, stored keys, capacity and limit changes with claims
// live, paused pools and sale windows) and random batches of claims and
// transitions, and checks that the store answers exactly what
// allot.PlanClaims, allot.PlanTransition and allot.CheckPoolUpdate say for
// the state the store itself reports. It is the check that the PL/pgSQL functions and
// the Go reference are one set of rules.
func testPoolPlanDifferential(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	seed := fuzzSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	deadline := time.Now().Add(fuzzBudget(t))
	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	rounds, claims, transitions := 0, 0, 0
	seen := map[string]int{}
	for ; rounds < 100 || time.Now().Before(deadline); rounds++ {
		f := &poolFuzz{t: t, s: s, rng: rng, pool: fmt.Sprintf("f%d", rounds), base: t0.Add(time.Duration(rounds) * time.Hour), seen: seen}
		f.setUp()
		for range 1 + rng.IntN(3) {
			f.claimBatch()
			claims++
		}
		for range 1 + rng.IntN(6) {
			f.transition()
			transitions++
		}
		if t.Failed() {
			break
		}
	}
	t.Logf("seed %d (set ALLOT_FUZZ_SEED to replay): %d pools, %d claim batches, %d transitions; outcomes %v", seed, rounds, claims, transitions, seen)
	// A run that never reached a rule checked nothing about it.
	for _, o := range []string{"claim granted", "claim replay", "claim " + allot.ErrSoldOut.Error(), "claim " + allot.ErrCustomerLimit.Error(),
		"claim " + allot.ErrPoolClosed.Error(), "claim " + allot.ErrIdempotencyMismatch.Error(), "claim " + allot.ErrIdempotencyInFlight.Error(),
		"confirm done", "release done", "confirm late", "extend done", "cancel done", "extend " + allot.ErrInvalid.Error(),
		"confirm " + allot.ErrClaimExpired.Error(), "release " + allot.ErrInvalidState.Error(), "confirm replay",
		"update done", "update " + allot.ErrInvalidState.Error()} {
		if seen[o] == 0 {
			t.Errorf("no case reached %q in %d pools: widen the generator", o, rounds)
		}
	}
}

// outcome names an error by its kind, for the coverage count.
func outcome(err error) string {
	for _, kind := range fuzzKinds {
		if errors.Is(err, kind) {
			return kind.Error()
		}
	}
	return err.Error()
}

var fuzzKinds = []error{allot.ErrSoldOut, allot.ErrCustomerLimit, allot.ErrPoolClosed, allot.ErrIdempotencyMismatch,
	allot.ErrIdempotencyInFlight, allot.ErrInvalidState, allot.ErrClaimExpired, allot.ErrInvalid, allot.ErrNotFound}

type poolFuzz struct {
	t    *testing.T
	s    allot.Store
	rng  *rand.Rand
	pool string
	base time.Time
	// now only moves forward within a pool.
	now time.Time
	ids []string
	n   int
	// seen counts the plan's outcomes reached.
	seen map[string]int
}

func (f *poolFuzz) fail(format string, args ...any) {
	f.t.Helper()
	f.t.Fatalf("pool %s at %s: %s", f.pool, f.now.Format(time.TimeOnly), fmt.Sprintf(format, args...))
}

// advance moves now forward by up to max whole seconds.
func (f *poolFuzz) advance(max int) {
	f.now = f.now.Add(time.Duration(f.rng.IntN(max+1)) * time.Second)
}

func (f *poolFuzz) setUp() {
	f.now = f.base
	capacity, per := int64(1+f.rng.IntN(12)), int64(f.rng.IntN(4))
	p, err := allot.NewPool(allot.PoolCreateParams{Name: f.pool, Capacity: &capacity, PerCustomer: &per,
		MaxHoldTTL: dur(3 * time.Minute), HoldTTL: dur(time.Minute)})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.s.PoolCreate(ctx(f.t), p); err != nil {
		f.t.Fatal(err)
	}
	// History: a few batches and transitions, with time passing.
	for range f.rng.IntN(4) {
		f.claimBatch()
		for range f.rng.IntN(3) {
			f.transition()
		}
	}
	// Capacity and the per-customer limit may change with claims live:
	// the store refuses what allot.CheckPoolUpdate refuses.
	if f.rng.IntN(2) == 0 {
		f.advance(30)
		var p allot.PoolPatchParams
		if f.rng.IntN(2) == 0 {
			p.Capacity = ptr(int64(f.rng.IntN(15)))
		}
		if f.rng.IntN(2) == 0 {
			p.PerCustomer = ptr(int64(f.rng.IntN(4)))
		}
		if p != (allot.PoolPatchParams{}) && (p.Capacity == nil || *p.Capacity >= 1) {
			want := allot.CheckPoolUpdate(f.poolState(), p, func() (int64, bool, error) {
				top, any := int64(0), false
				for _, u := range f.used() {
					if u > 0 {
						top, any = max(top, u), true
					}
				}
				return top, any, nil
			})
			_, err := f.s.PoolUpdate(ctx(f.t), f.pool, p, f.now)
			switch {
			case want == nil && err != nil:
				f.fail("pool update %+v: store refused (%v), the plan allows it", p, err)
			case want != nil && !sameError(err, want):
				f.fail("pool update %+v: store says %v, the plan says %v", p, err, want)
			}
			if want == nil {
				f.seen["update done"]++
			} else {
				f.seen["update "+outcome(want)]++
			}
		}
	}
	// Then the pool's state and window may change.
	var patch allot.PoolPatchParams
	switch f.rng.IntN(6) {
	case 0:
		patch.State = allot.PoolPaused
	case 1:
		patch.State = allot.PoolClosed
	case 2:
		opens := f.now.Add(time.Duration(f.rng.IntN(120)-60) * time.Second)
		closes := opens.Add(time.Duration(1+f.rng.IntN(120)) * time.Second)
		patch.OpensAt, patch.ClosesAt = &opens, &closes
	}
	if patch != (allot.PoolPatchParams{}) {
		if _, err := f.s.PoolUpdate(ctx(f.t), f.pool, patch, f.now); err != nil {
			f.t.Fatalf("pool update %+v: %v", patch, err)
		}
	}
}

func (f *poolFuzz) key() *allot.IdempotencyParams {
	if f.rng.IntN(2) == 0 {
		return nil
	}
	return &allot.IdempotencyParams{Scope: "pool:" + f.pool + ":claim", Key: fmt.Sprintf("k%d", f.rng.IntN(5)), RequestHash: fmt.Sprintf("h%d", f.rng.IntN(2))}
}

// existing reads the stored records of keys, as the plan needs them.
func (f *poolFuzz) existing(keys ...*allot.IdempotencyParams) map[string]*allot.IdempotencyRecord {
	f.t.Helper()
	out := map[string]*allot.IdempotencyRecord{}
	for _, k := range keys {
		if k == nil {
			continue
		}
		rec, err := f.s.IdempotencyGet(ctx(f.t), k.Scope, k.Key)
		switch {
		case err == nil:
			out[k.Key] = rec
		case !errors.Is(err, allot.ErrNotFound):
			f.t.Fatal(err)
		}
	}
	return out
}

// used is each customer's live holds plus confirmed units at now, read
// from the claims.
func (f *poolFuzz) used() map[string]int64 {
	f.t.Helper()
	out := map[string]int64{}
	cs, err := f.s.ClaimList(ctx(f.t), allot.ClaimListParams{Pool: f.pool, Limit: 1000}, 0, f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, c := range cs {
		if st := c.Effective(f.now).Status; st == allot.ClaimHeld || st == allot.ClaimConfirmed {
			out[c.Customer] += c.Quantity
		}
	}
	return out
}

func (f *poolFuzz) poolState() *allot.PoolState {
	f.t.Helper()
	st, err := f.s.PoolGet(ctx(f.t), f.pool, f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *poolFuzz) claimBatch() {
	f.t.Helper()
	f.advance(90)
	p := allot.PoolClaimParams{Pool: f.pool, Now: f.now}
	var keys []*allot.IdempotencyParams
	for range 1 + f.rng.IntN(8) {
		f.n++
		r := allot.PoolClaimRequest{ID: fmt.Sprintf("%s-c%d", f.pool, f.n), Customer: fmt.Sprintf("u%d", f.rng.IntN(4)),
			Quantity: int64(1 + f.rng.IntN(3)), TTL: time.Duration(1+f.rng.IntN(120)) * time.Second, Idempotency: f.key()}
		p.Requests = append(p.Requests, r)
		keys = append(keys, r.Idempotency)
	}
	want := allot.PlanClaims(p, allot.ClaimBatchState{Pool: f.poolState(), Used: f.used(), Existing: f.existing(keys...)})
	got, err := f.s.PoolClaim(ctx(f.t), p)
	if err != nil {
		f.fail("PoolClaim: %v", err)
	}
	for i, w := range want.Results {
		g, r := got.Results[i], p.Requests[i]
		switch {
		case w.Err != nil:
			f.seen["claim "+outcome(w.Err)]++
			if !sameError(g.Err, w.Err) {
				f.fail("request %d %+v: store says claim %+v, error %v; the plan says %v", i, r, g.Claim, g.Err, w.Err)
			}
		case w.ReplayOf != "":
			f.seen["claim replay"]++
			if g.Err != nil || !g.Replayed || g.Claim == nil || g.Claim.ID != w.ReplayOf {
				f.fail("request %d %+v: store says %+v %v; the plan says a replay of %s", i, r, g.Claim, g.Err, w.ReplayOf)
			}
		default:
			f.seen["claim granted"]++
			if g.Err != nil || g.Replayed || g.Claim == nil || g.Claim.ID != r.ID || g.Claim.Status != allot.ClaimHeld ||
				!g.Claim.ExpiresAt.Equal(f.now.Add(r.TTL)) || g.Claim.Quantity != r.Quantity {
				f.fail("request %d %+v: store says %+v %v; the plan says a hold until %s", i, r, g.Claim, g.Err, f.now.Add(r.TTL))
			}
			f.ids = append(f.ids, r.ID)
		}
	}
	if got.Available != want.Available {
		f.fail("available after the batch: store %d, plan %d", got.Available, want.Available)
	}
	if st := f.poolState(); st.Available != want.Available {
		f.fail("available read back: %d, plan %d", st.Available, want.Available)
	}
}

func (f *poolFuzz) transition() {
	f.t.Helper()
	f.advance(60)
	actions := []allot.ClaimAction{allot.ActionConfirm, allot.ActionRelease, allot.ActionCancel, allot.ActionExtend}
	p := allot.ClaimTransitionStoreParams{ID: fmt.Sprintf("%s-none", f.pool), Action: actions[f.rng.IntN(len(actions))], Now: f.now,
		Reference: []string{"", "r1", "r2"}[f.rng.IntN(3)], TTL: time.Duration(1+f.rng.IntN(200)) * time.Second}
	if len(f.ids) > 0 && f.rng.IntN(8) > 0 {
		p.ID = f.ids[f.rng.IntN(len(f.ids))]
	}
	if f.rng.IntN(2) == 0 {
		// Few keys, mostly with one request, so retries (replays) and
		// mismatches both happen often.
		p.Idempotency = &allot.IdempotencyParams{Scope: "pool:" + f.pool + ":" + string(p.Action),
			Key: fmt.Sprintf("t%d", f.rng.IntN(3)), RequestHash: fmt.Sprintf("h%d", f.rng.IntN(5)/4)}
	}
	if f.checkTransition(p) && p.Idempotency != nil && f.rng.IntN(2) == 0 {
		// A retry of a transition that happened, as after a lost answer.
		f.advance(5)
		p.Now = f.now
		f.checkTransition(p)
	}
}

// checkTransition runs p on the store and checks it against the plan; it
// reports whether the transition happened.
func (f *poolFuzz) checkTransition(p allot.ClaimTransitionStoreParams) bool {
	f.t.Helper()
	st := allot.TransitionState{MaxHoldTTL: 3 * time.Minute}
	c, err := f.s.ClaimGet(ctx(f.t), p.ID)
	switch {
	case err == nil:
		st.Claim = c
	case !errors.Is(err, allot.ErrNotFound):
		f.t.Fatal(err)
	}
	if p.Idempotency != nil {
		st.Existing = f.existing(p.Idempotency)[p.Idempotency.Key]
	}
	late := false
	want, err := allot.PlanTransition(p, st, func() (allot.LatePool, error) {
		late = true
		// The claim is past its expiry, so the pool's figures at now
		// already count its units as free.
		return allot.LatePool{Available: f.poolState().Available, PerCustomer: f.poolState().PerCustomer, Used: f.used()[c.Customer]}, nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	got, gerr := f.s.ClaimTransition(ctx(f.t), p)
	act := string(p.Action) + " "
	switch {
	case want.Err != nil:
		f.seen[act+outcome(want.Err)]++
		if !sameError(gerr, want.Err) {
			f.fail("%s %s (%+v): store says %+v %v; the plan says %v", p.Action, p.ID, p, got, gerr, want.Err)
		}
	case want.ReplayOf != "":
		f.seen[act+"replay"]++
		if gerr != nil || got == nil || !got.Replayed || got.ID != want.ReplayOf {
			f.fail("%s %s: store says %+v %v; the plan says a replay of %s", p.Action, p.ID, got, gerr, want.ReplayOf)
		}
	case want.Done:
		f.seen[act+"already done"]++
		if gerr != nil || got == nil || !got.Replayed || got.Status != st.Claim.Effective(f.now).Status {
			f.fail("%s %s: store says %+v %v; the plan says already done (%s)", p.Action, p.ID, got, gerr, st.Claim.Status)
		}
	default:
		f.seen[act+"done"]++
		if late {
			f.seen[act+"late"]++
		}
		w := want.Set
		if gerr != nil || got == nil || got.Replayed || got.Status != w.Status || got.Reference != w.Reference || got.Reason != w.Reason ||
			!got.ExpiresAt.Equal(w.ExpiresAt) || !got.UpdatedAt.Equal(w.UpdatedAt) {
			f.fail("%s %s (%+v): store says %+v %v; the plan says %+v", p.Action, p.ID, p, got, gerr, w)
		}
	}
	return want.Set != nil
}

// sameError: got is the error want is, by message and by kind.
func sameError(got, want error) bool {
	if got == nil || got.Error() != want.Error() {
		return false
	}
	for _, kind := range fuzzKinds {
		if errors.Is(want, kind) != errors.Is(got, kind) {
			return false
		}
	}
	return true
}
