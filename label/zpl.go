package label

import (
	"fmt"
	"strings"

	"github.com/allot/allot"
)

// zpl writes one ^XA…^XZ label per ID. Text fields go through ^FH (hex
// escapes for ^, ~, _ and bytes outside printable ASCII) with ^CI28
// (UTF-8). Bar codes use the printer's own commands:
//
//	code128     ^BY<module>^BCN,<height>,N,N,N^FH^FD>:<ID>^FS     (code set B; ^ > ~ as >< >0 >=)
//	gs1-128     ^BY<module>^BCN,<height>,N,N,N^FH^FD>;>800<SSCC>^FS (code set C, FNC1, AI 00)
//	qr          ^BQN,2,<module>^FH^FDMA,<ID>^FS                  (model 2, error correction M)
//	datamatrix  ^BXN,<module>,200,0,0,6,<esc>^FH^FD<ID>^FS       (ECC 200, an escape character the ID lacks)
//
// The human-readable text is printed as a separate centred field, so it
// is the same on every bar code.
func (p *Plan) zpl(ids []string) ([]byte, error) {
	b := make([]byte, 0, len(ids)*(200+2*len(ids[0])))
	for _, id := range ids {
		b = append(b, "^XA^CI28^PW"...)
		b = append(b, itoa(p.W)...)
		b = append(b, "^LL"...)
		b = append(b, itoa(p.H)...)
		b = append(b, "^LH0,0\n"...)
		if p.Setup.Title != "" {
			b = p.zplText(b, p.TitleTop, p.TitleH, p.Setup.Title)
		}
		var err error
		if b, err = p.zplBarcode(b, id); err != nil {
			return nil, err
		}
		if p.Setup.Text || p.Setup.Barcode == allot.BarcodeNone {
			text := id
			if p.Setup.Barcode == allot.BarcodeGS1128 {
				text = "(00)" + id
			}
			b = p.zplText(b, p.TextTop, p.FontH, text)
		}
		b = append(b, "^XZ\n"...)
	}
	return b, nil
}

// zplText writes a centred line of text h dots high at y.
func (p *Plan) zplText(b []byte, y, h int, text string) []byte {
	b = append(b, "^FO"...)
	b = append(b, itoa(p.Margin)...)
	b = append(b, ',')
	b = append(b, itoa(y)...)
	b = append(b, "^FB"...)
	b = append(b, itoa(p.W-2*p.Margin)...)
	b = append(b, ",1,0,C^A0N,"...)
	b = append(b, itoa(h)...)
	b = append(b, ',')
	b = append(b, itoa(h*4/5)...)
	b = append(b, "^FH^FD"...)
	// ^FB reads \& as a line break and \ before a letter as a soft
	// hyphen: a backslash is written \\.
	for i := 0; i < len(text); i++ {
		if text[i] == '\\' {
			b = append(b, '\\', '\\')
			continue
		}
		b = appendFieldHex(b, text[i:i+1])
	}
	return append(b, "^FS\n"...)
}

// zplBarcode writes the bar code of id.
func (p *Plan) zplBarcode(b []byte, id string) ([]byte, error) {
	m := p.Module
	switch p.Setup.Barcode {
	case allot.BarcodeCode128, allot.BarcodeGS1128:
		// The printer encodes the symbol; its width is at most the bound
		// Check sized the module for.
		w := code128Bound(len(id))
		if p.Setup.Barcode == allot.BarcodeGS1128 {
			// Start C, FNC1, the digit pairs of 00 and the SSCC, check, stop.
			w = 11*((len(id)+2)/2+3) + 13
		}
		b = p.zplOrigin(b, p.barLeft(w), p.BarTop)
		b = append(b, "^BY"...)
		b = append(b, itoa(m)...)
		b = append(b, "^BCN,"...)
		b = append(b, itoa(p.BarHeight)...)
		b = append(b, ",N,N,N^FH^FD"...)
		if p.Setup.Barcode == allot.BarcodeGS1128 {
			b = append(b, ">;>800"...)
			b = append(b, id...) // 18 digits
		} else {
			// Code set B. ^ > ~ are written as the invocation codes >< >0
			// >= (Code 128 values 62, 30, 94), and _ as an ^FH escape.
			b = append(b, ">:"...)
			for i := 0; i < len(id); i++ {
				switch id[i] {
				case '^':
					b = append(b, "><"...)
				case '>':
					b = append(b, ">0"...)
				case '~':
					b = append(b, ">="...)
				default:
					b = appendFieldHex(b, id[i:i+1])
				}
			}
		}
	case allot.BarcodeQR:
		w, h, err := p.symbolSize(id)
		if err != nil {
			return b, err
		}
		b = p.zplOrigin(b, p.barLeft(w), p.barTop(h))
		b = append(b, "^BQN,2,"...)
		b = append(b, itoa(m)...)
		b = append(b, "^FH^FDMA,"...)
		b = appendFieldHex(b, id)
	case allot.BarcodeDataMatrix:
		w, h, err := p.symbolSize(id)
		if err != nil {
			return b, err
		}
		b = p.zplOrigin(b, p.barLeft(w), p.barTop(h))
		// ECC 200 data has an escape character of its own (~ by default),
		// applied after ^FH: name one the ID does not contain.
		esc, ok := dataMatrixEscape(id)
		if !ok {
			return b, fmt.Errorf("label: %q uses every character ZPL's Data Matrix could take as its escape character: use the png or pdf format", id)
		}
		b = append(b, "^BXN,"...)
		b = append(b, itoa(m)...)
		b = append(b, ",200,0,0,6,"...)
		b = append(b, esc)
		b = append(b, "^FH^FD"...)
		b = appendFieldHex(b, id)
	default:
		return b, nil
	}
	return append(b, "^FS\n"...), nil
}

// dataMatrixEscape picks an escape character for ^BX that id does not
// contain: printable ASCII other than ZPL's own ^ and ~, _ (the ^FH
// escape), and what the number and check tokens render (letters, digits,
// *), so that the IDs of one sequence, which differ only there, all get
// the one Check found for its samples.
func dataMatrixEscape(id string) (byte, bool) {
	for c := byte('!'); c < 0x7f; c++ {
		alnum := c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
		if !alnum && c != '*' && c != '^' && c != '~' && c != '_' && strings.IndexByte(id, c) < 0 {
			return c, true
		}
	}
	return 0, false
}

func (p *Plan) zplOrigin(b []byte, x, y int) []byte {
	b = append(b, "^FO"...)
	b = append(b, itoa(max(x, 0))...)
	b = append(b, ',')
	b = append(b, itoa(y)...)
	return b
}

// appendFieldHex appends s as ^FH field data: ^, ~ and _ (the escape
// character) and every byte outside printable ASCII as _XX.
func appendFieldHex(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '^' || c == '~' || c == '_' || c < 0x20 || c > 0x7e {
			b = append(b, '_', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}
