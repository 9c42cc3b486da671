package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/allot/allot"
	"github.com/allot/allot/client"
	"github.com/allot/allot/httpapi"
	"github.com/allot/allot/internal/testserver"
)

// server is a real Service over a real SQLite file behind the real HTTP API.
type server struct {
	svc *allot.Service
	srv *httptest.Server
}

const (
	adminKey  = "admin-secret"
	clientKey = "client-secret"
)

func newServer(t *testing.T, wrap func(http.Handler) http.Handler) *server {
	t.Helper()
	return newServerWith(t, wrap, nil)
}

// newServerWith is newServer with a chance to change the Service's
// config, e.g. to inject a clock.
func newServerWith(t *testing.T, wrap func(http.Handler) http.Handler, configure func(*allot.Config)) *server {
	t.Helper()
	ts := testserver.Start(t, testserver.Options{Wrap: wrap, Configure: configure, Log: t.Output(),
		Keys: map[string]httpapi.Role{adminKey: httpapi.RoleAdmin, clientKey: httpapi.RoleClient}})
	return &server{svc: ts.Service, srv: ts.HTTP}
}

func (s *server) client(t *testing.T, key string) *client.Client {
	t.Helper()
	var opts []client.Option
	if key != "" {
		opts = append(opts, client.WithKey(key))
	}
	c, err := client.New(s.srv.URL, append(opts, client.WithHTTPClient(s.srv.Client()))...)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	admin, cl := s.client(t, adminKey), s.client(t, clientKey)

	st, err := admin.SequenceCreate(ctx, allot.SequenceCreateParams{
		Name: "inv", Format: "INV/{yyyy} {n:4}", Mode: allot.ModeGapless, Reset: allot.ResetYearly,
		Max: ptr(int64(9999)), WarnAt: ptr(0.5), Timezone: "Europe/Berlin",
	})
	if err != nil {
		t.Fatalf("SequenceCreate: %v", err)
	}
	if st.Name != "inv" || st.Mode != allot.ModeGapless || st.Reset != allot.ResetYearly || st.Max != 9999 || st.Timezone != "Europe/Berlin" {
		t.Fatalf("created %+v", st)
	}
	if _, err := admin.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "other"}); err != nil {
		t.Fatal(err)
	}

	res, err := cl.Next(ctx, allot.NextParams{Sequence: "inv", Count: 3, Date: "2026-05-01"})
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if res.First != 1 || res.Last != 3 || res.Count != 3 || res.Period != "2026" || res.Replayed ||
		!slices.Equal(res.IDs, []string{"INV/2026 0001", "INV/2026 0002", "INV/2026 0003"}) {
		t.Fatalf("Next: %+v", res)
	}
	ids, err := cl.NextText(ctx, allot.NextParams{Sequence: "inv", Count: 2, Date: "2026-05-01"})
	if err != nil || !slices.Equal(ids, []string{"INV/2026 0004", "INV/2026 0005"}) {
		t.Fatalf("NextText: %q, %v", ids, err)
	}
	one, err := cl.NextText(ctx, allot.NextParams{Sequence: "other"})
	if err != nil || !slices.Equal(one, []string{"1"}) {
		t.Fatalf("NextText count 0: %q, %v", one, err)
	}

	p := allot.NextParams{Sequence: "inv", Count: 2, Date: "2026-05-02", IdempotencyKey: "order-7"}
	first, err := cl.Next(ctx, p)
	if err != nil || first.Replayed {
		t.Fatalf("idempotent first: %+v, %v", first, err)
	}
	again, err := cl.Next(ctx, p)
	if err != nil || !again.Replayed || again.First != first.First || !slices.Equal(again.IDs, first.IDs) {
		t.Fatalf("idempotent replay: %+v, %v (first %+v)", again, err, first)
	}
	text, err := cl.NextText(ctx, p)
	if err != nil || !slices.Equal(text, first.IDs) {
		t.Fatalf("idempotent text replay: %q, %v", text, err)
	}

	got, err := cl.SequenceGet(ctx, "inv")
	if err != nil {
		t.Fatalf("SequenceGet: %v", err)
	}
	if got.Name != "inv" || got.Format != "INV/{yyyy} {n:4}" {
		t.Fatalf("SequenceGet: %+v", got)
	}
	list, err := cl.SequenceList(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "inv" || list[1].Name != "other" {
		t.Fatalf("SequenceList: %+v, %v", list, err)
	}
	patched, err := admin.SequencePatch(ctx, "inv", allot.SequencePatchParams{Max: ptr(int64(5000)), WarnAt: ptr(0.8)})
	if err != nil || patched.Max != 5000 || patched.WarnAt != 0.8 {
		t.Fatalf("SequencePatch: %+v, %v", patched, err)
	}

	parsed, err := cl.SequenceParse(ctx, "inv", "INV/2026 0002")
	if err != nil {
		t.Fatalf("SequenceParse: %v", err)
	}
	if *parsed != (allot.ParseResult{ID: "INV/2026 0002", Number: 2, Period: "2026", Valid: true, Status: allot.StatusIssued, Detail: "issued"}) {
		t.Fatalf("SequenceParse: %+v", parsed)
	}

	e, err := admin.SequenceVoid(ctx, allot.VoidParams{Sequence: "inv", ID: "INV/2026 0002", Reason: "cancelled order"})
	if err != nil || e.Kind != allot.LedgerVoided || e.First != 2 || e.Period != "2026" || e.Reason != "cancelled order" {
		t.Fatalf("SequenceVoid by id: %+v, %v", e, err)
	}
	e, err = admin.SequenceVoid(ctx, allot.VoidParams{Sequence: "inv", Number: ptr(int64(3)), Date: "2026-12-31", Reason: "typo"})
	if err != nil || e.First != 3 {
		t.Fatalf("SequenceVoid by number: %+v, %v", e, err)
	}
	parsed, err = cl.SequenceParse(ctx, "inv", "INV/2026 0002")
	if err != nil || parsed.Status != allot.StatusVoided {
		t.Fatalf("SequenceParse voided: %+v, %v", parsed, err)
	}

	var entries []allot.LedgerEntry
	after := ""
	for range 10 {
		page, err := admin.SequenceLedger(ctx, "inv", after, 2)
		if err != nil {
			t.Fatalf("SequenceLedger: %v", err)
		}
		entries = append(entries, page.Entries...)
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	var kinds []allot.LedgerKind
	for _, e := range entries {
		kinds = append(kinds, e.Kind)
	}
	if !slices.Equal(kinds, []allot.LedgerKind{allot.LedgerIssued, allot.LedgerIssued, allot.LedgerIssued, allot.LedgerVoided, allot.LedgerVoided}) {
		t.Fatalf("ledger kinds %v", kinds)
	}
	page, err := admin.SequenceLedger(ctx, "inv", "", 0)
	if err != nil || len(page.Entries) != 5 || page.Next != "" {
		t.Fatalf("SequenceLedger default limit: %+v, %v", page, err)
	}

	if err := cl.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

// TestSentinels checks that errors.Is with allot's sentinels works across
// the wire.
func TestSentinels(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	admin, cl, anon := s.client(t, adminKey), s.client(t, clientKey), s.client(t, "")
	if _, err := admin.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "small", Mode: allot.ModeGapless, Max: ptr(int64(3))}); err != nil {
		t.Fatal(err)
	}

	check := func(name string, err, want error) *client.Problem {
		t.Helper()
		return wantProblem(t, name, err, want)
	}

	_, err := admin.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "Bad Name"})
	if p := check("invalid", err, allot.ErrInvalid); p.Field != "name" || p.Status != 400 {
		t.Fatalf("invalid: %+v", p)
	}
	_, err = cl.Next(ctx, allot.NextParams{Sequence: "small", Count: 100001})
	if p := check("invalid count", err, allot.ErrInvalid); p.Field != "count" {
		t.Fatalf("invalid count: %+v", p)
	}
	_, err = cl.SequenceGet(ctx, "nope")
	check("not found", err, allot.ErrNotFound)
	_, err = admin.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "small"})
	check("already exists", err, allot.ErrAlreadyExists)

	_, err = cl.Next(ctx, allot.NextParams{Sequence: "small", Count: 5})
	if p := check("exhausted", err, allot.ErrExhausted); p.Remaining != 3 || p.Requested != 5 || p.Status != 409 {
		t.Fatalf("exhausted: %+v", p)
	}
	if _, err := cl.NextText(ctx, allot.NextParams{Sequence: "small", Count: 4}); !errors.Is(err, allot.ErrExhausted) {
		t.Fatalf("NextText exhausted: %v", err)
	}

	if _, err := cl.Next(ctx, allot.NextParams{Sequence: "small", IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.Next(ctx, allot.NextParams{Sequence: "small", Count: 2, IdempotencyKey: "k"})
	check("mismatch", err, allot.ErrIdempotencyMismatch)

	_, err = anon.SequenceList(ctx)
	check("unauthorized", err, allot.ErrUnauthorized)
	_, err = s.client(t, "wrong").SequenceList(ctx)
	check("unknown key", err, allot.ErrUnauthorized)
	_, err = cl.SequencePatch(ctx, "small", allot.SequencePatchParams{Max: ptr(int64(10))})
	check("forbidden", err, allot.ErrForbidden)
	_, err = cl.SequenceLedger(ctx, "small", "", 0)
	check("forbidden ledger", err, allot.ErrForbidden)
	_, err = cl.SequenceVoid(ctx, allot.VoidParams{Sequence: "small", Number: ptr(int64(1)), Reason: "x"})
	check("forbidden void", err, allot.ErrForbidden)

	// In flight: concurrent calls with one key either get the same
	// numbers or ErrIdempotencyInFlight.
	if _, err := admin.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "race", Mode: allot.ModeGapless, AllowOverlap: true}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 16)
	firsts := make([]int64, 16)
	for i := range errs {
		wg.Go(func() {
			res, err := cl.Next(ctx, allot.NextParams{Sequence: "race", IdempotencyKey: "same"})
			errs[i] = err
			if err == nil {
				firsts[i] = res.First
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			check("in flight", err, allot.ErrIdempotencyInFlight)
		} else if firsts[i] != 1 {
			t.Fatalf("one key, different numbers: %v", firsts)
		}
	}
	if p := (&client.Problem{Status: 409, Code: "idempotency_in_flight"}); !errors.Is(p, allot.ErrIdempotencyInFlight) {
		t.Fatal("idempotency_in_flight does not unwrap")
	}

	if err := s.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	check("closed ready", cl.Ready(ctx), allot.ErrClosed)
	_, err = cl.Next(ctx, allot.NextParams{Sequence: "small"})
	check("closed next", err, allot.ErrClosed)
}

func TestLocalValidation(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	cl := s.client(t, adminKey)
	if _, err := cl.SequenceGet(ctx, ""); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("empty name: %v", err)
	}
	if _, err := cl.Next(ctx, allot.NextParams{}); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("empty sequence: %v", err)
	}
	if _, err := cl.SequenceParse(ctx, "x", ""); !errors.Is(err, allot.ErrInvalid) {
		t.Fatalf("empty id: %v", err)
	}
}

// TestEscaping checks that names and IDs reach the server whole, even
// "." and "..", which would otherwise be cleaned out of the path.
func TestEscaping(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	cl := s.client(t, adminKey)
	if _, err := cl.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "odd", Format: "a/b ?{n}#%"}); err != nil {
		t.Fatal(err)
	}
	res, err := cl.Next(ctx, allot.NextParams{Sequence: "odd"})
	if err != nil || res.IDs[0] != "a/b ?1#%" {
		t.Fatalf("Next: %+v, %v", res, err)
	}
	parsed, err := cl.SequenceParse(ctx, "odd", res.IDs[0])
	// Cached: handed out from the server's lease, not yet settled.
	if err != nil || parsed.Number != 1 || parsed.Status != allot.StatusLeased {
		t.Fatalf("SequenceParse: %+v, %v", parsed, err)
	}
	if _, err := cl.SequenceVoid(ctx, allot.VoidParams{Sequence: "odd", ID: res.IDs[0], Reason: "test"}); err != nil {
		t.Fatalf("SequenceVoid: %v", err)
	}
	for _, id := range []string{".", "..", "../..", "a/../b"} {
		_, err := cl.SequenceParse(ctx, "odd", id)
		var p *client.Problem
		if !errors.As(err, &p) || p.Code != "invalid_request" || p.Field != "id" {
			t.Fatalf("SequenceParse(%q): %v", id, err)
		}
	}
	for _, name := range []string{".", "..", "a/b"} {
		if _, err := cl.SequenceGet(ctx, name); !errors.Is(err, allot.ErrNotFound) {
			t.Fatalf("SequenceGet(%q): %v", name, err)
		}
	}
}

func TestBaseURLPrefix(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, func(h http.Handler) http.Handler { return http.StripPrefix("/allot", h) })
	c, err := client.New(s.srv.URL+"/allot/", client.WithKey(adminKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SequenceCreate(ctx, allot.SequenceCreateParams{Name: "p"}); err != nil {
		t.Fatalf("via prefix: %v", err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("Ready via prefix: %v", err)
	}
}

func TestNew(t *testing.T) {
	for _, bad := range []string{"", "ftp://x", "http://", "http://x/?a=b", "http://x/#f", "http://u:p@x", "http://[::1"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
	if _, err := client.New("https://allot.example.com/", client.WithHTTPClient(nil)); err != nil {
		t.Errorf("New: %v", err)
	}
}

// TestForeignErrors checks responses that are not allot problems, such as
// a proxy's error page.
func TestForeignErrors(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
		case "/v1/sequences/gone":
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"sequences":[`) // truncated
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Ready(ctx)
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != 502 || p.Code != "" || p.Unwrap() != nil || !strings.Contains(p.Detail, "bad gateway") {
		t.Fatalf("502: %#v", err)
	}
	if _, err := c.SequenceGet(ctx, "gone"); !errors.Is(err, allot.ErrNotFound) {
		t.Fatalf("plain 404: %v", err)
	}
	if _, err := c.SequenceList(ctx); err == nil || errors.As(err, &p) {
		t.Fatalf("truncated body: %v", err)
	}
}

// wantProblem checks that err is a complete *client.Problem that unwraps
// to want, and returns it.
func wantProblem(t *testing.T, name string, err, want error) *client.Problem {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v is not %v", name, err, want)
	}
	var p *client.Problem
	if !errors.As(err, &p) {
		t.Fatalf("%s: %T is not a *client.Problem", name, err)
	}
	if !errors.Is(p.Unwrap(), want) || p.Status == 0 || p.Code == "" || p.Title == "" || p.Detail == "" || p.Type == "" || p.RequestID == "" {
		t.Fatalf("%s: incomplete problem %+v", name, p)
	}
	return p
}
