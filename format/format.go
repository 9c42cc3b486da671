// Package format implements allot's ID template language: it renders a
// sequence number (and optionally a date) as a human-readable ID and decodes
// such IDs back into their number and date.
//
// # Syntax
//
// A template is literal text with tokens in braces:
//
//	{n}            the number in decimal
//	{n:6}          the number zero-padded to width 6 (1..19); wider numbers print in full
//	{n:AA9}        the number in mixed radix: A = A–Z, a = a–z, 9 = 0–9, most significant first
//	{yyyy} {yy}    4-digit and 2-digit year
//	{mm} {dd}      2-digit month and day
//	{check:luhn}   Luhn check digit over the digits rendered before it
//	{check:mod97}  ISO 7064 MOD 97-10 (two digits) over the digits rendered before it
//	{check:mod37}  ISO 7064 MOD 37-2 (one of 0–9, A–Z, *) over the letters and digits before it
//	{check:gs1}    GS1 mod-10 check digit (weights 3 and 1 from the rightmost digit) over the digits before it
//	{{ and }}      literal { and }
//
// A number spec made only of decimal digits is a width; anything else is a
// mask, which may contain only A, a and 9. (So {n:9} is width 9, and {n:99}
// is an invalid width, not a mask.)
//
// # Guarantees
//
//   - Parse accepts a template only if it has exactly one number token, is at
//     most [MaxTemplateLen] bytes long, and is otherwise well formed; every
//     rejection is a [*SyntaxError] carrying the byte offset of the problem.
//   - A mask caps the number: rendering a number at or above [Template.Capacity]
//     fails with [ErrOverflow]; it never carries into literal text. Successive
//     numbers render like Ruby's String#next applied to the masked part, and
//     since every mask position has a fixed character class, the masked parts
//     of one template sort byte-wise in numeric order.
//   - Rendering is deterministic, and [Template.Decode] inverts it exactly:
//     for every number and date that Render accepts (with {yy} years in
//     2000..2099 and, where the template uses them, months 1..12 and days
//     1..31), Decode(Render(n, d)) yields n and those date parts. Conversely,
//     an ID that Decode accepts is exactly what Render produces for the
//     decoded values, so every number has a single canonical ID.
//   - Check characters are validated by Decode; a structurally valid ID with a
//     wrong check character fails with [ErrBadCheck] (and still reports the
//     number and date it shows), anything else that does not fit fails with
//     [ErrNoMatch]. Luhn and MOD 97-10 are refused after a
//     mask that can produce letters, since they would not protect them.
//   - [Template.AppendRender] does not allocate beyond growing dst, and a
//     *Template is immutable and safe for concurrent use.
package format

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// MaxTemplateLen is the maximum length of a template in bytes.
const MaxTemplateLen = 256

// maxDigits is the number of decimal digits of math.MaxInt64.
const maxDigits = 19

// ErrOverflow is returned (wrapped) by Render and AppendRender when the
// number is at or above the capacity of the template's mask.
var ErrOverflow = errors.New("format: number does not fit the mask")

// ErrNoMatch is returned (wrapped, with detail) by Decode when the ID does
// not have the shape the template describes.
var ErrNoMatch = errors.New("format: id does not match the template")

// ErrBadCheck is returned (wrapped, with detail) by Decode when the ID has
// the template's shape but a check character is wrong.
var ErrBadCheck = errors.New("format: check character does not match")

// SyntaxError reports an invalid template. Pos is the 0-based byte offset of
// the offending part of the template.
type SyntaxError struct {
	Pos int
	Msg string
}

// Error implements error, in the form "format: position 3: message".
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("format: position %d: %s", e.Pos, e.Msg)
}

// Date is a calendar date used for the date parts. Zero fields are rendered as zeros.
type Date struct{ Year, Month, Day int }

// Parts reports which date parts a template uses. Year is true for {yyyy} or {yy}.
type Parts struct{ Year, Month, Day bool }

// Decoded is the result of [Template.Decode].
type Decoded struct {
	// Number is the sequence number.
	Number int64
	// Date holds the date parts the template has; the others are zero. Year
	// is the full year ({yy} maps to 2000+yy).
	Date Date
	// Parts reports which date parts the template has (same as Template.Parts).
	Parts Parts
}

type kind uint8

const (
	kLit   kind = iota // literal text
	kNum               // {n} or {n:W}
	kMask              // {n:MASK}
	kYYYY              // {yyyy}
	kYY                // {yy}
	kMM                // {mm}
	kDD                // {dd}
	kLuhn              // {check:luhn}
	kMod97             // {check:mod97}
	kMod37             // {check:mod37}
	kGS1               // {check:gs1}
)

type token struct {
	kind  kind
	width int    // kNum: minimum width (0 = none)
	text  string // kLit: the literal; kMask: the mask
}

// Template is a parsed ID template. Create it with [Parse] or [MustParse];
// it is immutable and safe for concurrent use.
type Template struct {
	src      string
	toks     []token
	capacity int64 // mask capacity, 0 when unbounded
	parts    Parts
	fixed    int // rendered length of everything except the number token
	nMin     int // minimum rendered length of the number token
	nMax     int // maximum rendered length of the number token
	hasYYYY  bool
}

const wantTokens = "(want {n}, {n:WIDTH}, {n:MASK}, {yyyy}, {yy}, {mm}, {dd}, {check:luhn|mod97|mod37|gs1})"

func syntaxErr(pos int, format string, args ...any) error {
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Parse parses a template. Errors are of type [*SyntaxError].
func Parse(s string) (*Template, error) {
	if len(s) > MaxTemplateLen {
		return nil, syntaxErr(MaxTemplateLen, "template is %d bytes long, longer than the limit of %d", len(s), MaxTemplateLen)
	}
	t := &Template{src: s}
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			t.toks = append(t.toks, token{kind: kLit, text: string(lit)})
			t.fixed += len(lit)
			lit = lit[:0]
		}
	}
	nPos := -1       // position of the number token
	letterMask := "" // the number token's mask, if it can produce letters
	for i := 0; i < len(s); {
		switch s[i] {
		case '}':
			if i+1 < len(s) && s[i+1] == '}' {
				lit = append(lit, '}')
				i += 2
				continue
			}
			return nil, syntaxErr(i, `stray "}" (write "}}" for a literal brace)`)
		case '{':
			if i+1 < len(s) && s[i+1] == '{' {
				lit = append(lit, '{')
				i += 2
				continue
			}
		default:
			lit = append(lit, s[i])
			i++
			continue
		}
		// A token starts at i.
		end := strings.IndexByte(s[i+1:], '}')
		if end < 0 {
			return nil, syntaxErr(i, `unclosed "{" (write "{{" for a literal brace)`)
		}
		body := s[i+1 : i+1+end]
		next := i + 1 + end + 1
		tokSrc := s[i:next]
		hasBefore := len(lit) > 0 || len(t.toks) > 0
		flush()
		var tk token
		switch {
		case body == "n" || strings.HasPrefix(body, "n:"):
			if nPos >= 0 {
				return nil, syntaxErr(i, "second number token %q (a template has exactly one; the first is at position %d)", tokSrc, nPos)
			}
			nPos = i
			if body == "n" {
				tk = token{kind: kNum}
				t.nMin, t.nMax = 1, maxDigits
				break
			}
			var err error
			if tk, err = parseSpec(body[2:], i, i+3); err != nil {
				return nil, err
			}
			if tk.kind == kMask {
				capacity, ok := maskCapacity(tk.text)
				if !ok {
					return nil, syntaxErr(i, "mask %q has a capacity larger than 2^63-1", tk.text)
				}
				t.capacity = capacity
				t.nMin, t.nMax = len(tk.text), len(tk.text)
				if strings.ContainsAny(tk.text, "Aa") {
					letterMask = tk.text
				}
			} else {
				t.nMin, t.nMax = tk.width, maxDigits
			}
		case body == "yyyy":
			tk = token{kind: kYYYY}
			t.parts.Year = true
			t.hasYYYY = true
			t.fixed += 4
		case body == "yy":
			tk = token{kind: kYY}
			t.parts.Year = true
			t.fixed += 2
		case body == "mm":
			tk = token{kind: kMM}
			t.parts.Month = true
			t.fixed += 2
		case body == "dd":
			tk = token{kind: kDD}
			t.parts.Day = true
			t.fixed += 2
		case strings.HasPrefix(body, "check:"):
			alg := body[len("check:"):]
			switch alg {
			case "luhn":
				tk = token{kind: kLuhn}
				t.fixed++
			case "mod97":
				tk = token{kind: kMod97}
				t.fixed += 2
			case "mod37":
				tk = token{kind: kMod37}
				t.fixed++
			case "gs1":
				tk = token{kind: kGS1}
				t.fixed++
			default:
				return nil, syntaxErr(i+1+len("check:"), "unknown check algorithm %q (want luhn, mod97, mod37 or gs1)", alg)
			}
			if !hasBefore {
				return nil, syntaxErr(i, "check token %q has nothing before it to check", tokSrc)
			}
			if letterMask != "" && tk.kind != kMod37 {
				return nil, syntaxErr(i, "%q cannot protect the letters of mask %q (use {check:mod37})", tokSrc, letterMask)
			}
		default:
			return nil, syntaxErr(i, "unknown token %q %s", tokSrc, wantTokens)
		}
		t.toks = append(t.toks, tk)
		i = next
	}
	flush()
	if nPos < 0 {
		return nil, syntaxErr(0, "template has no number token (want exactly one {n}, {n:WIDTH} or {n:MASK})")
	}
	return t, nil
}

// parseSpec parses the part after "n:" in a number token starting at tokPos;
// the spec itself starts at specPos.
func parseSpec(spec string, tokPos, specPos int) (token, error) {
	if spec == "" {
		return token{}, syntaxErr(tokPos, `empty width or mask in "{n:}"`)
	}
	if strings.Trim(spec, "0123456789") == "" {
		w := 0
		for i := 0; i < len(spec); i++ {
			w = w*10 + int(spec[i]-'0')
			if w > maxDigits {
				break
			}
		}
		if w < 1 || w > maxDigits {
			return token{}, syntaxErr(specPos, "width %s out of range 1..%d (a spec of digits is a width; a mask needs at least one A or a)", spec, maxDigits)
		}
		return token{kind: kNum, width: w}, nil
	}
	for i := 0; i < len(spec); i++ {
		switch spec[i] {
		case 'A', 'a', '9':
		default:
			return token{}, syntaxErr(specPos+i, "invalid mask character %q in %q (masks use only A, a and 9; widths only digits)", spec[i], spec)
		}
	}
	return token{kind: kMask, text: spec}, nil
}

// maskCapacity returns the product of the radices of mask, or false if it
// exceeds math.MaxInt64.
func maskCapacity(mask string) (int64, bool) {
	var c int64 = 1
	for i := 0; i < len(mask); i++ {
		r := radix(mask[i])
		if c > math.MaxInt64/r {
			return 0, false
		}
		c *= r
	}
	return c, true
}

func radix(class byte) int64 {
	if class == '9' {
		return 10
	}
	return 26
}

// MustParse is like [Parse] but panics if the template is invalid. It is
// meant for templates that are constants in the program.
func MustParse(s string) *Template {
	t, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return t
}

// String returns the template's source text.
func (t *Template) String() string { return t.src }

// Capacity returns the number of distinct values the number token can render
// (mask capacity) and true, or 0,false when the token is unbounded ({n} or {n:W}).
func (t *Template) Capacity() (int64, bool) {
	return t.capacity, t.capacity > 0
}

// Parts reports which date parts the template uses.
func (t *Template) Parts() Parts { return t.parts }

// Render renders number n (n >= 0) for date d. Errors: negative n, n >=
// capacity (ErrOverflow wrapped), and date fields the template uses that do
// not fit their slot (year outside 0..9999, month outside 0..12, day outside
// 0..31). {yy} renders the year modulo 100.
func (t *Template) Render(n int64, d Date) (string, error) {
	var buf [64]byte
	b, err := t.AppendRender(buf[:0], n, d)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// AppendRender appends the rendering of n for date d to dst and returns the
// extended slice; it is the allocation-free form of [Template.Render] and
// fails in the same cases, returning dst unchanged.
func (t *Template) AppendRender(dst []byte, n int64, d Date) ([]byte, error) {
	if n < 0 {
		return dst, fmt.Errorf("format: negative number %d", n)
	}
	if t.capacity > 0 && n >= t.capacity {
		return dst, fmt.Errorf("%w: %d is not below the capacity %d of template %q", ErrOverflow, n, t.capacity, t.src)
	}
	if err := t.checkDate(d); err != nil {
		return dst, err
	}
	start := len(dst)
	u := uint64(n)
	for i := range t.toks {
		tk := &t.toks[i]
		switch tk.kind {
		case kLit:
			dst = append(dst, tk.text...)
		case kNum:
			dst = appendPadded(dst, u, tk.width)
		case kMask:
			dst = appendMask(dst, u, tk.text)
		case kYYYY:
			y := d.Year
			dst = append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
		case kYY:
			dst = append2(dst, d.Year%100)
		case kMM:
			dst = append2(dst, d.Month)
		case kDD:
			dst = append2(dst, d.Day)
		case kLuhn:
			dst = append(dst, '0'+luhn(dst[start:]))
		case kMod97:
			dst = append2(dst, mod97(dst[start:]))
		case kMod37:
			dst = append(dst, mod37Alphabet[mod37(dst[start:])])
		case kGS1:
			dst = append(dst, '0'+gs1(dst[start:]))
		}
	}
	return dst, nil
}

func (t *Template) checkDate(d Date) error {
	if t.parts.Year && (d.Year < 0 || d.Year > 9999) {
		return fmt.Errorf("format: year %d out of range 0..9999", d.Year)
	}
	if t.parts.Month && (d.Month < 0 || d.Month > 12) {
		return fmt.Errorf("format: month %d out of range 0..12", d.Month)
	}
	if t.parts.Day && (d.Day < 0 || d.Day > 31) {
		return fmt.Errorf("format: day %d out of range 0..31", d.Day)
	}
	return nil
}

func append2(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/10), byte('0'+v%10))
}

// appendPadded appends v in decimal, left-padded with zeros to width.
func appendPadded(dst []byte, v uint64, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for v >= 10 {
		q := v / 10
		i--
		buf[i] = byte('0' + v - q*10)
		v = q
	}
	i--
	buf[i] = byte('0' + v)
	for w := len(buf) - i; w < width; w++ {
		dst = append(dst, '0')
	}
	return append(dst, buf[i:]...)
}

// appendMask appends v in the mixed radix described by mask; v must be below
// the mask's capacity.
func appendMask(dst []byte, v uint64, mask string) []byte {
	l := len(dst)
	dst = append(dst, mask...)
	out := dst[l:]
	for j := len(out) - 1; j >= 0; j-- {
		switch out[j] {
		case '9':
			q := v / 10
			out[j] = byte('0' + v - q*10)
			v = q
		case 'A':
			q := v / 26
			out[j] = byte('A' + v - q*26)
			v = q
		default: // 'a'
			q := v / 26
			out[j] = byte('a' + v - q*26)
			v = q
		}
	}
	return dst
}

// text is what the check algorithms run over.
type text interface{ ~string | ~[]byte }

// luhn returns the Luhn check digit for the decimal digits in b (other bytes
// are ignored): from the rightmost digit, every other digit is doubled
// (and its digits summed).
func luhn[T text](b T) byte { return mod10(b, &luhnHeavy) }

// gs1 returns the GS1 mod-10 check digit for the decimal digits in b
// (other bytes are ignored): the rightmost digit weighs 3, the next 1, and
// so on alternately. It is the check digit of GTIN, SSCC and GLN.
func gs1[T text](b T) byte { return mod10(b, &gs1Heavy) }

// What the heavy positions of luhn and gs1 make of a digit.
var (
	luhnHeavy = [10]int{0, 2, 4, 6, 8, 1, 3, 5, 7, 9}
	gs1Heavy  = [10]int{0, 3, 6, 9, 12, 15, 18, 21, 24, 27}
)

// mod10 returns the digit that brings the sum of the decimal digits in b
// to a multiple of ten, where the rightmost digit and every other one
// from it count as heavy[d] and the rest as themselves.
func mod10[T text](b T, heavy *[10]int) byte {
	sum, isHeavy := 0, true
	for i := len(b) - 1; i >= 0; i-- {
		c := b[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if isHeavy {
			d = heavy[d]
		}
		sum += d
		isHeavy = !isHeavy
	}
	return byte((10 - sum%10) % 10)
}

// mod97 returns the ISO 7064 MOD 97-10 check value (2..98) for the decimal
// digits in b (other bytes are ignored).
func mod97[T text](b T) int {
	r := 0
	for i := 0; i < len(b); i++ {
		if c := b[i]; c >= '0' && c <= '9' {
			r = (r*10 + int(c-'0')) % 97
		}
	}
	return 98 - r*100%97
}

const mod37Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"

// mod37 returns the ISO 7064 MOD 37-2 check value (0..36, an index into
// mod37Alphabet) for the digits and letters in b (case-insensitive; other
// bytes are ignored).
func mod37[T text](b T) int {
	p := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		var v int
		switch {
		case c >= '0' && c <= '9':
			v = int(c - '0')
		case c >= 'A' && c <= 'Z':
			v = int(c-'A') + 10
		case c >= 'a' && c <= 'z':
			v = int(c-'a') + 10
		default:
			continue
		}
		p = (p + v) * 2 % 37
	}
	return (38 - p) % 37
}

func noMatch(pos int, format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrNoMatch, pos, fmt.Sprintf(format, args...))
}

// digits parses s, which must consist of decimal digits, into a value; it
// reports false for any other byte. s is at most a few bytes long.
func digits(s string) (int, bool) {
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// Decode turns an ID back into its number and date parts. It validates check
// characters. It accepts exactly the IDs Render produces: an ID that does
// not have the template's shape (including non-canonical numbers such as
// leading zeros, numbers beyond int64, and invalid months or days) fails
// with ErrNoMatch, and one with a wrong check character with ErrBadCheck;
// with ErrBadCheck the result still holds the number and date the ID shows.
//
// Only the number token has a variable length, so its length is fixed by the
// ID's length and Decode runs in a single linear pass.
func (t *Template) Decode(id string) (Decoded, error) {
	nLen := len(id) - t.fixed
	if nLen < t.nMin || nLen > t.nMax {
		return Decoded{}, fmt.Errorf("%w: length %d does not fit template %q", ErrNoMatch, len(id), t.src)
	}
	var (
		number           int64
		year, yy, mm, dd = -1, -1, -1, -1
		pos              int
		badCheck         error
	)
	setPart := func(p *int, v int) bool {
		if *p >= 0 && *p != v {
			return false
		}
		*p = v
		return true
	}
	for i := range t.toks {
		tk := &t.toks[i]
		switch tk.kind {
		case kLit:
			if !strings.HasPrefix(id[pos:], tk.text) {
				return Decoded{}, noMatch(pos, "want literal %q", tk.text)
			}
			pos += len(tk.text)
		case kNum:
			s := id[pos : pos+nLen]
			if nLen > 1 && s[0] == '0' && nLen > tk.width {
				return Decoded{}, noMatch(pos, "number %q has a leading zero", s)
			}
			var v uint64
			for j := 0; j < len(s); j++ {
				c := s[j]
				if c < '0' || c > '9' {
					return Decoded{}, noMatch(pos+j, "want a digit, got %q", c)
				}
				v = v*10 + uint64(c-'0') // at most 19 digits: cannot wrap uint64
			}
			if v > math.MaxInt64 {
				return Decoded{}, noMatch(pos, "number %s overflows int64", s)
			}
			number = int64(v)
			pos += nLen
		case kMask:
			var v int64
			for j := 0; j < len(tk.text); j++ {
				c := id[pos+j]
				var d int64
				switch tk.text[j] {
				case '9':
					if c < '0' || c > '9' {
						return Decoded{}, noMatch(pos+j, "want a digit, got %q", c)
					}
					d = int64(c - '0')
				case 'A':
					if c < 'A' || c > 'Z' {
						return Decoded{}, noMatch(pos+j, "want an upper-case letter, got %q", c)
					}
					d = int64(c - 'A')
				default:
					if c < 'a' || c > 'z' {
						return Decoded{}, noMatch(pos+j, "want a lower-case letter, got %q", c)
					}
					d = int64(c - 'a')
				}
				v = v*radix(tk.text[j]) + d // below capacity <= MaxInt64
			}
			number = v
			pos += len(tk.text)
		case kYYYY:
			v, ok := digits(id[pos : pos+4])
			if !ok {
				return Decoded{}, noMatch(pos, "want a 4-digit year, got %q", id[pos:pos+4])
			}
			if !setPart(&year, v) {
				return Decoded{}, noMatch(pos, "year %q disagrees with an earlier year", id[pos:pos+4])
			}
			pos += 4
		case kYY, kMM, kDD:
			s := id[pos : pos+2]
			v, ok := digits(s)
			switch {
			case tk.kind == kYY:
				if !ok {
					return Decoded{}, noMatch(pos, "want a 2-digit year, got %q", s)
				}
				ok = setPart(&yy, v)
			case tk.kind == kMM:
				if !ok || v < 1 || v > 12 {
					return Decoded{}, noMatch(pos, "want a month 01..12, got %q", s)
				}
				ok = setPart(&mm, v)
			default:
				if !ok || v < 1 || v > 31 {
					return Decoded{}, noMatch(pos, "want a day 01..31, got %q", s)
				}
				ok = setPart(&dd, v)
			}
			if !ok {
				return Decoded{}, noMatch(pos, "date part %q disagrees with an earlier one", s)
			}
			pos += 2
		case kLuhn, kGS1:
			alg, digit := "luhn", luhn[string]
			if tk.kind == kGS1 {
				alg, digit = "gs1", gs1[string]
			}
			c := id[pos]
			if c < '0' || c > '9' {
				return Decoded{}, noMatch(pos, "want a %s check digit, got %q", alg, c)
			}
			if want := '0' + digit(id[:pos]); c != want && badCheck == nil {
				badCheck = fmt.Errorf("%w: %s at byte %d: got %q, want %q", ErrBadCheck, alg, pos, c, want)
			}
			pos++
		case kMod97:
			s := id[pos : pos+2]
			v, ok := digits(s)
			if !ok {
				return Decoded{}, noMatch(pos, "want two mod97 check digits, got %q", s)
			}
			if want := mod97(id[:pos]); v != want && badCheck == nil {
				badCheck = fmt.Errorf("%w: mod97 at byte %d: got %q, want \"%02d\"", ErrBadCheck, pos, s, want)
			}
			pos += 2
		case kMod37:
			c := id[pos]
			if strings.IndexByte(mod37Alphabet, c) < 0 {
				return Decoded{}, noMatch(pos, "want a mod37 check character (0-9, A-Z, *), got %q", c)
			}
			if want := mod37Alphabet[mod37(id[:pos])]; c != want && badCheck == nil {
				badCheck = fmt.Errorf("%w: mod37 at byte %d: got %q, want %q", ErrBadCheck, pos, c, want)
			}
			pos++
		}
	}
	if year >= 0 && yy >= 0 && year%100 != yy {
		return Decoded{}, fmt.Errorf("%w: 2-digit year %02d disagrees with year %04d", ErrNoMatch, yy, year)
	}
	res := Decoded{Number: number, Parts: t.parts}
	switch {
	case year >= 0:
		res.Date.Year = year
	case yy >= 0:
		res.Date.Year = 2000 + yy
	}
	res.Date.Month = max(mm, 0)
	res.Date.Day = max(dd, 0)
	// A wrong check character still tells which number and date the ID
	// claims to be, so the caller can say so.
	return res, badCheck
}

// DateKey is the date a rendered ID shows, as Decode returns it: d
// restricted to the parts the template has, with a {yy}-only year mapped
// to 2000+yy. Two dates render the same ID (for the same number) exactly
// when their keys are equal.
func (t *Template) DateKey(d Date) Date {
	var k Date
	switch {
	case t.hasYYYY:
		k.Year = d.Year
	case t.parts.Year:
		k.Year = 2000 + d.Year%100
	}
	if t.parts.Month {
		k.Month = d.Month
	}
	if t.parts.Day {
		k.Day = d.Day
	}
	return k
}
