package allot

import (
	"encoding/json"
	"fmt"
	"time"
)

// SoldOutError is a claim refused for lack of units. It unwraps to ErrSoldOut.
type SoldOutError struct {
	Pool      string
	Requested int64
	Available int64
}

// Error implements error.
func (e *SoldOutError) Error() string {
	return fmt.Sprintf("pool %q is sold out: %d requested, %d available", e.Pool, e.Requested, e.Available)
}

// Unwrap makes errors.Is(err, ErrSoldOut) true.
func (e *SoldOutError) Unwrap() error { return ErrSoldOut }

// CustomerLimitError is a claim refused by the per-customer limit. It
// unwraps to ErrCustomerLimit.
type CustomerLimitError struct {
	Pool, Customer string
	Limit, Used    int64
	Requested      int64
}

// Error implements error.
func (e *CustomerLimitError) Error() string {
	return fmt.Sprintf("customer %q may hold or buy at most %d of pool %q and has %d; %d more requested", e.Customer, e.Limit, e.Pool, e.Used, e.Requested)
}

// Unwrap makes errors.Is(err, ErrCustomerLimit) true.
func (e *CustomerLimitError) Unwrap() error { return ErrCustomerLimit }

// CapacityError refuses lowering a pool's capacity below what is taken. It
// unwraps to ErrInvalidState.
type CapacityError struct {
	Pool            string
	Requested       int64
	Held, Confirmed int64
	CapacityNow     int64
}

// Error implements error.
func (e *CapacityError) Error() string {
	return fmt.Sprintf("capacity of pool %q can't go to %d: %d held + %d confirmed are taken, so it can go down to %d now; release holds to go lower",
		e.Pool, e.Requested, e.Held, e.Confirmed, e.Held+e.Confirmed)
}

// Unwrap makes errors.Is(err, ErrInvalidState) true.
func (e *CapacityError) Unwrap() error { return ErrInvalidState }

// Duration is a time.Duration that reads and writes JSON as Go duration
// text ("10m", "90s").
type Duration time.Duration

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "10m"-style text.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"10m\" or \"90s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration: use a string such as \"10m\" or \"90s\"", s)
	}
	*d = Duration(v)
	return nil
}

// PoolStatus is whether a pool takes claims.
type PoolStatus string

const (
	// PoolOpen takes claims (within its sale window, if any).
	PoolOpen PoolStatus = "open"
	// PoolPaused refuses new claims for now; confirms and releases go on.
	PoolPaused PoolStatus = "paused"
	// PoolClosed refuses new claims; confirms and releases go on.
	PoolClosed PoolStatus = "closed"
)

// Defaults for new pools.
const (
	// PerCustomerDefault is the units one customer may hold plus buy.
	PerCustomerDefault int64 = 1
	// HoldTTLDefault is how long a hold lasts unless the claim says.
	HoldTTLDefault = 10 * time.Minute
	// MaxHoldTTLDefault caps a hold's life, extensions included.
	MaxHoldTTLDefault = 30 * time.Minute
	// MaxQuantityDefault caps the units of one claim.
	MaxQuantityDefault int64 = 10
	// SweepBound is how long after expiry a hold's units are back at the
	// latest. Reads treat an expired hold as expired at once.
	SweepBound = 2 * time.Second
)

// Pool is a finite inventory.
type Pool struct {
	// Name identifies the pool; it matches [a-z0-9][a-z0-9._-]{0,127}.
	Name string `json:"name"`
	// Capacity is how many units exist.
	Capacity int64 `json:"capacity"`
	// PerCustomer caps one customer's live holds plus confirmed units.
	// Defaults to 1; 0 means no limit.
	PerCustomer int64 `json:"per_customer"`
	// HoldTTL is a hold's default life. Defaults to 10m.
	HoldTTL Duration `json:"hold_ttl"`
	// MaxHoldTTL caps a hold's life from its creation, extensions
	// included. Defaults to 30m.
	MaxHoldTTL Duration `json:"max_hold_ttl"`
	// MaxQuantity caps the units of one claim. Defaults to 10.
	MaxQuantity int64 `json:"max_quantity"`
	// State is open, paused or closed. Defaults to open.
	State PoolStatus `json:"state"`
	// OpensAt and ClosesAt bound the sale window when set.
	OpensAt  *time.Time `json:"opens_at,omitempty"`
	ClosesAt *time.Time `json:"closes_at,omitempty"`
	// CreatedAt and UpdatedAt are set by the store.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// PoolState is a pool with its figures, as reads return it.
type PoolState struct {
	Pool
	// Held is units in live (unexpired) holds.
	Held int64 `json:"held"`
	// Confirmed is units sold.
	Confirmed int64 `json:"confirmed"`
	// Available is Capacity - Held - Confirmed.
	Available int64 `json:"available"`
}

// PoolCreateParams create a pool. Nil or zero fields take their defaults.
type PoolCreateParams struct {
	Name        string     `json:"name"`
	Capacity    *int64     `json:"capacity"`
	PerCustomer *int64     `json:"per_customer,omitempty"`
	HoldTTL     *Duration  `json:"hold_ttl,omitempty"`
	MaxHoldTTL  *Duration  `json:"max_hold_ttl,omitempty"`
	MaxQuantity *int64     `json:"max_quantity,omitempty"`
	State       PoolStatus `json:"state,omitempty"`
	OpensAt     *time.Time `json:"opens_at,omitempty"`
	ClosesAt    *time.Time `json:"closes_at,omitempty"`
}

// PoolPatchParams change a pool. Nil fields stay as they are. A sale
// window can be moved but not removed; to sell without one, set opens_at in
// the past and closes_at far ahead.
type PoolPatchParams struct {
	Capacity    *int64     `json:"capacity,omitempty"`
	PerCustomer *int64     `json:"per_customer,omitempty"`
	HoldTTL     *Duration  `json:"hold_ttl,omitempty"`
	MaxHoldTTL  *Duration  `json:"max_hold_ttl,omitempty"`
	MaxQuantity *int64     `json:"max_quantity,omitempty"`
	State       PoolStatus `json:"state,omitempty"`
	OpensAt     *time.Time `json:"opens_at,omitempty"`
	ClosesAt    *time.Time `json:"closes_at,omitempty"`
}

// NewPool fills defaults into p and validates the result.
func NewPool(p PoolCreateParams) (*Pool, error) {
	if err := ValidateName("name", p.Name); err != nil {
		return nil, err
	}
	if p.Capacity == nil {
		return nil, Invalidf("capacity", "is required: how many units the pool holds")
	}
	pl := &Pool{
		Name: p.Name, Capacity: *p.Capacity, PerCustomer: PerCustomerDefault,
		HoldTTL: Duration(HoldTTLDefault), MaxHoldTTL: Duration(MaxHoldTTLDefault),
		MaxQuantity: MaxQuantityDefault, State: PoolOpen, OpensAt: p.OpensAt, ClosesAt: p.ClosesAt,
	}
	if p.State != "" {
		pl.State = p.State
	}
	if p.PerCustomer != nil {
		pl.PerCustomer = *p.PerCustomer
	}
	if p.HoldTTL != nil {
		pl.HoldTTL = *p.HoldTTL
	}
	if p.MaxHoldTTL != nil {
		pl.MaxHoldTTL = *p.MaxHoldTTL
	}
	if p.MaxQuantity != nil {
		pl.MaxQuantity = *p.MaxQuantity
	}
	if err := pl.Validate(); err != nil {
		return nil, err
	}
	return pl, nil
}

// Validate checks a pool's settings; every message names the field.
func (p *Pool) Validate() error {
	if p.Capacity < 0 {
		return Invalidf("capacity", "must be 0 or more, got %d", p.Capacity)
	}
	if p.PerCustomer < 0 {
		return Invalidf("per_customer", "must be 0 (no limit) or more, got %d", p.PerCustomer)
	}
	if p.MaxQuantity < 1 {
		return Invalidf("max_quantity", "must be at least 1, got %d", p.MaxQuantity)
	}
	if time.Duration(p.HoldTTL) < time.Second {
		return Invalidf("hold_ttl", "must be at least 1s, got %s", time.Duration(p.HoldTTL))
	}
	if p.MaxHoldTTL < p.HoldTTL {
		return Invalidf("max_hold_ttl", "must be at least hold_ttl (%s), got %s", time.Duration(p.HoldTTL), time.Duration(p.MaxHoldTTL))
	}
	if time.Duration(p.MaxHoldTTL) > 7*24*time.Hour {
		return Invalidf("max_hold_ttl", "must be at most 168h, got %s", time.Duration(p.MaxHoldTTL))
	}
	switch p.State {
	case PoolOpen, PoolPaused, PoolClosed:
	default:
		return Invalidf("state", "%q is not a state: use \"open\", \"paused\" or \"closed\"", p.State)
	}
	if p.OpensAt != nil && p.ClosesAt != nil && !p.ClosesAt.After(*p.OpensAt) {
		return Invalidf("closes_at", "must be after opens_at")
	}
	return nil
}

// Selling reports whether the pool takes claims at now, and if not why.
func (p *Pool) Selling(now time.Time) (bool, string) {
	switch {
	case p.State != PoolOpen:
		return false, "pool " + p.Name + " is " + string(p.State)
	case p.OpensAt != nil && now.Before(*p.OpensAt):
		return false, "pool " + p.Name + " opens at " + p.OpensAt.UTC().Format(time.RFC3339)
	case p.ClosesAt != nil && !now.Before(*p.ClosesAt):
		return false, "pool " + p.Name + " closed at " + p.ClosesAt.UTC().Format(time.RFC3339)
	}
	return true, ""
}

// ClaimStatus is where a claim is in its life.
type ClaimStatus string

const (
	// ClaimHeld holds units until ExpiresAt.
	ClaimHeld ClaimStatus = "held"
	// ClaimConfirmed sold its units. Terminal.
	ClaimConfirmed ClaimStatus = "confirmed"
	// ClaimReleased gave its units back. Terminal.
	ClaimReleased ClaimStatus = "released"
	// ClaimExpired gave its units back when its hold ran out. It can only
	// leave this state by a late confirm that takes the units again.
	ClaimExpired ClaimStatus = "expired"
	// ClaimCancelled was confirmed and then cancelled (a refund): its
	// units came back. Terminal.
	ClaimCancelled ClaimStatus = "cancelled"
)

// Claim is a customer's hold on, or purchase of, units of a pool.
type Claim struct {
	ID        string      `json:"id"`
	Seq       int64       `json:"-"` // creation order, the list cursor
	Pool      string      `json:"pool"`
	Customer  string      `json:"customer"`
	Quantity  int64       `json:"quantity"`
	Status    ClaimStatus `json:"status"`
	Reference string      `json:"reference,omitempty"`
	// Reason is why a cancelled claim was cancelled.
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Replayed is set when an Idempotency-Key returned this claim as the
	// outcome of an earlier request.
	Replayed bool `json:"-"`
}

// Effective returns the claim as a read at now sees it: a hold past its
// expiry counts as expired at once, before the sweeper writes it.
func (c *Claim) Effective(now time.Time) *Claim {
	if c.Status == ClaimHeld && !now.Before(c.ExpiresAt) {
		cp := *c
		cp.Status = ClaimExpired
		return &cp
	}
	return c
}

// ClaimCreateParams ask for units.
type ClaimCreateParams struct {
	Pool     string `json:"-"`
	Customer string `json:"customer"`
	// Quantity defaults to 1.
	Quantity int64 `json:"quantity,omitempty"`
	// TTL is the hold's life; defaults to the pool's hold_ttl.
	TTL *Duration `json:"ttl,omitempty"`
	// IdempotencyKey, when set, makes a retry return the same claim.
	IdempotencyKey string `json:"-"`
}

// ClaimAction is a transition of a claim.
type ClaimAction string

const (
	// ActionConfirm sells a held (or, if units allow, expired) claim.
	ActionConfirm ClaimAction = "confirm"
	// ActionRelease gives a held claim's units back.
	ActionRelease ClaimAction = "release"
	// ActionExtend moves a held claim's expiry, up to max_hold_ttl from
	// its creation.
	ActionExtend ClaimAction = "extend"
	// ActionCancel undoes a confirmed claim (a refund): its units come
	// back and it becomes cancelled, with a reason.
	ActionCancel ClaimAction = "cancel"
)

// ClaimTransitionParams move a claim.
type ClaimTransitionParams struct {
	ID     string
	Action ClaimAction
	// Reference is the external reference of a confirm (e.g. a payment id).
	Reference string
	// Reason is why a cancel is made (required for cancel).
	Reason string
	// TTL is the new life of an extended hold, from now.
	TTL *Duration
	// IdempotencyKey, when set, makes a retry return the same outcome.
	IdempotencyKey string
}

// ClaimListParams filter a pool's claims. Empty fields don't filter.
type ClaimListParams struct {
	Pool     string
	Customer string
	Status   ClaimStatus
	After    string
	Limit    int
}

// ClaimPage is a page of claims; Next is empty on the last page.
type ClaimPage struct {
	Claims []*Claim `json:"claims"`
	Next   string   `json:"next"`
}

// ValidateCustomer checks a customer identifier.
func ValidateCustomer(c string) error {
	switch {
	case c == "":
		return Invalidf("customer", "is required: say who the units are for")
	}
	if err := ValidateText("customer", c, 200); err != nil {
		return err
	}
	return validateNoControl("customer", c)
}

// PastTense names what a transition does to a claim, for messages.
func PastTense(a ClaimAction) string {
	switch a {
	case ActionConfirm:
		return "confirmed"
	case ActionRelease:
		return "released"
	case ActionCancel:
		return "cancelled"
	}
	return "extended"
}
