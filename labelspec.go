package allot

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// LabelFormat is the document a label request answers with.
type LabelFormat string

const (
	// LabelZPL is ZPL II text for Zebra and compatible printers: one
	// ^XA…^XZ label per ID.
	LabelZPL LabelFormat = "zpl"
	// LabelPDF is a PDF: one label per page at the label size, or sheets
	// of labels with a layout.
	LabelPDF LabelFormat = "pdf"
	// LabelPNG is one label as a PNG image (for a count of 1).
	LabelPNG LabelFormat = "png"
)

// Symbology is the bar code printed on a label.
type Symbology string

const (
	// BarcodeCode128 is Code 128, which encodes any printable ASCII.
	BarcodeCode128 Symbology = "code128"
	// BarcodeGS1128 is GS1-128 with application identifier (00): the ID
	// must be an 18-digit SSCC (for example {n:17}{check:gs1}).
	BarcodeGS1128 Symbology = "gs1-128"
	// BarcodeQR is a QR Code.
	BarcodeQR Symbology = "qr"
	// BarcodeDataMatrix is a Data Matrix (ECC 200).
	BarcodeDataMatrix Symbology = "datamatrix"
	// BarcodeNone prints the text only.
	BarcodeNone Symbology = "none"
)

// Label defaults and limits.
const (
	// LabelFormatDefault is the document format when none is given.
	LabelFormatDefault = LabelPDF
	// LabelBarcodeDefault is the bar code when none is given.
	LabelBarcodeDefault = BarcodeCode128
	// LabelSizeDefault is the label stock when none is given.
	LabelSizeDefault = "2x1in"
	// LabelDPIDefault is the printer resolution when none is given.
	LabelDPIDefault = 203
	// LabelCountMax is the most labels one request renders.
	LabelCountMax = 10_000
	// LabelSideMinMM and LabelSideMaxMM bound each side of a label.
	LabelSideMinMM, LabelSideMaxMM = 15.0, 300.0
	// LabelTitleMax is the longest title, in bytes of UTF-8.
	LabelTitleMax = 60
)

// LabelSizes are the label stocks known by name, in millimetres.
var LabelSizes = map[string][2]float64{
	"4x6in":     {101.6, 152.4},
	"4x3in":     {101.6, 76.2},
	"4x2in":     {101.6, 50.8},
	"3x2in":     {76.2, 50.8},
	"2x1in":     {50.8, 25.4},
	"100x150mm": {100, 150},
	"100x50mm":  {100, 50},
	"50x25mm":   {50, 25},
}

// LabelLayouts are the sheets a PDF can lay labels out on, in millimetres;
// "label" (the default) is one label per page at the label size.
var LabelLayouts = map[string][2]float64{
	"a4":     {210, 297},
	"letter": {215.9, 279.4},
}

// LabelSpec says how labels are printed. A zero field takes the
// sequence's saved label settings, then the default. The same fields are
// a sequence's saved settings (Sequence.Label).
type LabelSpec struct {
	// Format is zpl, pdf or png. Defaults to pdf.
	Format LabelFormat `json:"format,omitempty"`
	// Barcode is code128, gs1-128, qr, datamatrix or none. Defaults to
	// code128.
	Barcode Symbology `json:"barcode,omitempty"`
	// Size is a stock by name (4x6in, 4x3in, 4x2in, 3x2in, 2x1in,
	// 100x150mm, 100x50mm, 50x25mm) or WIDTHxHEIGHT in mm or in (for
	// example 62x29mm, 2.25x1.25in), 15–300 mm a side. Defaults to 2x1in.
	Size string `json:"size,omitempty"`
	// DPI is the printer resolution for ZPL and PNG: 203 or 300.
	// Defaults to 203.
	DPI int `json:"dpi,omitempty"`
	// Layout lays a PDF's labels out on sheets: label (one label per
	// page, the default), a4 or letter.
	Layout string `json:"layout,omitempty"`
	// Text, when false, leaves out the human-readable ID under the bar
	// code. Defaults to true.
	Text *bool `json:"text,omitempty"`
	// Title is a line printed above the bar code (a company or
	// warehouse name), up to 60 bytes of printable UTF-8; it must fit
	// across the label.
	Title string `json:"title,omitempty"`
}

// Over fills the fields s leaves empty from base (a sequence's saved
// settings; nil for none).
func (s LabelSpec) Over(base *LabelSpec) LabelSpec {
	if base == nil {
		return s
	}
	if s.Format == "" {
		s.Format = base.Format
	}
	if s.Barcode == "" {
		s.Barcode = base.Barcode
	}
	if s.Size == "" {
		s.Size = base.Size
	}
	if s.DPI == 0 {
		s.DPI = base.DPI
	}
	if s.Layout == "" {
		s.Layout = base.Layout
	}
	if s.Text == nil {
		s.Text = base.Text
	}
	if s.Title == "" {
		s.Title = base.Title
	}
	return s
}

// LabelSetup is a LabelSpec with its defaults filled in and its size and
// sheet read, as the renderer uses it.
type LabelSetup struct {
	Format  LabelFormat
	Barcode Symbology
	// WidthMM and HeightMM are the label's size.
	WidthMM, HeightMM float64
	DPI               int
	// SheetMM is the sheet a PDF lays labels out on; zero for one label
	// per page.
	SheetMM [2]float64
	// Text says whether the ID is printed under the bar code.
	Text  bool
	Title string
}

// Setup validates s and fills in the defaults. Every message names the
// field to fix.
func (s LabelSpec) Setup() (LabelSetup, error) {
	out := LabelSetup{Format: s.Format, Barcode: s.Barcode, DPI: s.DPI, Text: s.Text == nil || *s.Text, Title: s.Title}
	if out.Format == "" {
		out.Format = LabelFormatDefault
	}
	switch out.Format {
	case LabelZPL, LabelPDF, LabelPNG:
	default:
		return out, Invalidf("format", "%q is not a label format: use \"zpl\", \"pdf\" or \"png\"", s.Format)
	}
	if out.Barcode == "" {
		out.Barcode = LabelBarcodeDefault
	}
	switch out.Barcode {
	case BarcodeCode128, BarcodeGS1128, BarcodeQR, BarcodeDataMatrix, BarcodeNone:
	default:
		return out, Invalidf("barcode", "%q is not a bar code: use \"code128\", \"gs1-128\", \"qr\", \"datamatrix\" or \"none\"", s.Barcode)
	}
	size := s.Size
	if size == "" {
		size = LabelSizeDefault
	}
	w, h, err := ParseLabelSize(size)
	if err != nil {
		return out, err
	}
	out.WidthMM, out.HeightMM = w, h
	if out.DPI == 0 {
		out.DPI = LabelDPIDefault
	}
	if out.DPI != 203 && out.DPI != 300 {
		return out, Invalidf("dpi", "must be 203 or 300 (the resolutions of label printers), got %d", s.DPI)
	}
	switch s.Layout {
	case "", "label":
	default:
		sheet, ok := LabelLayouts[s.Layout]
		if !ok {
			return out, Invalidf("layout", "%q is not a layout: use \"label\" (one label per page), \"a4\" or \"letter\"", s.Layout)
		}
		if out.Format != LabelPDF {
			return out, Invalidf("layout", "%q lays out PDF sheets: use it with format \"pdf\", or leave layout out", s.Layout)
		}
		if cols, rows := SheetGrid(sheet, w, h); cols < 1 || rows < 1 {
			return out, Invalidf("layout", "a %gx%gmm label does not fit on a %s sheet with its margins: use a smaller size or layout \"label\"", w, h, s.Layout)
		}
		out.SheetMM = sheet
	}
	if err := ValidateLabel("title", s.Title, LabelTitleMax); err != nil {
		return out, err
	}
	return out, nil
}

// LabelSetting encodes saved label settings for a store's label column:
// JSON, or "" for none.
func LabelSetting(l *LabelSpec) string {
	if l == nil {
		return ""
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "" // a LabelSpec always encodes
	}
	return string(b)
}

// ParseLabelSetting decodes a store's label column ("" is none).
func ParseLabelSetting(v string) (*LabelSpec, error) {
	if v == "" {
		return nil, nil
	}
	var l LabelSpec
	if err := json.Unmarshal([]byte(v), &l); err != nil {
		return nil, fmt.Errorf("stored label settings %q: %w", v, err)
	}
	return &l, nil
}

// SheetMarginMM is the margin around a sheet of labels.
const SheetMarginMM = 5.0

// SheetGrid says how many labels of w×h mm fit across and down a sheet.
func SheetGrid(sheet [2]float64, w, h float64) (cols, rows int) {
	return int((sheet[0] - 2*SheetMarginMM) / w), int((sheet[1] - 2*SheetMarginMM) / h)
}

// ParseLabelSize reads a label size: a stock by name, or WIDTHxHEIGHT
// followed by mm or in.
func ParseLabelSize(size string) (w, h float64, err error) {
	if wh, ok := LabelSizes[strings.ToLower(size)]; ok {
		return wh[0], wh[1], nil
	}
	bad := func() (float64, float64, error) {
		return 0, 0, Invalidf("size", "%q is not a label size: use a stock (4x6in, 4x3in, 4x2in, 3x2in, 2x1in, 100x150mm, 100x50mm, 50x25mm) or WIDTHxHEIGHT with mm or in, for example 62x29mm", size)
	}
	s := strings.ToLower(size)
	unit := 1.0
	switch {
	case strings.HasSuffix(s, "mm"):
		s = s[:len(s)-2]
	case strings.HasSuffix(s, "in"):
		s, unit = s[:len(s)-2], 25.4
	default:
		return bad()
	}
	ws, hs, ok := strings.Cut(s, "x")
	if !ok {
		return bad()
	}
	w, err1 := strconv.ParseFloat(ws, 64)
	h, err2 := strconv.ParseFloat(hs, 64)
	if err1 != nil || err2 != nil || math.IsNaN(w) || math.IsNaN(h) {
		return bad()
	}
	w, h = w*unit, h*unit
	if w < LabelSideMinMM || h < LabelSideMinMM || w > LabelSideMaxMM || h > LabelSideMaxMM {
		return 0, 0, Invalidf("size", "%q is %.1fx%.1fmm: each side must be between %g and %g mm", size, w, h, LabelSideMinMM, LabelSideMaxMM)
	}
	return w, h, nil
}

// String names the setup in a sentence, for error messages.
func (l LabelSetup) String() string {
	return fmt.Sprintf("a %gx%gmm %s label at %d dpi", round1(l.WidthMM), round1(l.HeightMM), l.Barcode, l.DPI)
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
