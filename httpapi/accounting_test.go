package httpapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/allot/allot"
)

// TestSequenceAccountingOverHTTP: references, two-phase numbers, the
// confirm route, figures of another period, closing a period, overlap.
func TestSequenceAccountingOverHTTP(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"name":"inv","format":"INV-{yyyy}-{n:5}","mode":"gapless","reset":"yearly","max":10,"warn_at":0.5}`)
	year := time.Now().UTC().Year()

	var res allot.NextResult
	e.ok(e.do("POST", "/v1/sequences/inv/next", `{"count":2,"reference":"order-7"}`), 200, &res)
	if res.Status != allot.StatusIssued || res.Reference != "order-7" || res.Remaining != 8 || res.Warning {
		t.Fatalf("next with a reference: %+v", res)
	}
	var p allot.ParseResult
	e.ok(e.do("GET", fmt.Sprintf("/v1/sequences/inv/ids/INV-%d-00002", year), ""), 200, &p)
	if p.Status != allot.StatusIssued || p.Reference != "order-7" {
		t.Fatalf("parse: %+v", p)
	}
	e.ok(e.do("POST", "/v1/sequences/inv/next", `{"confirm_within":"1m","count":3}`), 200, &res)
	if res.Status != allot.StatusReserved || res.ConfirmBy == nil || res.First != 3 || !res.Warning || res.Remaining != 5 {
		t.Fatalf("two-phase next: %+v", res)
	}
	e.problem(e.do("POST", "/v1/sequences/inv/confirm", `{"first":3,"last":5}`), 400, "invalid_request") // no period
	period := fmt.Sprint(year)
	var entry allot.LedgerEntry
	e.ok(e.do("POST", "/v1/sequences/inv/confirm", `{"first":3,"last":5,"period":"`+period+`","reference":"inv-9"}`), 200, &entry)
	if entry.Kind != allot.LedgerConfirmed || entry.First != 3 || entry.Last != 5 || entry.Reference != "inv-9" {
		t.Fatalf("confirm: %+v", entry)
	}
	r := e.do("POST", "/v1/sequences/inv/confirm", `{"first":3,"last":5,"period":"`+period+`","reference":"inv-9"}`)
	e.ok(r, 200, nil)
	if r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a repeated confirm is a replay: %v", r.header)
	}
	e.problem(e.do("POST", "/v1/sequences/inv/confirm", `{"first":3,"last":5,"period":"`+period+`","reference":"other"}`), 409, "invalid_state")
	e.problem(e.do("POST", "/v1/sequences/inv/next", `{"confirm_within":"2d"}`), 400, "invalid_request")
	e.problem(e.do("POST", "/v1/sequences/inv/next", `{"confirm_within":"0s"}`), 400, "invalid_request")

	// Another period's figures, and a closed period.
	var st allot.SequenceState
	last := fmt.Sprintf("%d-06-01", year-1)
	e.ok(e.do("POST", "/v1/sequences/inv/next", `{"date":"`+last+`"}`), 200, nil)
	e.ok(e.do("GET", "/v1/sequences/inv?date="+last, ""), 200, &st)
	if st.Period != fmt.Sprint(year-1) || st.Issued != 1 || st.Next != 2 {
		t.Fatalf("get ?date=%s: %+v", last, st)
	}
	e.problem(e.do("GET", "/v1/sequences/inv?date=", ""), 400, "invalid_request")
	e.problem(e.do("GET", "/v1/sequences/inv?date=yesterday", ""), 400, "invalid_request")
	e.ok(e.do("POST", fmt.Sprintf("/v1/sequences/inv/periods/%d/close", year-1), ""), 200, &st)
	if st.Closed == nil {
		t.Fatalf("close: %+v", st)
	}
	e.problem(e.do("POST", "/v1/sequences/inv/next", `{"date":"`+last+`"}`), 409, "period_closed")
	e.ok(e.do("POST", fmt.Sprintf("/v1/sequences/inv/periods/%d/reopen", year-1), "{}"), 200, &st)
	e.ok(e.do("POST", "/v1/sequences/inv/next", `{"date":"`+last+`"}`), 200, nil)
	e.problem(e.do("POST", "/v1/sequences/inv/periods/26/close", ""), 400, "invalid_request")
	// A date outside the window.
	e.problem(e.do("POST", "/v1/sequences/inv/next", fmt.Sprintf(`{"date":"%d-01-01"}`, year-5)), 400, "invalid_request")

	// Overlapping ranges are refused, naming the other sequence.
	e.create(`{"name":"pa","start":202043200000000,"max":202043210000000}`)
	pr := e.problem(e.do("POST", "/v1/sequences", `{"name":"pb","start":202043205000000,"max":202043215000000}`), 409, "range_overlap")
	if pr.Sequence != "pa" || !strings.Contains(pr.Detail, `"pa"`) {
		t.Fatalf("overlap problem: %+v", pr)
	}
	e.ok(e.do("POST", "/v1/sequences", `{"name":"pb","start":202043205000000,"max":202043215000000,"allow_overlap":true}`), 201, nil)
	// Control characters in a template.
	pr = e.problem(e.do("POST", "/v1/sequences", `{"name":"tab","format":"A\t{n}"}`), 400, "invalid_request")
	if pr.Field != "format" {
		t.Fatalf("control character: %+v", pr)
	}
}

// TestClaimCancelOverHTTP: a confirmed claim can be cancelled (a refund),
// its units come back, and a retry is a replay.
func TestClaimCancelOverHTTP(t *testing.T) {
	e := newEnv(t, nil)
	e.pool(`{"name":"gig","capacity":2,"per_customer":1}`)
	c := e.claim("gig", `{"customer":"ann"}`)
	e.problem(e.do("POST", "/v1/claims/"+c.ID+"/cancel", `{"reason":"refund"}`), 409, "invalid_state") // held: release it
	e.ok(e.do("POST", "/v1/claims/"+c.ID+"/confirm", `{"reference":"pay-1"}`), 200, nil)
	e.problem(e.do("POST", "/v1/claims/"+c.ID+"/cancel", `{}`), 400, "invalid_request") // no reason
	var got allot.Claim
	e.ok(e.do("POST", "/v1/claims/"+c.ID+"/cancel", `{"reason":"refunded: order 8812"}`), 200, &got)
	if got.Status != allot.ClaimCancelled || got.Reason != "refunded: order 8812" || got.Reference != "pay-1" {
		t.Fatalf("cancel: %+v", got)
	}
	e.wantFigures("gig", 0, 0, 2)
	r := e.do("POST", "/v1/claims/"+c.ID+"/cancel", `{"reason":"refunded: order 8812"}`)
	e.ok(r, 200, nil)
	if r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("cancel retried: %v", r.header)
	}
	e.problem(e.do("POST", "/v1/claims/"+c.ID+"/cancel", `{"reason":"other"}`), 409, "invalid_state")
	// The customer may buy again: the usage followed the refund.
	e.claim("gig", `{"customer":"ann"}`)
	var page allot.ClaimPage
	e.ok(e.do("GET", "/v1/pools/gig/claims?status=cancelled", ""), 200, &page)
	if len(page.Claims) != 1 || page.Claims[0].ID != c.ID {
		t.Fatalf("list of cancelled claims: %+v", page)
	}
	var rep auditReport
	e.ok(e.do("GET", "/v1/audit", ""), 200, &rep)
	if !rep.OK {
		t.Fatalf("audit: %+v", rep)
	}
}

// TestLostAnswerGivenBack is the reproduction over HTTP: a second
// session holds the database's write lock, the caller times out after a
// moment, the commit goes through once the lock is gone. The number must
// not be issued to nobody: the next caller gets it.
func TestLostAnswerGivenBack(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"name":"g","mode":"gapless"}`)
	e.next("g", "")
	db, err := sql.Open("sqlite", e.dbPath+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 300 * time.Millisecond}
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/sequences/g/next", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the request was answered (%d) while the lock was held", resp.StatusCode)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := e.state("g")
		if st.Next == 2 && st.Issued == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the timed-out request: %+v; want next 2, issued 1 (its number handed back)", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res := e.next("g", ""); res.First != 2 {
		t.Fatalf("the next caller got %d, want 2", res.First)
	}
	var rep auditReport
	e.ok(e.do("GET", "/v1/audit", ""), 200, &rep)
	if !rep.OK {
		t.Fatalf("audit: %+v", rep)
	}
}

func (e *env) state(name string) allot.SequenceState {
	e.t.Helper()
	var st allot.SequenceState
	e.ok(e.do("GET", "/v1/sequences/"+name, ""), 200, &st)
	return st
}

// TestAppendNextJSONMatches: the reflection-free next encoder writes the
// same members as encoding/json, with every field of a two-phase result.
func TestAppendNextJSONMatches(t *testing.T) {
	by := time.Date(2026, 12, 2, 10, 30, 0, 123456000, time.UTC)
	for _, res := range []*allot.NextResult{
		{Sequence: "s", First: 1, Last: 2, Count: 2, Period: "2026", IDs: []string{"a", "b"}, Status: allot.StatusIssued, Remaining: 5},
		{Sequence: "s", First: 3, Last: 3, Count: 1, IDs: []string{"c"}, Status: allot.StatusReserved, ConfirmBy: &by,
			Reference: "order \"7\"", Remaining: 0, Warning: true},
	} {
		want, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendNextJSON(nil, res); !reflect.DeepEqual(decodeMembers(t, got), decodeMembers(t, want)) {
			t.Fatalf("fast %s\nwant %s", got, want)
		}
	}
}

// TestControlCharactersRefused: customers, references and templates are
// printed, logged and exported one per line: control characters (TAB,
// DEL, C1 such as U+0085) are refused in bodies and in the claim list's
// customer filter, the same on every store.
func TestControlCharactersRefused(t *testing.T) {
	e := newEnv(t, nil)
	e.pool(`{"name":"p","capacity":10,"per_customer":0}`)
	e.create(`{"name":"g","mode":"gapless"}`)
	for _, c := range []string{`a\u0001b`, `a\u007fb`, `a\tb`, `a\u0085b`, `a\u2028b`} {
		pr := e.problem(e.do("POST", "/v1/pools/p/claims", `{"customer":"`+c+`"}`), 400, "invalid_request")
		if pr.Field != "customer" {
			t.Fatalf("customer %s: %+v", c, pr)
		}
		e.problem(e.do("POST", "/v1/sequences/g/next", `{"reference":"`+c+`"}`), 400, "invalid_request")
	}
	// Reasons too: they are printed in an operator's terminal, where
	// escape codes from a client key could do harm.
	e.next("g", "")
	sold := e.claim("p", `{"customer":"alice"}`)
	e.ok(e.do("POST", "/v1/claims/"+sold.ID+"/confirm", ""), 200, nil)
	for _, c := range []string{`line1\nline2`, `\u001b[2J`, `a\u0007`} {
		if pr := e.problem(e.do("POST", "/v1/sequences/g/void", `{"number":1,"reason":"`+c+`"}`), 400, "invalid_request"); pr.Field != "reason" {
			t.Fatalf("void reason %s: %+v", c, pr)
		}
		if pr := e.problem(e.do("POST", "/v1/claims/"+sold.ID+"/cancel", `{"reason":"`+c+`"}`), 400, "invalid_request"); pr.Field != "reason" {
			t.Fatalf("cancel reason %s: %+v", c, pr)
		}
	}
	for _, q := range []string{"%00", "a%09b", "%C2%85"} {
		pr := e.problem(e.do("GET", "/v1/pools/p/claims?customer="+q, ""), 400, "invalid_request")
		if pr.Field != "customer" {
			t.Fatalf("customer filter %s: %+v", q, pr)
		}
	}
	e.wantFigures("p", 0, 1, 9)
}
