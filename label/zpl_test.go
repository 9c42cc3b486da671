package label_test

// Structural ZPL checks: the ZPL is parsed as a printer reads it (every ^
// and ~ starts a command, ^FH hex escapes are resolved, ^BC invocation
// codes and the ^BX escape character interpreted) and each label must
// carry its ID in the bar code and in the text, at the label's size.

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/boombuler/barcode/datamatrix"
	"github.com/boombuler/barcode/qr"

	"github.com/allot/allot"
	"github.com/allot/allot/label"
)

// zplCommand is one ZPL command: its prefix and two-character name, as
// "^FO", and its parameters (for ^FD, the field data).
type zplCommand struct {
	name, params string
}

// zplCommands splits ZPL into commands. Line breaks between commands
// are ignored; anything else outside a command is an error.
func zplCommands(s string) ([]zplCommand, error) {
	var cmds []zplCommand
	i := strings.IndexAny(s, "^~")
	if i < 0 {
		i = len(s)
	}
	if strings.TrimSpace(s[:i]) != "" {
		return nil, fmt.Errorf("text %q before the first command", s[:i])
	}
	for i < len(s) {
		if i+3 > len(s) {
			return nil, fmt.Errorf("truncated command %q at byte %d", s[i:], i)
		}
		name := s[i : i+3]
		if strings.ContainsAny(name[1:], "^~") {
			return nil, fmt.Errorf("command %q at byte %d has no name", name, i)
		}
		end := strings.IndexAny(s[i+3:], "^~")
		if end < 0 {
			end = len(s)
		} else {
			end += i + 3
		}
		cmds = append(cmds, zplCommand{name, strings.TrimRight(s[i+3:end], "\r\n")})
		i = end
	}
	return cmds, nil
}

// zplField is a ^FO…^FS field.
type zplField struct {
	x, y    int
	module  int      // ^BY at the field
	barcode string   // "^BC", "^BQ" or "^BX"; "" for text
	params  []string // the bar code command's parameters
	font    []string // ^A0's parameters
	block   []string // ^FB's parameters
	hex     bool     // ^FH
	raw     string   // ^FD as written
	data    string   // ^FD with ^FH escapes resolved
}

type zplLabel struct {
	ci, pw, ll int
	fields     []zplField
}

// parseZPL reads the labels of a ZPL document.
func parseZPL(doc string) ([]zplLabel, error) {
	cmds, err := zplCommands(doc)
	if err != nil {
		return nil, err
	}
	var (
		labels []zplLabel
		lab    *zplLabel
		f      *zplField
		module int
	)
	atoi := func(c zplCommand, s string) (int, error) {
		v, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("%s%s: %q is not a number", c.name, c.params, s)
		}
		return v, nil
	}
	for _, c := range cmds {
		if lab == nil && c.name != "^XA" {
			return nil, fmt.Errorf("%s outside ^XA…^XZ", c.name)
		}
		if f == nil && slices.Contains([]string{"^FB", "^A0", "^BC", "^BQ", "^BX", "^FH", "^FD", "^FS"}, c.name) {
			return nil, fmt.Errorf("%s%s outside a ^FO field", c.name, c.params)
		}
		switch c.name {
		case "^XA":
			if lab != nil {
				return nil, fmt.Errorf("^XA inside a label")
			}
			lab = &zplLabel{ci: -1}
		case "^XZ":
			if f != nil {
				return nil, fmt.Errorf("^XZ inside a field")
			}
			labels = append(labels, *lab)
			lab = nil
		case "^CI":
			if lab.ci, err = atoi(c, c.params); err != nil {
				return nil, err
			}
		case "^PW":
			if lab.pw, err = atoi(c, c.params); err != nil {
				return nil, err
			}
		case "^LL":
			if lab.ll, err = atoi(c, c.params); err != nil {
				return nil, err
			}
		case "^LH":
			if c.params != "0,0" {
				return nil, fmt.Errorf("^LH%s, want ^LH0,0", c.params)
			}
		case "^BY":
			if module, err = atoi(c, strings.Split(c.params, ",")[0]); err != nil {
				return nil, err
			}
		case "^FO":
			if f != nil {
				return nil, fmt.Errorf("^FO inside a field")
			}
			xy := strings.Split(c.params, ",")
			if len(xy) != 2 {
				return nil, fmt.Errorf("^FO%s", c.params)
			}
			f = &zplField{module: module}
			if f.x, err = atoi(c, xy[0]); err != nil {
				return nil, err
			}
			if f.y, err = atoi(c, xy[1]); err != nil {
				return nil, err
			}
		case "^FB":
			f.block = strings.Split(c.params, ",")
		case "^A0":
			f.font = strings.Split(c.params, ",")
		case "^BC", "^BQ", "^BX":
			if f.barcode != "" {
				return nil, fmt.Errorf("%s after %s in one field", c.name, f.barcode)
			}
			f.barcode, f.params = c.name, strings.Split(c.params, ",")
			f.module = module
		case "^FH":
			if c.params != "" {
				return nil, fmt.Errorf("^FH%s: the tests read the default escape _", c.params)
			}
			f.hex = true
		case "^FD":
			f.raw, f.data = c.params, c.params
			if f.hex {
				if f.data, err = unhexField(c.params); err != nil {
					return nil, err
				}
			}
		case "^FS":
			lab.fields = append(lab.fields, *f)
			f = nil
		default:
			return nil, fmt.Errorf("unexpected command %s%s", c.name, c.params)
		}
	}
	if lab != nil {
		return nil, fmt.Errorf("label without ^XZ")
	}
	return labels, nil
}

// readBlock reads the data of a ^FB field as the printer prints it: \\
// is a backslash, \& a line break and \ before anything else a soft
// hyphen; the last two are refused (an ID prints on one line, as itself).
func readBlock(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\\' {
			b.WriteByte('\\')
			i++
			continue
		}
		return "", fmt.Errorf("^FB reads the backslash at byte %d as a line break or a soft hyphen", i)
	}
	return b.String(), nil
}

// unhexField resolves ^FH escapes: _ and two hex digits is a byte.
func unhexField(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("^FD%s: _ at byte %d without two hex digits", s, i)
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("^FD%s: _%s at byte %d is not a hex escape", s, s[i+1:i+3], i)
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// fnc1 stands for FNC1 in decoded Code 128 data.
const fnc1 = "\x1d"

// decodeBC reads ^BC field data as the printer does (mode N), from its
// start code: in code set B printable ASCII is itself except ^ > ~,
// which are the invocation codes >< (value 62, ^), >0 (value 30, >) and
// >= (value 94, ~), as the ZPL II guide's table of Code 128 invocation
// characters gives them; in code set C digit pairs are themselves; >8 is FNC1.
// It returns the data and the number of symbol characters, which fixes
// the symbol's width.
func decodeBC(data string) (text string, chars int, err error) {
	if len(data) < 2 || data[0] != '>' || (data[1] != ':' && data[1] != ';') {
		return "", 0, fmt.Errorf("^FD%s does not begin with a start code >: or >;", data)
	}
	set := data[1]
	var b strings.Builder
	chars = 1 // start
	for i := 2; i < len(data); {
		c := data[i]
		if c == '>' {
			if i+1 == len(data) {
				return "", 0, fmt.Errorf("^FD%s ends in >", data)
			}
			switch code := data[i+1]; {
			case code == '8':
				b.WriteString(fnc1)
			case set == ':' && code == '<':
				b.WriteByte('^')
			case set == ':' && code == '0':
				b.WriteByte('>')
			case set == ':' && code == '=':
				b.WriteByte('~')
			default:
				return "", 0, fmt.Errorf("^FD%s: unexpected invocation code >%c in code set %c", data, code, set)
			}
			i += 2
			chars++
			continue
		}
		if set == ':' {
			if c < 0x20 || c > 0x7e {
				return "", 0, fmt.Errorf("^FD%s: byte %#x is not in code set B", data, c)
			}
			b.WriteByte(c)
			i++
		} else {
			if i+1 == len(data) || c < '0' || c > '9' || data[i+1] < '0' || data[i+1] > '9' {
				return "", 0, fmt.Errorf("^FD%s: %q at byte %d is not a digit pair of code set C", data, data[i:min(i+2, len(data))], i)
			}
			b.WriteString(data[i : i+2])
			i += 2
		}
		chars++
	}
	return b.String(), chars, nil
}

// bxEscape is the escape character ^BX gives quality 200 field data when
// its parameter g is left out: ~ in current firmware (_ in V60.13.0.12).
const bxEscape = '~'

// unescapeBX reads ^BX quality 200 field data (after ^FH) with escape
// character esc: a doubled escape character is itself; the other
// escape sequences (control characters, FNC1, structured append, code
// pages, ~dNNN) are not something an ID is written as, so they are
// errors.
func unescapeBX(data string, esc byte) (string, error) {
	var b strings.Builder
	for i := 0; i < len(data); i++ {
		if data[i] != esc {
			b.WriteByte(data[i])
			continue
		}
		if i+1 < len(data) && data[i+1] == esc {
			b.WriteByte(esc)
			i++
			continue
		}
		return "", fmt.Errorf("the data %q has the escape character %q at byte %d, which the printer reads as the start of an escape sequence, not as itself", data, esc, i)
	}
	return b.String(), nil
}

// zplCase is a roll of labels to check.
type zplCase struct {
	spec    allot.LabelSpec
	samples []string
	ids     []string
}

func TestZPLRoll(t *testing.T) {
	const n = 25
	var cases []zplCase
	seed := uint64(100)
	for _, dpi := range []int{203, 300} {
		for _, size := range []string{"2x1in", "4x6in", "50x25mm"} {
			for _, c := range []struct {
				b allot.Symbology
				r idRange
			}{
				{allot.BarcodeCode128, lpIDs},
				{allot.BarcodeGS1128, ssccIDs},
				{allot.BarcodeQR, policyIDs},
				{allot.BarcodeQR, lpIDs},
				{allot.BarcodeDataMatrix, lpIDs},
				{allot.BarcodeDataMatrix, policyIDs},
				{allot.BarcodeNone, policyIDs},
			} {
				seed++
				spec := allot.LabelSpec{Format: allot.LabelZPL, Barcode: c.b, Size: size, DPI: dpi}
				cases = append(cases, zplCase{spec, c.r.samples(t), c.r.spread(t, n, seed)})
			}
		}
		// Code 128 of the policy numbers needs the room of 50x25mm at
		// 300 dpi or 4x6in.
		cases = append(cases,
			zplCase{allot.LabelSpec{Format: allot.LabelZPL, Barcode: allot.BarcodeCode128, Size: "4x6in", DPI: dpi}, policyIDs.samples(t), policyIDs.spread(t, n, seed+1)},
			zplCase{allot.LabelSpec{Format: allot.LabelZPL, Barcode: allot.BarcodeCode128, Size: "62x29mm", DPI: dpi, Title: "Lager ^Süd~ _7E"}, lpIDs.samples(t), lpIDs.spread(t, n, seed+2)},
			zplCase{allot.LabelSpec{Format: allot.LabelZPL, Barcode: allot.BarcodeQR, Size: "4x6in", DPI: dpi, Text: new(bool)}, ssccIDs.samples(t), ssccIDs.spread(t, n, seed+3)},
		)
	}
	cases = append(cases, zplCase{allot.LabelSpec{Format: allot.LabelZPL, Barcode: allot.BarcodeCode128, Size: "50x25mm", DPI: 300}, policyIDs.samples(t), policyIDs.spread(t, n, seed+4)})
	for _, c := range cases {
		checkZPL(t, c)
	}
}

// The characters ZPL, ^FH, ^BC and ^BX give a meaning must print as
// themselves.
func TestZPLSpecialCharacters(t *testing.T) {
	ascii := []string{
		"A^B", "A~B", "A_B", "A>B", "A^B~C_D>E", ">>", ">:", ">8", "^XZ", "~JA", "_5E", "__", "~~", "^FS^XZ^XA", "a,b", "\\&",
	}
	all := append(ascii, "Süd-Ä_42", "倉庫-7", "~é^")
	for _, dpi := range []int{203, 300} {
		for _, c := range []struct {
			b   allot.Symbology
			ids []string
		}{
			{allot.BarcodeCode128, ascii},
			{allot.BarcodeQR, all},
			{allot.BarcodeDataMatrix, all},
			{allot.BarcodeNone, all},
		} {
			for _, id := range c.ids {
				spec := allot.LabelSpec{Format: allot.LabelZPL, Barcode: c.b, Size: "4x2in", DPI: dpi}
				checkZPL(t, zplCase{spec, []string{id}, []string{id}})
			}
		}
	}
}

// checkZPL renders c.ids as ZPL and checks every label.
func checkZPL(t *testing.T, c zplCase) {
	t.Helper()
	p := mustPlan(t, c.spec, c.samples)
	name := fmt.Sprintf("%s %s@%d", p.Setup.Barcode, c.spec.Size, p.Setup.DPI)
	doc, err := p.Render(c.ids)
	if err != nil {
		t.Errorf("%s: render %q: %v", name, c.ids, err)
		return
	}
	if doc.ContentType != label.ContentZPL {
		t.Errorf("%s: content type %q", name, doc.ContentType)
	}
	zpl := string(doc.Body)
	if got := strings.Count(zpl, "^XA"); got != len(c.ids) {
		t.Errorf("%s: %d ^XA for %d IDs", name, got, len(c.ids))
	}
	if got := strings.Count(zpl, "^XZ"); got != len(c.ids) {
		t.Errorf("%s: %d ^XZ for %d IDs", name, got, len(c.ids))
	}
	labels, err := parseZPL(zpl)
	if err != nil {
		t.Errorf("%s, IDs %q: %v\n%s", name, c.ids, err, zpl)
		return
	}
	if len(labels) != len(c.ids) {
		t.Errorf("%s: %d labels for %d IDs", name, len(labels), len(c.ids))
		return
	}
	wmm, hmm, err := allot.ParseLabelSize(c.spec.Size)
	if err != nil {
		t.Fatal(err)
	}
	pw := int(math.Round(wmm * float64(p.Setup.DPI) / 25.4))
	ll := int(math.Round(hmm * float64(p.Setup.DPI) / 25.4))
	for i, lab := range labels {
		id := c.ids[i]
		where := fmt.Sprintf("%s, label %d (%q)", name, i+1, id)
		if err := checkZPLLabel(p, lab, id, pw, ll); err != nil {
			t.Errorf("%s: %v", where, err)
		}
	}
}

func checkZPLLabel(p *label.Plan, lab zplLabel, id string, pw, ll int) error {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if lab.ci != 28 {
		fail("^CI%d, want ^CI28 (UTF-8)", lab.ci)
	}
	if lab.pw != pw || lab.ll != ll {
		fail("^PW%d ^LL%d, want ^PW%d ^LL%d", lab.pw, lab.ll, pw, ll)
	}
	var bars, texts []zplField
	for _, f := range lab.fields {
		if f.barcode != "" {
			bars = append(bars, f)
		} else {
			texts = append(texts, f)
		}
	}

	// The text: the title, then the ID.
	b := p.Setup.Barcode
	var wantTexts []string
	if p.Setup.Title != "" {
		wantTexts = append(wantTexts, p.Setup.Title)
	}
	if p.Setup.Text || b == allot.BarcodeNone {
		if b == allot.BarcodeGS1128 {
			wantTexts = append(wantTexts, "(00)"+id)
		} else {
			wantTexts = append(wantTexts, id)
		}
	}
	if len(texts) != len(wantTexts) {
		fail("%d text fields, want %d (%q)", len(texts), len(wantTexts), wantTexts)
	} else {
		for i, f := range texts {
			if !f.hex {
				fail("text field %q without ^FH", f.raw)
			}
			text := f.data
			if len(f.block) > 0 {
				var err error
				if text, err = readBlock(f.data); err != nil {
					fail("text field ^FD%s: %v", f.raw, err)
				}
			}
			if text != wantTexts[i] {
				fail("text field ^FD%s reads %q, want %q", f.raw, text, wantTexts[i])
			}
			if len(f.font) < 2 || len(f.block) < 1 {
				fail("text field %q without ^A0 and ^FB", f.data)
				continue
			}
			h, _ := strconv.Atoi(f.font[1])
			w, _ := strconv.Atoi(f.block[0])
			if h <= 0 || f.y+h > ll || f.x+w > pw || f.x < 0 || f.y < 0 {
				fail("text field %q at %d,%d, %d wide and %d high, is not within ^PW%d ^LL%d", f.data, f.x, f.y, w, h, pw, ll)
			}
		}
	}

	if b == allot.BarcodeNone {
		if len(bars) != 0 {
			fail("%d bar codes, want none", len(bars))
		}
		return joinErrs(errs)
	}
	if len(bars) != 1 {
		fail("%d bar codes, want 1", len(bars))
		return joinErrs(errs)
	}
	f := bars[0]
	m := f.module
	// The bar code's width and height in dots, and its quiet zone.
	var w, h, quiet int
	switch b {
	case allot.BarcodeCode128, allot.BarcodeGS1128:
		if f.barcode != "^BC" {
			fail("%s is %s, want ^BC", b, f.barcode)
			return joinErrs(errs)
		}
		if len(f.params) < 5 || f.params[0] != "N" || f.params[2] != "N" || f.params[3] != "N" || f.params[4] != "N" {
			fail("^BC%s, want ^BCN,<height>,N,N,N", strings.Join(f.params, ","))
		}
		if len(f.params) > 5 && f.params[5] != "N" {
			fail("^BC%s: mode %s, want N", strings.Join(f.params, ","), f.params[5])
		}
		if len(f.params) > 1 {
			h, _ = strconv.Atoi(f.params[1])
		}
		text, chars, err := decodeBC(f.data)
		if err != nil {
			fail("%v", err)
			return joinErrs(errs)
		}
		want := id
		if b == allot.BarcodeGS1128 {
			want = fnc1 + "00" + id
			if f.raw != ">;>800"+id {
				fail("^FD%s, want ^FD>;>800%s", f.raw, id)
			}
			if f.data[1] != ';' {
				fail("^FD%s does not start in code set C", f.raw)
			}
		} else if f.data[1] != ':' {
			fail("^FD%s does not start in code set B", f.raw)
		}
		if text != want {
			fail("^BC^FD%s reads %q, want %q", f.raw, text, want)
		}
		// Start, the characters, check character: 11 modules each; the
		// stop pattern: 13. For code set B that is 11*len+35; for the
		// SSCC in code set C, 11*(20/2+3)+13 with FNC1 and (00).
		w = m * (11*(chars+1) + 13)
		quiet = 10 * m
	case allot.BarcodeQR:
		if f.barcode != "^BQ" {
			fail("qr is %s, want ^BQ", f.barcode)
			return joinErrs(errs)
		}
		if len(f.params) != 3 || f.params[0] != "N" || f.params[1] != "2" {
			fail("^BQ%s, want ^BQN,2,<magnification>", strings.Join(f.params, ","))
			return joinErrs(errs)
		}
		m, _ = strconv.Atoi(f.params[2])
		if !f.hex {
			fail("^BQ field %q without ^FH", f.raw)
		}
		data, ok := strings.CutPrefix(f.data, "MA,")
		if !ok {
			fail("^BQ^FD%s does not begin with MA, (error correction M, automatic input)", f.raw)
		}
		if data != id {
			fail("^BQ^FD%s reads %q, want %q", f.raw, data, id)
		}
		code, err := qr.Encode(id, qr.M, qr.Auto)
		if err != nil {
			fail("qr.Encode(%q): %v", id, err)
			return joinErrs(errs)
		}
		w = m * code.Bounds().Dx()
		h, quiet = w, 4*m
	case allot.BarcodeDataMatrix:
		if f.barcode != "^BX" {
			fail("datamatrix is %s, want ^BX", f.barcode)
			return joinErrs(errs)
		}
		if len(f.params) < 3 || f.params[0] != "N" || f.params[2] != "200" {
			fail("^BX%s, want ^BXN,<module>,200", strings.Join(f.params, ","))
			return joinErrs(errs)
		}
		m, _ = strconv.Atoi(f.params[1])
		if !f.hex {
			fail("^BX field %q without ^FH", f.raw)
		}
		esc := byte(bxEscape)
		if len(f.params) > 6 && f.params[6] != "" {
			esc = f.params[6][0]
		}
		if data, err := unescapeBX(f.data, esc); err != nil {
			fail("^BX^FD%s: %v", f.raw, err)
		} else if data != id {
			fail("^BX^FD%s reads %q, want %q", f.raw, data, id)
		}
		code, err := datamatrix.Encode(id)
		if err != nil {
			fail("datamatrix.Encode(%q): %v", id, err)
			return joinErrs(errs)
		}
		w = m * code.Bounds().Dx()
		h, quiet = m*code.Bounds().Dy(), 2*m
	}
	if m < label.MinModuleDots || m > 10 {
		fail("%s module %d dots, want %d to 10", f.barcode, m, label.MinModuleDots)
	}
	if h <= 0 {
		fail("%s height %d", f.barcode, h)
	}
	// Within the label, with its quiet zone.
	if f.x < 0 || f.x+w > pw {
		fail("%s at x %d, %d dots wide, ends at %d: not within ^PW%d", f.barcode, f.x, w, f.x+w, pw)
	}
	if f.x < quiet || f.x+w+quiet > pw {
		fail("%s at x %d, %d dots wide: quiet zones of %d and %d dots, want %d on the label of %d", f.barcode, f.x, w, f.x, pw-f.x-w, quiet, pw)
	}
	// Centred as the PNG and PDF labels are, to the dot.
	if left, right := f.x, pw-f.x-w; abs(left-right) > 1 {
		fail("%s at x %d, %d dots wide: %d dots left of it and %d right, not centred on ^PW%d", f.barcode, f.x, w, left, right, pw)
	}
	if f.y < 0 || f.y+h > ll {
		fail("%s at y %d, %d dots high, ends at %d: not within ^LL%d", f.barcode, f.y, h, f.y+h, ll)
	}
	// Above the text under it.
	if p.Setup.Text && len(texts) > 0 {
		if last := texts[len(texts)-1]; f.y+h > last.y {
			fail("%s ends at y %d, below the top of the text at %d", f.barcode, f.y+h, last.y)
		}
	}
	if p.Setup.Title != "" && len(texts) > 0 {
		if first := texts[0]; len(first.font) > 1 {
			th, _ := strconv.Atoi(first.font[1])
			if first.y+th > f.y {
				fail("%s starts at y %d, above the end of the title at %d", f.barcode, f.y, first.y+th)
			}
		}
	}
	return joinErrs(errs)
}

func joinErrs(errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(errs, "; "))
}
