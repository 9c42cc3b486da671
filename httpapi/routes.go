package httpapi

import "net/http"

// access is who may call a route.
type access uint8

const (
	public       access = iota // anyone, no token needed
	clientLevel                // client or admin keys
	adminLevel                 // admin keys only
	metricsLevel               // metrics or admin keys
)

// route is one operation of the API.
type route struct {
	method string
	path   string // a Go 1.22 ServeMux path pattern, also the OpenAPI path
	access access
	// query lists the query parameters the route accepts; any other, or
	// one given twice, is refused with 400 before the handler runs.
	query []string
	// handle serves the request and returns what it wrote.
	handle func(s *Server, w http.ResponseWriter, r *http.Request) outcome
}

// outcome is what a handler wrote: the status and, for a problem, its
// code ("" otherwise). The endpoint records both.
type outcome struct {
	status int
	code   string
}

// Query parameters of the routes that take any.
var (
	ledgerQuery    = []string{"after", "limit"}
	dateQuery      = []string{"date"}
	claimListQuery = []string{"customer", "status", "after", "limit"}
)

// routes is the whole API. Server.Handler registers exactly these, and the
// OpenAPI test checks /openapi.json against this table.
var routes = []route{
	{http.MethodPost, "/v1/sequences", adminLevel, nil, (*Server).sequenceCreate},
	{http.MethodGet, "/v1/sequences", clientLevel, nil, (*Server).sequenceList},
	{http.MethodGet, "/v1/sequences/{name}", clientLevel, dateQuery, (*Server).sequenceGet},
	{http.MethodPatch, "/v1/sequences/{name}", adminLevel, nil, (*Server).sequencePatch},
	{http.MethodPost, "/v1/sequences/{name}/next", clientLevel, nil, (*Server).next},
	{http.MethodPost, "/v1/sequences/{name}/labels", clientLevel, nil, (*Server).labels},
	{http.MethodGet, "/v1/sequences/{name}/labels", clientLevel, labelsQuery, (*Server).reprint},
	{http.MethodPost, "/v1/sequences/{name}/void", adminLevel, nil, (*Server).sequenceVoid},
	{http.MethodGet, "/v1/sequences/{name}/ids/{id}", clientLevel, nil, (*Server).sequenceParse},
	{http.MethodGet, "/v1/sequences/{name}/ledger", adminLevel, ledgerQuery, (*Server).sequenceLedger},
	{http.MethodPost, "/v1/sequences/{name}/confirm", clientLevel, nil, (*Server).sequenceConfirm},
	{http.MethodPost, "/v1/sequences/{name}/periods/{period}/close", adminLevel, nil, (*Server).sequencePeriodClose},
	{http.MethodPost, "/v1/sequences/{name}/periods/{period}/reopen", adminLevel, nil, (*Server).sequencePeriodReopen},
	{http.MethodPost, "/v1/pools", adminLevel, nil, (*Server).poolCreate},
	{http.MethodGet, "/v1/pools", clientLevel, nil, (*Server).poolList},
	{http.MethodGet, "/v1/pools/{name}", clientLevel, nil, (*Server).poolGet},
	{http.MethodPatch, "/v1/pools/{name}", adminLevel, nil, (*Server).poolPatch},
	{http.MethodPost, "/v1/pools/{name}/claims", clientLevel, nil, (*Server).claimCreate},
	{http.MethodGet, "/v1/pools/{name}/claims", clientLevel, claimListQuery, (*Server).claimList},
	{http.MethodGet, "/v1/claims/{id}", clientLevel, nil, (*Server).claimGet},
	{http.MethodPost, "/v1/claims/{id}/confirm", clientLevel, nil, (*Server).claimConfirm},
	{http.MethodPost, "/v1/claims/{id}/release", clientLevel, nil, (*Server).claimRelease},
	{http.MethodPost, "/v1/claims/{id}/extend", clientLevel, nil, (*Server).claimExtend},
	{http.MethodPost, "/v1/claims/{id}/cancel", clientLevel, nil, (*Server).claimCancel},
	{http.MethodGet, "/v1/audit", adminLevel, nil, (*Server).audit},
	{http.MethodGet, "/healthz", public, nil, (*Server).healthz},
	{http.MethodGet, "/readyz", public, nil, (*Server).readyz},
	{http.MethodGet, "/metrics", metricsLevel, nil, (*Server).metrics},
	{http.MethodGet, "/openapi.json", public, nil, (*Server).openapi},
}

// metricsRoutes is what MetricsHandler serves: /metrics without
// authentication.
var metricsRoutes = []route{
	{http.MethodGet, "/metrics", public, nil, (*Server).metrics},
}
