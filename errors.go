package allot

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error allot returns, from any store, the service or
// the HTTP client, wraps one of these, so errors.Is works across the wire.
var (
	// ErrInvalid reports bad input: the request can't be served as given.
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound reports an unknown sequence, pool, claim or ID.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists reports a create of something that already exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrExhausted reports a sequence with too few numbers left for the request.
	ErrExhausted = errors.New("sequence exhausted")
	// ErrIdempotencyMismatch reports a reused Idempotency-Key with a different body.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	// ErrIdempotencyInFlight reports an Idempotency-Key whose first request is still running.
	ErrIdempotencyInFlight = errors.New("idempotency key is in flight")
	// ErrUnauthorized reports a missing or unknown API key.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden reports an API key whose role may not do the operation.
	ErrForbidden = errors.New("forbidden")
	// ErrClosed reports a call on a service or store that is shutting down.
	ErrClosed = errors.New("allot is shutting down")
	// ErrUnavailable reports a store that can't be reached or can't take
	// writes right now (down, restarting, failing over, read-only, timing
	// out): the request did nothing and may be retried later.
	ErrUnavailable = errors.New("store unavailable")
)

// kindError is an error with its own message that unwraps to a sentinel.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Errorf returns an error whose message is the formatted text, a sentence
// that says what happened and what to do, and which unwraps to kind (one
// of the sentinels above), so errors.Is(err, kind) holds without the
// sentinel's own text being appended to the message. Arguments that are
// errors are formatted, not wrapped.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// InvalidError is bad input with the field that is wrong. It unwraps to ErrInvalid.
type InvalidError struct {
	// Field names the offending field in the request, e.g. "count" or "format".
	Field string
	// Reason says what is wrong and what to do instead.
	Reason string
}

// Error implements error.
func (e *InvalidError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Invalidf returns an *InvalidError for field with a formatted reason.
func Invalidf(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ExhaustedError is returned when a sequence can't supply the numbers asked
// for without going past its max. It unwraps to ErrExhausted.
type ExhaustedError struct {
	// Sequence is the sequence's name.
	Sequence string
	// Period is the reset period the request fell in ("" when the sequence never resets).
	Period string
	// Requested is how many numbers the request asked for.
	Requested int64
	// Remaining is how many numbers are still left in the period.
	Remaining int64
}

// Error implements error.
func (e *ExhaustedError) Error() string {
	p := ""
	if e.Period != "" {
		p = " in period " + e.Period
	}
	return fmt.Sprintf("sequence %q is exhausted%s: %d requested, %d remaining", e.Sequence, p, e.Requested, e.Remaining)
}

// Unwrap makes errors.Is(err, ErrExhausted) true.
func (e *ExhaustedError) Unwrap() error { return ErrExhausted }

// NotFoundf returns an error unwrapping to ErrNotFound whose message is
// the formatted text (what was looked for) followed by " not found".
func NotFoundf(format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...) + " not found", kind: ErrNotFound}
}
