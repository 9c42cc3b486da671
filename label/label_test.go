package label_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"golang.org/x/image/font/gofont/gomono"

	"github.com/allot/allot"
	"github.com/allot/allot/format"
	"github.com/allot/allot/label"
)

// The ID shapes the label tests print: a short mixed-radix mask, an SSCC
// (18 digits with a GS1 check digit, for GS1-128) and a long policy number.
var (
	lpIDs     = idRange{"lp", format.MustParse("LP{n:AA9}"), 0, 26*26*10 - 1}
	ssccIDs   = idRange{"sscc", format.MustParse("{n:17}{check:gs1}"), 0, 1e17 - 1}
	policyIDs = idRange{"policy", format.MustParse("{n}"), 202043200000000, 202043210000000}
)

// idRange is a sequence's template with its first and last numbers.
type idRange struct {
	name   string
	tmpl   *format.Template
	lo, hi int64
}

func (r idRange) id(t testing.TB, n int64) string {
	t.Helper()
	id, err := r.tmpl.Render(n, format.Date{})
	if err != nil {
		t.Fatalf("render %d with %s: %v", n, r.tmpl, err)
	}
	return id
}

// samples are the first and last IDs of the range, as label.Samples
// gives them for a sequence.
func (r idRange) samples(t testing.TB) []string {
	return []string{r.id(t, r.lo), r.id(t, r.hi)}
}

// spread returns count IDs over the range: the first and the last, and
// between them numbers spaced evenly and jittered by seed, so that
// different tests print different numbers.
func (r idRange) spread(t testing.TB, count int, seed uint64) []string {
	t.Helper()
	if count == 1 {
		return []string{r.id(t, r.lo+(r.hi-r.lo)/2)}
	}
	rng := rand.New(rand.NewPCG(seed, uint64(r.lo)))
	step := (r.hi - r.lo) / int64(count-1)
	ids := make([]string, count)
	for i := range ids {
		n := r.lo + int64(i)*step
		switch {
		case i == count-1:
			n = r.hi
		case i > 0 && step > 1:
			n += rng.Int64N(step)
		}
		ids[i] = r.id(t, n)
	}
	return ids
}

// mustPlan checks spec for IDs like samples.
func mustPlan(t testing.TB, spec allot.LabelSpec, samples []string) *label.Plan {
	t.Helper()
	setup, err := spec.Setup()
	if err != nil {
		t.Fatalf("%+v: Setup: %v", spec, err)
	}
	p, err := label.Check(setup, samples)
	if err != nil {
		t.Fatalf("%+v: Check(%q): %v", spec, samples, err)
	}
	return p
}

// wantInvalid fails unless err is an *allot.InvalidError for field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var ie *allot.InvalidError
	switch {
	case err == nil:
		t.Errorf("got no error, want an InvalidError for field %q", field)
	case !errors.As(err, &ie):
		t.Errorf("got %T %v, want an *allot.InvalidError for field %q", err, err, field)
	case ie.Field != field:
		t.Errorf("got an InvalidError for field %q (%v), want field %q", ie.Field, err, field)
	case !errors.Is(err, allot.ErrInvalid):
		t.Errorf("%v does not unwrap to ErrInvalid", err)
	case ie.Reason == "":
		t.Errorf("InvalidError for %q has no reason", field)
	}
}

func setup(t *testing.T, spec allot.LabelSpec) allot.LabelSetup {
	t.Helper()
	s, err := spec.Setup()
	if err != nil {
		t.Fatalf("%+v: Setup: %v", spec, err)
	}
	return s
}

func TestCheckRefusesWhatTheBarcodeCannotCarry(t *testing.T) {
	gs1 := setup(t, allot.LabelSpec{Barcode: allot.BarcodeGS1128})
	for _, id := range []string{
		"12345",
		"0000000000000000001",     // 19 digits
		"00000000000000000",       // 17 digits
		"00000000000000000A",      // 18 characters, not all digits
		"LP" + "0000000000000000", // 18 characters
	} {
		_, err := label.Check(gs1, []string{ssccIDs.id(t, 0), id})
		wantInvalid(t, err, "barcode")
	}
	// An 18-digit ID is an SSCC.
	if _, err := label.Check(gs1, ssccIDs.samples(t)); err != nil {
		t.Errorf("gs1-128 of %q: %v", ssccIDs.samples(t), err)
	}

	code128 := setup(t, allot.LabelSpec{Barcode: allot.BarcodeCode128})
	for _, id := range []string{"Süd-1", "A\tB", "A\x7fB", "日本"} {
		_, err := label.Check(code128, []string{"A-1", id})
		wantInvalid(t, err, "barcode")
	}
	// The same IDs go on a QR code or a Data Matrix.
	for _, b := range []allot.Symbology{allot.BarcodeQR, allot.BarcodeDataMatrix} {
		if _, err := label.Check(setup(t, allot.LabelSpec{Barcode: b}), []string{"A-1", "Süd-1"}); err != nil {
			t.Errorf("%s of a non-ASCII ID: %v", b, err)
		}
	}

	// Render refuses such IDs too, even when the plan was checked for
	// others.
	p := mustPlan(t, allot.LabelSpec{Barcode: allot.BarcodeCode128}, lpIDs.samples(t))
	_, err := p.Render([]string{"LPAA0", "Süd-1"})
	wantInvalid(t, err, "barcode")
	p = mustPlan(t, allot.LabelSpec{Barcode: allot.BarcodeGS1128}, ssccIDs.samples(t))
	_, err = p.Render([]string{"12345"})
	wantInvalid(t, err, "barcode")
}

func TestCheckRefusesWhatDoesNotFit(t *testing.T) {
	long := policyIDs.samples(t) // 15 characters
	// Code 128 (code set B, as ZPL prints it) needs 11*15+35 = 200
	// modules and 20 of quiet zone at 2 dots each: 440 dots, and a 2x1in
	// label at 203 dpi has 406.
	c128 := setup(t, allot.LabelSpec{Barcode: allot.BarcodeCode128, Size: "2x1in", DPI: 203})
	_, err := label.Check(c128, long)
	wantInvalid(t, err, "size")
	// The same IDs fit as a QR code or a Data Matrix, or as Code 128 on
	// a wider label or at 300 dpi.
	for _, spec := range []allot.LabelSpec{
		{Barcode: allot.BarcodeQR, Size: "2x1in", DPI: 203},
		{Barcode: allot.BarcodeDataMatrix, Size: "2x1in", DPI: 203},
		{Barcode: allot.BarcodeCode128, Size: "4x2in", DPI: 203},
		{Barcode: allot.BarcodeCode128, Size: "2x1in", DPI: 300},
	} {
		p, err := label.Check(setup(t, spec), long)
		if err != nil {
			t.Errorf("%+v: %v", spec, err)
			continue
		}
		if p.Module < label.MinModuleDots {
			t.Errorf("%+v: module %d dots, below %d", spec, p.Module, label.MinModuleDots)
		}
	}

	// Text that can't be read across the label.
	_, err = label.Check(setup(t, allot.LabelSpec{Barcode: allot.BarcodeQR, Size: "15x15mm"}), []string{"A-0000000000000000000000001"})
	wantInvalid(t, err, "size")
}

func TestPlanSizeInDots(t *testing.T) {
	for _, c := range []struct {
		size string
		dpi  int
		w, h int
	}{
		{"2x1in", 203, 406, 203},
		{"2x1in", 300, 600, 300},
		{"4x6in", 203, 812, 1218},
		{"4x6in", 300, 1200, 1800},
		{"50x25mm", 203, 400, 200},
		{"50x25mm", 300, 591, 295},
	} {
		p := mustPlan(t, allot.LabelSpec{Size: c.size, DPI: c.dpi}, lpIDs.samples(t))
		if p.W != c.w || p.H != c.h {
			t.Errorf("%s at %d dpi: %dx%d dots, want %dx%d", c.size, c.dpi, p.W, p.H, c.w, c.h)
		}
	}
}

func TestRenderPNGIsOneLabel(t *testing.T) {
	p := mustPlan(t, allot.LabelSpec{Format: allot.LabelPNG}, lpIDs.samples(t))
	_, err := p.Render(lpIDs.samples(t))
	wantInvalid(t, err, "format")
	doc, err := p.Render(lpIDs.samples(t)[:1])
	if err != nil {
		t.Fatal(err)
	}
	if doc.ContentType != label.ContentPNG || len(doc.Body) == 0 {
		t.Errorf("got %s of %d bytes, want a PNG", doc.ContentType, len(doc.Body))
	}
	if _, err := p.Render(nil); err == nil {
		t.Error("Render of no IDs: no error")
	}
}

func TestSetupRefusals(t *testing.T) {
	for _, c := range []struct {
		spec  allot.LabelSpec
		field string
	}{
		{allot.LabelSpec{Format: "svg"}, "format"},
		{allot.LabelSpec{Format: "PDF"}, "format"},
		{allot.LabelSpec{Barcode: "ean13"}, "barcode"},
		{allot.LabelSpec{Barcode: "code39"}, "barcode"},
		{allot.LabelSpec{Size: "a6"}, "size"},
		{allot.LabelSpec{Size: "2x1"}, "size"},
		{allot.LabelSpec{DPI: 600}, "dpi"},
		{allot.LabelSpec{DPI: -203}, "dpi"},
		{allot.LabelSpec{Layout: "a5"}, "layout"},
		{allot.LabelSpec{Layout: "A4"}, "layout"},
		// Sheets are for PDF only.
		{allot.LabelSpec{Format: allot.LabelZPL, Layout: "a4"}, "layout"},
		{allot.LabelSpec{Format: allot.LabelPNG, Layout: "letter"}, "layout"},
		// A label bigger than the sheet.
		{allot.LabelSpec{Format: allot.LabelPDF, Layout: "a4", Size: "250x250mm"}, "layout"},
		{allot.LabelSpec{Format: allot.LabelPDF, Layout: "letter", Size: "210x100mm"}, "layout"},
		{allot.LabelSpec{Title: strings.Repeat("x", allot.LabelTitleMax+1)}, "title"},
		{allot.LabelSpec{Title: "line\nbreak"}, "title"},
	} {
		_, err := c.spec.Setup()
		wantInvalid(t, err, c.field)
	}
}

func TestSetup(t *testing.T) {
	s := setup(t, allot.LabelSpec{})
	want := allot.LabelSetup{Format: allot.LabelPDF, Barcode: allot.BarcodeCode128, WidthMM: 50.8, HeightMM: 25.4, DPI: 203, Text: true}
	if s != want {
		t.Errorf("defaults: got %+v, want %+v", s, want)
	}

	no := false
	s = setup(t, allot.LabelSpec{Format: allot.LabelZPL, Barcode: allot.BarcodeQR, Size: "62x29mm", DPI: 300, Layout: "label", Text: &no, Title: "Lager Süd"})
	want = allot.LabelSetup{Format: allot.LabelZPL, Barcode: allot.BarcodeQR, WidthMM: 62, HeightMM: 29, DPI: 300, Title: "Lager Süd"}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}

	// A 4x6in label fits an A4 sheet once across and once down.
	s = setup(t, allot.LabelSpec{Format: allot.LabelPDF, Layout: "a4", Size: "4x6in"})
	if s.SheetMM != allot.LabelLayouts["a4"] {
		t.Errorf("a4 sheet: got %v, want %v", s.SheetMM, allot.LabelLayouts["a4"])
	}
	if cols, rows := allot.SheetGrid(s.SheetMM, s.WidthMM, s.HeightMM); cols < 1 || rows < 1 {
		t.Errorf("4x6in on a4: %dx%d labels", cols, rows)
	}
	if cols, rows := allot.SheetGrid(allot.LabelLayouts["a4"], 50.8, 25.4); cols != 3 || rows != 11 {
		t.Errorf("2x1in on a4: %dx%d labels, want 3x11", cols, rows)
	}
	if cols, rows := allot.SheetGrid(allot.LabelLayouts["a4"], 250, 250); cols >= 1 && rows >= 1 {
		t.Errorf("250x250mm on a4: %dx%d labels, want none", cols, rows)
	}
}

func TestParseLabelSize(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	for name, wh := range allot.LabelSizes {
		w, h, err := allot.ParseLabelSize(name)
		if err != nil || w != wh[0] || h != wh[1] {
			t.Errorf("%s: got %g, %g, %v; want %g, %g", name, w, h, err, wh[0], wh[1])
		}
	}
	for _, c := range []struct {
		size string
		w, h float64
	}{
		{"2x1in", 50.8, 25.4},
		{"4X6IN", 101.6, 152.4},
		{"62x29mm", 62, 29},
		{"2.25x1.25in", 57.15, 31.75},
		{"15x300mm", 15, 300},
		{"100.5x50.25mm", 100.5, 50.25},
	} {
		w, h, err := allot.ParseLabelSize(c.size)
		if err != nil || !near(w, c.w) || !near(h, c.h) {
			t.Errorf("%s: got %g, %g, %v; want %g, %g", c.size, w, h, err, c.w, c.h)
		}
	}
	for _, size := range []string{
		"", "0x0mm", "abc", "10x10mm", "NaNxNaNmm", "nanx20mm", "infxinfmm", "-50x25mm",
		"14.9x20mm", "20x300.1mm", "62x29", "62mmx29mm", "62x29cm", "x29mm", "62xmm", "0.5x1in", "12x12in",
	} {
		_, _, err := allot.ParseLabelSize(size)
		wantInvalid(t, err, "size")
	}
}

func TestLabelSpecOver(t *testing.T) {
	yes, no := true, false
	base := &allot.LabelSpec{Format: allot.LabelZPL, Barcode: allot.BarcodeQR, Size: "4x6in", DPI: 300, Layout: "label", Text: &no, Title: "Base"}
	// Empty fields come from the base.
	if got := (allot.LabelSpec{}).Over(base); got != *base {
		t.Errorf("empty over base: got %+v, want %+v", got, *base)
	}
	// Request fields win.
	req := allot.LabelSpec{Format: allot.LabelPDF, Barcode: allot.BarcodeDataMatrix, Size: "2x1in", DPI: 203, Layout: "a4", Text: &yes, Title: "Request"}
	if got := req.Over(base); got != req {
		t.Errorf("full request over base: got %+v, want %+v", got, req)
	}
	// A mix.
	got := allot.LabelSpec{Barcode: allot.BarcodeCode128, DPI: 203}.Over(base)
	want := allot.LabelSpec{Format: allot.LabelZPL, Barcode: allot.BarcodeCode128, Size: "4x6in", DPI: 203, Layout: "label", Text: &no, Title: "Base"}
	if got != want {
		t.Errorf("mix: got %+v, want %+v", got, want)
	}
	// No base.
	if got := req.Over(nil); got != req {
		t.Errorf("over nil: got %+v, want %+v", got, req)
	}
	// Over does not change the base.
	if base.Title != "Base" || base.Text != &no || *base.Text {
		t.Errorf("base changed: %+v", *base)
	}
}

func TestSSCCCheckDigit(t *testing.T) {
	// GS1's example SSCC: extension 0, company prefix 0614141, serial
	// 123456789, check digit 0.
	if got := ssccIDs.id(t, 614141123456789); got != "006141411234567890" {
		t.Errorf("SSCC: got %s, want 006141411234567890", got)
	}
	// An independent mod-10 over every SSCC the tests print.
	for _, id := range ssccIDs.spread(t, 50, 1) {
		sum := 0
		for i := 0; i < 17; i++ {
			d := int(id[i] - '0')
			if i%2 == 0 { // weight 3 from the rightmost of the 17
				d *= 3
			}
			sum += d
		}
		if want := byte('0' + (10-sum%10)%10); len(id) != 18 || id[17] != want {
			t.Errorf("SSCC %s: check digit want %c", id, want)
		}
	}
}

// The renderers share the Go Mono font (golang.org/x/image's gomono.TTF,
// a package variable): rendering must only read it.
func TestRenderLeavesTheFontAlone(t *testing.T) {
	orig := bytes.Clone(gomono.TTF)
	for _, f := range []allot.LabelFormat{allot.LabelPDF, allot.LabelPNG} {
		p := mustPlan(t, allot.LabelSpec{Format: f, Title: "Lager Süd"}, lpIDs.samples(t))
		if _, err := p.Render(lpIDs.samples(t)[:1]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gomono.TTF, orig) {
			n := 0
			for i := range orig {
				if gomono.TTF[i] != orig[i] {
					n++
				}
			}
			t.Errorf("rendering a %s changed %d bytes of gomono.TTF", f, n)
			copy(gomono.TTF, orig)
		}
	}
}

// Requests render at the same time (run with -race).
func TestRenderConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		f := []allot.LabelFormat{allot.LabelPDF, allot.LabelPNG, allot.LabelZPL}[i%3]
		p := mustPlan(t, allot.LabelSpec{Format: f, Barcode: allot.BarcodeQR}, lpIDs.samples(t))
		ids := lpIDs.spread(t, 3, uint64(i))
		if f == allot.LabelPNG {
			ids = ids[:1]
		}
		wg.Go(func() {
			for range 4 {
				if _, err := p.Render(ids); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

// TestCheckSizesForEveryCheckCharacter: a 2D code laid out from a
// sequence's first and last IDs has room for every ID between, although a
// mod37 check character can be a digit, a letter or *, which changes the
// QR mode and the Data Matrix digit pairs (a plan sized from the samples
// alone was too small for 00040M).
func TestCheckSizesForEveryCheckCharacter(t *testing.T) {
	for _, src := range []string{"{n:5}{check:mod37}", "00000{n:19}{check:mod37}", "LOT-{n:AA9}{check:mod37}"} {
		tmpl := format.MustParse(src)
		maxN := int64(99998)
		if c, ok := tmpl.Capacity(); ok {
			maxN = c - 1
		}
		samples := []string{}
		for _, n := range []int64{39, maxN} {
			id, err := tmpl.Render(n, format.Date{})
			if err != nil {
				t.Fatal(err)
			}
			samples = append(samples, id)
		}
		for _, b := range []allot.Symbology{allot.BarcodeQR, allot.BarcodeDataMatrix} {
			for _, f := range []allot.LabelFormat{allot.LabelPNG, allot.LabelZPL} {
				p := mustPlan(t, allot.LabelSpec{Format: f, Barcode: b, Size: "50x25mm"}, samples)
				for n := int64(39); n < 39+400 && n <= maxN; n++ {
					id, _ := tmpl.Render(n, format.Date{})
					if _, err := p.Render([]string{id}); err != nil {
						t.Fatalf("%s %s %s: %s does not fit the plan laid out from %q: %v", src, b, f, id, samples, err)
					}
				}
			}
		}
	}
}

// TestRefusedBeforeTheyBreak: text a PDF's font can't carry (beyond
// U+FFFF) and a Data Matrix whose first byte its encoder takes for FNC1
// are refused by Check; and should a library panic all the same, Render
// returns an error instead (a plan laid out for PNG, switched to PDF).
func TestRefusedBeforeTheyBreak(t *testing.T) {
	for _, tc := range []struct {
		spec    allot.LabelSpec
		samples []string
		field   string
	}{
		{allot.LabelSpec{Format: allot.LabelPDF, Barcode: allot.BarcodeQR}, []string{"📦0001"}, "format"},
		{allot.LabelSpec{Format: allot.LabelPDF, Title: "Lager 🚚"}, []string{"LP0001"}, "title"},
		{allot.LabelSpec{Format: allot.LabelPNG, Barcode: allot.BarcodeDataMatrix}, []string{"航-0042"}, "barcode"},
	} {
		setup, err := tc.spec.Setup()
		if err != nil {
			t.Fatal(err)
		}
		_, err = label.Check(setup, tc.samples)
		var ie *allot.InvalidError
		if !errors.As(err, &ie) || ie.Field != tc.field {
			t.Errorf("Check(%+v, %q) = %v, want an invalid %s", tc.spec, tc.samples, err, tc.field)
		}
	}
	p := mustPlan(t, allot.LabelSpec{Format: allot.LabelPNG, Barcode: allot.BarcodeQR}, []string{"📦0001"})
	p.Setup.Format = allot.LabelPDF
	if _, err := p.Render([]string{"📦0001", "📦0002"}); err == nil {
		t.Fatal("a PDF of text beyond U+FFFF rendered")
	}
	// 倉 starts with 0xE5 and encodes correctly.
	mustPlan(t, allot.LabelSpec{Format: allot.LabelPNG, Barcode: allot.BarcodeDataMatrix}, []string{"倉-0042"})
}
