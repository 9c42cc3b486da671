package allot_test

import (
	"context"
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
	ctx := context.Background()
	st := testdb.SQLiteStore(t)
	svc, err := allot.New(context.Background(), allot.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)
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
