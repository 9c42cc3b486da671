package allot

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Admission is the seam in front of a pool's store batches: what may turn
// a claim away before it costs a database round trip, and learns from what
// the database decided. The store stays the judge: an Admission may refuse
// early (sold out, no queue token, a doorman's count at zero), but it can
// never grant a unit; every claim it lets through is decided by the store
// in arrival order inside the batch, as before.
//
// The built-in sold-out cache (a pool the last batch sold out is refused
// from memory until units come back) is the first implementation; a
// waiting room and a Redis doorman plug in through Config.Admissions.
// Implementations must be safe for concurrent use.
type Admission interface {
	// Admit is called as a claim arrives, before it queues for a batch.
	// An error refuses it at once: a *SoldOutError for stock, or an
	// error that wraps ErrNotAdmitted (answered 409 not_admitted); any
	// other error is answered as an internal one. A claim with an idempotency key may
	// be a retry of one that got units: refusing it for stock would hide
	// its claim, so stock checks must let keyed claims through.
	Admit(ctx context.Context, pool string, r PoolClaimRequest) error
	// Flush is called when a batch of admitted claims is about to go to
	// the store. It may refuse claims from memory now (setting
	// refused[i]; those are not sent), for example those that queued
	// behind the batch that sold the pool out. It returns a mark handed
	// back to Decided (the state it saw, so it can tell a change that
	// raced the batch). With two batches of a pool in flight (a store
	// that pipelines them), the second may be Flushed before the first is
	// Decided: a batch right behind the one that sold out may still go to
	// the store, which refuses it.
	Flush(pool string, reqs []PoolClaimRequest, refused []error) (mark uint64)
	// Decided is called with what became of every claim this admission
	// let through: once for every batch Flush saw (except one that runs
	// again, below), and (with mark 0 and Stored false) for a claim that never reached a
	// batch: refused by a later admission's Admit, given up by its caller
	// while it queued, or refused because the Service was closing. A batch
	// the store wrote nothing of and that runs again (split request by
	// request after bad data, or rolled back behind a batch that failed)
	// is not Decided: its claims are Flushed again in the batches that
	// follow, and Decided there. Decided may run while the next batch of
	// the pool waits to commit: it must not block.
	Decided(pool string, mark uint64, d Decision)
	// Returned is called when units of pool came back (a release, a
	// cancel, an expiry, a capacity raise or a reopen, on this process or,
	// through the store's notices, on another).
	Returned(pool string)
}

// Decision is what became of the claims of a batch.
type Decision struct {
	// Requests are the claims, in arrival order.
	Requests []PoolClaimRequest
	// Results has one outcome per request: the store's, or the refusal
	// from memory (an admission's Admit or Flush). When Err is set, the
	// requests that went to the store have no outcome here.
	Results []PoolClaimOutcome
	// Stored reports that some claim went to the store and it answered;
	// Available is then the pool's free units after the batch.
	Stored    bool
	Available int64
	// Err is the store's failure: the outcome of the claims sent to it is
	// unknown (they may have committed).
	Err error
}

// admissions is the chain a Service asks: the built-in sold-out cache,
// then Config.Admissions in order.
type admissions []Admission

// admit asks each admission in turn; on a refusal, the ones that had let
// the claim through are told it was refused.
func (as admissions) admit(ctx context.Context, pool string, r PoolClaimRequest) error {
	for i, a := range as {
		if err := a.Admit(ctx, pool, r); err != nil {
			as[:i].notSent(pool, r, err)
			return err
		}
	}
	return nil
}

// notSent tells the admissions of a claim they let through that never
// reached a batch, and why.
func (as admissions) notSent(pool string, r PoolClaimRequest, err error) {
	d := Decision{Requests: []PoolClaimRequest{r}, Results: []PoolClaimOutcome{{Err: err}}}
	for _, a := range as {
		a.Decided(pool, 0, d)
	}
}

// flush asks each admission in turn (each sees what the ones before it
// refused) and returns their marks.
func (as admissions) flush(pool string, reqs []PoolClaimRequest, refused []error) []uint64 {
	marks := make([]uint64, len(as))
	for i, a := range as {
		marks[i] = a.Flush(pool, reqs, refused)
	}
	return marks
}

func (as admissions) decided(pool string, marks []uint64, d Decision) {
	for i, a := range as {
		a.Decided(pool, marks[i], d)
	}
}

func (as admissions) returned(pool string) {
	for _, a := range as {
		a.Returned(pool)
	}
}

// soldOutTTL bounds how long a process trusts "sold out" without asking,
// on the service's clock (Config.Now), the clock holds expire on.
const soldOutTTL = time.Second

// soldOutCache is the built-in Admission: while a pool is sold out, claims
// without a key are refused from memory for at most soldOutTTL; units
// coming back anywhere clear the flag at once where the store can announce
// it (LISTEN/NOTIFY on PostgreSQL), and within soldOutTTL anyway.
type soldOutCache struct {
	now   func() time.Time
	pools sync.Map // name -> *soldOutPool
}

type soldOutPool struct {
	until    atomic.Int64  // unix nanoseconds
	reopened atomic.Uint64 // bumped by every reopen
}

func (c *soldOutCache) pool(name string) *soldOutPool {
	if v, ok := c.pools.Load(name); ok {
		return v.(*soldOutPool)
	}
	v, _ := c.pools.LoadOrStore(name, &soldOutPool{})
	return v.(*soldOutPool)
}

func (c *soldOutCache) soldOut(name string) bool {
	return c.now().UnixNano() < c.pool(name).until.Load()
}

// Admit refuses a claim without a key while the pool is sold out.
func (c *soldOutCache) Admit(_ context.Context, pool string, r PoolClaimRequest) error {
	if r.Idempotency == nil && c.soldOut(pool) {
		return &SoldOutError{Pool: pool, Requested: r.Quantity, Available: 0}
	}
	return nil
}

// Flush refuses, from memory, the claims without a key that queued while
// the previous batch sold the pool out.
func (c *soldOutCache) Flush(pool string, reqs []PoolClaimRequest, refused []error) uint64 {
	p := c.pool(pool)
	if c.soldOut(pool) {
		for i, r := range reqs {
			if refused[i] == nil && r.Idempotency == nil {
				refused[i] = &SoldOutError{Pool: pool, Requested: r.Quantity, Available: 0}
			}
		}
	}
	return p.reopened.Load()
}

// Decided marks the pool sold out when the batch left nothing, unless it
// was reopened since the batch was formed (units came back while the
// batch that saw none was committing), and clears the mark when a batch
// found units left.
func (c *soldOutCache) Decided(pool string, mark uint64, d Decision) {
	if !d.Stored {
		return
	}
	p := c.pool(pool)
	if d.Available > 0 {
		// Units are left (a batch of keyed claims may go to the store
		// while the flag is set): unless a reopen raced, the flag is
		// stale.
		if p.reopened.Load() == mark {
			p.until.Store(0)
		}
		return
	}
	if p.reopened.Load() != mark {
		return
	}
	p.until.Store(c.now().Add(soldOutTTL).UnixNano())
	if p.reopened.Load() != mark {
		p.until.Store(0) // a reopen raced the store above
	}
}

// Returned clears the sold-out flag.
func (c *soldOutCache) Returned(pool string) {
	p := c.pool(pool)
	p.reopened.Add(1)
	p.until.Store(0)
}
