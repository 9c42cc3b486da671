package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/allot/allot"
)

// Role is what a bearer token may do.
type Role string

const (
	// RoleAdmin may call every route.
	RoleAdmin Role = "admin"
	// RoleClient may take numbers, read sequences and IDs, claim,
	// confirm, release and extend units of pools, and read pools and
	// claims. Creating and changing sequences and pools, voids, ledgers
	// and the audit need RoleAdmin.
	RoleClient Role = "client"
)

// Config configures a Server.
type Config struct {
	// Service serves the requests. Required.
	Service *allot.Service
	// Keys maps bearer tokens to roles. An empty map disables
	// authentication: every request may do everything (only sensible on a
	// loopback address).
	Keys map[string]Role
	// Logger receives error logs, and access logs at Debug level.
	// Defaults to slog.Default().
	Logger *slog.Logger
	// Registry is where metrics are registered and what /metrics serves.
	// Defaults to Metrics' registry, or a new one.
	Registry *prometheus.Registry
	// Metrics records HTTP and batch metrics. Create it with NewMetrics
	// before the Service so it can also be the Service's Observer
	// (allot.Config.Metrics). Defaults to NewMetrics(Registry).
	Metrics *Metrics
}

// Server is the HTTP API. Create it with New.
type Server struct {
	svc  *allot.Service
	keys map[string]Role
	log  *slog.Logger
	reg  *prometheus.Registry
	mets *Metrics
	prom http.Handler
	mux  *http.ServeMux

	reqPrefix string        // random per Server, so generated ids don't repeat across restarts
	reqSeq    atomic.Uint64 // generated request ids count up from here

	textMu   sync.RWMutex
	textSafe map[string]bool // sequence name -> its IDs fit text/plain (formats never change)
}

// New checks cfg and returns a Server. It registers the sequence and pool
// gauges on the registry, so each registry serves one Server.
func New(cfg Config) (*Server, error) {
	if cfg.Service == nil {
		return nil, errors.New("httpapi: Config.Service is required")
	}
	keys := make(map[string]Role, len(cfg.Keys))
	for k, role := range cfg.Keys {
		if k == "" || strings.ContainsAny(k, " \t\r\n") {
			return nil, errors.New("httpapi: Config.Keys: a key must be non-empty and contain no white space")
		}
		if role != RoleAdmin && role != RoleClient {
			return nil, fmt.Errorf("httpapi: Config.Keys: role %q is not %q or %q", role, RoleAdmin, RoleClient)
		}
		keys[k] = role
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.Metrics == nil:
		cfg.Metrics = NewMetrics(cfg.Registry)
	case cfg.Registry != nil && cfg.Registry != cfg.Metrics.reg:
		return nil, errors.New("httpapi: Config.Metrics was created on a different registry than Config.Registry")
	}
	cfg.Registry = cfg.Metrics.reg
	seqs := &sequenceCollector{svc: cfg.Service, log: cfg.Logger}
	if err := cfg.Registry.Register(seqs); err != nil {
		return nil, fmt.Errorf("httpapi: register sequence gauges (one Server per registry): %w", err)
	}
	if err := cfg.Registry.Register(&poolCollector{svc: cfg.Service, log: cfg.Logger}); err != nil {
		cfg.Registry.Unregister(seqs)
		return nil, fmt.Errorf("httpapi: register pool gauges (one Server per registry): %w", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	s := &Server{
		svc:       cfg.Service,
		keys:      keys,
		log:       cfg.Logger,
		reg:       cfg.Registry,
		mets:      cfg.Metrics,
		reqPrefix: hex.EncodeToString(b[:]) + "-",
		mux:       http.NewServeMux(),
		textSafe:  make(map[string]bool),
	}
	s.prom = promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError),
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
	})
	s.mount()
	return s, nil
}

// Handler returns the http.Handler serving the API.
func (s *Server) Handler() http.Handler { return s.mux }

// mount registers every route of the table, a 405 answer for each path
// with the wrong method, and a 404 answer for everything else.
func (s *Server) mount() {
	allowed := map[string][]string{}
	var paths []string
	for _, rt := range routes {
		pattern := rt.method + " " + rt.path
		s.mux.Handle(pattern, s.endpoint(pattern, rt.access, rt.handle))
		if _, ok := allowed[rt.path]; !ok {
			paths = append(paths, rt.path)
		}
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	for _, p := range paths {
		methods := allowed[p]
		if slices.Contains(methods, http.MethodGet) {
			methods = append(methods, http.MethodHead)
		}
		allow := strings.Join(methods, ", ")
		err := &apiError{
			status: http.StatusMethodNotAllowed, code: codeMethodNotAllowed,
			detail: fmt.Sprintf("%s does not accept this method: use %s", p, allow),
		}
		s.mux.Handle(p, s.endpoint(p, public, func(s *Server, w http.ResponseWriter, r *http.Request) int {
			w.Header().Set("Allow", allow)
			return s.problem(w, r, err)
		}))
	}
	notFound := &apiError{
		status: http.StatusNotFound, code: codeNotFound,
		detail: "no such route: see /openapi.json for the API",
	}
	s.mux.Handle("/", s.endpoint("unmatched", public, func(s *Server, w http.ResponseWriter, r *http.Request) int {
		return s.problem(w, r, notFound)
	}))
}

// endpoint is one registered pattern with everything resolved up front,
// so a request costs one map lookup for auth and one histogram Observe.
type endpoint struct {
	s       *Server
	pattern string
	access  access
	handle  func(s *Server, w http.ResponseWriter, r *http.Request) int
	obs     *codeObservers
}

func (s *Server) endpoint(pattern string, a access, h func(*Server, http.ResponseWriter, *http.Request) int) *endpoint {
	return &endpoint{s: s, pattern: pattern, access: a, handle: h, obs: s.mets.route(pattern)}
}

var (
	errNoKey    = allot.Errorf(allot.ErrUnauthorized, "missing or unknown bearer token: send the header Authorization: Bearer <key>")
	errNotAdmin = allot.Errorf(allot.ErrForbidden, "this operation needs an admin key")
)

const headerRequestID = "X-Request-Id"

// ServeHTTP authenticates, runs the handler, recovers panics and records
// the duration.
func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s := e.s
	status := http.StatusInternalServerError
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			status = s.problem(w, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
		}
		d := time.Since(start)
		e.obs.get(status).Observe(d.Seconds())
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
				slog.String("request_id", w.Header().Get(headerRequestID)),
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.String("route", e.pattern), slog.Int("status", status), slog.Duration("duration", d))
		}
	}()
	w.Header()[headerRequestID] = []string{s.requestID(r)}
	if e.access != public && len(s.keys) > 0 {
		role, ok := s.keys[bearer(r)]
		switch {
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="allot"`)
			status = s.problem(w, r, errNoKey)
			return
		case e.access == adminLevel && role != RoleAdmin:
			status = s.problem(w, r, errNotAdmin)
			return
		}
	}
	status = e.handle(s, w, r)
}

// bearer returns the token of an "Authorization: Bearer <token>" header,
// or "".
func bearer(r *http.Request) string {
	h := r.Header["Authorization"]
	if len(h) != 1 {
		return ""
	}
	const scheme = "Bearer "
	v := h[0]
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return ""
	}
	return strings.TrimSpace(v[len(scheme):])
}

// requestID returns the caller's X-Request-Id if it is 1 to 128 visible
// ASCII characters, otherwise a new id.
func (s *Server) requestID(r *http.Request) string {
	if h := r.Header[headerRequestID]; len(h) == 1 && validRequestID(h[0]) {
		return h[0]
	}
	var buf [32]byte
	b := append(buf[:0], s.reqPrefix...)
	b = strconv.AppendUint(b, s.reqSeq.Add(1), 36)
	return string(b)
}

func validRequestID(v string) bool {
	if len(v) == 0 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' {
			return false
		}
	}
	return true
}
