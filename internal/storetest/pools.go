package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testkit"
)

// poolService returns a service on s whose clock the test moves.
func poolService(t *testing.T, s allot.Store) (*allot.Service, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	svc, err := allot.New(ctx(t), allot.Config{Store: s, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close(context.Background()) })
	return svc, clk
}

func dur(d time.Duration) *allot.Duration { v := allot.Duration(d); return &v }

// auditOK checks every invariant from the database.
func auditOK(t *testing.T, svc *allot.Service) {
	t.Helper()
	checks, err := svc.Audit(ctx(t))
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	for _, c := range checks {
		if !c.OK {
			t.Fatalf("audit %q failed: %s", c.Name, c.Detail)
		}
	}
}

func claim(t *testing.T, svc *allot.Service, pool, customer string, qty int64) (*allot.Claim, error) {
	t.Helper()
	c, _, err := svc.ClaimCreate(ctx(t), allot.ClaimCreateParams{Pool: pool, Customer: customer, Quantity: qty})
	return c, err
}

func figures(t *testing.T, svc *allot.Service, pool string) (held, confirmed, available int64) {
	t.Helper()
	st, err := svc.PoolGet(ctx(t), pool)
	if err != nil {
		t.Fatal(err)
	}
	return st.Held, st.Confirmed, st.Available
}

func wantFigures(t *testing.T, svc *allot.Service, pool string, held, confirmed, available int64) {
	t.Helper()
	h, c, a := figures(t, svc, pool)
	if h != held || c != confirmed || a != available {
		t.Fatalf("pool %s: held/confirmed/available = %d/%d/%d, want %d/%d/%d", pool, h, c, a, held, confirmed, available)
	}
}

var poolTests = []struct {
	name string
	fn   func(t *testing.T, open func() allot.Store)
}{
	{"PoolCRUD", testPoolCRUD},
	{"PoolPlanDifferential", testPoolPlanDifferential},
	{"AdmissionSeam", testAdmissionSeam},
	{"NoticesReopen", testNoticesReopen},
	{"AdmissionToldOnce", testAdmissionToldOnce},
	{"ClaimTransitions", testClaimTransitions},
	{"ClaimBatchOrder", testClaimBatchOrder},
	{"PerCustomerLimit", testPerCustomerLimit},
	{"PoolClosedAndWindow", testPoolClosed},
	{"ExpiryAndLateConfirm", testExpiryLateConfirm},
	{"LateConfirmPastStaleHolds", testLateConfirmPastStaleHolds},
	{"ConfirmBatch", testConfirmBatch},
	{"AuditSweeperBound", testAuditSweeperBound},
	{"LimitSetAfterExpiry", testLimitSetAfterExpiry},
	{"ClaimIdempotency", testClaimIdempotency},
	{"ClaimListing", testClaimListing},
	{"ExactlyNConcurrent", testExactlyN},
	{"CustomerRace", testCustomerRace},
	{"CancelAndReplays", testCancelAndReplays},
}

func testPoolCRUD(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, _ := poolService(t, s)
	st, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "show-1", Capacity: ptr[int64](15000)})
	if err != nil {
		t.Fatal(err)
	}
	if st.PerCustomer != 1 || time.Duration(st.HoldTTL) != 10*time.Minute || time.Duration(st.MaxHoldTTL) != 30*time.Minute ||
		st.MaxQuantity != 10 || st.State != allot.PoolOpen || st.Available != 15000 {
		t.Fatalf("defaults: %+v", st)
	}
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "show-1", Capacity: ptr[int64](1)}); !errors.Is(err, allot.ErrAlreadyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := svc.PoolGet(ctx(t), "nope"); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	for _, bad := range []allot.PoolCreateParams{
		{Name: "x"}, {Name: "x", Capacity: ptr[int64](-1)}, {Name: "Bad", Capacity: ptr[int64](1)},
		{Name: "x", Capacity: ptr[int64](1), MaxQuantity: ptr[int64](0)}, {Name: "x", Capacity: ptr[int64](1), HoldTTL: dur(time.Hour)},
		{Name: "x", Capacity: ptr[int64](1), State: "sleeping"},
	} {
		if _, err := svc.PoolCreate(ctx(t), bad); !errors.Is(err, allot.ErrInvalid) {
			t.Fatalf("create %+v: got %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "small", Capacity: ptr[int64](3), PerCustomer: ptr[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := claim(t, svc, "small", "a", 2); err != nil {
		t.Fatal(err)
	}
	_, err = svc.PoolPatch(ctx(t), "small", allot.PoolPatchParams{Capacity: ptr[int64](1)})
	var ce *allot.CapacityError
	if !errors.As(err, &ce) || ce.Held != 2 || !errors.Is(err, allot.ErrInvalidState) {
		t.Fatalf("capacity below taken: %v", err)
	}
	if _, err := svc.PoolPatch(ctx(t), "small", allot.PoolPatchParams{PerCustomer: ptr[int64](1)}); !errors.Is(err, allot.ErrInvalidState) {
		t.Fatalf("per_customer below a customer's usage: %v", err)
	}
	st, err = svc.PoolPatch(ctx(t), "small", allot.PoolPatchParams{Capacity: ptr[int64](2)})
	if err != nil || st.Capacity != 2 || st.Available != 0 {
		t.Fatalf("capacity down to exactly taken: %+v %v", st, err)
	}
	if _, err := svc.PoolPatch(ctx(t), "small", allot.PoolPatchParams{State: allot.PoolPaused, MaxQuantity: ptr[int64](5)}); err != nil {
		t.Fatal(err)
	}
	list, err := svc.PoolList(ctx(t))
	if err != nil || len(list) != 2 || list[1].Name != "small" || list[1].State != allot.PoolPaused || list[1].MaxQuantity != 5 {
		t.Fatalf("list: %+v %v", list, err)
	}
	auditOK(t, svc)
}

func testClaimTransitions(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, _ := poolService(t, s)
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](10), PerCustomer: ptr[int64](0)}); err != nil {
		t.Fatal(err)
	}
	tr := func(id string, a allot.ClaimAction, ref string, ttl *allot.Duration) (*allot.Claim, error) {
		c, _, err := svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: id, Action: a, Reference: ref, TTL: ttl})
		return c, err
	}
	a, err := claim(t, svc, "p", "alice", 2)
	if err != nil || a.Status != allot.ClaimHeld || a.Quantity != 2 || a.ExpiresAt.Sub(a.CreatedAt) != 10*time.Minute {
		t.Fatalf("claim: %+v %v", a, err)
	}
	wantFigures(t, svc, "p", 2, 0, 8)
	c, err := tr(a.ID, allot.ActionConfirm, "pay_123", nil)
	if err != nil || c.Status != allot.ClaimConfirmed || c.Reference != "pay_123" {
		t.Fatalf("confirm: %+v %v", c, err)
	}
	wantFigures(t, svc, "p", 0, 2, 8)
	for _, act := range []allot.ClaimAction{allot.ActionConfirm, allot.ActionRelease} {
		if _, err := tr(a.ID, act, "", nil); !errors.Is(err, allot.ErrInvalidState) {
			t.Fatalf("%s of a confirmed claim: %v", act, err)
		}
	}
	if _, err := tr(a.ID, allot.ActionExtend, "", dur(time.Minute)); !errors.Is(err, allot.ErrInvalidState) {
		t.Fatalf("extend of a confirmed claim: %v", err)
	}
	b, _ := claim(t, svc, "p", "bob", 3)
	if c, err := tr(b.ID, allot.ActionRelease, "", nil); err != nil || c.Status != allot.ClaimReleased {
		t.Fatalf("release: %+v %v", c, err)
	}
	wantFigures(t, svc, "p", 0, 2, 8)
	if _, err := tr(b.ID, allot.ActionConfirm, "late", nil); !errors.Is(err, allot.ErrInvalidState) {
		t.Fatalf("confirm of a released claim: %v", err)
	}
	d, _ := claim(t, svc, "p", "dan", 1)
	c, err = tr(d.ID, allot.ActionExtend, "", dur(25*time.Minute))
	if err != nil || !c.ExpiresAt.Equal(d.CreatedAt.Add(25*time.Minute)) {
		t.Fatalf("extend: %+v %v", c, err)
	}
	if _, err := tr(d.ID, allot.ActionExtend, "", dur(31*time.Minute)); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("extend past max_hold_ttl: %v", err)
	}
	if _, err := tr("clm_nope", allot.ActionConfirm, "", nil); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("unknown claim: %v", err)
	}
	if _, err := svc.ClaimGet(ctx(t), "clm_nope"); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("get unknown claim: %v", err)
	}
	got, err := svc.ClaimGet(ctx(t), a.ID)
	if err != nil || got.Status != allot.ClaimConfirmed || got.Customer != "alice" {
		t.Fatalf("get: %+v %v", got, err)
	}
	for _, bad := range []allot.ClaimCreateParams{
		{Pool: "p", Customer: "", Quantity: 1}, {Pool: "p", Customer: "x", Quantity: -1}, {Pool: "p", Customer: "x", Quantity: 11},
		{Pool: "p", Customer: "x", Quantity: 1, TTL: dur(time.Hour)},
	} {
		if _, _, err := svc.ClaimCreate(ctx(t), bad); !errors.Is(err, allot.ErrInvalid) {
			t.Fatalf("claim %+v: got %v, want ErrInvalid", bad, err)
		}
	}
	if _, _, err := svc.ClaimCreate(ctx(t), allot.ClaimCreateParams{Pool: "nope", Customer: "x"}); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("claim on unknown pool: %v", err)
	}
	auditOK(t, svc)
}

// testClaimBatchOrder sends one batch straight to the store: requests are
// decided in order, and a later request never takes a unit an earlier one
// could have had.
func testClaimBatchOrder(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, clk := poolService(t, s)
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](5), PerCustomer: ptr[int64](0)}); err != nil {
		t.Fatal(err)
	}
	qty := []int64{1, 1, 2, 3, 1, 1, 1}
	reqs := make([]allot.PoolClaimRequest, len(qty))
	for i, q := range qty {
		reqs[i] = allot.PoolClaimRequest{ID: fmt.Sprintf("clm_order%011d", i), Customer: fmt.Sprintf("c%d", i), Quantity: q, TTL: time.Minute}
	}
	res, err := s.PoolClaim(ctx(t), allot.PoolClaimParams{Pool: "p", Now: clk.Now(), Requests: reqs})
	if err != nil {
		t.Fatal(err)
	}
	// 1+1+2 = 4 taken; 3 does not fit (1 left); the next 1 takes the last.
	want := []string{"ok", "ok", "ok", "sold_out", "ok", "sold_out", "sold_out"}
	for i, r := range res.Results {
		got := "ok"
		if r.Err != nil {
			got = "sold_out"
			var so *allot.SoldOutError
			if !errors.As(r.Err, &so) {
				t.Fatalf("request %d: %v", i, r.Err)
			}
			if i == 3 && so.Available != 1 {
				t.Fatalf("request 3 saw %d available, want 1", so.Available)
			}
		}
		if got != want[i] {
			t.Fatalf("request %d: %s, want %s (%v)", i, got, want[i], r.Err)
		}
	}
	if res.Available != 0 {
		t.Fatalf("available after batch %d", res.Available)
	}
	if _, err := s.PoolClaim(ctx(t), allot.PoolClaimParams{Pool: "nope", Now: clk.Now(), Requests: reqs[:1]}); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("batch on unknown pool: %v", err)
	}
	auditOK(t, svc)
}

func testPerCustomerLimit(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, clk := poolService(t, s)
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](100), PerCustomer: ptr[int64](2)}); err != nil {
		t.Fatal(err)
	}
	reqs := []allot.PoolClaimRequest{
		{ID: "clm_limit00000000001", Customer: "eve", Quantity: 1, TTL: time.Minute},
		{ID: "clm_limit00000000002", Customer: "eve", Quantity: 1, TTL: time.Minute},
		{ID: "clm_limit00000000003", Customer: "eve", Quantity: 1, TTL: time.Minute},
		{ID: "clm_limit00000000004", Customer: "fay", Quantity: 2, TTL: time.Minute},
	}
	res, err := s.PoolClaim(ctx(t), allot.PoolClaimParams{Pool: "p", Now: clk.Now(), Requests: reqs})
	if err != nil {
		t.Fatal(err)
	}
	var cl *allot.CustomerLimitError
	if res.Results[0].Err != nil || res.Results[1].Err != nil || !errors.As(res.Results[2].Err, &cl) || res.Results[3].Err != nil {
		t.Fatalf("results: %+v", res.Results)
	}
	if cl.Limit != 2 || cl.Used != 2 {
		t.Fatalf("limit error: %+v", cl)
	}
	// Confirmed units count too; a release makes room.
	if _, _, err := svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: "clm_limit00000000001", Action: allot.ActionConfirm}); err != nil {
		t.Fatal(err)
	}
	if _, err := claim(t, svc, "p", "eve", 1); !errors.Is(err, allot.ErrCustomerLimit) {
		t.Fatalf("over the limit with a confirmed unit: %v", err)
	}
	if _, _, err := svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: "clm_limit00000000002", Action: allot.ActionRelease}); err != nil {
		t.Fatal(err)
	}
	if _, err := claim(t, svc, "p", "eve", 1); err != nil {
		t.Fatalf("after a release there is room: %v", err)
	}
	auditOK(t, svc)
}

func testPoolClosed(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, clk := poolService(t, s)
	opens := clk.Now().Add(time.Hour)
	closes := clk.Now().Add(2 * time.Hour)
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "w", Capacity: ptr[int64](10), OpensAt: &opens, ClosesAt: &closes}); err != nil {
		t.Fatal(err)
	}
	if _, err := claim(t, svc, "w", "a", 1); !errors.Is(err, allot.ErrPoolClosed) {
		t.Fatalf("before the window: %v", err)
	}
	clk.Add(90 * time.Minute)
	c, err := claim(t, svc, "w", "a", 1)
	if err != nil {
		t.Fatalf("inside the window: %v", err)
	}
	clk.Add(time.Hour)
	if _, err := claim(t, svc, "w", "b", 1); !errors.Is(err, allot.ErrPoolClosed) {
		t.Fatalf("after the window: %v", err)
	}
	// Confirms go on after the window closes, while the hold lives.
	if _, _, err := svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: c.ID, Action: allot.ActionRelease}); err != nil && !errors.Is(err, allot.ErrInvalidState) {
		t.Fatal(err)
	}
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "paused", Capacity: ptr[int64](10), State: allot.PoolPaused}); err != nil {
		t.Fatal(err)
	}
	if _, err := claim(t, svc, "paused", "a", 1); !errors.Is(err, allot.ErrPoolClosed) {
		t.Fatalf("paused pool: %v", err)
	}
	if _, err := svc.PoolPatch(ctx(t), "paused", allot.PoolPatchParams{State: allot.PoolOpen}); err != nil {
		t.Fatal(err)
	}
	if _, err := claim(t, svc, "paused", "a", 1); err != nil {
		t.Fatalf("reopened pool: %v", err)
	}
}

func testExpiryLateConfirm(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, clk := poolService(t, s)
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](2), PerCustomer: ptr[int64](0)}); err != nil {
		t.Fatal(err)
	}
	a, _ := claim(t, svc, "p", "a", 1)
	b, _, err := svc.ClaimCreate(ctx(t), allot.ClaimCreateParams{Pool: "p", Customer: "b", Quantity: 1, TTL: dur(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	wantFigures(t, svc, "p", 2, 0, 0)
	clk.Add(2 * time.Minute)
	// Lazy: b is expired to every read at once, before any sweep.
	got, _ := svc.ClaimGet(ctx(t), b.ID)
	if got.Status != allot.ClaimExpired {
		t.Fatalf("b after expiry reads as %s", got.Status)
	}
	wantFigures(t, svc, "p", 1, 0, 1)
	page, err := svc.ClaimList(ctx(t), allot.ClaimListParams{Pool: "p", Status: allot.ClaimExpired})
	if err != nil || len(page.Claims) != 1 || page.Claims[0].ID != b.ID {
		t.Fatalf("list expired: %+v %v", page, err)
	}
	// Late confirm while the unit is free: succeeds, atomically.
	c, _, err := svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: b.ID, Action: allot.ActionConfirm, Reference: "pay_b"})
	if err != nil || c.Status != allot.ClaimConfirmed {
		t.Fatalf("late confirm with units free: %+v %v", c, err)
	}
	wantFigures(t, svc, "p", 1, 1, 0)
	// a expires; its unit is taken by someone else; a's late confirm fails.
	clk.Add(10 * time.Minute)
	if err := svc.SweepNow(ctx(t)); err != nil {
		t.Fatal(err)
	}
	stored, _ := s.ClaimGet(ctx(t), a.ID)
	if stored.Status != allot.ClaimExpired {
		t.Fatalf("the sweep did not write a's expiry: %s", stored.Status)
	}
	if _, err := claim(t, svc, "p", "z", 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: a.ID, Action: allot.ActionConfirm, Reference: "pay_a"}); !errors.Is(err, allot.ErrClaimExpired) {
		t.Fatalf("late confirm without units: %v", err)
	}
	if _, _, err := svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: a.ID, Action: allot.ActionRelease}); !errors.Is(err, allot.ErrInvalidState) {
		t.Fatalf("release of an expired claim: %v", err)
	}
	wantFigures(t, svc, "p", 1, 1, 0)
	auditOK(t, svc)
}

func testClaimIdempotency(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, _ := poolService(t, s)
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](1)}); err != nil {
		t.Fatal(err)
	}
	p := allot.ClaimCreateParams{Pool: "p", Customer: "a", Quantity: 1, IdempotencyKey: "cart-1"}
	c1, replayed, err := svc.ClaimCreate(ctx(t), p)
	if err != nil || replayed {
		t.Fatal(err)
	}
	// The pool is now sold out; the retry still finds its claim.
	c2, replayed, err := svc.ClaimCreate(ctx(t), p)
	if err != nil || !replayed || c2.ID != c1.ID {
		t.Fatalf("replay: %+v %v %v", c2, replayed, err)
	}
	p.Customer = "b"
	if _, _, err := svc.ClaimCreate(ctx(t), p); !errors.Is(err, allot.ErrIdempotencyMismatch) {
		t.Fatalf("mismatch: %v", err)
	}
	tp := allot.ClaimTransitionParams{ID: c1.ID, Action: allot.ActionConfirm, Reference: "pay", IdempotencyKey: "pay-1"}
	if _, replayed, err := svc.ClaimTransition(ctx(t), tp); err != nil || replayed {
		t.Fatal(err)
	}
	c3, replayed, err := svc.ClaimTransition(ctx(t), tp)
	if err != nil || !replayed || c3.Status != allot.ClaimConfirmed {
		t.Fatalf("confirm replay: %+v %v %v", c3, replayed, err)
	}
	tp.Reference = "other"
	if _, _, err := svc.ClaimTransition(ctx(t), tp); !errors.Is(err, allot.ErrIdempotencyMismatch) {
		t.Fatalf("confirm mismatch: %v", err)
	}
	auditOK(t, svc)
}

func testClaimListing(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, _ := poolService(t, s)
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](100), PerCustomer: ptr[int64](0)}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		c, err := claim(t, svc, "p", fmt.Sprintf("c%d", i%2), 1)
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, _, err := svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: c.ID, Action: allot.ActionConfirm}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var all []*allot.Claim
	after := ""
	for {
		page, err := svc.ClaimList(ctx(t), allot.ClaimListParams{Pool: "p", After: after, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Claims...)
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if len(all) != 7 {
		t.Fatalf("paged %d claims, want 7", len(all))
	}
	page, _ := svc.ClaimList(ctx(t), allot.ClaimListParams{Pool: "p", Customer: "c0", Status: allot.ClaimConfirmed})
	if len(page.Claims) != 2 || page.Next != "" { // i = 0, 6
		t.Fatalf("filtered: %d claims, next %q", len(page.Claims), page.Next)
	}
	if _, err := svc.ClaimList(ctx(t), allot.ClaimListParams{Pool: "p", Status: "lost"}); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("bad status: %v", err)
	}
	if _, err := svc.ClaimList(ctx(t), allot.ClaimListParams{Pool: "nope"}); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("unknown pool: %v", err)
	}
}

// testExactlyN: many concurrent claims against a small pool through the
// group commit end with exactly capacity held.
func testExactlyN(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, _ := poolService(t, s)
	const capacity, claims = 50, 400
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](capacity)}); err != nil {
		t.Fatal(err)
	}
	var got tally
	race(claims, func(i int) {
		_, err := claim(t, svc, "p", fmt.Sprintf("cust-%d", i), 1)
		got.add(t, fmt.Sprintf("claim %d", i), err, allot.ErrSoldOut)
	})
	if got.ok != capacity || got.refused != claims-capacity {
		t.Fatalf("%d held, %d sold out; want exactly %d and %d", got.ok, got.refused, capacity, claims-capacity)
	}
	wantFigures(t, svc, "p", capacity, 0, 0)
	auditOK(t, svc)
}

// testCustomerRace: one customer from 50 goroutines ends with no more
// than the limit.
func testCustomerRace(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, _ := poolService(t, s)
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](1000), PerCustomer: ptr[int64](4)}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := int64(0)
	race(50, func(i int) {
		c, err := claim(t, svc, "p", "greedy", int64(1+i%2))
		if err == nil {
			mu.Lock()
			got += c.Quantity
			mu.Unlock()
		} else if !errors.Is(err, allot.ErrCustomerLimit) {
			t.Errorf("claim: %v", err)
		}
	})
	if got > 4 || got < 3 {
		t.Fatalf("the customer got %d units; the limit is 4 (and at least 3 must fit)", got)
	}
	held, _, _ := figures(t, svc, "p")
	if held != got {
		t.Fatalf("pool holds %d, the customer got %d", held, got)
	}
	auditOK(t, svc)
}

// testLateConfirmPastStaleHolds: A expires, C takes A's unit, C expires
// too but is not swept yet. A's late confirm must see C's unit as free.
func testLateConfirmPastStaleHolds(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, clk := poolService(t, s)
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](1), PerCustomer: ptr[int64](0)}); err != nil {
		t.Fatal(err)
	}
	mk := func(customer string) *allot.Claim {
		c, _, err := svc.ClaimCreate(ctx(t), allot.ClaimCreateParams{Pool: "p", Customer: customer, TTL: dur(time.Minute)})
		if err != nil {
			t.Fatalf("claim for %s: %v", customer, err)
		}
		return c
	}
	a := mk("a")
	clk.Add(2 * time.Minute)
	mk("c")
	clk.Add(2 * time.Minute)
	c, _, err := svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: a.ID, Action: allot.ActionConfirm, Reference: "pay_a"})
	if err != nil || c.Status != allot.ClaimConfirmed {
		t.Fatalf("late confirm while the only other hold is past expiry: %+v %v", c, err)
	}
	wantFigures(t, svc, "p", 0, 1, 0)
	auditOK(t, svc)
}

// testConfirmBatch: the batched confirm takes only live holds, each once;
// everything else is left to ClaimTransition's exact answer.
func testConfirmBatch(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, clk := poolService(t, s)
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](10), PerCustomer: ptr[int64](0)}); err != nil {
		t.Fatal(err)
	}
	short, _, err := svc.ClaimCreate(ctx(t), allot.ClaimCreateParams{Pool: "p", Customer: "s", TTL: dur(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := claim(t, svc, "p", "a", 2)
	b, _ := claim(t, svc, "p", "b", 1)
	clk.Add(2 * time.Minute) // short is now past expiry
	res, err := s.ClaimConfirmBatch(ctx(t), clk.Now(), []allot.ClaimConfirmRequest{
		{ID: a.ID, Reference: "r1"}, {ID: a.ID, Reference: "r2"}, {ID: short.ID}, {ID: "clm_unknown"}, {ID: b.ID, Reference: "r3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0] == nil || res[0].Status != allot.ClaimConfirmed || res[0].Reference != "r1" {
		t.Fatalf("first confirm of a: %+v", res[0])
	}
	if res[1] != nil || res[2] != nil || res[3] != nil {
		t.Fatalf("duplicate, expired and unknown must be left to the exact path: %+v %+v %+v", res[1], res[2], res[3])
	}
	if res[4] == nil || res[4].Reference != "r3" {
		t.Fatalf("confirm of b: %+v", res[4])
	}
	wantFigures(t, svc, "p", 0, 3, 7)
	// Through the service, the same cases get their exact answers.
	if _, _, err := svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: a.ID, Action: allot.ActionConfirm}); !errors.Is(err, allot.ErrInvalidState) {
		t.Fatalf("second confirm: %v", err)
	}
	if c, _, err := svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: short.ID, Action: allot.ActionConfirm}); err != nil || c.Status != allot.ClaimConfirmed {
		t.Fatalf("late confirm with units free: %+v %v", c, err)
	}
	auditOK(t, svc)
}

// testAuditSweeperBound: a hold past expiry is the sweeper's miss only once
// a sweep ran after it expired; with no sweep (servers stopped) it is not.
func testAuditSweeperBound(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, clk := poolService(t, s)
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](5)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.ClaimCreate(ctx(t), allot.ClaimCreateParams{Pool: "p", Customer: "a", TTL: dur(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	// The audit runs on the real clock: an hour later every hold is
	// long past expiry, and no sweep has run since.
	clk.Add(-2 * time.Hour)
	if _, _, err := svc.ClaimCreate(ctx(t), allot.ClaimCreateParams{Pool: "p", Customer: "b", TTL: dur(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	checks, err := s.Audit(ctx(t), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if !c.OK {
			t.Fatalf("with no sweep since, the audit must pass: %s: %s", c.Name, c.Detail)
		}
	}
	// A sweep before the holds expired: still no miss.
	if _, err := s.PoolExpire(ctx(t), clk.Now().Add(30*time.Second), "test-sweeper"); err != nil {
		t.Fatal(err)
	}
	auditOK(t, svc)
	// A sweep at 13:00 expires a and b. Then a hold that expired at 10:01
	// is still held: the last sweep should have expired it.
	if _, err := s.PoolExpire(ctx(t), clk.Now().Add(3*time.Hour), "test-sweeper"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.ClaimCreate(ctx(t), allot.ClaimCreateParams{Pool: "p", Customer: "c", TTL: dur(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	checks, err = s.Audit(ctx(t), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if strings.Contains(c.Name, "sweeper") {
			if c.OK || !strings.Contains(c.Detail, "customer=c") {
				t.Fatalf("a hold a sweep should have expired is not reported: %+v", c)
			}
			return
		}
	}
	t.Fatal("no sweeper check in the audit")
}

// testLimitSetAfterExpiry: a customer whose hold expired before the pool
// got a limit, then confirmed late, is counted: they can't claim past it.
func testLimitSetAfterExpiry(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, clk := poolService(t, s)
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](10), PerCustomer: ptr[int64](0)}); err != nil {
		t.Fatal(err)
	}
	c, _, err := svc.ClaimCreate(ctx(t), allot.ClaimCreateParams{Pool: "p", Customer: "carol", TTL: dur(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	if err := svc.SweepNow(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PoolPatch(ctx(t), "p", allot.PoolPatchParams{PerCustomer: ptr[int64](1)}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: c.ID, Action: allot.ActionConfirm}); err != nil || got.Status != allot.ClaimConfirmed {
		t.Fatalf("late confirm: %+v %v", got, err)
	}
	if _, _, err := svc.ClaimCreate(ctx(t), allot.ClaimCreateParams{Pool: "p", Customer: "carol"}); !errors.Is(err, allot.ErrCustomerLimit) {
		t.Fatalf("carol has 1 confirmed unit and a limit of 1, yet: %v", err)
	}
	auditOK(t, svc)
}

// testCancelAndReplays: a confirmed claim can be cancelled (a refund): its
// units go back exactly once, however many retries race, per-customer
// usage follows, and only confirmed claims can be. A retry that finds its
// transition made (same reference or reason) is a replay, key or no key;
// another reference or reason is refused.
func testCancelAndReplays(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	svc, clk := poolService(t, s)
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](10), PerCustomer: ptr[int64](3)}); err != nil {
		t.Fatal(err)
	}
	tr := func(id string, a allot.ClaimAction, ref, reason, key string) (*allot.Claim, bool, error) {
		return svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: id, Action: a, Reference: ref, Reason: reason, IdempotencyKey: key})
	}
	a, _ := claim(t, svc, "p", "alice", 2)
	if _, replayed, err := tr(a.ID, allot.ActionConfirm, "pay_1", "", ""); err != nil || replayed {
		t.Fatalf("confirm: %v %v", replayed, err)
	}
	// Key-less retries of the confirm.
	if c, replayed, err := tr(a.ID, allot.ActionConfirm, "pay_1", "", ""); err != nil || !replayed || c.Status != allot.ClaimConfirmed {
		t.Fatalf("confirm again with the same reference: %+v %v %v, want a replay", c, replayed, err)
	}
	if _, _, err := tr(a.ID, allot.ActionConfirm, "pay_2", "", ""); !errors.Is(err, allot.ErrInvalidState) {
		t.Fatalf("confirm again with another reference: %v", err)
	}
	wantFigures(t, svc, "p", 0, 2, 8)
	if _, err := claim(t, svc, "p", "alice", 2); !errors.Is(err, allot.ErrCustomerLimit) {
		t.Fatalf("alice past her limit: %v", err)
	}

	// Only confirmed claims can be cancelled, and only with a reason.
	held, _ := claim(t, svc, "p", "bob", 1)
	released, _ := claim(t, svc, "p", "carol", 1)
	if _, _, err := tr(released.ID, allot.ActionRelease, "", "", ""); err != nil {
		t.Fatal(err)
	}
	if c, replayed, err := tr(released.ID, allot.ActionRelease, "", "", ""); err != nil || !replayed || c.Status != allot.ClaimReleased {
		t.Fatalf("release again: %+v %v %v, want a replay", c, replayed, err)
	}
	expired, _ := claim(t, svc, "p", "erin", 1)
	clk.Add(11 * time.Minute) // past hold_ttl: erin's and bob's holds expire
	for name, id := range map[string]string{"held (now expired)": held.ID, "released": released.ID, "expired": expired.ID} {
		if _, _, err := tr(id, allot.ActionCancel, "", "refund", ""); !errors.Is(err, allot.ErrInvalidState) {
			t.Fatalf("cancel of a %s claim: %v", name, err)
		}
	}
	fresh, _ := claim(t, svc, "p", "frank", 1)
	if _, _, err := tr(fresh.ID, allot.ActionCancel, "", "refund", ""); !errors.Is(err, allot.ErrInvalidState) {
		t.Fatalf("cancel of a held claim: %v", err)
	}
	if _, _, err := tr(a.ID, allot.ActionCancel, "", "", ""); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("cancel without a reason: %v", err)
	}
	wantFigures(t, svc, "p", 1, 2, 7)

	// Racing retries of one refund: the units come back once.
	const racers = 12
	var mu sync.Mutex
	done, replays := 0, 0
	race(racers, func(i int) {
		c, replayed, err := tr(a.ID, allot.ActionCancel, "", "refunded: order 8812", "")
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			t.Errorf("cancel: %v", err)
		case c.Status != allot.ClaimCancelled || c.Reason != "refunded: order 8812":
			t.Errorf("cancelled claim: %+v", c)
		case replayed:
			replays++
		default:
			done++
		}
	})
	if done != 1 || replays != racers-1 {
		t.Fatalf("%d cancels done and %d replays of %d racing retries; want 1 and %d", done, replays, racers, racers-1)
	}
	wantFigures(t, svc, "p", 1, 0, 9)
	if _, _, err := tr(a.ID, allot.ActionCancel, "", "another reason", ""); !errors.Is(err, allot.ErrInvalidState) {
		t.Fatalf("cancel again with another reason: %v", err)
	}
	// A key on a later retry still replays, and stores that outcome.
	if c, replayed, err := tr(a.ID, allot.ActionCancel, "", "refunded: order 8812", "k1"); err != nil || !replayed || c.Status != allot.ClaimCancelled {
		t.Fatalf("keyed retry of the cancel: %+v %v %v", c, replayed, err)
	}
	// Alice's usage followed the refund: she may take 3 again.
	if c, err := claim(t, svc, "p", "alice", 3); err != nil || c.Status != allot.ClaimHeld {
		t.Fatalf("alice after her refund: %+v %v", c, err)
	}
	wantFigures(t, svc, "p", 4, 0, 6)
	got, err := svc.ClaimGet(ctx(t), a.ID)
	if err != nil || got.Status != allot.ClaimCancelled || got.Reason != "refunded: order 8812" {
		t.Fatalf("get the cancelled claim: %+v %v", got, err)
	}
	auditOK(t, svc)
}
