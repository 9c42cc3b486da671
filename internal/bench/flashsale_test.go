package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSale is an in-memory pool answering allot's claim and confirm
// shapes, recording what it saw.
type fakeSale struct {
	delay time.Duration
	// misbehave, if set, may answer request n (claims numbered from 0)
	// itself and return true.
	misbehave func(n int64, w http.ResponseWriter) bool

	n                     atomic.Int64
	inFlight, maxInFlight atomic.Int64

	mu        sync.Mutex
	left      int
	holds     map[string]string // claim id -> customer
	confirmed map[string]int
	customers map[string]int
}

func newFakeSale(capacity int) *fakeSale {
	return &fakeSale{left: capacity, holds: map[string]string{}, confirmed: map[string]int{}, customers: map[string]int{}}
}

func (f *fakeSale) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cur := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxInFlight.Load()
		if cur <= m || f.maxInFlight.CompareAndSwap(m, cur) {
			break
		}
	}
	time.Sleep(f.delay)
	body, _ := io.ReadAll(r.Body)
	if id, ok := strings.CutPrefix(r.URL.Path, "/v1/claims/"); ok {
		id = strings.TrimSuffix(id, "/confirm")
		f.mu.Lock()
		_, held := f.holds[id]
		if held {
			f.confirmed[id]++
		}
		f.mu.Unlock()
		if !held {
			writeCode(w, http.StatusNotFound, "not_found", id)
			return
		}
		writeJSON(w, http.StatusOK, claimResponse{ID: id, Status: "confirmed"})
		return
	}
	n := f.n.Add(1) - 1
	if f.misbehave != nil && f.misbehave(n, w) {
		return
	}
	var c claimRequest
	if err := json.Unmarshal(body, &c); err != nil || c.Customer == "" || c.Quantity != 1 || r.Header.Get("Content-Type") != "application/json" {
		writeCode(w, http.StatusBadRequest, "invalid_request", string(body))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.customers[c.Customer]++
	if f.left == 0 {
		writeCode(w, http.StatusConflict, "sold_out", "")
		return
	}
	f.left--
	id := fmt.Sprintf("clm_%d", n)
	f.holds[id] = c.Customer
	writeJSON(w, http.StatusCreated, claimResponse{ID: id, Customer: c.Customer, Quantity: 1, Status: "held"})
}

func fakeTarget(t *testing.T, f *fakeSale) FlashSaleTarget {
	base := serve(t, f)
	return FlashSaleTarget{
		Name:       "fake",
		ClaimURL:   base + "/v1/pools/sale/claims",
		ConfirmURL: func(id string) string { return base + "/v1/claims/" + id + "/confirm" },
	}
}

func TestFlashSaleExact(t *testing.T) {
	f := newFakeSale(300)
	f.delay = 200 * time.Microsecond
	r, err := FlashSale(context.Background(), fakeTarget(t, f), FlashSaleOptions{Customers: 3000, Capacity: 300, Concurrency: 32})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if !r.Exact() || !r.Confirming {
		t.Fatalf("not exact: %+v", r)
	}
	if r.Claimed != 300 || r.SoldOut != 2700 || r.Errors != 0 || r.Confirmed != 300 || r.ConfirmErrors != 0 || r.ErrorSample != "" {
		t.Fatalf("counts: %+v", r)
	}
	if r.Target != "fake" || r.Customers != 3000 || r.Capacity != 300 {
		t.Errorf("result names %q, %d customers, %d units", r.Target, r.Customers, r.Capacity)
	}
	// Every customer claimed once, and every hold was confirmed once.
	f.mu.Lock()
	if len(f.customers) != 3000 {
		t.Errorf("%d distinct customers claimed, want 3000", len(f.customers))
	}
	for c, n := range f.customers {
		if n != 1 {
			t.Errorf("customer %s claimed %d times", c, n)
			break
		}
	}
	if len(f.confirmed) != 300 {
		t.Errorf("%d holds confirmed, want 300", len(f.confirmed))
	}
	for id, n := range f.confirmed {
		if n != 1 {
			t.Errorf("claim %s confirmed %d times", id, n)
			break
		}
	}
	f.mu.Unlock()
	if got := f.maxInFlight.Load(); got > 32+1 || got < 8 { // +1: a confirm can start as the last claim ends
		t.Errorf("at most %d requests were in flight at once, want up to the concurrency of 32", got)
	}
	if !(r.SellOut > 0 && r.SellOut <= r.ClaimPhase && r.ClaimPhase <= r.Total) {
		t.Errorf("timings out of order: sell-out %v, claim phase %v, total %v", r.SellOut, r.ClaimPhase, r.Total)
	}
	if !(r.P50 > 0 && r.P50 <= r.P99 && r.P99 <= r.P999 && r.HeldP50 > 0 && r.HeldP50 <= r.HeldP99 && r.ConfirmP50 > 0 && r.ConfirmP50 <= r.ConfirmP99) {
		t.Errorf("latencies out of order: %+v", r)
	}
}

// All workers are released together: with a slow server, the first
// Concurrency claims are all in flight at once.
func TestFlashSaleGate(t *testing.T) {
	f := newFakeSale(10)
	f.delay = 50 * time.Millisecond
	r, err := FlashSale(context.Background(), fakeTarget(t, f), FlashSaleOptions{Customers: 64, Capacity: 10, Concurrency: 16, SkipConfirm: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Exact() || r.Confirming || r.Confirmed != 0 {
		t.Fatalf("not exact, or confirmed with SkipConfirm: %+v", r)
	}
	if got := f.maxInFlight.Load(); got != 16 {
		t.Errorf("%d claims in flight at most, want exactly the concurrency of 16", got)
	}
	// 64 customers, 16 at a time, 50ms each: four waves.
	if r.ClaimPhase < 200*time.Millisecond {
		t.Errorf("claim phase %v, want at least four waves of 50ms", r.ClaimPhase)
	}
}

func TestFlashSaleCountsErrors(t *testing.T) {
	f := newFakeSale(100)
	f.misbehave = func(n int64, w http.ResponseWriter) bool {
		switch {
		case n%100 == 1:
			writeCode(w, http.StatusInternalServerError, "internal", "boom")
		case n%100 == 2:
			writeCode(w, http.StatusConflict, "customer_limit", "")
		case n%100 == 3:
			writeJSON(w, http.StatusCreated, claimResponse{ID: "", Status: "held"})
		case n%100 == 4:
			// The same id answered to every such customer: all but
			// the first are errors.
			writeJSON(w, http.StatusCreated, claimResponse{ID: "clm_dup", Status: "held"})
		default:
			return false
		}
		return true
	}
	r, err := FlashSale(context.Background(), fakeTarget(t, f), FlashSaleOptions{Customers: 1000, Capacity: 100, Concurrency: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	// 10 each of 500, customer_limit, no id, and 9 duplicates of clm_dup.
	if r.Errors != 39 || r.Claimed != 101 || r.SoldOut != 860 {
		t.Errorf("Errors %d, Claimed %d, SoldOut %d; want 39, 101, 860", r.Errors, r.Claimed, r.SoldOut)
	}
	// clm_dup is not a hold the fake knows: its confirm fails.
	if r.Confirmed != 100 || r.ConfirmErrors != 1 {
		t.Errorf("Confirmed %d, ConfirmErrors %d; want 100, 1", r.Confirmed, r.ConfirmErrors)
	}
	if r.Exact() || r.ErrorSample == "" {
		t.Errorf("Exact = %v, ErrorSample = %q", r.Exact(), r.ErrorSample)
	}
	if r.Claimed+r.SoldOut+r.Errors != 1000 {
		t.Errorf("outcomes add up to %d, want 1000", r.Claimed+r.SoldOut+r.Errors)
	}
}

func TestFlashSaleUnreachable(t *testing.T) {
	u, stop, err := Serve(NoopHandler())
	if err != nil {
		t.Fatal(err)
	}
	stop()
	r, err := FlashSale(context.Background(), FlashSaleTarget{Name: "down", ClaimURL: u + "/claims"},
		FlashSaleOptions{Customers: 50, Capacity: 5, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 50 || r.Claimed != 0 || r.Exact() || !strings.Contains(r.ErrorSample, "connect") {
		t.Errorf("against a stopped server: %+v", r)
	}
}

func TestFlashSaleStopsOnCancel(t *testing.T) {
	f := newFakeSale(10)
	f.delay = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	r, err := FlashSale(ctx, fakeTarget(t, f), FlashSaleOptions{Customers: 100000, Capacity: 10, Concurrency: 4})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("FlashSale took %v after cancellation", took)
	}
	if r.Errors != 0 || r.Claimed+r.SoldOut == 0 {
		t.Errorf("interrupted sale: %+v; want the answers so far and no cancelled request counted", r)
	}
}

func TestFlashSaleRejectsBadInput(t *testing.T) {
	ok := FlashSaleTarget{Name: "x", ClaimURL: "http://127.0.0.1:1/claims"}
	cases := map[string]struct {
		t    FlashSaleTarget
		opts FlashSaleOptions
	}{
		"no name":          {FlashSaleTarget{ClaimURL: ok.ClaimURL}, FlashSaleOptions{}},
		"relative URL":     {FlashSaleTarget{Name: "x", ClaimURL: "/claims"}, FlashSaleOptions{}},
		"bad scheme":       {FlashSaleTarget{Name: "x", ClaimURL: "ftp://127.0.0.1/"}, FlashSaleOptions{}},
		"more units":       {ok, FlashSaleOptions{Customers: 10, Capacity: 11}},
		"default customer": {ok, FlashSaleOptions{Capacity: DefaultFlashSaleCustomers + 1}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := FlashSale(context.Background(), c.t, c.opts); err == nil {
				t.Errorf("FlashSale accepted %s", name)
			}
		})
	}
}

func TestFlashSaleExactRules(t *testing.T) {
	good := FlashSaleResult{Customers: 10, Capacity: 3, Claimed: 3, SoldOut: 7, Confirmed: 3, Confirming: true}
	if !good.Exact() {
		t.Fatal("exact result judged inexact")
	}
	for name, mut := range map[string]func(*FlashSaleResult){
		"one short":       func(r *FlashSaleResult) { r.Claimed, r.SoldOut = 2, 8 },
		"oversold":        func(r *FlashSaleResult) { r.Claimed, r.SoldOut = 4, 6 },
		"an error":        func(r *FlashSaleResult) { r.SoldOut, r.Errors = 6, 1 },
		"unconfirmed":     func(r *FlashSaleResult) { r.Confirmed = 2 },
		"confirm error":   func(r *FlashSaleResult) { r.ConfirmErrors = 1 },
		"lost a customer": func(r *FlashSaleResult) { r.SoldOut = 6 },
	} {
		r := good
		mut(&r)
		if r.Exact() {
			t.Errorf("%s: judged exact: %+v", name, r)
		}
	}
	noConfirm := good
	noConfirm.Confirming, noConfirm.Confirmed = false, 0
	if !noConfirm.Exact() {
		t.Error("without a confirm phase, unconfirmed holds must still be exact")
	}
}
