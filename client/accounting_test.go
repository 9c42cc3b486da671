package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/allot/allot"
)

// TestAccountingRoundTrip: two-phase numbers, references, another
// period's figures, closed periods, refunds and the new sentinels, over
// the wire.
func TestAccountingRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	admin, cl := s.client(t, adminKey), s.client(t, clientKey)
	if _, err := admin.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "inv", Format: "INV-{yyyy}-{n}", Mode: allot.ModeGapless,
		Reset: allot.ResetYearly}); err != nil {
		t.Fatal(err)
	}
	year := time.Now().UTC().Year()
	period := fmt.Sprint(year)
	r, err := cl.Next(ctx, allot.NextParams{Sequence: "inv", Reference: "order-1", ConfirmWithin: time.Minute})
	if err != nil || r.Status != allot.StatusReserved || r.ConfirmBy == nil || r.Reference != "order-1" {
		t.Fatalf("two-phase next: %+v %v", r, err)
	}
	e, replayed, err := cl.SequenceConfirm(ctx, allot.ConfirmParams{Sequence: "inv", Period: period, First: r.First, Last: r.Last, Reference: "inv-1"})
	if err != nil || replayed || e.Kind != allot.LedgerConfirmed {
		t.Fatalf("confirm: %+v %v %v", e, replayed, err)
	}
	if _, replayed, err := cl.SequenceConfirm(ctx, allot.ConfirmParams{Sequence: "inv", Period: period, First: r.First, Last: r.Last, Reference: "inv-1"}); err != nil || !replayed {
		t.Fatalf("confirm again: %v %v", replayed, err)
	}
	last := fmt.Sprintf("%d-03-01", year-1)
	if _, err := cl.Next(ctx, allot.NextParams{Sequence: "inv", Date: last}); err != nil {
		t.Fatal(err)
	}
	st, err := cl.SequenceGetAt(ctx, "inv", last)
	if err != nil || st.Period != fmt.Sprint(year-1) || st.Issued != 1 {
		t.Fatalf("get at %s: %+v %v", last, st, err)
	}
	if _, err := cl.SequencePeriodClose(ctx, "inv", fmt.Sprint(year-1), false); !errors.Is(err, allot.ErrForbidden) {
		t.Fatalf("a client key closing a period: %v", err)
	}
	if st, err := admin.SequencePeriodClose(ctx, "inv", fmt.Sprint(year-1), false); err != nil || st.Closed == nil {
		t.Fatalf("close: %+v %v", st, err)
	}
	if _, err := cl.Next(ctx, allot.NextParams{Sequence: "inv", Date: last}); !errors.Is(err, allot.ErrPeriodClosed) {
		t.Fatalf("next in a closed period: %v", err)
	}
	if _, err := admin.SequencePeriodClose(ctx, "inv", fmt.Sprint(year-1), true); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "inv2", Format: "INV-{yyyy}-{n}", Reset: allot.ResetYearly}); !errors.Is(err, allot.ErrOverlap) {
		t.Fatalf("an overlapping sequence: %v", err)
	}

	if _, err := admin.PoolCreate(ctx, allot.PoolCreateParams{Name: "gig", Capacity: ptr(int64(1))}); err != nil {
		t.Fatal(err)
	}
	c, _, err := cl.ClaimCreate(ctx, allot.ClaimCreateParams{Pool: "gig", Customer: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ClaimConfirm(ctx, c.ID, "pay-1", ""); err != nil {
		t.Fatal(err)
	}
	got, err := cl.ClaimCancel(ctx, c.ID, "refunded", "")
	if err != nil || got.Status != allot.ClaimCancelled || got.Reason != "refunded" {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	if again, err := cl.ClaimCancel(ctx, c.ID, "refunded", ""); err != nil || !again.Replayed {
		t.Fatalf("cancel again: %+v %v", again, err)
	}
	if p, err := cl.PoolGet(ctx, "gig"); err != nil || p.Available != 1 {
		t.Fatalf("after the refund: %+v %v", p, err)
	}
}

// TestUnavailableUnwraps: 503 unavailable unwraps to ErrUnavailable (and
// to ErrClosed, which a shutting-down server also answers with).
func TestUnavailableUnwraps(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	cl := s.client(t, adminKey)
	if err := s.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := cl.SequenceGet(ctx, "x")
	if !errors.Is(err, allot.ErrUnavailable) || !errors.Is(err, allot.ErrClosed) {
		t.Fatalf("a closed server: %v", err)
	}
}
