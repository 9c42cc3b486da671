package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testdb"
)

// BenchmarkAdvance measures one group-commit transaction on PostgreSQL
// (fsync as the server has it) for batches of several sizes.
func BenchmarkAdvance(b *testing.B) {
	ctx := context.Background()
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
