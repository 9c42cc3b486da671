package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/metrics"
	"github.com/allot/allot/wire"
)

func TestSequenceLifecycle(t *testing.T) {
	e := newEnv(t, nil)

	r := e.do("POST", "/v1/sequences", `{"name":"inv","format":"INV-{n:4}","mode":"gapless","max":9999,"warn_at":0.5}`,
		"Content-Type", "application/json; charset=utf-8")
	var st allot.SequenceState
	e.ok(r, http.StatusCreated, &st)
	if st.Name != "inv" || st.Format != "INV-{n:4}" || st.Mode != allot.ModeGapless || st.Max != 9999 || st.Next != 1 || st.Issued != 0 {
		t.Fatalf("created %+v", st)
	}
	if loc := r.header.Get("Location"); loc != "/v1/sequences/inv" {
		t.Fatalf("Location %q", loc)
	}

	res := e.next("inv", "")
	if res.Sequence != "inv" || res.First != 1 || res.Last != 1 || res.Count != 1 || len(res.IDs) != 1 || res.IDs[0] != "INV-0001" {
		t.Fatalf("next with empty body: %+v", res)
	}
	res = e.next("inv", `{"count":3}`)
	if res.First != 2 || res.Last != 4 || strings.Join(res.IDs, ",") != "INV-0002,INV-0003,INV-0004" {
		t.Fatalf("next count 3: %+v", res)
	}
	res = e.next("inv", " { \"date\" : \"2026-01-31\" , \"count\" : 2 } \n")
	if res.First != 5 || res.Count != 2 {
		t.Fatalf("next with date: %+v", res)
	}

	e.ok(e.do("GET", "/v1/sequences/inv", ""), http.StatusOK, &st)
	if st.Issued != 6 || st.Next != 7 {
		t.Fatalf("after 6 numbers: %+v", st)
	}

	e.ok(e.do("PATCH", "/v1/sequences/inv", `{"max":5000,"warn_at":0.75}`), http.StatusOK, &st)
	if st.Max != 5000 || st.WarnAt != 0.75 {
		t.Fatalf("patched: %+v", st)
	}

	var parsed allot.ParseResult
	e.ok(e.do("GET", "/v1/sequences/inv/ids/INV-0003", ""), http.StatusOK, &parsed)
	if parsed != (allot.ParseResult{ID: "INV-0003", Number: 3, Valid: true, Status: allot.StatusIssued, Detail: "issued"}) {
		t.Fatalf("parse: %+v", parsed)
	}
	e.ok(e.do("GET", "/v1/sequences/inv/ids/INV-0042", ""), http.StatusOK, &parsed)
	if parsed.Status != allot.StatusUnissued {
		t.Fatalf("parse unissued: %+v", parsed)
	}

	var entry allot.LedgerEntry
	e.ok(e.do("POST", "/v1/sequences/inv/void", `{"number":2,"reason":"duplicate invoice"}`), http.StatusOK, &entry)
	if entry.Kind != allot.LedgerVoided || entry.First != 2 || entry.Last != 2 || entry.Reason != "duplicate invoice" {
		t.Fatalf("void by number: %+v", entry)
	}
	e.ok(e.do("POST", "/v1/sequences/inv/void", `{"id":"INV-0003","reason":"cancelled"}`), http.StatusOK, &entry)
	if entry.First != 3 {
		t.Fatalf("void by id: %+v", entry)
	}
	e.ok(e.do("GET", "/v1/sequences/inv/ids/INV-0003", ""), http.StatusOK, &parsed)
	if parsed.Status != allot.StatusVoided {
		t.Fatalf("parse voided: %+v", parsed)
	}

	// The ledger pages through 3 issued and 2 voided entries.
	var all []allot.LedgerEntry
	after := ""
	for range 10 {
		var page allot.LedgerPage
		e.ok(e.do("GET", "/v1/sequences/inv/ledger?limit=2&after="+after, ""), http.StatusOK, &page)
		all = append(all, page.Entries...)
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if len(all) != 5 || all[0].Kind != allot.LedgerIssued || all[4].Kind != allot.LedgerVoided {
		t.Fatalf("ledger: %+v", all)
	}

	e.create(`{"name":"aaa"}`)
	var list struct {
		Sequences []allot.SequenceState `json:"sequences"`
	}
	e.ok(e.do("GET", "/v1/sequences", ""), http.StatusOK, &list)
	if len(list.Sequences) != 2 || list.Sequences[0].Name != "aaa" || list.Sequences[1].Name != "inv" {
		t.Fatalf("list: %+v", list)
	}
}

// TestEmptyList: a list with nothing in it is an empty array, not null.
func TestEmptyList(t *testing.T) {
	e := newEnv(t, nil)
	for path, want := range map[string]string{"/v1/sequences": `{"sequences":[]}`, "/v1/pools": `{"pools":[]}`} {
		r := e.do("GET", path, "")
		e.ok(r, http.StatusOK, nil)
		if string(r.body) != want+"\n" {
			t.Fatalf("%s: body %s", path, r.body)
		}
	}
}

func TestHealthReady(t *testing.T) {
	e := newEnv(t, map[string]Role{"k": RoleAdmin})
	r := e.do("GET", "/healthz", "")
	e.ok(r, http.StatusOK, nil)
	if string(r.body) != `{"status":"ok"}`+"\n" {
		t.Fatalf("healthz %s", r.body)
	}
	var ready map[string]string
	e.ok(e.do("GET", "/readyz", ""), http.StatusOK, &ready)
	if ready["status"] != "ready" {
		t.Fatalf("readyz %v", ready)
	}
}

// TestErrorCodes checks every problem code over HTTP: status,
// Content-Type and code.
func TestErrorCodes(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"name":"small","mode":"gapless","max":3}`)
	e.create(`{"name":"seq","allow_overlap":true}`)

	t.Run("invalid_request", func(t *testing.T) {
		p := e.problem(e.do("POST", "/v1/sequences", `{"name":"Bad Name"}`), 400, "invalid_request")
		if p.Field != "name" {
			t.Fatalf("field %q", p.Field)
		}
	})
	t.Run("not_found", func(t *testing.T) {
		e.problem(e.do("GET", "/v1/sequences/nope", ""), 404, "not_found")
		e.problem(e.do("POST", "/v1/sequences/nope/next", ""), 404, "not_found")
		e.problem(e.do("GET", "/no/such/route", ""), 404, "not_found")
		e.problem(e.do("GET", "/v1/sequences/seq/", ""), 404, "not_found")
	})
	t.Run("already_exists", func(t *testing.T) {
		e.problem(e.do("POST", "/v1/sequences", `{"name":"seq"}`), 409, "already_exists")
	})
	t.Run("sequence_exhausted", func(t *testing.T) {
		p := e.problem(e.do("POST", "/v1/sequences/small/next", `{"count":5}`), 409, "sequence_exhausted")
		if p.Remaining == nil || *p.Remaining != 3 || p.Requested == nil || *p.Requested != 5 {
			t.Fatalf("remaining/requested: %+v", p)
		}
		e.next("small", `{"count":3}`)
		p = e.problem(e.do("POST", "/v1/sequences/small/next", ""), 409, "sequence_exhausted")
		if p.Remaining == nil || *p.Remaining != 0 || *p.Requested != 1 {
			t.Fatalf("remaining 0 must be present: %+v", p)
		}
	})
	t.Run("idempotency_mismatch", func(t *testing.T) {
		e.next("seq", `{"count":1}`, "Idempotency-Key", "k-mismatch")
		e.problem(e.do("POST", "/v1/sequences/seq/next", `{"count":2}`, "Idempotency-Key", "k-mismatch"), 422, "idempotency_mismatch")
	})
	t.Run("idempotency_in_flight", func(t *testing.T) {
		// The mapping itself.
		p, internal := problemFor(fmt.Errorf("key %q: %w", "k", allot.ErrIdempotencyInFlight))
		if internal || p.Status != 409 || p.Code != "idempotency_in_flight" {
			t.Fatalf("mapping: %+v", p)
		}
		// Over HTTP: concurrent requests with one key get the same
		// numbers or 409 idempotency_in_flight, and take one number.
		e.create(`{"name":"race","mode":"gapless","allow_overlap":true}`)
		var wg sync.WaitGroup
		results := make([]resp, 16)
		for i := range results {
			wg.Go(func() {
				results[i] = e.do("POST", "/v1/sequences/race/next", `{"count":1}`, "Idempotency-Key", "same")
			})
		}
		wg.Wait()
		var firsts []int64
		for _, r := range results {
			if r.status == http.StatusOK {
				var res allot.NextResult
				e.ok(r, 200, &res)
				firsts = append(firsts, res.First)
				continue
			}
			e.problem(r, 409, "idempotency_in_flight")
			if r.header.Get("Retry-After") == "" {
				t.Fatal("idempotency_in_flight without Retry-After")
			}
		}
		t.Logf("%d of %d requests got the numbers, the others idempotency_in_flight", len(firsts), len(results))
		if len(firsts) == 0 {
			t.Fatal("no request succeeded")
		}
		for _, f := range firsts {
			if f != 1 {
				t.Fatalf("replays returned different numbers: %v", firsts)
			}
		}
		var st allot.SequenceState
		e.ok(e.do("GET", "/v1/sequences/race", ""), 200, &st)
		if st.Issued != 1 {
			t.Fatalf("one key took %d numbers", st.Issued)
		}
	})
	t.Run("method_not_allowed", func(t *testing.T) {
		r := e.do("DELETE", "/v1/sequences/seq", "")
		e.problem(r, 405, "method_not_allowed")
		if allow := r.header.Get("Allow"); allow != "GET, PATCH, HEAD" {
			t.Fatalf("Allow %q", allow)
		}
		e.problem(e.do("GET", "/v1/sequences/seq/next", ""), 405, "method_not_allowed")
		e.problem(e.do("PUT", "/v1/sequences", ""), 405, "method_not_allowed")
	})
	t.Run("body_too_large", func(t *testing.T) {
		big := `{"name":"` + strings.Repeat("x", maxBody) + `"}`
		e.problem(e.do("POST", "/v1/sequences", big), 413, "invalid_request")
		e.problem(e.do("POST", "/v1/sequences/seq/next", big), 413, "invalid_request")
		// Without Content-Length (chunked), the limit holds while reading.
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/sequences/seq/next", struct{ io.Reader }{strings.NewReader(big)})
		res, err := e.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if req.ContentLength != 0 || len(req.TransferEncoding) != 0 {
			t.Fatalf("request was not chunked: %d %v", req.ContentLength, req.TransferEncoding)
		}
		checkProblem(t, res.StatusCode, res.Header, body, 413, "invalid_request")
	})
	t.Run("unsupported_media_type", func(t *testing.T) {
		p := e.problem(e.do("POST", "/v1/sequences/seq/next", `{"count":1}`, "Content-Type", "text/plain"), 415, "invalid_request")
		if p.Field != "Content-Type" {
			t.Fatalf("field %q", p.Field)
		}
	})
	t.Run("internal", func(t *testing.T) {
		p, internal := problemFor(errors.New("disk on fire at /var/lib/secret"))
		if !internal || p.Status != 500 || p.Code != "internal" {
			t.Fatalf("mapping: %+v", p)
		}
	})
	t.Run("unavailable", func(t *testing.T) {
		p, _ := problemFor(fmt.Errorf("x: %w", allot.ErrClosed))
		if p.Status != 503 || p.Code != "unavailable" {
			t.Fatalf("mapping: %+v", p)
		}
	})
}

func TestAuthCodes(t *testing.T) {
	e := newEnv(t, map[string]Role{"admin-key": RoleAdmin, "client-key": RoleClient})
	t.Run("unauthorized", func(t *testing.T) {
		for _, auth := range []string{"", "Bearer nope", "Basic YWRtaW4tOmtleQ==", "Bearer", "admin-key"} {
			r := e.do("GET", "/v1/sequences", "", "Authorization", auth)
			e.problem(r, 401, "unauthorized")
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		}
	})
	t.Run("forbidden", func(t *testing.T) {
		e.problem(e.do("POST", "/v1/sequences", `{"name":"x"}`, "Authorization", "Bearer client-key"), 403, "forbidden")
	})
	t.Run("scheme is case-insensitive", func(t *testing.T) {
		e.ok(e.do("GET", "/v1/sequences", "", "Authorization", "bearer admin-key"), 200, nil)
	})
}

func TestUnavailableAfterClose(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"name":"s"}`)
	if err := e.svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/readyz", "")
	e.problem(r, 503, "unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	e.problem(e.do("POST", "/v1/sequences/s/next", ""), 503, "unavailable")
}

// TestPanicIsInternal checks the defence in depth: a panicking handler
// answers 500 with only the request id, and the log has the error.
func TestPanicIsInternal(t *testing.T) {
	e := newEnv(t, nil)
	var logs bytes.Buffer
	s, err := New(Config{Service: e.svc, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := s.endpoint("test", public, func(*Server, http.ResponseWriter, *http.Request) outcome {
		panic("secret detail")
	})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("X-Request-Id", "req-123")
	h.ServeHTTP(rec, req)
	p := checkProblem(t, rec.Code, rec.Header(), rec.Body.Bytes(), 500, "internal")
	if strings.Contains(rec.Body.String(), "secret") || !strings.Contains(p.Detail, "req-123") {
		t.Fatalf("body %s", rec.Body)
	}
	if !strings.Contains(logs.String(), "secret detail") || !strings.Contains(logs.String(), `"request_id":"req-123"`) {
		t.Fatalf("log %s", logs.String())
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do("GET", "/healthz", "", "X-Request-Id", "abc-123")
	if got := r.header.Get("X-Request-Id"); got != "abc-123" {
		t.Fatalf("echo: %q", got)
	}
	seen := map[string]bool{}
	for _, in := range []string{"", "has space", strings.Repeat("x", 129), "caf\xc3\xa9"} {
		r := e.do("GET", "/healthz", "", "X-Request-Id", in)
		got := r.header.Get("X-Request-Id")
		if got == "" || got == in || seen[got] {
			t.Fatalf("generated id for %q: %q", in, got)
		}
		seen[got] = true
	}
}

func TestNextText(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"name":"txt","format":"A \"{n:3}\""}`)
	r := e.do("POST", "/v1/sequences/txt/next", `{"count":3}`, "Accept", "text/plain")
	if r.status != 200 || r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("status %d, Content-Type %q: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if want := "A \"001\"\nA \"002\"\nA \"003\"\n"; string(r.body) != want {
		t.Fatalf("body %q, want %q", r.body, want)
	}
	for h, want := range map[string]string{"Allot-First": "1", "Allot-Last": "3", "Allot-Status": "issued", "Allot-Period": "",
		"Allot-Confirm-By": "", "Allot-Warning": ""} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if r.header.Get("Allot-Remaining") == "" {
		t.Error("no Allot-Remaining")
	}
	// What the JSON answer says besides the IDs reaches a label printer
	// too: reserved numbers and their deadline, a range nearly used up.
	e.create(`{"name":"tp","mode":"gapless","max":10,"warn_at":0.1,"confirm_within":"1m"}`)
	r = e.do("POST", "/v1/sequences/tp/next", "", "Accept", "text/plain")
	if r.status != 200 || string(r.body) != "1\n" {
		t.Fatalf("two-phase text: %d %q", r.status, r.body)
	}
	if r.header.Get("Allot-Status") != "reserved" || r.header.Get("Allot-Remaining") != "9" || r.header.Get("Allot-Warning") != "true" {
		t.Fatalf("two-phase text headers: %v", r.header)
	}
	if by, err := time.Parse(time.RFC3339Nano, r.header.Get("Allot-Confirm-By")); err != nil || time.Until(by) < 30*time.Second {
		t.Fatalf("Allot-Confirm-By %q: %v", r.header.Get("Allot-Confirm-By"), err)
	}
	r = e.do("POST", "/v1/sequences/txt/next", "", "Accept", "text/plain;q=0.9, application/json")
	var res allot.NextResult
	e.ok(r, 200, &res)
	if res.IDs[0] != `A "004"` {
		t.Fatalf("JSON ids %q", res.IDs)
	}

	// A template with a line break can't be created any more; one stored
	// before that was refused still can't go one ID per line: text/plain
	// is refused before a number is taken.
	e.problem(e.do("POST", "/v1/sequences", `{"name":"nl","format":"A\n{n}"}`), 400, "invalid_request")
	legacy := &allot.Sequence{Name: "nl", Format: "A\n{n}", Start: 1, Max: math.MaxInt64, Mode: allot.ModeCached, BlockSize: 1000,
		Reset: allot.ResetNever, Timezone: "UTC", WarnAt: 0.9, PeriodsBack: 1, AllowOverlap: true}
	if _, err := e.svc.Store().SequenceCreate(context.Background(), legacy); err != nil {
		t.Fatal(err)
	}
	e.problem(e.do("POST", "/v1/sequences/nl/next", "", "Accept", "text/plain"), 406, "invalid_request")
	res = e.next("nl", "")
	if res.First != 1 || res.IDs[0] != "A\n1" {
		t.Fatalf("JSON after refused text: %+v", res)
	}
	e.problem(e.do("POST", "/v1/sequences/nope/next", "", "Accept", "text/plain"), 404, "not_found")
}

func TestWantsText(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                   false,
		"*/*":                                false,
		"application/json":                   false,
		"text/plain":                         true,
		"TEXT/PLAIN; charset=utf-8":          true,
		"text/*":                             true,
		"text/plain, */*;q=0.1":              true,
		"text/plain, */*":                    true,
		"text/plain, application/json":       false,
		"application/json;q=0.5, text/plain": true,
		"text/plain;q=0, */*":                false,
		"text/html, */*;q=0.8":               false,
		"image/png":                          false,
	} {
		if got := wantsText([]string{accept}); got != want {
			t.Errorf("wantsText(%q) = %v, want %v", accept, got, want)
		}
	}
}

func TestIdempotentReplay(t *testing.T) {
	for _, mode := range []string{"cached", "gapless"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, nil)
			e.create(`{"name":"s","format":"S-{n}","mode":"` + mode + `"}`)
			r := e.do("POST", "/v1/sequences/s/next", `{"count":3,"date":"2026-02-01"}`, "Idempotency-Key", "order-42")
			var first allot.NextResult
			e.ok(r, 200, &first)
			if r.header.Get("Idempotent-Replayed") != "" {
				t.Fatal("first call marked replayed")
			}
			e.next("s", `{"count":2}`) // someone else takes numbers in between
			r = e.do("POST", "/v1/sequences/s/next", `{"date":"2026-02-01","count":3}`, "Idempotency-Key", "order-42")
			var again allot.NextResult
			e.ok(r, 200, &again)
			if r.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replay header %q", r.header.Get("Idempotent-Replayed"))
			}
			if again.First != first.First || again.Last != first.Last || strings.Join(again.IDs, ",") != strings.Join(first.IDs, ",") {
				t.Fatalf("replay %+v, first %+v", again, first)
			}
			r = e.do("POST", "/v1/sequences/s/next", `{"count":3,"date":"2026-02-01"}`, "Idempotency-Key", "order-42", "Accept", "text/plain")
			if r.status != 200 || string(r.body) != strings.Join(first.IDs, "\n")+"\n" || r.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("text replay %d %q", r.status, r.body)
			}
		})
	}
}

// TestAuthRoles walks the routes table: public routes need no key, client
// routes take a client or admin key, admin routes refuse client keys,
// /metrics takes a metrics or admin key, and a metrics key may call
// nothing else.
func TestAuthRoles(t *testing.T) {
	e := newEnv(t, map[string]Role{"admin-key": RoleAdmin, "client-key": RoleClient, "metrics-key": RoleMetrics})
	admin := []string{"Authorization", "Bearer admin-key"}
	e.ok(e.do("POST", "/v1/sequences", `{"name":"s","mode":"gapless"}`, admin...), 201, nil)
	e.ok(e.do("POST", "/v1/sequences/s/next", `{"count":100}`, admin...), 200, nil)
	e.ok(e.do("POST", "/v1/pools", `{"name":"s","capacity":1000000,"per_customer":0}`, admin...), 201, nil)
	e.ok(e.do("POST", "/v1/sequences", `{"name":"y","format":"Y{yyyy}-{n}","reset":"yearly"}`, admin...), 201, nil)
	year := time.Now().UTC().Format("2006")

	bodies := map[string]string{
		"POST /v1/sequences":             `{"name":"n%d","allow_overlap":true}`,
		"POST /v1/claims/{id}/cancel":    `{"reason":"refund %d"}`,
		"PATCH /v1/sequences/{name}":     `{"warn_at":0.8}`,
		"POST /v1/sequences/{name}/void": `{"number":%d,"reason":"test"}`,
		"POST /v1/pools":                 `{"name":"p%d","capacity":1}`,
		"PATCH /v1/pools/{name}":         `{"capacity":1000000}`,
		"POST /v1/pools/{name}/claims":   `{"customer":"c%d"}`,
		"POST /v1/claims/{id}/confirm":   `{"reference":"r%d"}`,
		"POST /v1/claims/{id}/extend":    `{"ttl":"5m"}`,
	}
	n := 0
	for _, rt := range routes {
		pattern := rt.method + " " + rt.path
		call := func(key string) resp {
			n++
			id := "1"
			if strings.HasPrefix(rt.path, "/v1/claims/") {
				// A fresh held claim per call: confirm and release are
				// terminal (and cancel needs it confirmed).
				var c allot.Claim
				e.ok(e.do("POST", "/v1/pools/s/claims", fmt.Sprintf(`{"customer":"fresh%d"}`, n), admin...), 201, &c)
				id = c.ID
				if strings.HasSuffix(rt.path, "/cancel") {
					e.ok(e.do("POST", "/v1/claims/"+id+"/confirm", "", admin...), 200, nil)
				}
			}
			name := "s"
			if strings.Contains(rt.path, "{period}") {
				name = "y"
			}
			path := strings.NewReplacer("{name}", name, "{id}", id, "{period}", year).Replace(rt.path)
			if pattern == "GET /v1/sequences/{name}/labels" {
				path += "?first=1&last=1" // a reprint of a number the set-up issued
			}
			body := bodies[pattern]
			if strings.Contains(body, "%d") {
				body = fmt.Sprintf(body, n)
			}
			if pattern == "POST /v1/sequences/{name}/confirm" {
				// A fresh reservation per call.
				var res allot.NextResult
				e.ok(e.do("POST", "/v1/sequences/s/next", `{"confirm_within":"1m"}`, admin...), 200, &res)
				body = fmt.Sprintf(`{"first":%d,"last":%d,"reference":"doc %d"}`, res.First, res.Last, n)
			}
			if key == "" {
				return e.do(rt.method, path, body)
			}
			return e.do(rt.method, path, body, "Authorization", "Bearer "+key)
		}
		t.Run(pattern, func(t *testing.T) {
			if rt.access == public {
				if r := call(""); r.status != 200 {
					t.Fatalf("public route without key: %d %s", r.status, r.body)
				}
				return
			}
			e.problem(call(""), 401, "unauthorized")
			e.problem(call("wrong-key"), 401, "unauthorized")
			if r := call("admin-key"); r.status/100 != 2 {
				t.Fatalf("admin: %d %s", r.status, r.body)
			}
			switch rt.access {
			case adminLevel:
				e.problem(call("client-key"), 403, "forbidden")
				e.problem(call("metrics-key"), 403, "forbidden")
			case metricsLevel:
				e.problem(call("client-key"), 403, "forbidden")
				if r := call("metrics-key"); r.status/100 != 2 {
					t.Fatalf("metrics: %d %s", r.status, r.body)
				}
			default:
				if r := call("client-key"); r.status/100 != 2 {
					t.Fatalf("client: %d %s", r.status, r.body)
				}
				e.problem(call("metrics-key"), 403, "forbidden")
			}
		})
	}
}

func TestAuthDisabled(t *testing.T) {
	e := newEnv(t, map[string]Role{})
	e.ok(e.do("POST", "/v1/sequences", `{"name":"s"}`), 201, nil)
	e.ok(e.do("POST", "/v1/sequences/s/next", "", "Authorization", "Bearer anything"), 200, nil)
}

func TestConfigErrors(t *testing.T) {
	e := newEnv(t, nil)
	for name, cfg := range map[string]Config{
		"no service": {},
		"bad role":   {Service: e.svc, Keys: map[string]Role{"k": "root"}},
		"empty key":  {Service: e.svc, Keys: map[string]Role{"": RoleAdmin}},
		"space key":  {Service: e.svc, Keys: map[string]Role{"a b": RoleAdmin}},
		"two regs":   {Service: e.svc, Metrics: metrics.New(nil), Registry: e.reg},
		"reused reg": {Service: e.svc, Registry: e.reg},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestPathEscapes checks that IDs with '/', spaces and '%' reach the
// service whole.
func TestPathEscapes(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"name":"odd","format":"a/b {n}%"}`)
	res := e.next("odd", "")
	if res.IDs[0] != "a/b 1%" {
		t.Fatalf("id %q", res.IDs[0])
	}
	var parsed allot.ParseResult
	e.ok(e.do("GET", "/v1/sequences/odd/ids/"+url.PathEscape(res.IDs[0]), ""), 200, &parsed)
	// Cached: handed out from this server's lease, which it has not
	// settled yet.
	if parsed.Number != 1 || parsed.Status != allot.StatusLeased || parsed.ID != "a/b 1%" {
		t.Fatalf("parse %+v", parsed)
	}
	e.problem(e.do("GET", "/v1/sequences/odd/ids/%2E", ""), 400, "invalid_request")
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"name":"g","mode":"gapless","max":10,"warn_at":0.5}`)
	e.next("g", `{"count":6}`)
	e.problem(e.do("GET", "/v1/sequences/none", ""), 404, "not_found")
	e.wantMetrics(
		`allot_http_request_duration_seconds_count{code="200",route="POST /v1/sequences/{name}/next"} 1`,
		`allot_http_request_duration_seconds_count{code="201",route="POST /v1/sequences"} 1`,
		`allot_http_request_duration_seconds_count{code="404",route="GET /v1/sequences/{name}"} 1`,
		`allot_batch_size_count{kind=`,
		`allot_commit_duration_seconds_count{kind=`,
		`allot_sequence_remaining{sequence="g"} 4`,
		`allot_sequence_warning{sequence="g"} 1`,
		`allot_sequence_numbers{sequence="g",state="issued"} 6`,
		`allot_sequence_numbers{sequence="g",state="leased"} 0`,
		`allot_sequence_numbers{sequence="g",state="reserved"} 0`,
		`allot_sequence_numbers{sequence="g",state="voided"} 0`,
	)
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi version %v", doc["openapi"])
	}
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}
	documented := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		for m, op := range item.(map[string]any) {
			if !methods[m] {
				continue
			}
			documented[strings.ToUpper(m)+" "+path] = true
			responses, _ := op.(map[string]any)["responses"].(map[string]any)
			if len(responses) == 0 {
				t.Errorf("%s %s has no responses", m, path)
			}
		}
	}
	registered := map[string]bool{}
	for _, rt := range routes {
		registered[rt.method+" "+rt.path] = true
		if !documented[rt.method+" "+rt.path] {
			t.Errorf("route %s %s is not in openapi.json", rt.method, rt.path)
		}
	}
	for op := range documented {
		if !registered[op] {
			t.Errorf("openapi.json documents %s, which is not a route", op)
		}
	}

	// Every $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				var cur any = doc
				for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, _ := cur.(map[string]any)
					cur = m[part]
				}
				if cur == nil {
					t.Errorf("$ref %s does not resolve", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)

	// The problem schema lists every code problemFor can produce.
	codes := doc["components"].(map[string]any)["schemas"].(map[string]any)["Problem"].(map[string]any)["properties"].(map[string]any)["code"].(map[string]any)["enum"].([]any)
	for _, k := range wire.Problems {
		code := k.Code
		found := false
		for _, c := range codes {
			found = found || c == code
		}
		if !found {
			t.Errorf("problem code %q missing from the Problem schema", code)
		}
	}

	// Every schema has exactly the JSON fields of its Go type.
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for name, typ := range map[string]reflect.Type{
		"SequenceCreate": reflect.TypeFor[allot.SequenceCreateParams](),
		"SequencePatch":  reflect.TypeFor[allot.SequencePatchParams](),
		"SequenceState":  reflect.TypeFor[allot.SequenceState](),
		"NextRequest":    reflect.TypeFor[nextBody](),
		"NextResult":     reflect.TypeFor[allot.NextResult](),
		"VoidRequest":    reflect.TypeFor[voidBody](),
		"LedgerEntry":    reflect.TypeFor[allot.LedgerEntry](),
		"LedgerPage":     reflect.TypeFor[allot.LedgerPage](),
		"ParseResult":    reflect.TypeFor[allot.ParseResult](),
		"Problem":        reflect.TypeFor[wire.Problem](),
		"PoolCreate":     reflect.TypeFor[poolCreateBody](),
		"PoolPatch":      reflect.TypeFor[poolSettingsBody](),
		"PoolState":      reflect.TypeFor[allot.PoolState](),
		"PoolList":       reflect.TypeFor[poolListBody](),
		"ClaimRequest":   reflect.TypeFor[claimBody](),
		"Claim":          reflect.TypeFor[allot.Claim](),
		"ClaimPage":      reflect.TypeFor[allot.ClaimPage](),
		"ConfirmRequest": reflect.TypeFor[confirmBody](),
		"ReleaseRequest": reflect.TypeFor[releaseBody](),
		"ExtendRequest":  reflect.TypeFor[extendBody](),
		"CancelRequest":  reflect.TypeFor[cancelBody](),
		"PeriodRequest":  reflect.TypeFor[periodBody](),

		"ConfirmNumbersRequest": reflect.TypeFor[confirmNumbersBody](),
		"LabelSpec":             reflect.TypeFor[allot.LabelSpec](),
		"LabelsRequest":         reflect.TypeFor[wire.LabelsRequest](),
		"AuditCheck":            reflect.TypeFor[allot.AuditCheck](),
		"AuditReport":           reflect.TypeFor[auditReport](),
	} {
		var documented []string
		for prop := range schemas[name].(map[string]any)["properties"].(map[string]any) {
			documented = append(documented, prop)
		}
		slices.Sort(documented)
		if got := jsonFields(typ); !slices.Equal(got, documented) {
			t.Errorf("schema %s has properties %v, Go type %s has JSON fields %v", name, documented, typ, got)
		}
	}

	e := newEnv(t, nil)
	r := e.do("GET", "/openapi.json", "")
	if r.status != 200 || !bytes.Equal(r.body, openapiJSON) || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %q", r.status, r.header.Get("Content-Type"))
	}
}

func TestCachedExhaustion(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"name":"c","max":5,"block_size":2}`)
	got := 0
	for range 10 {
		r := e.do("POST", "/v1/sequences/c/next", "")
		if r.status == 200 {
			got++
			continue
		}
		e.problem(r, 409, "sequence_exhausted")
	}
	if got != 5 {
		t.Fatalf("issued %d of 5", got)
	}
	// Raising max makes numbers available again.
	e.ok(e.do("PATCH", "/v1/sequences/c", `{"max":6}`), 200, nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.do("POST", "/v1/sequences/c/next", "")
		if r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no number after raising max: %s", r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jsonFields lists the JSON field names of a struct type, sorted,
// including those of embedded structs.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
