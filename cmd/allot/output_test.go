package main

import "testing"

func TestShown(t *testing.T) {
	for in, want := range map[string]string{
		"refunded: order 8812": "refunded: order 8812",
		"Zoë 日本":               "Zoë 日本",
		"line1\nline2":         `line1\nline2`,
		"\x1b[2Jowned\a":       `\x1b[2Jowned\a`,
		"a\u0085b":             `a\u0085b`,
	} {
		if got := shown(in); got != want {
			t.Errorf("shown(%q) = %q, want %q", in, got, want)
		}
	}
}
