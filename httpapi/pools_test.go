package httpapi

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testkit"
)

// newClockEnv is newEnv with a clock the test moves.
func newClockEnv(t *testing.T) (*env, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(time.Now().UTC().Truncate(time.Second))
	e := newEnvWith(t, nil, func(c *allot.Config) { c.Now = clk.Now })
	return e, clk
}

// pool creates a pool from a JSON body.
func (e *env) pool(body string) allot.PoolState {
	e.t.Helper()
	return call[allot.PoolState](e, http.StatusCreated, "POST", "/v1/pools", body)
}

// poolState reads a pool.
func (e *env) poolState(name string) allot.PoolState {
	e.t.Helper()
	return call[allot.PoolState](e, http.StatusOK, "GET", "/v1/pools/"+name, "")
}

// claim holds units and returns the new claim.
func (e *env) claim(pool, body string, hdr ...string) allot.Claim {
	e.t.Helper()
	return call[allot.Claim](e, http.StatusCreated, "POST", "/v1/pools/"+pool+"/claims", body, hdr...)
}

// wantFigures checks a pool's held, confirmed and available units.
func (e *env) wantFigures(pool string, held, confirmed, available int64) {
	e.t.Helper()
	st := e.poolState(pool)
	if st.Held != held || st.Confirmed != confirmed || st.Available != available {
		e.t.Fatalf("pool %s: held/confirmed/available = %d/%d/%d, want %d/%d/%d",
			pool, st.Held, st.Confirmed, st.Available, held, confirmed, available)
	}
}

func TestPoolLifecycle(t *testing.T) {
	e := newEnv(t, nil)

	r := e.do("POST", "/v1/pools", `{"name":"tickets","capacity":10}`)
	var st allot.PoolState
	e.ok(r, http.StatusCreated, &st)
	if st.Name != "tickets" || st.Capacity != 10 || st.PerCustomer != 1 || time.Duration(st.HoldTTL) != 10*time.Minute ||
		time.Duration(st.MaxHoldTTL) != 30*time.Minute || st.MaxQuantity != 10 || st.State != allot.PoolOpen ||
		st.Held != 0 || st.Confirmed != 0 || st.Available != 10 || st.OpensAt != nil || st.ClosesAt != nil {
		t.Fatalf("created with defaults: %+v", st)
	}
	if loc := r.header.Get("Location"); loc != "/v1/pools/tickets" {
		t.Fatalf("Location %q", loc)
	}
	// Durations go out as text.
	if !strings.Contains(string(r.body), `"hold_ttl":"10m0s"`) {
		t.Fatalf("body %s", r.body)
	}

	opens := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	st = e.pool(`{"name":"merch","capacity":100,"per_customer":0,"hold_ttl":"90s","max_hold_ttl":"1h","max_quantity":5,"state":"open",
		"opens_at":"2026-01-01T10:00:00+01:00","closes_at":"2099-01-01T00:00:00Z"}`)
	if st.PerCustomer != 0 || time.Duration(st.HoldTTL) != 90*time.Second || time.Duration(st.MaxHoldTTL) != time.Hour ||
		st.MaxQuantity != 5 || st.OpensAt == nil || !st.OpensAt.Equal(opens) || st.ClosesAt == nil {
		t.Fatalf("created with settings: %+v", st)
	}

	var list struct {
		Pools []allot.PoolState `json:"pools"`
	}
	e.ok(e.do("GET", "/v1/pools", ""), http.StatusOK, &list)
	if len(list.Pools) != 2 || list.Pools[0].Name != "merch" || list.Pools[1].Name != "tickets" {
		t.Fatalf("list: %+v", list)
	}

	e.ok(e.do("PATCH", "/v1/pools/tickets", `{"per_customer":3,"max_quantity":3,"hold_ttl":"5m"}`), http.StatusOK, &st)
	if st.PerCustomer != 3 || st.MaxQuantity != 3 || time.Duration(st.HoldTTL) != 5*time.Minute || st.Capacity != 10 {
		t.Fatalf("patched: %+v", st)
	}

	// Claim: 201, Location, held until created_at + hold_ttl.
	r = e.do("POST", "/v1/pools/tickets/claims", `{"customer":"alice","quantity":2}`)
	var a allot.Claim
	e.ok(r, http.StatusCreated, &a)
	if !strings.HasPrefix(a.ID, "clm_") || a.Pool != "tickets" || a.Customer != "alice" || a.Quantity != 2 ||
		a.Status != allot.ClaimHeld || a.ExpiresAt.Sub(a.CreatedAt) != 5*time.Minute || a.Reference != "" {
		t.Fatalf("claim: %+v", a)
	}
	if loc := r.header.Get("Location"); loc != "/v1/claims/"+a.ID {
		t.Fatalf("Location %q", loc)
	}
	if r.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("new claim marked replayed")
	}
	b := e.claim("tickets", `{"customer":"bob","ttl":"1m"}`) // quantity defaults to 1
	if b.Quantity != 1 || b.ExpiresAt.Sub(b.CreatedAt) != time.Minute {
		t.Fatalf("claim with ttl: %+v", b)
	}
	c := e.claim("tickets", ` { "ttl" : "2m" , "quantity" : 3 , "customer" : "carol" } `)
	d := e.claim("tickets", `{"customer":"dave"}`)
	e.wantFigures("tickets", 7, 0, 3)

	var got allot.Claim
	e.ok(e.do("GET", "/v1/claims/"+a.ID, ""), http.StatusOK, &got)
	if got.ID != a.ID || got.Status != allot.ClaimHeld || !got.ExpiresAt.Equal(a.ExpiresAt) {
		t.Fatalf("get: %+v", got)
	}

	// Confirm with a reference, release, extend.
	e.ok(e.do("POST", "/v1/claims/"+a.ID+"/confirm", `{"reference":"pay_123"}`), http.StatusOK, &got)
	if got.Status != allot.ClaimConfirmed || got.Reference != "pay_123" {
		t.Fatalf("confirm: %+v", got)
	}
	e.ok(e.do("POST", "/v1/claims/"+b.ID+"/release", ""), http.StatusOK, &got)
	if got.Status != allot.ClaimReleased {
		t.Fatalf("release: %+v", got)
	}
	e.ok(e.do("POST", "/v1/claims/"+d.ID+"/release", "{}"), http.StatusOK, &got)
	e.ok(e.do("POST", "/v1/claims/"+c.ID+"/extend", `{"ttl":"20m"}`), http.StatusOK, &got)
	if got.Status != allot.ClaimHeld || !got.ExpiresAt.After(c.ExpiresAt.Add(17*time.Minute)) {
		t.Fatalf("extend: %+v (was %s)", got, c.ExpiresAt)
	}
	got = allot.Claim{}
	e.ok(e.do("POST", "/v1/claims/"+c.ID+"/confirm", ""), http.StatusOK, &got)
	if got.Status != allot.ClaimConfirmed || got.Reference != "" {
		t.Fatalf("confirm without body: %+v", got)
	}
	e.wantFigures("tickets", 0, 5, 5)

	// Pages of two, filters.
	var all []allot.Claim
	after := ""
	for range 10 {
		var page struct {
			Claims []allot.Claim `json:"claims"`
			Next   string        `json:"next"`
		}
		e.ok(e.do("GET", "/v1/pools/tickets/claims?limit=2&after="+after, ""), http.StatusOK, &page)
		all = append(all, page.Claims...)
		if page.Next == "" {
			break
		}
		if len(page.Claims) != 2 {
			t.Fatalf("page of %d with a next cursor", len(page.Claims))
		}
		after = page.Next
	}
	var ids []string
	for _, c := range all {
		ids = append(ids, c.ID)
	}
	if !slices.Equal(ids, []string{a.ID, b.ID, c.ID, d.ID}) {
		t.Fatalf("claims in creation order: %v, want %v", ids, []string{a.ID, b.ID, c.ID, d.ID})
	}
	var page allot.ClaimPage
	e.ok(e.do("GET", "/v1/pools/tickets/claims?status=released", ""), http.StatusOK, &page)
	if len(page.Claims) != 2 || page.Claims[0].ID != b.ID || page.Claims[1].ID != d.ID || page.Next != "" {
		t.Fatalf("status filter: %+v", page)
	}
	e.ok(e.do("GET", "/v1/pools/tickets/claims?customer=carol&status=confirmed", ""), http.StatusOK, &page)
	if len(page.Claims) != 1 || page.Claims[0].ID != c.ID {
		t.Fatalf("customer filter: %+v", page)
	}
	r = e.do("GET", "/v1/pools/merch/claims", "")
	e.ok(r, http.StatusOK, nil)
	if string(r.body) != `{"claims":[],"next":""}`+"\n" {
		t.Fatalf("empty page: %s", r.body)
	}

	var rep auditReport
	e.ok(e.do("GET", "/v1/audit", ""), http.StatusOK, &rep)
	if !rep.OK || len(rep.Checks) == 0 {
		t.Fatalf("audit: %+v", rep)
	}
	for _, c := range rep.Checks {
		if !c.OK || c.Name == "" || c.Detail == "" {
			t.Fatalf("audit check: %+v", c)
		}
	}
}

// TestPoolErrorCodes checks every pool problem code over HTTP, with the
// figures each carries.
func TestPoolErrorCodes(t *testing.T) {
	e, clk := newClockEnv(t)

	t.Run("sold_out", func(t *testing.T) {
		e.pool(`{"name":"three","capacity":3,"per_customer":0}`)
		e.claim("three", `{"customer":"a","quantity":2}`)
		p := e.problem(e.do("POST", "/v1/pools/three/claims", `{"customer":"b","quantity":2}`), 409, "sold_out")
		if p.Available == nil || *p.Available != 1 || p.Requested == nil || *p.Requested != 2 || !strings.Contains(p.Detail, "1 available") {
			t.Fatalf("sold_out figures: %+v", p)
		}
		e.claim("three", `{"customer":"b"}`)
		p = e.problem(e.do("POST", "/v1/pools/three/claims", `{"customer":"c"}`), 409, "sold_out")
		if p.Available == nil || *p.Available != 0 {
			t.Fatalf("available 0 must be present: %+v", p)
		}
		e.wantFigures("three", 3, 0, 0)
	})
	t.Run("customer_limit", func(t *testing.T) {
		e.pool(`{"name":"limited","capacity":100,"per_customer":2}`)
		e.claim("limited", `{"customer":"alice","quantity":2}`)
		p := e.problem(e.do("POST", "/v1/pools/limited/claims", `{"customer":"alice"}`), 409, "customer_limit")
		if p.Limit == nil || *p.Limit != 2 || p.Used == nil || *p.Used != 2 || p.Requested == nil || *p.Requested != 1 {
			t.Fatalf("customer_limit figures: %+v", p)
		}
		e.wantFigures("limited", 2, 0, 98)
	})
	t.Run("pool_closed", func(t *testing.T) {
		e.pool(`{"name":"paused","capacity":5,"state":"paused"}`)
		e.problem(e.do("POST", "/v1/pools/paused/claims", `{"customer":"a"}`), 409, "pool_closed")
		future := clk.Now().Add(time.Hour).Format(time.RFC3339)
		e.pool(`{"name":"later","capacity":5,"opens_at":"` + future + `"}`)
		e.problem(e.do("POST", "/v1/pools/later/claims", `{"customer":"a"}`), 409, "pool_closed")
		past := clk.Now().Add(-time.Hour).Format(time.RFC3339)
		e.pool(`{"name":"over","capacity":5,"opens_at":"2020-01-01T00:00:00Z","closes_at":"` + past + `"}`)
		e.problem(e.do("POST", "/v1/pools/over/claims", `{"customer":"a"}`), 409, "pool_closed")
		// Opening it lets claims in.
		e.ok(e.do("PATCH", "/v1/pools/paused", `{"state":"open"}`), 200, nil)
		e.claim("paused", `{"customer":"a"}`)
	})
	t.Run("claim_expired", func(t *testing.T) {
		e.pool(`{"name":"one","capacity":1,"per_customer":0}`)
		late := e.claim("one", `{"customer":"slow","ttl":"1m"}`)
		clk.Add(2 * time.Minute) // the hold expires ...
		var got allot.Claim
		e.ok(e.do("GET", "/v1/claims/"+late.ID, ""), 200, &got)
		if got.Status != allot.ClaimExpired {
			t.Fatalf("hold past expiry reads %s", got.Status)
		}
		e.wantFigures("one", 0, 0, 1)
		// The sweeper would give the unit back within SweepBound; the
		// clock is fake, so sweep now.
		if err := e.svc.SweepNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.claim("one", `{"customer":"fast"}`) // ... someone else takes the unit ...
		p := e.problem(e.do("POST", "/v1/claims/"+late.ID+"/confirm", `{"reference":"pay_1"}`), 409, "claim_expired")
		if !strings.Contains(p.Detail, "refund") {
			t.Fatalf("detail %q", p.Detail)
		}
		e.wantFigures("one", 1, 0, 0)

		// A late confirm whose units are still free succeeds.
		e.pool(`{"name":"spare","capacity":1}`)
		c := e.claim("spare", `{"customer":"slow","ttl":"1m"}`)
		clk.Add(2 * time.Minute)
		e.ok(e.do("POST", "/v1/claims/"+c.ID+"/confirm", ""), 200, &got)
		if got.Status != allot.ClaimConfirmed {
			t.Fatalf("late confirm: %+v", got)
		}
		e.wantFigures("spare", 0, 1, 0)
	})
	t.Run("invalid_state", func(t *testing.T) {
		e.pool(`{"name":"states","capacity":10,"per_customer":0}`)
		released := e.claim("states", `{"customer":"a"}`)
		e.ok(e.do("POST", "/v1/claims/"+released.ID+"/release", ""), 200, nil)
		p := e.problem(e.do("POST", "/v1/claims/"+released.ID+"/confirm", ""), 409, "invalid_state")
		if !strings.Contains(p.Detail, "released") {
			t.Fatalf("detail %q", p.Detail)
		}
		// Releasing again is a replay of the release (no key needed).
		r := e.do("POST", "/v1/claims/"+released.ID+"/release", "")
		e.ok(r, 200, nil)
		if r.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("release of a released claim is a replay: %v", r.header)
		}
		e.problem(e.do("POST", "/v1/claims/"+released.ID+"/extend", `{"ttl":"1m"}`), 409, "invalid_state")
		e.problem(e.do("POST", "/v1/claims/"+released.ID+"/cancel", `{"reason":"refund"}`), 409, "invalid_state")
		confirmed := e.claim("states", `{"customer":"b"}`)
		e.ok(e.do("POST", "/v1/claims/"+confirmed.ID+"/confirm", ""), 200, nil)
		// A confirm retried without a key, same reference: a replay;
		// another reference: invalid_state.
		r = e.do("POST", "/v1/claims/"+confirmed.ID+"/confirm", "")
		e.ok(r, 200, nil)
		if r.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("confirm of a confirmed claim, same reference, is a replay: %v", r.header)
		}
		e.problem(e.do("POST", "/v1/claims/"+confirmed.ID+"/confirm", `{"reference":"other"}`), 409, "invalid_state")
		e.problem(e.do("POST", "/v1/claims/"+confirmed.ID+"/release", ""), 409, "invalid_state")
		expired := e.claim("states", `{"customer":"c","ttl":"1m"}`)
		clk.Add(2 * time.Minute)
		e.problem(e.do("POST", "/v1/claims/"+expired.ID+"/release", ""), 409, "invalid_state")
		e.problem(e.do("POST", "/v1/claims/"+expired.ID+"/extend", `{"ttl":"1m"}`), 409, "invalid_state")
		e.wantFigures("states", 0, 1, 9)
	})
	t.Run("capacity below taken", func(t *testing.T) {
		e.pool(`{"name":"shrink","capacity":10,"per_customer":0}`)
		c := e.claim("shrink", `{"customer":"a","quantity":3}`)
		e.ok(e.do("POST", "/v1/claims/"+c.ID+"/confirm", ""), 200, nil)
		e.claim("shrink", `{"customer":"b","quantity":2}`)
		p := e.problem(e.do("PATCH", "/v1/pools/shrink", `{"capacity":4}`), 409, "invalid_state")
		if p.Field != "capacity" || p.Capacity == nil || *p.Capacity != 10 || p.Held == nil || *p.Held != 2 ||
			p.Confirmed == nil || *p.Confirmed != 3 || p.Requested == nil || *p.Requested != 4 {
			t.Fatalf("capacity figures: %+v", p)
		}
		st := e.poolState("shrink")
		if st.Capacity != 10 {
			t.Fatalf("capacity changed to %d", st.Capacity)
		}
		// Exactly what is taken is fine.
		e.ok(e.do("PATCH", "/v1/pools/shrink", `{"capacity":5}`), 200, &st)
		if st.Capacity != 5 || st.Available != 0 {
			t.Fatalf("capacity 5: %+v", st)
		}
	})
	t.Run("per_customer below usage", func(t *testing.T) {
		e.pool(`{"name":"percust","capacity":10,"per_customer":3}`)
		e.claim("percust", `{"customer":"a","quantity":3}`)
		e.problem(e.do("PATCH", "/v1/pools/percust", `{"per_customer":2}`), 409, "invalid_state")
	})
	t.Run("mapping", func(t *testing.T) {
		for err, code := range map[error]string{
			allot.ErrSoldOut: "sold_out",
			fmt.Errorf("x: %w", allot.ErrCustomerLimit): "customer_limit",
			allot.ErrPoolClosed:                         "pool_closed",
			allot.ErrClaimExpired:                       "claim_expired",
			allot.ErrInvalidState:                       "invalid_state",
		} {
			p, internal := problemFor(err)
			if internal || p.Status != 409 || p.Code != code || p.Title == "" {
				t.Errorf("%v: %+v", err, p)
			}
		}
	})
}

// TestClaimIdempotentReplay checks Idempotency-Key on claim create,
// confirm, release and extend over HTTP.
func TestClaimIdempotentReplay(t *testing.T) {
	e := newEnv(t, nil)
	e.pool(`{"name":"p","capacity":10,"per_customer":0}`)

	r := e.do("POST", "/v1/pools/p/claims", `{"customer":"alice","quantity":2}`, "Idempotency-Key", "order-1")
	var first allot.Claim
	e.ok(r, http.StatusCreated, &first)
	if r.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("first call marked replayed")
	}
	e.claim("p", `{"customer":"bob"}`) // someone else claims in between
	r = e.do("POST", "/v1/pools/p/claims", `{"quantity":2,"customer":"alice"}`, "Idempotency-Key", "order-1")
	var again allot.Claim
	e.ok(r, http.StatusOK, &again)
	if r.header.Get("Idempotent-Replayed") != "true" || again.ID != first.ID || again.Quantity != 2 || again.Status != allot.ClaimHeld {
		t.Fatalf("replay %+v (header %q), first %+v", again, r.header.Get("Idempotent-Replayed"), first)
	}
	e.wantFigures("p", 3, 0, 7)
	// The same key with another body is refused, and takes nothing.
	e.problem(e.do("POST", "/v1/pools/p/claims", `{"customer":"alice","quantity":3}`, "Idempotency-Key", "order-1"), 422, "idempotency_mismatch")
	// Keys are per pool.
	e.pool(`{"name":"q","capacity":10,"per_customer":0}`)
	other := e.claim("q", `{"customer":"alice","quantity":2}`, "Idempotency-Key", "order-1")
	if other.ID == first.ID {
		t.Fatal("a key of pool p replayed on pool q")
	}
	e.wantFigures("p", 3, 0, 7)

	// Confirm: the replay returns the confirmed claim, not invalid_state.
	r = e.do("POST", "/v1/claims/"+first.ID+"/confirm", `{"reference":"pay_9"}`, "Idempotency-Key", "confirm-1")
	var conf allot.Claim
	e.ok(r, http.StatusOK, &conf)
	if r.header.Get("Idempotent-Replayed") != "" || conf.Status != allot.ClaimConfirmed {
		t.Fatalf("confirm %+v", conf)
	}
	r = e.do("POST", "/v1/claims/"+first.ID+"/confirm", `{"reference":"pay_9"}`, "Idempotency-Key", "confirm-1")
	e.ok(r, http.StatusOK, &again)
	if r.header.Get("Idempotent-Replayed") != "true" || again.ID != first.ID || again.Status != allot.ClaimConfirmed || again.Reference != "pay_9" {
		t.Fatalf("confirm replay %+v", again)
	}
	e.problem(e.do("POST", "/v1/claims/"+first.ID+"/confirm", `{"reference":"pay_10"}`, "Idempotency-Key", "confirm-1"), 422, "idempotency_mismatch")
	// Without a key, the same confirm again is a replay too (item 12).
	r = e.do("POST", "/v1/claims/"+first.ID+"/confirm", `{"reference":"pay_9"}`)
	e.ok(r, http.StatusOK, &again)
	if r.header.Get("Idempotent-Replayed") != "true" || again.Status != allot.ClaimConfirmed {
		t.Fatalf("confirm retried without a key: %+v %v", again, r.header)
	}
	e.problem(e.do("POST", "/v1/claims/"+first.ID+"/confirm", `{"reference":"pay_10"}`), 409, "invalid_state")

	// Release and extend.
	c := e.claim("p", `{"customer":"carol"}`)
	e.ok(e.do("POST", "/v1/claims/"+c.ID+"/extend", `{"ttl":"15m"}`, "Idempotency-Key", "ext-1"), 200, nil)
	r = e.do("POST", "/v1/claims/"+c.ID+"/extend", `{"ttl":"15m"}`, "Idempotency-Key", "ext-1")
	e.ok(r, 200, nil)
	if r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("extend replay not marked")
	}
	e.ok(e.do("POST", "/v1/claims/"+c.ID+"/release", "", "Idempotency-Key", "rel-1"), 200, nil)
	r = e.do("POST", "/v1/claims/"+c.ID+"/release", "{}", "Idempotency-Key", "rel-1")
	e.ok(r, 200, &again)
	if r.header.Get("Idempotent-Replayed") != "true" || again.Status != allot.ClaimReleased {
		t.Fatalf("release replay %+v", again)
	}
	e.wantFigures("p", 1, 2, 7)
}

// TestClaimInFlight checks that concurrent claims with one key take the
// units once: each gets the claim or 409 idempotency_in_flight.
func TestClaimInFlight(t *testing.T) {
	e := newEnv(t, nil)
	e.pool(`{"name":"race","capacity":100,"per_customer":0}`)
	var wg sync.WaitGroup
	results := make([]resp, 16)
	for i := range results {
		wg.Go(func() {
			results[i] = e.do("POST", "/v1/pools/race/claims", `{"customer":"a","quantity":3}`, "Idempotency-Key", "same")
		})
	}
	wg.Wait()
	ids := map[string]bool{}
	for _, r := range results {
		if r.status/100 == 2 {
			var c allot.Claim
			e.ok(r, r.status, &c)
			ids[c.ID] = true
			continue
		}
		e.problem(r, 409, "idempotency_in_flight")
	}
	if len(ids) != 1 {
		t.Fatalf("one key made %d claims", len(ids))
	}
	e.wantFigures("race", 3, 0, 97)
}

func TestPoolMetrics(t *testing.T) {
	e := newEnv(t, nil)
	e.pool(`{"name":"m","capacity":3,"per_customer":2}`)
	e.claim("m", `{"customer":"a","quantity":2}`)
	e.problem(e.do("POST", "/v1/pools/m/claims", `{"customer":"a"}`), 409, "customer_limit")
	c := e.claim("m", `{"customer":"b"}`)
	e.ok(e.do("POST", "/v1/claims/"+c.ID+"/confirm", ""), 200, nil)
	e.problem(e.do("POST", "/v1/pools/m/claims", `{"customer":"c"}`), 409, "sold_out")
	e.problem(e.do("POST", "/v1/pools/m/claims", `{"customer":"d"}`), 409, "sold_out")
	e.wantMetrics(
		`allot_claims_total{outcome="held",pool="m"} 2`,
		`allot_claims_total{outcome="customer_limit",pool="m"} 1`,
		`allot_claims_total{outcome="sold_out",pool="m"} 2`,
		`allot_pool_capacity{pool="m"} 3`,
		`allot_pool_held{pool="m"} 2`,
		`allot_pool_confirmed{pool="m"} 1`,
		`allot_batch_size_count{kind="claim"}`,
		`allot_commit_duration_seconds_count{kind="claim"}`,
		`allot_http_request_duration_seconds_count{code="201",route="POST /v1/pools/{name}/claims"} 2`,
		`allot_http_request_duration_seconds_count{code="409",route="POST /v1/pools/{name}/claims"} 3`,
	)
}

// TestAuditReportsViolations breaks an invariant behind allot's back: the
// audit still answers 200, with ok false and the failed check's detail.
func TestAuditReportsViolations(t *testing.T) {
	e := newEnv(t, nil)
	e.pool(`{"name":"p","capacity":10}`)
	e.claim("p", `{"customer":"a"}`)

	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE allot_pools SET held = held + 2 WHERE name = 'p'`); err != nil {
		t.Fatal(err)
	}
	var rep auditReport
	e.ok(e.do("GET", "/v1/audit", ""), http.StatusOK, &rep)
	if rep.OK {
		t.Fatalf("audit passed a broken counter: %+v", rep)
	}
	failed := 0
	for _, c := range rep.Checks {
		if !c.OK {
			failed++
			if c.Name != "pool counters equal the claims" || !strings.Contains(c.Detail, "pool=p") {
				t.Fatalf("failed check %+v", c)
			}
		}
	}
	if failed != 1 {
		t.Fatalf("%d checks failed: %+v", failed, rep)
	}
}

// TestBodiesMirrorParams keeps the request bodies in step with the
// allot parameter types they stand for.
func TestBodiesMirrorParams(t *testing.T) {
	for _, c := range []struct{ body, params reflect.Type }{
		{reflect.TypeFor[poolCreateBody](), reflect.TypeFor[allot.PoolCreateParams]()},
		{reflect.TypeFor[poolSettingsBody](), reflect.TypeFor[allot.PoolPatchParams]()},
		{reflect.TypeFor[claimBody](), reflect.TypeFor[allot.ClaimCreateParams]()},
	} {
		if got, want := jsonFields(c.body), jsonFields(c.params); !slices.Equal(got, want) {
			t.Errorf("%s has JSON fields %v, %s has %v", c.body, got, c.params, want)
		}
	}
	var b poolCreateBody
	if got := fieldList(&b); got != "name, capacity, per_customer, hold_ttl, max_hold_ttl, max_quantity, state, opens_at, closes_at" {
		t.Errorf("fieldList: %s", got)
	}
	if got := fieldList(&releaseBody{}); got != "no fields" {
		t.Errorf("fieldList of an empty body: %s", got)
	}
}

// FuzzParseFlat checks that the reflection-free parser of claim bodies
// agrees with encoding/json whenever it accepts a body.
func FuzzParseFlat(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"customer":"a"}`, `{"customer":"a","quantity":2,"ttl":"5m"}`, ` { "ttl" : "1m" , "customer":"x" } `,
		`{"quantity":-0}`, `{"quantity":1.0}`, `{"quantity":1e3}`, `{"quantity":01}`, `{"customer":"a","customer":"b"}`,
		`{"customer":"a\u0041"}`, `{"customer":"\x7f"}`, `{"customer":"a"}x`, `{"Customer":"a"}`, `{"customer":"a",}`,
		`{"quantity":null}`, `{"quantity":123456789012345678}`, `{"quantity":1234567890123456789}`, `{"ttl":5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fields := [3]flatField{{key: "customer"}, {key: "quantity", kind: flatInt}, {key: "ttl"}}
		if !parseFlat(b, fields[:]) {
			return
		}
		var body claimBody
		if err := decodeJSON(b, &body); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refused: %v", b, err)
		}
		if fields[0].s != body.Customer {
			t.Fatalf("%q: customer %q, encoding/json %q", b, fields[0].s, body.Customer)
		}
		if fields[1].set != (body.Quantity != nil) || fields[1].set && fields[1].n != *body.Quantity {
			t.Fatalf("%q: quantity %d/%v, encoding/json %v", b, fields[1].n, fields[1].set, body.Quantity)
		}
		if fields[2].set != (body.TTL != nil) || fields[2].set && fields[2].s != string(*body.TTL) {
			t.Fatalf("%q: ttl %q/%v, encoding/json %v", b, fields[2].s, fields[2].set, body.TTL)
		}
	})
}

// FuzzAppendClaimJSON checks the reflection-free claim encoder against
// encoding/json: the same members, the same values, the same time text.
func FuzzAppendClaimJSON(f *testing.F) {
	f.Add("clm_x", "pool", "customer", "", int64(1), int64(1763812800123456), int64(0))
	f.Add("a\"b", "p\u2028", "é\xff", "ref\n", int64(-5), int64(0), int64(3600))
	f.Add("<&>", "y", "z", "&amp;", int64(1<<62), int64(-62135596800000000), int64(-19800))
	f.Fuzz(func(t *testing.T, id, pool, customer, ref string, qty, micros, offset int64) {
		loc := time.FixedZone("z", int(offset%(26*3600)))
		at := time.UnixMicro(micros).In(loc)
		reason := ""
		if qty%2 == 0 {
			reason = ref + " (refund)"
		}
		c := &allot.Claim{ID: id, Pool: pool, Customer: customer, Reference: ref, Reason: reason, Quantity: qty, Status: allot.ClaimHeld,
			CreatedAt: at, ExpiresAt: at.Add(time.Minute), UpdatedAt: at.Add(time.Nanosecond)}
		got, ok := appendClaimJSON(nil, c)
		want, err := json.Marshal(c)
		if !ok {
			if err == nil {
				t.Fatalf("fast encoder refused what encoding/json encodes: %s", want)
			}
			return
		}
		if err != nil {
			t.Fatalf("fast encoder accepted %+v, encoding/json refused: %v", c, err)
		}
		// The same members with the same values (strings may be escaped
		// differently: encoding/json escapes <, > and &, and writes \b).
		if !bytes.HasSuffix(got, []byte("}\n")) || !reflect.DeepEqual(decodeMembers(t, got), decodeMembers(t, want)) {
			t.Fatalf("fast  %s\njson  %s", got, want)
		}
	})
}

// decodeMembers decodes one JSON object, numbers as json.Number.
func decodeMembers(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if dec.More() {
		t.Fatalf("trailing data in %s", b)
	}
	return m
}
