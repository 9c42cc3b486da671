package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testdb"
)

// BenchmarkAdvance measures one group-commit transaction on PostgreSQL
// (fsync as the server has it) for batches of several sizes.
func BenchmarkAdvance(b *testing.B) {
	ctx := b.Context()
	st := testdb.PostgresStore(b)
	q, _ := allot.NewSequence(allot.SequenceCreateParams{Name: "g", Mode: allot.ModeGapless})
	if _, err := st.SequenceCreate(ctx, q); err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			reqs := make([]allot.SequenceAdvanceRequest, size)
			for i := range reqs {
				reqs[i].Count = 1
			}
			for b.Loop() {
				if _, err := st.SequenceAdvance(ctx, allot.SequenceAdvanceParams{Sequence: "g", Kind: allot.LedgerIssued, Requests: reqs}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "ids/s")
		})
	}
}

// BenchmarkPoolClaim measures one group-committed claim batch on
// PostgreSQL (one call of allot_pool_claim) for several batch sizes.
func BenchmarkPoolClaim(b *testing.B) {
	ctx := b.Context()
	st := testdb.PostgresStore(b)
	p, _ := allot.NewPool(allot.PoolCreateParams{Name: "p", Capacity: ptr(int64(1 << 40)), PerCustomer: ptr(int64(1))})
	if _, err := st.PoolCreate(ctx, p); err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, size := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			for b.Loop() {
				reqs := make([]allot.PoolClaimRequest, size)
				for i := range reqs {
					n++
					reqs[i] = allot.PoolClaimRequest{ID: fmt.Sprintf("clm_b%d", n), Customer: fmt.Sprintf("c%d", n), Quantity: 1, TTL: time.Hour}
				}
				if _, err := st.PoolClaim(ctx, allot.PoolClaimParams{Pool: "p", Now: time.Now(), Requests: reqs}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "claims/s")
		})
	}
}

func ptr[T any](v T) *T { return &v }
