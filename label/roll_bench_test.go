package label_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testdb"
	"github.com/allot/allot/label"
)

// BenchmarkRoll prints a roll of 1,000 licence-plate labels (LP{n:AA9},
// 2x1in, Code 128) through label.Next on a real store, as
// POST /v1/sequences/{name}/labels does, and splits each roll's time
// into issuing (the store's commit of the numbers) and rendering (the
// document). Issue 12's targets: ZPL ≤ 100 ms, PDF ≤ 2 s a roll.
//
//	go test ./label -run '^$' -bench Roll -benchtime 20x
func BenchmarkRoll(b *testing.B) {
	for _, store := range []string{"sqlite", "postgres"} {
		for _, f := range []allot.LabelFormat{allot.LabelZPL, allot.LabelPDF} {
			for _, mode := range []allot.Mode{allot.ModeGapless, allot.ModeCached} {
				b.Run(fmt.Sprintf("%s/%s/%s", store, f, mode), func(b *testing.B) { benchRoll(b, store, f, mode) })
			}
		}
	}
}

func benchRoll(b *testing.B, store string, f allot.LabelFormat, mode allot.Mode) {
	var st allot.Store
	if store == "sqlite" {
		st = testdb.SQLiteStore(b)
	} else {
		st = testdb.PostgresStore(b)
	}
	svc := testdb.Service(b, allot.Config{Store: st})
	ctx := context.Background()
	// A mask of 6 positions holds 1,000 rolls of 1,000 and more.
	if _, err := svc.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "lp", Format: "LP{n:AAA999}", Mode: mode}); err != nil {
		b.Fatal(err)
	}
	spec := allot.LabelSpec{Format: f, Size: "2x1in"}
	setup, err := spec.Setup()
	if err != nil {
		b.Fatal(err)
	}
	plan, err := label.Check(setup, []string{"LPAAA000", "LPZZZ999"})
	if err != nil {
		b.Fatal(err)
	}
	// Each round measures the three separately: a whole label request,
	// issuing alone (the same Next, written to the ledger as labels are),
	// and rendering alone (the IDs just issued).
	var total, issue, render int64
	var size int
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		_, err := label.Next(ctx, svc, label.Request{
			NextParams: allot.NextParams{Sequence: "lp", Count: 1000},
			Spec:       spec,
			Deliver: func(_ *allot.NextResult, d label.Document) error {
				size = len(d.Body)
				return nil
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		res, err := svc.Next(ctx, allot.NextParams{Sequence: "lp", Count: 1000, Record: true})
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := plan.Render(res.IDs); err != nil {
			b.Fatal(err)
		}
		total += t1.Sub(t0).Nanoseconds()
		issue += t2.Sub(t1).Nanoseconds()
		render += time.Since(t2).Nanoseconds()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(total)/n/1e6, "ms/roll")
	b.ReportMetric(float64(render)/n/1e6, "render-ms/roll")
	b.ReportMetric(float64(issue)/n/1e6, "issue-ms/roll")
	b.ReportMetric(float64(size)/1024, "KiB/roll")
}
