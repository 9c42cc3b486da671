package allot

import "time"

// Observer receives the service's measurements as events, one method for
// every kind (BatchEvent, ClaimEvent, and those later parts add), so a new
// measurement needs no new interface. Implementations ignore the events
// they don't know, and must be safe for concurrent use and quick: Observe
// is called on request paths.
type Observer interface {
	Observe(e Event)
}

// Event is a measurement: one of the *Event types.
type Event interface {
	// EventName names the kind of event, e.g. "batch".
	EventName() string
}

// BatchEvent is one group commit.
type BatchEvent struct {
	// Kind is what the batch did: "issued", "leased", "reserved" (a
	// sequence's numbers), "claim" or "confirm".
	Kind string
	// Size is the number of requests in it.
	Size int
	// Duration is how long the store took.
	Duration time.Duration
	// Err is the store's failure, nil when it committed.
	Err error
}

// EventName implements Event.
func (BatchEvent) EventName() string { return "batch" }

// ClaimEvent is one claim's outcome.
type ClaimEvent struct {
	Pool string
	// Outcome is "held", or the reason it was refused ("sold_out",
	// "customer_limit", "pool_closed", "idempotency_mismatch",
	// "not_admitted", "error").
	Outcome string
}

// EventName implements Event.
func (ClaimEvent) EventName() string { return "claim" }

type nopObserver struct{}

func (nopObserver) Observe(Event) {}
