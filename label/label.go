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
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

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
	// and TitleH are their heights in dots.
	TitleTop, TextTop, FontH, TitleH int

	// sizes caches the 2D symbol size of each ID shape (see shapeOf).
	sizes *sync.Map
}

func (p *Plan) dotsPerMM() float64 { return float64(p.Setup.DPI) / 25.4 }

// mm converts dots to millimetres.
func (p *Plan) mm(dots int) float64 { return float64(dots) / p.dotsPerMM() }

// Check lays out a label for IDs like samples (the shortest and longest
// IDs to print: a sequence's IDs differ only in their number and check
// characters) and refuses, as *allot.InvalidError naming the field to
// change, a bar code that can't carry them or a label they don't fit on.
// A 2D code is sized for the samples with their digits as letters, the
// most room their number and check characters can take.
func Check(setup allot.LabelSetup, samples []string) (*Plan, error) {
	if len(samples) == 0 {
		return nil, fmt.Errorf("label: no sample IDs to lay out")
	}
	dpmm := float64(setup.DPI) / 25.4
	p := &Plan{Setup: setup, W: int(math.Round(setup.WidthMM * dpmm)), H: int(math.Round(setup.HeightMM * dpmm)), sizes: &sync.Map{}}
	p.Margin = int(math.Round(1.5 * dpmm))
	longest := 0
	for _, id := range samples {
		if err := checkEncodable(setup.Barcode, id); err != nil {
			return nil, err
		}
		if setup.Format == allot.LabelPDF {
			if err := checkFont("format", id); err != nil {
				return nil, err
			}
		}
		longest = max(longest, len(id))
	}
	if setup.Format == allot.LabelPDF {
		if err := checkFont("title", setup.Title); err != nil {
			return nil, err
		}
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
		// The title gets its own size, at most the text's.
		dflt := int(math.Round(min(max(float64(p.H)*0.12, 2.2*dpmm), 6*dpmm)))
		p.TitleH = min(dflt, int(float64(aw)/(0.62*float64(utf8.RuneCountInString(setup.Title)))))
		if p.TitleH < int(1.5*dpmm) {
			return nil, allot.Invalidf("title", "%d characters don't fit across %s: shorten the title or use a wider size", utf8.RuneCountInString(setup.Title), setup)
		}
		p.TitleTop = top
		top += p.TitleH + p.TitleH/4
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
		for _, v := range []string{id, widest(setup.Barcode, id)} {
			s, err := encode(setup.Barcode, v)
			if err != nil {
				return nil, allot.Invalidf("barcode", "%v", err)
			}
			p.Modules = max(p.Modules, s.w)
		}
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
		p.Module = min(p.Module, 10) // ZPL's ^BY takes at most 10
	} else {
		side := min(aw, ah)
		p.Module = min(side/(p.Modules+2*q), 10) // and ^BQ at most 10
		p.BarHeight = p.Module * p.Modules
		p.BarTop = top + (ah-p.BarHeight)/2
	}
	if p.Module < MinModuleDots {
		return nil, allot.Invalidf("size", "a %s of IDs like %q needs %d modules (with quiet zones) at %d dots each, and %s has room for %d dots: use a larger size, dpi 300, a 2D bar code (qr, datamatrix), or a lower max for the sequence",
			setup.Barcode, samples[len(samples)-1], p.Modules+2*q, MinModuleDots, setup, aw)
	}
	if setup.Barcode == allot.BarcodeDataMatrix && setup.Format == allot.LabelZPL {
		if _, ok := dataMatrixEscape(samples[0]); !ok {
			return nil, allot.Invalidf("barcode", "IDs like %q use every character ZPL's Data Matrix could take as its escape character: use format png or pdf, or another bar code", samples[0])
		}
	}
	return p, nil
}

// widest is id with its digits as letters: where a sequence's IDs differ
// (the number, a mod37 check character that may be a digit, a letter or
// *), that is the most a 2D code can need for them (QR byte mode, no
// Data Matrix digit pairs).
func widest(b allot.Symbology, id string) string {
	if linear(b) {
		return id
	}
	w := []byte(id)
	for i, c := range w {
		if c >= '0' && c <= '9' {
			w[i] = 'a'
		}
	}
	return string(w)
}

// fits refuses an ID the plan has no room for: one longer, or with a
// bigger 2D symbol, than the samples it was laid out for.
func (p *Plan) fits(id string) error {
	need := 0
	switch p.Setup.Barcode {
	case allot.BarcodeNone:
		return nil
	case allot.BarcodeCode128:
		need = code128Bound(len(id))
	default:
		w, _, err := p.symbolSize(id)
		if err != nil {
			return err
		}
		need = w
	}
	if need > p.Modules {
		return allot.Invalidf("size", "the bar code of %q needs %d modules, more than the %d the label was laid out for (numbers past the layout's headroom were taken meanwhile): retry, or use a larger size", id, need, p.Modules)
	}
	return nil
}

// symbolSize is the size in modules of id's 2D symbol. It depends only
// on the ID's shape, and the IDs of a sequence have few shapes, so the
// (slow) encoding runs once a shape.
func (p *Plan) symbolSize(id string) (w, h int, err error) {
	key := shapeOf(id)
	if v, ok := p.sizes.Load(key); ok {
		wh := v.([2]int)
		return wh[0], wh[1], nil
	}
	s, err := encode(p.Setup.Barcode, id)
	if err != nil {
		return 0, 0, err
	}
	p.sizes.Store(key, [2]int{s.w, s.h})
	return s.w, s.h, nil
}

// shapeOf is what a 2D symbol's size depends on: the ID's length and, at
// each position, whether it holds a digit (QR numeric mode, Data Matrix
// digit pairs), a QR alphanumeric, other ASCII, or a byte of a non-ASCII
// character.
func shapeOf(id string) string {
	k := make([]byte, len(id))
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= '0' && c <= '9':
			k[i] = 'd'
		case c >= 'A' && c <= 'Z' || strings.IndexByte(" $%*+-./:", c) >= 0:
			k[i] = 'a'
		case c < 0x80:
			k[i] = 'b'
		default:
			k[i] = 'x'
		}
	}
	return string(k)
}

// Render renders ids as one document in the plan's format. A panic of
// a library it uses is returned as an error, so a caller that has taken
// numbers for the document can still give them back.
func (p *Plan) Render(ids []string) (doc Document, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = Document{}, fmt.Errorf("label: rendering %d labels failed: %v", len(ids), r)
		}
	}()
	if len(ids) == 0 {
		return Document{}, fmt.Errorf("label: nothing to render")
	}
	for _, id := range ids {
		if err := checkEncodable(p.Setup.Barcode, id); err != nil {
			return Document{}, err
		}
		if err := p.fits(id); err != nil {
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

// bars calls fn with every dark rectangle of id's bar code (runs of
// dark modules in a row), in dots from the label's top left corner.
// Without a bar code it calls nothing.
func (p *Plan) bars(id string, fn func(x, y, w, h int)) error {
	if p.Setup.Barcode == allot.BarcodeNone {
		return nil
	}
	s, err := encode(p.Setup.Barcode, id)
	if err != nil {
		return err
	}
	m := p.Module
	left, top0 := p.barLeft(s.w), p.barTop(s.h)
	for y := 0; y < s.h; y++ {
		top, h := top0+y*m, m
		if s.h == 1 {
			top, h = p.BarTop, p.BarHeight
		}
		s.runs(y, func(x0, n int) { fn(left+x0*m, top, n*m, h) })
	}
	return nil
}

// barLeft is where a symbol w modules wide starts, centred.
func (p *Plan) barLeft(w int) int { return (p.W - w*p.Module) / 2 }

// barTop is where a 2D symbol h modules high starts, centred in the room
// laid out for the largest (a linear code fills its room).
func (p *Plan) barTop(h int) int {
	if linear(p.Setup.Barcode) {
		return p.BarTop
	}
	return p.BarTop + (p.Modules-h)*p.Module/2
}

// Samples renders numbers lo and hi of seq on date d: every ID of the
// numbers between them is between those two in length.
func Samples(seq *allot.Sequence, d format.Date, lo, hi int64) ([]string, error) {
	tmpl, err := seq.Template()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range []int64{lo, hi} {
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

// Headroom is how far past a period's next number a label request is
// laid out for when the sequence's whole range does not fit the label
// (a sequence left at the default max of 2^63-1 has 19-digit IDs): the
// IDs of numbers up to next+count-1+Headroom fit, so numbers others take
// meanwhile do not make this request's IDs too long. Should they after
// all, the document is refused (400, field size) after the numbers were
// taken: they are given back, as for any answer that could not be
// delivered, unless the request has an Idempotency-Key, whose retry is
// laid out for its own numbers (and a reprint by the key, at a larger
// size, prints them).
const Headroom = 1_000_000

// Next issues numbers exactly as svc.Next does and renders their labels.
// The label is checked first, against the sequence's saved settings
// (what Spec leaves out) and the IDs the request can get, so a refused
// label issues nothing; an ID that fails to render after all is not
// delivered, so its numbers are given back as for any undelivered
// answer. A keyed retry (a replay) is checked against the ledger as a
// reprint is: numbers voided since are not printed again.
func Next(ctx context.Context, svc *allot.Service, r Request) (*allot.NextResult, error) {
	count := max(r.Count, 1)
	if count > allot.LabelCountMax {
		return nil, allot.Invalidf("count", "at most %d labels in one request, got %d", allot.LabelCountMax, count)
	}
	st, err := svc.SequenceGetAt(ctx, r.Sequence, r.Date)
	if err != nil {
		return nil, err
	}
	setup, err := r.Spec.Over(st.Label).Setup()
	if err != nil {
		return nil, err
	}
	if err := checkCount(setup, count); err != nil {
		return nil, err
	}
	var plan *Plan
	if r.IdempotencyKey != "" {
		// A retry is laid out for the numbers its first request got (and
		// refused if one was voided since), not for the counter now.
		ids, err := svc.Reprint(ctx, allot.ReprintParams{Sequence: r.Sequence, IdempotencyKey: r.IdempotencyKey, Max: maxCount(setup)})
		switch {
		case err == nil:
			if plan, err = Check(setup, bounds(ids)); err != nil {
				return nil, err
			}
		case !errors.Is(err, allot.ErrNotFound):
			return nil, err
		}
	}
	if plan == nil {
		if plan, err = planIssue(setup, st, r.Date, count, svc); err != nil {
			return nil, err
		}
	}
	p := r.NextParams
	// Printed numbers are written to the ledger as issued, never served
	// from a cached lease, so a reprint finds them issued at once.
	p.Record = true
	p.Deliver = func(res *allot.NextResult) error {
		if res.Replayed {
			if _, err := svc.Reprint(ctx, allot.ReprintParams{Sequence: r.Sequence, IdempotencyKey: r.IdempotencyKey}); err != nil {
				return err
			}
		}
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
// and returns the IDs it printed. The label is laid out for those IDs.
func Reprint(ctx context.Context, svc *allot.Service, p allot.ReprintParams, spec allot.LabelSpec) (Document, []string, error) {
	st, err := svc.SequenceGet(ctx, p.Sequence)
	if err != nil {
		return Document{}, nil, err
	}
	setup, err := spec.Over(st.Label).Setup()
	if err != nil {
		return Document{}, nil, err
	}
	p.Max = maxCount(setup)
	ids, err := svc.Reprint(ctx, p)
	if err != nil {
		return Document{}, nil, err
	}
	if err := checkCount(setup, int64(len(ids))); err != nil {
		return Document{}, nil, err
	}
	plan, err := Check(setup, bounds(ids))
	if err != nil {
		return Document{}, nil, err
	}
	doc, err := plan.Render(ids)
	return doc, ids, err
}

// QRDocumentMax is the most QR labels one PDF renders: encoding a QR
// symbol takes about half a millisecond here, and a document must be
// rendered well within the request's deadline (after which a keyed
// request would keep its numbers and every retry run out of time too).
// ZPL leaves the encoding to the printer and takes LabelCountMax.
const QRDocumentMax = 2000

// bounds returns the shortest and the longest of ids, what Check needs.
func bounds(ids []string) []string {
	shortest, longest := ids[0], ids[0]
	for _, id := range ids {
		if len(id) < len(shortest) {
			shortest = id
		}
		if len(id) > len(longest) {
			longest = id
		}
	}
	return []string{shortest, longest}
}

// maxCount is the most labels one document of setup holds.
func maxCount(setup allot.LabelSetup) int {
	switch {
	case setup.Format == allot.LabelPNG:
		return 1
	case setup.Format == allot.LabelPDF && setup.Barcode == allot.BarcodeQR:
		return QRDocumentMax
	}
	return allot.LabelCountMax
}

// checkCount refuses more labels than one document of setup holds.
func checkCount(setup allot.LabelSetup, count int64) error {
	switch {
	case setup.Format == allot.LabelPNG && count != 1:
		return allot.Invalidf("format", "png renders one label: ask for one, or use pdf or zpl for %d", count)
	case setup.Format == allot.LabelPDF && setup.Barcode == allot.BarcodeQR && count > QRDocumentMax:
		return allot.Invalidf("count", "a PDF holds at most %d QR labels, got %d: split the roll, or use zpl", QRDocumentMax, count)
	}
	return nil
}

// planIssue lays out the labels of a request for count numbers of the
// period st shows, on date ("" for today): for every ID the sequence can
// render if they fit, else for the numbers from the period's next one on
// (see Headroom).
func planIssue(setup allot.LabelSetup, st *allot.SequenceState, date string, count int64, svc *allot.Service) (*Plan, error) {
	loc, err := st.Location()
	if err != nil {
		return nil, err
	}
	d := allot.Today(svc.Now(), loc)
	if date != "" {
		if d, err = allot.ParseDate("date", date); err != nil {
			return nil, err
		}
	}
	seq := &st.Sequence
	whole, err := Samples(seq, d, seq.Start, seq.Max)
	if err != nil {
		return nil, allot.Invalidf("date", "%v", err)
	}
	plan, err := Check(setup, whole)
	var ie *allot.InvalidError
	if err == nil || !errors.As(err, &ie) || ie.Field != "size" {
		return plan, err
	}
	lo := max(st.Next, seq.Start)
	hi := seq.Max
	if lo <= seq.Max && seq.Max-lo > count-1+Headroom {
		hi = lo + count - 1 + Headroom
	}
	if lo > hi || st.Remaining < count {
		return nil, &allot.ExhaustedError{Sequence: seq.Name, Period: st.Period, Requested: count, Remaining: st.Remaining}
	}
	near, err2 := Samples(seq, d, lo, hi)
	if err2 != nil {
		return nil, err
	}
	if plan, err2 := Check(setup, near); err2 == nil {
		return plan, nil
	}
	return nil, err
}

// itoa is strconv.Itoa, short for the ZPL writer.
func itoa(n int) string { return strconv.Itoa(n) }
