// Package label renders allot IDs as labels a printer can print: ZPL II
// for Zebra and compatible label printers, PDF for office printers (one
// label per page, or A4/Letter sheets), and PNG for screens, with a
// Code 128, GS1-128 (SSCC), QR or Data Matrix bar code and the ID as text
// under it.
//
// A request is checked before anything is issued: [Check] lays the label
// out from the first and last IDs the sequence can render, and refuses a
// label the IDs can't fit or a bar code can't carry; [Next] then issues
// the numbers exactly as allot.Service.Next does and renders them while
// delivering, so a refused label issues nothing and an undelivered one
// gives its numbers back. [Reprint] renders numbers already issued.
//
// Every label of a request has one layout, fixed by Check: the module
// size of the bar code (a whole number of printer dots, at least
// MinModuleDots), its height, the font size. The bar code symbols come
// from github.com/boombuler/barcode and the PDF from
// codeberg.org/go-pdf/fpdf; ZPL is written here, and prints its bar codes
// with the printer's own ^BC, ^BQ and ^BX commands.
package label

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/allot/allot"
	"github.com/allot/allot/format"
)

// MinModuleDots is the narrowest bar (or smallest 2D module) a label is
// printed with, in printer dots: 2 dots is 0.25 mm at 203 dpi, about the
// smallest X dimension handheld scanners read reliably.
const MinModuleDots = 2

// Content types of the documents.
const (
	ContentZPL = "application/zpl"
	ContentPDF = "application/pdf"
	ContentPNG = "image/png"
)

// Document is a rendered label document.
type Document struct {
	ContentType string
	Body        []byte
}

// Plan is a checked label layout, in printer dots, shared by every label
// of one request.
type Plan struct {
	Setup allot.LabelSetup
	// W and H are the label's size in dots.
	W, H int
	// Margin is the blank border in dots.
	Margin int
	// Module is the bar code's module size in dots; 0 without a bar code.
	Module int
	// Modules is the widest symbol the IDs can need, in modules (a linear
	// code's width, a 2D code's side), quiet zones not included.
	Modules int
	// BarTop and BarHeight place the bar code vertically.
	BarTop, BarHeight int
	// TitleTop, TextTop and FontH place the title and the ID's text; FontH
	// is the text's height in dots.
	TitleTop, TextTop, FontH int
}

func (p *Plan) dotsPerMM() float64 { return float64(p.Setup.DPI) / 25.4 }

// mm converts dots to millimetres.
func (p *Plan) mm(dots int) float64 { return float64(dots) / p.dotsPerMM() }

// Check lays out a label for IDs like samples (the first and last IDs
// the sequence can render: they bound the others' length) and refuses,
// as *allot.InvalidError naming the field to change, a bar code that
// can't carry them or a label they don't fit on.
func Check(setup allot.LabelSetup, samples []string) (*Plan, error) {
	dpmm := float64(setup.DPI) / 25.4
	p := &Plan{Setup: setup, W: int(math.Round(setup.WidthMM * dpmm)), H: int(math.Round(setup.HeightMM * dpmm))}
	p.Margin = int(math.Round(1.5 * dpmm))
	longest := 0
	for _, id := range samples {
		if err := checkEncodable(setup.Barcode, id); err != nil {
			return nil, err
		}
		longest = max(longest, len(id))
	}
	aw, top, bottom := p.W-2*p.Margin, p.Margin, p.H-p.Margin
	fontH := int(math.Round(min(max(float64(p.H)*0.12, 2.2*dpmm), 6*dpmm)))
	if setup.Barcode == allot.BarcodeNone {
		fontH = int(math.Round(min(float64(p.H)*0.3, 12*dpmm)))
	}
	// The text must fit across: a character is about 0.6 of its height.
	if longest > 0 {
		fontH = min(fontH, int(float64(aw)/(0.62*float64(longest))))
	}
	if (setup.Text || setup.Barcode == allot.BarcodeNone) && fontH < int(1.5*dpmm) {
		return nil, allot.Invalidf("size", "IDs of %d characters don't fit as text across %s: use a wider size, or text false", longest, setup)
	}
	p.FontH = fontH
	line := fontH + fontH/4
	if setup.Title != "" {
		p.TitleTop = top
		top += line
	}
	if setup.Text || setup.Barcode == allot.BarcodeNone {
		bottom -= line
		p.TextTop = bottom + fontH/8
	}
	if setup.Barcode == allot.BarcodeNone {
		p.TextTop = (p.H - fontH) / 2
		return p, nil
	}
	ah := bottom - top - p.Margin/2
	for _, id := range samples {
		s, err := encode(setup.Barcode, id)
		if err != nil {
			return nil, allot.Invalidf("barcode", "%v", err)
		}
		p.Modules = max(p.Modules, s.w)
		if setup.Barcode == allot.BarcodeCode128 {
			p.Modules = max(p.Modules, code128Bound(len(id)))
		}
	}
	q := quiet(setup.Barcode)
	if linear(setup.Barcode) {
		p.Module = aw / (p.Modules + 2*q)
		p.BarTop, p.BarHeight = top, ah
		if p.BarHeight < int(5*dpmm) {
			return nil, allot.Invalidf("size", "%s leaves %.1f mm for the bar code's height, and it needs 5 mm: use a taller size, or leave out title or text", setup, p.mm(p.BarHeight))
		}
	} else {
		side := min(aw, ah)
		p.Module = side / (p.Modules + 2*q)
		p.BarHeight = p.Module * p.Modules
		p.BarTop = top + (ah-p.BarHeight)/2
	}
	p.Module = min(p.Module, 10) // ZPL's ^BY and ^BQ take at most 10
	if p.Module < MinModuleDots {
		return nil, allot.Invalidf("size", "a %s of IDs like %q needs %d modules (with quiet zones) at %d dots each, and %s has room for %d dots: use a larger size, dpi 300, or a 2D bar code (qr, datamatrix)",
			setup.Barcode, samples[len(samples)-1], p.Modules+2*q, MinModuleDots, setup, aw)
	}
	return p, nil
}

// Render renders ids as one document in the plan's format.
func (p *Plan) Render(ids []string) (Document, error) {
	if len(ids) == 0 {
		return Document{}, fmt.Errorf("label: nothing to render")
	}
	for _, id := range ids {
		if err := checkEncodable(p.Setup.Barcode, id); err != nil {
			return Document{}, err
		}
	}
	switch p.Setup.Format {
	case allot.LabelZPL:
		b, err := p.zpl(ids)
		return Document{ContentZPL, b}, err
	case allot.LabelPNG:
		if len(ids) != 1 {
			return Document{}, allot.Invalidf("format", "png renders one label: ask for count 1, or use pdf or zpl for %d", len(ids))
		}
		b, err := p.png(ids[0])
		return Document{ContentPNG, b}, err
	}
	b, err := p.pdf(ids)
	return Document{ContentPDF, b}, err
}

// symbolFor encodes id and checks that it fits the plan's bar code area.
func (p *Plan) symbolFor(id string) (*symbol, int, error) {
	s, err := encode(p.Setup.Barcode, id)
	if err != nil {
		return nil, 0, err
	}
	if s.w > p.Modules {
		return nil, 0, fmt.Errorf("label: the bar code of %q needs %d modules, more than the %d its sequence's first and last IDs need", id, s.w, p.Modules)
	}
	return s, p.Module, nil
}

// bars calls fn with every dark rectangle of id's bar code (runs of
// dark modules in a row), in dots from the label's top left corner.
// Without a bar code it calls nothing.
func (p *Plan) bars(id string, fn func(x, y, w, h int)) error {
	if p.Setup.Barcode == allot.BarcodeNone {
		return nil
	}
	s, m, err := p.symbolFor(id)
	if err != nil {
		return err
	}
	left := p.barLeft(s.w)
	for y := 0; y < s.h; y++ {
		top, h := p.BarTop+y*m, m
		if s.h == 1 {
			top, h = p.BarTop, p.BarHeight
		}
		s.runs(y, func(x0, n int) { fn(left+x0*m, top, n*m, h) })
	}
	return nil
}

// barLeft is where a symbol w modules wide starts, centred.
func (p *Plan) barLeft(w int) int { return (p.W - w*p.Module) / 2 }

// Samples renders the first and last numbers seq can issue on date d:
// every other ID of the period is between them in length.
func Samples(seq *allot.Sequence, d format.Date) ([]string, error) {
	tmpl, err := seq.Template()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range []int64{seq.Start, seq.Max} {
		id, err := tmpl.Render(n, d)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// Request is a label request: the numbers to take, as for Next, and how
// to print them.
type Request struct {
	allot.NextParams
	Spec allot.LabelSpec
	// Deliver hands the document to the caller (an HTTP server writes
	// it). As with NextParams.Deliver, numbers it could not deliver are
	// given back unless the request has an Idempotency-Key.
	Deliver func(*allot.NextResult, Document) error
}

// Next issues numbers exactly as svc.Next does and renders their labels.
// The label is checked first, against the sequence's saved settings
// (what Spec leaves out) and its first and last IDs, so a refused label
// issues nothing; an ID that fails to render after all is not delivered,
// so its numbers are given back as for any undelivered answer.
func Next(ctx context.Context, svc *allot.Service, r Request) (*allot.NextResult, error) {
	st, err := svc.SequenceGet(ctx, r.Sequence)
	if err != nil {
		return nil, err
	}
	plan, err := plan(&st.Sequence, r.Spec, r.Date, svc)
	if err != nil {
		return nil, err
	}
	count := max(r.Count, 1)
	if count > allot.LabelCountMax {
		return nil, allot.Invalidf("count", "at most %d labels in one request, got %d", allot.LabelCountMax, count)
	}
	if plan.Setup.Format == allot.LabelPNG && count != 1 {
		return nil, allot.Invalidf("format", "png renders one label: ask for count 1, or use pdf or zpl for %d", count)
	}
	p := r.NextParams
	// Printed numbers are written to the ledger as issued, never served
	// from a cached lease, so a reprint finds them issued at once.
	p.Record = true
	p.Deliver = func(res *allot.NextResult) error {
		doc, err := plan.Render(res.IDs)
		if err != nil {
			return err
		}
		return r.Deliver(res, doc)
	}
	return svc.Next(ctx, p)
}

// Reprint renders labels for numbers already issued (see
// allot.Service.Reprint), with the sequence's saved settings under spec,
// and returns the IDs it printed.
func Reprint(ctx context.Context, svc *allot.Service, p allot.ReprintParams, spec allot.LabelSpec) (Document, []string, error) {
	st, err := svc.SequenceGet(ctx, p.Sequence)
	if err != nil {
		return Document{}, nil, err
	}
	plan, err := plan(&st.Sequence, spec, "", svc)
	if err != nil {
		return Document{}, nil, err
	}
	ids, err := svc.Reprint(ctx, p)
	if err != nil {
		return Document{}, nil, err
	}
	if plan.Setup.Format == allot.LabelPNG && len(ids) != 1 {
		return Document{}, nil, allot.Invalidf("format", "png renders one label: reprint one ID, or use pdf or zpl for %d", len(ids))
	}
	doc, err := plan.Render(ids)
	return doc, ids, err
}

// plan checks spec over seq's saved settings for IDs of date (YYYY-MM-DD,
// "" for today).
func plan(seq *allot.Sequence, spec allot.LabelSpec, date string, svc *allot.Service) (*Plan, error) {
	setup, err := spec.Over(seq.Label).Setup()
	if err != nil {
		return nil, err
	}
	loc, err := seq.Location()
	if err != nil {
		return nil, err
	}
	d := allot.Today(svc.Now(), loc)
	if date != "" {
		if d, err = allot.ParseDate("date", date); err != nil {
			return nil, err
		}
	}
	samples, err := Samples(seq, d)
	if err != nil {
		return nil, allot.Invalidf("date", "%v", err)
	}
	return Check(setup, samples)
}

// itoa is strconv.Itoa, short for the ZPL writer.
func itoa(n int) string { return strconv.Itoa(n) }
