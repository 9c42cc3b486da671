package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/allot/allot"
)

// refusingTurn is a pipelined batch's Turn whose batch before failed:
// Ready refuses, so the store must roll the batch back.
type refusingTurn struct {
	locked, ready int
	err           error
}

func (r *refusingTurn) Locked()                     { r.locked++ }
func (r *refusingTurn) Ready(context.Context) error { r.ready++; return r.err }

// checkTurn says what a store did with a refusing Turn: a store that
// pipelines (it called Locked) must have asked Ready once before its
// commit and returned Ready's error; one that doesn't must have ignored
// the Turn altogether. It reports whether the batch was rolled back.
func checkTurn(t *testing.T, what string, turn *refusingTurn, err error) (rolledBack bool) {
	t.Helper()
	switch {
	case turn.locked == 0 && turn.ready == 0:
		if err != nil {
			t.Fatalf("%s with a Turn the store ignores: %v", what, err)
		}
		return false
	case turn.locked != 1 || turn.ready != 1:
		t.Fatalf("%s: Locked called %d times, Ready %d times; want once each (or neither)", what, turn.locked, turn.ready)
	case !errors.Is(err, turn.err):
		t.Fatalf("%s: Ready refused, but the store returned %v, want Ready's error", what, err)
	}
	return true
}

// testTurnRollsBack: a group commit whose Turn's Ready refuses (the
// batch before it failed) writes nothing: no number taken, no ledger
// entry, no key, no claim, no unit held.
func testTurnRollsBack(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	refused := errors.New("the batch before failed")
	mustSeq(t, s, allot.SequenceCreateParams{Name: "g", Mode: allot.ModeGapless})
	advance(t, s, "g", "", 2) // a counter row exists: numbers 1-2
	key := &allot.IdempotencyParams{Scope: "seq:g", Key: "k1", RequestHash: "h"}
	turn := &refusingTurn{err: refused}
	_, err := s.SequenceAdvance(ctx(t), allot.SequenceAdvanceParams{Sequence: "g", Kind: allot.LedgerIssued, Owner: "o", Batch: 7,
		Pending: true, Turn: turn, Requests: []allot.SequenceAdvanceRequest{{Count: 3}, {Count: 1, Idempotency: key}}})
	if checkTurn(t, "advance", turn, err) {
		if c, err := s.SequenceCounterGet(ctx(t), "g", ""); err != nil || c.Last != 2 {
			t.Fatalf("counter after a refused batch: %+v %v, want last 2", c, err)
		}
		if e, err := s.SequenceLedger(ctx(t), allot.SequenceLedgerParams{Sequence: "g", Limit: 10}); err != nil || len(e) != 1 {
			t.Fatalf("ledger after a refused batch: %+v %v, want only the first batch's entry", e, err)
		}
		if r, err := s.IdempotencyGet(ctx(t), key.Scope, key.Key); !errors.Is(err, allot.ErrNotFound) {
			t.Fatalf("key stored by a refused batch: %+v %v", r, err)
		}
	}

	now := time.Now().Truncate(time.Microsecond)
	p, err := allot.NewPool(allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](5), PerCustomer: ptr[int64](2)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PoolCreate(ctx(t), p); err != nil {
		t.Fatal(err)
	}
	turn = &refusingTurn{err: refused}
	_, err = s.PoolClaim(ctx(t), allot.PoolClaimParams{Pool: "p", Now: now, Turn: turn, Requests: []allot.PoolClaimRequest{
		{ID: "clm_turn1", Customer: "c1", Quantity: 2, TTL: time.Minute},
		{ID: "clm_turn2", Customer: "c2", Quantity: 1, TTL: time.Minute, Idempotency: &allot.IdempotencyParams{Scope: "pool:p", Key: "k2", RequestHash: "h"}},
	}})
	if checkTurn(t, "claim", turn, err) {
		st, err := s.PoolGet(ctx(t), "p", now)
		if err != nil || st.Held != 0 || st.Confirmed != 0 {
			t.Fatalf("pool after a refused batch: %+v %v, want nothing held", st, err)
		}
		for _, id := range []string{"clm_turn1", "clm_turn2"} {
			if _, err := s.ClaimGet(ctx(t), id); !errors.Is(err, allot.ErrNotFound) {
				t.Fatalf("claim %s after a refused batch: %v, want not found", id, err)
			}
		}
	}
}
