package allot_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testdb"
)

// BenchmarkNextCached measures the in-process library path of a cached
// sequence: IDs served from leased blocks, rendered, on every core.
func BenchmarkNextCached(b *testing.B) {
	for _, tc := range []struct {
		format string
		count  int64
	}{{"{n}", 1}, {"LP{n:AAA99999}", 1}, {"{n}", 1000}} {
		b.Run(fmt.Sprintf("format=%s/count=%d", tc.format, tc.count), func(b *testing.B) {
			ctx := context.Background()
			st := testdb.SQLiteStore(b)
			svc, err := allot.New(context.Background(), allot.Config{Store: st})
			if err != nil {
				b.Fatal(err)
			}
			defer svc.Close(ctx)
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
