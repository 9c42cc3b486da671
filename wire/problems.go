// Package wire is allot's HTTP contract as Go: what the server (httpapi)
// and the Go client (client) must agree on, written once: the request
// and list bodies the domain types don't already cover, the problem
// document, and the table of problem codes (for each, its HTTP status,
// its title and the allot sentinel errors it stands for). The server
// maps an error to its problem with ForError, the client maps a problem
// back to its sentinel with ByCode, and the OpenAPI test checks
// openapi.json against the same table, so a code can't be added on one
// side only.
package wire

import (
	"errors"
	"net/http"

	"github.com/allot/allot"
)

// Problem codes: the "code" member of every error response.
const (
	CodeInvalid          = "invalid_request"
	CodeNotFound         = "not_found"
	CodeAlreadyExists    = "already_exists"
	CodeExhausted        = "sequence_exhausted"
	CodeIdemMismatch     = "idempotency_mismatch"
	CodeIdemInFlight     = "idempotency_in_flight"
	CodeSoldOut          = "sold_out"
	CodeCustomerLimit    = "customer_limit"
	CodePoolClosed       = "pool_closed"
	CodeClaimExpired     = "claim_expired"
	CodeNotAdmitted      = "not_admitted"
	CodeInvalidState     = "invalid_state"
	CodePeriodClosed     = "period_closed"
	CodeRangeOverlap     = "range_overlap"
	CodeNotIssued        = "not_issued"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

// ProblemTypePrefix starts every problem's "type" URI; the code ends it.
const ProblemTypePrefix = "urn:allot:problem:"

// Problem is an error response as the server writes it: an RFC 9457
// problem document with allot's members. The figures are pointers so that
// a zero the caller must see (no units left) is written, and a figure the
// problem does not carry is left out.
type Problem struct {
	// Type is ProblemTypePrefix followed by the code.
	Type string `json:"type"`
	// Title is the code's title, from Problems.
	Title string `json:"title"`
	// Status is the HTTP status.
	Status int `json:"status"`
	// Detail says what went wrong and what to do about it.
	Detail string `json:"detail"`
	// Code is one of the Code constants.
	Code string `json:"code"`
	// Field names the offending request field of an invalid_request.
	Field string `json:"field,omitempty"`
	// Remaining is how many numbers were left, for sequence_exhausted.
	Remaining *int64 `json:"remaining,omitempty"`
	// Requested is what the request asked for: numbers for
	// sequence_exhausted, units for sold_out and customer_limit, the new
	// capacity for invalid_state of a capacity change.
	Requested *int64 `json:"requested,omitempty"`
	// Available is how many units the pool had left, for sold_out.
	Available *int64 `json:"available,omitempty"`
	// Limit is the pool's per-customer limit, for customer_limit.
	Limit *int64 `json:"limit,omitempty"`
	// Sequence names the other sequence of a range_overlap.
	Sequence string `json:"sequence,omitempty"`
	// Used is how many units the customer already holds or bought, for
	// customer_limit.
	Used *int64 `json:"used,omitempty"`
	// Capacity is the pool's current capacity, for invalid_state of a
	// capacity change.
	Capacity *int64 `json:"capacity,omitempty"`
	// Held is how many units are in live holds, for invalid_state of a
	// capacity change.
	Held *int64 `json:"held,omitempty"`
	// Confirmed is how many units are sold, for invalid_state of a
	// capacity change.
	Confirmed *int64 `json:"confirmed,omitempty"`
	// RequestID identifies the request in the server's logs.
	RequestID string `json:"request_id,omitempty"`
}

// ProblemKind is one kind of error response.
type ProblemKind struct {
	// Code is the problem's "code" member.
	Code string
	// Status is its HTTP status.
	Status int
	// Title is its "title" member.
	Title string
	// Sentinels are the allot errors it stands for. An error that wraps
	// any of them is answered with this problem; a problem of this code
	// unwraps, in the client, to all of them. None for the codes the HTTP
	// layer alone raises (method_not_allowed, internal).
	Sentinels []error
}

// Problems is every problem code, in the order ForError tries them.
var Problems = []ProblemKind{
	{CodeExhausted, http.StatusConflict, "Sequence exhausted", []error{allot.ErrExhausted}},
	{CodeSoldOut, http.StatusConflict, "Sold out", []error{allot.ErrSoldOut}},
	{CodeCustomerLimit, http.StatusConflict, "Customer limit reached", []error{allot.ErrCustomerLimit}},
	{CodePoolClosed, http.StatusConflict, "Pool closed", []error{allot.ErrPoolClosed}},
	{CodeClaimExpired, http.StatusConflict, "Claim expired", []error{allot.ErrClaimExpired}},
	{CodeNotAdmitted, http.StatusConflict, "Not admitted", []error{allot.ErrNotAdmitted}},
	{CodeInvalidState, http.StatusConflict, "Invalid state", []error{allot.ErrInvalidState}},
	{CodePeriodClosed, http.StatusConflict, "Period closed", []error{allot.ErrPeriodClosed}},
	{CodeRangeOverlap, http.StatusConflict, "Sequences overlap", []error{allot.ErrOverlap}},
	{CodeNotIssued, http.StatusConflict, "Number not issued", []error{allot.ErrNotIssued}},
	// A server shutting down and a store that can't be reached both mean
	// "nothing was done; retry later".
	{CodeUnavailable, http.StatusServiceUnavailable, "Unavailable", []error{allot.ErrUnavailable, allot.ErrClosed}},
	{CodeInvalid, http.StatusBadRequest, "Invalid request", []error{allot.ErrInvalid}},
	{CodeNotFound, http.StatusNotFound, "Not found", []error{allot.ErrNotFound}},
	{CodeAlreadyExists, http.StatusConflict, "Already exists", []error{allot.ErrAlreadyExists}},
	{CodeIdemMismatch, http.StatusUnprocessableEntity, "Idempotency key reused with a different request", []error{allot.ErrIdempotencyMismatch}},
	{CodeIdemInFlight, http.StatusConflict, "Idempotency key in flight", []error{allot.ErrIdempotencyInFlight}},
	{CodeUnauthorized, http.StatusUnauthorized, "Unauthorized", []error{allot.ErrUnauthorized}},
	{CodeForbidden, http.StatusForbidden, "Forbidden", []error{allot.ErrForbidden}},
	{CodeMethodNotAllowed, http.StatusMethodNotAllowed, "Method not allowed", nil},
	{CodeInternal, http.StatusInternalServerError, "Internal error", nil},
}

var byCode = func() map[string]ProblemKind {
	m := make(map[string]ProblemKind, len(Problems))
	for _, k := range Problems {
		m[k.Code] = k
	}
	return m
}()

// ByCode returns the kind of a problem code, and false for a code this
// build does not know (a newer server's).
func ByCode(code string) (ProblemKind, bool) {
	k, ok := byCode[code]
	return k, ok
}

// ForError returns the problem kind of err: the first in Problems with a
// sentinel err wraps, or internal when there is none.
func ForError(err error) ProblemKind {
	for _, k := range Problems {
		for _, s := range k.Sentinels {
			if errors.Is(err, s) {
				return k
			}
		}
	}
	return byCode[CodeInternal]
}
