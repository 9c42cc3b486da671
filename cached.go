package allot

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/allot/allot/batch"
)

// Cached mode.
//
// A cached sequence leases ranges of numbers from the store (recorded in the
// ledger as "leased") and hands them out from memory with one mutex
// operation per request. The allocator fetches the next lease when less than
// half a lease is left, so a steady stream of requests never waits on the
// database. Under sustained demand a lease grows to several blocks (doubling
// while leases last less than a second, up to Config.LeaseBlocksMax) so the
// number of lease transactions stays small; it shrinks back when demand
// falls. A crash loses at most the unissued rest of what was leased, and the
// ledger explains every such gap. Close voids the unused rest explicitly.
//
// Requests for more than one block go straight to the store (group
// committed, recorded as "issued"), because a contiguous range that large
// rarely sits in memory.

// exhaustedRecheck is how long an allocator trusts "the store is exhausted"
// before asking again (another process may have raised max).
const exhaustedRecheck = time.Second

type span struct{ first, last int64 }

func (s span) len() int64 { return s.last - s.first + 1 }

type allocator struct {
	svc    *Service
	seq    string
	period string
	block  int64

	mu          sync.Mutex
	drained     bool // set at shutdown: nothing more may be handed out
	spans       []span
	fetching    bool
	fetchDone   chan struct{}
	fetchErr    error
	exhaustedAt time.Time
	leaseBlocks int64
	lastFetch   time.Time
}

// allocator returns the allocator of a period, or nil if this process has
// none.
func (rt *seqRuntime) allocator(period string) *allocator {
	if a, ok := rt.allocs.Load(period); ok {
		return a.(*allocator)
	}
	return nil
}

// allocatorFor returns the allocator of a period, creating it.
func (rt *seqRuntime) allocatorFor(s *Service, period string) *allocator {
	if a := rt.last.Load(); a != nil && a.period == period {
		return a
	}
	v, ok := rt.allocs.Load(period)
	if !ok {
		v, _ = rt.allocs.LoadOrStore(period, &allocator{svc: s, seq: rt.seq.Name, period: period, block: rt.seq.BlockSize, leaseBlocks: 1})
	}
	a := v.(*allocator)
	rt.last.Store(a) // only on a period change, so the hot path never writes it
	return a
}

// take hands out count contiguous numbers from memory, waiting for a lease
// only when memory has none that fit.
func (a *allocator) take(ctx context.Context, count int64) (int64, error) {
	a.mu.Lock()
	for {
		if a.drained {
			a.mu.Unlock()
			return 0, ErrClosed
		}
		for i := range a.spans {
			sp := &a.spans[i]
			if sp.len() >= count {
				first := sp.first
				sp.first += count
				if sp.first > sp.last {
					a.spans = append(a.spans[:i], a.spans[i+1:]...)
				}
				a.maybeFetchLocked()
				a.mu.Unlock()
				return first, nil
			}
		}
		if !a.exhaustedAt.IsZero() && time.Since(a.exhaustedAt) < exhaustedRecheck {
			remaining := a.totalLocked()
			a.mu.Unlock()
			return 0, &ExhaustedError{Sequence: a.seq, Period: a.period, Requested: count, Remaining: remaining}
		}
		if !a.fetching {
			a.startFetchLocked()
		}
		done := a.fetchDone
		a.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		a.mu.Lock()
		if a.fetchErr != nil && !a.fetching {
			err := a.fetchErr
			a.mu.Unlock()
			return 0, err
		}
	}
}

func (a *allocator) totalLocked() int64 {
	var n int64
	for _, sp := range a.spans {
		n += sp.len()
	}
	return n
}

func (a *allocator) maybeFetchLocked() {
	if a.fetching || !a.exhaustedAt.IsZero() && time.Since(a.exhaustedAt) < exhaustedRecheck {
		return
	}
	if a.totalLocked() < a.block*a.leaseBlocks/2+1 {
		a.startFetchLocked()
	}
}

func (a *allocator) startFetchLocked() {
	a.fetching = true
	a.fetchErr = nil
	a.fetchDone = make(chan struct{})
	size := a.block * a.leaseBlocks
	a.svc.bg.Add(1)
	go a.fetch(size, a.fetchDone)
}

// fetch leases size numbers (or what is left, if fewer) in the background.
func (a *allocator) fetch(size int64, done chan struct{}) {
	defer a.svc.bg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got span
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var res SequenceAdvanceResult
		res, err = a.svc.advance.Do(ctx, advanceKey{a.seq, a.period, LedgerLeased}, SequenceAdvanceRequest{Count: size})
		if err == nil {
			err = res.Err
		}
		var ex *ExhaustedError
		if errors.As(err, &ex) && ex.Remaining > 0 && ex.Remaining < size {
			size = ex.Remaining // lease the tail of the range
			continue
		}
		if err == nil {
			got = span{res.First, res.Last}
		}
		break
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	switch {
	case err == nil:
		if n := len(a.spans); n > 0 && a.spans[n-1].last+1 == got.first {
			a.spans[n-1].last = got.last
		} else {
			a.spans = append(a.spans, got)
		}
		if !a.lastFetch.IsZero() {
			switch since := now.Sub(a.lastFetch); {
			case since < time.Second && a.leaseBlocks < a.svc.cfg.LeaseBlocksMax:
				a.leaseBlocks = min(a.leaseBlocks*2, a.svc.cfg.LeaseBlocksMax)
			case since > 10*time.Second && a.leaseBlocks > 1:
				a.leaseBlocks /= 2
			}
		}
		a.lastFetch = now
		a.exhaustedAt = time.Time{}
	case errors.Is(err, ErrExhausted):
		a.exhaustedAt = now
	case errors.Is(err, batch.ErrClosed):
		// Shutting down: nothing was leased.
		a.fetchErr = ErrClosed
	default:
		a.fetchErr = err
		a.svc.log.Warn("lease block", "sequence", a.seq, "period", a.period, "err", err)
	}
	a.fetching = false
	close(done)
}

// holds reports whether n is leased to this process and not yet handed out.
func (a *allocator) holds(n int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, sp := range a.spans {
		if n >= sp.first && n <= sp.last {
			return true
		}
	}
	return false
}

// unissued returns how many leased numbers are still in memory, and the
// lowest of them (-1 if none).
func (a *allocator) unissued() (total, lowest int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lowest = -1
	for _, sp := range a.spans {
		total += sp.len()
		if lowest < 0 || sp.first < lowest {
			lowest = sp.first
		}
	}
	return total, lowest
}

func (a *allocator) clearExhausted() {
	a.mu.Lock()
	a.exhaustedAt = time.Time{}
	a.mu.Unlock()
}

// drain removes and returns every unissued span.
func (a *allocator) drain() []span {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.spans
	a.spans = nil
	a.drained = true
	return out
}
