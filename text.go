package allot

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ValidateText checks free text a caller sends (a customer, a reference, a
// reason, a format): valid UTF-8, no NUL, at most max bytes. Databases
// refuse anything else, so it is refused here, before it can fail a batch
// that other callers share.
func ValidateText(field, v string, max int) error {
	switch {
	case len(v) > max:
		return Invalidf(field, "must be at most %d bytes, got %d", max, len(v))
	case !utf8.ValidString(v):
		return Invalidf(field, "must be valid UTF-8")
	case strings.IndexByte(v, 0) >= 0:
		return Invalidf(field, "must not contain NUL characters")
	}
	return nil
}

var claimIDRE = regexp.MustCompile(`^clm_[0-9a-z]{16}$`)

// validClaimID reports whether id has the shape allot gives claim ids.
func validClaimID(id string) bool { return claimIDRE.MatchString(id) }

// validateNoControl refuses control characters (Unicode category Cc: C0
// controls such as TAB and line breaks, DEL, C1 controls such as U+0085)
// and the line and paragraph separators: the value is an identifier that
// is printed, logged and exported one per line.
func validateNoControl(field, v string) error {
	for i, r := range v {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return Invalidf(field, "must not contain control characters: %U at byte %d", r, i)
		}
	}
	return nil
}

// ValidateLabel checks an identifier or one-line note a caller sends (a
// reference, a customer, a reason): valid UTF-8 of at most max bytes, without control characters.
func ValidateLabel(field, v string, max int) error {
	if err := ValidateText(field, v, max); err != nil {
		return err
	}
	return validateNoControl(field, v)
}
