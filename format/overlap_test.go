package format

import (
	"math"
	"testing"
)

func TestMayOverlap(t *testing.T) {
	const big = math.MaxInt64
	tests := []struct {
		a          string
		aMin, aMax int64
		b          string
		bMin, bMax int64
		want       bool
		number     int64
	}{
		// The case: one format, two reserved ranges that intersect.
		{"{n}", 202043200000000, 202043210000000, "{n}", 202043205000000, 202043215000000, true, 202043205000000},
		{"{n}", 202043200000000, 202043210000000, "{n}", 202043210000001, 202043220000000, false, 0},
		{"LP{n:AA9}", 0, 6759, "LP{n:AA9}", 0, 6759, true, 0},
		{"LP{n:AA9}", 0, 6759, "LQ{n:AA9}", 0, 6759, false, 0},
		{"LP{n:AA9}", 0, 6759, "LP{n:A99}", 0, 2599, false, 0},
		{"LP{n:AA9}", 0, 99, "LP{n:AA9}", 100, 6759, false, 0},
		{"INV-{yyyy}-{n:5}", 1, 99999, "INV-{yyyy}-{n:5}", 1, 99999, true, 1},
		{"INV-{yyyy}-{n:5}", 1, 99999, "CRN-{yyyy}-{n:5}", 1, 99999, false, 0},
		// Padding: {n:5} renders 42 as 00042, which {n} never renders.
		{"{n:5}", 1, 99999, "{n}", 1, 99999, true, 10000},
		{"{n:5}", 1, 9999, "{n}", 1, 99999, false, 0},
		// Number tokens that do not line up: judged by the characters only.
		{"A{n}", 1, big, "{n}", 1, big, false, 0},
		{"1{n}", 1, big, "{n}", 1, big, true, 1},
		{"{n}-{yy}", 1, 9, "{yy}-{n}", 1, 9, false, 0},
		{"{n}{yy}", 1, 99, "{yy}{n}", 1, 99, true, 1},
		{"X{n}{check:mod37}", 1, 100, "X{n}{check:luhn}", 1, 100, true, 1},
		{"X{n:aa}", 0, 675, "X{n:AA}", 0, 675, false, 0},
	}
	for _, tc := range tests {
		a, b := MustParse(tc.a), MustParse(tc.b)
		got, n := MayOverlap(a, tc.aMin, tc.aMax, b, tc.bMin, tc.bMax)
		if got != tc.want || (got && n != tc.number) {
			t.Errorf("MayOverlap(%q %d..%d, %q %d..%d) = %v, %d; want %v, %d", tc.a, tc.aMin, tc.aMax, tc.b, tc.bMin, tc.bMax, got, n, tc.want, tc.number)
		}
		if back, _ := MayOverlap(b, tc.bMin, tc.bMax, a, tc.aMin, tc.aMax); back != tc.want {
			t.Errorf("MayOverlap is not symmetric for %q and %q", tc.a, tc.b)
		}
	}
}

// FuzzMayOverlap checks that MayOverlap never misses an ID both templates
// render: it renders numbers of a and decodes them with b.
func FuzzMayOverlap(f *testing.F) {
	f.Add("LP{n:AA9}", "LP{n:AA9}", int64(0), int64(50), int64(30), int64(90))
	f.Add("{n}", "1{n}", int64(1), int64(2000), int64(1), int64(500))
	f.Add("{n:3}", "{n}", int64(1), int64(2000), int64(1), int64(500))
	f.Fuzz(func(t *testing.T, as, bs string, aMin, aSpan, bMin, bSpan int64) {
		a, err := Parse(as)
		if err != nil {
			return
		}
		b, err := Parse(bs)
		if err != nil {
			return
		}
		if aMin < 0 || bMin < 0 || aSpan < 0 || bSpan < 0 || aSpan > 3000 || bSpan > 3000 || aMin > 1e12 || bMin > 1e12 {
			return
		}
		aMax, bMax := aMin+aSpan, bMin+bSpan
		if c, ok := a.Capacity(); ok && aMax >= c {
			return
		}
		if c, ok := b.Capacity(); ok && bMax >= c {
			return
		}
		got, _ := MayOverlap(a, aMin, aMax, b, bMin, bMax)
		if got {
			return
		}
		d := Date{Year: 2026, Month: 3, Day: 7}
		for n := aMin; n <= aMax; n++ {
			id, err := a.Render(n, d)
			if err != nil {
				return
			}
			dec, err := b.Decode(id)
			if err == nil && dec.Number >= bMin && dec.Number <= bMax {
				t.Fatalf("MayOverlap said no, but %q renders %d as %q, which %q renders for %d", as, n, id, bs, dec.Number)
			}
		}
	})
}
