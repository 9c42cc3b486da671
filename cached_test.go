package allot_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testdb"
)

// TestCachedPrefetchesBeforeRunningOut checks that a cached sequence leases
// its next block while the current one still has numbers, so a steady
// stream of requests never waits on the database, and that the leases are
// in the ledger.
func TestCachedPrefetchesBeforeRunningOut(t *testing.T) {
	ctx := t.Context()
	st := testdb.SQLiteStore(t)
	svc := testdb.Service(t, allot.Config{Store: st})
	bs := int64(100)
	if _, err := svc.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "c", BlockSize: &bs}); err != nil {
		t.Fatal(err)
	}
	leases := func() []allot.LedgerEntry {
		var out []allot.LedgerEntry
		entries, err := st.SequenceLedger(ctx, allot.SequenceLedgerParams{Sequence: "c", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Kind == allot.LedgerLeased {
				out = append(out, e)
			}
		}
		return out
	}
	// Take 60 of the first block's 100: below half left, so the next
	// lease starts in the background.
	for i := 0; i < 60; i++ {
		if _, err := svc.Next(ctx, allot.NextParams{Sequence: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(leases()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no second lease while 40 numbers were still in memory: %+v", leases())
		}
		time.Sleep(5 * time.Millisecond)
	}
	ls := leases()
	if ls[0].First != 1 || ls[0].Last != 100 || ls[1].First != 101 {
		t.Fatalf("leases: %+v", ls)
	}
	// The prefetched block joins the current one: the numbers run on
	// without a gap.
	for want := int64(61); want <= 150; want++ {
		r, err := svc.Next(ctx, allot.NextParams{Sequence: "c"})
		if err != nil || r.First != want {
			t.Fatalf("next: %+v %v, want %d", r, err, want)
		}
	}
}

// BenchmarkNextCached measures the in-process library path of a cached
// sequence: IDs served from leased blocks, rendered, on every core.
func BenchmarkNextCached(b *testing.B) {
	for _, tc := range []struct {
		format string
		count  int64
	}{{"{n}", 1}, {"LP{n:AAA99999}", 1}, {"{n}", 1000}} {
		b.Run(fmt.Sprintf("format=%s/count=%d", tc.format, tc.count), func(b *testing.B) {
			ctx := b.Context()
			st := testdb.SQLiteStore(b)
			svc := testdb.Service(b, allot.Config{Store: st})
			bs := int64(10000)
			if _, err := svc.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "b", Format: tc.format, Start: new(int64), BlockSize: &bs}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := svc.Next(ctx, allot.NextParams{Sequence: "b", Count: tc.count}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)*float64(tc.count)/b.Elapsed().Seconds(), "ids/s")
		})
	}
}
