package storetest

import (
	"context"
	"errors"
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
	decisions []allot.Decision
	returned  []string
}

var errGate = errors.New("not admitted")

func (g *gate) Admit(_ context.Context, _ string, r allot.PoolClaimRequest) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.Customer == "blocked" {
		return errGate
	}
	g.admitted = append(g.admitted, r.Customer)
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
