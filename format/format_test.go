package format

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ---------------------------------------------------------------------------
// Independent reference implementations used to check the package.

// refLuhnValid is the textbook Luhn validation of a full number (payload
// followed by its check digit): double every second digit from the right,
// starting with the second-to-last, and require a sum divisible by 10.
func refLuhnValid(digits string) bool {
	sum := 0
	for i := 0; i < len(digits); i++ {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d = d/10 + d%10
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// refLuhn finds the check digit by trying all ten.
func refLuhn(payload string) byte {
	for c := byte('0'); c <= '9'; c++ {
		if refLuhnValid(payload + string(c)) {
			return c
		}
	}
	panic("no luhn digit")
}

// refGS1Valid checks a GS1 number with its check digit as the GS1 General
// Specifications state it: counting from the right, the check digit is
// position 1; digits in even positions weigh 3, odd ones 1, and the sum is
// a multiple of ten.
func refGS1Valid(digits string) bool {
	sum := 0
	for pos := 1; pos <= len(digits); pos++ {
		d := int(digits[len(digits)-pos] - '0')
		if pos%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return sum%10 == 0
}

// refGS1 finds the GS1 check digit by trying all ten.
func refGS1(payload string) byte {
	for c := byte('0'); c <= '9'; c++ {
		if refGS1Valid(payload + string(c)) {
			return c
		}
	}
	panic("no gs1 digit")
}

// refMod97 computes 98 - (value*100 mod 97) with arbitrary precision.
func refMod97(digits string) int {
	if digits == "" {
		digits = "0"
	}
	v, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		panic("bad digits " + digits)
	}
	v.Mul(v, big.NewInt(100))
	v.Mod(v, big.NewInt(97))
	return 98 - int(v.Int64())
}

// refMod37 finds the ISO 7064 MOD 37-2 check character from the definition of
// a pure system: with the check character in position 1 and weights 2^(i-1),
// the weighted sum of all characters is congruent to 1 modulo 37.
func refMod37(s string) byte {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
	s = strings.ToUpper(s)
	for c := 0; c < 37; c++ {
		sum := big.NewInt(int64(c)) // weight 2^0
		for i := 0; i < len(s); i++ {
			v := int64(strings.IndexByte(alphabet, s[len(s)-1-i]))
			w := new(big.Int).Lsh(big.NewInt(1), uint(i+1))
			sum.Add(sum, w.Mul(w, big.NewInt(v)))
		}
		if sum.Mod(sum, big.NewInt(37)).Int64() == 1 {
			return alphabet[c]
		}
	}
	panic("no mod37 character")
}

// onlyDigits and onlyAlnum keep what the check algorithms look at.
func onlyDigits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func onlyAlnum(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// rubySucc is Ruby's String#next for a string made only of ASCII letters and
// digits: increment the rightmost character, carrying leftwards (9→0, z→a,
// Z→A); a carry out of the leftmost character prepends 1, a or A.
func rubySucc(s string) string {
	b := []byte(s)
	for i := len(b) - 1; i >= 0; i-- {
		switch c := b[i]; {
		case c == '9':
			b[i] = '0'
		case c == 'z':
			b[i] = 'a'
		case c == 'Z':
			b[i] = 'A'
		default:
			b[i]++
			return string(b)
		}
	}
	switch c := s[0]; {
	case c >= '0' && c <= '9':
		return "1" + string(b)
	case c >= 'a' && c <= 'z':
		return "a" + string(b)
	default:
		return "A" + string(b)
	}
}

func TestReferenceImplementations(t *testing.T) {
	// Published examples, checked against the references themselves so the
	// references are known to be right.
	if got := refLuhn("7992739871"); got != '3' {
		t.Errorf("refLuhn(7992739871) = %c, want 3", got)
	}
	if got := refMod97("794"); got != 44 {
		t.Errorf("refMod97(794) = %d, want 44", got)
	}
	// IBAN GB82 WEST 1234 5698 7654 32: BBAN + "GB" as digits, check 82.
	if got := refMod97("32142829123456987654321611"); got != 82 {
		t.Errorf("refMod97(IBAN) = %d, want 82", got)
	}
	if got := refMod37("G123498654321"); got != 'H' {
		t.Errorf("refMod37(G123498654321) = %c, want H", got)
	}
	for _, c := range []struct{ in, want string }{
		{"AZ9", "BA0"}, {"Az9", "Ba0"}, {"ZZ9", "AAA0"}, {"zz", "aaa"}, {"99", "100"}, {"a9", "b0"}, {"Zz", "AAa"},
	} {
		if got := rubySucc(c.in); got != c.want {
			t.Errorf("rubySucc(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCheckAlgorithmsAgainstReferences(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_ "
	for range 3000 {
		n := r.IntN(60)
		b := make([]byte, n)
		for i := range b {
			b[i] = alnum[r.IntN(len(alnum))]
		}
		s := string(b)
		d := onlyDigits(s)
		if got, want := '0'+luhn(s), refLuhn(d); got != want {
			t.Fatalf("luhn(%q) = %c, want %c", s, got, want)
		}
		if got, want := mod97(b), refMod97(d); got != want {
			t.Fatalf("mod97(%q) = %d, want %d", s, got, want)
		}
		if got, want := mod37Alphabet[mod37(s)], refMod37(onlyAlnum(s)); got != want {
			t.Fatalf("mod37(%q) = %c, want %c", s, got, want)
		}
		if got, want := '0'+gs1(s), refGS1(d); got != want {
			t.Fatalf("gs1(%q) = %c, want %c", s, got, want)
		}
	}
	// Long digit strings (far beyond int64) for mod97.
	for _, n := range []int{40, 100, 250} {
		s := strings.Repeat("9876543210", n/10)
		if got, want := mod97(s), refMod97(s); got != want {
			t.Errorf("mod97 of %d digits = %d, want %d", n, got, want)
		}
	}
}

// TestGS1PublishedExamples checks {check:gs1} against numbers GS1 and the
// standards publish with their check digits: SSCC-18 examples of the GS1
// General Specifications (extension digit, company prefix 0614141, serial
// reference), and well-known GTIN-12/13 examples.
func TestGS1PublishedExamples(t *testing.T) {
	for _, want := range []string{
		"106141411234567897", // SSCC (00) 1 0614141 123456789 7
		"006141411234567890", // SSCC (00) 0 0614141 123456789 0
		"036000291452",       // UPC-A (GTIN-12)
		"4006381333931",      // EAN-13 (GTIN-13)
		"9501101530003",      // GTIN-13, GS1's example company prefix 950110153
	} {
		payload := want[:len(want)-1]
		if got := string('0' + gs1(payload)); got != want[len(want)-1:] {
			t.Errorf("gs1(%s) = %s, want %s", payload, got, want[len(want)-1:])
		}
		if !refGS1Valid(want) {
			t.Errorf("the reference rejects the published %s", want)
		}
	}
	// An SSCC as a template: extension digit 1 and company prefix 0614141
	// as literal text, the serial reference as the number.
	sscc := MustParse("10614141{n:9}{check:gs1}")
	id, err := sscc.Render(123456789, Date{})
	if err != nil || id != "106141411234567897" {
		t.Fatalf("SSCC render = %q, %v; want 106141411234567897", id, err)
	}
	if d, err := sscc.Decode(id); err != nil || d.Number != 123456789 {
		t.Fatalf("Decode(%s) = %+v, %v", id, d, err)
	}
	if _, err := sscc.Decode("106141411234567891"); !errors.Is(err, ErrBadCheck) {
		t.Fatalf("Decode with a wrong gs1 digit: %v, want ErrBadCheck", err)
	}
	if _, err := Parse("LP{n:AA9}{check:gs1}"); err == nil {
		t.Fatal("Parse accepted {check:gs1} after a letter mask")
	}
}

// ---------------------------------------------------------------------------
// Rendering.

func TestRender(t *testing.T) {
	d := Date{2024, 3, 7}
	tests := []struct {
		tmpl string
		n    int64
		d    Date
		want string
	}{
		{"{n}", 0, d, "0"},
		{"{n}", 1234567, d, "1234567"},
		{"{n}", math.MaxInt64, d, "9223372036854775807"},
		{"{n:6}", 0, d, "000000"},
		{"{n:6}", 42, d, "000042"},
		{"{n:6}", 999999, d, "999999"},
		{"{n:6}", 1234567, d, "1234567"},
		{"{n:1}", 0, d, "0"},
		{"{n:1}", 12, d, "12"},
		{"{n:19}", 5, d, "0000000000000000005"},
		{"{n:19}", math.MaxInt64, d, "9223372036854775807"},
		{"{n:06}", 7, d, "000007"},
		{"LP{n:AA9}", 0, d, "LPAA0"},
		{"LP{n:AA9}", 1, d, "LPAA1"},
		{"LP{n:AA9}", 9, d, "LPAA9"},
		{"LP{n:AA9}", 10, d, "LPAB0"},
		{"LP{n:AA9}", 259, d, "LPAZ9"},
		{"LP{n:AA9}", 260, d, "LPBA0"},
		{"LP{n:AA9}", 6759, d, "LPZZ9"},
		{"{n:a9A}", 0, d, "a0A"},
		{"{n:a9A}", 26*10*26 - 1, d, "z9Z"},
		{"{n:Aa9}", 10, d, "Ab0"},
		{"{n:9A}", 27, d, "1B"},
		{"{n:AAAAAAAAAAAAA}", 26*26 + 1, d, "AAAAAAAAAABAB"},
		{"{{{n}}}", 7, d, "{7}"},
		{"}}x{{{n}", 7, d, "}x{7"},
		{"a{{b}}c-{n}", 1, d, "a{b}c-1"},
		{"INV-{yyyy}{mm}{dd}-{n:4}", 12, d, "INV-20240307-0012"},
		{"{yy}/{n}", 5, d, "24/5"},
		{"{yy}/{n}", 5, Date{2005, 1, 1}, "05/5"},
		{"{yy}/{n}", 5, Date{1999, 1, 1}, "99/5"},
		{"{yyyy}-{mm}-{dd}-{n}", 0, Date{}, "0000-00-00-0"},
		{"{yyyy}-{n}", 0, Date{Year: 987}, "0987-0"},
		{"{dd}.{mm}.{yyyy} {n}", 3, Date{2024, 12, 31}, "31.12.2024 3"},
		{"{n}", 4, Date{Year: -5, Month: 99}, "4"}, // unused date parts are not validated
		{"ü{n}€", 4, d, "ü4€"},
		// Luhn: 7992739871 -> 3.
		{"7992739871{check:luhn}-{n}", 0, d, "79927398713-0"},
		{"{n}{check:luhn}", 7992739871, d, "79927398713"},
		{"AB-{n}{check:luhn}", 7992739871, d, "AB-79927398713"},
		{"7992-7398-71{check:luhn}/{n}", 0, d, "7992-7398-713/0"},
		// Earlier check digits are part of what later checks cover.
		{"{n}{check:luhn}{check:luhn}", 7992739871, d, "799273987138"},
		// MOD 97-10: 794 -> 44, IBAN GB82WEST12345698765432 -> 82.
		{"794{check:mod97}-{n}", 0, d, "79444-0"},
		{"{n}{check:mod97}", 794, d, "79444"},
		{"32142829123456987654321611{check:mod97}/{n}", 0, d, "3214282912345698765432161182/0"},
		{"{n}{check:mod97}", 0, d, "098"},
		// MOD 37-2: G123498654321 -> H, case-insensitive.
		{"G123498654321{check:mod37}-{n}", 0, d, "G123498654321H-0"},
		{"g123498654321{check:mod37}-{n}", 0, d, "g123498654321H-0"},
		{"G12349865432{n}{check:mod37}", 1, d, "G123498654321H"},
	}
	for _, tc := range tests {
		tmpl, err := Parse(tc.tmpl)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.tmpl, err)
			continue
		}
		got, err := tmpl.Render(tc.n, tc.d)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q).Render(%d, %v) = %q, %v; want %q", tc.tmpl, tc.n, tc.d, got, err, tc.want)
		}
		// AppendRender appends after existing content and checks only what
		// it renders itself.
		b, err := tmpl.AppendRender([]byte("12345"), tc.n, tc.d)
		if err != nil || string(b) != "12345"+tc.want {
			t.Errorf("Parse(%q).AppendRender(\"12345\", %d) = %q, %v; want %q", tc.tmpl, tc.n, b, err, "12345"+tc.want)
		}
	}
}

func TestRenderChecksMatchReferences(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	d := Date{2031, 11, 9}
	for _, src := range []string{
		"X-{yyyy}{mm}{dd}-{n:6}{check:luhn}",
		"{n}{check:mod97}",
		"{n:8}-{check:luhn}{check:mod97}{yy}{check:luhn}",
		"{n:AAA999}{check:mod37}",
		"Lot {yyyy}/{n:aA9}{check:mod37}-{check:mod37}",
		"{n:12}{check:mod37}",
		"{n:17}{check:gs1}",
		"(00)0{n:9}-{check:gs1}{check:luhn}",
	} {
		tmpl := MustParse(src)
		for range 300 {
			n := r.Int64N(1_000_000)
			if c, ok := tmpl.Capacity(); ok {
				n %= c
			}
			got, err := tmpl.Render(n, d)
			if err != nil {
				t.Fatalf("%q.Render(%d): %v", src, n, err)
			}
			// Recompute every check character from the output before it.
			want := MustParse(src) // same token positions
			pos := 0
			for _, tk := range want.toks {
				var k int
				switch tk.kind {
				case kLit:
					k = len(tk.text)
				case kNum:
					k = len(got) - want.fixed
				case kMask:
					k = len(tk.text)
				case kYYYY:
					k = 4
				case kYY, kMM, kDD, kMod97:
					k = 2
				case kLuhn, kMod37, kGS1:
					k = 1
				}
				before, part := got[:pos], got[pos:pos+k]
				switch tk.kind {
				case kLuhn:
					if w := string(refLuhn(onlyDigits(before))); part != w {
						t.Fatalf("%q.Render(%d) = %q: luhn at %d is %q, want %q", src, n, got, pos, part, w)
					}
				case kMod97:
					if w := strconv.Itoa(refMod97(onlyDigits(before))); strings.TrimPrefix(part, "0") != w {
						t.Fatalf("%q.Render(%d) = %q: mod97 at %d is %q, want %q", src, n, got, pos, part, w)
					}
				case kMod37:
					if w := string(refMod37(onlyAlnum(before))); part != w {
						t.Fatalf("%q.Render(%d) = %q: mod37 at %d is %q, want %q", src, n, got, pos, part, w)
					}
				case kGS1:
					if w := string(refGS1(onlyDigits(before))); part != w {
						t.Fatalf("%q.Render(%d) = %q: gs1 at %d is %q, want %q", src, n, got, pos, part, w)
					}
				}
				pos += k
			}
		}
	}
}

func TestRenderErrors(t *testing.T) {
	mask := MustParse("LP{n:AA9}")
	if _, err := mask.Render(6760, Date{}); !errors.Is(err, ErrOverflow) {
		t.Errorf("Render(6760) error = %v, want ErrOverflow", err)
	}
	if _, err := mask.Render(math.MaxInt64, Date{}); !errors.Is(err, ErrOverflow) {
		t.Errorf("Render(MaxInt64) error = %v, want ErrOverflow", err)
	}
	if _, err := mask.Render(6759, Date{}); err != nil {
		t.Errorf("Render(6759) error = %v", err)
	}
	for _, tmpl := range []*Template{mask, MustParse("{n}"), MustParse("{n:4}")} {
		if _, err := tmpl.Render(-1, Date{}); err == nil || errors.Is(err, ErrOverflow) {
			t.Errorf("%q.Render(-1) error = %v, want a negative-number error", tmpl, err)
		}
	}
	dated := MustParse("{yyyy}{mm}{dd}{n}")
	for _, d := range []Date{{-1, 1, 1}, {10000, 1, 1}, {2024, 13, 1}, {2024, -1, 1}, {2024, 1, 32}, {2024, 1, -1}} {
		if _, err := dated.Render(1, d); err == nil {
			t.Errorf("Render(1, %v) succeeded, want a date error", d)
		}
	}
	if _, err := MustParse("{yy}{n}").Render(1, Date{Year: 10000}); err == nil {
		t.Errorf("{yy} Render with year 10000 succeeded")
	}
	// On error AppendRender returns dst unchanged.
	dst := []byte("keep")
	got, err := mask.AppendRender(dst, 7000, Date{})
	if err == nil || string(got) != "keep" {
		t.Errorf("AppendRender on error = %q, %v; want \"keep\" and an error", got, err)
	}
}

func TestCapacityAndParts(t *testing.T) {
	tests := []struct {
		tmpl    string
		cap     int64
		bounded bool
		parts   Parts
	}{
		{"{n}", 0, false, Parts{}},
		{"{n:6}", 0, false, Parts{}},
		{"LP{n:AA9}", 6760, true, Parts{}},
		{"{n:9A}", 260, true, Parts{}},
		{"{n:aAaA}", 26 * 26 * 26 * 26, true, Parts{}},
		{"{n:AAAAAAAAAAAAA}", 2481152873203736576, true, Parts{}},
		{"{yyyy}{n}", 0, false, Parts{Year: true}},
		{"{yy}{mm}{n}", 0, false, Parts{Year: true, Month: true}},
		{"{dd}{n}", 0, false, Parts{Day: true}},
		{"{yyyy}{mm}{dd}{n}", 0, false, Parts{true, true, true}},
	}
	for _, tc := range tests {
		tmpl, err := Parse(tc.tmpl)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.tmpl, err)
			continue
		}
		if c, ok := tmpl.Capacity(); c != tc.cap || ok != tc.bounded {
			t.Errorf("%q.Capacity() = %d, %v; want %d, %v", tc.tmpl, c, ok, tc.cap, tc.bounded)
		}
		if p := tmpl.Parts(); p != tc.parts {
			t.Errorf("%q.Parts() = %+v, want %+v", tc.tmpl, p, tc.parts)
		}
		if tmpl.String() != tc.tmpl {
			t.Errorf("String() = %q, want %q", tmpl.String(), tc.tmpl)
		}
	}
}

// TestRubySuccAgreement checks that successive numbers render like Ruby's
// String#next applied to the masked part, and that the number after the last
// one is an overflow exactly where String#next would grow the string.
func TestRubySuccAgreement(t *testing.T) {
	for _, tc := range []struct{ prefix, mask, suffix string }{
		{"LP", "AA9", ""},
		{"", "Aa9", ""},
		{"", "9a", "-x"},
		{"", "aA", ""},
		{"X", "99A9", "Y"},
		{"", "A", ""},
		{"", "9A", ""},
		{"", "a9a9", ""},
		{"", "AAAA", ""},
		{"#", "9aA9", "a"},
	} {
		tmpl := MustParse(tc.prefix + "{n:" + tc.mask + "}" + tc.suffix)
		capacity, ok := tmpl.Capacity()
		if !ok {
			t.Fatalf("mask %q unbounded", tc.mask)
		}
		masked := func(n int64) string {
			s, err := tmpl.Render(n, Date{})
			if err != nil {
				t.Fatalf("mask %q Render(%d): %v", tc.mask, n, err)
			}
			if !strings.HasPrefix(s, tc.prefix) || !strings.HasSuffix(s, tc.suffix) {
				t.Fatalf("mask %q Render(%d) = %q: literals changed", tc.mask, n, s)
			}
			return s[len(tc.prefix) : len(s)-len(tc.suffix)]
		}
		cur := masked(0)
		for n := int64(1); n < capacity; n++ {
			want := rubySucc(cur)
			got := masked(n)
			if got != want {
				t.Fatalf("mask %q: Render(%d) = %q, but %q.next = %q", tc.mask, n, got, cur, want)
			}
			cur = got
		}
		if next := rubySucc(cur); len(next) == len(cur) {
			t.Errorf("mask %q: last value %q has a same-length successor %q", tc.mask, cur, next)
		}
		if _, err := tmpl.Render(capacity, Date{}); !errors.Is(err, ErrOverflow) {
			t.Errorf("mask %q: Render(capacity) error = %v, want ErrOverflow", tc.mask, err)
		}
	}
	// Large masks: random samples and the top end.
	r := rand.New(rand.NewPCG(5, 6))
	for _, mask := range []string{"AAAAAAAAAAAAA", "a9a9a9a9a9a9a9", "99999999999999999A", "Aa9Aa9Aa9Aa9"} {
		tmpl := MustParse("{n:" + mask + "}")
		capacity, _ := tmpl.Capacity()
		samples := []int64{0, capacity - 2}
		for range 2000 {
			samples = append(samples, r.Int64N(capacity-1))
		}
		for _, n := range samples {
			a, err1 := tmpl.Render(n, Date{})
			b, err2 := tmpl.Render(n+1, Date{})
			if err1 != nil || err2 != nil {
				t.Fatalf("mask %q: %v %v", mask, err1, err2)
			}
			if rubySucc(a) != b {
				t.Fatalf("mask %q: Render(%d) = %q, Render(%d) = %q, but %q.next = %q", mask, n, a, n+1, b, a, rubySucc(a))
			}
		}
		last, _ := tmpl.Render(capacity-1, Date{})
		if len(rubySucc(last)) == len(last) {
			t.Errorf("mask %q: Render(capacity-1) = %q is not the last value", mask, last)
		}
	}
}

// ---------------------------------------------------------------------------
// Parsing.

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("x", MaxTemplateLen-2) + "{n}"
	tests := []struct {
		tmpl string
		pos  int
		msg  string // substring of Msg
	}{
		{"ID-{x}{n}", 3, `unknown token "{x}" (want {n}, {n:WIDTH}, {n:MASK}, {yyyy}, {yy}, {mm}, {dd}, {check:luhn|mod97|mod37|gs1})`},
		{"{N}", 0, "unknown token"},
		{"{ n}", 0, "unknown token"},
		{"{n}{yyy}", 3, `unknown token "{yyy}"`},
		{"{n}{}", 3, `unknown token "{}"`},
		{"{n", 0, `unclosed "{"`},
		{"ab{n}{", 5, `unclosed "{"`},
		{"ab{n}{yyyy", 5, `unclosed "{"`},
		{"a}{n}", 1, `stray "}"`},
		{"{n}}", 3, `stray "}"`},
		{"{n}}}}", 5, `stray "}"`},
		{"{n:}", 0, "empty width or mask"},
		{"ab{n:}", 2, "empty width or mask"},
		{"{n:AB9}", 4, "invalid mask character 'B'"},
		{"{n:A1}", 4, "invalid mask character '1'"},
		{"{n:6 }", 3, "invalid mask character '6'"},
		{"{n:9 }", 4, "invalid mask character ' '"},
		{"x{n:aa9b}", 7, "invalid mask character 'b'"},
		{"{n:0}", 3, "width 0 out of range 1..19"},
		{"{n:00}", 3, "width 00 out of range"},
		{"{n:20}", 3, "width 20 out of range"},
		{"{n:99}", 3, "width 99 out of range"},
		{"{n:99999999999999999999999}", 3, "out of range"},
		{"{n}{check:crc}", 10, `unknown check algorithm "crc"`},
		{"{n}{check:}", 10, `unknown check algorithm ""`},
		{"{n}{check:LUHN}", 10, "unknown check algorithm"},
		{"", 0, "no number token"},
		{"abc", 0, "no number token"},
		{"{yyyy}{{n}}", 0, "no number token"},
		{"{n}-{n:4}", 4, "second number token"},
		{"{n:A}{n}", 5, "second number token"},
		{"{n:AA9}{check:luhn}", 7, "cannot protect the letters"},
		{"{n:aa}-{check:mod97}", 7, "cannot protect the letters"},
		{"{n:9a}{check:mod37}{check:luhn}", 19, "cannot protect the letters"},
		{"{check:luhn}{n}", 0, "nothing before it"},
		{"{check:mod37}{n}", 0, "nothing before it"},
		{"{n:AAAAAAAAAAAAAA}", 0, "capacity larger than 2^63-1"},
		{"{n:AAAAAAAAAAAAA9}", 0, "capacity larger than 2^63-1"},
		{"--{n:" + strings.Repeat("9a", 40) + "}", 2, "capacity larger than 2^63-1"},
		{long, MaxTemplateLen, "longer than the limit of 256"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.tmpl)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) error = %v, want a *SyntaxError", tc.tmpl, err)
			continue
		}
		if se.Pos != tc.pos || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("Parse(%q) = position %d %q; want position %d containing %q", tc.tmpl, se.Pos, se.Msg, tc.pos, tc.msg)
		}
	}

	// The exact error text.
	_, err := Parse("ID-{x}{n}")
	const want = `format: position 3: unknown token "{x}" (want {n}, {n:WIDTH}, {n:MASK}, {yyyy}, {yy}, {mm}, {dd}, {check:luhn|mod97|mod37|gs1})`
	if err == nil || err.Error() != want {
		t.Errorf("Parse error text = %v, want %s", err, want)
	}

	// Things that are valid.
	for _, s := range []string{
		long[1:], // exactly 256 bytes
		"{n}",
		"{n:19}",
		"{n:AAAAAAAAAAAAA}", // 26^13 fits
		"{n:99999999999999999A}",
		"{n:9}", // width 9
		"{{n}}{n}",
		"{n}{check:luhn}{n:x",
		"x{check:luhn}{n}",
		"{check:luhn}", // rejected: no n
		"x{check:mod97}{n:AA}",
		"{n:AA}{check:mod37}{check:mod37}",
		"{yyyy}{yy}{mm}{dd}{yyyy}{n}",
	} {
		_, err := Parse(s)
		switch s {
		case "{n}{check:luhn}{n:x", "{check:luhn}":
			if err == nil {
				t.Errorf("Parse(%q) succeeded, want an error", s)
			}
		default:
			if err != nil {
				t.Errorf("Parse(%q): %v", s, err)
			}
		}
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("MustParse of an invalid template did not panic")
		} else if _, ok := r.(*SyntaxError); !ok {
			t.Errorf("MustParse panicked with %T, want *SyntaxError", r)
		}
	}()
	MustParse("{x}")
}

// ---------------------------------------------------------------------------
// Decoding.

var roundTripTemplates = []string{
	"{n}",
	"{n:1}",
	"{n:6}",
	"{n:19}",
	"LP{n:AA9}",
	"{n:a9A}-x",
	"{n:AAAAAAAAAAAAA}",
	"INV-{yyyy}{mm}{dd}-{n:4}",
	"{n}{yyyy}",
	"{yy}{n}{mm}",
	"{n}{dd}{mm}{yy}",
	"{n}7{dd}",
	"{n:17}{check:gs1}",
	"{yyyy}{yy}{n}{yyyy}",
	"{n}{check:luhn}",
	"{n:12}{check:mod97}",
	"ORD{yy}{mm}-{n}{check:luhn}{check:mod97}",
	"{n:AAA999}{check:mod37}",
	"{n}-{check:mod37}{check:mod37}",
	"{{{n}}}{check:luhn}",
	"ü{n}€{check:mod37}",
	"{dd}{check:luhn}{n}{check:mod97}",
}

func TestDecodeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	dates := []Date{{2024, 3, 7}, {2000, 1, 1}, {2099, 12, 31}, {2050, 2, 29}}
	for _, src := range roundTripTemplates {
		tmpl := MustParse(src)
		capacity, bounded := tmpl.Capacity()
		ns := []int64{0, 1, 9, 10, 11, 99, 100, 101, 999999, 1000000, 1234567, math.MaxInt64, math.MaxInt64 - 1, 1e18, 1e18 - 1}
		for range 300 {
			ns = append(ns, r.Int64N(1<<uint(r.IntN(63)+1)-1))
		}
		if bounded {
			ns = append(ns, capacity-1, capacity-2)
		}
		for _, n := range ns {
			if bounded && n >= capacity {
				continue
			}
			for _, d := range dates {
				id, err := tmpl.Render(n, d)
				if err != nil {
					t.Fatalf("%q.Render(%d, %v): %v", src, n, d, err)
				}
				got, err := tmpl.Decode(id)
				if err != nil {
					t.Fatalf("%q.Decode(%q) [n=%d d=%v]: %v", src, id, n, d, err)
				}
				want := Decoded{Number: n, Parts: tmpl.Parts()}
				if want.Parts.Year {
					want.Date.Year = d.Year
				}
				if want.Parts.Month {
					want.Date.Month = d.Month
				}
				if want.Parts.Day {
					want.Date.Day = d.Day
				}
				if got != want {
					t.Fatalf("%q.Decode(%q) = %+v, want %+v", src, id, got, want)
				}
			}
		}
	}
}

func TestDecodeCases(t *testing.T) {
	tests := []struct {
		tmpl, id string
		n        int64
		d        Date
		err      error
	}{
		{"{n}", "0", 0, Date{}, nil},
		{"{n}", "42", 42, Date{}, nil},
		{"{n}", "007", 0, Date{}, ErrNoMatch},
		{"{n}", "00", 0, Date{}, ErrNoMatch},
		{"{n}", "", 0, Date{}, ErrNoMatch},
		{"{n}", "-1", 0, Date{}, ErrNoMatch},
		{"{n}", "+1", 0, Date{}, ErrNoMatch},
		{"{n}", "1 ", 0, Date{}, ErrNoMatch},
		{"{n}", "9223372036854775807", math.MaxInt64, Date{}, nil},
		{"{n}", "9223372036854775808", 0, Date{}, ErrNoMatch},
		{"{n}", "9999999999999999999", 0, Date{}, ErrNoMatch},
		{"{n}", "99999999999999999999", 0, Date{}, ErrNoMatch},
		{"{n:4}", "0012", 12, Date{}, nil},
		{"{n:4}", "12345", 12345, Date{}, nil},
		{"{n:4}", "00123", 0, Date{}, ErrNoMatch},
		{"{n:4}", "012", 0, Date{}, ErrNoMatch},
		{"{n:19}", "0000000000000000005", 5, Date{}, nil},
		{"{n:19}", "9223372036854775808", 0, Date{}, ErrNoMatch},
		{"LP{n:AA9}", "LPZZ9", 6759, Date{}, nil},
		{"LP{n:AA9}", "LPAB0", 10, Date{}, nil},
		{"LP{n:AA9}", "LPzz9", 0, Date{}, ErrNoMatch},
		{"LP{n:AA9}", "lPAA0", 0, Date{}, ErrNoMatch},
		{"LP{n:AA9}", "LPAA", 0, Date{}, ErrNoMatch},
		{"LP{n:AA9}", "LPAA00", 0, Date{}, ErrNoMatch},
		{"LP{n:AA9}", "LPA00", 0, Date{}, ErrNoMatch},
		{"{n}{yyyy}", "1232024", 123, Date{Year: 2024}, nil},
		{"{n}{yyyy}", "2024", 0, Date{}, ErrNoMatch},
		{"{n}{mm}", "513", 0, Date{}, ErrNoMatch},
		{"{n}{mm}", "500", 0, Date{}, ErrNoMatch},
		{"{n}{mm}", "512", 5, Date{Month: 12}, nil},
		{"{n}{dd}", "532", 0, Date{}, ErrNoMatch},
		{"{n}{dd}", "531", 5, Date{Day: 31}, nil},
		{"{yy}-{n}", "07-1", 1, Date{Year: 2007}, nil},
		{"{yy}-{n}", "7-1", 0, Date{}, ErrNoMatch},
		{"{yyyy}{yy}{n}", "2024245", 5, Date{Year: 2024}, nil},
		{"{yyyy}{yy}{n}", "2024255", 0, Date{}, ErrNoMatch},
		{"{yy}{yyyy}{n}", "2520245", 0, Date{}, ErrNoMatch},
		{"{mm}{mm}{n}", "01025", 0, Date{}, ErrNoMatch},
		{"{yyyy}-{n}-{yyyy}", "2024-1-2025", 0, Date{}, ErrNoMatch},
		{"{{{n}}}", "{5}", 5, Date{}, nil},
		{"{{{n}}}", "{5", 0, Date{}, ErrNoMatch},
		{"{n}{check:luhn}", "79927398713", 7992739871, Date{}, nil},
		{"{n}{check:luhn}", "79927398710", 7992739871, Date{}, ErrBadCheck},
		{"{n}{check:luhn}", "7992739871x", 0, Date{}, ErrNoMatch},
		{"{n}{check:mod97}", "79444", 794, Date{}, nil},
		{"{n}{check:mod97}", "79445", 794, Date{}, ErrBadCheck},
		{"{n}{check:mod97}", "79499", 794, Date{}, ErrBadCheck},
		{"{n}{check:mod97}", "7944", 79, Date{}, ErrBadCheck},
		{"{n}{check:mod37}", "123", 12, Date{}, ErrBadCheck},
		{"{n}{check:mod37}", "12a", 0, Date{}, ErrNoMatch},
		{"{n}{check:mod37}", "12-", 0, Date{}, ErrNoMatch},
		// A structural mismatch wins over a check mismatch.
		{"{n}{check:luhn}-{mm}", "79927398710-13", 0, Date{}, ErrNoMatch},
	}
	for _, tc := range tests {
		tmpl := MustParse(tc.tmpl)
		got, err := tmpl.Decode(tc.id)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%q.Decode(%q) = %+v, %v; want %v", tc.tmpl, tc.id, got, err, tc.err)
			}
			if errors.Is(err, ErrNoMatch) && errors.Is(err, ErrBadCheck) {
				t.Errorf("%q.Decode(%q) error %v is both", tc.tmpl, tc.id, err)
			}
			// A wrong check character still reports the number the ID shows.
			if errors.Is(tc.err, ErrBadCheck) && (got.Number != tc.n || got.Date != tc.d) {
				t.Errorf("%q.Decode(%q) with a bad check = %+v, want number %d date %+v", tc.tmpl, tc.id, got, tc.n, tc.d)
			}
			continue
		}
		want := Decoded{Number: tc.n, Date: tc.d, Parts: tmpl.Parts()}
		if err != nil || got != want {
			t.Errorf("%q.Decode(%q) = %+v, %v; want %+v", tc.tmpl, tc.id, got, err, want)
		}
	}
}

func TestDecodeGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	garbage := []string{"", " ", "\x00", "{", "}", "{n}", "LP", "LP{n:AA9}", strings.Repeat("9", 500), strings.Repeat("A", 40), "\xff\xfe", "ÿ", "INV--", "null", "-0"}
	for range 500 {
		b := make([]byte, r.IntN(30))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		garbage = append(garbage, string(b))
	}
	for _, src := range roundTripTemplates {
		tmpl := MustParse(src)
		for _, g := range garbage {
			_, err := tmpl.Decode(g)
			if !errors.Is(err, ErrNoMatch) && !errors.Is(err, ErrBadCheck) {
				t.Fatalf("%q.Decode(%q) error = %v, want ErrNoMatch", src, g, err)
			}
			// Random bytes almost never have the right shape; the fixed list
			// never does.
			if !errors.Is(err, ErrNoMatch) && len(g) < 20 && !strings.ContainsAny(g, "0123456789") {
				t.Errorf("%q.Decode(%q) error = %v, want ErrNoMatch", src, g, err)
			}
		}
	}
}

// assertDetects decodes every single-character substitution (within alphabet)
// and, if transpose is set, every adjacent transposition of differing
// characters at positions where both are in alphabet, expecting ErrBadCheck.
func assertDetects(t *testing.T, tmpl *Template, id string, alphabetAt func(i int) string, transpose bool) {
	t.Helper()
	for i := 0; i < len(id); i++ {
		for _, c := range []byte(alphabetAt(i)) {
			if c == id[i] {
				continue
			}
			bad := id[:i] + string(c) + id[i+1:]
			if _, err := tmpl.Decode(bad); !errors.Is(err, ErrBadCheck) {
				t.Fatalf("%q: substitution %q -> %q not detected: %v", tmpl, id, bad, err)
			}
		}
	}
	if !transpose {
		return
	}
	for i := 0; i+1 < len(id); i++ {
		if id[i] == id[i+1] || alphabetAt(i) == "" || alphabetAt(i) != alphabetAt(i+1) {
			continue
		}
		bad := id[:i] + string(id[i+1]) + string(id[i]) + id[i+2:]
		if _, err := tmpl.Decode(bad); !errors.Is(err, ErrBadCheck) {
			t.Fatalf("%q: transposition %q -> %q not detected: %v", tmpl, id, bad, err)
		}
	}
}

func TestCheckDetectsErrors(t *testing.T) {
	const digitSet = "0123456789"
	r := rand.New(rand.NewPCG(11, 12))
	digitsOnly := func(int) string { return digitSet }

	luhnT := MustParse("{n:12}{check:luhn}")
	mod97T := MustParse("{n:12}{check:mod97}")
	mod97Long := MustParse("{yyyy}{mm}{dd}{n:18}{check:mod97}")
	mod37T := MustParse("{n:AAA999}{check:mod37}")
	mod37Mixed := MustParse("{n:9a9A}{check:mod37}")
	for range 200 {
		n := r.Int64N(1e12)
		id, _ := luhnT.Render(n, Date{})
		assertDetects(t, luhnT, id, digitsOnly, false) // Luhn misses 09<->90
		id, _ = mod97T.Render(n, Date{})
		assertDetects(t, mod97T, id, digitsOnly, true)
		id, _ = mod97Long.Render(r.Int64N(1e18), Date{2024, 10, 10})
		// Only the number and check positions: a changed date may be invalid.
		assertDetects(t, mod97Long, id, func(i int) string {
			if i < 8 {
				return ""
			}
			return digitSet
		}, true)

		c, _ := mod37T.Capacity()
		id, _ = mod37T.Render(r.Int64N(c), Date{})
		assertDetects(t, mod37T, id, func(i int) string {
			switch {
			case i < 3:
				return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			case i < 6:
				return digitSet
			}
			return mod37Alphabet
		}, true)
		c, _ = mod37Mixed.Capacity()
		id, _ = mod37Mixed.Render(r.Int64N(c), Date{})
		assertDetects(t, mod37Mixed, id, func(i int) string {
			switch i {
			case 0, 2:
				return digitSet
			case 1:
				return "abcdefghijklmnopqrstuvwxyz"
			case 3:
				return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			}
			return mod37Alphabet
		}, false)
	}
	// Luhn does detect transpositions other than 09 <-> 90.
	id, _ := luhnT.Render(123456781234, Date{})
	assertDetects(t, luhnT, id, digitsOnly, true)
}

// ---------------------------------------------------------------------------
// Performance and concurrency.

func TestAppendRenderNoAlloc(t *testing.T) {
	for _, src := range []string{"{n}", "LP{n:AA9}", "INV-{yyyy}{mm}{dd}-{n:6}{check:luhn}", "{n:AAA999}{check:mod37}", "{n}{check:mod97}"} {
		tmpl := MustParse(src)
		dst := make([]byte, 0, 64)
		n := int64(0)
		allocs := testing.AllocsPerRun(1000, func() {
			var err error
			dst, err = tmpl.AppendRender(dst[:0], n%6000, Date{2024, 3, 7})
			if err != nil {
				panic(err)
			}
			n++
		})
		if allocs != 0 {
			t.Errorf("%q: AppendRender allocates %v times per run", src, allocs)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	tmpl := MustParse("ORD{yy}-{n:AA99}{check:mod37}")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			var buf []byte
			for n := int64(g); n < 2000; n += 8 {
				var err error
				buf, err = tmpl.AppendRender(buf[:0], n, Date{Year: 2024})
				if err != nil {
					t.Error(err)
					return
				}
				if d, err := tmpl.Decode(string(buf)); err != nil || d.Number != n {
					t.Errorf("Decode(%q) = %+v, %v", buf, d, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkAppendRender(b *testing.B) {
	for _, src := range []string{"{n}", "LP{n:AA9}", "INV-{yyyy}{mm}{dd}-{n:6}{check:luhn}"} {
		b.Run(src, func(b *testing.B) {
			tmpl := MustParse(src)
			dst := make([]byte, 0, 64)
			d := Date{2024, 3, 7}
			n := int64(0)
			b.ReportAllocs()
			for b.Loop() {
				dst, _ = tmpl.AppendRender(dst[:0], n, d)
				n++
				if n == 6760 {
					n = 0
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	tmpl := MustParse("INV-{yyyy}{mm}{dd}-{n:6}{check:luhn}")
	id, _ := tmpl.Render(123456, Date{2024, 3, 7})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tmpl.Decode(id); err != nil {
			b.Fatal(err)
		}
	}
}

// ---------------------------------------------------------------------------
// Fuzzing.

func FuzzParse(f *testing.F) {
	for _, s := range roundTripTemplates {
		f.Add(s)
	}
	for _, s := range []string{
		"", "{", "}", "{{", "}}", "{n", "{n:}", "{n:0}", "{n:20}", "{n:AAAAAAAAAAAAAA}", "{check:luhn}{n}",
		"{n:AA9}{check:luhn}", "{n}{n}", "ID-{x}{n}", "{n:9}", "{n:A9a}{check:mod37}", "\xff{n}\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tmpl, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %v is not a *SyntaxError", s, err)
			}
			if se.Pos < 0 || se.Pos > len(s) {
				t.Fatalf("Parse(%q) error position %d out of range", s, se.Pos)
			}
			return
		}
		if tmpl.String() != s {
			t.Fatalf("String() = %q, want %q", tmpl.String(), s)
		}
		capacity, bounded := tmpl.Capacity()
		ns := []int64{0, 1, 2, 9, 10, 25, 26, 99, 100, 123456, math.MaxInt64}
		if bounded {
			ns = append(ns, capacity-1, capacity/2)
		}
		d := Date{2024, 2, 29}
		for _, n := range ns {
			id, err := tmpl.Render(n, d)
			if bounded && n >= capacity {
				if !errors.Is(err, ErrOverflow) {
					t.Fatalf("%q.Render(%d) error = %v, want ErrOverflow", s, n, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%q.Render(%d): %v", s, n, err)
			}
			got, err := tmpl.Decode(id)
			if err != nil {
				t.Fatalf("%q.Decode(%q): %v", s, id, err)
			}
			p := tmpl.Parts()
			want := Decoded{Number: n, Parts: p}
			if p.Year {
				want.Date.Year = d.Year
			}
			if p.Month {
				want.Date.Month = d.Month
			}
			if p.Day {
				want.Date.Day = d.Day
			}
			if got != want {
				t.Fatalf("%q.Decode(%q) = %+v, want %+v", s, id, got, want)
			}
		}
	})
}

var fuzzDecodeTemplates = []*Template{
	MustParse("{n}"),
	MustParse("{n:6}"),
	MustParse("LP{n:AA9}"),
	MustParse("INV-{yyyy}{mm}{dd}-{n:4}"),
	MustParse("{yy}{n}{mm}{check:luhn}"),
	MustParse("{n}{dd}{check:mod97}"),
	MustParse("{yyyy}{yy}{n:Aa9}{check:mod37}"),
	MustParse("{n}-{check:mod37}{check:luhn}{check:mod97}"),
}

func FuzzDecode(f *testing.F) {
	for _, tmpl := range fuzzDecodeTemplates {
		for _, n := range []int64{0, 7, 1234, 6759} {
			if id, err := tmpl.Render(n, Date{2024, 12, 31}); err == nil {
				f.Add(id)
			}
		}
	}
	for _, s := range []string{"", "0", "00", "9223372036854775808", "LPzz9", "INV-20241301-0001", "\xff", "{n}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		for _, tmpl := range fuzzDecodeTemplates {
			got, err := tmpl.Decode(id)
			if err != nil {
				if !errors.Is(err, ErrNoMatch) && !errors.Is(err, ErrBadCheck) {
					t.Fatalf("%q.Decode(%q) error %v is neither ErrNoMatch nor ErrBadCheck", tmpl, id, err)
				}
				continue
			}
			if got.Number < 0 || got.Parts != tmpl.Parts() {
				t.Fatalf("%q.Decode(%q) = %+v", tmpl, id, got)
			}
			back, err := tmpl.Render(got.Number, got.Date)
			if err != nil || back != id {
				t.Fatalf("%q.Decode(%q) = %+v, which renders as %q, %v", tmpl, id, got, back, err)
			}
		}
	})
}
