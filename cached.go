package allot

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/allot/allot/batch"
)

// Cached mode.
//
// A cached sequence leases ranges of numbers from the store (recorded in the
// ledger as "leased", pending) and hands them out from memory with one
// mutex operation per request. The allocator fetches the next lease when
// less than half a lease is left, so a steady stream of requests never
// waits on the database. Under sustained demand a lease grows to several
// blocks (doubling while leases last less than a second, up to
// Config.LeaseBlocksMax) and shrinks back when demand falls.
//
// A lease never takes more than 1/LeaseFraction of what the period has left
// (PlanAdvance caps it), so a crash, which loses what the server had leased
// and not handed out, costs at most about two such leases per period (the
// current one and the one fetched ahead). A graceful stop, a lease that sat
// idle for Config.LeaseIdle, and one pushed out by Config.LeasesMax give
// back their unused rest: handed back to the counter when nothing was taken
// after it (so those numbers are issued again and no gap remains), voided
// otherwise. A lease whose numbers were all handed out is settled in the
// ledger, so its numbers count as issued on every server.
//
// Requests that don't fit a lease (more than a block, or more than the cap
// allows), requests with an Idempotency-Key or a reference, and two-phase
// requests go straight to the store (group committed, recorded as issued
// or reserved), because the ledger must say exactly what they got.

// exhaustedRecheck is how long an allocator trusts "the store is exhausted"
// before asking again (another process may have raised max).
const exhaustedRecheck = time.Second

// errDirect tells Next to take the numbers from the store directly.
var errDirect = errors.New("allot: request does not fit a lease")

// errRetired tells Next the allocator was given back; use a new one.
var errRetired = errors.New("allot: allocator retired")

type span struct{ first, last int64 }

func (s span) len() int64 { return s.last - s.first + 1 }

type allocKey struct{ period, date string }

// lease is a leased ledger entry. It is settled (the server tells the
// ledger what it handed out) once every number of it was delivered.
type lease struct {
	id          int64
	first, last int64
	settling    bool // its last numbers were taken; settled once they are delivered
	settled     bool
}

type allocator struct {
	svc     *Service
	key     allocKey
	seq     string
	dateKey string // the ledger date of the numbers (see seqRuntime.dateKey)
	block   int64

	mu          sync.Mutex
	retired     bool // given back: nothing more may be handed out
	spans       []span
	leases      []lease
	fetching    bool
	fetchDone   chan struct{}
	fetchErr    error
	exhaustedAt time.Time
	leaseBlocks int64
	lastFetch   time.Time
	lastUsed    time.Time
	// capHint is what a lease may take now: LeaseCap of what the period
	// had left at the latest lease (of the whole range before the first).
	capHint int64
	// counterLast and max are the period's counter and max as of the
	// latest lease.
	counterLast, max int64
}

// allocator returns the allocator of a period and date, nil if none.
func (rt *seqRuntime) allocator(k allocKey) *allocator {
	rt.allocMu.Lock()
	defer rt.allocMu.Unlock()
	return rt.allocs[k]
}

// allocatorFor returns the allocator of a period and date, creating it.
// Past Config.LeasesMax allocators, the one used least recently is retired
// (its lease given back in the background).
func (rt *seqRuntime) allocatorFor(s *Service, k allocKey) *allocator {
	if a := rt.last.Load(); a != nil && a.key == k {
		return a
	}
	rt.allocMu.Lock()
	a := rt.allocs[k]
	var evict *allocator
	if a == nil {
		if len(rt.allocs) >= s.cfg.LeasesMax {
			for _, o := range rt.allocs {
				if evict == nil || o.used().Before(evict.used()) {
					evict = o
				}
			}
			delete(rt.allocs, evict.key)
		}
		// Before the first lease, what is left is at most the whole
		// range, so no lease can take more than its cap.
		a = &allocator{svc: s, key: k, seq: rt.seq.Name, dateKey: k.date, block: rt.seq.BlockSize, leaseBlocks: 1, lastUsed: time.Now(),
			capHint: LeaseCap(rt.seq.Size())}
		rt.allocs[k] = a
	}
	rt.allocMu.Unlock()
	rt.last.Store(a) // only on a change of period or date, so the hot path never writes it
	if evict != nil {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
			defer cancel()
			s.report("give back a lease", s.retire(ctx, rt, []*allocator{evict}, "unused rest of a lease, given back for a newer period or date"))
		}()
	}
	return a
}

func (a *allocator) used() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastUsed
}

// take hands out count contiguous numbers from memory, waiting for a lease
// only when memory has none that fit. It returns errDirect when the
// request can't be served from a lease and errRetired when the allocator
// was given back. used lists the leases this take used up: the caller
// settles them (delivered) once the numbers are delivered, or puts the
// numbers back.
func (a *allocator) take(ctx context.Context, count int64) (first int64, used []int64, err error) {
	a.mu.Lock()
	if a.capHint > 0 && count > a.capHint {
		a.mu.Unlock()
		return 0, nil, errDirect
	}
	for {
		if a.retired {
			a.mu.Unlock()
			return 0, nil, errRetired
		}
		for i := range a.spans {
			sp := &a.spans[i]
			if sp.len() >= count {
				first := sp.first
				sp.first += count
				if sp.first > sp.last {
					a.spans = slices.Delete(a.spans, i, i+1)
				}
				a.lastUsed = time.Now()
				used := a.usedUpLocked()
				a.maybeFetchLocked()
				a.mu.Unlock()
				return first, used, nil
			}
		}
		if !a.exhaustedAt.IsZero() && time.Since(a.exhaustedAt) < exhaustedRecheck {
			remaining := a.totalLocked()
			a.mu.Unlock()
			return 0, nil, &ExhaustedError{Sequence: a.seq, Period: a.key.period, Requested: count, Remaining: remaining}
		}
		if a.capHint > 0 && count > a.capHint {
			a.mu.Unlock()
			return 0, nil, errDirect // the range got too small for leases this size
		}
		if !a.fetching {
			a.startFetchLocked()
		}
		done := a.fetchDone
		a.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
		a.mu.Lock()
		if a.fetchErr != nil && !a.fetching {
			err := a.fetchErr
			a.mu.Unlock()
			return 0, nil, err
		}
	}
}

// delivered settles the leases a take used up, now that its numbers were
// delivered.
func (a *allocator) delivered(used []int64) {
	if len(used) == 0 {
		return
	}
	a.mu.Lock()
	var ids []int64
	for i := range a.leases {
		if l := &a.leases[i]; l.settling && !l.settled && slices.Contains(used, l.id) {
			l.settled, l.settling = true, false
			ids = append(ids, l.id)
		}
	}
	a.mu.Unlock()
	a.svc.settle(ids...)
}

// putBack returns numbers taken from memory that could not be delivered:
// back to memory while their lease is unsettled and the allocator runs,
// otherwise to the store.
func (a *allocator) putBack(first, count int64, used []int64) {
	a.mu.Lock()
	sp := span{first, first + count - 1}
	var entry int64
	settled := false
	for i := range a.leases {
		l := &a.leases[i]
		if sp.first >= l.first && sp.last <= l.last {
			entry, settled = l.id, l.settled
			if slices.Contains(used, l.id) {
				l.settling = false // in use again
			}
		}
	}
	if entry != 0 && !settled && !a.retired {
		a.spans = append(a.spans, sp)
		slices.SortFunc(a.spans, func(x, y span) int { return int(min(max(x.first-y.first, -1), 1)) })
		a.spans = mergeAdjacent(a.spans)
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	a.svc.giveBack(a.seq, a.key.period, []ReturnSpan{{Span{sp.first, sp.last}, entry}}, nil, "request cancelled before the answer", nil)
}

func mergeAdjacent(spans []span) []span {
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && out[n-1].last+1 == s.first {
			out[n-1].last = s.last
			continue
		}
		out = append(out, s)
	}
	return out
}

// usedUpLocked marks the leases no span of memory holds any more, and
// returns them, for the taker to settle once it delivered their numbers.
func (a *allocator) usedUpLocked() []int64 {
	var out []int64
	for i := range a.leases {
		l := &a.leases[i]
		if l.settled || l.settling {
			continue
		}
		inUse := false
		for _, sp := range a.spans {
			if sp.first <= l.last && sp.last >= l.first {
				inUse = true
				break
			}
		}
		if !inUse {
			l.settling = true
			out = append(out, l.id)
		}
	}
	return out
}

func (a *allocator) totalLocked() int64 {
	var n int64
	for _, sp := range a.spans {
		n += sp.len()
	}
	return n
}

func (a *allocator) leaseSizeLocked() int64 {
	size := a.block * a.leaseBlocks
	if a.capHint > 0 {
		size = min(size, a.capHint)
	}
	return size
}

func (a *allocator) maybeFetchLocked() {
	if a.fetching || !a.exhaustedAt.IsZero() && time.Since(a.exhaustedAt) < exhaustedRecheck {
		return
	}
	if a.totalLocked() < a.leaseSizeLocked()/2+1 {
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

// fetch leases up to size numbers (PlanAdvance may grant fewer) in the
// background.
func (a *allocator) fetch(size int64, done chan struct{}) {
	defer a.svc.bg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), a.svc.cfg.StoreTimeout)
	defer cancel()
	res, err := a.svc.advance.Do(ctx, advanceKey{a.seq, a.key.period, LedgerLeased}, SequenceAdvanceRequest{Count: size, DateKey: a.dateKey})
	if err == nil {
		err = res.Err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	switch {
	case err == nil:
		got := span{res.First, res.Last}
		a.leases = append(a.leases, lease{id: res.Row, first: got.first, last: got.last})
		a.spans = mergeAdjacent(append(a.spans, got))
		a.counterLast, a.max = res.CounterLast, res.Max
		a.capHint = max(LeaseCap(Remaining(res.CounterLast, res.Max)), 1)
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
		if a.retired {
			// Given back while the lease was on its way: give it back too.
			a.svc.bg.Add(1)
			go func(id int64) {
				defer a.svc.bg.Done()
				a.svc.giveBack(a.seq, a.key.period, []ReturnSpan{{Span{got.first, got.last}, id}}, []int64{id}, "unused lease, given back at once", nil)
			}(res.Row)
			a.spans, a.leases = nil, nil
		}
	case errors.Is(err, ErrExhausted):
		a.exhaustedAt = now
		var ex *ExhaustedError
		if errors.As(err, &ex) {
			a.capHint = max(LeaseCap(ex.Remaining), 1)
		}
	case errors.Is(err, batch.ErrClosed):
		// Shutting down: nothing was leased.
		a.fetchErr = ErrClosed
	default:
		a.fetchErr = err
		a.svc.report("lease numbers", err)
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

func (a *allocator) clearExhausted() {
	a.mu.Lock()
	a.exhaustedAt = time.Time{}
	a.mu.Unlock()
}

// drain marks the allocator given back and returns what it holds: the
// unused spans, cut at lease boundaries so each lies in its entry, and the
// leases to settle once they are given back. Leases whose last numbers are
// still being delivered (settling) are left to their takers.
func (a *allocator) drain() ([]ReturnSpan, []int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.retired = true
	var spans []ReturnSpan
	var ids []int64
	for _, l := range a.leases {
		for _, sp := range a.spans {
			part := intersect(Span{sp.first, sp.last}, Span{l.first, l.last})
			if part.Len() > 0 {
				spans = append(spans, ReturnSpan{part, l.id})
			}
		}
		if !l.settled && !l.settling {
			ids = append(ids, l.id)
		}
	}
	// Leases being delivered stay, so their takers can still settle them.
	a.spans = nil
	a.leases = slices.DeleteFunc(a.leases, func(l lease) bool { return !l.settling })
	return spans, ids
}

// retire gives back the unused rest of the allocators' leases (one store
// transaction for all of them) and settles their leases.
func (s *Service) retire(ctx context.Context, rt *seqRuntime, as []*allocator, reason string) error {
	byPeriod := map[string]*PeriodReturn{}
	var order []string
	for _, a := range as {
		spans, ids := a.drain()
		if len(spans) == 0 && len(ids) == 0 {
			continue
		}
		pr := byPeriod[a.key.period]
		if pr == nil {
			pr = &PeriodReturn{Period: a.key.period}
			byPeriod[a.key.period] = pr
			order = append(order, a.key.period)
		}
		pr.Spans = append(pr.Spans, spans...)
		pr.Settle = append(pr.Settle, ids...)
	}
	if len(order) == 0 {
		return nil
	}
	slices.Sort(order)
	p := SequenceReturnParams{Sequence: rt.seq.Name, Owner: s.cfg.Owner, Reason: reason}
	for _, period := range order {
		p.Periods = append(p.Periods, *byPeriod[period])
	}
	err := s.store.SequenceReturn(ctx, p)
	if unavailable(err) {
		s.queueReturn(p, nil) // retried; its leases stay pending meanwhile
	}
	return err
}

// retireAll gives back every lease of a sequence (at shutdown).
func (s *Service) retireAll(ctx context.Context, rt *seqRuntime, reason string) error {
	rt.allocMu.Lock()
	as := make([]*allocator, 0, len(rt.allocs))
	for k, a := range rt.allocs {
		as = append(as, a)
		delete(rt.allocs, k)
	}
	rt.allocMu.Unlock()
	rt.last.Store(nil)
	return s.retire(ctx, rt, as, reason)
}

// releaseIdle gives back the leases that sat unused for Config.LeaseIdle.
func (s *Service) releaseIdle(ctx context.Context) error {
	var errs []error
	cutoff := time.Now().Add(-s.cfg.LeaseIdle)
	for _, rt := range *s.seqs.Load() {
		rt.allocMu.Lock()
		var idle []*allocator
		for k, a := range rt.allocs {
			if a.used().Before(cutoff) {
				a.mu.Lock()
				busy := a.fetching
				a.mu.Unlock()
				if busy {
					continue
				}
				idle = append(idle, a)
				delete(rt.allocs, k)
			}
		}
		rt.allocMu.Unlock()
		if len(idle) == 0 {
			continue
		}
		if l := rt.last.Load(); l != nil && slices.Contains(idle, l) {
			rt.last.CompareAndSwap(l, nil)
		}
		if err := s.retire(ctx, rt, idle, "unused rest of a lease, given back after it sat idle"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
