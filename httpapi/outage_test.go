package httpapi

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/allot/allot"
	"github.com/allot/allot/internal/testdb"
	"github.com/allot/allot/internal/testkit"
	"github.com/allot/allot/postgres"
)

// TestStoreOutage: with PostgreSQL gone, every request is a quick 503 with
// Retry-After (never a 500 or a hang), /readyz gives the real reason, the
// log has a line per change of state rather than per failure, and the
// service comes back by itself. A frozen database (connections open, no
// answer) gives a 503 within the deadline.
func TestStoreOutage(t *testing.T) {
	base := testdb.Postgres(t)
	pu := testdb.PostgresBaseURL()
	proxy := testdb.NewProxy(t, hostPort(t, pu))
	ctx := context.Background()
	st, err := postgres.Open(ctx, proxy.URL(base)+"&pool_max_conns=4")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	logs := &testkit.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := prometheus.NewRegistry()
	svc := testdb.Service(t, allot.Config{Store: st, Logger: log, StoreTimeout: time.Second})
	api, err := New(Config{Service: svc, Logger: log, Registry: reg, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, svc: svc, api: api, reg: reg}
	e.srv = httptest.NewServer(api.Handler())
	t.Cleanup(e.srv.Close)
	e.hc = e.srv.Client()
	e.create(`{"name":"g","mode":"gapless"}`)
	e.pool(`{"name":"p","capacity":100,"per_customer":0}`)
	e.next("g", "")

	proxy.Stop()
	start := time.Now()
	n := 0
	for time.Since(start) < 3*time.Second {
		for _, call := range []struct{ method, path, body string }{
			{"POST", "/v1/sequences/g/next", ""},
			{"GET", "/v1/sequences/g", ""},
			{"POST", "/v1/pools/p/claims", `{"customer":"c"}`},
			{"GET", "/v1/pools/p", ""},
		} {
			t0 := time.Now()
			r := e.do(call.method, call.path, call.body)
			if d := time.Since(t0); d > 2500*time.Millisecond {
				t.Fatalf("%s %s took %s with the database gone", call.method, call.path, d)
			}
			if r.status != 503 || r.header.Get("Retry-After") == "" {
				t.Fatalf("%s %s with the database gone: %d %s (Retry-After %q)", call.method, call.path, r.status, r.body, r.header.Get("Retry-After"))
			}
			n++
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := e.do("GET", "/readyz", "")
	if r.status != 503 || !strings.Contains(string(r.body), "connect") {
		t.Fatalf("/readyz with the database gone: %d %s", r.status, r.body)
	}
	warns := strings.Count(logs.String(), "level=WARN")
	if warns > 4 {
		t.Fatalf("%d WARN lines for %d refused requests in 3 s: want one per change of state (and a summary per 30 s)\n%s", warns, n, logs.String())
	}
	if !strings.Contains(logs.String(), "store unavailable") {
		t.Fatalf("no line says the store is unavailable:\n%s", logs.String())
	}

	proxy.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r := e.do("POST", "/v1/sequences/g/next", ""); r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the service did not recover once the database was back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "store available again") {
		if time.Now().After(deadline) {
			t.Fatalf("no line says the store is back:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Frozen: the connection stays, no answer comes.
	proxy.Freeze()
	t0 := time.Now()
	r = e.do("POST", "/v1/sequences/g/next", "")
	took := time.Since(t0)
	proxy.Thaw()
	if r.status != 503 || took > 4*time.Second {
		t.Fatalf("next with the database frozen: %d after %s: %s", r.status, took, r.body)
	}
	// Nothing was lost: every number up to the counter is issued, voided
	// with a reason, or will be found by the resolver.
	time.Sleep(1500 * time.Millisecond)
	if err := svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var rep auditReport
	e.ok(e.do("GET", "/v1/audit", ""), 200, &rep)
	if !rep.OK {
		t.Fatalf("audit after the outage: %+v", rep)
	}
}

func hostPort(t *testing.T, u string) string {
	t.Helper()
	i := strings.Index(u, "@")
	rest := u[i+1:]
	if j := strings.IndexAny(rest, "/?"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}
