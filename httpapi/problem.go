package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/allot/allot"
	"github.com/allot/allot/wire"
)

const (
	contentTypeProblem    = "application/problem+json"
	contentTypeJSON       = "application/json"
	contentTypeText       = "text/plain; charset=utf-8"
	retryAfterSecondsHint = "1"
)

// apiError is an error raised by the HTTP layer itself (405, 404 route,
// 413, 415, 406, 503 readiness), carrying its status and code.
type apiError struct {
	status int
	code   string
	field  string
	detail string
}

func (e *apiError) Error() string { return e.detail }

// problemFor maps any error to its problem. It is the one place that
// decides statuses and codes. internal reports an error the caller must
// not see; its detail is replaced and the error logged.
func problemFor(err error) (p wire.Problem, internal bool) {
	var (
		ae  *apiError
		ex  *allot.ExhaustedError
		inv *allot.InvalidError
		so  *allot.SoldOutError
		cl  *allot.CustomerLimitError
		ce  *allot.CapacityError
	)
	p.Detail = err.Error()
	if errors.As(err, &ae) {
		p.Status, p.Code, p.Field = ae.status, ae.code, ae.field
	} else {
		k := wire.ForError(err)
		p.Status, p.Code = k.Status, k.Code
		internal = k.Code == wire.CodeInternal
	}
	// The figures a caller needs to act on the refusal.
	var oe *allot.OverlapError
	switch {
	case ae != nil:
	case errors.As(err, &ex):
		p.Remaining, p.Requested = &ex.Remaining, &ex.Requested
	case errors.As(err, &so):
		p.Available, p.Requested = &so.Available, &so.Requested
	case errors.As(err, &cl):
		p.Limit, p.Used, p.Requested = &cl.Limit, &cl.Used, &cl.Requested
	case errors.As(err, &ce):
		p.Field = "capacity"
		p.Capacity, p.Requested, p.Held, p.Confirmed = &ce.CapacityNow, &ce.Requested, &ce.Held, &ce.Confirmed
	case errors.As(err, &oe):
		p.Field, p.Sequence = "format", oe.Other
	case errors.As(err, &inv):
		p.Field = inv.Field
	case errors.Is(err, allot.ErrUnavailable):
		p.Detail = "the database is unavailable right now (GET /readyz says why): nothing was done; retry shortly"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		p.Status, p.Code, internal = http.StatusServiceUnavailable, wire.CodeUnavailable, false
		p.Detail = "the request was cancelled or timed out before it completed: retry it (with an Idempotency-Key to be safe)"
	}
	p.Type = wire.ProblemTypePrefix + p.Code
	if k, ok := wire.ByCode(p.Code); ok {
		p.Title = k.Title
	}
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
	if p.Code == wire.CodeIdemInFlight || p.Code == wire.CodeUnavailable {
		w.Header().Set("Retry-After", retryAfterSecondsHint)
	}
	body, mErr := json.Marshal(p)
	if mErr != nil { // cannot happen: p holds only strings and numbers
		body = []byte(`{"type":"urn:allot:problem:internal","title":"Internal error","status":500,"code":"internal"}`)
		p.Status, p.Code = http.StatusInternalServerError, wire.CodeInternal
	}
	h := w.Header()
	h["Content-Type"] = []string{contentTypeProblem}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
	return outcome{status: p.Status, code: p.Code}
}
