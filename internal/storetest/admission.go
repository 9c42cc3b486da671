package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testkit"
)

// gate is an Admission that refuses one customer and records what it is
// told.
type gate struct {
	mu        sync.Mutex
	admitted  []string
	ids       []string // of the claims admitted
	decisions []allot.Decision
	returned  []string
}

var errGate = allot.Errorf(allot.ErrNotAdmitted, "customer blocked by the gate")

func (g *gate) Admit(_ context.Context, _ string, r allot.PoolClaimRequest) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.Customer == "blocked" {
		return errGate
	}
	g.admitted = append(g.admitted, r.Customer)
	g.ids = append(g.ids, r.ID)
	return nil
}

func (g *gate) Flush(string, []allot.PoolClaimRequest, []error) uint64 { return 7 }

func (g *gate) Decided(_ string, mark uint64, d allot.Decision) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if mark != 7 {
		d.Err = errors.New("mark lost")
	}
	g.decisions = append(g.decisions, d)
}

func (g *gate) Returned(pool string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.returned = append(g.returned, pool)
}

// last returns the outcome the gate was told for the latest claim.
func (g *gate) last(t *testing.T) (allot.Decision, allot.PoolClaimOutcome) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.decisions) == 0 {
		t.Fatal("no decision reported")
	}
	d := g.decisions[len(g.decisions)-1]
	if d.Err != nil || len(d.Results) != len(d.Requests) || len(d.Results) == 0 {
		t.Fatalf("decision %+v", d)
	}
	return d, d.Results[len(d.Results)-1]
}

// testAdmissionSeam: a Config.Admissions entry refuses before the store,
// is told what the store decided for what it let through, and hears when
// units come back; the built-in sold-out cache answers before it.
func testAdmissionSeam(t *testing.T, open func() allot.Store) {
	s := store(t, open)
	g := &gate{}
	svc, err := allot.New(ctx(t), allot.Config{Store: s, Admissions: []allot.Admission{g}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close(context.Background()) })
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](2), PerCustomer: ptr[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := claim(t, svc, "p", "blocked", 1); !errors.Is(err, errGate) {
		t.Fatalf("a claim the admission refuses: %v", err)
	}
	wantFigures(t, svc, "p", 0, 0, 2)
	a, err := claim(t, svc, "p", "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if d, o := g.last(t); !d.Stored || d.Available != 1 || o.Claim == nil || o.Claim.ID != a.ID {
		t.Fatalf("told of a's claim: %+v", d)
	}
	if _, err := claim(t, svc, "p", "b", 2); !errors.Is(err, allot.ErrSoldOut) {
		t.Fatalf("a claim past what is left: %v", err)
	}
	if d, o := g.last(t); !d.Stored || d.Available != 1 || !errors.Is(o.Err, allot.ErrSoldOut) {
		t.Fatalf("told of b's refusal by the store: %+v", d)
	}
	if _, err := claim(t, svc, "p", "c", 1); err != nil {
		t.Fatal(err)
	}
	if d, _ := g.last(t); !d.Stored || d.Available != 0 {
		t.Fatalf("told of c's claim: %+v", d)
	}
	// Sold out now: the cache refuses d from memory, before the gate.
	if _, err := claim(t, svc, "p", "d", 1); !errors.Is(err, allot.ErrSoldOut) {
		t.Fatalf("a claim on a sold-out pool: %v", err)
	}
	g.mu.Lock()
	admitted := append([]string(nil), g.admitted...)
	g.mu.Unlock()
	if len(admitted) != 3 || admitted[2] != "c" {
		t.Fatalf("the gate admitted %v; want a, b, c (d was refused by the sold-out cache first)", admitted)
	}
	if _, _, err := svc.ClaimTransition(ctx(t), allot.ClaimTransitionParams{ID: a.ID, Action: allot.ActionRelease}); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	returned := append([]string(nil), g.returned...)
	g.mu.Unlock()
	if len(returned) == 0 || returned[len(returned)-1] != "p" {
		t.Fatalf("units came back, the gate heard %v", returned)
	}
	if _, err := claim(t, svc, "p", "d", 1); err != nil {
		t.Fatalf("a claim after a release: %v", err)
	}
	auditOK(t, svc)
}

// testNoticesReopen: units coming back through one Service reach another
// sharing the store through the store's notices (LISTEN/NOTIFY on
// PostgreSQL, in-process on SQLite). The second Service's clock is frozen,
// so its sold-out flag would never expire by itself: only the notice can
// clear it.
func testNoticesReopen(t *testing.T, open func() allot.Store) {
	sa, sb := store(t, open), store(t, open)
	if _, ok := sa.(allot.Notifier); !ok {
		t.Fatalf("%T is not an allot.Notifier", sa)
	}
	frozen := testkit.NewClock(time.Now())
	a, err := allot.New(ctx(t), allot.Config{Store: sa, Now: frozen.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	b := service(t, sb)
	if _, err := b.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "n", Capacity: ptr[int64](1), PerCustomer: ptr[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := claim(t, a, "n", "x", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := claim(t, a, "n", "y", 1); !errors.Is(err, allot.ErrSoldOut) {
		t.Fatalf("sold out: %v", err)
	}
	if _, err := b.PoolPatch(ctx(t), "n", allot.PoolPatchParams{Capacity: ptr[int64](2)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := claim(t, a, "n", "y", 1)
		if err == nil {
			break
		}
		if !errors.Is(err, allot.ErrSoldOut) || time.Now().After(deadline) {
			t.Fatalf("a claim after another service raised the capacity: %v (the notice never arrived)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// slowClaims holds the first claim batch until release is closed, and
// fails the first batch of several claims as bad input (so the batcher
// retries each alone).
type slowClaims struct {
	allot.Store
	entered, release chan struct{}
	mu               sync.Mutex
	calls            int
	failedMulti      bool
}

func (s *slowClaims) PoolClaim(ctx context.Context, p allot.PoolClaimParams) (*allot.PoolClaimResult, error) {
	s.mu.Lock()
	s.calls++
	first := s.calls == 1
	fail := len(p.Requests) > 1 && !s.failedMulti
	if fail {
		s.failedMulti = true
	}
	s.mu.Unlock()
	if first {
		close(s.entered)
		<-s.release
	}
	if fail {
		return nil, allot.Invalidf("customer", "refused to make the batcher retry each claim alone")
	}
	return s.Store.PoolClaim(ctx, p)
}

// testAdmissionToldOnce: every claim an admission lets through is reported
// to its Decided exactly once: one whose caller gave up while it queued,
// and those of a batch the batcher retried claim by claim, included.
func testAdmissionToldOnce(t *testing.T, open func() allot.Store) {
	st := &slowClaims{Store: store(t, open), entered: make(chan struct{}), release: make(chan struct{})}
	g := &gate{}
	svc, err := allot.New(ctx(t), allot.Config{Store: st, Admissions: []allot.Admission{g}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close(context.Background()) })
	if _, err := svc.PoolCreate(ctx(t), allot.PoolCreateParams{Name: "p", Capacity: ptr[int64](100), PerCustomer: ptr[int64](0)}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	claimAsync := func(customer string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := claim(t, svc, "p", customer, 1); err != nil {
				t.Errorf("claim %s: %v", customer, err)
			}
		}()
	}
	claimAsync("a")
	<-st.entered
	short, cancel := context.WithTimeout(ctx(t), 100*time.Millisecond)
	defer cancel()
	if _, _, err := svc.ClaimCreate(short, allot.ClaimCreateParams{Pool: "p", Customer: "gone"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a claim whose caller gave up while it queued: %v", err)
	}
	claimAsync("b")
	claimAsync("c")
	time.Sleep(100 * time.Millisecond) // b and c queue behind a
	close(st.release)
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		told := map[string]int{}
		for _, d := range g.decisions {
			for _, r := range d.Requests {
				told[r.ID]++
			}
		}
		ids := append([]string(nil), g.ids...)
		g.mu.Unlock()
		bad := ""
		for _, id := range ids {
			if told[id] != 1 {
				bad += fmt.Sprintf(" %s told %d times;", id, told[id])
			}
		}
		if len(ids) != 4 {
			t.Fatalf("admitted %d claims, want 4", len(ids))
		}
		if bad == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("every admitted claim must be reported once:%s", bad)
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantFigures(t, svc, "p", 3, 0, 97)
}
