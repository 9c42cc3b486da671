package label

import (
	"fmt"
	"image/color"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/code128"
	"github.com/boombuler/barcode/datamatrix"
	"github.com/boombuler/barcode/qr"

	"github.com/allot/allot"
)

// symbol is an encoded bar code as a grid of modules: w×h, h = 1 for a
// linear code.
type symbol struct {
	w, h int
	dark []bool // row-major
}

func (s *symbol) at(x, y int) bool { return s.dark[y*s.w+x] }

// runs calls fn for every horizontal run of dark modules of row y.
func (s *symbol) runs(y int, fn func(x0, n int)) {
	for x := 0; x < s.w; {
		if !s.at(x, y) {
			x++
			continue
		}
		x0 := x
		for x < s.w && s.at(x, y) {
			x++
		}
		fn(x0, x-x0)
	}
}

// quiet is the quiet zone a symbology needs on each side, in modules.
func quiet(b allot.Symbology) int {
	switch b {
	case allot.BarcodeCode128, allot.BarcodeGS1128:
		return 10
	case allot.BarcodeQR:
		return 4
	case allot.BarcodeDataMatrix:
		return 2
	}
	return 0
}

// linear reports whether b is a one-dimensional bar code.
func linear(b allot.Symbology) bool {
	return b == allot.BarcodeCode128 || b == allot.BarcodeGS1128
}

// qrLevel is the QR error correction level, the same in the PNG and PDF
// renderer and in ZPL's ^BQ (M: about 15% of the symbol may be damaged).
const qrLevel = qr.M

// encode encodes id as bar code b.
func encode(b allot.Symbology, id string) (*symbol, error) {
	var code barcode.Barcode
	var err error
	switch b {
	case allot.BarcodeCode128:
		code, err = code128.Encode(id)
	case allot.BarcodeGS1128:
		// FNC1 first marks GS1-128; (00) is the SSCC's application
		// identifier.
		code, err = code128.Encode(string(code128.FNC1) + "00" + id)
	case allot.BarcodeQR:
		code, err = qr.Encode(id, qrLevel, qr.Auto)
	case allot.BarcodeDataMatrix:
		code, err = datamatrix.Encode(id)
	default:
		return nil, fmt.Errorf("label: no bar code to encode for %q", b)
	}
	if err != nil {
		return nil, fmt.Errorf("label: %s can't encode %q: %w", b, id, err)
	}
	r := code.Bounds()
	s := &symbol{w: r.Dx(), h: r.Dy()}
	if linear(b) {
		s.h = 1
	}
	s.dark = make([]bool, s.w*s.h)
	for y := 0; y < s.h; y++ {
		for x := 0; x < s.w; x++ {
			g := color.GrayModel.Convert(code.At(r.Min.X+x, r.Min.Y+y)).(color.Gray)
			s.dark[y*s.w+x] = g.Y < 128
		}
	}
	return s, nil
}

// checkEncodable refuses an ID bar code b can't carry, with what to use
// instead.
func checkEncodable(b allot.Symbology, id string) error {
	switch b {
	case allot.BarcodeCode128:
		for i := 0; i < len(id); i++ {
			if c := id[i]; c < 0x20 || c > 0x7e {
				return allot.Invalidf("barcode", "code128 encodes printable ASCII only, and the sequence's IDs (such as %q) have %q: use \"qr\" or \"datamatrix\"", id, firstRune(id[i:]))
			}
		}
	case allot.BarcodeGS1128:
		if len(id) != 18 || !allDigits(id) {
			return allot.Invalidf("barcode", "gs1-128 prints an SSCC with application identifier (00), which is 18 digits, but the sequence's IDs (such as %q) are not: use a format that renders 17 digits and {check:gs1} (such as {n:17}{check:gs1}, or the extension digit and company prefix as text before {n:WIDTH}) with a max that keeps the number within its width (99999999999999999 for {n:17}), or barcode \"code128\"", id)
		}
	case allot.BarcodeDataMatrix:
		// boombuler/barcode reads a first byte of 232 as GS1's FNC1 (and
		// then every 232 after it), which misencodes a UTF-8 character
		// from U+8000 to U+8FFF at the start.
		if len(id) > 0 && id[0] == 0xE8 {
			return allot.Invalidf("barcode", "datamatrix can't start with %q here (its encoder takes that byte for GS1's FNC1): put text before it in the format, or use \"qr\"", firstRune(id))
		}
	}
	return nil
}

// checkFont refuses text the PDF's font can't carry: fpdf's UTF-8 fonts
// stop at U+FFFF (a character beyond, such as an emoji, panics it).
func checkFont(field, text string) error {
	for _, r := range text {
		if r > 0xFFFF {
			return allot.Invalidf(field, "%q has %q, beyond U+FFFF, which a PDF label can't print: leave it out, or use format zpl or png", text, r)
		}
	}
	return nil
}

func firstRune(s string) string {
	for _, r := range s {
		return string(r)
	}
	return ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// code128Bound is the most modules a Code 128 symbol of n characters can
// take: start, n characters in code set B, check character (11 each) and
// the 13-module stop. ZPL prints in code set B, and the other renderers
// never take more.
func code128Bound(n int) int { return 11*n + 35 }
