package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testdb"
	"github.com/allot/allot/metrics"
	"github.com/allot/allot/sqlite"
	"github.com/allot/allot/wire"
)

// env is a real Service over a real SQLite file, served over HTTP.
type env struct {
	t      testing.TB
	dbPath string
	svc    *allot.Service
	api    *Server
	srv    *httptest.Server
	reg    *prometheus.Registry
	hc     *http.Client
}

func newEnv(t testing.TB, keys map[string]Role) *env {
	t.Helper()
	return newEnvWith(t, keys, nil)
}

// newEnvWith is newEnv with a chance to change the Service's config, e.g.
// to inject a clock.
func newEnvWith(t testing.TB, keys map[string]Role, configure func(*allot.Config)) *env {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "allot.db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	reg := prometheus.NewRegistry()
	metrics := metrics.New(reg)
	cfg := allot.Config{Store: st, Logger: log, Metrics: metrics}
	if configure != nil {
		configure(&cfg)
	}
	svc := testdb.Service(t, cfg)
	api, err := New(Config{Service: svc, Keys: keys, Logger: log, Registry: reg, Metrics: metrics})
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, dbPath: dbPath, svc: svc, api: api, srv: srv, reg: reg, hc: srv.Client()}
}

// resp is a response read whole.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; hdr is name, value pairs.
func (e *env) do(method, path, body string, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// ok asserts a 2xx JSON response and decodes it into v (if not nil).
func (e *env) ok(r resp, want int, v any) {
	e.t.Helper()
	if r.status != want {
		e.t.Fatalf("status %d, want %d; body: %s", r.status, want, r.body)
	}
	if v != nil {
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			e.t.Fatalf("Content-Type %q, want application/json", ct)
		}
		if err := json.Unmarshal(r.body, v); err != nil {
			e.t.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

// call sends a request that must answer status and returns its body
// decoded into a T.
func call[T any](e *env, status int, method, path, body string, hdr ...string) T {
	e.t.Helper()
	var v T
	e.ok(e.do(method, path, body, hdr...), status, &v)
	return v
}

// create makes a sequence from a JSON body.
func (e *env) create(body string) allot.SequenceState {
	e.t.Helper()
	return call[allot.SequenceState](e, http.StatusCreated, "POST", "/v1/sequences", body)
}

// next takes numbers.
func (e *env) next(name, body string, hdr ...string) allot.NextResult {
	e.t.Helper()
	return call[allot.NextResult](e, http.StatusOK, "POST", "/v1/sequences/"+name+"/next", body, hdr...)
}

// problem asserts r is a problem with status and code, and returns it.
func (e *env) problem(r resp, status int, code string) wire.Problem {
	e.t.Helper()
	return checkProblem(e.t, r.status, r.header, r.body, status, code)
}

func checkProblem(t testing.TB, gotStatus int, h http.Header, body []byte, status int, code string) wire.Problem {
	t.Helper()
	if gotStatus != status {
		t.Fatalf("status %d, want %d; body: %s", gotStatus, status, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body: %s", ct, body)
	}
	var p wire.Problem
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decode problem %s: %v", body, err)
	}
	if p.Code != code {
		t.Fatalf("code %q, want %q; body: %s", p.Code, code, body)
	}
	if p.Status != status || p.Type != "urn:allot:problem:"+code || p.Title == "" || p.Detail == "" {
		t.Fatalf("incomplete problem: %s", body)
	}
	if p.RequestID == "" || p.RequestID != h.Get("X-Request-Id") {
		t.Fatalf("problem request_id %q, header %q", p.RequestID, h.Get("X-Request-Id"))
	}
	return p
}

// wantMetrics checks that GET /metrics answers with every line of wants.
func (e *env) wantMetrics(wants ...string) {
	e.t.Helper()
	r := e.do("GET", "/metrics", "")
	if r.status != 200 {
		e.t.Fatalf("metrics %d", r.status)
	}
	body := string(r.body)
	failed := false
	for _, want := range wants {
		if !strings.Contains(body, want) {
			e.t.Errorf("metrics lack %q", want)
			failed = true
		}
	}
	if failed {
		e.t.Log(body)
	}
}
