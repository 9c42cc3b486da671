package httpapi

import (
	"bytes"
	"strings"
	"testing"
)

// TestLabelsHTTP: the document's Content-Type follows the format, the
// headers say what was issued, a replay returns the same bytes, and bad
// input is a problem that takes no number.
func TestLabelsHTTP(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"name":"lp","format":"LP{n:AA9}","start":0,"mode":"gapless","label":{"format":"zpl","title":"Dock 4"}}`)
	for _, tc := range []struct{ body, ct, magic string }{
		{`{"count":3}`, "application/zpl", "^XA"},
		{`{"count":2,"format":"pdf","layout":"a4"}`, "application/pdf", "%PDF-"},
		{`{"format":"png","barcode":"qr","size":"50x25mm","dpi":300,"text":false}`, "image/png", "\x89PNG"},
	} {
		r := e.do("POST", "/v1/sequences/lp/labels", tc.body, "Content-Type", "application/json")
		if r.status != 200 || r.header.Get("Content-Type") != tc.ct || !bytes.HasPrefix(r.body, []byte(tc.magic)) {
			t.Fatalf("labels %s: %d %q %.40q", tc.body, r.status, r.header.Get("Content-Type"), r.body)
		}
	}
	r := e.do("POST", "/v1/sequences/lp/labels", `{"count":2}`, "Content-Type", "application/json", "Idempotency-Key", "roll-9")
	if r.header.Get("Allot-First-Id") != "LPAA6" || r.header.Get("Allot-Last-Id") != "LPAA7" || r.header.Get("Allot-Count") != "2" || r.header.Get("Allot-First") != "6" {
		t.Fatalf("headers %v", r.header)
	}
	again := e.do("POST", "/v1/sequences/lp/labels", `{"count":2}`, "Content-Type", "application/json", "Idempotency-Key", "roll-9")
	if again.status != 200 || again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.body, r.body) {
		t.Fatalf("replay: %d %v", again.status, again.header)
	}
	if n := strings.Count(string(r.body), "^XA"); n != 2 || !strings.Contains(string(r.body), "Dock 4") {
		t.Fatalf("saved settings not applied: %s", r.body)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"count":2,"format":"png"}`, "format"},
		{`{"barcode":"gs1-128"}`, "barcode"},
		{`{"size":"huge"}`, "size"},
		{`{"dpi":"300"}`, "dpi"},
		{`{"text":null}`, "text"},
		{`{"colour":"red"}`, "colour"},
		{`{"count":0}`, "count"},
	} {
		p := e.problem(e.do("POST", "/v1/sequences/lp/labels", tc.body, "Content-Type", "application/json"), 400, "invalid_request")
		if p.Field != tc.field {
			t.Errorf("labels %s: field %q, want %q (%s)", tc.body, p.Field, tc.field, p.Detail)
		}
	}
	var st struct{ Next, Issued int64 }
	e.ok(e.do("GET", "/v1/sequences/lp", ""), 200, &st)
	if st.Next != 8 || st.Issued != 8 {
		t.Fatalf("after refused labels: next %d issued %d, want 8 and 8", st.Next, st.Issued)
	}

	// Reprints.
	rp := e.do("GET", "/v1/sequences/lp/labels?idempotency_key=roll-9", "")
	if rp.status != 200 || !bytes.Equal(rp.body, r.body) || rp.header.Get("Allot-First-Id") != "LPAA6" || rp.header.Get("Allot-Count") != "2" {
		t.Fatalf("reprint by key: %d %v %s", rp.status, rp.header, rp.body)
	}
	// An ID is taken as it is: one with a space does not match the format.
	e.problem(e.do("GET", "/v1/sequences/lp/labels?ids=%20LPAA6", ""), 400, "invalid_request")
	if rp := e.do("GET", "/v1/sequences/lp/labels?first=LPAA0&last=LPAA2&format=pdf&text=false&dpi=300", ""); rp.status != 200 || rp.header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("reprint pdf: %d %s", rp.status, rp.body)
	}
	e.problem(e.do("GET", "/v1/sequences/lp/labels?first=LPAA0&last=LPAA8", ""), 409, "not_issued")
	e.ok(e.do("POST", "/v1/sequences/lp/void", `{"id":"LPAA1","reason":"jammed"}`, "Content-Type", "application/json"), 200, nil)
	e.problem(e.do("GET", "/v1/sequences/lp/labels?ids=LPAA0,LPAA1", ""), 409, "not_issued")
	for _, q := range []string{"", "?first=LPAA0&last=LPAA1&ids=LPAA0", "?ids=LPAA0,,LPAA2", "?ids=", "?first=LPAA0&last=LPAA0&dpi=x", "?first=LPAA0&last=LPAA0&text=maybe", "?first=LPAA0&last=LPAA0&copies=2", "?ids=LPAA0&ids=LPAA2"} {
		e.problem(e.do("GET", "/v1/sequences/lp/labels"+q, ""), 400, "invalid_request")
	}
	e.problem(e.do("GET", "/v1/sequences/nope/labels?ids=X", ""), 404, "not_found")
}
