package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/allot/allot"
)

// poolSnapshot is everything a bad pool or claim request must leave
// alone: every pool with its settings and figures, and every claim.
func (e *env) poolSnapshot() string {
	e.t.Helper()
	var b strings.Builder
	r := e.do("GET", "/v1/pools", "")
	var list struct {
		Pools []allot.PoolState `json:"pools"`
	}
	e.ok(r, 200, &list)
	b.Write(r.body)
	for _, st := range list.Pools {
		r := e.do("GET", "/v1/pools/"+st.Name+"/claims?limit=1000", "")
		e.ok(r, 200, nil)
		b.Write(r.body)
	}
	return b.String()
}

// TestPoolBadInput sends bad pool and claim requests of every kind and
// checks that each is a 4xx problem naming what to fix, and that no pool
// and no claim changed.
func TestPoolBadInput(t *testing.T) {
	e := newEnv(t, nil)
	e.pool(`{"name":"p","capacity":10,"per_customer":2,"max_quantity":3,"max_hold_ttl":"30m"}`)
	e.pool(`{"name":"full","capacity":1,"per_customer":0}`)
	held := e.claim("p", `{"customer":"alice","quantity":2}`)
	rel := e.claim("p", `{"customer":"carol"}`, "Idempotency-Key", "used-key")
	e.ok(e.do("POST", "/v1/claims/"+rel.ID+"/release", ""), 200, nil)
	conf := e.claim("p", `{"customer":"bob"}`)
	e.ok(e.do("POST", "/v1/claims/"+conf.ID+"/confirm", `{"reference":"pay_1"}`), 200, nil)
	e.claim("full", `{"customer":"x"}`)
	e.wantFigures("p", 2, 1, 7)

	const key = "refused-only-key"
	claims := "/v1/pools/p/claims"
	long := strings.Repeat("x", 65)
	cases := []badInput{
		// Claim create: quantity.
		{"quantity 0", "POST", claims, `{"customer":"dan","quantity":0}`, []string{"Idempotency-Key", key}, 400, "invalid_request", "quantity", "at least 1"},
		{"quantity 0 (slow path)", "POST", claims, `{"customer":"d\u0061n","quantity":0}`, nil, 400, "invalid_request", "quantity", "at least 1"},
		{"quantity negative", "POST", claims, `{"customer":"dan","quantity":-1}`, nil, 400, "invalid_request", "quantity", "got -1"},
		{"quantity above max_quantity", "POST", claims, `{"customer":"dan","quantity":4}`, []string{"Idempotency-Key", key}, 400, "invalid_request", "quantity", "between 1 and 3"},
		{"quantity string", "POST", claims, `{"customer":"dan","quantity":"2"}`, nil, 400, "invalid_request", "quantity", "whole number"},
		{"quantity fraction", "POST", claims, `{"customer":"dan","quantity":1.5}`, nil, 400, "invalid_request", "quantity", "got number 1.5"},
		{"quantity overflow", "POST", claims, `{"customer":"dan","quantity":99999999999999999999}`, nil, 400, "invalid_request", "quantity", ""},
		{"quantity bool", "POST", claims, `{"customer":"dan","quantity":true}`, nil, 400, "invalid_request", "quantity", ""},
		// Claim create: ttl.
		{"ttl text", "POST", claims, `{"customer":"dan","ttl":"soon"}`, []string{"Idempotency-Key", key}, 400, "invalid_request", "ttl", `"soon" is not a duration`},
		{"ttl number", "POST", claims, `{"customer":"dan","ttl":300}`, nil, 400, "invalid_request", "ttl", "duration string"},
		{"ttl empty", "POST", claims, `{"customer":"dan","ttl":""}`, nil, 400, "invalid_request", "ttl", "not a duration"},
		{"ttl zero", "POST", claims, `{"customer":"dan","ttl":"0s"}`, nil, 400, "invalid_request", "ttl", "between 1s"},
		{"ttl negative", "POST", claims, `{"customer":"dan","ttl":"-5m"}`, nil, 400, "invalid_request", "ttl", ""},
		{"ttl above max_hold_ttl", "POST", claims, `{"customer":"dan","ttl":"2h"}`, nil, 400, "invalid_request", "ttl", "30m"},
		{"ttl object", "POST", claims, `{"customer":"dan","ttl":{"m":5}}`, nil, 400, "invalid_request", "ttl", ""},
		// Claim create: customer.
		{"customer missing", "POST", claims, `{"quantity":1}`, nil, 400, "invalid_request", "customer", "required"},
		{"customer empty", "POST", claims, `{"customer":""}`, nil, 400, "invalid_request", "customer", "required"},
		{"customer null", "POST", claims, `{"customer":null}`, nil, 400, "invalid_request", "customer", "must not be null: leave the field out"},
		{"empty body", "POST", claims, ``, []string{"Idempotency-Key", key}, 400, "invalid_request", "customer", "required"},
		{"customer number", "POST", claims, `{"customer":5}`, nil, 400, "invalid_request", "customer", "a string"},
		{"customer control character", "POST", claims, `{"customer":"a\nb"}`, nil, 400, "invalid_request", "customer", "control"},
		{"customer too long", "POST", claims, `{"customer":"` + strings.Repeat("c", 201) + `"}`, nil, 400, "invalid_request", "customer", "200"},
		// Claim create: shape.
		{"unknown field", "POST", claims, `{"customer":"dan","qty":1}`, nil, 400, "invalid_request", "qty", "customer, quantity, ttl"},
		{"pool in body", "POST", claims, `{"customer":"dan","pool":"full"}`, nil, 400, "invalid_request", "pool", ""},
		{"malformed json", "POST", claims, `{"customer":`, nil, 400, "invalid_request", "", "ends in the middle"},
		{"trailing data", "POST", claims, `{"customer":"dan"}{"customer":"dan"}`, nil, 400, "invalid_request", "", "unexpected data"},
		{"not an object", "POST", claims, `[1]`, nil, 400, "invalid_request", "", "must be a JSON object"},
		{"null body", "POST", claims, `null`, nil, 400, "invalid_request", "", "must be a JSON object, got null"},
		{"content type", "POST", claims, `{"customer":"dan"}`, []string{"Content-Type", "text/plain"}, 415, "invalid_request", "Content-Type", ""},
		{"body over 1 MiB", "POST", claims, `{"customer":"` + strings.Repeat("c", maxBody) + `"}`, nil, 413, "invalid_request", "", "1 MiB"},
		{"idempotency key too long", "POST", claims, `{"customer":"dan"}`, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "invalid_request", "Idempotency-Key", "255"},
		{"idempotency key empty", "POST", claims, `{"customer":"dan"}`, []string{"Idempotency-Key", ""}, 400, "invalid_request", "Idempotency-Key", ""},
		{"idempotency key twice", "POST", claims, `{"customer":"dan"}`, []string{"Idempotency-Key", "a", "Idempotency-Key", "b"}, 400, "invalid_request", "Idempotency-Key", ""},
		{"idempotency key reused", "POST", claims, `{"customer":"carol","quantity":2}`, []string{"Idempotency-Key", "used-key"}, 422, "idempotency_mismatch", "", "different request"},
		{"unknown pool", "POST", "/v1/pools/nope/claims", `{"customer":"dan"}`, nil, 404, "not_found", "", "nope"},
		{"unknown pool: bad name", "POST", "/v1/pools/NOPE/claims", `{"customer":"dan"}`, nil, 404, "not_found", "", ""},
		{"customer over limit", "POST", claims, `{"customer":"alice"}`, nil, 409, "customer_limit", "", "at most 2"},
		{"sold out", "POST", "/v1/pools/full/claims", `{"customer":"dan"}`, []string{"Idempotency-Key", key}, 409, "sold_out", "", "sold out"},
		// Pool create.
		{"pool: capacity missing", "POST", "/v1/pools", `{"name":"new"}`, nil, 400, "invalid_request", "capacity", "required"},
		{"pool: capacity null", "POST", "/v1/pools", `{"name":"new","capacity":null}`, nil, 400, "invalid_request", "capacity", "must not be null"},
		{"pool: capacity negative", "POST", "/v1/pools", `{"name":"new","capacity":-1}`, nil, 400, "invalid_request", "capacity", "0 or more"},
		{"pool: capacity string", "POST", "/v1/pools", `{"name":"new","capacity":"10"}`, nil, 400, "invalid_request", "capacity", "whole number"},
		{"pool: name missing", "POST", "/v1/pools", `{"capacity":10}`, nil, 400, "invalid_request", "name", "required"},
		{"pool: bad name", "POST", "/v1/pools", `{"name":"Big Sale","capacity":10}`, nil, 400, "invalid_request", "name", "must match"},
		{"pool: hold_ttl text", "POST", "/v1/pools", `{"name":"new","capacity":10,"hold_ttl":"soon"}`, nil, 400, "invalid_request", "hold_ttl", `"soon" is not a duration`},
		{"pool: hold_ttl number", "POST", "/v1/pools", `{"name":"new","capacity":10,"hold_ttl":600}`, nil, 400, "invalid_request", "hold_ttl", "duration string"},
		{"pool: hold_ttl too short", "POST", "/v1/pools", `{"name":"new","capacity":10,"hold_ttl":"500ms"}`, nil, 400, "invalid_request", "hold_ttl", "at least 1s"},
		{"pool: max_hold_ttl below hold_ttl", "POST", "/v1/pools", `{"name":"new","capacity":10,"hold_ttl":"10m","max_hold_ttl":"5m"}`, nil, 400, "invalid_request", "max_hold_ttl", "at least hold_ttl"},
		{"pool: max_hold_ttl too long", "POST", "/v1/pools", `{"name":"new","capacity":10,"max_hold_ttl":"200h"}`, nil, 400, "invalid_request", "max_hold_ttl", "168h"},
		{"pool: max_quantity 0", "POST", "/v1/pools", `{"name":"new","capacity":10,"max_quantity":0}`, nil, 400, "invalid_request", "max_quantity", "at least 1"},
		{"pool: per_customer negative", "POST", "/v1/pools", `{"name":"new","capacity":10,"per_customer":-1}`, nil, 400, "invalid_request", "per_customer", ""},
		{"pool: bad state", "POST", "/v1/pools", `{"name":"new","capacity":10,"state":"sold"}`, nil, 400, "invalid_request", "state", `"open"`},
		{"pool: empty state", "POST", "/v1/pools", `{"name":"new","capacity":10,"state":""}`, nil, 400, "invalid_request", "state", "empty"},
		{"pool: state number", "POST", "/v1/pools", `{"name":"new","capacity":10,"state":1}`, nil, 400, "invalid_request", "state", "a string"},
		{"pool: opens_at text", "POST", "/v1/pools", `{"name":"new","capacity":10,"opens_at":"tomorrow"}`, nil, 400, "invalid_request", "opens_at", "RFC 3339"},
		{"pool: opens_at number", "POST", "/v1/pools", `{"name":"new","capacity":10,"opens_at":1700000000}`, nil, 400, "invalid_request", "opens_at", "RFC 3339"},
		{"pool: opens_at date only", "POST", "/v1/pools", `{"name":"new","capacity":10,"opens_at":"2026-11-27"}`, nil, 400, "invalid_request", "opens_at", "RFC 3339"},
		{"pool: closes_at month 13", "POST", "/v1/pools", `{"name":"new","capacity":10,"closes_at":"2026-13-01T00:00:00Z"}`, nil, 400, "invalid_request", "closes_at", "RFC 3339"},
		{"pool: closes_at before opens_at", "POST", "/v1/pools", `{"name":"new","capacity":10,"opens_at":"2026-11-27T10:00:00Z","closes_at":"2026-11-27T09:00:00Z"}`, nil, 400, "invalid_request", "closes_at", "after opens_at"},
		{"pool: unknown field", "POST", "/v1/pools", `{"name":"new","capacity":10,"colour":"red"}`, nil, 400, "invalid_request", "colour", "name, capacity, per_customer"},
		{"pool: read-only field", "POST", "/v1/pools", `{"name":"new","capacity":10,"held":5}`, nil, 400, "invalid_request", "held", ""},
		{"pool: empty body", "POST", "/v1/pools", ``, nil, 400, "invalid_request", "", "body is empty"},
		{"pool: already exists", "POST", "/v1/pools", `{"name":"p","capacity":10}`, nil, 409, "already_exists", "", ""},
		// Pool patch.
		{"patch: nothing", "PATCH", "/v1/pools/p", `{}`, nil, 400, "invalid_request", "", "nothing to change"},
		{"patch: capacity below taken", "PATCH", "/v1/pools/p", `{"capacity":2}`, nil, 409, "invalid_state", "capacity", "2 held + 1 confirmed"},
		{"patch: capacity negative", "PATCH", "/v1/pools/p", `{"capacity":-5}`, nil, 400, "invalid_request", "capacity", ""},
		{"patch: per_customer below usage", "PATCH", "/v1/pools/p", `{"per_customer":1}`, nil, 409, "invalid_state", "", "already has 2"},
		{"patch: name", "PATCH", "/v1/pools/p", `{"name":"q"}`, nil, 400, "invalid_request", "name", "capacity, per_customer"},
		{"patch: hold_ttl text", "PATCH", "/v1/pools/p", `{"hold_ttl":"soon"}`, nil, 400, "invalid_request", "hold_ttl", ""},
		{"patch: hold_ttl above max_hold_ttl", "PATCH", "/v1/pools/p", `{"hold_ttl":"1h"}`, nil, 400, "invalid_request", "max_hold_ttl", ""},
		{"patch: max_quantity 0", "PATCH", "/v1/pools/p", `{"max_quantity":0}`, nil, 400, "invalid_request", "max_quantity", ""},
		{"patch: bad state", "PATCH", "/v1/pools/p", `{"state":"gone"}`, nil, 400, "invalid_request", "state", ""},
		{"patch: opens_at text", "PATCH", "/v1/pools/p", `{"opens_at":"now"}`, nil, 400, "invalid_request", "opens_at", "RFC 3339"},
		{"patch: capacity fraction", "PATCH", "/v1/pools/p", `{"capacity":10.5}`, nil, 400, "invalid_request", "capacity", ""},
		{"patch: unknown pool", "PATCH", "/v1/pools/nope", `{"capacity":5}`, nil, 404, "not_found", "", ""},
		{"get: unknown pool", "GET", "/v1/pools/nope", ``, nil, 404, "not_found", "", "nope"},
		{"pool: wrong method", "DELETE", "/v1/pools/p", ``, nil, 405, "method_not_allowed", "", "GET, PATCH"},
		// Claim transitions.
		{"get: unknown claim", "GET", "/v1/claims/clm_nope", ``, nil, 404, "not_found", "", "clm_nope"},
		{"get: long claim id", "GET", "/v1/claims/" + long, ``, nil, 404, "not_found", "", ""},
		{"confirm: unknown claim", "POST", "/v1/claims/clm_nope/confirm", ``, nil, 404, "not_found", "", ""},
		{"release: unknown claim", "POST", "/v1/claims/clm_nope/release", ``, nil, 404, "not_found", "", ""},
		{"extend: unknown claim", "POST", "/v1/claims/clm_nope/extend", `{"ttl":"1m"}`, nil, 404, "not_found", "", ""},
		{"confirm: long claim id", "POST", "/v1/claims/" + long + "/confirm", ``, []string{"Idempotency-Key", key}, 404, "not_found", "", ""},
		{"confirm: released claim", "POST", "/v1/claims/" + rel.ID + "/confirm", `{"reference":"pay_2"}`, []string{"Idempotency-Key", key}, 409, "invalid_state", "", "released"},
		{"release: confirmed claim", "POST", "/v1/claims/" + conf.ID + "/release", ``, nil, 409, "invalid_state", "", "confirmed"},
		{"extend: confirmed claim", "POST", "/v1/claims/" + conf.ID + "/extend", `{"ttl":"1m"}`, nil, 409, "invalid_state", "", ""},
		{"confirm: unknown field", "POST", "/v1/claims/" + held.ID + "/confirm", `{"ref":"x"}`, nil, 400, "invalid_request", "ref", "reference"},
		{"confirm: reference number", "POST", "/v1/claims/" + held.ID + "/confirm", `{"reference":5}`, nil, 400, "invalid_request", "reference", "a string"},
		{"confirm: reference too long", "POST", "/v1/claims/" + held.ID + "/confirm", `{"reference":"` + strings.Repeat("r", 501) + `"}`, nil, 400, "invalid_request", "reference", "500"},
		{"confirm: malformed", "POST", "/v1/claims/" + held.ID + "/confirm", `{"reference":`, nil, 400, "invalid_request", "", ""},
		{"confirm: idempotency key twice", "POST", "/v1/claims/" + held.ID + "/confirm", ``, []string{"Idempotency-Key", "a", "Idempotency-Key", "b"}, 400, "invalid_request", "Idempotency-Key", ""},
		{"release: unknown field", "POST", "/v1/claims/" + held.ID + "/release", `{"why":"x"}`, nil, 400, "invalid_request", "why", "no fields"},
		{"release: array", "POST", "/v1/claims/" + held.ID + "/release", `[]`, nil, 400, "invalid_request", "", "JSON object"},
		{"extend: no body", "POST", "/v1/claims/" + held.ID + "/extend", ``, nil, 400, "invalid_request", "ttl", "required"},
		{"extend: no ttl", "POST", "/v1/claims/" + held.ID + "/extend", `{}`, nil, 400, "invalid_request", "ttl", "required"},
		{"extend: ttl text", "POST", "/v1/claims/" + held.ID + "/extend", `{"ttl":"soon"}`, nil, 400, "invalid_request", "ttl", "not a duration"},
		{"extend: ttl number", "POST", "/v1/claims/" + held.ID + "/extend", `{"ttl":60}`, nil, 400, "invalid_request", "ttl", "duration string"},
		{"extend: ttl zero", "POST", "/v1/claims/" + held.ID + "/extend", `{"ttl":"0s"}`, nil, 400, "invalid_request", "ttl", "at least 1s"},
		{"extend: past max_hold_ttl", "POST", "/v1/claims/" + held.ID + "/extend", `{"ttl":"2h"}`, nil, 400, "invalid_request", "ttl", "max_hold_ttl"},
		{"extend: unknown field", "POST", "/v1/claims/" + held.ID + "/extend", `{"ttl":"1m","until":"x"}`, nil, 400, "invalid_request", "until", ""},
		// Claim list.
		{"list: bad status", "GET", claims + "?status=bogus", ``, nil, 400, "invalid_request", "status", "held, confirmed"},
		{"list: limit text", "GET", claims + "?limit=abc", ``, nil, 400, "invalid_request", "limit", "whole number"},
		{"list: limit 0", "GET", claims + "?limit=0", ``, nil, 400, "invalid_request", "limit", ""},
		{"list: limit too big", "GET", claims + "?limit=5000", ``, nil, 400, "invalid_request", "limit", "1000"},
		{"list: bad cursor", "GET", claims + "?after=xyz", ``, nil, 400, "invalid_request", "after", "cursor"},
		{"list: unknown pool", "GET", "/v1/pools/nope/claims", ``, nil, 404, "not_found", "", ""},
	}
	e.refuseAll(t, cases, (*env).poolSnapshot)
	// The key used only by refused requests was never stored.
	r := e.do("POST", claims, `{"customer":"dan"}`, "Idempotency-Key", key)
	var c allot.Claim
	e.ok(r, http.StatusCreated, &c)
	if r.header.Get("Idempotent-Replayed") != "" || c.Customer != "dan" {
		t.Fatalf("key of refused requests: %+v replayed=%q", c, r.header.Get("Idempotent-Replayed"))
	}
}

// TestPoolGarbageNeverFails sends many malformed bodies to every pool and
// claim route that takes one: none may answer 5xx.
func TestPoolGarbageNeverFails(t *testing.T) {
	e := newEnv(t, nil)
	e.pool(`{"name":"g","capacity":1000000,"per_customer":0}`)
	c := e.claim("g", `{"customer":"a"}`)
	bodies := []string{
		"", " ", "{", "}", "[", "]", "{}", "[]", "null", "true", "0", "-", `"`, `""`, "{\"", `{"":1}`, `{"customer"}`,
		`{"customer":}`, `{"quantity":-}`, `{"quantity":--1}`, `{"quantity":01}`, `{"customer":"a",}`, `{,}`, `{"customer":"a" "ttl":"1m"}`,
		`{"quantity":9223372036854775807,"customer":"a"}`, `{"quantity":-9223372036854775808}`, `{"quantity":9223372036854775808}`,
		`{"capacity":9223372036854775807}`, `{"capacity":1e400}`, `{"ttl":"9999999999999h"}`, `{"ttl":"1e9h"}`, `{"ttl":"-9223372036854775808ns"}`,
		`{"hold_ttl":"2562047h47m16.854775807s","max_hold_ttl":"2562047h47m16.854775807s"}`, `{"opens_at":"0000-01-01T00:00:00Z"}`,
		`{"opens_at":"9999-12-31T23:59:59.999999999+23:59"}`, `{"closes_at":"-0001-01-01T00:00:00Z"}`, `{"customer":"\u0000"}`,
		`{"customer":"\ud800","reference":"\udfff"}`, `{"name":"a","capacity":1,"per_customer":9223372036854775807,"max_quantity":9223372036854775807}`,
		"{\"customer\":\"a\"}\x00", "\xef\xbb\xbf{\"customer\":\"a\"}", `{"CUSTOMER":"a"}`, `{"customer":null,"quantity":null,"ttl":null}`,
		`{"reference":null}`, `{"state":null}`, `{"name":"z","capacity":0}`,
	}
	paths := []target{
		{"POST", "/v1/pools"}, {"PATCH", "/v1/pools/g"}, {"POST", "/v1/pools/g/claims"},
		{"POST", "/v1/claims/" + c.ID + "/extend"}, {"POST", "/v1/claims/" + c.ID + "/confirm"}, {"POST", "/v1/claims/" + c.ID + "/release"},
	}
	e.neverFails(paths, bodies)
	var rep auditReport
	e.ok(e.do("GET", "/v1/audit", ""), 200, &rep)
	if !rep.OK {
		t.Fatalf("audit after garbage: %+v", rep)
	}
}
