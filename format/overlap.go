package format

import "math"

// charSet is a set of bytes.
type charSet [4]uint64

func (s *charSet) add(lo, hi byte) {
	for c := int(lo); c <= int(hi); c++ {
		s[c>>6] |= 1 << (uint(c) & 63)
	}
}

func (s charSet) meets(o charSet) bool {
	return s[0]&o[0] != 0 || s[1]&o[1] != 0 || s[2]&o[2] != 0 || s[3]&o[3] != 0
}

var (
	setDigit, setNonZero, setUpper, setLower, setMod37 charSet
)

func init() {
	setDigit.add('0', '9')
	setNonZero.add('1', '9')
	setUpper.add('A', 'Z')
	setLower.add('a', 'z')
	setMod37 = setDigit
	setMod37.add('A', 'Z')
	setMod37.add('*', '*')
}

func decimalDigits(v int64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

func pow10(n int) int64 {
	if n >= 19 {
		return math.MaxInt64
	}
	p := int64(1)
	for ; n > 0; n-- {
		p *= 10
	}
	return p
}

// numberLengths lists the lengths the number token renders to for the
// numbers lo..hi.
func (t *Template) numberLengths(lo, hi int64) []int {
	for _, tk := range t.toks {
		switch tk.kind {
		case kMask:
			return []int{len(tk.text)}
		case kNum:
			var out []int
			for d := decimalDigits(lo); d <= decimalDigits(hi); d++ {
				l := max(tk.width, d)
				if len(out) == 0 || out[len(out)-1] != l {
					out = append(out, l)
				}
			}
			return out
		}
	}
	return nil
}

// shape is a template rendered at one number length: the characters each
// position can hold, and where the number token sits.
type shape struct {
	sets      []charSet
	numAt     int
	numLen    int
	num       token
	numValues [2]int64 // the numbers of lo..hi that render at numLen
}

func (t *Template) shape(numLen int, lo, hi int64) (shape, bool) {
	var sh shape
	for _, tk := range t.toks {
		switch tk.kind {
		case kLit:
			for i := 0; i < len(tk.text); i++ {
				var s charSet
				s.add(tk.text[i], tk.text[i])
				sh.sets = append(sh.sets, s)
			}
		case kNum:
			if numLen < tk.width {
				return sh, false
			}
			// Only numbers of numLen digits render at numLen, or, when
			// numLen is the padding width, every number that fits it.
			vlo, vhi := pow10(numLen-1), pow10(numLen)-1
			if numLen == tk.width {
				vlo = 0
			}
			sh.numValues = [2]int64{max(lo, vlo), min(hi, vhi)}
			if sh.numValues[0] > sh.numValues[1] {
				return sh, false
			}
			sh.numAt, sh.numLen, sh.num = len(sh.sets), numLen, tk
			for i := 0; i < numLen; i++ {
				s := setDigit
				if i == 0 && numLen > tk.width && numLen > 1 {
					s = setNonZero
				}
				sh.sets = append(sh.sets, s)
			}
		case kMask:
			sh.numAt, sh.numLen, sh.num = len(sh.sets), len(tk.text), tk
			sh.numValues = [2]int64{lo, hi}
			for i := 0; i < len(tk.text); i++ {
				switch tk.text[i] {
				case '9':
					sh.sets = append(sh.sets, setDigit)
				case 'A':
					sh.sets = append(sh.sets, setUpper)
				default:
					sh.sets = append(sh.sets, setLower)
				}
			}
		case kYYYY:
			sh.sets = append(sh.sets, setDigit, setDigit, setDigit, setDigit)
		case kYY, kMM, kDD, kMod97:
			sh.sets = append(sh.sets, setDigit, setDigit)
		case kLuhn, kGS1:
			sh.sets = append(sh.sets, setDigit)
		case kMod37:
			sh.sets = append(sh.sets, setMod37)
		}
	}
	return sh, true
}

// MayOverlap reports whether some ID can be rendered both by a, for a
// number in aMin..aMax, and by b, for a number in bMin..bMax, on any dates.
// It never misses such an ID. Where the number tokens line up (same
// position, same length, same kind) it decides exactly from the two
// ranges; where they do not, it answers true unless some position of the
// IDs can never hold the same character. When it answers true, number is a
// number of a that may collide (or aMin when it can't name one).
func MayOverlap(a *Template, aMin, aMax int64, b *Template, bMin, bMax int64) (overlap bool, number int64) {
	if aMin > aMax || bMin > bMax {
		return false, 0
	}
	bLens := map[int]bool{}
	for _, l := range b.numberLengths(bMin, bMax) {
		bLens[b.fixed+l] = true
	}
	for _, la := range a.numberLengths(aMin, aMax) {
		total := a.fixed + la
		if !bLens[total] {
			continue
		}
		sa, ok := a.shape(la, aMin, aMax)
		if !ok {
			continue
		}
		sb, ok := b.shape(total-b.fixed, bMin, bMax)
		if !ok {
			continue
		}
		compatible := true
		for i := range sa.sets {
			if !sa.sets[i].meets(sb.sets[i]) {
				compatible = false
				break
			}
		}
		if !compatible {
			continue
		}
		aligned := sa.numAt == sb.numAt && sa.numLen == sb.numLen && sa.num.kind == sb.num.kind &&
			(sa.num.kind != kMask || sa.num.text == sb.num.text)
		if !aligned {
			return true, sa.numValues[0]
		}
		lo, hi := max(sa.numValues[0], sb.numValues[0]), min(sa.numValues[1], sb.numValues[1])
		if lo <= hi {
			return true, lo
		}
	}
	return false, 0
}
