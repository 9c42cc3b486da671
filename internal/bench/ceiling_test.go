package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testdb"
	"github.com/allot/allot/metrics"
)

// TestMeasureCeiling: every measured call counts size requests, and the
// first error stops the loop and is returned.
func TestMeasureCeiling(t *testing.T) {
	calls := 0
	r, err := MeasureCeiling(t.Context(), 4, 0, 100*time.Millisecond, func(context.Context) error {
		calls++
		time.Sleep(time.Millisecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Units != int64(4*calls) || r.Units == 0 || r.P50 < time.Millisecond || r.P99 < r.P50 || r.PerSecond() <= 0 {
		t.Fatalf("run %+v after %d calls", r, calls)
	}
	boom := errors.New("boom")
	if _, err := MeasureCeiling(t.Context(), 1, 0, time.Second, func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("an erring batch: %v", err)
	}
	if _, err := MeasureCeiling(t.Context(), 0, 0, time.Second, nil); err == nil {
		t.Fatal("batch size 0 accepted")
	}
	c := Ceiling{Runs: []CeilingRun{{Units: 30, Elapsed: time.Second}, {Units: 10, Elapsed: time.Second}, {Units: 20, Elapsed: time.Second}}}
	if m := c.Median(); m.Units != 20 {
		t.Fatalf("median of 10, 20, 30/s: %+v", m)
	}
}

// TestMeanBatchSize reads the mean batch of one kind from the metrics a
// Service observes.
func TestMeanBatchSize(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	if got, err := MeanBatchSize(reg, "issued"); err != nil || got != 0 {
		t.Fatalf("no batches: %v, %v", got, err)
	}
	for _, n := range []int{2, 4, 9} {
		m.Observe(allot.BatchEvent{Kind: "issued", Size: n})
	}
	m.Observe(allot.BatchEvent{Kind: "leased", Size: 100})
	if got, err := MeanBatchSize(reg, "issued"); err != nil || got != 5 {
		t.Fatalf("mean of 2, 4, 9: %v, %v", got, err)
	}
	if BatchOf(0.2) != 1 || BatchOf(5.5) != 6 {
		t.Fatal("BatchOf rounds to at least 1")
	}
}

// TestCeilingBatches runs the ceiling's batches on a real store: the
// gapless batch takes size numbers a call, the claim batch holds size
// units for new customers a call.
func TestCeilingBatches(t *testing.T) {
	ctx := t.Context()
	st := testdb.SQLiteStore(t)
	q, err := allot.NewSequence(allot.SequenceCreateParams{Name: "g", Mode: allot.ModeGapless})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SequenceCreate(ctx, q); err != nil {
		t.Fatal(err)
	}
	advance, settle := AdvanceBatch(st, "g", "bench-test", 5)
	for range 3 {
		if err := advance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := settle(ctx); err != nil {
		t.Fatal(err)
	}
	entries, err := st.SequenceLedger(ctx, allot.SequenceLedgerParams{Sequence: "g", Limit: 100})
	if err != nil || len(entries) == 0 {
		t.Fatalf("ledger: %v, %v", entries, err)
	}
	for _, e := range entries {
		if e.Pending {
			t.Fatalf("entry left pending after settle: %+v", e)
		}
	}
	if c, err := st.SequenceCounterGet(ctx, "g", ""); err != nil || c.Last != 15 {
		t.Fatalf("after 3 batches of 5: %+v, %v", c, err)
	}
	p, err := allot.NewPool(allot.PoolCreateParams{Name: "p", Capacity: new(int64(7)), PerCustomer: new(int64(1))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PoolCreate(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Two runs on one store (two closures) must not collide on claim ids.
	claim := ClaimBatch(st, "p", 3, time.Minute)
	if err := claim(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ClaimBatch(st, "p", 3, time.Minute)(ctx); err != nil {
		t.Fatal(err)
	}
	if err := claim(ctx); !errors.Is(err, allot.ErrSoldOut) {
		t.Fatalf("a third batch of 3 in a pool of 7: %v", err)
	}
	out := CeilingTable(Ceiling{Name: "gapless numbers", Batch: 5, Runs: []CeilingRun{{Units: 1000, Elapsed: time.Second}}}, "gapless count=1", 500, true)
	if !strings.Contains(out, "| gapless numbers | 5 | 1,000 |") || !strings.Contains(out, "| 0.50× |") {
		t.Fatalf("table:\n%s", out)
	}
}
