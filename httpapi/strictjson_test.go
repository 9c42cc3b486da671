package httpapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/allot/allot"
)

// TestStrictBodies checks that every body route refuses what
// encoding/json alone would let through: a key spelled in another case, a
// null value and a repeated key. Each is a 400 naming the key as sent,
// and takes nothing.
func TestStrictBodies(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"name":"g","mode":"gapless"}`)
	e.next("g", `{"count":3}`)
	e.pool(`{"name":"p","capacity":10,"per_customer":0}`)
	held := e.claim("p", `{"customer":"alice"}`)
	claim := "/v1/claims/" + held.ID

	const (
		nullReason = "must not be null: leave the field out to get the default"
		twice      = "is given more than once: give each field once"
	)
	cases := []struct {
		name, method, path, body string
		field, detail            string
	}{
		// The report's examples.
		{"next: count null", "POST", "/v1/sequences/g/next", `{"count":null}`, "count", "count: " + nullReason},
		{"claim: quantitY", "POST", "/v1/pools/p/claims", `{"customer":"bob","quantitY":2}`, "quantitY",
			`quantitY: is not a known field: field names are case-sensitive, did you mean "quantity"?`},
		// Another case: fast-path shapes otherwise.
		{"next: Count", "POST", "/v1/sequences/g/next", `{"Count":2}`, "Count", `did you mean "count"?`},
		{"next: DATE", "POST", "/v1/sequences/g/next", `{"count":1,"DATE":"2026-01-01"}`, "DATE", `did you mean "date"?`},
		{"claim: Customer", "POST", "/v1/pools/p/claims", `{"Customer":"bob"}`, "Customer", `did you mean "customer"?`},
		{"claim: TTL", "POST", "/v1/pools/p/claims", `{"customer":"bob","TTL":"1m"}`, "TTL", `did you mean "ttl"?`},
		{"create: Name", "POST", "/v1/sequences", `{"Name":"x"}`, "Name", `did you mean "name"?`},
		{"create: block_Size", "POST", "/v1/sequences", `{"name":"x","block_Size":5}`, "block_Size", `did you mean "block_size"?`},
		{"seq patch: MAX", "PATCH", "/v1/sequences/g", `{"MAX":500}`, "MAX", `did you mean "max"?`},
		{"void: Reason", "POST", "/v1/sequences/g/void", `{"number":1,"Reason":"x"}`, "Reason", `did you mean "reason"?`},
		{"pool: Capacity", "POST", "/v1/pools", `{"name":"q","Capacity":5}`, "Capacity", `did you mean "capacity"?`},
		{"pool patch: Per_Customer", "PATCH", "/v1/pools/p", `{"Per_Customer":5}`, "Per_Customer", `did you mean "per_customer"?`},
		{"confirm: Reference", "POST", claim + "/confirm", `{"Reference":"x"}`, "Reference", `did you mean "reference"?`},
		{"extend: Ttl", "POST", claim + "/extend", `{"Ttl":"1m"}`, "Ttl", `did you mean "ttl"?`},
		{"Unicode folding", "POST", "/v1/pools/p/claims", "{\"cu\u017ftomer\":\"bob\"}", "cu\u017ftomer", `did you mean "customer"?`},
		{"escaped key, another case", "POST", "/v1/sequences/g/next", `{"\u0043ount":2}`, "Count", `did you mean "count"?`},
		// Unknown keys still list the fields.
		{"unknown key", "POST", "/v1/pools/p/claims", `{"customer":"bob","qty":2}`, "qty", "qty: is not a known field: the body accepts customer, quantity, ttl"},
		// Null values.
		{"next: date null", "POST", "/v1/sequences/g/next", `{"date":null}`, "date", nullReason},
		{"claim: quantity null", "POST", "/v1/pools/p/claims", `{"customer":"bob","quantity":null}`, "quantity", "quantity: " + nullReason},
		{"claim: ttl null", "POST", "/v1/pools/p/claims", `{"customer":"bob","ttl":null}`, "ttl", nullReason},
		{"create: max null", "POST", "/v1/sequences", `{"name":"x","max":null}`, "max", nullReason},
		{"create: name null", "POST", "/v1/sequences", `{"name":null}`, "name", nullReason},
		{"seq patch: warn_at null", "PATCH", "/v1/sequences/g", `{"warn_at":null,"max":50}`, "warn_at", nullReason},
		{"void: number null", "POST", "/v1/sequences/g/void", `{"number":null,"id":"1","reason":"x"}`, "number", nullReason},
		{"void: force null", "POST", "/v1/sequences/g/void", `{"number":1,"reason":"x","force":null}`, "force", nullReason},
		{"pool: state null", "POST", "/v1/pools", `{"name":"q","capacity":5,"state":null}`, "state", nullReason},
		{"pool patch: hold_ttl null", "PATCH", "/v1/pools/p", `{"hold_ttl":null}`, "hold_ttl", nullReason},
		{"confirm: reference null", "POST", claim + "/confirm", `{"reference":null}`, "reference", nullReason},
		{"extend: ttl null", "POST", claim + "/extend", `{"ttl" : null}`, "ttl", nullReason},
		// Repeated keys: encoding/json would keep the last one.
		{"next: count twice", "POST", "/v1/sequences/g/next", `{"count":1,"count":2}`, "count", "count: " + twice},
		{"next: date twice", "POST", "/v1/sequences/g/next", `{"date":"2026-01-01","count":1,"date":"2026-01-02"}`, "date", twice},
		{"claim: customer twice", "POST", "/v1/pools/p/claims", `{"customer":"a","customer":"b"}`, "customer", twice},
		{"claim: quantity twice", "POST", "/v1/pools/p/claims", `{"quantity":1,"customer":"b","quantity":1}`, "quantity", twice},
		{"create: name twice", "POST", "/v1/sequences", `{"name":"x","name":"y"}`, "name", twice},
		{"seq patch: max twice", "PATCH", "/v1/sequences/g", `{"max":50,"max":60}`, "max", twice},
		{"void: reason twice", "POST", "/v1/sequences/g/void", `{"number":1,"reason":"a","reason":"b"}`, "reason", twice},
		{"pool: capacity twice", "POST", "/v1/pools", `{"name":"q","capacity":5,"capacity":6}`, "capacity", twice},
		{"pool patch: capacity twice", "PATCH", "/v1/pools/p", `{"capacity":20,"capacity":30}`, "capacity", twice},
		{"confirm: reference twice", "POST", claim + "/confirm", `{"reference":"a","reference":"b"}`, "reference", twice},
		{"extend: ttl twice", "POST", claim + "/extend", `{"ttl":"1m","ttl":"2m"}`, "ttl", twice},
		{"escaped repeat", "POST", "/v1/sequences/g/next", `{"count":1,"c\u006funt":2}`, "count", twice},
		// The first offending member is the one named.
		{"first of several", "POST", "/v1/pools/p/claims", `{"customer":null,"Quantity":1,"ttl":"1m","ttl":"2m"}`, "customer", nullReason},
		{"nested values are skipped", "POST", "/v1/pools/p/claims", `{"ttl":{"a":[null,{"b":null}]},"customer":"b","customer":"c"}`, "customer", twice},
	}
	before := e.snapshot() + e.poolSnapshot()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := *e
			e.t = t
			p := e.problem(e.do(c.method, c.path, c.body), 400, "invalid_request")
			if p.Field != c.field {
				t.Errorf("field %q, want %q (detail %q)", p.Field, c.field, p.Detail)
			}
			if !strings.Contains(p.Detail, c.detail) {
				t.Errorf("detail %q does not contain %q", p.Detail, c.detail)
			}
			if after := e.snapshot() + e.poolSnapshot(); after != before {
				t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}

	// What encoding/json refuses first keeps its message: a syntax error
	// anywhere wins over a member's problem.
	p := e.problem(e.do("POST", "/v1/sequences/g/next", `{"Count":1,}`), 400, "invalid_request")
	if p.Field != "" || !strings.Contains(p.Detail, "not valid JSON") {
		t.Errorf("syntax error after a bad key: %+v", p)
	}
	// The same bodies spelled right still work, on both paths.
	e.next("g", `{"count":1}`)
	e.next("g", `{"c\u006funt":1}`)
	e.claim("p", `{"customer":"bob","quantity":1}`)
	e.claim("p", `{"customer":"b\u006fb2","quantity":1}`)
}

// TestCheckMembers checks the pre-pass alone, including what it leaves to
// encoding/json.
func TestCheckMembers(t *testing.T) {
	for body, want := range map[string]string{
		`{}`:                          "",
		`{"count":1,"date":"x"}`:      "",
		`null`:                        "", // not an object: encoding/json decides
		`[{"Count":1}]`:               "", // likewise
		`{"Count":1`:                  "", // a syntax error: encoding/json reports it
		`{"count":1}{"Count":1}`:      "", // trailing data: likewise
		`{"count":[1,2,{"x":null}]}`:  "", // the type error is encoding/json's
		`{"count":1e400,"Date":"x"}`:  "Date",
		`{"Count":null}`:              "Count",
		`{"date":"x","count":null}`:   "count",
		`{"x":null}`:                  "x",
		`{"count":1,"count":1}`:       "count",
		` { "date" : "a" , "date":1}`: "date",
	} {
		err := checkMembers([]byte(body), &nextBody{})
		var inv *allot.InvalidError
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", body, err)
		case want != "" && (!errors.As(err, &inv) || inv.Field != want):
			t.Errorf("%s: %v, want an error for %q", body, err, want)
		}
	}
	if err := checkMembers([]byte(`{"why":1}`), &releaseBody{}); err == nil || !strings.Contains(err.Error(), "accepts no fields") {
		t.Errorf("release body: %v", err)
	}
}

// TestFastPathsDeclineRepeats checks that the reflection-free parsers
// decline a repeated key, so that decodeJSON reports it, and still accept
// the plain shapes.
func TestFastPathsDeclineRepeats(t *testing.T) {
	for _, b := range []string{`{"count":1,"count":2}`, `{"date":"a","date":"b"}`, `{"count":1,"date":"a","count":1}`} {
		if _, _, _, _, ok := parseNextFast([]byte(b)); ok {
			t.Errorf("parseNextFast accepted %s", b)
		}
	}
	for _, b := range []string{`{"customer":"a","customer":"b"}`, `{"quantity":1,"customer":"a","quantity":1}`, `{"ttl":"1m","ttl":"1m"}`} {
		fields := [3]flatField{{key: "customer"}, {key: "quantity", kind: flatInt}, {key: "ttl"}}
		if parseFlat([]byte(b), fields[:]) {
			t.Errorf("parseFlat accepted %s", b)
		}
	}
	if count, hasCount, date, hasDate, ok := parseNextFast([]byte(` {"date":"2026-01-01", "count": 7} `)); !ok || count != 7 || !hasCount || date != "2026-01-01" || !hasDate {
		t.Errorf("parseNextFast: %d %v %q %v %v", count, hasCount, date, hasDate, ok)
	}
	fields := [3]flatField{{key: "customer"}, {key: "quantity", kind: flatInt}, {key: "ttl"}}
	if !parseFlat([]byte(`{"customer":"a","quantity":2,"ttl":"1m"}`), fields[:]) || fields[0].s != "a" || fields[1].n != 2 || fields[2].s != "1m" {
		t.Errorf("parseFlat: %+v", fields)
	}
}

// TestBodiesTextAndShape: a body must be a JSON object of valid UTF-8
// text; encoding/json alone reads a null body as {} and replaces invalid
// bytes and unpaired surrogate escapes with U+FFFD, which would merge
// different customers or references into one.
func TestBodiesTextAndShape(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"name":"g","mode":"gapless"}`)
	e.pool(`{"name":"p","capacity":10,"per_customer":0}`)
	before := e.snapshot() + e.poolSnapshot()
	for _, c := range []struct{ name, path, body, detail string }{
		{"null body", "/v1/sequences/g/next", `null`, "must be a JSON object, got null"},
		{"array body", "/v1/sequences/g/next", `[]`, "must be a JSON object, got array"},
		{"string body", "/v1/pools/p/claims", `"alice"`, "must be a JSON object, got string"},
		{"invalid UTF-8", "/v1/pools/p/claims", "{\"customer\":\"a\xffb\"}", "not valid UTF-8"},
		{"lone high surrogate", "/v1/pools/p/claims", `{"customer":"a\ud800b"}`, `\ud800`},
		{"lone low surrogate", "/v1/pools/p/claims", `{"customer":"\udc00"}`, `\udc00`},
		{"high then not low", "/v1/sequences/g/next", `{"reference":"\ud83d\u0041"}`, `\ud83d`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := *e
			e.t = t
			p := e.problem(e.do("POST", c.path, c.body), 400, "invalid_request")
			if !strings.Contains(p.Detail, c.detail) {
				t.Errorf("detail %q does not contain %q", p.Detail, c.detail)
			}
		})
	}
	if after := e.snapshot() + e.poolSnapshot(); after != before {
		t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
	}
	// A whole pair, and an escaped backslash before "u", are fine.
	if c := e.claim("p", `{"customer":"\ud83d\ude00"}`); c.Customer != "\U0001F600" {
		t.Errorf("customer %q, want the emoji", c.Customer)
	}
	if c := e.claim("p", `{"customer":"a\\ud800"}`); c.Customer != `a\ud800` {
		t.Errorf("customer %q, want the text a\\ud800", c.Customer)
	}
}
