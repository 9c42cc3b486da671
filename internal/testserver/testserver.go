// Package testserver starts the real allot HTTP API in process, over a
// fresh SQLite file, for the tests of the packages that talk to it (the Go
// client, the CLI). Nothing is mocked: it is the Service, the httpapi
// Server and a real listener.
package testserver

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/allot/allot"
	"github.com/allot/allot/httpapi"
	"github.com/allot/allot/metrics"
	"github.com/allot/allot/sqlite"
)

// Options change the server a test starts. The zero value is a server
// without API keys that logs errors only.
type Options struct {
	// Keys are the API keys (none: every request is allowed).
	Keys map[string]httpapi.Role
	// Configure may change the Service's config, e.g. to inject a clock.
	Configure func(*allot.Config)
	// Wrap may wrap the handler, e.g. to break some responses.
	Wrap func(http.Handler) http.Handler
	// Log is where the server logs (errors only); nil discards.
	Log io.Writer
}

// Server is a running API; everything is closed when the test ends.
type Server struct {
	Service *allot.Service
	HTTP    *httptest.Server
	// URL is the server's base URL.
	URL string
}

// Start starts a server, failing the test if it can't.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "allot.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	log := slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelError}))
	m := metrics.New(nil)
	cfg := allot.Config{Store: st, Logger: log, Metrics: m}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	svc, err := allot.New(ctx, cfg)
	if err != nil {
		t.Fatalf("allot.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Close(ctx)
	})
	api, err := httpapi.New(httpapi.Config{Service: svc, Logger: log, Metrics: m, Keys: o.Keys})
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	var h http.Handler = api.Handler()
	if o.Wrap != nil {
		h = o.Wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Server{Service: svc, HTTP: srv, URL: srv.URL}
}
