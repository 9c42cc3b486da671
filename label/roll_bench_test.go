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
	var render, total int64
	var bytes int
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		_, err := label.Next(ctx, svc, label.Request{
			NextParams: allot.NextParams{Sequence: "lp", Count: 1000},
			Spec:       spec,
			Deliver: func(_ *allot.NextResult, d label.Document) error {
				bytes = len(d.Body)
				return nil
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0).Nanoseconds()
	}
	b.StopTimer()
	// Rendering alone, for the split: a roll of the same shape rendered
	// again; issuing is the rest.
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("LPAAA%03d", i)
	}
	plan, err := label.Check(setup, []string{ids[0], ids[999]})
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		t0 := time.Now()
		if _, err := plan.Render(ids); err != nil {
			b.Fatal(err)
		}
		render += time.Since(t0).Nanoseconds()
	}
	n := float64(b.N)
	b.ReportMetric(float64(total)/n/1e6, "ms/roll")
	b.ReportMetric(float64(render)/n/1e6, "render-ms/roll")
	b.ReportMetric(float64(total-render)/n/1e6, "issue-ms/roll")
	b.ReportMetric(float64(bytes)/1024, "KiB/roll")
}
