package label_test

import (
	"testing"

	"github.com/allot/allot"
)

// BenchmarkRender renders a roll of 1000 LP{n:AA9} labels, 2x1in Code 128
// at 203 dpi: rendering only, the numbers are not issued.
func BenchmarkRender(b *testing.B) {
	const n = 1000
	ids := lpIDs.spread(b, n, 7)
	for _, f := range []allot.LabelFormat{allot.LabelZPL, allot.LabelPDF} {
		b.Run(string(f)+"-1000", func(b *testing.B) {
			p := mustPlan(b, allot.LabelSpec{Format: f, Barcode: allot.BarcodeCode128, Size: "2x1in", DPI: 203}, lpIDs.samples(b))
			size := 0
			b.ReportAllocs()
			for b.Loop() {
				doc, err := p.Render(ids)
				if err != nil {
					b.Fatal(err)
				}
				size = len(doc.Body)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/label")
			b.ReportMetric(float64(size), "B/doc")
		})
	}
}
