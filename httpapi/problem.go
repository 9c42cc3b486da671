package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/allot/allot"
)

// Problem codes: the "code" member of every error response.
const (
	codeInvalid           = "invalid_request"
	codeNotFound          = "not_found"
	codeAlreadyExists     = "already_exists"
	codeExhausted         = "sequence_exhausted"
	codeIdemMismatch      = "idempotency_mismatch"
	codeIdemInFlight      = "idempotency_in_flight"
	codeSoldOut           = "sold_out"
	codeCustomerLimit     = "customer_limit"
	codePoolClosed        = "pool_closed"
	codeClaimExpired      = "claim_expired"
	codeInvalidState      = "invalid_state"
	codePeriodClosed      = "period_closed"
	codeRangeOverlap      = "range_overlap"
	codeUnauthorized      = "unauthorized"
	codeForbidden         = "forbidden"
	codeMethodNotAllowed  = "method_not_allowed"
	codeUnavailable       = "unavailable"
	codeInternal          = "internal"
	problemTypePrefix     = "urn:allot:problem:"
	contentTypeProblem    = "application/problem+json"
	contentTypeJSON       = "application/json"
	contentTypeText       = "text/plain; charset=utf-8"
	retryAfterSecondsHint = "1"
)

var titles = map[string]string{
	codeInvalid:          "Invalid request",
	codeNotFound:         "Not found",
	codeAlreadyExists:    "Already exists",
	codeExhausted:        "Sequence exhausted",
	codeIdemMismatch:     "Idempotency key reused with a different request",
	codeIdemInFlight:     "Idempotency key in flight",
	codeSoldOut:          "Sold out",
	codeCustomerLimit:    "Customer limit reached",
	codePoolClosed:       "Pool closed",
	codeClaimExpired:     "Claim expired",
	codeInvalidState:     "Invalid state",
	codePeriodClosed:     "Period closed",
	codeRangeOverlap:     "Sequences overlap",
	codeUnauthorized:     "Unauthorized",
	codeForbidden:        "Forbidden",
	codeMethodNotAllowed: "Method not allowed",
	codeUnavailable:      "Unavailable",
	codeInternal:         "Internal error",
}

// apiError is an error raised by the HTTP layer itself (405, 404 route,
// 413, 415, 406, 503 readiness), carrying its status and code.
type apiError struct {
	status int
	code   string
	field  string
	detail string
}

func (e *apiError) Error() string { return e.detail }

// problem is an RFC 9457 problem document.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	Field     string `json:"field,omitempty"`
	Remaining *int64 `json:"remaining,omitempty"`
	Requested *int64 `json:"requested,omitempty"`
	Available *int64 `json:"available,omitempty"`
	Limit     *int64 `json:"limit,omitempty"`
	// Sequence names the other sequence of a range_overlap.
	Sequence  string `json:"sequence,omitempty"`
	Used      *int64 `json:"used,omitempty"`
	Capacity  *int64 `json:"capacity,omitempty"`
	Held      *int64 `json:"held,omitempty"`
	Confirmed *int64 `json:"confirmed,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// problemFor maps any error to its problem. It is the one place that
// decides statuses and codes. internal reports an error the caller must
// not see; its detail is replaced and the error logged.
func problemFor(err error) (p problem, internal bool) {
	var (
		ae  *apiError
		ex  *allot.ExhaustedError
		inv *allot.InvalidError
		so  *allot.SoldOutError
		cl  *allot.CustomerLimitError
		ce  *allot.CapacityError
	)
	p.Detail = err.Error()
	switch {
	case errors.As(err, &ae):
		p.Status, p.Code, p.Field = ae.status, ae.code, ae.field
	case errors.As(err, &ex):
		p.Status, p.Code = http.StatusConflict, codeExhausted
		p.Remaining, p.Requested = &ex.Remaining, &ex.Requested
	case errors.Is(err, allot.ErrExhausted):
		p.Status, p.Code = http.StatusConflict, codeExhausted
	case errors.As(err, &so):
		p.Status, p.Code = http.StatusConflict, codeSoldOut
		p.Available, p.Requested = &so.Available, &so.Requested
	case errors.Is(err, allot.ErrSoldOut):
		p.Status, p.Code = http.StatusConflict, codeSoldOut
	case errors.As(err, &cl):
		p.Status, p.Code = http.StatusConflict, codeCustomerLimit
		p.Limit, p.Used, p.Requested = &cl.Limit, &cl.Used, &cl.Requested
	case errors.Is(err, allot.ErrCustomerLimit):
		p.Status, p.Code = http.StatusConflict, codeCustomerLimit
	case errors.Is(err, allot.ErrPoolClosed):
		p.Status, p.Code = http.StatusConflict, codePoolClosed
	case errors.Is(err, allot.ErrClaimExpired):
		p.Status, p.Code = http.StatusConflict, codeClaimExpired
	case errors.As(err, &ce):
		p.Status, p.Code, p.Field = http.StatusConflict, codeInvalidState, "capacity"
		p.Capacity, p.Requested, p.Held, p.Confirmed = &ce.CapacityNow, &ce.Requested, &ce.Held, &ce.Confirmed
	case errors.Is(err, allot.ErrInvalidState):
		p.Status, p.Code = http.StatusConflict, codeInvalidState
	case errors.Is(err, allot.ErrPeriodClosed):
		p.Status, p.Code = http.StatusConflict, codePeriodClosed
	case errors.Is(err, allot.ErrOverlap):
		p.Status, p.Code = http.StatusConflict, codeRangeOverlap
		var oe *allot.OverlapError
		if errors.As(err, &oe) {
			p.Field, p.Sequence = "format", oe.Other
		}
	case errors.Is(err, allot.ErrUnavailable):
		p.Status, p.Code = http.StatusServiceUnavailable, codeUnavailable
		p.Detail = "the database is unavailable right now (GET /readyz says why): nothing was done; retry shortly"
	case errors.Is(err, allot.ErrInvalid):
		p.Status, p.Code = http.StatusBadRequest, codeInvalid
		if errors.As(err, &inv) {
			p.Field = inv.Field
		}
	case errors.Is(err, allot.ErrNotFound):
		p.Status, p.Code = http.StatusNotFound, codeNotFound
	case errors.Is(err, allot.ErrAlreadyExists):
		p.Status, p.Code = http.StatusConflict, codeAlreadyExists
	case errors.Is(err, allot.ErrIdempotencyMismatch):
		p.Status, p.Code = http.StatusUnprocessableEntity, codeIdemMismatch
	case errors.Is(err, allot.ErrIdempotencyInFlight):
		p.Status, p.Code = http.StatusConflict, codeIdemInFlight
	case errors.Is(err, allot.ErrUnauthorized):
		p.Status, p.Code = http.StatusUnauthorized, codeUnauthorized
	case errors.Is(err, allot.ErrForbidden):
		p.Status, p.Code = http.StatusForbidden, codeForbidden
	case errors.Is(err, allot.ErrClosed):
		p.Status, p.Code = http.StatusServiceUnavailable, codeUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		p.Status, p.Code = http.StatusServiceUnavailable, codeUnavailable
		p.Detail = "the request was cancelled or timed out before it completed: retry it (with an Idempotency-Key to be safe)"
	default:
		p.Status, p.Code = http.StatusInternalServerError, codeInternal
		internal = true
	}
	p.Type = problemTypePrefix + p.Code
	p.Title = titles[p.Code]
	return p, internal
}

// problem writes err as a problem document and returns its status and
// code.
func (s *Server) problem(w http.ResponseWriter, r *http.Request, err error) outcome {
	p, internal := problemFor(err)
	p.RequestID = w.Header().Get(headerRequestID)
	if internal {
		s.log.LogAttrs(r.Context(), slog.LevelError, "internal error",
			slog.String("request_id", p.RequestID), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Any("err", err))
		p.Detail = fmt.Sprintf("internal error (request id %s)", p.RequestID)
	}
	if p.Code == codeIdemInFlight || p.Code == codeUnavailable {
		w.Header().Set("Retry-After", retryAfterSecondsHint)
	}
	body, mErr := json.Marshal(p)
	if mErr != nil { // cannot happen: p holds only strings and numbers
		body = []byte(`{"type":"urn:allot:problem:internal","title":"Internal error","status":500,"code":"internal"}`)
		p.Status, p.Code = http.StatusInternalServerError, codeInternal
	}
	h := w.Header()
	h["Content-Type"] = []string{contentTypeProblem}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
	return outcome{status: p.Status, code: p.Code}
}
