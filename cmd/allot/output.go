package main

import (
	"strconv"
	"strings"
	"unicode"
)

// shown is s as the CLI prints text that came from callers (customers,
// references, reasons): control characters escaped, so text stored before
// the server refused them can't move an operator's cursor or send escape
// codes to the terminal.
func shown(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
