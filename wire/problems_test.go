package wire

import (
	"errors"
	"testing"
)

// TestProblemsRoundTrip: every sentinel maps to its own code, and every
// code is listed once, so the server's and the client's directions of the
// mapping are inverses.
func TestProblemsRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Problems {
		if seen[k.Code] {
			t.Errorf("code %q listed twice", k.Code)
		}
		seen[k.Code] = true
		if k.Title == "" || k.Status < 400 {
			t.Errorf("code %q: title %q, status %d", k.Code, k.Title, k.Status)
		}
		for _, s := range k.Sentinels {
			if got := ForError(s); got.Code != k.Code {
				t.Errorf("%v maps to %q, want %q", s, got.Code, k.Code)
			}
		}
		if got, ok := ByCode(k.Code); !ok || got.Code != k.Code {
			t.Errorf("ByCode(%q) = %v, %v", k.Code, got, ok)
		}
	}
	if k := ForError(errors.New("boom")); k.Code != CodeInternal || k.Status != 500 {
		t.Errorf("an unknown error maps to %+v, want internal", k)
	}
}
