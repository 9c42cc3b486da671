package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/allot/allot"
)

// snapshot is everything a bad request must leave alone: every sequence
// with its figures, and every ledger.
func (e *env) snapshot() string {
	e.t.Helper()
	// Settle what the service owes the ledger first (it does so in the
	// background every 100 ms), so only the request can change it.
	if err := e.svc.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	r := e.do("GET", "/v1/sequences", "")
	e.ok(r, 200, nil)
	b.Write(r.body)
	var list struct {
		Sequences []allot.SequenceState `json:"sequences"`
	}
	e.ok(r, 200, &list)
	for _, st := range list.Sequences {
		r := e.do("GET", "/v1/sequences/"+st.Name+"/ledger?limit=1000", "")
		e.ok(r, 200, nil)
		b.Write(r.body)
	}
	return b.String()
}

// TestBadInput sends bad requests of every kind and checks that each is a
// 4xx problem naming what to fix, and that nothing was issued or changed.
func TestBadInput(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"name":"g","format":"G-{n:4}","mode":"gapless","max":100}`)
	e.create(`{"name":"c","block_size":1000}`)
	e.create(`{"name":"k","format":"K-{n:AA}"}`)
	e.create(`{"name":"m","format":"M-{yyyy}{mm}-{n}","mode":"gapless","reset":"monthly","periods_back":1000}`)
	e.next("g", `{"count":5}`)
	e.next("c", `{"count":5}`)
	e.next("m", `{"count":2,"date":"2026-03-05"}`)
	e.ok(e.do("POST", "/v1/sequences/g/void", `{"number":1,"reason":"setup"}`), 200, nil)

	const key = "bad-request-key"
	cases := []badInput{
		{"malformed json: cut short", "POST", "/v1/sequences/g/next", `{"count":`, nil, 400, "invalid_request", "", "ends in the middle"},
		{"malformed json: trailing comma", "POST", "/v1/sequences", `{"name":"x",}`, nil, 400, "invalid_request", "", "not valid JSON at byte"},
		{"malformed json: bare word", "POST", "/v1/sequences/g/next", `hello`, nil, 400, "invalid_request", "", "not valid JSON at byte 1"},
		{"malformed json: deep nesting", "POST", "/v1/sequences/g/next", strings.Repeat("[", 20000), nil, 400, "invalid_request", "", ""},
		{"malformed json: not an object", "POST", "/v1/sequences/g/next", `[1]`, nil, 400, "invalid_request", "", "must be a JSON object, got array"},
		{"malformed json: string body", "POST", "/v1/sequences", `"inv"`, nil, 400, "invalid_request", "", "must be a JSON object"},
		{"unknown field: next", "POST", "/v1/sequences/g/next", `{"count":1,"cnt":2}`, []string{"Idempotency-Key", key}, 400, "invalid_request", "cnt", "count, date"},
		{"unknown field: create", "POST", "/v1/sequences", `{"name":"zz","colour":"red"}`, nil, 400, "invalid_request", "colour", "is not a known field"},
		{"unknown field: patch", "PATCH", "/v1/sequences/g", `{"maximum":500}`, nil, 400, "invalid_request", "maximum", "max, warn_at"},
		{"unknown field: void", "POST", "/v1/sequences/g/void", `{"number":2,"reason":"x","why":"y"}`, nil, 400, "invalid_request", "why", ""},
		{"read-only field: create", "POST", "/v1/sequences", `{"name":"zz","issued":5}`, nil, 400, "invalid_request", "issued", ""},
		{"trailing data: second object", "POST", "/v1/sequences/g/next", `{"count":1}{"count":1}`, nil, 400, "invalid_request", "", "unexpected data after the JSON object"},
		{"trailing data: garbage", "POST", "/v1/sequences", `{"name":"zz"} x`, nil, 400, "invalid_request", "", "unexpected data"},
		{"wrong type: count string", "POST", "/v1/sequences/g/next", `{"count":"x"}`, nil, 400, "invalid_request", "count", "whole number"},
		{"wrong type: count fraction", "POST", "/v1/sequences/g/next", `{"count":1.5}`, []string{"Idempotency-Key", key}, 400, "invalid_request", "count", "got number 1.5"},
		{"wrong type: count exponent", "POST", "/v1/sequences/g/next", `{"count":1e2}`, nil, 400, "invalid_request", "count", ""},
		{"wrong type: count bool", "POST", "/v1/sequences/g/next", `{"count":true}`, nil, 400, "invalid_request", "count", ""},
		{"wrong type: count overflow", "POST", "/v1/sequences/g/next", `{"count":99999999999999999999}`, nil, 400, "invalid_request", "count", ""},
		{"wrong type: date number", "POST", "/v1/sequences/g/next", `{"date":20260101}`, nil, 400, "invalid_request", "date", "a string"},
		{"wrong type: name number", "POST", "/v1/sequences", `{"name":5}`, nil, 400, "invalid_request", "name", "a string"},
		{"wrong type: start string", "POST", "/v1/sequences", `{"name":"zz","start":"1"}`, nil, 400, "invalid_request", "start", ""},
		{"wrong type: max fraction", "PATCH", "/v1/sequences/g", `{"max":10.5}`, nil, 400, "invalid_request", "max", ""},
		{"bad confirm_within on create", "POST", "/v1/sequences", `{"name":"d1","confirm_within":"abc"}`, nil, 400, "invalid_request", "confirm_within", "not a duration"},
		{"bad confirm_within on patch", "PATCH", "/v1/sequences/g", `{"confirm_within":"abc"}`, nil, 400, "invalid_request", "confirm_within", "not a duration"},
		{"confirm_within not a string", "PATCH", "/v1/sequences/g", `{"confirm_within":30}`, nil, 400, "invalid_request", "confirm_within", "duration string"},
		{"bad name: spaces", "POST", "/v1/sequences", `{"name":"Bad Name"}`, nil, 400, "invalid_request", "name", "must match"},
		{"bad name: missing", "POST", "/v1/sequences", `{}`, nil, 400, "invalid_request", "name", "required"},
		{"null body", "POST", "/v1/sequences", `null`, nil, 400, "invalid_request", "", "must be a JSON object, got null"},
		{"bad name: empty body", "POST", "/v1/sequences", ``, nil, 400, "invalid_request", "", "body is empty"},
		{"bad mode", "POST", "/v1/sequences", `{"name":"zz","mode":"fast"}`, nil, 400, "invalid_request", "mode", "cached"},
		{"count 0", "POST", "/v1/sequences/g/next", `{"count":0}`, []string{"Idempotency-Key", key}, 400, "invalid_request", "count", "between 1 and 100000"},
		{"count 0 (slow path)", "POST", "/v1/sequences/g/next", `{"count" : 0 , "date":"2026-01-0\u0031"}`, nil, 400, "invalid_request", "count", "between 1 and 100000"},
		{"count 100001", "POST", "/v1/sequences/g/next", `{"count":100001}`, nil, 400, "invalid_request", "count", "between 1 and 100000"},
		{"count negative", "POST", "/v1/sequences/g/next", `{"count":-1}`, nil, 400, "invalid_request", "count", ""},
		{"count too many for cached", "POST", "/v1/sequences/c/next", `{"count":100001}`, nil, 400, "invalid_request", "count", ""},
		{"unknown sequence", "POST", "/v1/sequences/nope/next", `{"count":1}`, nil, 404, "not_found", "", "nope"},
		{"unknown sequence: bad name", "POST", "/v1/sequences/NOPE/next", ``, nil, 404, "not_found", "", ""},
		{"unknown sequence: get", "GET", "/v1/sequences/nope", ``, nil, 404, "not_found", "", ""},
		{"unknown sequence: patch", "PATCH", "/v1/sequences/nope", `{"max":5}`, nil, 404, "not_found", "", ""},
		{"unknown sequence: void", "POST", "/v1/sequences/nope/void", `{"number":1,"reason":"x"}`, nil, 404, "not_found", "", ""},
		{"unknown sequence: ledger", "GET", "/v1/sequences/nope/ledger", ``, nil, 404, "not_found", "", ""},
		{"unknown sequence: parse", "GET", "/v1/sequences/nope/ids/1", ``, nil, 404, "not_found", "", ""},
		{"negative max", "POST", "/v1/sequences", `{"name":"neg","max":-5}`, nil, 400, "invalid_request", "max", "0 or more"},
		{"max below start", "POST", "/v1/sequences", `{"name":"neg","start":10,"max":5}`, nil, 400, "invalid_request", "max", "at least start"},
		{"max beyond mask", "POST", "/v1/sequences", `{"name":"neg","format":"{n:AA}","max":1000}`, nil, 400, "invalid_request", "max", "mask"},
		{"patch: max below issued", "PATCH", "/v1/sequences/g", `{"max":3}`, nil, 400, "invalid_request", "max", "highest number already taken"},
		{"patch: max below leased", "PATCH", "/v1/sequences/c", `{"max":10}`, nil, 400, "invalid_request", "max", "highest number already taken"},
		{"patch: negative max", "PATCH", "/v1/sequences/g", `{"max":-1}`, nil, 400, "invalid_request", "max", ""},
		{"patch: warn_at above 1", "PATCH", "/v1/sequences/g", `{"warn_at":2}`, nil, 400, "invalid_request", "warn_at", ""},
		{"patch: nothing", "PATCH", "/v1/sequences/g", `{}`, nil, 400, "invalid_request", "", "nothing to change"},
		{"patch: max beyond mask", "PATCH", "/v1/sequences/k", `{"max":676}`, nil, 400, "invalid_request", "max", "mask"},
		{"bad date: month 13", "POST", "/v1/sequences/g/next", `{"date":"2026-13-01"}`, []string{"Idempotency-Key", key}, 400, "invalid_request", "date", "YYYY-MM-DD"},
		{"bad date: format", "POST", "/v1/sequences/m/next", `{"date":"31/01/2026"}`, nil, 400, "invalid_request", "date", "YYYY-MM-DD"},
		{"bad date: empty", "POST", "/v1/sequences/g/next", `{"date":""}`, nil, 400, "invalid_request", "date", ""},
		{"bad date: invalid utf-8", "POST", "/v1/sequences/g/next", "{\"date\":\"\xff\"}", nil, 400, "invalid_request", "", "not valid UTF-8"},
		{"unknown template token", "POST", "/v1/sequences", `{"name":"tpl","format":"INV-{x}-{n}"}`, nil, 400, "invalid_request", "format", "position 4"},
		{"template without number", "POST", "/v1/sequences", `{"name":"tpl","format":"INV"}`, nil, 400, "invalid_request", "format", "position 0"},
		{"void: never issued", "POST", "/v1/sequences/g/void", `{"number":999,"reason":"typo"}`, nil, 400, "invalid_request", "number", "never issued"},
		{"void: leased, not handed out", "POST", "/v1/sequences/c/void", `{"number":6,"reason":"typo"}`, nil, 400, "invalid_request", "number", "never issued"},
		{"void: below start", "POST", "/v1/sequences/g/void", `{"number":0,"reason":"typo"}`, nil, 400, "invalid_request", "number", "starts at 1"},
		{"void: no reason", "POST", "/v1/sequences/g/void", `{"number":2}`, nil, 400, "invalid_request", "reason", "required"},
		{"void: long reason", "POST", "/v1/sequences/g/void", `{"number":2,"reason":"` + strings.Repeat("r", 1001) + `"}`, nil, 400, "invalid_request", "reason", ""},
		{"void: number and id", "POST", "/v1/sequences/g/void", `{"number":2,"id":"G-0002","reason":"x"}`, nil, 400, "invalid_request", "", "not both"},
		{"void: neither", "POST", "/v1/sequences/g/void", `{"reason":"x"}`, nil, 400, "invalid_request", "", "number or the id"},
		{"void: id of another format", "POST", "/v1/sequences/g/void", `{"id":"X-1","reason":"x"}`, nil, 400, "invalid_request", "id", "does not match"},
		{"void: resetting sequence without date", "POST", "/v1/sequences/m/void", `{"number":1,"reason":"x"}`, nil, 400, "invalid_request", "date", "picks the period"},
		{"void: other period", "POST", "/v1/sequences/m/void", `{"number":1,"date":"2026-04-01","reason":"x"}`, nil, 400, "invalid_request", "number", "never issued"},
		{"void: already voided", "POST", "/v1/sequences/g/void", `{"number":1,"reason":"again"}`, nil, 409, "already_exists", "", "already voided"},
		{"content type: text/plain", "POST", "/v1/sequences/g/next", `{"count":1}`, []string{"Content-Type", "text/plain"}, 415, "invalid_request", "Content-Type", "application/json"},
		{"content type: form", "POST", "/v1/sequences", `{"name":"zz"}`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "invalid_request", "Content-Type", ""},
		{"body over 1 MiB", "POST", "/v1/sequences/g/next", `{"date":"` + strings.Repeat(" ", maxBody) + `"}`, nil, 413, "invalid_request", "", "1 MiB"},
		{"idempotency key too long", "POST", "/v1/sequences/g/next", ``, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "invalid_request", "Idempotency-Key", "255"},
		{"idempotency key empty", "POST", "/v1/sequences/g/next", ``, []string{"Idempotency-Key", ""}, 400, "invalid_request", "Idempotency-Key", ""},
		{"idempotency key twice", "POST", "/v1/sequences/g/next", ``, []string{"Idempotency-Key", "a", "Idempotency-Key", "b"}, 400, "invalid_request", "Idempotency-Key", ""},
		{"ledger: limit not a number", "GET", "/v1/sequences/g/ledger?limit=abc", ``, nil, 400, "invalid_request", "limit", "whole number"},
		{"ledger: limit 0", "GET", "/v1/sequences/g/ledger?limit=0", ``, nil, 400, "invalid_request", "limit", ""},
		{"ledger: limit too big", "GET", "/v1/sequences/g/ledger?limit=5000", ``, nil, 400, "invalid_request", "limit", "1000"},
		{"ledger: bad cursor", "GET", "/v1/sequences/g/ledger?after=xyz", ``, nil, 400, "invalid_request", "after", "cursor"},
		{"parse: id of another format", "GET", "/v1/sequences/g/ids/nope", ``, nil, 400, "invalid_request", "id", "does not match"},
	}
	e.refuseAll(t, cases, (*env).snapshot)
	// The key used only by refused requests was never stored.
	r := e.do("POST", "/v1/sequences/g/next", `{"count":2}`, "Idempotency-Key", key)
	var res allot.NextResult
	e.ok(r, http.StatusOK, &res)
	if r.header.Get("Idempotent-Replayed") != "" || res.First != 6 {
		t.Fatalf("key of refused requests: %+v replayed=%q", res, r.header.Get("Idempotent-Replayed"))
	}
}

// badInput is a request that must be refused with a problem of status and
// code, naming field, whose detail contains detail.
type badInput struct {
	name, method, path, body string
	hdr                      []string
	status                   int
	code, field, detail      string
}

// refuseAll sends each case as a subtest and checks its problem, and that
// the state snapshot reads is what it was before the first.
func (e *env) refuseAll(t *testing.T, cases []badInput, snapshot func(*env) string) {
	before := snapshot(e)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := *e
			e.t = t
			p := e.problem(e.do(c.method, c.path, c.body, c.hdr...), c.status, c.code)
			if p.Field != c.field {
				t.Errorf("field %q, want %q (detail %q)", p.Field, c.field, p.Detail)
			}
			if !strings.Contains(p.Detail, c.detail) {
				t.Errorf("detail %q does not contain %q", p.Detail, c.detail)
			}
			if after := snapshot(&e); after != before {
				before := strings.Split(before, "\n")
				for i, line := range strings.Split(after, "\n") {
					if i >= len(before) || line != before[i] {
						t.Fatalf("state changed: %s", line)
					}
				}
				t.Fatal("state changed")
			}
		})
	}
}

// target is a method and path a test sends bodies to.
type target struct{ method, path string }

// neverFails sends every body to every route: none may answer 5xx, and
// every refusal is a problem+json.
func (e *env) neverFails(routes []target, bodies []string) {
	e.t.Helper()
	for _, p := range routes {
		for _, b := range bodies {
			r := e.do(p.method, p.path, b)
			if r.status >= 500 {
				e.t.Errorf("%s %s %q: %d %s", p.method, p.path, b, r.status, r.body)
			}
			if r.status >= 400 && r.header.Get("Content-Type") != "application/problem+json" {
				e.t.Errorf("%s %s %q: %d with Content-Type %q", p.method, p.path, b, r.status, r.header.Get("Content-Type"))
			}
		}
	}
}

// TestGarbageNeverFails sends many malformed bodies to every route that
// takes one: none may answer 5xx.
func TestGarbageNeverFails(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"name":"g","mode":"gapless","max":1000000}`)
	bodies := []string{
		"", " ", "{", "}", "[", "]", "{}", "[]", "null", "true", "0", "-", `"`, `""`, "{\"", `{"":1}`, `{"count"}`,
		`{"count":}`, `{"count":-}`, `{"count":--1}`, `{"count":01}`, `{"count":1,}`, `{,}`, `{"count":1 "date":"x"}`,
		`{"count":9223372036854775807}`, `{"count":-9223372036854775808}`, `{"count":9223372036854775808}`,
		`{"max":9223372036854775807}`, `{"max":1e400}`, `{"warn_at":"NaN"}`, `{"warn_at":1e-400}`,
		`{"number":-9223372036854775808,"reason":"x"}`, `{"id":"\u0000","reason":"\ud800"}`,
		`{"name":"a","format":"{n:AAAAAAAAAAAAAAAAAAAA}"}`, `{"name":"a","format":"{{{n}}}"}`, `{"name":"a","format":"{check:luhn}{n}"}`,
		`{"name":"a","timezone":"../../etc/passwd"}`, `{"name":"a","block_size":0}`, `{"name":"a","start":9223372036854775807}`,
		"{\"count\":1}\x00", "\xef\xbb\xbf{\"count\":1}", "{\"count\":1}\n\n", `{"COUNT":1}`, `{"count":null,"date":null}`,
	}
	paths := []target{
		{"POST", "/v1/sequences"}, {"PATCH", "/v1/sequences/g"}, {"POST", "/v1/sequences/g/next"}, {"POST", "/v1/sequences/g/void"},
	}
	e.neverFails(paths, bodies)
}

// FuzzParseNextFast checks that the reflection-free parser of next bodies
// agrees with encoding/json whenever it accepts a body.
func FuzzParseNextFast(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"count":1}`, `{"count":-0}`, `{"date":"2026-01-01","count":12}`, ` { "count" : 3 , "count":4 } `,
		`{"count":1.0}`, `{"count":1e3}`, `{"count":01}`, `{"count":123456789012345678}`, `{"count":1234567890123456789}`,
		`{"date":"a\u0041"}`, `{"date":"\x7f"}`, `{"count":1}x`, `{"Count":1}`, `{"count":1,}`, `{"count":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		count, hasCount, date, hasDate, ok := parseNextFast(b)
		if !ok {
			return
		}
		var body nextBody
		if err := decodeJSON(b, &body); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refused: %v", b, err)
		}
		if hasCount != (body.Count != nil) || hasCount && count != *body.Count {
			t.Fatalf("%q: count %d/%v, encoding/json %v", b, count, hasCount, body.Count)
		}
		if hasDate != (body.Date != nil) || hasDate && date != *body.Date {
			t.Fatalf("%q: date %q/%v, encoding/json %v", b, date, hasDate, body.Date)
		}
	})
}

// FuzzAppendJSONString checks that the string escaper produces JSON that
// decodes to the input (invalid UTF-8 turned into U+FFFD, like
// encoding/json), and that the next response is valid JSON.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "INV-0001", `a"b\c`, "\x00\x1f\n\r\t", "\u2028\u2029", "é€😀", "\xff\xfe", "</script>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONString(nil, s)
		var got string
		if err := jsonUnmarshalString(out, &got); err != nil {
			t.Fatalf("%q -> %s: %v", s, out, err)
		}
		if got != fixInvalid(s) {
			t.Fatalf("%q -> %s -> %q", s, out, got)
		}
		res := &allot.NextResult{Sequence: "s", First: 1, Last: 2, Count: 2, Period: s, IDs: []string{s, "x"}}
		var back allot.NextResult
		if err := jsonUnmarshalString(appendNextJSON(nil, res), &back); err != nil {
			t.Fatalf("next JSON for %q: %v", s, err)
		}
		if back.Count != 2 || len(back.IDs) != 2 || back.IDs[1] != "x" {
			t.Fatalf("next JSON round trip: %+v", back)
		}
	})
}

// fixInvalid replaces each invalid byte with U+FFFD, as encoding/json
// and appendJSONString do.
func fixInvalid(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

func jsonUnmarshalString(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data in %s", b)
	}
	return nil
}
