package httpapi

import "net/http"

// access is who may call a route.
type access uint8

const (
	public      access = iota // anyone, no token needed
	clientLevel               // client or admin keys
	adminLevel                // admin keys only
)

// route is one operation of the API.
type route struct {
	method string
	path   string // a Go 1.22 ServeMux path pattern, also the OpenAPI path
	access access
	// handle serves the request and returns the status it wrote.
	handle func(s *Server, w http.ResponseWriter, r *http.Request) int
}

// routes is the whole API. Server.Handler registers exactly these, and the
// OpenAPI test checks /openapi.json against this table.
var routes = []route{
	{http.MethodPost, "/v1/sequences", adminLevel, (*Server).sequenceCreate},
	{http.MethodGet, "/v1/sequences", clientLevel, (*Server).sequenceList},
	{http.MethodGet, "/v1/sequences/{name}", clientLevel, (*Server).sequenceGet},
	{http.MethodPatch, "/v1/sequences/{name}", adminLevel, (*Server).sequencePatch},
	{http.MethodPost, "/v1/sequences/{name}/next", clientLevel, (*Server).next},
	{http.MethodPost, "/v1/sequences/{name}/void", adminLevel, (*Server).sequenceVoid},
	{http.MethodGet, "/v1/sequences/{name}/ids/{id}", clientLevel, (*Server).sequenceParse},
	{http.MethodGet, "/v1/sequences/{name}/ledger", adminLevel, (*Server).sequenceLedger},
	{http.MethodPost, "/v1/pools", adminLevel, (*Server).poolCreate},
	{http.MethodGet, "/v1/pools", clientLevel, (*Server).poolList},
	{http.MethodGet, "/v1/pools/{name}", clientLevel, (*Server).poolGet},
	{http.MethodPatch, "/v1/pools/{name}", adminLevel, (*Server).poolPatch},
	{http.MethodPost, "/v1/pools/{name}/claims", clientLevel, (*Server).claimCreate},
	{http.MethodGet, "/v1/pools/{name}/claims", clientLevel, (*Server).claimList},
	{http.MethodGet, "/v1/claims/{id}", clientLevel, (*Server).claimGet},
	{http.MethodPost, "/v1/claims/{id}/confirm", clientLevel, (*Server).claimConfirm},
	{http.MethodPost, "/v1/claims/{id}/release", clientLevel, (*Server).claimRelease},
	{http.MethodPost, "/v1/claims/{id}/extend", clientLevel, (*Server).claimExtend},
	{http.MethodGet, "/v1/audit", adminLevel, (*Server).audit},
	{http.MethodGet, "/healthz", public, (*Server).healthz},
	{http.MethodGet, "/readyz", public, (*Server).readyz},
	{http.MethodGet, "/metrics", public, (*Server).metrics},
	{http.MethodGet, "/openapi.json", public, (*Server).openapi},
}
