package client_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/client"
	"github.com/allot/allot/internal/testkit"
)

func dur(d time.Duration) *allot.Duration { v := allot.Duration(d); return &v }

func TestPoolRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	admin, cl := s.client(t, adminKey), s.client(t, clientKey)

	opens := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	closes := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	st, err := admin.PoolCreate(ctx, allot.PoolCreateParams{
		Name: "tickets", Capacity: ptr(int64(10)), PerCustomer: ptr(int64(3)), HoldTTL: dur(5 * time.Minute),
		MaxHoldTTL: dur(time.Hour), MaxQuantity: ptr(int64(4)), State: allot.PoolOpen, OpensAt: &opens, ClosesAt: &closes,
	})
	if err != nil {
		t.Fatalf("PoolCreate: %v", err)
	}
	if st.Name != "tickets" || st.Capacity != 10 || st.PerCustomer != 3 || time.Duration(st.HoldTTL) != 5*time.Minute ||
		time.Duration(st.MaxHoldTTL) != time.Hour || st.MaxQuantity != 4 || st.State != allot.PoolOpen ||
		st.OpensAt == nil || !st.OpensAt.Equal(opens) || st.ClosesAt == nil || !st.ClosesAt.Equal(closes) || st.Available != 10 {
		t.Fatalf("PoolCreate: %+v", st)
	}
	if _, err := admin.PoolCreate(ctx, allot.PoolCreateParams{Name: "aaa", Capacity: ptr(int64(1))}); err != nil {
		t.Fatal(err)
	}
	got, err := cl.PoolGet(ctx, "tickets")
	if err != nil || got.Name != "tickets" || got.Capacity != 10 {
		t.Fatalf("PoolGet: %+v, %v", got, err)
	}
	list, err := cl.PoolList(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "aaa" || list[1].Name != "tickets" {
		t.Fatalf("PoolList: %+v, %v", list, err)
	}
	st, err = admin.PoolPatch(ctx, "tickets", allot.PoolPatchParams{Capacity: ptr(int64(20)), State: allot.PoolOpen, HoldTTL: dur(10 * time.Minute)})
	if err != nil || st.Capacity != 20 || time.Duration(st.HoldTTL) != 10*time.Minute || st.PerCustomer != 3 {
		t.Fatalf("PoolPatch: %+v, %v", st, err)
	}

	a, replayed, err := cl.ClaimCreate(ctx, allot.ClaimCreateParams{Pool: "tickets", Customer: "alice", Quantity: 2, IdempotencyKey: "order-1"})
	if err != nil || replayed || a.Replayed {
		t.Fatalf("ClaimCreate: %+v, %v, %v", a, replayed, err)
	}
	if a.Pool != "tickets" || a.Customer != "alice" || a.Quantity != 2 || a.Status != allot.ClaimHeld || a.ExpiresAt.Sub(a.CreatedAt) != 10*time.Minute {
		t.Fatalf("ClaimCreate: %+v", a)
	}
	again, replayed, err := cl.ClaimCreate(ctx, allot.ClaimCreateParams{Pool: "tickets", Customer: "alice", Quantity: 2, IdempotencyKey: "order-1"})
	if err != nil || !replayed || !again.Replayed || again.ID != a.ID {
		t.Fatalf("ClaimCreate replay: %+v, %v, %v", again, replayed, err)
	}
	b, _, err := cl.ClaimCreate(ctx, allot.ClaimCreateParams{Pool: "tickets", Customer: "bob", TTL: dur(time.Minute)})
	if err != nil || b.Quantity != 1 || b.ExpiresAt.Sub(b.CreatedAt) != time.Minute {
		t.Fatalf("ClaimCreate with ttl: %+v, %v", b, err)
	}
	c, _, err := cl.ClaimCreate(ctx, allot.ClaimCreateParams{Pool: "tickets", Customer: "carol", Quantity: 3})
	if err != nil {
		t.Fatal(err)
	}

	g, err := cl.ClaimGet(ctx, a.ID)
	if err != nil || g.ID != a.ID || g.Status != allot.ClaimHeld || g.Replayed {
		t.Fatalf("ClaimGet: %+v, %v", g, err)
	}
	conf, err := cl.ClaimConfirm(ctx, a.ID, "pay_1", "confirm-1")
	if err != nil || conf.Status != allot.ClaimConfirmed || conf.Reference != "pay_1" || conf.Replayed {
		t.Fatalf("ClaimConfirm: %+v, %v", conf, err)
	}
	conf, err = cl.ClaimConfirm(ctx, a.ID, "pay_1", "confirm-1")
	if err != nil || !conf.Replayed || conf.Status != allot.ClaimConfirmed {
		t.Fatalf("ClaimConfirm replay: %+v, %v", conf, err)
	}
	ext, err := cl.ClaimExtend(ctx, b.ID, 20*time.Minute, "")
	if err != nil || ext.Status != allot.ClaimHeld || !ext.ExpiresAt.After(b.ExpiresAt.Add(18*time.Minute)) {
		t.Fatalf("ClaimExtend: %+v, %v (was %s)", ext, err, b.ExpiresAt)
	}
	ext, err = cl.ClaimExtend(ctx, b.ID, 25*time.Minute, "ext-1")
	if err != nil || ext.Replayed {
		t.Fatalf("ClaimExtend with key: %+v, %v", ext, err)
	}
	if ext, err = cl.ClaimExtend(ctx, b.ID, 25*time.Minute, "ext-1"); err != nil || !ext.Replayed {
		t.Fatalf("ClaimExtend replay: %+v, %v", ext, err)
	}
	rel, err := cl.ClaimRelease(ctx, b.ID, "rel-1")
	if err != nil || rel.Status != allot.ClaimReleased || rel.Replayed {
		t.Fatalf("ClaimRelease: %+v, %v", rel, err)
	}
	if rel, err = cl.ClaimRelease(ctx, b.ID, "rel-1"); err != nil || !rel.Replayed || rel.Status != allot.ClaimReleased {
		t.Fatalf("ClaimRelease replay: %+v, %v", rel, err)
	}
	if _, err := cl.ClaimRelease(ctx, c.ID, ""); err != nil {
		t.Fatalf("ClaimRelease without key: %v", err)
	}

	var ids []string
	after := ""
	for range 10 {
		page, err := cl.ClaimList(ctx, allot.ClaimListParams{Pool: "tickets", After: after, Limit: 2})
		if err != nil {
			t.Fatalf("ClaimList: %v", err)
		}
		for _, c := range page.Claims {
			ids = append(ids, c.ID)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if !slices.Equal(ids, []string{a.ID, b.ID, c.ID}) {
		t.Fatalf("ClaimList pages: %v", ids)
	}
	page, err := cl.ClaimList(ctx, allot.ClaimListParams{Pool: "tickets", Status: allot.ClaimReleased, Customer: "carol"})
	if err != nil || len(page.Claims) != 1 || page.Claims[0].ID != c.ID || page.Next != "" {
		t.Fatalf("ClaimList filtered: %+v, %v", page, err)
	}
	page, err = cl.ClaimList(ctx, allot.ClaimListParams{Pool: "aaa"})
	if err != nil || page.Claims == nil || len(page.Claims) != 0 {
		t.Fatalf("ClaimList empty: %+v, %v", page, err)
	}

	st, err = cl.PoolGet(ctx, "tickets")
	if err != nil || st.Held != 0 || st.Confirmed != 2 || st.Available != 18 {
		t.Fatalf("figures: %+v, %v", st, err)
	}
	ok, checks, err := admin.Audit(ctx)
	if err != nil || !ok || len(checks) == 0 {
		t.Fatalf("Audit: %v %+v %v", ok, checks, err)
	}
	for _, c := range checks {
		if !c.OK || c.Name == "" {
			t.Fatalf("Audit check %+v", c)
		}
	}
}

// TestPoolSentinels checks that errors.Is with the pool sentinels works
// across the wire, and that problems carry their figures.
func TestPoolSentinels(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(time.Now().UTC())
	s := newServerWith(t, nil, func(c *allot.Config) { c.Now = clk.Now })
	admin, cl := s.client(t, adminKey), s.client(t, clientKey)

	check := func(name string, err, want error) *client.Problem {
		t.Helper()
		p := wantProblem(t, name, err, want)
		if p.Unwrap() != want {
			t.Fatalf("%s: unwraps to %v, want exactly %v", name, p.Unwrap(), want)
		}
		return p
	}
	create := func(p allot.PoolCreateParams) {
		t.Helper()
		if _, err := admin.PoolCreate(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(pool, customer string, qty int64, ttl *allot.Duration) (*allot.Claim, error) {
		c, _, err := cl.ClaimCreate(ctx, allot.ClaimCreateParams{Pool: pool, Customer: customer, Quantity: qty, TTL: ttl})
		return c, err
	}

	create(allot.PoolCreateParams{Name: "three", Capacity: ptr(int64(3)), PerCustomer: ptr(int64(2))})
	if _, err := claim("three", "alice", 2, nil); err != nil {
		t.Fatal(err)
	}
	_, err := claim("three", "alice", 1, nil)
	if p := check("customer limit", err, allot.ErrCustomerLimit); p.Status != 409 || p.Limit != 2 || p.Used != 2 || p.Requested != 1 {
		t.Fatalf("customer limit: %+v", p)
	}
	_, err = claim("three", "bob", 2, nil)
	if p := check("sold out", err, allot.ErrSoldOut); p.Status != 409 || p.Available != 1 || p.Requested != 2 {
		t.Fatalf("sold out: %+v", p)
	}
	_, err = claim("three", "bob", 11, nil)
	if p := check("quantity above max", err, allot.ErrInvalid); p.Field != "quantity" {
		t.Fatalf("quantity: %+v", p)
	}
	_, err = claim("three", "bob", -1, nil)
	if p := check("negative quantity", err, allot.ErrInvalid); p.Field != "quantity" {
		t.Fatalf("negative quantity: %+v", p)
	}
	_, err = claim("three", "", 1, nil)
	if p := check("no customer", err, allot.ErrInvalid); p.Field != "customer" {
		t.Fatalf("no customer: %+v", p)
	}
	_, err = claim("nope", "bob", 1, nil)
	check("unknown pool", err, allot.ErrNotFound)
	_, err = cl.ClaimGet(ctx, "clm_nope")
	check("unknown claim", err, allot.ErrNotFound)
	_, err = cl.ClaimConfirm(ctx, "clm_nope", "", "")
	check("confirm unknown claim", err, allot.ErrNotFound)
	_, err = admin.PoolCreate(ctx, allot.PoolCreateParams{Name: "three", Capacity: ptr(int64(1))})
	check("already exists", err, allot.ErrAlreadyExists)
	_, err = admin.PoolCreate(ctx, allot.PoolCreateParams{Name: "nocap"})
	if p := check("no capacity", err, allot.ErrInvalid); p.Field != "capacity" {
		t.Fatalf("no capacity: %+v", p)
	}

	create(allot.PoolCreateParams{Name: "paused", Capacity: ptr(int64(3)), State: allot.PoolPaused})
	_, err = claim("paused", "bob", 1, nil)
	check("pool closed", err, allot.ErrPoolClosed)

	// Capacity below what is taken.
	c, err := claim("three", "bob", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ClaimConfirm(ctx, c.ID, "pay", ""); err != nil {
		t.Fatal(err)
	}
	_, err = admin.PoolPatch(ctx, "three", allot.PoolPatchParams{Capacity: ptr(int64(1))})
	if p := check("capacity", err, allot.ErrInvalidState); p.Field != "capacity" || p.Capacity != 3 || p.Held != 2 || p.Confirmed != 1 || p.Requested != 1 {
		t.Fatalf("capacity: %+v", p)
	}
	// Transitions the claim's state does not allow.
	_, err = cl.ClaimRelease(ctx, c.ID, "")
	check("release confirmed", err, allot.ErrInvalidState)
	_, err = cl.ClaimConfirm(ctx, c.ID, "other", "k")
	check("confirm confirmed", err, allot.ErrInvalidState)
	_, err = cl.ClaimExtend(ctx, c.ID, time.Minute, "")
	check("extend confirmed", err, allot.ErrInvalidState)
	_, err = cl.ClaimExtend(ctx, c.ID, 0, "")
	if p := check("extend 0", err, allot.ErrInvalid); p.Field != "ttl" {
		t.Fatalf("extend 0: %+v", p)
	}

	// Late confirm after the units went to someone else: refund.
	create(allot.PoolCreateParams{Name: "one", Capacity: ptr(int64(1)), PerCustomer: ptr(int64(0))})
	late, err := claim("one", "slow", 1, dur(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	if err := s.svc.SweepNow(ctx); err != nil {
		t.Fatal(err)
	}
	if g, err := cl.ClaimGet(ctx, late.ID); err != nil || g.Status != allot.ClaimExpired {
		t.Fatalf("expired hold: %+v, %v", g, err)
	}
	if _, err := claim("one", "fast", 1, nil); err != nil {
		t.Fatal(err)
	}
	_, err = cl.ClaimConfirm(ctx, late.ID, "pay_late", "")
	check("claim expired", err, allot.ErrClaimExpired)

	// Idempotency and roles.
	create(allot.PoolCreateParams{Name: "keys", Capacity: ptr(int64(10))})
	if _, _, err := cl.ClaimCreate(ctx, allot.ClaimCreateParams{Pool: "keys", Customer: "k", IdempotencyKey: "key"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = cl.ClaimCreate(ctx, allot.ClaimCreateParams{Pool: "keys", Customer: "k", Quantity: 2, IdempotencyKey: "key"})
	check("mismatch", err, allot.ErrIdempotencyMismatch)
	_, err = cl.PoolCreate(ctx, allot.PoolCreateParams{Name: "x", Capacity: ptr(int64(1))})
	check("forbidden create", err, allot.ErrForbidden)
	_, err = cl.PoolPatch(ctx, "three", allot.PoolPatchParams{Capacity: ptr(int64(10))})
	check("forbidden patch", err, allot.ErrForbidden)
	_, _, err = cl.Audit(ctx)
	check("forbidden audit", err, allot.ErrForbidden)
	_, err = s.client(t, "").PoolList(ctx)
	check("unauthorized", err, allot.ErrUnauthorized)

	for code, want := range map[string]error{
		"sold_out": allot.ErrSoldOut, "customer_limit": allot.ErrCustomerLimit, "pool_closed": allot.ErrPoolClosed,
		"claim_expired": allot.ErrClaimExpired, "invalid_state": allot.ErrInvalidState,
	} {
		if p := (&client.Problem{Status: 409, Code: code}); !errors.Is(p, want) {
			t.Errorf("%s does not unwrap to %v", code, want)
		}
	}
}

func TestPoolLocalValidation(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	cl := s.client(t, adminKey)
	if _, err := cl.PoolGet(ctx, ""); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("empty pool: %v", err)
	}
	if _, _, err := cl.ClaimCreate(ctx, allot.ClaimCreateParams{Customer: "a"}); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("claim without pool: %v", err)
	}
	if _, err := cl.ClaimList(ctx, allot.ClaimListParams{}); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("list without pool: %v", err)
	}
	for name, call := range map[string]func() error{
		"get":     func() error { _, err := cl.ClaimGet(ctx, ""); return err },
		"confirm": func() error { _, err := cl.ClaimConfirm(ctx, "", "", ""); return err },
		"release": func() error { _, err := cl.ClaimRelease(ctx, "", ""); return err },
		"extend":  func() error { _, err := cl.ClaimExtend(ctx, "", time.Minute, ""); return err },
	} {
		if err := call(); !errors.Is(err, allot.ErrInvalid) {
			t.Errorf("%s without id: %v", name, err)
		}
	}
	// Names and ids reach the server whole: "." and ".." are not cleaned
	// into other routes.
	for _, id := range []string{".", "..", "../pools", "a/b", "clm_x?y"} {
		if _, err := cl.ClaimGet(ctx, id); !errors.Is(err, allot.ErrNotFound) {
			t.Errorf("ClaimGet(%q): %v", id, err)
		}
		if _, err := cl.ClaimRelease(ctx, id, ""); !errors.Is(err, allot.ErrNotFound) {
			t.Errorf("ClaimRelease(%q): %v", id, err)
		}
	}
	for _, name := range []string{".", "..", "a/b"} {
		if _, err := cl.PoolGet(ctx, name); !errors.Is(err, allot.ErrNotFound) {
			t.Errorf("PoolGet(%q): %v", name, err)
		}
	}
}
