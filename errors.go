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
	// out). A write may or may not have taken effect (its commit's answer
	// may be what was lost): retry it later, with the same Idempotency-Key
	// to get the same outcome.
	ErrUnavailable = errors.New("store unavailable")

	// The pool errors below wrap into the HTTP problem code of the same
	// name.

	// ErrSoldOut reports a claim for more units than are available.
	ErrSoldOut = errors.New("sold out")
	// ErrCustomerLimit reports a claim that would take a customer past
	// the pool's per-customer limit.
	ErrCustomerLimit = errors.New("customer limit reached")
	// ErrPoolClosed reports a claim on a pool that is paused, closed, or
	// outside its sale window.
	ErrPoolClosed = errors.New("pool closed")
	// ErrClaimExpired reports a confirm of an expired hold whose units
	// could not be taken again: the caller should refund.
	ErrClaimExpired = errors.New("claim expired")
	// ErrInvalidState reports a transition the claim's (or pool's)
	// current state does not allow.
	ErrInvalidState = errors.New("invalid state")
	// ErrNotAdmitted reports a claim an Admission (a waiting room, a
	// doorman) turned away before the store was asked. An admission's
	// refusals that are not about stock wrap it.
	ErrNotAdmitted = errors.New("not admitted")
	// ErrNotIssued reports a reprint of a number that was never issued,
	// was voided, or is not known to be handed out.
	ErrNotIssued = errors.New("number not issued")
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

// ErrPeriodClosed reports a request for numbers of a period that was
// closed (allot seq close-period): it takes no new numbers.
var ErrPeriodClosed = errors.New("period closed")

// ErrOverlap reports a sequence whose IDs could collide with another
// sequence's.
var ErrOverlap = errors.New("sequences overlap")

// PeriodClosedError is a request for numbers of a closed period. It
// unwraps to ErrPeriodClosed.
type PeriodClosedError struct {
	Sequence, Period string
}

// Error implements error.
func (e *PeriodClosedError) Error() string {
	return fmt.Sprintf("period %s of sequence %q is closed: it takes no new numbers (reopen it, or use a date in an open period)", e.Period, e.Sequence)
}

// Unwrap makes errors.Is(err, ErrPeriodClosed) true.
func (e *PeriodClosedError) Unwrap() error { return ErrPeriodClosed }

// OverlapError refuses a sequence that could render IDs another sequence
// renders too, which would hand out duplicate IDs. It unwraps to ErrOverlap.
type OverlapError struct {
	// Sequence is the one being created or changed; Other the one it
	// collides with.
	Sequence, Other string
	// Number is a number of Sequence that may render an ID of Other.
	Number int64
	// Example is that number's ID (for today), when it can be rendered.
	Example string
}

// Error implements error.
func (e *OverlapError) Error() string {
	ex := ""
	if e.Example != "" {
		ex = fmt.Sprintf(" (for example %s, number %d)", e.Example, e.Number)
	}
	return fmt.Sprintf("sequence %q could issue the same IDs as sequence %q%s: use a different format or a range that does not overlap, or pass allow_overlap if that is intended",
		e.Sequence, e.Other, ex)
}

// Unwrap makes errors.Is(err, ErrOverlap) true.
func (e *OverlapError) Unwrap() error { return ErrOverlap }

// UnavailableError is a store error that means the database can't be
// reached or can't take the request now (down, restarting, failing over,
// read-only, out of disk, too busy). It unwraps to ErrUnavailable and to
// the driver's error.
type UnavailableError struct {
	// Store names the store, e.g. "postgres".
	Store string
	// Err is the driver's error.
	Err error
}

// Error implements error.
func (e *UnavailableError) Error() string { return e.Store + " is unavailable: " + e.Err.Error() }

// Unwrap makes errors.Is(err, ErrUnavailable) true and keeps the cause.
func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// KeyMismatch is the error for an Idempotency-Key stored with another
// request. It unwraps to ErrIdempotencyMismatch.
func KeyMismatch(key string) error {
	return Errorf(ErrIdempotencyMismatch, "key %q was first used with a different request", key)
}

// KeyTwiceInBatch is the error for the second use of an Idempotency-Key in
// one batch, for sequences and pools alike. It unwraps to
// ErrIdempotencyInFlight.
func KeyTwiceInBatch(key string) error {
	return Errorf(ErrIdempotencyInFlight, "key %q is used twice in one batch: send each request with its own key", key)
}
