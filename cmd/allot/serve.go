package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/allot/allot"
	"github.com/allot/allot/httpapi"
	"github.com/allot/allot/metrics"
)

// listenDefault is loopback: with no API keys allot must not be reachable
// from other machines.
const listenDefault = "127.0.0.1:7070"

// shutdownBudget is how long a graceful shutdown may take in all.
const shutdownBudget = 10 * time.Second

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("allot serve", `allot serve [flags]

Runs the HTTP API. With no flags it stores everything in ./allot.db (SQLite)
and listens on 127.0.0.1:7070. With no API keys it only listens on loopback.

API keys are "role:token" pairs, tokens at least 16 characters; roles are
admin (everything), client (take, confirm and parse numbers, read
sequences; claim, confirm, release, extend and cancel units of pools, read
pools and claims) and metrics (read /metrics only). Pass them in
ALLOT_API_KEYS or a --keys-file with one "role:token" per line (# starts a
comment). With keys, /metrics needs an admin or metrics key; --metrics-listen
serves it without one on a separate address.

Every request has a deadline (--request-timeout) that also bounds the
database calls made for it: a database that is down or frozen answers 503
with Retry-After. SIGTERM or SIGINT stops the server gracefully: requests in
flight finish, and the unused rest of every lease goes back to the counter.`, stdout)
	listen := fs.String("listen", envOr(getenv, "ALLOT_LISTEN", listenDefault), "listen on `ADDRESS`, host:port (env ALLOT_LISTEN)")
	storeURL := fs.String("store", envOr(getenv, "ALLOT_STORE", storeDefault), "the store's `URL`: sqlite:///path/file.db or postgres://… (env ALLOT_STORE)")
	keysFile := fs.String("keys-file", getenv("ALLOT_KEYS_FILE"), "read API keys from `FILE`, one role:token per line (env ALLOT_KEYS_FILE)")
	insecure := fs.Bool("insecure", false, "allow listening on a non-loopback address without API keys")
	logLevel := fs.String("log-level", envOr(getenv, "ALLOT_LOG_LEVEL", "info"), "log at `LEVEL`: debug, info, warn or error (env ALLOT_LOG_LEVEL)")
	logFormat := fs.String("log-format", envOr(getenv, "ALLOT_LOG_FORMAT", "json"), "log in `FORMAT`: json or text (env ALLOT_LOG_FORMAT)")
	timeout := fs.Duration("request-timeout", httpapi.RequestTimeoutDefault, "give each request at most `DURATION`, database calls included")
	metricsListen := fs.String("metrics-listen", getenv("ALLOT_METRICS_LISTEN"), "also serve /metrics, without a key, on `ADDRESS` (env ALLOT_METRICS_LISTEN)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("serve takes no arguments, got %s", quoteArgs(pos))
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	keys, err := loadKeys(getenv("ALLOT_API_KEYS"), *keysFile)
	if err != nil {
		return err
	}
	if *timeout < 100*time.Millisecond {
		return usagef("--request-timeout must be at least 100ms, got %s", *timeout)
	}
	if len(keys) == 0 && !isLoopback(*listen) && !*insecure {
		return usagef("refusing to listen on %s without API keys: set ALLOT_API_KEYS or --keys-file, listen on 127.0.0.1, or pass --insecure", *listen)
	}

	st, err := openServingStore(ctx, *storeURL)
	if err != nil {
		return err
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := metrics.New(reg)
	cfg := allot.Config{Store: st, Logger: log, Metrics: metrics, StoreTimeout: *timeout}
	if fp := getenv("ALLOT_FAILPOINT"); fp != "" {
		// For crash tests only: kill -9 this process at the named point.
		log.Warn("failpoint armed: this process will kill itself", "failpoint", fp)
		cfg.Failpoint = func(name string) {
			if name == fp {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
	}
	svc, err := allot.New(ctx, cfg)
	if err != nil {
		return err
	}
	api, err := httpapi.New(httpapi.Config{Service: svc, Keys: keys, Logger: log, Registry: reg, Metrics: metrics, RequestTimeout: *timeout})
	if err != nil {
		_ = svc.Close(context.Background())
		return err
	}
	if *metricsListen != "" {
		mln, err := net.Listen("tcp", *metricsListen)
		if err != nil {
			_ = svc.Close(context.Background())
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		msrv := &http.Server{Handler: api.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = msrv.Serve(mln) }()
		defer msrv.Close()
		log.Info("metrics served without a key", "listen", mln.Addr().String())
	}

	if len(keys) == 0 {
		// Only now that the store is open and the server about to listen:
		// a server that exits on a bad --store has nothing to warn about.
		log.Warn("no API keys configured: every request is allowed", "listen", *listen, "insecure", *insecure)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("allot serving", "listen", ln.Addr().String(), "store", redactURL(*storeURL), "owner", svc.Owner(), "version", version)
	fmt.Fprintf(stdout, "allot listening on http://%s\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		_ = svc.Close(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	// Graceful shutdown: stop accepting, let requests in flight finish,
	// then void the unused rest of leased blocks. All within the budget.
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if err := svc.Close(sctx); err != nil {
		log.Error("service close", "err", err)
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: use json or text", format)
}

// loadKeys reads API keys from a "role:token,…" list and a file.
func loadKeys(list, file string) (map[string]httpapi.Role, error) {
	keys := make(map[string]httpapi.Role)
	add := func(src, entry string) error {
		entry = strings.TrimSpace(entry)
		if entry == "" || strings.HasPrefix(entry, "#") {
			return nil
		}
		role, token, ok := strings.Cut(entry, ":")
		if !ok {
			role, token, ok = strings.Cut(entry, " ")
		}
		role, token = strings.TrimSpace(role), strings.TrimSpace(token)
		if !ok || token == "" {
			return usagef("%s: API key %q must be role:token", src, redactToken(entry))
		}
		r := httpapi.Role(role)
		if r != httpapi.RoleAdmin && r != httpapi.RoleClient && r != httpapi.RoleMetrics {
			return usagef("%s: role %q must be admin, client or metrics", src, role)
		}
		if len(token) < 16 {
			return usagef("%s: the %s token is too short: use at least 16 random characters", src, role)
		}
		keys[token] = r
		return nil
	}
	for _, e := range strings.Split(list, ",") {
		if err := add("ALLOT_API_KEYS", e); err != nil {
			return nil, err
		}
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, usagef("--keys-file: %v", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			if err := add(fmt.Sprintf("%s:%d", file, line), sc.Text()); err != nil {
				return nil, err
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("--keys-file: %w", err)
		}
	}
	return keys, nil
}

func redactToken(entry string) string {
	if i := strings.IndexAny(entry, ": "); i >= 0 {
		return entry[:i+1] + "…"
	}
	return "…"
}

// isLoopback reports whether addr only accepts connections from this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			if k := strings.Index(u[j+3:i], ":"); k >= 0 {
				return u[:j+3+k] + ":xxxxx" + u[i:]
			}
		}
	}
	return u
}
