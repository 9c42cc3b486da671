package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
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
	"github.com/allot/allot/metrics"
	"github.com/allot/allot/wire"
)

// Role is what a bearer token may do.
type Role string

const (
	// RoleAdmin may call every route.
	RoleAdmin Role = "admin"
	// RoleClient may take numbers and confirm reserved ones, read
	// sequences and IDs, claim, confirm, release, extend and cancel
	// (refund) claims, and read pools and claims. Creating and changing
	// sequences and pools, voids, closing periods and ledgers need
	// RoleAdmin.
	RoleClient Role = "client"
	// RoleMetrics may only read /metrics: every other route that needs a
	// key answers 403 forbidden to it.
	RoleMetrics Role = "metrics"
)

// Config configures a Server.
type Config struct {
	// Service serves the requests. Required.
	Service *allot.Service
	// Keys maps bearer tokens to roles. An empty map disables
	// authentication: every request may do everything, /metrics included
	// (only sensible on a loopback address). With keys, /metrics needs an
	// admin or metrics key; Server.MetricsHandler serves the same metrics
	// without one, for a separate listen address.
	Keys map[string]Role
	// Logger receives error logs, an access log of 4xx and 5xx responses
	// at Info (rate-limited per route and status, see the package doc),
	// and an access log of every request at Debug. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// Registry is where metrics are registered and what /metrics serves.
	// Defaults to Metrics' registry, or a new one.
	Registry *prometheus.Registry
	// Metrics records HTTP and batch metrics. Create it with metrics.New
	// before the Service so it can also be the Service's Observer
	// (allot.Config.Metrics). Defaults to metrics.New(Registry).
	Metrics *metrics.Metrics
	// RequestTimeout bounds each request: past it the request is
	// cancelled (what it took is given back) and answered 503. The
	// Service's StoreTimeout bounds the database calls inside it.
	// Defaults to 10s.
	RequestTimeout time.Duration
}

// RequestTimeoutDefault is the default of Config.RequestTimeout.
const RequestTimeoutDefault = 10 * time.Second

// Server is the HTTP API. Create it with New.
type Server struct {
	svc        *allot.Service
	keys       map[string]Role
	log        *slog.Logger
	reg        *prometheus.Registry
	mets       *metrics.Metrics
	prom       http.Handler
	mux        *http.ServeMux
	metricsMux *http.ServeMux // MetricsHandler
	errs       *errorLog
	timeout    time.Duration

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
		if role != RoleAdmin && role != RoleClient && role != RoleMetrics {
			return nil, fmt.Errorf("httpapi: Config.Keys: role %q is not %q, %q or %q", role, RoleAdmin, RoleClient, RoleMetrics)
		}
		keys[k] = role
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.Metrics == nil:
		cfg.Metrics = metrics.New(cfg.Registry)
	case cfg.Registry != nil && cfg.Registry != cfg.Metrics.Registry():
		return nil, errors.New("httpapi: Config.Metrics was created on a different registry than Config.Registry")
	}
	cfg.Registry = cfg.Metrics.Registry()
	if err := cfg.Metrics.CollectService(cfg.Service, cfg.Logger); err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	s := &Server{
		svc:        cfg.Service,
		keys:       keys,
		log:        cfg.Logger,
		reg:        cfg.Registry,
		mets:       cfg.Metrics,
		reqPrefix:  hex.EncodeToString(b[:]) + "-",
		mux:        http.NewServeMux(),
		metricsMux: http.NewServeMux(),
		errs:       newErrorLog(cfg.Logger),
		timeout:    cfg.RequestTimeout,
		textSafe:   make(map[string]bool),
	}
	if s.timeout <= 0 {
		s.timeout = RequestTimeoutDefault
	}
	s.prom = promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError),
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
	})
	s.mount(s.mux, routes, "no such route: see /openapi.json for the API")
	s.mount(s.metricsMux, metricsRoutes, "no such route: this address serves only GET /metrics")
	return s, nil
}

// Handler returns the http.Handler serving the API.
func (s *Server) Handler() http.Handler { return s.mux }

// MetricsHandler returns an http.Handler that serves GET /metrics, the
// same metrics as Handler's /metrics, without authentication, and 404
// for every other path. It is meant for a separate listen address that
// only the metrics scraper can reach (cmd/allot may open one), so the
// scraper needs no key. Whoever can reach that address can read every
// pool's and sequence's figures.
func (s *Server) MetricsHandler() http.Handler { return s.metricsMux }

// mount registers every route of table on mux, a 405 answer for each
// path with the wrong method, and a 404 answer with notFound for
// everything else.
func (s *Server) mount(mux *http.ServeMux, table []route, notFound string) {
	allowed := map[string][]string{}
	var paths []string
	for _, rt := range table {
		pattern := rt.method + " " + rt.path
		ep := s.endpoint(pattern, rt.access, rt.handle)
		ep.checkQuery, ep.query = true, rt.query
		mux.Handle(pattern, ep)
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
			status: http.StatusMethodNotAllowed, code: wire.CodeMethodNotAllowed,
			detail: fmt.Sprintf("%s does not accept this method: use %s", p, allow),
		}
		mux.Handle(p, s.endpoint(p, public, func(s *Server, w http.ResponseWriter, r *http.Request) outcome {
			w.Header().Set("Allow", allow)
			return s.problem(w, r, err)
		}))
	}
	errNotFound := &apiError{status: http.StatusNotFound, code: wire.CodeNotFound, detail: notFound}
	mux.Handle("/", s.endpoint("unmatched", public, func(s *Server, w http.ResponseWriter, r *http.Request) outcome {
		return s.problem(w, r, errNotFound)
	}))
}

// endpoint is one registered pattern with everything resolved up front,
// so a request costs one map lookup for auth and one histogram Observe.
type endpoint struct {
	s       *Server
	pattern string
	access  access
	// checkQuery is set for the routes of a table: they refuse query
	// parameters not in query. (The 404 and 405 answers take any.)
	checkQuery bool
	query      []string
	handle     func(s *Server, w http.ResponseWriter, r *http.Request) outcome
	obs        *metrics.RouteObservers
	limits     statusLimiters // of the access log of errors
}

func (s *Server) endpoint(pattern string, a access, h func(*Server, http.ResponseWriter, *http.Request) outcome) *endpoint {
	return &endpoint{s: s, pattern: pattern, access: a, handle: h, obs: s.mets.Route(pattern), limits: statusLimiters{log: s.errs, route: pattern}}
}

var (
	errNoKey       = allot.Errorf(allot.ErrUnauthorized, "missing or unknown bearer token: send the header Authorization: Bearer <key>")
	errNotAdmin    = allot.Errorf(allot.ErrForbidden, "this operation needs an admin key")
	errNotMetrics  = allot.Errorf(allot.ErrForbidden, "/metrics needs an admin or metrics key")
	errMetricsOnly = allot.Errorf(allot.ErrForbidden, "a metrics key may only read /metrics: this operation needs a client or admin key")
)

const headerRequestID = "X-Request-Id"

// ServeHTTP authenticates, checks the query parameters, runs the
// handler, recovers panics, records the duration and writes the access
// log.
func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s := e.s
	out := outcome{status: http.StatusInternalServerError, code: wire.CodeInternal}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			out = s.problem(w, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
		}
		d := time.Since(start)
		e.obs.Get(out.status).Observe(d.Seconds())
		e.logRequest(w, r, out, start, d)
	}()
	w.Header()[headerRequestID] = []string{s.requestID(r)}
	if e.access != public && len(s.keys) > 0 {
		role, ok := s.keys[bearer(r)]
		var err error
		switch {
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="allot"`)
			err = errNoKey
		case role == RoleAdmin:
		case e.access == metricsLevel:
			if role != RoleMetrics {
				err = errNotMetrics
			}
		case e.access == adminLevel:
			err = errNotAdmin
		case role == RoleMetrics:
			err = errMetricsOnly
		}
		if err != nil {
			out = s.problem(w, r, err)
			return
		}
	}
	if e.checkQuery && r.URL.RawQuery != "" {
		if err := e.checkQueryParams(r.URL.RawQuery); err != nil {
			out = s.problem(w, r, err)
			return
		}
	}
	if e.access != public {
		ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	out = e.handle(s, w, r)
}

// errQuerySemicolon refuses a query string net/url would not parse whole.
var errQuerySemicolon = &apiError{
	status: http.StatusBadRequest, code: wire.CodeInvalid,
	detail: "the query string contains ';': separate query parameters with '&' and escape a ';' in a value as %3B",
}

// checkQueryParams refuses a query parameter the route does not take, one
// given twice or empty (but for the cursor after), and a query string url.ParseQuery would not parse whole
// (so the handler sees exactly what was sent). It costs nothing for a
// request without a query string, which the caller skips.
func (e *endpoint) checkQueryParams(raw string) error {
	var seen uint64 // bit i: e.query[i] was given
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		if strings.Contains(pair, ";") {
			return errQuerySemicolon
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return &apiError{status: http.StatusBadRequest, code: wire.CodeInvalid, field: rawKey, detail: fmt.Sprintf(
				"query parameter %q is not valid URL encoding: write a '%%' in it as %%25", rawKey)}
		}
		i := slices.Index(e.query, key)
		if i < 0 {
			accepts := "takes no query parameters"
			if len(e.query) > 0 {
				accepts = "takes only the query parameters " + strings.Join(e.query, ", ")
			}
			return &apiError{status: http.StatusBadRequest, code: wire.CodeInvalid, field: key, detail: fmt.Sprintf(
				"unknown query parameter %q: %s %s", key, e.pattern, accepts)}
		}
		if seen&(1<<i) != 0 {
			return &apiError{status: http.StatusBadRequest, code: wire.CodeInvalid, field: key, detail: fmt.Sprintf(
				"query parameter %q is given more than once: give it once", key)}
		}
		seen |= 1 << i
		if _, err := url.QueryUnescape(rawValue); err != nil {
			return &apiError{status: http.StatusBadRequest, code: wire.CodeInvalid, field: key, detail: fmt.Sprintf(
				"the value of query parameter %q is not valid URL encoding: write a '%%' in it as %%25", key)}
		}
		if rawValue == "" && key != "after" {
			// "?customer=" would otherwise read as no filter at all. An
			// empty cursor is the first page, as a paging loop sends it.
			return &apiError{status: http.StatusBadRequest, code: wire.CodeInvalid, field: key, detail: fmt.Sprintf(
				"query parameter %q is empty: give a value, or leave it out", key)}
		}
	}
	return nil
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
